//! Who made the call (issue 15): a program linking two libraries, whose
//! named functions each make known numbers of calls, which makes calls of
//! its own and from two plugins it loads and unloads in turn
//! (`tests/c_callers/`). `report --by caller` must name every call's module
//! and function with exact counts, from live statistics and from dumps;
//! `caller` rules must drop exactly the named module's calls, as the kernel
//! sees it (`strace`), even for a plugin loaded where an unloaded one was.

mod callers_support;
mod common;
// Only its Prometheus and serve helpers are used here.
#[allow(dead_code)]
mod serve_support;

use std::path::Path;

use callers_support::{groups, programs, report_by_caller};
use common::{cli, run, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::policy::ON_EXIT_ENV;
use serde_json::Value;

/// `call`'s `field` summed over the groups whose module's file name is
/// `module` and whose function is `function`.
fn attributed(report: &Value, module: &str, function: &str, call: &str, field: &str) -> u64 {
    groups(report)
        .filter(|group| {
            let key = &group["key"];
            key["function"] == function
                && key["module"]
                    .as_str()
                    .is_some_and(|path| Path::new(path).file_name().unwrap() == module)
        })
        .map(|group| group["calls"][call][field].as_u64().unwrap_or(0))
        .sum()
}

/// Every call is where the program made it, and nothing is left over.
fn assert_every_call_attributed(report: &Value) {
    let expected = [
        ("liba.so", "liba_work", "fsync", 3),
        ("liba.so", "liba_work", "posix_fadvise", 3),
        ("liba.so", "liba_work", "fdatasync", 3),
        ("libb.so", "libb_work", "fsync", 5),
        ("libb.so", "libb_work", "posix_fadvise", 5),
        ("libb.so", "libb_work", "fdatasync", 5),
        ("callers", "main", "fsync", 7),
        ("callers", "main", "fdatasync", 1),
        ("plugin_one.so", "plugin_work", "fsync", 4),
        ("plugin_two.so", "plugin_work", "fsync", 2),
    ];
    for (module, function, call, count) in expected {
        assert_eq!(
            attributed(report, module, function, call, "count"),
            count,
            "{call} from {module} {function}: {report:#}"
        );
    }
    let total: u64 = expected.iter().map(|(.., count)| count).sum();
    let in_groups: u64 = groups(report)
        .flat_map(|group| group["calls"].as_object().unwrap().values())
        .map(|stats| stats["count"].as_u64().unwrap())
        .sum();
    assert_eq!(in_groups, total, "{report:#}");
    assert!(
        groups(report).all(|group| group["key"]["caller"] != "other"),
        "{report:#}"
    );
}

#[test]
fn every_call_is_attributed_to_its_module_and_function() {
    let programs = programs(None);
    let scratch = Scratch::new();
    let mut command = scratch.command(&programs.callers, Shim::Default);
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("calls.data"))
        .arg(&programs.plugin_one)
        .arg(&programs.plugin_two);
    run(&mut command, TIMEOUT).assert_success("callers under the shim");
    // From the live statistics (the process is gone: its file, or the
    // aggregate it was retired into) and from its dump at exit.
    assert_every_call_attributed(&report_by_caller(&scratch.stats_dir()));
    assert_every_call_attributed(&report_by_caller(&scratch.dump_dir()));

    let table = common::clean_command(cli())
        .args(["report", "--by", "caller"])
        .arg(scratch.dump_dir())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    for row in [
        "fsync liba.so liba_work+0x",
        "posix_fadvise libb.so libb_work+0x",
        "fsync callers main+0x",
        "fsync plugin_one.so plugin_work+0x",
    ] {
        assert!(table.contains(row), "{row:?} in\n{table}");
    }
}

/// A real Prometheus server scraping `serve` sees which library made the
/// calls: one series per calling module, adding up to the calls made.
#[test]
fn prometheus_sees_the_calls_by_calling_library() {
    let programs = programs(None);
    let scratch = Scratch::new();
    let mut command = scratch.command(&programs.callers, Shim::Default);
    command
        .arg(scratch.file("calls.data"))
        .arg(&programs.plugin_one)
        .arg(&programs.plugin_two);
    run(&mut command, TIMEOUT).assert_success("callers under the shim");
    let serve = serve_support::Serve::start("127.0.0.1:0", &scratch.stats_dir());
    let prometheus = serve_support::Prometheus::start(scratch.path(), serve.address);
    let query = "sum by (caller) (fadvise_shim_caller_calls_total{call=\"fsync\"})";
    let expected = [
        ("callers", 7.0),
        ("liba.so", 3.0),
        ("libb.so", 5.0),
        ("plugin_one.so", 4.0),
        ("plugin_two.so", 2.0),
    ];
    let rows = prometheus.wait_for(query, std::time::Duration::from_secs(15), |rows| {
        rows.len() == expected.len()
    });
    let seen: Vec<(String, f64)> = rows
        .iter()
        .map(|(labels, value)| {
            let labels: Value = serde_json::from_str(labels).unwrap();
            (labels["caller"].as_str().unwrap().to_owned(), *value)
        })
        .collect();
    let expected: Vec<(String, f64)> = expected
        .iter()
        .map(|(caller, value)| (caller.to_string(), *value))
        .collect();
    assert_eq!(seen, expected);
}

/// The kernel's count of each traced call (`strace -f`), and the report.
fn kernel_view(policy: &str) -> (std::collections::HashMap<String, usize>, Value) {
    let programs = programs(None);
    let scratch = Scratch::new();
    let log = scratch.file("strace.log");
    let mut command = scratch.command("strace", Shim::Policy(policy));
    command
        .args(["-f", "-qq", "-e", "trace=fsync,fdatasync,fadvise64", "-o"])
        .arg(&log)
        .arg(&programs.callers)
        .arg(scratch.file("calls.data"))
        .arg(&programs.plugin_one)
        .arg(&programs.plugin_two);
    run(&mut command, TIMEOUT).assert_success("callers under strace");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut seen = std::collections::HashMap::new();
    for line in text.lines() {
        for call in ["fsync", "fdatasync", "fadvise64"] {
            // `PID fsync(3) = 0`; strace's own calls do not reach the log.
            if line.contains(&format!(" {call}(")) {
                *seen.entry(call.to_owned()).or_insert(0) += 1;
            }
        }
    }
    (seen, report_by_caller(&scratch.stats_dir()))
}

#[test]
fn a_caller_rule_drops_only_the_named_modules_calls() {
    let (kernel, report) =
        kernel_view("[[rule]]\ncall = \"*\"\ncaller = [\"*liba*\"]\naction = \"drop\"\n");
    // libb's 5, main's 7 and the plugins' 4 + 2 reach the kernel; liba's
    // 3 of each do not.
    assert_eq!(kernel.get("fsync"), Some(&18), "{kernel:?}");
    assert_eq!(kernel.get("fadvise64"), Some(&5), "{kernel:?}");
    assert_eq!(kernel.get("fdatasync"), Some(&6), "{kernel:?}");
    for call in ["fsync", "posix_fadvise", "fdatasync"] {
        assert_eq!(
            attributed(&report, "liba.so", "liba_work", call, "dropped"),
            3
        );
        assert_eq!(
            attributed(&report, "libb.so", "libb_work", call, "passed"),
            5
        );
    }
}

#[test]
fn a_plugin_loaded_where_an_unloaded_one_was_is_told_apart() {
    // Both plugins are the same code; the second is usually loaded at the
    // first one's address, so its calls come from the very same return
    // addresses. Only the first's calls may be dropped.
    let (kernel, report) = kernel_view(
        "[[rule]]\ncall = \"fsync\"\ncaller = [\"plugin_one.so\"]\naction = \"drop\"\n",
    );
    assert_eq!(kernel.get("fsync"), Some(&(3 + 5 + 7 + 2)), "{kernel:?}");
    assert_eq!(
        attributed(&report, "plugin_one.so", "plugin_work", "fsync", "dropped"),
        4
    );
    assert_eq!(
        attributed(&report, "plugin_two.so", "plugin_work", "fsync", "passed"),
        2
    );
}

#[test]
fn caller_rules_are_checked() {
    let scratch = Scratch::new();
    let good = scratch.policy_file("[[rule]]\ncall = \"fsync\"\ncaller = [\"*libglog*\", \"/usr/lib/**/libnio.so\"]\naction = \"drop\"\n");
    let output = common::clean_command(cli())
        .arg("check")
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("called from *libglog*, /usr/lib/**/libnio.so"),
        "{text}"
    );
    for (bad, message) in [
        ("caller = \"\"", "empty glob"),
        ("caller = [\"lib/libglog.so\"]", "cannot match"),
        ("caller = 3", "caller"),
    ] {
        let file = scratch.policy_file(&format!(
            "[[rule]]\ncall = \"fsync\"\n{bad}\naction = \"drop\"\n"
        ));
        let output = common::clean_command(cli())
            .arg("check")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{bad}: {output:?}");
        let errors = String::from_utf8_lossy(&output.stderr);
        assert!(errors.contains(message), "{bad}: {errors}");
        assert!(errors.contains(".toml:3:"), "{bad}: {errors}");
    }
}

#[test]
fn a_rule_on_both_path_and_caller_needs_both() {
    // liba's fsync on the data file is dropped; a rule for another file
    // from libb, placed first, matches nothing.
    let (kernel, report) = kernel_view(
        "[[rule]]\ncall = \"fsync\"\ncaller = [\"libb.so\"]\npath = [\"/nonexistent/**\"]\naction = \"drop\"\n\n\
         [[rule]]\ncall = \"fsync\"\ncaller = [\"liba.so\"]\npath = [\"**/calls.data\"]\naction = \"drop\"\n",
    );
    assert_eq!(kernel.get("fsync"), Some(&(5 + 7 + 4 + 2)), "{kernel:?}");
    assert_eq!(
        attributed(&report, "liba.so", "liba_work", "fsync", "dropped"),
        3
    );
    assert_eq!(
        attributed(&report, "libb.so", "libb_work", "fsync", "passed"),
        5
    );
}

#[test]
fn racing_threads_share_their_sites_and_a_forked_child_has_its_own() {
    let programs = programs(None);
    let scratch = Scratch::new();
    let finished = run(
        scratch
            .command(&programs.threads, Shim::Default)
            .env(ON_EXIT_ENV, "1")
            .arg(scratch.file("calls.data")),
        TIMEOUT,
    );
    finished.assert_success("threads under the shim");
    let child: u32 = finished.stdout.trim().parse().expect("the child's pid");
    let all = report_by_caller(&scratch.dump_dir());
    for call in ["fsync", "posix_fadvise", "fdatasync"] {
        assert_eq!(
            attributed(&all, "liba.so", "liba_work", call, "count"),
            800,
            "{all:#}"
        );
        assert_eq!(
            attributed(&all, "libb.so", "libb_work", call, "count"),
            5,
            "{all:#}"
        );
    }
    assert_eq!(
        attributed(&all, "threads", "main", "fsync", "count"),
        50,
        "{all:#}"
    );
    // One site per call instruction, however many threads raced to it.
    let liba_groups = groups(&all)
        .filter(|group| group["key"]["function"] == "liba_work")
        .count();
    assert_eq!(liba_groups, 3, "{all:#}");
    let dumps = scratch.dumps();
    let (name, _) = dumps
        .iter()
        .find(|(name, _)| common::is_dump_of(name, "threads", child))
        .unwrap_or_else(|| {
            panic!(
                "no dump of the child {child}: {:?}",
                scratch.dump_dir_listing()
            )
        });
    let of_child = report_by_caller(&scratch.dump_dir().join(name));
    for call in ["fsync", "posix_fadvise", "fdatasync"] {
        assert_eq!(
            attributed(&of_child, "libb.so", "libb_work", call, "count"),
            5
        );
        assert_eq!(
            attributed(&of_child, "liba.so", "liba_work", call, "count"),
            0
        );
    }
}

/// A verdict cached per call site is the policy's of the moment: when the
/// policy file is replaced, liba's sites, which passed, drop from the next
/// reload on, and libb's keep passing.
#[test]
fn a_replaced_policy_changes_verdicts_cached_per_site() {
    let programs = programs(None);
    let scratch = Scratch::new();
    let pass_liba = "[[rule]]\ncall = \"fsync\"\ncaller = [\"liba.so\"]\naction = \"pass\"\n";
    let policy = scratch.policy_file(pass_liba);
    let mut command = scratch.command(&programs.ticker, Shim::Default);
    command
        .env(fadvise_shim_core::policy::POLICY_ENV, &policy)
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("calls.data"))
        .arg("100");
    let mut ticker = common::Running::start(&mut command);
    ticker.wait_for_line(TIMEOUT, |line| line == "tick 10");
    let new = scratch.file("policy.new");
    std::fs::write(&new, pass_liba.replace("pass", "drop")).unwrap();
    std::fs::rename(&new, &policy).unwrap();
    ticker.wait(TIMEOUT).assert_success("ticker");
    let report = report_by_caller(&scratch.dump_dir());
    let liba = |field| attributed(&report, "liba.so", "liba_work", "fsync", field);
    assert_eq!(liba("count"), 100, "{report:#}");
    assert!(liba("passed") >= 10 && liba("dropped") >= 40, "{report:#}");
    assert_eq!(
        attributed(&report, "libb.so", "libb_work", "fsync", "passed"),
        100
    );
}

/// Past the 256 sites a process keeps, calls still count: in their call's
/// totals, shown as `other`, so the groups still add up to every call.
#[test]
fn calls_beyond_the_site_table_are_counted_as_other() {
    let program = common::compile_c("c_callers", "many_sites", "many_sites", &[]);
    let scratch = Scratch::new();
    run(
        scratch
            .command(&program, Shim::Default)
            .env(ON_EXIT_ENV, "1")
            .arg(scratch.file("calls.data")),
        TIMEOUT,
    )
    .assert_success("many_sites under the shim");
    let report = report_by_caller(&scratch.dump_dir());
    let count = |group: &Value| group["calls"]["fsync"]["count"].as_u64().unwrap_or(0);
    let sites: Vec<&Value> = groups(&report)
        .filter(|group| group["key"]["caller"] != "other")
        .collect();
    let other: u64 = groups(&report)
        .filter(|group| group["key"]["caller"] == "other")
        .map(count)
        .sum();
    assert!(sites.len() <= 256, "{} sites", sites.len());
    assert!(sites.iter().all(|group| count(group) == 1), "{report:#}");
    assert!(other >= 320 - 256, "{other} in other");
    assert_eq!(sites.len() as u64 + other, 320, "{report:#}");
    assert_eq!(report["calls"]["fsync"]["count"], 320);
}
