//! The same library in musl programs (built here with Debian's `musl-gcc`,
//! musl 1.2.3) as in glibc ones: results and `errno` unchanged, drops kept
//! from the kernel (a seccomp filter), dumps on `SIGUSR1` and on a
//! `SIGRTMIN+N` that is musl's number, stats files the host's `report`
//! reads beside a glibc process's, limits with `exe` and `path` rules, a
//! policy replaced while the program runs, fork, threads, `caller` rules answered
//! from the lock-free module table (musl has no `_dl_find_object`), a
//! signal handler calling `fsync` while `main` allocates, and no call into
//! the program's allocator (musl lets a program replace `malloc`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{compile_musl, musl_program, run, Running, Scratch, Shim, DROP_ALL, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::ON_EXIT_ENV;
use serde_json::Value;

/// musl's first real-time signal: it keeps 32 to 34 for itself (glibc 32
/// and 33), so `SIGRTMIN+N` must be read from the running libc.
const MUSL_SIGRTMIN: i32 = 35;

fn musl(name: &str) -> PathBuf {
    let program = musl_program(name);
    let interpreter = std::fs::read(&program).unwrap();
    assert!(
        interpreter
            .windows(24)
            .any(|window| window == b"/lib/ld-musl-x86_64.so.1"),
        "{} is not a musl program",
        program.display()
    );
    program
}

/// `probe`'s lines (`CLASS NAME ret=R errno=E`), under `shim`.
fn probe(scratch: &Scratch, shim: Shim) -> String {
    let mut command = scratch.command(musl("probe"), shim);
    command.arg(scratch.path());
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("probe");
    assert!(finished.stdout.lines().count() > 80, "{finished}");
    finished.stdout
}

#[test]
fn every_call_gives_the_same_result_and_errno_with_and_without_the_shim() {
    let scratch = Scratch::new();
    let without = probe(&scratch, Shim::Off);
    assert_eq!(probe(&scratch, Shim::Default), without, "built-in default");
    let pass_all = "[[rule]]\ncall = \"*\"\naction = \"pass\"\n";
    assert_eq!(
        probe(&scratch, Shim::Policy(pass_all)),
        without,
        "pass rule"
    );
    // Dropped: wrong arguments fail as the real call does (class E), calls
    // that are not intercepted are untouched (P), the rest succeed (S).
    let dropped = probe(&scratch, Shim::Policy(DROP_ALL));
    let mut wrong = Vec::new();
    for (real, dropped) in without.lines().zip(dropped.lines()) {
        let expected = match real.split(' ').next() {
            Some("E" | "P") => real.to_string(),
            _ => format!("{} ret=0 errno=12345", real.rsplitn(3, ' ').nth(2).unwrap()),
        };
        if dropped != expected {
            wrong.push(format!("{dropped} (expected {expected})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "dropped calls that differ:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn dropped_calls_never_reach_the_kernel() {
    let scratch = Scratch::new();
    let view = |shim| {
        let mut command = scratch.command(musl("kernel_view"), shim);
        command.arg(scratch.path());
        let finished = run(&mut command, TIMEOUT);
        finished.assert_success("kernel_view");
        let lines: Vec<String> = finished
            .stdout
            .lines()
            .filter(|line| line.contains(" ret="))
            .map(str::to_owned)
            .collect();
        assert_eq!(lines.len(), 16, "{finished}");
        lines
    };
    for line in view(Shim::Policy(DROP_ALL)) {
        assert!(
            line.ends_with(" ret=0 errno=12345"),
            "reached the kernel: {line}"
        );
    }
    // Without a drop, the seccomp filter answers every one.
    for line in view(Shim::Default) {
        let expected = if line.starts_with("posix_fadvise") {
            " ret=1 errno=12345" // EPERM returned, errno untouched
        } else {
            " ret=-1 errno=1"
        };
        assert!(
            line.ends_with(expected),
            "the filter did not answer: {line}"
        );
    }
}

/// A musl `sleeper` (3 posix_fadvise, 2 fsync, then waits), started.
fn sleeper(scratch: &Scratch, shim: Shim) -> Running {
    let mut command = scratch.command(musl("sleeper"), shim);
    command.arg(scratch.file("sleeper.data"));
    let mut running = Running::start(&mut command);
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    running
}

fn dumped_counts(scratch: &Scratch, running: &Running) -> (u64, u64) {
    scratch
        .wait_for_dump(running.pid(), TIMEOUT)
        .expect("a dump appears");
    let dumps = scratch.dumps();
    let (_, dump) = dumps
        .iter()
        .find(|(name, _)| common::is_dump_of(name, "sleeper", running.pid()))
        .expect("the sleeper's dump");
    (
        dump.stats.call(Call::PosixFadvise).count(),
        dump.stats.call(Call::Fsync).count(),
    )
}

#[test]
fn sigusr1_and_sigrtmin_dumps_use_musls_signal_numbers() {
    let scratch = Scratch::new();
    let running = sleeper(&scratch, Shim::Default);
    running.signal(libc::SIGUSR1);
    assert_eq!(dumped_counts(&scratch, &running), (3, 2));
    running.signal(libc::SIGKILL);

    let scratch = Scratch::new();
    let running = sleeper(&scratch, Shim::Policy("[dump]\nsignal = \"SIGRTMIN+2\"\n"));
    running.signal(MUSL_SIGRTMIN + 2);
    assert_eq!(dumped_counts(&scratch, &running), (3, 2));
    running.signal(libc::SIGKILL);
}

/// `report --format json` of the CLI built for the host (glibc).
fn report(paths: &[&Path], extra: &[&str]) -> Value {
    let output = Command::new(common::cli())
        .args(["report", "--format", "json"])
        .args(extra)
        .args(paths)
        .output()
        .expect("report runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("report prints JSON")
}

fn count(report: &Value, call: &str) -> u64 {
    report["calls"][call]["count"].as_u64().unwrap_or(0)
}

#[test]
fn report_reads_musl_stats_live_killed_and_exited_beside_glibc_ones() {
    let scratch = Scratch::new();
    let stats = scratch.stats_dir();
    let musl_sleeper = sleeper(&scratch, Shim::Default);
    let live = report(&[&stats], &[]);
    assert_eq!(
        (live["processes"].as_u64(), count(&live, "fsync")),
        (Some(1), 2)
    );
    // A glibc process of the same directory, merged with it.
    let mut command = scratch.command(common::c_program("sleeper"), Shim::Default);
    command.arg(scratch.file("glibc.data"));
    let mut glibc_sleeper = Running::start(&mut command);
    glibc_sleeper.wait_for_line(TIMEOUT, |line| line == "ready");
    let both = report(&[&stats], &["--by", "exe"]);
    assert_eq!(
        (both["processes"].as_u64(), count(&both, "posix_fadvise")),
        (Some(2), 6)
    );
    // SIGKILLed: its counts stay.
    musl_sleeper.signal(libc::SIGKILL);
    let _ = musl_sleeper.wait(TIMEOUT);
    let killed = report(&[&stats], &[]);
    assert_eq!(count(&killed, "fsync"), 4, "{killed}");
    glibc_sleeper.signal(libc::SIGKILL);
    let _ = glibc_sleeper.wait(TIMEOUT);
    // Exited: a musl probe, added.
    probe(&scratch, Shim::Default);
    let exited = report(&[&stats], &[]);
    assert_eq!(exited["processes"].as_u64(), Some(3), "{exited}");
    assert!(count(&exited, "fsync") > 4, "{exited}");
}

#[test]
fn forks_and_threads_count_every_call() {
    let scratch = Scratch::new();
    let mut command = scratch.command(musl("threads"), Shim::Default);
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("threads.data"))
        .args(["8", "2000"]);
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("threads");
    assert!(
        finished.stdout.contains("calls 16000 failed 0"),
        "{finished}"
    );
    let dumps = scratch.dumps();
    assert_eq!(dumps.len(), 1, "{dumps:?}");
    assert_eq!(dumps[0].1.stats.call(Call::PosixFadvise).count(), 16000);

    let scratch = Scratch::new();
    let mut command = scratch.command(musl("fork_children"), Shim::Default);
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("fork.data"))
        .arg("5");
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("fork_children");
    let dumps = scratch.dumps();
    for line in finished.stdout.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let (pid, fadvise): (u32, u64) = match words[..] {
            ["child", pid, calls] => (pid.parse().unwrap(), calls.parse().unwrap()),
            ["parent", pid, "posix_fadvise", calls, ..] => {
                (pid.parse().unwrap(), calls.parse().unwrap())
            }
            _ => panic!("unexpected line {line}"),
        };
        let (_, dump) = dumps
            .iter()
            .find(|(name, _)| common::is_dump_of(name, "fork_children", pid))
            .unwrap_or_else(|| panic!("no dump of {pid}: {finished}"));
        assert_eq!(
            dump.stats.call(Call::PosixFadvise).count(),
            fadvise,
            "{line}"
        );
    }
    assert_eq!(dumps.len(), finished.stdout.lines().count(), "{finished}");
}

#[test]
fn caller_rules_and_call_sites_work_without_dl_find_object() {
    let library = |name: &str, output: &str| {
        let soname = format!("-Wl,-soname,{output}");
        compile_musl("c_callers", name, output, &["-shared", "-fPIC", &soname])
    };
    let liba = library("liba", "liba.so");
    let libb = library("libb", "libb.so");
    let plugin_one = library("plugin", "plugin_one.so");
    let plugin_two = library("plugin", "plugin_two.so");
    let dirs = format!(
        "-Wl,-rpath,{}:{}",
        liba.parent().unwrap().display(),
        libb.parent().unwrap().display()
    );
    let callers = compile_musl(
        "c_callers",
        "callers",
        "callers",
        &[liba.to_str().unwrap(), libb.to_str().unwrap(), &dirs],
    );
    let scratch = Scratch::new();
    let policy =
        "[[rule]]\ncall = \"fsync\"\ncaller = [\"*liba*\", \"plugin_two.so\"]\naction = \"drop\"\n";
    let mut command = scratch.command(&callers, Shim::Policy(policy));
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("calls.data"))
        .arg(&plugin_one)
        .arg(&plugin_two);
    run(&mut command, TIMEOUT).assert_success("callers");
    let by_caller = report(&[&scratch.dump_dir()], &["--by", "caller"]);
    let attributed = |module: &str, field: &str| -> u64 {
        by_caller["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|group| {
                group["key"]["module"]
                    .as_str()
                    .is_some_and(|path| path.ends_with(module))
            })
            .map(|group| group["calls"]["fsync"][field].as_u64().unwrap_or(0))
            .sum()
    };
    // liba 3, libb 5, main 7, the plugins 4 and 2 (PRODUCT.md: callers.c).
    assert_eq!(attributed("/liba.so", "dropped"), 3, "{by_caller:#}");
    assert_eq!(attributed("/libb.so", "count"), 5, "{by_caller:#}");
    assert_eq!(attributed("/libb.so", "dropped"), 0, "{by_caller:#}");
    assert_eq!(attributed("/callers", "count"), 7, "{by_caller:#}");
    assert_eq!(attributed("/plugin_one.so", "dropped"), 0, "{by_caller:#}");
    assert_eq!(attributed("/plugin_two.so", "dropped"), 2, "{by_caller:#}");
}

#[test]
fn a_handler_calling_fsync_while_main_allocates_never_fails() {
    let program = compile_musl("c_heap", "handler_stress", "handler_stress", &[]);
    // With a `caller` rule, each new call site is looked up in the module
    // table from inside the handler.
    let caller_rule = "[[rule]]\ncall = \"fsync\"\ncaller = [\"*nowhere*\"]\naction = \"drop\"\n";
    let failures: Vec<String> = (0..10)
        .filter_map(|index| {
            let scratch = Scratch::new();
            let shim = if index % 2 == 0 {
                Shim::Default
            } else {
                Shim::Policy(caller_rule)
            };
            let mut command = scratch.command(&program, shim);
            command
                .env(ON_EXIT_ENV, "1")
                .arg(scratch.file("synced"))
                .arg("400");
            let finished = run(&mut command, TIMEOUT);
            let made: Option<u64> = finished
                .stdout
                .lines()
                .find_map(|line| line.strip_prefix("handler calls "))
                .and_then(|count| count.parse().ok());
            let dumps = scratch.dumps();
            let counted = dumps.first().map(|(_, dump)| {
                dump.stats.call(Call::Fsync).count() + dump.stats.call(Call::Fdatasync).count()
            });
            let good = finished.status.success() && made.is_some_and(|made| made > 0);
            (!good || made != counted)
                .then(|| format!("run {index}: counted {counted:?}; {finished}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_shim_never_calls_the_programs_allocator() {
    let spy = compile_musl("c_musl", "alloc_spy", "alloc_spy.so", &["-shared", "-fPIC"]);
    let program = compile_musl("c_heap", "every_call", "every_call", &[]);
    let scratch = Scratch::new();
    let mut command = scratch.command(&program, Shim::Default);
    command
        .env(
            "LD_PRELOAD",
            format!("{}:{}", common::library().display(), spy.display()),
        )
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("every-call.data"));
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("every_call under the spy");
    let totals: Vec<(u64, u64)> = finished
        .stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("alloc-spy: ")?;
            let (calls, rest) = rest.split_once(" calls, ")?;
            Some((
                calls.parse().ok()?,
                rest.strip_suffix(" from the shim")?.parse().ok()?,
            ))
        })
        .collect();
    // The parent and its forked child each report at exit; the spy saw the
    // program's own allocations (stdio), so it was in the allocation path.
    assert_eq!(totals.len(), 2, "{finished}");
    assert!(
        totals
            .iter()
            .all(|&(calls, from_shim)| calls > 0 && from_shim == 0),
        "{finished}"
    );
    assert_eq!(scratch.dumps().len(), 2, "{finished}");
}

/// A limit on one file of one executable: the kernel sees about `rate`
/// calls a second plus the burst; another file, none of the limit.
#[test]
fn limits_with_exe_and_path_rules() {
    let program = compile_musl("c_policy", "rate_loop", "rate_loop", &["-pthread"]);
    let scratch = Scratch::new();
    let policy = "[[rule]]\ncall = \"posix_fadvise\"\nexe = [\"**/rate_loop\"]\n\
                  path = [\"**/limited.data\"]\naction = \"limit\"\nrate = 100\nburst = 10\n";
    let counts = |file: &str| -> Vec<u64> {
        let mut command = scratch.command(&program, Shim::Policy(policy));
        command.arg(scratch.file(file)).args(["1", "1"]);
        std::fs::write(scratch.file(file), b"data").unwrap();
        let finished = run(&mut command, TIMEOUT);
        finished.assert_success("rate_loop");
        let words: Vec<&str> = finished.stdout.split_whitespace().collect();
        assert_eq!(words.len(), 8, "{finished}");
        [1, 3, 5, 7]
            .iter()
            .map(|&at| words[at].parse().unwrap())
            .collect()
    };
    let limited = counts("limited.data");
    let (calls, kernel, answered) = (limited[0], limited[1], limited[2]);
    assert!((60..=250).contains(&kernel), "{limited:?}");
    assert_eq!(kernel + answered, calls, "{limited:?}");
    let other = counts("other.data");
    assert_eq!((other[1], other[2]), (other[0], 0), "{other:?}");
}

/// A policy file replaced while a musl program runs takes effect.
#[test]
fn a_replaced_policy_takes_effect_live() {
    let program = compile_musl("c_policy", "ticker", "ticker", &[]);
    let scratch = Scratch::new();
    let policy = scratch.file("live.toml");
    std::fs::write(&policy, "[[rule]]\ncall = \"*\"\naction = \"pass\"\n").unwrap();
    let mut command = scratch.command(&program, Shim::Default);
    command
        .env("FADVISE_SHIM_POLICY", &policy)
        .arg(scratch.file("ticker.data"))
        .args(["20000", "0"]);
    std::fs::write(scratch.file("ticker.data"), b"data").unwrap();
    let mut ticker = Running::start(&mut command);
    ticker.wait_for_line(TIMEOUT, |line| line.ends_with(" ret=1"));
    let replacement = scratch.file("live.new");
    std::fs::write(&replacement, DROP_ALL).unwrap();
    std::fs::rename(&replacement, &policy).unwrap();
    ticker.wait_for_line(TIMEOUT, |line| line.ends_with(" ret=0"));
    ticker.signal(libc::SIGKILL);
}

/// The library exports functions musl lacks (`close_range`, `closefrom`,
/// `sysv_signal`, `dlvsym`); a musl program that finds them with `dlsym`
/// gets glibc's behaviour from their fallbacks (the system call, a
/// one-shot handler through `sigaction`) and, for `dlvsym`, musl's answer:
/// no such symbol.
#[test]
fn glibc_only_exports_work_without_their_glibc_functions() {
    let program = compile_musl("c_musl", "glibc_only", "glibc_only", &[]);
    let scratch = Scratch::new();
    let without = run(&mut scratch.command(&program, Shim::Off), TIMEOUT);
    without.assert_success("glibc_only");
    assert_eq!(
        without.stdout,
        "close_range absent\nclosefrom absent\nsysv_signal absent\ndlvsym absent\n"
    );
    let with = run(&mut scratch.command(&program, Shim::Default), TIMEOUT);
    with.assert_success("glibc_only under the shim");
    assert_eq!(
        with.stdout,
        "close_range closed=1 ret=0\nclose_range_bad ret=-1 errno=22\nclosefrom closed=1\n\
         sysv_signal handler=1 flags=resethand,nodefer\ndlvsym null=1\n"
    );
}
