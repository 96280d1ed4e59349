//! Real containers on one host (issue 13): a private Docker daemon (Debian's
//! `docker.io`, no registry: the image is the cached Debian root, imported),
//! three containers at once, each running an unmodified `dd … oflag=nocache`
//! as its pid 1 with the shim and one stats directory bind-mounted into all
//! of them. Each container's calls must come back under its own container
//! id, exactly: before, their dumps overwrote each other (`dd.1.dump`).
//! Then a program whose libraries exist only inside its container: while it
//! lives, `report --by caller` names their functions, read through
//! `/proc/PID/root` (issue 15).
//!
//! Skips with a clear message only where the daemon cannot start.

mod callers_support;
mod common;
mod install_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use install_support::docker::Daemon;
use serde_json::Value;

#[test]
fn three_containers_each_count_their_own_calls_under_their_own_id() {
    let daemon = match Daemon::start() {
        Ok(daemon) => daemon,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let tarball = match install_support::debian_tarball() {
        Ok(tarball) => tarball,
        Err(why) => {
            eprintln!("SKIPPED: no Debian root for the image: {why}");
            return;
        }
    };
    daemon
        .docker(&["import", tarball.to_str().unwrap(), "fadvise-shim-test:1"])
        .expect("docker import");
    let shared: PathBuf = daemon.dir.path().join("shared");
    let (stats, data) = (shared.join("stats"), shared.join("data"));
    std::fs::create_dir_all(&stats).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let library = shared.join("libfadvise_shim.so");
    std::fs::copy(install_support::library(), &library).unwrap();
    let mount = |from: &Path, to: &str, mode: &str| format!("{}:{to}:{mode}", from.display());
    let ids: Vec<String> = (0..3)
        .map(|index| {
            daemon
                .docker(&[
                    "run",
                    "-d",
                    "--network=none",
                    "-v",
                    &mount(&library, "/shim/libfadvise_shim.so", "ro"),
                    "-v",
                    &mount(&stats, "/stats", "rw"),
                    "-v",
                    &mount(&data, "/data", "rw"),
                    "-e",
                    "LD_PRELOAD=/shim/libfadvise_shim.so",
                    "-e",
                    "FADVISE_SHIM_STATS_DIR=/stats",
                    "fadvise-shim-test:1",
                    "dd",
                    "if=/dev/zero",
                    &format!("of=/data/out-{index}"),
                    "bs=64k",
                    "count=200",
                    "oflag=nocache",
                ])
                .expect("docker run")
        })
        .collect();
    for id in &ids {
        assert_eq!(daemon.docker(&["wait", id]).expect("docker wait"), "0");
    }
    let output = common::clean_command(common::cli())
        .args(["report", "--by", "container", "--format", "json"])
        .arg(&stats)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["processes"], 3, "{report}");
    assert_eq!(report["calls"]["posix_fadvise"]["count"], 300, "{report}");
    let groups = report["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 3, "{report}");
    for id in &ids {
        let group = groups
            .iter()
            .find(|group| group["key"]["container_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no group for container {id}: {report}"));
        assert_eq!(group["processes"], 1, "{group}");
        assert_eq!(group["calls"]["posix_fadvise"]["count"], 100, "{group}");
    }
    for id in &ids {
        let _ = daemon.docker(&["rm", id]);
    }
    callers_are_named_from_inside_their_container(&daemon, &library, &stats);
}

/// The call-site program with its libraries under `/opt/app`, a directory
/// only its container has: the report, run on the host while the program
/// waits, must name liba's and libb's functions.
fn callers_are_named_from_inside_their_container(daemon: &Daemon, library: &Path, stats: &Path) {
    let programs = callers_support::programs(Some("/opt/app"));
    let app = daemon.dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    for file in [
        &programs.callers,
        &programs.liba,
        &programs.libb,
        &programs.plugin_one,
        &programs.plugin_two,
    ] {
        std::fs::copy(file, app.join(file.file_name().unwrap())).unwrap();
    }
    assert!(
        !Path::new("/opt/app").exists(),
        "/opt/app must exist only in the container"
    );
    let mount = |from: &Path, to: &str, mode: &str| format!("{}:{to}:{mode}", from.display());
    let id = daemon
        .docker(&[
            "run",
            "-d",
            "--network=none",
            "-v",
            &mount(library, "/shim/libfadvise_shim.so", "ro"),
            "-v",
            &mount(stats, "/stats", "rw"),
            "-v",
            &mount(&app, "/opt/app", "ro"),
            "-e",
            "LD_PRELOAD=/shim/libfadvise_shim.so",
            "-e",
            "FADVISE_SHIM_STATS_DIR=/stats",
            "fadvise-shim-test:1",
            "/opt/app/callers",
            "/tmp/calls.data",
            "/opt/app/plugin_one.so",
            "/opt/app/plugin_two.so",
            "wait",
        ])
        .expect("docker run");
    let ready = common::poll(Duration::from_secs(20), || {
        let logs = daemon.docker(&["logs", &id]).ok()?;
        logs.contains("ready").then_some(())
    });
    assert!(ready.is_some(), "{:?}", daemon.docker(&["logs", &id]));
    let output = common::clean_command(common::cli())
        .args(["report", "--by", "caller"])
        .arg(stats)
        .output()
        .unwrap();
    let _ = daemon.docker(&["rm", "-f", &id]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    for row in [
        "fsync liba.so liba_work+0x",
        "posix_fadvise libb.so libb_work+0x",
        "fsync callers main+0x",
        "fsync plugin_one.so plugin_work+0x",
    ] {
        assert!(table.contains(row), "{row:?} in\n{table}");
    }
}

/// An Alpine-like container: a root with musl's loader (a copy of musl's
/// `libc.so` at `/lib/ld-musl-x86_64.so.1`), a static busybox as `/bin/sh`
/// and a program built with `musl-gcc` — no glibc file at all. With the
/// library bind-mounted and `LD_PRELOAD` set, as `deploy/` does to a pod,
/// the program runs (before, it exited 127 before `main`) and its calls
/// come back under its container id.
#[test]
fn a_musl_only_container_runs_under_the_shim_and_is_reported() {
    let daemon = match Daemon::start() {
        Ok(daemon) => daemon,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let root = install_support::musl_root();
    for dir in ["app", "data", "stats", "shim", "dev", "sys"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    std::fs::copy(
        common::musl_program("threads"),
        root.path().join("app/threads"),
    )
    .unwrap();
    daemon.import(root.path(), "fadvise-shim-musl:1", &[]);
    let shared = daemon.dir.path().join("musl-shared");
    let stats = shared.join("stats");
    std::fs::create_dir_all(&stats).unwrap();
    let library = shared.join("libfadvise_shim.so");
    std::fs::copy(install_support::library(), &library).unwrap();
    let id = daemon
        .docker(&[
            "run",
            "-d",
            "--network=none",
            "-v",
            &format!("{}:/shim/libfadvise_shim.so:ro", library.display()),
            "-v",
            &format!("{}:/stats:rw", stats.display()),
            "-e",
            "LD_PRELOAD=/shim/libfadvise_shim.so",
            "-e",
            "FADVISE_SHIM_STATS_DIR=/stats",
            "fadvise-shim-musl:1",
            "/bin/sh",
            "-c",
            "/app/threads /data/file 4 50 && /app/threads /data/file 2 25",
        ])
        .expect("docker run");
    let status = daemon.docker(&["wait", &id]).expect("docker wait");
    let logs = daemon.docker(&["logs", &id]).unwrap_or_default();
    let _ = daemon.docker(&["rm", &id]);
    assert_eq!(status, "0", "{logs}");
    assert!(logs.contains("calls 200 failed 0"), "{logs}");
    let output = common::clean_command(common::cli())
        .args(["report", "--by", "container", "--format", "json"])
        .arg(&stats)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let groups = report["groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 1, "{report}");
    assert_eq!(groups[0]["key"]["container_id"], id.as_str(), "{report}");
    assert_eq!(groups[0]["processes"], 2, "{report}");
    assert_eq!(
        groups[0]["calls"]["posix_fadvise"]["count"], 250,
        "{report}"
    );
}
