//! Many short processes on one host (issue 24), from outside: the stats
//! directory a run of them leaves, watched while it runs, and what `report`
//! reads from it against what the programs say they did.
//!
//! Two forkers (fork, one `fsync`, `exit`) beside live neighbours, with a
//! reader running all the while, keep the directory within live files plus
//! 64 and give the exact total; children `SIGKILL`ed while they exit (and
//! so while they retire their neighbours) and readers `SIGKILL`ed while
//! they read lose and double nothing; a directory as earlier builds left it
//! is read and converted without loss. Sized for CI with
//! `FADVISE_SHIM_TEST_SHORT_PROCESSES` (children per forker, default 1500).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{cli, compile_c, run, Running, Scratch, Shim, TIMEOUT};
use serde_json::Value;

fn children_per_forker() -> u64 {
    std::env::var("FADVISE_SHIM_TEST_SHORT_PROCESSES")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(1500)
}

fn forker(scratch: &Scratch, children: u64, mode: &str) -> Command {
    let mut command = scratch.command(compile_c("c_live", "forker", "forker", &[]), Shim::Default);
    command
        .arg(scratch.file("data"))
        .arg(children.to_string())
        .arg(mode);
    command
}

/// A live neighbour: one `posix_fadvise`, then it waits to be killed.
fn neighbour(scratch: &Scratch) -> Running {
    let mut command = scratch.command(compile_c("c_live", "calls", "calls", &[]), Shim::Default);
    command.arg(scratch.file("data")).args(["1", "wait"]);
    let mut running = Running::start(&mut command);
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    running
}

fn report(dir: &Path) -> Value {
    let output = common::clean_command(cli())
        .args(["report", "--format", "json"])
        .arg(dir)
        .output()
        .expect("report runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "report failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).expect("json")
}

fn count(report: &Value, call: &str) -> u64 {
    report["calls"][call]["count"].as_u64().unwrap_or(0)
}

/// The names in `dir` a reader takes (dot files are writers' own).
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect()
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

fn forkers_finish(scratch: &Scratch, children: u64, mode: &str) -> u64 {
    std::thread::scope(|scope| {
        let forkers: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| run(&mut forker(scratch, children, mode), TIMEOUT * 20)))
            .collect();
        forkers
            .into_iter()
            .map(|forker| {
                let finished = forker.join().unwrap();
                finished.assert_success("a forker");
                let stdout = finished.stdout.clone();
                stdout
                    .split_whitespace()
                    .nth(1)
                    .and_then(|fsyncs| fsyncs.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("forker said {stdout:?}"))
            })
            .sum()
    })
}

#[test]
fn two_forkers_beside_live_neighbours_keep_the_directory_bounded_and_exact() {
    let scratch = Scratch::new();
    let stats = scratch.stats_dir();
    let live = 100;
    let mut neighbours: Vec<Running> = (0..live).map(|_| neighbour(&scratch)).collect();
    let children = children_per_forker();
    let done = AtomicBool::new(false);
    let most = AtomicUsize::new(0);
    let fsyncs = std::thread::scope(|scope| {
        // The directory, looked at every few milliseconds.
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                most.fetch_max(entries(&stats), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(3));
            }
        });
        let reader = scope.spawn(|| {
            let mut seen = Vec::new();
            while !done.load(Ordering::Relaxed) {
                seen.push(count(&report(&stats), "fsync"));
            }
            seen
        });
        let fsyncs = forkers_finish(&scratch, children, "plain");
        done.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        assert!(
            seen.windows(2).all(|pair| pair[0] <= pair[1]),
            "a total went down: {seen:?}"
        );
        assert!(seen.iter().all(|&total| total <= fsyncs), "{seen:?}");
        fsyncs
    });
    assert_eq!(fsyncs, 2 * children);
    let most = most.into_inner();
    eprintln!("at most {most} entries beside {live} live processes");
    assert!(
        most <= live + 64,
        "the directory held {most} entries beside {live} live processes"
    );
    let merged = report(&stats);
    assert_eq!(count(&merged, "fsync"), fsyncs, "{merged}");
    assert_eq!(count(&merged, "posix_fadvise"), live as u64, "{merged}");
    assert_eq!(merged["processes"], fsyncs + live as u64, "{merged}");
    for neighbour in &mut neighbours {
        neighbour.signal(libc::SIGKILL);
    }
}

#[test]
fn processes_and_readers_killed_while_retiring_lose_and_double_nothing() {
    let scratch = Scratch::new();
    let stats = scratch.stats_dir();
    let children = children_per_forker() / 2;
    let done = AtomicBool::new(false);
    let fsyncs = std::thread::scope(|scope| {
        // Readers killed at random moments of their reading (and of the
        // compaction each runs first).
        scope.spawn(|| {
            let mut round = 0u64;
            while !done.load(Ordering::Relaxed) {
                round += 1;
                let mut command = common::clean_command(cli());
                command.args(["report", "--format", "json"]).arg(&stats);
                let reader = Running::start(&mut command);
                std::thread::sleep(Duration::from_micros(round * 7919 % 30_000));
                reader.signal(libc::SIGKILL);
                let _ = reader.wait(TIMEOUT);
            }
        });
        let fsyncs = forkers_finish(&scratch, children, "kill");
        done.store(true, Ordering::Relaxed);
        fsyncs
    });
    assert_eq!(fsyncs, 2 * children);
    for _ in 0..2 {
        let merged = report(&stats);
        assert_eq!(count(&merged, "fsync"), fsyncs, "{merged}");
        assert_eq!(merged["processes"], fsyncs, "{merged}");
    }
    // Every file retired: the summary, and perhaps the last segment.
    let left = names_in(&stats);
    assert!(
        left.len() <= 2 && left.iter().all(|name| !name.ends_with(".stats")),
        "after a reader: {left:?}"
    );
}

#[test]
fn a_directory_earlier_builds_left_is_read_and_converted_without_loss() {
    let scratch = Scratch::new();
    let stats = scratch.stats_dir();
    std::fs::create_dir(&stats).unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats/retired-before-segments");
    for entry in std::fs::read_dir(fixture).unwrap().flatten() {
        std::fs::copy(entry.path(), stats.join(entry.file_name())).unwrap();
    }
    // See tests/fixtures/stats/README.md for what the processes did.
    for _ in 0..2 {
        let merged = report(&stats);
        assert_eq!(merged["processes"], 4, "{merged}");
        assert_eq!(count(&merged, "posix_fadvise"), 100, "{merged}");
        assert_eq!(count(&merged, "fsync"), 16, "{merged}");
        assert_eq!(merged["calls"]["fsync"]["errors"], 2, "{merged}");
    }
    let left = names_in(&stats);
    assert_eq!(left, ["retired.summary"], "converted");
}

#[test]
fn a_stats_directory_named_through_a_symlink_is_retired_all_the_same() {
    let scratch = Scratch::new();
    let real = scratch.file("real-stats");
    std::fs::create_dir(&real).unwrap();
    let link = scratch.stats_dir();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fsyncs = forkers_finish(&scratch, 100, "plain");
    // Exits were logged and drained with no reader: few files are left.
    let stats_files = names_in(&real)
        .iter()
        .filter(|name| name.ends_with(".stats"))
        .count();
    assert!(stats_files <= 32, "{stats_files} stats files left");
    assert_eq!(count(&report(&link), "fsync"), fsyncs);
}
