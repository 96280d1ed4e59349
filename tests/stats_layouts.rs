//! Stats files of every layout this project has written, as the builds
//! that wrote them left them (tests/fixtures/stats/, see its README), read
//! by today's `report` and `serve`: a process of the old build still
//! running (the test holds the file's liveness lock, as its writer would)
//! and one that exited, each counted exactly once, before and after a
//! reader retires the dead one, and by a real Prometheus server through a
//! restart of `serve`. `--version` names the layouts.

mod common;
// Only its serve and Prometheus helpers are used here.
#[allow(dead_code)]
mod serve_support;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run, Scratch, TIMEOUT};
use serde_json::Value;
use serve_support::{by_label, Prometheus, Serve};

/// What each fixture's process did (tests/fixtures/stats/make.sh):
/// `posix_fadvise` calls, all dropped by its policy; fsyncs, all passed;
/// fsyncs that failed (EBADF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    processes: u64,
    dropped_fadvise: u64,
    passed_fsync: u64,
    failed_fsync: u64,
}

const EXITED: Counts = Counts {
    processes: 1,
    dropped_fadvise: 300,
    passed_fsync: 45,
    failed_fsync: 5,
};
const RUNNING: Counts = Counts {
    processes: 1,
    dropped_fadvise: 120,
    passed_fsync: 9,
    failed_fsync: 2,
};

impl std::ops::Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        Counts {
            processes: self.processes + other.processes,
            dropped_fadvise: self.dropped_fadvise + other.dropped_fadvise,
            passed_fsync: self.passed_fsync + other.passed_fsync,
            failed_fsync: self.failed_fsync + other.failed_fsync,
        }
    }
}

/// The fixture of `layout` (1, 2) and `state` (`exited`, `running`),
/// copied into `dir`.
fn place(layout: u32, state: &str, dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stats")
        .join(format!("layout-{layout}"))
        .join(state);
    let entry = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "stats"))
        .unwrap_or_else(|| panic!("no .stats file in {}", fixtures.display()));
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join(entry.file_name().unwrap());
    std::fs::copy(&entry, &copy).unwrap();
    copy
}

/// Holds the file's liveness lock as its writer does (an OFD write lock
/// on `LIVENESS_BYTE`), until dropped: readers take the file for a live
/// process's and leave it in place. The lock goes with the descriptor.
struct Alive {
    _lock: File,
}

fn keep_alive(path: &Path) -> Alive {
    let file = File::options().read(true).write(true).open(path).unwrap();
    // SAFETY: `flock` is plain data; all zero (l_pid 0) is what OFD locks
    // require.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = fadvise_shim_core::stats_file::LIVENESS_BYTE;
    range.l_len = 1;
    // SAFETY: a valid descriptor and lock description.
    let locked = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut range) };
    assert_eq!(locked, 0, "{}", std::io::Error::last_os_error());
    Alive { _lock: file }
}

/// What `report --format json DIR` counts; it warns of nothing.
fn reported(dir: &Path) -> Counts {
    let finished = run(
        common::clean_command(common::cli())
            .args(["report", "--format", "json"])
            .arg(dir),
        TIMEOUT,
    );
    finished.assert_success("report");
    assert_eq!(finished.stderr, "", "{finished}");
    let json: Value = serde_json::from_str(&finished.stdout).unwrap();
    let number = |value: &Value| value.as_u64().unwrap_or_else(|| panic!("{json}"));
    Counts {
        processes: number(&json["processes"]),
        dropped_fadvise: number(&json["calls"]["posix_fadvise"]["dropped"]),
        passed_fsync: number(&json["calls"]["fsync"]["passed"]),
        failed_fsync: number(&json["calls"]["fsync"]["errors"]),
    }
}

fn stats_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            let entry = entry.as_ref().unwrap();
            entry.path().extension().is_some_and(|ext| ext == "stats")
        })
        .count()
}

#[test]
fn a_layout_1_file_of_a_dead_process_is_counted_once_and_retired() {
    let scratch = Scratch::new();
    let dir = scratch.stats_dir();
    place(1, "exited", &dir);
    // The reader retires it into an aggregate; read again, same counts.
    retired_counting(&dir, EXITED);
}

#[test]
fn a_layout_1_file_of_a_live_process_is_counted_and_left_in_place() {
    let scratch = Scratch::new();
    let dir = scratch.stats_dir();
    let alive = keep_alive(&place(1, "running", &dir));
    assert_eq!(reported(&dir), RUNNING);
    assert_eq!(reported(&dir), RUNNING);
    assert_eq!(stats_files(&dir), 1);
    // The process ends: retired, still counted once.
    drop(alive);
    retired_counting(&dir, RUNNING);
}

/// Reads `dir` until its dead stats files are retired (a child of another
/// test forked before its exec can still hold a lock for a moment), each
/// read counting `counts` exactly.
fn retired_counting(dir: &Path, counts: Counts) {
    let retired = common::poll(Duration::from_secs(5), || {
        assert_eq!(reported(dir), counts);
        (stats_files(dir) == 0).then_some(())
    });
    assert!(
        retired.is_some(),
        "{} still holds stats files",
        dir.display()
    );
    assert_eq!(reported(dir), counts);
}

/// One directory with a running and an exited process of each layout.
fn both_layouts(dir: &Path) -> [Alive; 2] {
    place(1, "exited", dir);
    place(2, "exited", dir);
    [
        keep_alive(&place(1, "running", dir)),
        keep_alive(&place(2, "running", dir)),
    ]
}

const ALL_FOUR: Counts = Counts {
    processes: 4,
    dropped_fadvise: 2 * (300 + 120),
    passed_fsync: 2 * (45 + 9),
    failed_fsync: 2 * (5 + 2),
};

#[test]
fn running_and_exited_processes_of_both_layouts_are_each_counted_once() {
    assert_eq!(EXITED + EXITED + RUNNING + RUNNING, ALL_FOUR);
    let scratch = Scratch::new();
    let dir = scratch.stats_dir();
    let alive = both_layouts(&dir);
    assert_eq!(reported(&dir), ALL_FOUR);
    assert_eq!(stats_files(&dir), 2);
    assert_eq!(reported(&dir), ALL_FOUR);
    drop(alive);
    retired_counting(&dir, ALL_FOUR);
}

#[test]
fn serve_exports_both_layouts_running_and_exited_exactly() {
    let scratch = Scratch::new();
    let dir = scratch.stats_dir();
    let alive = both_layouts(&dir);
    let serve = Serve::start("127.0.0.1:0", &dir);
    let check = || {
        let body = serve.metrics(None).body;
        let sample = |series: &str| {
            body.lines()
                .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
                .map(|value| value.parse::<f64>().unwrap() as u64)
        };
        let exported = Counts {
            processes: sample("fadvise_shim_processes_seen_total{exe=\"calls\"}").unwrap_or(0),
            dropped_fadvise: sample("fadvise_shim_calls_total{call=\"posix_fadvise\",exe=\"calls\",verdict=\"dropped\"}").unwrap_or(0),
            passed_fsync: sample("fadvise_shim_calls_total{call=\"fsync\",exe=\"calls\",verdict=\"passed\"}").unwrap_or(0),
            failed_fsync: sample("fadvise_shim_call_errors_total{call=\"fsync\",exe=\"calls\"}").unwrap_or(0),
        };
        assert_eq!(exported, ALL_FOUR, "{body}");
        assert_eq!(sample("fadvise_shim_unreadable_files"), Some(0), "{body}");
    };
    check();
    check();
    drop(alive);
    check();
    check();
}

#[test]
fn prometheus_scrapes_both_layouts_through_exits_and_a_restart_of_serve() {
    let scratch = Scratch::new();
    let dir = scratch.stats_dir();
    let alive = both_layouts(&dir);
    let serve = Serve::start("127.0.0.1:0", &dir);
    let prometheus = Prometheus::start(scratch.path(), serve.address);
    let value = |rows: &[(String, f64)], label: &str| {
        rows.iter()
            .find(|(labels, _)| labels.contains(label))
            .map(|(_, value)| *value as u64)
    };
    let exact = |rows: &[(String, f64)]| {
        value(rows, "posix_fadvise") == Some(ALL_FOUR.dropped_fadvise)
            && value(rows, "fsync") == Some(ALL_FOUR.passed_fsync)
    };
    let by_call = "sum by (call) (fadvise_shim_calls_total)";
    prometheus.wait_for(by_call, Duration::from_secs(15), exact);
    let live = by_label(&prometheus.query("sum(fadvise_shim_processes)"));
    assert_eq!(live.first().map(|row| row.1), Some(2.0), "{live:?}");
    // Both running processes end; serve retires their files.
    drop(alive);
    prometheus.wait_for(
        "sum(fadvise_shim_processes)",
        Duration::from_secs(10),
        |rows| rows.is_empty() || rows[0].1 == 0.0,
    );
    let port = serve.address.port();
    drop(serve);
    let _restarted = Serve::start(&format!("127.0.0.1:{port}"), &dir);
    let scrapes = "count_over_time(up{job=\"fadvise-shim\"}[1m])";
    let before = by_label(&prometheus.query(scrapes))[0].1;
    prometheus.wait_for(scrapes, Duration::from_secs(10), |rows| {
        rows.first().is_some_and(|row| row.1 >= before + 2.0)
    });
    prometheus.wait_for("up", Duration::from_secs(5), |rows| {
        rows.first().is_some_and(|row| row.1 == 1.0)
    });
    prometheus.wait_for(by_call, Duration::from_secs(5), exact);
    let errors = by_label(&prometheus.query("sum by (call) (fadvise_shim_call_errors_total)"));
    assert_eq!(
        value(&errors, "fsync"),
        Some(ALL_FOUR.failed_fsync),
        "{errors:?}"
    );
    let seen = by_label(&prometheus.query("sum(fadvise_shim_processes_seen_total)"));
    assert_eq!(seen.first().map(|row| row.1 as u64), Some(4), "{seen:?}");
    let resets = by_label(&prometheus.query("resets(fadvise_shim_calls_total[5m])"));
    assert!(!resets.is_empty());
    assert!(resets.iter().all(|(_, value)| *value == 0.0), "{resets:?}");
    assert_eq!(stats_files(&dir), 0, "every dead file was retired");
}

#[test]
fn version_names_the_layouts_read_and_written() {
    let finished = run(
        common::clean_command(common::cli()).arg("--version"),
        TIMEOUT,
    );
    finished.assert_success("--version");
    assert!(
        finished
            .stdout
            .contains("stats file layouts: reads 1 and 2, writes 2.0\n"),
        "{finished}"
    );
}
