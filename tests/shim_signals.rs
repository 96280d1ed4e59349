//! The dump signal: a live process dumps on SIGUSR1 and keeps running, and
//! a program with a SIGUSR1 disposition of its own (its own handler, or
//! SIG_IGN) sees exactly what it would see without the shim, `dd`'s
//! statistics on SIGUSR1 included.

mod common;

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use common::{c_program, poll, run, table_row, Running, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::parse_dump;

/// How long a signalled process may take to write its dump (issue 2).
const DUMP_DEADLINE: Duration = Duration::from_secs(1);

#[test]
fn sleeping_process_dumps_on_sigusr1_and_keeps_running() {
    let scratch = Scratch::new();
    let mut command = scratch.command(c_program("sleeper"), Shim::Default);
    command.arg(scratch.file("small.data"));
    let mut sleeper = Running::start(&mut command);
    sleeper.wait_for_line(TIMEOUT, |line| line == "ready");
    let pid = sleeper.pid();

    sleeper.signal(libc::SIGUSR1);
    let (text, took) = scratch
        .wait_for_dump(pid, TIMEOUT)
        .unwrap_or_else(|| panic!("no dump; stderr: {}", sleeper.stderr_text()));
    assert!(took <= DUMP_DEADLINE, "the dump took {took:?}");
    let dump = parse_dump(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert_eq!((dump.origin.pid, dump.exe_name()), (pid, "sleeper"));
    assert_eq!(
        (dump.reason.as_str(), dump.signal.as_str()),
        ("signal", "SIGUSR1")
    );
    assert_eq!(dump.policy, "built-in");
    assert!(
        text.lines()
            .any(|line| line.split_whitespace().next() == Some("call")),
        "{text}"
    );
    assert_eq!(
        table_row(&text, Call::PosixFadvise),
        Some(vec![3, 3, 0, 0, 0]),
        "{text}"
    );
    assert_eq!(
        table_row(&text, Call::Fsync),
        Some(vec![2, 2, 0, 0, 0]),
        "{text}"
    );

    // Still alive: it answers a second signal with a new dump file
    // (replaced by rename, so a new inode).
    let path = scratch.dump_file_of(pid).unwrap();
    let first = std::fs::metadata(&path).unwrap().ino();
    sleeper.signal(libc::SIGUSR1);
    let replaced = poll(TIMEOUT, || {
        let inode = std::fs::metadata(&path).ok()?.ino();
        (inode != first).then_some(())
    });
    assert!(replaced.is_some(), "no second dump");
    assert!(sleeper.is_alive(), "the dump signal ended the process");
    assert_eq!(sleeper.stderr_text(), "");
}

/// Runs `own_handler MODE` to the end, sending SIGUSR1 whenever it has
/// counted the previous one, and returns its output.
fn own_handler(scratch: &Scratch, shim: Shim, mode: &str) -> common::Finished {
    let mut command = scratch.command(c_program("own_handler"), shim);
    command.arg(mode).arg(scratch.file(&format!("{mode}.data")));
    let mut program = Running::start(&mut command);
    program.wait_for_line(TIMEOUT, |line| line == "ready");
    // The program raised the first one itself; these two come from outside.
    for count in 1..=2 {
        program.wait_for_line(TIMEOUT, |line| line == format!("count {count}"));
        program.signal(libc::SIGUSR1);
    }
    let finished = program.wait(TIMEOUT);
    finished.assert_success(mode);
    assert!(finished.stdout.contains("count 3\n"), "{finished}");
    finished
}

fn check_own_handler(mode: &str) {
    let scratch = Scratch::new();
    let without = own_handler(&scratch, Shim::Off, mode);
    let with = own_handler(&scratch, Shim::Default, mode);
    assert_eq!(
        with.stdout, without.stdout,
        "{mode}: the program saw the shim"
    );
    assert_eq!(with.stderr, "", "{mode}: the shim printed something");
    // The shim dumped too (the program had made calls before the signals).
    let dumps = scratch.dumps();
    assert_eq!(dumps.len(), 1, "{mode}: {:?}", scratch.dump_dir_listing());
    let dump = &dumps[0].1;
    assert_eq!(dump.reason, "signal");
    assert_eq!(dump.stats.call(Call::PosixFadvise).count(), 1);
    assert_eq!(dump.stats.call(Call::Fdatasync).count(), 1);
}

#[test]
fn own_sigaction_handler_installed_before_any_call() {
    check_own_handler("sigaction-first");
}

#[test]
fn own_sigaction_handler_installed_after_calls() {
    check_own_handler("calls-first");
}

#[test]
fn own_signal_handler_installed_before_any_call() {
    check_own_handler("signal-first");
}

#[test]
fn own_signal_handler_installed_after_calls() {
    check_own_handler("signal-after");
}

#[test]
fn ignored_and_default_dispositions_read_back_unchanged() {
    let scratch = Scratch::new();
    let outputs: Vec<common::Finished> = [Shim::Off, Shim::Default]
        .into_iter()
        .map(|shim| {
            let mut command = scratch.command(c_program("own_handler"), shim);
            command.arg("ignore").arg(scratch.file("ignore.data"));
            let finished = run(&mut command, TIMEOUT);
            finished.assert_success("own_handler ignore");
            finished
        })
        .collect();
    let (without, with) = (&outputs[0], &outputs[1]);
    assert!(
        without.stdout.contains("ignored: handler=SIG_IGN"),
        "{without}"
    );
    assert!(
        without.stdout.contains("default: previous=SIG_IGN"),
        "{without}"
    );
    assert_eq!(with.stdout, without.stdout, "the program saw the shim");
    assert_eq!(with.stderr, "");
}

/// Whether `pid` has a handler for SIGUSR1 (/proc/PID/status `SigCgt`).
fn catches_sigusr1(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGUSR1 - 1)) != 0)
}

#[test]
fn dd_still_prints_its_statistics_on_sigusr1() {
    let scratch = Scratch::new();
    let mut command = scratch.command("dd", Shim::Default);
    command.args(["if=/dev/zero", "of=/dev/null", "bs=512"]);
    let mut dd = Running::start(&mut command);
    let pid = dd.pid();
    // Until something catches SIGUSR1, it would kill dd.
    assert!(poll(TIMEOUT, || catches_sigusr1(pid).then_some(())).is_some());
    // dd installs its handler early in main; until then a signal may reach
    // only the shim, so keep asking.
    let printed = poll(TIMEOUT, || {
        if dd.stderr_text().contains("records in") {
            return Some(());
        }
        dd.signal(libc::SIGUSR1);
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    let stderr = dd.stderr_text();
    assert!(
        printed.is_some(),
        "dd printed no statistics; stderr:\n{stderr}"
    );
    assert!(dd.is_alive(), "SIGUSR1 ended dd; stderr:\n{stderr}");
    // Nothing from the shim among dd's own lines.
    for line in stderr.lines() {
        assert!(
            line.contains("records in") || line.contains("records out") || line.contains("copied"),
            "unexpected line on dd's stderr: {line:?}\n{stderr}"
        );
    }
}
