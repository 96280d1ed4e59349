//! `fadvise-shim report` from the outside: synthetic dumps with known counts
//! (written with the same writer the preload library uses) are reported in
//! every format by the built binary, and every format must tell the same
//! counts, checked with real readers: serde_json, PyPI's hdrhistogram,
//! promtool, Python's XML parser, strace.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::{write_dump, Header, NoBudgets, Reason};
use fadvise_shim_core::histogram::index_of;
use fadvise_shim_core::origin::OriginRef;
use fadvise_shim_core::stats::Snapshot;
use serde_json::Value;

/// One call of one synthetic process: passed latencies as (ns, times),
/// then dropped, limited, errors.
struct CallSpec {
    call: Call,
    latencies: &'static [(u64, u64)],
    dropped: u64,
    limited: u64,
    errors: u64,
}

struct ProcessSpec {
    exe: &'static str,
    pid: u32,
    calls: Vec<CallSpec>,
}

const fn spec(
    call: Call,
    latencies: &'static [(u64, u64)],
    dropped: u64,
    limited: u64,
    errors: u64,
) -> CallSpec {
    CallSpec {
        call,
        latencies,
        dropped,
        limited,
        errors,
    }
}

/// Two `dd`s, one `sqlite3`, and a process with a hostile name that only
/// had calls dropped.
fn processes() -> Vec<ProcessSpec> {
    let dd = || {
        vec![
            spec(
                Call::PosixFadvise,
                &[(380, 900), (2_500_000, 3)],
                1000,
                0,
                2,
            ),
            spec(Call::Fsync, &[(5_000_000, 50)], 0, 7, 0),
        ]
    };
    vec![
        ProcessSpec {
            exe: "/usr/bin/dd",
            pid: 100,
            calls: dd(),
        },
        ProcessSpec {
            exe: "/usr/bin/dd",
            pid: 101,
            calls: dd(),
        },
        ProcessSpec {
            exe: "/usr/bin/sqlite3",
            pid: 200,
            calls: vec![
                spec(
                    Call::Fdatasync,
                    &[(1_200_000, 400), (80_000_000, 4)],
                    0,
                    0,
                    1,
                ),
                spec(Call::PosixFadvise, &[(700, 10)], 0, 0, 0),
            ],
        },
        ProcessSpec {
            exe: "/opt/we\"ird\\app",
            pid: 300,
            calls: vec![spec(Call::Msync, &[], 5, 0, 0)],
        },
    ]
}

/// What every format must agree on, per call: (count, passed, dropped,
/// limited, errors), added up here by hand rather than by the code under
/// test.
fn expected_totals() -> BTreeMap<&'static str, [u64; 5]> {
    let mut totals: BTreeMap<&'static str, [u64; 5]> = BTreeMap::new();
    for process in processes() {
        for call in &process.calls {
            let passed: u64 = call.latencies.iter().map(|&(_, times)| times).sum();
            let total = totals.entry(call.call.name()).or_default();
            total[0] += passed + call.dropped + call.limited;
            total[1] += passed;
            total[2] += call.dropped;
            total[3] += call.limited;
            total[4] += call.errors;
        }
    }
    totals
}

fn write_dumps(dir: &Path) {
    for process in processes() {
        let mut snapshot = Snapshot::default();
        for call in &process.calls {
            let stats = snapshot.call_mut(call.call);
            for &(ns, times) in call.latencies {
                stats.buckets[index_of(ns)] += times;
            }
            stats.dropped = call.dropped;
            stats.limited = call.limited;
            stats.errors = call.errors;
        }
        let header = Header {
            origin: OriginRef {
                pid: process.pid,
                exe: process.exe.as_bytes(),
                ..OriginRef::default()
            },
            ppid: 1,
            policy: b"built-in",
            signal: "SIGUSR1",
            reason: Reason::Exit,
            unix_time: 1_764_000_000 + u64::from(process.pid),
            budgets: &NoBudgets,
            processes: 1,
            absorbed: &[],
            stats_dir: None,
        };
        let mut text = Vec::new();
        write_dump(&mut text, &header, &snapshot);
        let name = process.exe.rsplit('/').next().unwrap();
        std::fs::write(dir.join(format!("{name}.{}.dump", process.pid)), text).unwrap();
    }
}

/// A directory of the synthetic dumps plus a file reports must ignore.
fn dump_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_dumps(dir.path());
    std::fs::write(dir.path().join("notes.txt"), "not a dump\n").unwrap();
    dir
}

fn report(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fadvise-shim"))
        .arg("report")
        .args(args)
        .args(paths)
        .output()
        .unwrap()
}

/// The report's stdout, after checking that it succeeded quietly.
fn report_ok(args: &[&str], paths: &[&Path]) -> String {
    let output = report(args, paths);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    assert!(stderr.is_empty(), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

/// Runs a helper script from `tests/report/` with `input` on stdin.
fn python(script: &str, input: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/report")
        .join(script);
    let mut child = Command::new("python3")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

fn json_report(dir: &Path) -> Value {
    serde_json::from_str(&report_ok(&["--format", "json"], &[dir])).unwrap()
}

/// Whether two latencies are the same to the histogram's precision (2
/// significant digits: buckets are at most 1/128 wide).
fn same_bucket(a: f64, b: f64) -> bool {
    (a - b).abs() <= a.max(b) / 100.0 + 1.0
}

#[test]
fn table_by_call_adds_up_every_process() {
    let dir = dump_dir();
    // A dump named again after its directory is not counted twice.
    let again = dir.path().join("dd.100.dump");
    let text = report_ok(&[], &[dir.path(), &again]);
    let mut lines = text.lines();
    let total: u64 = expected_totals().values().map(|counts| counts[0]).sum();
    assert_eq!(
        lines.next().unwrap(),
        format!("4 processes merged, {total} calls")
    );
    assert!(lines.next().unwrap().starts_with("call "), "{text}");
    let rows: BTreeMap<&str, [u64; 5]> = lines
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let numbers = cells[1..6].iter().map(|cell| cell.parse().unwrap());
            (cells[0], numbers.collect::<Vec<u64>>().try_into().unwrap())
        })
        .collect();
    assert_eq!(rows, expected_totals(), "{text}");
}

#[test]
fn table_by_exe_and_by_process_label_their_rows() {
    let dir = dump_dir();
    let by_exe = report_ok(&["--by", "exe"], &[dir.path()]);
    let fadvise = by_exe
        .lines()
        .find(|l| l.starts_with("dd/posix_fadvise "))
        .unwrap();
    let cells: Vec<&str> = fadvise.split_whitespace().collect();
    assert_eq!(
        &cells[1..6],
        &["3806", "1806", "2000", "0", "4"],
        "{by_exe}"
    );
    assert!(by_exe.contains("sqlite3/fdatasync "), "{by_exe}");
    assert!(by_exe.contains("we\"ird\\app/msync "), "{by_exe}");

    let by_process = report_ok(&["--by", "process"], &[dir.path()]);
    for label in [
        "dd[100]/posix_fadvise ",
        "dd[101]/fsync ",
        "sqlite3[200]/posix_fadvise ",
    ] {
        assert!(by_process.contains(label), "{label}: {by_process}");
    }
    let row = by_process
        .lines()
        .find(|l| l.starts_with("dd[101]/fsync "))
        .unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cells[1..6], &["57", "50", "0", "7", "0"], "{by_process}");
}

#[test]
fn json_has_the_product_shape_and_the_same_counts() {
    let dir = dump_dir();
    let report = json_report(dir.path());
    assert_eq!(report["processes"], 4);
    let calls = report["calls"].as_object().unwrap();
    assert_eq!(calls.len(), expected_totals().len());
    for (name, expected) in expected_totals() {
        let call = &calls[name];
        let fields = ["count", "passed", "dropped", "limited", "errors"];
        let got: Vec<u64> = fields
            .iter()
            .map(|field| call[field].as_u64().unwrap())
            .collect();
        assert_eq!(got, expected, "{name}");
        for key in ["min", "p50", "p90", "p99", "p999", "max"] {
            assert!(call["latency_ns"][key].is_u64(), "{name} {key}");
        }
    }
    let fdatasync = &calls["fdatasync"]["latency_ns"];
    assert!(same_bucket(fdatasync["p50"].as_f64().unwrap(), 1_200_000.0));
    assert!(same_bucket(
        fdatasync["max"].as_f64().unwrap(),
        80_000_000.0
    ));
    assert_eq!(calls["msync"]["latency_ns"]["max"], 0, "no passed msync");

    let per_process = report["per_process"].as_array().unwrap();
    let pids: Vec<u64> = per_process
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, [100, 101, 200, 300]);
    let dd = &per_process[0];
    assert_eq!(
        (dd["exe"].as_str(), dd["ppid"].as_u64()),
        (Some("/usr/bin/dd"), Some(1))
    );
    assert_eq!(
        (dd["policy"].as_str(), dd["signal"].as_str()),
        (Some("built-in"), Some("SIGUSR1"))
    );
    assert_eq!(dd["calls"]["posix_fadvise"]["count"], 1903);
    assert_eq!(per_process[3]["exe"], "/opt/we\"ird\\app");
}

#[test]
fn hgrm_blocks_count_every_passed_call() {
    let dir = dump_dir();
    let text = report_ok(&["--format", "hgrm"], &[dir.path()]);
    let mut totals = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# call: ") {
            current = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("#[Max     = ") {
            let (max, total) = rest.split_once(", Total count    = ").unwrap();
            let total: u64 = total.trim_end_matches(']').trim().parse().unwrap();
            let max_us: f64 = max.trim().parse().unwrap();
            totals.insert(current.take().unwrap(), (total, max_us));
        }
    }
    for (name, expected) in expected_totals() {
        assert_eq!(totals[name].0, expected[1], "{name}: {text}");
    }
    assert!(
        same_bucket(totals["fdatasync"].1, 80_000.0),
        "max in µs: {text}"
    );
    assert!(text.contains("       Value     Percentile TotalCount 1/(1-Percentile)\n"));
    assert!(text.contains("#[Buckets =           35, SubBuckets     =          256]"));
}

#[test]
fn hlog_payloads_decode_with_python_hdrhistogram() {
    let dir = dump_dir();
    let log = report_ok(&["--format", "hlog"], &[dir.path()]);
    let mut lines = log.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("#[Logged with fadvise-shim "));
    assert_eq!(lines.next().unwrap(), "#[Histogram log format version 1.3]");
    assert!(lines
        .next()
        .unwrap()
        .starts_with("#[StartTime: 1764000100.000 "));
    assert_eq!(
        lines.next().unwrap(),
        "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    );
    let json = json_report(dir.path());
    let decoded = python("hlog_decode.py", &log);
    let mut seen = Vec::new();
    for line in decoded.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let name = fields[0];
        let call = &json["calls"][name];
        assert_eq!(
            fields[1].parse::<u64>().unwrap(),
            expected_totals()[name][1],
            "{name}"
        );
        let p99: f64 = fields[2].parse().unwrap();
        assert!(
            same_bucket(p99, call["latency_ns"]["p99"].as_f64().unwrap()),
            "{line}"
        );
        seen.push(name.to_string());
    }
    let all: Vec<String> = expected_totals()
        .keys()
        .map(|name| name.to_string())
        .collect();
    assert_eq!(
        seen.iter().collect::<std::collections::BTreeSet<_>>(),
        all.iter().collect()
    );
    // Interval_Max is in milliseconds, as the Java writer's default.
    let fdatasync = log
        .lines()
        .find(|l| l.starts_with("Tag=fdatasync,"))
        .unwrap();
    let max_ms: f64 = fdatasync.split(',').nth(3).unwrap().parse().unwrap();
    assert!(same_bucket(max_ms, 80.0), "{fdatasync}");
}

/// The value of the one sample line that starts with `series`, summed over
/// every line that does (several executables).
fn sample_sum(text: &str, series: &str) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(series))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

#[test]
fn prometheus_passes_promtool_and_tells_the_same_counts() {
    let dir = dump_dir();
    let text = report_ok(&["--format", "prometheus"], &[dir.path()]);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "{}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    for (name, expected) in expected_totals() {
        let call = format!("{{call=\"{name}\",");
        let count = sample_sum(
            &text,
            &format!("fadvise_shim_call_duration_seconds_count{call}"),
        );
        assert_eq!(count, expected[1], "{name}");
        for (verdict, index) in [("passed", 1), ("dropped", 2), ("limited", 3)] {
            let total: u64 = text
                .lines()
                .filter(|l| l.starts_with(&format!("fadvise_shim_calls_total{call}")))
                .filter(|l| l.contains(&format!("verdict=\"{verdict}\"")))
                .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
                .sum();
            assert_eq!(total, expected[index], "{name} {verdict}");
        }
        let errors = sample_sum(&text, &format!("fadvise_shim_call_errors_total{call}"));
        assert_eq!(errors, expected[4], "{name} errors");
    }
    assert_eq!(sample_sum(&text, "fadvise_shim_processes_seen_total{"), 4);
    assert!(
        text.contains("fadvise_shim_processes_seen_total{exe=\"dd\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("exe=\"we\\\"ird\\\\app\""),
        "escaped label: {text}"
    );
    // 900 of each dd's fadvise calls took 380 ns: at most 1023 ns, over
    // 255 ns (bounds are 2^k - 1 ns, exact on HDR buckets).
    let bucket = |le: &str| {
        let series = format!(
            "fadvise_shim_call_duration_seconds_bucket{{call=\"posix_fadvise\",exe=\"dd\",le=\"{le}\"}} "
        );
        let line = text.lines().find(|l| l.starts_with(&series)).unwrap();
        line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(
        (bucket("0.000000255"), bucket("0.000001023"), bucket("+Inf")),
        (0, 1800, 1806)
    );
}

#[test]
fn svg_draws_one_series_per_call_with_latencies() {
    let dir = dump_dir();
    let svg = report_ok(&["--format", "svg"], &[dir.path()]);
    let parsed = python("svg_series.py", &svg);
    let mut lines = parsed.lines();
    let with_latencies = expected_totals().values().filter(|c| c[1] > 0).count();
    assert_eq!(
        lines.next().unwrap().parse::<usize>().unwrap(),
        with_latencies,
        "{svg}"
    );
    let texts: Vec<&str> = lines.collect();
    for (name, expected) in expected_totals() {
        assert_eq!(
            texts.contains(&name),
            expected[1] > 0,
            "{name} in legend: {texts:?}"
        );
    }
    assert!(
        texts.iter().any(|t| t.contains("latency by percentile")),
        "{texts:?}"
    );
    assert!(texts.contains(&"99.9%"), "{texts:?}");
}

#[test]
fn output_file_is_replaced_atomically_in_every_format() {
    let dir = dump_dir();
    let out_dir = tempfile::tempdir().unwrap();
    let target = out_dir.path().join("fadvise.prom");
    for format in ["table", "json", "hgrm", "hlog", "prometheus", "svg"] {
        std::fs::write(&target, "old\n").unwrap();
        let printed = report_ok(&["--format", format], &[dir.path()]);
        let target_arg = target.to_str().unwrap();
        // strace shows, from outside, that the file was never written in
        // place: the bytes went to another name that was then renamed.
        let traced = Command::new("strace")
            .args(["-f", "-e", "trace=openat,rename,renameat,renameat2", "-o"])
            .arg(out_dir.path().join("trace"))
            .arg(env!("CARGO_BIN_EXE_fadvise-shim"))
            .args(["report", "--format", format, "--output", target_arg])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            traced.status.success(),
            "{}",
            String::from_utf8_lossy(&traced.stderr)
        );
        let trace = std::fs::read_to_string(out_dir.path().join("trace")).unwrap();
        std::fs::remove_file(out_dir.path().join("trace")).unwrap();
        assert!(
            !trace.contains(&format!("\"{target_arg}\", O_")),
            "opened in place: {trace}"
        );
        assert!(
            trace.contains(&format!("\"{target_arg}\"")),
            "renamed over: {trace}"
        );
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            printed,
            "{format}"
        );
        let left: Vec<PathBuf> = std::fs::read_dir(out_dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(
            left,
            std::slice::from_ref(&target),
            "no temporary file left behind"
        );
    }
}

#[test]
fn broken_dumps_are_errors_with_file_and_line() {
    let dir = dump_dir();
    let good = dir.path().join("dd.100.dump");
    let text = std::fs::read_to_string(&good).unwrap();
    let cut = dir.path().join("cut.dump");
    std::fs::write(&cut, &text[..text.len() - 4]).unwrap();

    let output = report(&[], &[&good, &cut]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!("fadvise-shim: {}: line ", cut.display())),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    // In a directory a broken `*.dump` is an error too.
    let output = report(&[], &[dir.path()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cut.dump: line "));

    // A file named explicitly is read even without the suffix.
    let notes = dir.path().join("notes.txt");
    let output = report(&[], &[&notes]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr,
        format!(
            "fadvise-shim: {}: line 1: not a fadvise-shim dump (version 1)\n",
            notes.display()
        )
    );
}

#[test]
fn no_statistics_is_an_error() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "x\n").unwrap();
    let output = report(&["--format", "json"], &[empty.path()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(
            "fadvise-shim: no statistics (stats files, retained aggregates or dumps) in "
        ),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    let output = report(&[], &[&empty.path().join("missing.dump")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("missing.dump: No such file"));
}

#[test]
fn a_closed_pipe_ends_the_report_quietly() {
    let dir = dump_dir();
    let binary = env!("CARGO_BIN_EXE_fadvise-shim");
    let output = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" report --format hgrm \"$1\" | head -1")
        .arg(binary)
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8(output.stdout).unwrap().lines().count(), 1);

    // A pipe whose reader is gone before the first write, deterministically:
    // the report ends as `yes | head` does (SIGPIPE, or exit 0), silently.
    let script = "import os, subprocess, sys\n\
                  r, w = os.pipe()\n\
                  os.close(r)\n\
                  done = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)\n\
                  print(done.returncode, len(done.stderr))\n";
    let result = Command::new("python3")
        .args(["-c", script, binary, "report", "--format", "svg"])
        .arg(dir.path())
        .output()
        .unwrap();
    let result = String::from_utf8(result.stdout).unwrap();
    let killed_by_sigpipe = format!("-{} 0\n", 13);
    assert!(result == "0 0\n" || result == killed_by_sigpipe, "{result}");
}
