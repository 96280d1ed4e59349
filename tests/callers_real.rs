//! Who made the call (issue 15), in real programs: `report --by caller`
//! must attribute PostgreSQL's WAL syncs to the `postgres` executable, the
//! JDK's `FileChannel.force` to its `libnio.so`, and glog's page dropping to
//! `libglog.so`, with the counts the kernel saw (`strace`) or the server
//! counted (`pg_stat_wal`); and `caller` rules must drop only the named
//! module's calls: glog's `posix_fadvise` but not the program's own, and
//! (by a path glob) libnio's `fsync` but not its `fdatasync`.
//!
//! Each site's address is checked against the module's own code: it must be
//! the return address of a call to the expected function, as `objdump -d`
//! disassembles the file, and the module's build id must be the one
//! `readelf -n` reads from it.
//!
//! What Debian's files let us name (and so what is asserted):
//! - `postgres` (15) is stripped but exports nearly every function in
//!   `.dynsym` (for extensions), so most sites are named (`FileSync`,
//!   `fsync_fname_ext`, `update_controlfile`, ...). `pg_fdatasync` tail-calls
//!   (`jmp`) libc, so the WAL's return address is in its caller: the
//!   exported `issue_xlog_fsync` is a 33-byte stub that jumps to a static
//!   part of itself (GCC's partial inlining), which no symbol names and no
//!   debug file Debian installs does. So the WAL site is asserted by
//!   address: after the one `call pg_fdatasync`.
//! - `libnio.so` keeps its `.symtab`: `Java_sun_nio_ch_FileDispatcherImpl_force0`
//!   is named.
//! - `libglog.so` is stripped and `LogFileObject::Write` is not exported, so
//!   the site has no function: the module and the address after its one
//!   `call posix_fadvise@plt` are asserted.
//!
//! Each test skips with a message when its program is missing;
//! scripts/setup.sh installs them all.

mod callers_support;
mod common;
mod postgres_support;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use callers_support::{groups, report_by_caller};
use common::{run, Scratch, Shim, TIMEOUT};
use postgres_support::{assert_ran, Cluster};
use serde_json::Value;

/// The groups whose module's file name starts with `prefix`.
fn of_module<'a>(report: &'a Value, prefix: &'a str) -> impl Iterator<Item = &'a Value> {
    groups(report).filter(move |group| {
        group["key"]["module"]
            .as_str()
            .and_then(|path| Path::new(path).file_name())
            .is_some_and(|name| name.to_string_lossy().starts_with(prefix))
    })
}

fn count(group: &Value, call: &str, field: &str) -> u64 {
    group["calls"][call][field].as_u64().unwrap_or(0)
}

/// `call`'s `field` in every group, `other` included.
fn total(report: &Value, call: &str, field: &str) -> u64 {
    groups(report).map(|group| count(group, call, field)).sum()
}

fn address(group: &Value) -> u64 {
    let text = group["key"]["address"].as_str().expect("address");
    u64::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex address")
}

/// A module's calls as its file holds them: `objdump -d` (read once per
/// module: a 9 MB executable takes seconds) and `readelf -n`.
struct Code {
    module: PathBuf,
    build_id: String,
    /// The return addresses (the call's address plus its length) of every
    /// `call`, by callee (`posix_fadvise@plt`, `pg_fdatasync@@Base`).
    returns: HashMap<String, Vec<u64>>,
}

impl Code {
    fn read(module: &Path) -> Code {
        let output = Command::new("objdump")
            .arg("-d")
            .arg(module)
            .output()
            .expect("objdump runs (binutils)");
        assert!(output.status.success(), "{output:?}");
        let mut returns: HashMap<String, Vec<u64>> = HashMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            // `  199d9:\te8 02 ea fe ff       \tcall   83e0 <posix_fadvise@plt>`
            let mut fields = line.split('\t');
            let (Some(at), Some(bytes), Some(instruction)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let (Some(at), Some(callee)) = (
                at.trim()
                    .strip_suffix(':')
                    .and_then(|at| u64::from_str_radix(at, 16).ok()),
                instruction
                    .strip_prefix("call")
                    .and_then(|rest| rest.split_once('<'))
                    .and_then(|(_, callee)| callee.strip_suffix('>')),
            ) else {
                continue;
            };
            let length = bytes.split_whitespace().count() as u64;
            returns
                .entry(callee.to_owned())
                .or_default()
                .push(at + length);
        }
        let notes = Command::new("readelf")
            .arg("-n")
            .arg(module)
            .output()
            .expect("readelf runs (binutils)");
        let build_id = String::from_utf8_lossy(&notes.stdout)
            .lines()
            .find_map(|line| Some(line.trim().strip_prefix("Build ID: ")?.to_owned()))
            .unwrap_or_else(|| panic!("no build id in {}", module.display()));
        Code {
            module: module.to_owned(),
            build_id,
            returns,
        }
    }

    /// Where calls to `callee` return to.
    fn returns_from(&self, callee: &str) -> &[u64] {
        self.returns.get(callee).map_or(&[], Vec::as_slice)
    }

    /// The group is this module's (path and the build id the file holds),
    /// and its address is the return address of a call to `callee` in it.
    fn assert_site_calls(&self, group: &Value, callee: &str) {
        assert_eq!(
            group["key"]["module"].as_str().map(Path::new),
            Some(self.module.as_path()),
            "{group:#}"
        );
        assert_eq!(group["key"]["build_id"], self.build_id, "{group:#}");
        let sites = self.returns_from(callee);
        assert!(
            sites.contains(&address(group)),
            "{:#x} follows no call to {callee} in {} (those return to {sites:x?}): {group:#}",
            address(group),
            self.module.display()
        );
    }
}

/// The code of the module `group` names.
fn code_of(group: &Value) -> Code {
    Code::read(Path::new(group["key"]["module"].as_str().expect("module")))
}

/// How many of each of `calls` the kernel saw in an `strace -f -o` log.
fn kernel_counts(log: &Path, calls: &[&str]) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(log).unwrap();
    let mut seen = HashMap::new();
    for line in text.lines() {
        for call in calls {
            // `PID fsync(3) = 0`
            if line.contains(&format!(" {call}(")) {
                *seen.entry((*call).to_owned()).or_insert(0) += 1;
            }
        }
    }
    seen
}

/// `command` (the program and its arguments) under `strace -f`, tracing
/// only `calls` (with seccomp, so untraced calls run at full speed).
fn under_strace(
    scratch: &Scratch,
    shim: Shim,
    command: &[&dyn AsRef<std::ffi::OsStr>],
    calls: &[&str],
) -> (common::Finished, HashMap<String, usize>) {
    let log = scratch.file("strace.log");
    let mut traced = scratch.command("strace", shim);
    traced
        .args(["-f", "-qq", "--seccomp-bpf", "-e"])
        .arg(format!("trace={}", calls.join(",")))
        .arg("-o")
        .arg(&log);
    for arg in command {
        traced.arg(arg);
    }
    let finished = run(&mut traced, TIMEOUT);
    let seen = kernel_counts(&log, calls);
    (finished, seen)
}

#[test]
fn postgresql_wal_syncs_are_attributed_to_the_postgres_executable() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let method = cluster.psql("show wal_sync_method");
    let init = cluster.pgbench(&["-i", "-q"]);
    let load = cluster.pgbench(&["-c", "1", "-t", "200"]);
    // The server's own count of its WAL syncs.
    let wal_syncs = cluster.psql("select wal_sync from pg_stat_wal");
    let checkpoint = cluster.psql("checkpoint");
    // The checkpointer is alive: its record is read as a live process's
    // (modules under /proc/PID/root).
    let live = report_by_caller(&cluster.stats);
    let stopped = cluster.stop();
    for (output, what) in [
        (&method, "show wal_sync_method"),
        (&init, "pgbench -i"),
        (&load, "pgbench"),
        (&wal_syncs, "pg_stat_wal"),
        (&checkpoint, "checkpoint"),
        (&stopped, "pg_ctl stop"),
    ] {
        assert_ran(output, what);
    }
    assert_eq!(String::from_utf8_lossy(&method.stdout).trim(), "fdatasync");
    let wal_syncs: u64 = String::from_utf8_lossy(&wal_syncs.stdout)
        .trim()
        .parse()
        .expect("wal_sync");

    // Every process's statistics (all have exited).
    let report = report_by_caller(&cluster.stats);
    let all = total(&report, "fsync", "count") + total(&report, "fdatasync", "count");
    let postgres = cluster.bin.join("postgres");
    let own: Vec<&Value> = groups(&report)
        .filter(|group| group["key"]["module"].as_str().map(Path::new) == Some(&postgres))
        .collect();
    let by_postgres: u64 = own
        .iter()
        .map(|group| count(group, "fsync", "count") + count(group, "fdatasync", "count"))
        .sum();
    assert!(
        by_postgres * 10 >= all * 9,
        "{by_postgres} of {all} syncs attributed to {}: {report:#}",
        postgres.display()
    );
    // The WAL's syncs: every fdatasync is from the caller of pg_fdatasync
    // (which tail-calls fdatasync), and there are at least as many as the
    // server counted.
    let code = Code::read(&postgres);
    let mut from_wal = 0;
    for group in own
        .iter()
        .filter(|group| count(group, "fdatasync", "count") > 0)
    {
        code.assert_site_calls(group, "pg_fdatasync@@Base");
        from_wal += count(group, "fdatasync", "count");
    }
    assert!(
        wal_syncs >= 200 && from_wal >= wal_syncs,
        "pg_stat_wal.wal_sync {wal_syncs}, fdatasync after pg_fdatasync {from_wal}: {report:#}"
    );
    // The checkpoint's syncs of relation files: md.c's FileSync, exported,
    // calls fsync itself.
    let file_sync: Vec<&&Value> = own
        .iter()
        .filter(|group| group["key"]["function"] == "FileSync")
        .collect();
    assert!(
        file_sync
            .iter()
            .any(|group| count(group, "fsync", "count") > 0),
        "{report:#}"
    );
    for group in file_sync {
        code.assert_site_calls(group, "fsync@plt");
    }
    assert!(
        groups(&live)
            .any(|group| group["key"]["function"] == "FileSync"
                && count(group, "fsync", "count") > 0),
        "{live:#}"
    );
}

/// The test's Java program, compiled; `None` without a JDK.
fn java_program(scratch: &Scratch) -> Option<PathBuf> {
    if Command::new("javac").arg("-version").output().is_err() {
        eprintln!("SKIPPED: needs javac and java (scripts/setup.sh installs them)");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/callers_real/Force.java");
    let classes = scratch.file("classes");
    let compiled = Command::new("javac")
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .output()
        .expect("javac runs");
    assert!(compiled.status.success(), "{compiled:?}");
    Some(classes)
}

/// `Force` forces its file this many times with `force(true)` and with
/// `force(false)`.
const FULL: usize = 7;
const DATA: usize = 5;

/// The Java program under `strace`: the kernel's fsync and fdatasync calls
/// and the report.
fn java_run(shim: Shim) -> Option<(HashMap<String, usize>, Value)> {
    let scratch = Scratch::new();
    let classes = java_program(&scratch)?;
    let (finished, kernel) = under_strace(
        &scratch,
        shim,
        &[
            &"java",
            &"-cp",
            &classes,
            &"Force",
            &scratch.file("data"),
            &FULL.to_string(),
            &DATA.to_string(),
        ],
        &["fsync", "fdatasync"],
    );
    finished.assert_success("java under the shim");
    assert_eq!(finished.stdout, "done\n", "{finished}");
    Some((kernel, report_by_caller(&scratch.stats_dir())))
}

/// The one libnio group with `call`s.
fn libnio_group<'a>(report: &'a Value, call: &str) -> &'a Value {
    let nio: Vec<&Value> = of_module(report, "libnio.so")
        .filter(|group| count(group, call, "count") > 0)
        .collect();
    assert_eq!(nio.len(), 1, "{call}: {report:#}");
    nio[0]
}

#[test]
fn java_file_channel_force_is_attributed_to_libnio() {
    let Some((kernel, report)) = java_run(Shim::Default) else {
        return;
    };
    assert_eq!(kernel.get("fsync"), Some(&FULL), "{kernel:?}");
    assert_eq!(kernel.get("fdatasync"), Some(&DATA), "{kernel:?}");
    for (call, libc, forced) in [
        ("fsync", "fsync@plt", FULL),
        ("fdatasync", "fdatasync@plt", DATA),
    ] {
        let group = libnio_group(&report, call);
        assert_eq!(count(group, call, "count"), forced as u64, "{report:#}");
        assert_eq!(total(&report, call, "count"), forced as u64, "{report:#}");
        assert_eq!(
            group["key"]["function"], "Java_sun_nio_ch_FileDispatcherImpl_force0",
            "{group:#}"
        );
        code_of(group).assert_site_calls(group, libc);
    }
}

#[test]
fn a_caller_rule_on_libnios_path_drops_its_fsync_only() {
    // A path glob: the JDK loads libnio.so itself (dlopen), from its home.
    let policy =
        "[[rule]]\ncall = \"fsync\"\ncaller = [\"/usr/lib/jvm/**/libnio.so\"]\naction = \"drop\"\n";
    let Some((kernel, report)) = java_run(Shim::Policy(policy)) else {
        return;
    };
    assert_eq!(kernel.get("fsync"), None, "{kernel:?}");
    assert_eq!(kernel.get("fdatasync"), Some(&DATA), "{kernel:?}");
    let fsync = libnio_group(&report, "fsync");
    assert_eq!(count(fsync, "fsync", "dropped"), FULL as u64, "{report:#}");
    let fdatasync = libnio_group(&report, "fdatasync");
    assert_eq!(
        count(fdatasync, "fdatasync", "passed"),
        DATA as u64,
        "{report:#}"
    );
}

/// The glog driver (`tests/callers_real/glog_calls.cc`), built once per
/// source; `None` without glog's headers and library.
fn glog_program() -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/callers_real/glog_calls.cc");
    if !Path::new("/usr/include/glog/logging.h").is_file() {
        eprintln!("SKIPPED: needs libgoogle-glog-dev (scripts/setup.sh installs it)");
        return None;
    }
    let text = std::fs::read(&source).unwrap();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c-programs")
        .join(format!("glog_calls-{:016x}", hasher.finish()));
    let binary = dir.join("glog_calls");
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _building = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !binary.is_file() {
        // Built under a name of its own and renamed into place: another test
        // may be building it.
        std::fs::create_dir_all(&dir).unwrap();
        let staging = dir.join(format!(".glog_calls-{}", std::process::id()));
        let compiled = Command::new("g++")
            .args(["-O2", "-o"])
            .arg(&staging)
            .arg(&source)
            .arg("-lglog")
            .output()
            .expect("g++ runs");
        assert!(compiled.status.success(), "{compiled:?}");
        std::fs::rename(&staging, &binary).unwrap();
    }
    Some(binary)
}

/// glog drops its files' pages every 2 MiB from 3 MiB on, in each of the two
/// files a WARNING line goes to (INFO and WARNING): 12,000 lines of about
/// 1 KiB (11.7 MiB) make 5 calls per file. main then makes `DIRECT` calls.
const LINES: &str = "12000";
const DIRECT: usize = 3;

/// glog under `strace`: the kernel's fadvise64 calls and the report.
fn glog_run(shim: Shim) -> Option<(HashMap<String, usize>, Value)> {
    let program = glog_program()?;
    let scratch = Scratch::new();
    let logs = scratch.file("logs");
    std::fs::create_dir(&logs).unwrap();
    let (finished, kernel) = under_strace(
        &scratch,
        shim,
        &[
            &program,
            &logs,
            &LINES,
            &scratch.file("data"),
            &DIRECT.to_string(),
        ],
        &["fadvise64"],
    );
    finished.assert_success("glog_calls under the shim");
    assert_eq!(finished.stdout, "done 0\n", "{finished}");
    Some((kernel, report_by_caller(&scratch.stats_dir())))
}

#[test]
fn glog_page_dropping_is_attributed_to_libglog() {
    let Some((kernel, report)) = glog_run(Shim::Default) else {
        return;
    };
    let glog: Vec<&Value> = of_module(&report, "libglog.so").collect();
    assert_eq!(glog.len(), 1, "{report:#}");
    let from_glog = count(glog[0], "posix_fadvise", "count");
    code_of(glog[0]).assert_site_calls(glog[0], "posix_fadvise@plt");
    // LogFileObject::Write is neither exported nor in a debug file Debian
    // installs: the site is the module and an offset.
    assert_eq!(glog[0]["key"]["function"], Value::Null, "{report:#}");
    let main: Vec<&Value> = of_module(&report, "glog_calls").collect();
    assert_eq!(main.len(), 1, "{report:#}");
    assert_eq!(main[0]["key"]["function"], "main", "{report:#}");
    assert_eq!(count(main[0], "posix_fadvise", "count"), DIRECT as u64);

    // Every call the kernel saw is attributed, and no other.
    let seen = kernel.get("fadvise64").copied().unwrap_or(0);
    assert!(from_glog >= 4, "{report:#}");
    assert_eq!(from_glog as usize + DIRECT, seen, "{kernel:?}: {report:#}");
    assert_eq!(
        total(&report, "posix_fadvise", "count"),
        seen as u64,
        "{report:#}"
    );
}

#[test]
fn a_caller_rule_drops_glogs_calls_but_not_the_programs_own() {
    let policy =
        "[[rule]]\ncall = \"posix_fadvise\"\ncaller = [\"libglog.so*\"]\naction = \"drop\"\n";
    let Some((kernel, report)) = glog_run(Shim::Policy(policy)) else {
        return;
    };
    // Only main's calls reach the kernel.
    assert_eq!(kernel.get("fadvise64"), Some(&DIRECT), "{kernel:?}");
    let glog: Vec<&Value> = of_module(&report, "libglog.so").collect();
    assert_eq!(glog.len(), 1, "{report:#}");
    assert!(
        count(glog[0], "posix_fadvise", "dropped") >= 4,
        "{report:#}"
    );
    assert_eq!(count(glog[0], "posix_fadvise", "passed"), 0, "{report:#}");
    let main: Vec<&Value> = of_module(&report, "glog_calls").collect();
    assert_eq!(count(main[0], "posix_fadvise", "passed"), DIRECT as u64);
    assert_eq!(
        total(&report, "posix_fadvise", "dropped"),
        count(glog[0], "posix_fadvise", "dropped"),
        "{report:#}"
    );
}
