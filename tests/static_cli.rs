//! The CLI runs in any image (issue 22, item 3): `target/release/fadvise-shim`
//! as `cargo build --release` makes it is static-pie (no loader, no
//! library needed), while `libfadvise_shim.so` stays an ordinary shared
//! library. Shown from outside: `readelf` on both artifacts; `run
//! --supervise` counting a static program in a root that holds nothing but
//! the CLI and that program (chroot, then a scratch Docker image with the
//! CLI as its entrypoint); and `report`, `dump` and `doctor` run inside
//! containers.
//!
//! The Docker tests skip with a clear message only where the private daemon
//! cannot start.

mod common;
mod install_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use install_support::docker::Daemon;
use install_support::{cli, in_chroot, library, Run};
use serde_json::Value;

/// Rounds of `calls loop`: each makes fsync, sync_file_range, msync and
/// posix_fadvise once, and the loop ends with one bad call of each.
const ROUNDS: u64 = 10;

/// `tests/c_supervise/calls.c`, built with `-static`.
fn static_program() -> PathBuf {
    common::compile_c("c_supervise", "calls", "calls", &["-static"])
}

fn readelf(args: &[&str], file: &Path) -> String {
    let run = Run::of(Command::new("readelf").args(args).arg(file)).success("readelf");
    run.stdout
}

/// The `DT_NEEDED` names in `readelf -d` output.
fn needed(dynamic: &str) -> Vec<String> {
    dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| Some(line.split('[').nth(1)?.trim_end_matches(']').to_string()))
        .collect()
}

#[test]
fn the_cli_is_static_pie_and_the_library_stays_a_shared_library() {
    let program = readelf(&["-h", "-l", "-d"], &cli());
    assert!(
        program.contains("DYN (Position-Independent Executable file)"),
        "{program}"
    );
    assert!(
        !program.contains("INTERP"),
        "the CLI names a loader:\n{program}"
    );
    assert_eq!(needed(&program), Vec::<String>::new(), "{program}");

    let shared = readelf(&["-h", "-d"], &library());
    assert!(shared.contains("DYN (Shared object file)"), "{shared}");
    assert_eq!(needed(&shared), ["libc.so.6"], "{shared}");
    let symbols = readelf(&["--dyn-syms", "-W"], &library());
    let defined = |name: &str| {
        symbols.lines().any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() >= 8 && fields[6] != "UND" && fields[7].split('@').next() == Some(name)
        })
    };
    assert!(defined("posix_fadvise") && defined("fsync"), "{symbols}");
    // Static glibc would bring its own entry point and allocator.
    assert!(!defined("__libc_start_main") && !defined("malloc"));
}

/// A root holding only `/fadvise-shim`, `/calls` (static), a data file and
/// empty `/proc` and `/dumps`; the data file's host path.
fn bare_root(dir: &Path) -> PathBuf {
    for sub in ["proc", "dumps", "data"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(cli(), dir.join("fadvise-shim")).unwrap();
    std::fs::copy(static_program(), dir.join("calls")).unwrap();
    let data = dir.join("data/file");
    std::fs::write(&data, vec![7u8; 256 * 4096]).unwrap();
    std::fs::File::open(&data).unwrap().sync_all().unwrap();
    data
}

/// Each call of a `calls loop` run was seen: ROUNDS + 1 times, passed.
fn assert_loop_counted(report: &Value) {
    for call in ["posix_fadvise", "fsync", "sync_file_range", "msync"] {
        assert_eq!(
            report["calls"][call]["count"],
            ROUNDS + 1,
            "{call}: {report}"
        );
        assert_eq!(
            report["calls"][call]["passed"],
            ROUNDS + 1,
            "{call}: {report}"
        );
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("{error}: {text}"))
}

#[test]
fn in_a_root_with_nothing_else_run_supervise_counts_a_static_program() {
    let root = install_support::scratch();
    bare_root(root.path());
    let rounds = ROUNDS.to_string();
    let run = Run::of(&mut in_chroot(
        root.path(),
        &[
            "/fadvise-shim",
            "run",
            "--supervise",
            "--dump-dir",
            "/dumps",
            "--",
            "/calls",
            "loop",
            "/data/file",
            &rounds,
        ],
    ))
    .success("run --supervise in the bare root");
    assert!(run.stderr.contains("fsync"), "the table:\n{run}");
    let report = Run::of(&mut in_chroot(
        root.path(),
        &["/fadvise-shim", "report", "--format", "json", "/dumps"],
    ))
    .success("report in the bare root");
    assert_loop_counted(&json(&report.stdout));
}

fn daemon_or_skip() -> Option<Daemon> {
    match Daemon::start() {
        Ok(daemon) => Some(daemon),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

fn mount(from: &Path, to: &str) -> String {
    format!("{}:{to}", from.display())
}

/// A scratch image: the CLI and a static program, nothing else; the CLI's
/// `run --supervise` is its entrypoint, `report` runs in a second container.
#[test]
fn a_scratch_image_runs_the_cli_as_its_entrypoint() {
    let Some(daemon) = daemon_or_skip() else {
        return;
    };
    let root = daemon.dir.path().join("scratch-root");
    let data = bare_root(&root);
    // Data and dumps come from the host, as volumes.
    let (data_dir, dumps) = (
        daemon.dir.path().join("scratch-data"),
        daemon.dir.path().join("scratch-dumps"),
    );
    std::fs::rename(data.parent().unwrap(), &data_dir).unwrap();
    std::fs::create_dir(&dumps).unwrap();
    for sub in ["proc", "dumps"] {
        std::fs::remove_dir(root.join(sub)).unwrap();
    }
    daemon.import(
        &root,
        "fadvise-shim-scratch:1",
        &[r#"ENTRYPOINT ["/fadvise-shim", "run", "--supervise", "--dump-dir", "/dumps", "--"]"#],
    );
    let rounds = ROUNDS.to_string();
    let output = daemon
        .client()
        .args(["run", "--rm", "--network=none", "-v"])
        .arg(mount(&data_dir, "/data"))
        .arg("-v")
        .arg(mount(&dumps, "/dumps"))
        .args([
            "fadvise-shim-scratch:1",
            "/calls",
            "loop",
            "/data/file",
            &rounds,
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        common::table_row(&stderr, fadvise_shim_core::call::Call::Fsync).is_some(),
        "run's table:\n{stderr}"
    );
    let report = daemon
        .docker(&[
            "run",
            "--rm",
            "--network=none",
            "-v",
            &mount(&dumps, "/dumps"),
            "--entrypoint",
            "/fadvise-shim",
            "fadvise-shim-scratch:1",
            "report",
            "--format",
            "json",
            "/dumps",
        ])
        .expect("report in a container");
    assert_loop_counted(&json(&report));
}

/// `dump` and `doctor` inside the container of a live program that runs
/// under the library: `docker exec` of the CLI installed in the image.
#[test]
fn dump_and_doctor_run_inside_a_container() {
    let Some(daemon) = daemon_or_skip() else {
        return;
    };
    let root = install_support::fake_glibc_root();
    let shim = root.path().join("usr/lib/fadvise-shim");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::create_dir_all(root.path().join("tmp")).unwrap();
    std::fs::copy(cli(), shim.join("fadvise-shim")).unwrap();
    std::fs::copy(library(), shim.join("libfadvise_shim.so")).unwrap();
    let program = common::compile_c("c_doctor", "fsync_then_wait", "fsync_then_wait", &[]);
    std::fs::copy(program, root.path().join("usr/bin/fsync_then_wait")).unwrap();
    daemon.import(root.path(), "fadvise-shim-glibc:1", &[]);
    let id = daemon
        .docker(&[
            "run",
            "-d",
            "--network=none",
            "-e",
            "LD_PRELOAD=/usr/lib/fadvise-shim/libfadvise_shim.so",
            "fadvise-shim-glibc:1",
            "/usr/bin/fsync_then_wait",
            "/tmp/data",
            "4",
        ])
        .expect("docker run");
    let ready = common::poll(Duration::from_secs(20), || {
        let logs = daemon.docker(&["logs", &id]).ok()?;
        logs.contains("ready").then_some(())
    });
    assert!(ready.is_some(), "{:?}", daemon.docker(&["logs", &id]));
    let exec = |args: &[&str]| {
        daemon.docker(&[&["exec", &id, "/usr/lib/fadvise-shim/fadvise-shim"], args].concat())
    };
    let dump = exec(&["dump", "1"]);
    let doctor = exec(&["doctor", "1"]);
    let _ = daemon.docker(&["rm", "-f", &id]);
    let dump = dump.expect("dump inside the container");
    let row = common::table_row(&dump, fadvise_shim_core::call::Call::Fsync)
        .unwrap_or_else(|| panic!("no fsync row:\n{dump}"));
    assert_eq!(row[0], 4, "{dump}");
    let doctor = doctor.expect("doctor inside the container");
    assert!(
        doctor.contains("library: /usr/lib/fadvise-shim/libfadvise_shim.so"),
        "{doctor}"
    );
}
