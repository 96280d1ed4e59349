//! `action = "limit"` lets through `rate × seconds + burst` calls and counts
//! the rest as `limited`, exactly, with one thread and with several: a C
//! program calls posix_fadvise in a tight loop for 2 seconds under a seccomp
//! filter that answers EPERM to it, so it counts for itself how many calls
//! reached the kernel, and the shim's dump must agree to the call.

mod common;
mod policy_common;

use common::{counts, run, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::ON_EXIT_ENV;
use policy_common::policy_program;

const RATE: u64 = 200;
const BURST: u64 = 20;
const SECONDS: u64 = 2;

const LIMIT_POLICY: &str =
    "[[rule]]\ncall = \"posix_fadvise\"\naction = \"limit\"\nrate = 200\nburst = 20\n";

/// What `rate_loop` counted: (calls, reached the kernel, answered by the shim).
fn rate_loop_counts(stdout: &str) -> (u64, u64, u64) {
    let cells: Vec<&str> = stdout.split_whitespace().collect();
    let number = |index: usize| -> u64 { cells[index].parse().expect("a count") };
    assert!(
        cells.len() == 8 && cells[0] == "calls" && cells[6] == "other" && number(7) == 0,
        "unexpected output {stdout:?}"
    );
    (number(1), number(3), number(5))
}

fn limit_over_two_seconds(threads: u32) {
    let scratch = Scratch::new();
    let mut command = scratch.command(policy_program("rate_loop"), Shim::Policy(LIMIT_POLICY));
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("data"))
        .arg(threads.to_string())
        .arg(SECONDS.to_string());
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("rate_loop");
    assert_eq!(finished.stderr, "", "{finished}");
    let (calls, kernel, answered) = rate_loop_counts(&finished.stdout);

    let dumps = scratch.dumps();
    assert_eq!(dumps.len(), 1, "{:?}", scratch.dump_dir_listing());
    let stats = dumps[0].1.stats.call(Call::PosixFadvise);
    let (count, passed, dropped, limited, errors) = counts(stats);
    let seen = &finished.stdout;
    assert_eq!(count, calls, "every call is counted: {seen}");
    assert_eq!(passed + limited, count, "{seen}");
    assert_eq!(dropped, 0);
    // The kernel's view: exactly the passed calls reached it (and failed
    // with EPERM, so every one of them is also an error).
    assert_eq!(passed, kernel, "{seen}");
    assert_eq!(errors, kernel, "{seen}");
    assert_eq!(limited, answered, "{seen}");

    let expected = RATE * SECONDS + BURST;
    let (low, high) = (expected * 9 / 10, expected * 11 / 10);
    assert!(
        (low..=high).contains(&passed),
        "{passed} passed, expected {expected} ± 10% ({threads} threads, {calls} calls)"
    );
    // A tight loop makes far more calls than the limit lets through.
    assert!(limited > 10 * passed, "{limited} limited, {passed} passed");
}

#[test]
fn limit_lets_through_rate_times_seconds_plus_burst() {
    limit_over_two_seconds(1);
}

#[test]
fn limit_is_exact_under_threads() {
    limit_over_two_seconds(4);
}

/// Reloading a policy whose limit did not change keeps that limit's
/// budget: three reloads in 4 s must not refill a burst of 100 three times.
#[test]
fn reload_with_the_same_limit_keeps_its_budget() {
    let scratch = Scratch::new();
    let limit = "[[rule]]\ncall = \"posix_fadvise\"\naction = \"limit\"\nrate = 10\nburst = 100\n";
    let policy = scratch.file("policy.toml");
    std::fs::write(&policy, limit).unwrap();
    let mut command = scratch.command(policy_program("rate_loop"), Shim::Off);
    command
        .env("LD_PRELOAD", common::library())
        .env(fadvise_shim_core::policy::POLICY_ENV, &policy)
        .arg(scratch.file("data"))
        .args(["1", "4"]);
    let running = common::Running::start(&mut command);
    for reload in 1..=3 {
        std::thread::sleep(std::time::Duration::from_millis(1050));
        // A new version (a comment changes its size) with the same rule.
        let version = format!("# version {reload}\n{limit}");
        std::fs::write(policy.with_extension("new"), version).unwrap();
        std::fs::rename(policy.with_extension("new"), &policy).unwrap();
    }
    let finished = running.wait(TIMEOUT);
    finished.assert_success("rate_loop");
    assert_eq!(finished.stderr, "", "{finished}");
    let (_, kernel, _) = rate_loop_counts(&finished.stdout);
    // 10/s over 4 s plus one burst of 100; three refills would make 440.
    assert!((126..=154).contains(&kernel), "{kernel} calls passed");
}
