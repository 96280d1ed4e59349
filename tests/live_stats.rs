//! Live statistics on one host of many processes (issue 13), from outside:
//! the files a stats directory holds and what `report` reads from them,
//! against the calls the programs themselves say they made.
//!
//! Two pid-1 processes in their own pid namespaces stay two processes; a
//! `SIGKILL`ed process keeps its calls; a thousand short processes with no
//! reader leave a bounded directory and the exact total; compactors and
//! readers at once lose and double nothing, and readers never see a total go
//! down; a process that closes every descriptor it did not open stays live
//! and exact; real cgroups named as each container runtime names them give
//! the right container and pod; and bad files in the directory are skipped
//! with a warning, harming nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{cli, compile_c, run, Running, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::policy::{ON_EXIT_ENV, STATS_DIR_ENV};
use serde_json::Value;

fn program() -> PathBuf {
    compile_c("c_live", "calls", "calls", &[])
}

fn calls(scratch: &Scratch, n: u64, mode: &[&str]) -> Command {
    let mut command = scratch.command(program(), Shim::Default);
    command
        .arg(scratch.file("data"))
        .arg(n.to_string())
        .args(mode);
    command
}

/// `report --format json` (with extra arguments) on `paths`; warnings on
/// stderr come back too.
fn report(paths: &[&Path], extra: &[&str]) -> (Value, String) {
    let output = common::clean_command(cli())
        .args(["report", "--format", "json"])
        .args(extra)
        .args(paths)
        .output()
        .expect("report runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "report failed: {stdout}{stderr}");
    (serde_json::from_str(&stdout).expect("json"), stderr)
}

fn fadvise_count(report: &Value) -> u64 {
    report["calls"]["posix_fadvise"]["count"]
        .as_u64()
        .unwrap_or(0)
}

fn files_in(dir: &Path, suffix: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_killed_process_keeps_its_calls() {
    let scratch = Scratch::new();
    let mut running = Running::start(&mut calls(&scratch, 123, &["wait"]));
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    let (live, _) = report(&[&scratch.stats_dir()], &[]);
    assert_eq!(fadvise_count(&live), 123, "{live}");
    assert_eq!(live["per_process"][0]["state"], "live", "{live}");
    running.signal(libc::SIGKILL);
    let finished = running.wait(TIMEOUT);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&finished.status),
        Some(libc::SIGKILL)
    );
    // The first read after the death retires the file; every read after
    // says the same.
    for _ in 0..2 {
        let (dead, _) = report(&[&scratch.stats_dir()], &[]);
        assert_eq!(fadvise_count(&dead), 123, "{dead}");
        assert_eq!(dead["processes"], 1, "{dead}");
    }
    assert_eq!(files_in(&scratch.stats_dir(), ".stats"), 0);
    assert_eq!(
        files_in(&scratch.stats_dir(), ".segment"),
        1,
        "retired into one segment"
    );
}

#[test]
fn two_pid_ones_in_their_own_namespaces_are_two_processes() {
    // SAFETY: geteuid(2) takes no arguments, touches no memory of ours and
    // cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: unshare -p needs root");
        return;
    }
    let scratch = Scratch::new();
    let start = |n: u64| {
        let mut command = Command::new("unshare");
        command.args(["--pid", "--fork", "--"]);
        let inner = calls(&scratch, n, &["linger", "300"]);
        command.arg(inner.get_program()).args(inner.get_args());
        for (key, value) in inner.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        command.env(ON_EXIT_ENV, "1");
        Running::start(&mut command)
    };
    let (first, second) = (start(40), start(60));
    for running in [first, second] {
        let finished = running.wait(TIMEOUT);
        finished.assert_success("calls in a pid namespace");
    }
    let dumps = scratch.dump_dir_listing();
    assert_eq!(dumps.len(), 2, "{dumps:?}");
    assert!(
        dumps.iter().all(|name| name.starts_with("calls.1.")),
        "{dumps:?}"
    );
    for dir in [scratch.dump_dir(), scratch.stats_dir()] {
        let (merged, _) = report(&[&dir], &[]);
        assert_eq!(merged["processes"], 2, "{}: {merged}", dir.display());
        assert_eq!(fadvise_count(&merged), 100, "{}: {merged}", dir.display());
    }
}

/// Runs `count` short processes, two at a time, each making `calls` calls.
fn short_processes(scratch: &Scratch, count: usize, calls_each: u64) {
    std::thread::scope(|scope| {
        for worker in 0..2 {
            scope.spawn(move || {
                for _ in (worker..count).step_by(2) {
                    run(&mut calls(scratch, calls_each, &["exit"]), TIMEOUT)
                        .assert_success("a short process");
                }
            });
        }
    });
}

#[test]
fn a_thousand_short_processes_leave_a_bounded_directory_and_the_exact_total() {
    let scratch = Scratch::new();
    short_processes(&scratch, 1000, 3);
    let files = files_in(&scratch.stats_dir(), ".stats");
    // Exits are retired in drains of about 20 (tests/short_processes.rs
    // watches the directory while it runs).
    assert!(files <= 64, "{files} stats files left");
    let (merged, _) = report(&[&scratch.stats_dir()], &[]);
    assert_eq!(merged["processes"], 1000, "{merged}");
    assert_eq!(fadvise_count(&merged), 3000, "{merged}");
}

#[test]
fn compactors_and_readers_at_once_lose_and_double_nothing() {
    let scratch = Scratch::new();
    let stats = scratch.stats_dir();
    // One process first, so that the readers never see an empty directory.
    short_processes(&scratch, 2, 5);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut seen = Vec::new();
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        seen.push(fadvise_count(&report(&[&stats], &[]).0));
                    }
                    seen
                })
            })
            .collect();
        short_processes(&scratch, 198, 5);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            let seen = reader.join().unwrap();
            assert!(!seen.is_empty());
            assert!(
                seen.windows(2).all(|pair| pair[0] <= pair[1]),
                "a total went down: {seen:?}"
            );
            assert!(seen.iter().all(|&total| total <= 1000), "{seen:?}");
        }
    });
    let (merged, _) = report(&[&stats], &[]);
    assert_eq!(fadvise_count(&merged), 1000, "{merged}");
    assert_eq!(merged["processes"], 200, "{merged}");
}

#[test]
fn a_process_that_closes_every_descriptor_stays_live_and_exact() {
    let scratch = Scratch::new();
    let mut running = Running::start(&mut calls(&scratch, 200, &["closeall"]));
    running.wait_for_line(TIMEOUT, |line| line == "closed");
    // Readers compact while it goes on calling: it must not look dead.
    for _ in 0..10 {
        let (live, _) = report(&[&scratch.stats_dir()], &[]);
        assert_eq!(live["per_process"][0]["state"], "live", "{live}");
        std::thread::sleep(Duration::from_millis(150));
    }
    let finished = running.wait(TIMEOUT);
    finished.assert_success("closeall");
    assert!(finished.stdout.contains("made 400"), "{finished}");
    let (merged, _) = report(&[&scratch.stats_dir()], &[]);
    assert_eq!(fadvise_count(&merged), 400, "{merged}");
    assert_eq!(merged["processes"], 1, "{merged}");
}

#[test]
fn bad_files_are_skipped_with_a_warning_and_harm_nothing() {
    let scratch = Scratch::new();
    run(&mut calls(&scratch, 7, &["exit"]), TIMEOUT).assert_success("calls");
    let mut running = Running::start(&mut calls(&scratch, 5, &["wait"]));
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    let stats = scratch.stats_dir();
    let good = std::fs::read_dir(&stats)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".stats"))
        .expect("a live stats file");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(stats.join("cut.1.1-1.1.stats"), &bytes[..5000]).unwrap();
    let mut corrupt = bytes.clone();
    corrupt[8] = 77;
    std::fs::write(stats.join("version.1.1-1.2.stats"), &corrupt).unwrap();
    std::fs::write(stats.join("garbage.1.1-1.3.stats"), b"hello\n").unwrap();
    std::os::unix::fs::symlink(&good, stats.join("link.1.1-1.4.stats")).unwrap();
    let fifo = std::ffi::CString::new(stats.join("fifo.1.1-1.5.stats").to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let huge = std::fs::File::create(stats.join("huge.1.1-1.6.stats")).unwrap();
    huge.set_len(1 << 30).unwrap();
    std::fs::write(
        stats.join("bad.0123456789abcdef.retired"),
        b"# fadvise-shim dump 1\nstats x\n",
    )
    .unwrap();
    let (merged, warnings) = report(&[&stats], &[]);
    // The live process and the dead one, nothing else.
    assert_eq!(fadvise_count(&merged), 12, "{merged}\n{warnings}");
    for name in [
        "cut.", "version.", "garbage.", "link.", "fifo.", "huge.", "bad.",
    ] {
        assert!(
            warnings
                .lines()
                .any(|line| line.contains(name) && line.contains("skipped")),
            "no warning for {name}: {warnings}"
        );
    }
    // The live process is untouched by all this, and still counted.
    running.signal(libc::SIGKILL);
    let _ = running.wait(TIMEOUT);
    let (after, _) = report(&[&stats], &[]);
    assert_eq!(fadvise_count(&after), 12, "{after}");
}

/// A cgroup made under `hierarchy` at `path`, removed when dropped.
struct Cgroup(PathBuf);

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Deepest first: every level was made for the test.
        let mut path = self.0.clone();
        for _ in 0..6 {
            if std::fs::remove_dir(&path).is_err() {
                break;
            }
            path.pop();
        }
    }
}

/// Runs the program inside a cgroup at `relative` under `hierarchy`, and
/// returns the report's groups by `by`.
fn placed(hierarchy: &str, relative: &str, by: &str) -> Option<Value> {
    let root = Path::new("/sys/fs/cgroup").join(hierarchy);
    // SAFETY: geteuid(2) takes no arguments, touches no memory of ours and
    // cannot fail.
    if unsafe { libc::geteuid() } != 0 || !root.join("cgroup.procs").exists() {
        eprintln!("skipped: needs root and {}", root.display());
        return None;
    }
    let path = root.join(relative);
    std::fs::create_dir_all(&path).expect("make the cgroup");
    let _cgroup = Cgroup(path.clone());
    let scratch = Scratch::new();
    let go = scratch.file("go");
    let mut running = Running::start(&mut calls(&scratch, 9, &["after", go.to_str().unwrap()]));
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    std::fs::write(path.join("cgroup.procs"), running.pid().to_string()).expect("join the cgroup");
    std::fs::write(&go, "").unwrap();
    running.wait(TIMEOUT).assert_success("calls in a cgroup");
    let (grouped, _) = report(&[&scratch.stats_dir()], &["--by", by]);
    assert_eq!(fadvise_count(&grouped), 9, "{grouped}");
    Some(grouped["groups"].clone())
}

const ID: &str = "4f1c2b3a5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8";
const POD: &str = "1f2e3d4c-5b6a-7980-1a2b-3c4d5e6f7a8b";

fn assert_group(groups: &Value, field: &str, value: &str) {
    assert_eq!(groups.as_array().map(Vec::len), Some(1), "{groups}");
    assert_eq!(groups[0]["key"][field], value, "{groups}");
    assert_eq!(groups[0]["processes"], 1, "{groups}");
}

#[test]
fn cgroups_named_as_each_runtime_names_them_give_the_container() {
    let schemes = [
        ("unified", format!("fshim-test/docker/{ID}")),
        ("unified", format!("fshim-test.slice/docker-{ID}.scope")),
        ("unified", format!("fshim-test.slice/crio-{ID}.scope")),
        ("unified", format!("fshim-test.slice/libpod-{ID}.scope")),
        ("pids", format!("fshim-test/docker/{ID}")),
        ("pids", format!("fshim-test/crio-{ID}")),
    ];
    for (hierarchy, relative) in schemes {
        if let Some(groups) = placed(hierarchy, &relative, "container") {
            assert_group(&groups, "container_id", ID);
        }
    }
}

#[test]
fn kubernetes_cgroups_give_the_pod() {
    let systemd_uid = POD.replace('-', "_");
    let schemes = [
        (
            "unified",
            format!(
                "fshim-kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{systemd_uid}.slice/cri-containerd-{ID}.scope"
            ),
        ),
        ("pids", format!("kubepods/besteffort/pod{POD}/{ID}")),
    ];
    for (hierarchy, relative) in schemes {
        if let Some(groups) = placed(hierarchy, &relative, "pod") {
            assert_group(&groups, "pod_uid", POD);
        }
        if let Some(groups) = placed(hierarchy, &relative, "container") {
            assert_group(&groups, "container_id", ID);
        }
    }
}

#[test]
fn the_stats_directory_can_be_none_or_unusable_without_harm() {
    let scratch = Scratch::new();
    let mut none = calls(&scratch, 4, &["exit"]);
    none.env(STATS_DIR_ENV, "none").env(ON_EXIT_ENV, "1");
    let finished = run(&mut none, TIMEOUT);
    finished.assert_success("stats none");
    assert_eq!(finished.stderr, "", "{finished}");
    assert!(!scratch.stats_dir().exists());
    assert_eq!(scratch.dumps().len(), 1, "dumps still work");
    // A configured directory that cannot be made: one line, and the calls
    // are still counted (in the dump).
    let blocked = scratch.file("not-a-dir");
    std::fs::write(&blocked, "").unwrap();
    let mut unusable = calls(&scratch, 4, &["exit"]);
    unusable
        .env(STATS_DIR_ENV, blocked.join("stats"))
        .env(ON_EXIT_ENV, "1");
    let finished = run(&mut unusable, TIMEOUT);
    finished.assert_success("stats unusable");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");
    assert!(finished.stderr.contains("live statistics"), "{finished}");
    assert_eq!(scratch.dumps().len(), 2);
}
