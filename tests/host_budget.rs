//! `scope = "host"`: every process whose policy has a host-scope rule of the
//! same name draws from one budget, kept in a shared file. Counted from the
//! kernel's side: `rate_loop` calls posix_fadvise in a tight loop under a
//! seccomp filter that answers EPERM, so the calls that reached the kernel
//! are the calls the budget let through.

mod common;
mod policy_common;

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::{run, Finished, Running, Scratch, Shim, TIMEOUT};
use policy_common::policy_program;

const RATE: u64 = 300;
const BURST: u64 = 30;

fn policy(limits_dir: &Path, scope: &str, rate: u64) -> String {
    format!(
        "[limits]\ndir = {:?}\n\n[[rule]]\nname = \"shared-fadvise\"\ncall = \"posix_fadvise\"\naction = \"limit\"\nrate = {rate}\nburst = {BURST}\nscope = \"{scope}\"\n",
        limits_dir.display()
    )
}

/// Calls that reached the kernel, from `rate_loop`'s own count.
fn kernel_calls(finished: &Finished) -> u64 {
    let cells: Vec<&str> = finished.stdout.split_whitespace().collect();
    assert!(
        cells.len() == 8 && cells[2] == "kernel",
        "unexpected output {finished}"
    );
    cells[3].parse().expect("a count")
}

fn rate_loop(scratch: &Scratch, policy: &str, seconds: u64) -> Running {
    let mut command = scratch.command(policy_program("rate_loop"), Shim::Policy(policy));
    command
        .arg(scratch.file("data"))
        .arg("1")
        .arg(seconds.to_string());
    Running::start(&mut command)
}

/// Runs `processes` copies at once for `seconds`; returns the calls that
/// reached the kernel in all of them, and their stderr.
fn together(scratch: &Scratch, policy: &str, processes: usize, seconds: u64) -> (u64, String) {
    let running: Vec<Running> = (0..processes)
        .map(|_| rate_loop(scratch, policy, seconds))
        .collect();
    let mut total = 0;
    let mut stderr = String::new();
    for process in running {
        let finished = process.wait(TIMEOUT);
        finished.assert_success("rate_loop");
        total += kernel_calls(&finished);
        stderr.push_str(&finished.stderr);
    }
    (total, stderr)
}

fn assert_within(value: u64, expected: u64, percent: u64, what: &str) {
    let (low, high) = (
        expected * (100 - percent) / 100,
        expected * (100 + percent) / 100,
    );
    assert!(
        (low..=high).contains(&value),
        "{what}: {value}, expected {expected} ± {percent}%"
    );
}

#[test]
fn three_processes_share_one_budget() {
    let scratch = Scratch::new();
    let limits = scratch.file("limits");
    let (total, stderr) = together(&scratch, &policy(&limits, "host", RATE), 3, 2);
    assert_eq!(stderr, "");
    assert_within(total, RATE * 2 + BURST, 15, "host scope, 3 processes");

    let budget = std::fs::read_dir(&limits)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "budget"))
        .expect("a budget file");
    let meta = std::fs::metadata(&budget).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{budget:?}");
    // SAFETY: geteuid has no preconditions.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });

    let (total, stderr) = together(&scratch, &policy(&limits, "process", RATE), 3, 2);
    assert_eq!(stderr, "");
    assert_within(
        total,
        3 * (RATE * 2 + BURST),
        15,
        "process scope, 3 processes",
    );
}

#[test]
fn processes_killed_mid_update_leave_the_budget_working() {
    let scratch = Scratch::new();
    let limits = scratch.file("limits");
    let policy = policy(&limits, "host", RATE);
    let drawing = rate_loop(&scratch, &policy, 3);
    for _ in 0..20 {
        let victim = rate_loop(&scratch, &policy, 10);
        std::thread::sleep(Duration::from_millis(40));
        victim.signal(libc::SIGKILL);
        drop(victim);
    }
    let finished = drawing.wait(TIMEOUT);
    finished.assert_success("rate_loop");
    // Afterwards the budget still grants its rate: no word left locked.
    let (total, stderr) = together(&scratch, &policy, 2, 2);
    assert_eq!(stderr, "");
    assert!(
        (RATE * 2 * 85 / 100..=(RATE * 2 + BURST) * 115 / 100).contains(&total),
        "{total} calls passed after the kill loop"
    );
}

#[test]
fn a_corrupted_or_deleted_budget_file_is_recreated() {
    let scratch = Scratch::new();
    let limits = scratch.file("limits");
    let policy = policy(&limits, "host", RATE);
    let (_, stderr) = together(&scratch, &policy, 1, 1);
    assert_eq!(stderr, "");
    let budget = std::fs::read_dir(&limits)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    std::fs::write(&budget, vec![0xA5u8; 4096]).unwrap();
    let (total, stderr) = together(&scratch, &policy, 2, 2);
    assert_eq!(stderr, "", "a corrupted file is replaced silently");
    assert_within(total, RATE * 2 + BURST, 15, "after corruption");

    std::fs::remove_file(&budget).unwrap();
    let (total, stderr) = together(&scratch, &policy, 2, 2);
    assert_eq!(stderr, "");
    assert_within(total, RATE * 2 + BURST, 15, "after deletion");

    // Deleted while processes draw from it: they notice within a second
    // and map the new file; everyone keeps working.
    let running: Vec<Running> = (0..2).map(|_| rate_loop(&scratch, &policy, 3)).collect();
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::remove_file(&budget).unwrap();
    let mut total = 0;
    for process in running {
        let finished = process.wait(TIMEOUT);
        finished.assert_success("rate_loop");
        assert_eq!(finished.stderr, "");
        total += kernel_calls(&finished);
    }
    // One budget for 3 s, plus at most one more burst for the new file
    // (and a second of split budgets while the deletion is noticed).
    assert!(
        (RATE * 3 * 85 / 100..=(RATE * 4 + 2 * BURST) * 115 / 100).contains(&total),
        "{total} calls passed across the deletion"
    );
    assert!(budget.exists(), "the budget file is recreated");
}

#[test]
fn a_planted_symlink_costs_one_line_and_a_budget_of_its_own() {
    let scratch = Scratch::new();
    let limits = scratch.file("limits");
    std::fs::create_dir(&limits).unwrap();
    let victim = scratch.file("victim");
    std::fs::write(&victim, "precious").unwrap();
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    symlink(
        &victim,
        limits.join(format!("shared-fadvise.{euid}.budget")),
    )
    .unwrap();

    let finished = rate_loop(&scratch, &policy(&limits, "host", RATE), 2).wait(TIMEOUT);
    finished.assert_success("rate_loop");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");
    assert!(
        finished
            .stderr
            .starts_with("fadvise-shim: host budget shared-fadvise"),
        "{finished}"
    );
    assert_within(
        kernel_calls(&finished),
        RATE * 2 + BURST,
        15,
        "fallback budget",
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_different_rate_for_the_same_name_falls_back_with_one_line() {
    let scratch = Scratch::new();
    let limits = scratch.file("limits");
    let first = rate_loop(&scratch, &policy(&limits, "host", RATE), 3);
    std::thread::sleep(Duration::from_millis(300));
    let other = rate_loop(&scratch, &policy(&limits, "host", 2 * RATE), 2).wait(TIMEOUT);
    other.assert_success("rate_loop");
    assert_eq!(other.stderr.lines().count(), 1, "{other}");
    assert!(other.stderr.contains("another rate or burst"), "{other}");
    // Its own budget, at its own rate.
    assert_within(
        kernel_calls(&other),
        2 * RATE * 2 + BURST,
        15,
        "fallback budget",
    );
    let first = first.wait(TIMEOUT);
    assert_eq!(first.stderr, "");
    assert_within(
        kernel_calls(&first),
        RATE * 3 + BURST,
        15,
        "the file's own budget",
    );
}

#[test]
fn a_directory_of_another_user_costs_one_line_and_a_budget_of_its_own() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to give a directory to another user");
        return;
    }
    let scratch = Scratch::new();
    let limits = scratch.file("limits");
    std::fs::create_dir(&limits).unwrap();
    std::os::unix::fs::chown(&limits, Some(65534), Some(65534)).unwrap();
    let finished = run(
        scratch
            .command(
                policy_program("rate_loop"),
                Shim::Policy(&policy(&limits, "host", RATE)),
            )
            .arg(scratch.file("data"))
            .args(["1", "2"]),
        TIMEOUT,
    );
    finished.assert_success("rate_loop");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");
    assert!(
        finished.stderr.contains("belongs to another user"),
        "{finished}"
    );
    assert_within(
        kernel_calls(&finished),
        RATE * 2 + BURST,
        15,
        "fallback budget",
    );
    assert_eq!(
        std::fs::read_dir(&limits).unwrap().count(),
        0,
        "nothing written there"
    );
}
