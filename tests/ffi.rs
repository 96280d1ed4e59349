//! Calls reached through lookups on a handle (issue 16): Python `ctypes`
//! through `CDLL("libc.so.6")`, `CDLL(None)` and
//! `CDLL(find_library("c"))`, and C programs using `dlopen`/`dlsym`/
//! `dlvsym` — every call counted and subject to drop rules, proved with
//! the kernel's view (strace); `RTLD_NEXT` lookups made by other libraries
//! give what they give without the shim; and another preload that
//! interposes `dlsym` keeps working in front of ours and behind it.

mod common;

use std::path::{Path, PathBuf};

use common::{compile_c, run, Scratch, Shim, TIMEOUT};
use serde_json::Value;

const PYTHON: &str = r#"
import ctypes, ctypes.util, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
libc = ctypes.CDLL("libc.so.6")
for _ in range(100): libc.fsync(fd)
for _ in range(50): os.fsync(fd)
everything = ctypes.CDLL(None)
for _ in range(25): everything.fdatasync(fd)
found = ctypes.CDLL(ctypes.util.find_library("c"))
for _ in range(10): found.fsync(fd)
print("done")
"#;

fn report(dir: &Path) -> Value {
    let output = common::clean_command(common::cli())
        .args(["report", "--format", "json"])
        .arg(dir)
        .output()
        .expect("report runs");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("json")
}

fn count(report: &Value, call: &str, field: &str) -> u64 {
    report["calls"][call][field].as_u64().unwrap_or(0)
}

/// The number of `name(` system calls in an strace log.
fn traced(log: &Path, name: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(&format!("{name}(")))
        .count()
}

fn strace(
    scratch: &Scratch,
    shim: Shim,
    log: &Path,
    program: &[&std::ffi::OsStr],
) -> common::Finished {
    let mut command = scratch.command("strace", shim);
    command
        .args(["-f", "-qq", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(log)
        .args(program);
    run(&mut command, TIMEOUT)
}

#[test]
fn python_ctypes_calls_are_counted_and_dropped() {
    let scratch = Scratch::new();
    let script = scratch.file("calls.py");
    std::fs::write(&script, PYTHON).unwrap();
    let data = scratch.file("data");
    let observed = run(
        scratch
            .command("python3", Shim::Default)
            .arg(&script)
            .arg(&data),
        TIMEOUT,
    );
    observed.assert_success("python under the shim");
    let merged = report(&scratch.stats_dir());
    assert_eq!(count(&merged, "fsync", "passed"), 160, "{merged}");
    assert_eq!(count(&merged, "fdatasync", "passed"), 25, "{merged}");

    let dropping = Scratch::new();
    std::fs::write(dropping.file("calls.py"), PYTHON).unwrap();
    let log = dropping.file("strace.log");
    let policy = "[[rule]]\ncall = [\"fsync\", \"fdatasync\"]\naction = \"drop\"\n";
    let finished = strace(
        &dropping,
        Shim::Policy(policy),
        &log,
        &[
            "python3".as_ref(),
            dropping.file("calls.py").as_os_str(),
            dropping.file("data").as_os_str(),
        ],
    );
    finished.assert_success("python dropping");
    assert_eq!(
        traced(&log, "fsync") + traced(&log, "fdatasync"),
        0,
        "the kernel saw a sync"
    );
    let merged = report(&dropping.stats_dir());
    assert_eq!(count(&merged, "fsync", "dropped"), 160, "{merged}");
    assert_eq!(count(&merged, "fdatasync", "dropped"), 25, "{merged}");
}

fn lookups_program() -> PathBuf {
    let library = compile_c("c_ffi", "next", "libnext.so", &["-shared", "-fPIC", "-ldl"]);
    let dir = library.parent().unwrap().display().to_string();
    compile_c(
        "c_ffi",
        "lookups",
        "lookups",
        &[
            &format!("-L{dir}"),
            &format!("-Wl,-rpath,{dir}"),
            "-lnext",
            "-ldl",
        ],
    )
}

#[test]
fn dlsym_and_dlvsym_on_a_handle_reach_the_hooks_and_rtld_next_stays_the_callers() {
    let program = lookups_program();
    let without = Scratch::new();
    let plain = run(
        without
            .command(&program, Shim::Off)
            .arg(without.file("data"))
            .arg("7"),
        TIMEOUT,
    );
    plain.assert_success("lookups without the shim");

    let scratch = Scratch::new();
    let log = scratch.file("strace.log");
    let policy = "[[rule]]\ncall = \"fsync\"\naction = \"drop\"\n";
    let dropped = strace(
        &scratch,
        Shim::Policy(policy),
        &log,
        &[
            program.as_os_str(),
            scratch.file("data").as_os_str(),
            "7".as_ref(),
        ],
    );
    dropped.assert_success("lookups dropping");
    assert_eq!(traced(&log, "fsync"), 0, "the kernel saw an fsync");
    let merged = report(&scratch.stats_dir());
    assert_eq!(count(&merged, "fsync", "dropped"), 28, "{merged}");
    // A library's own RTLD_NEXT lookup finds what it finds without us.
    let next = |stdout: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("next-from-library "))
            .map(str::to_owned)
    };
    assert_eq!(next(&dropped.stdout), next(&plain.stdout), "{dropped}");
    assert_eq!(next(&plain.stdout).as_deref(), Some("libc.so.6"));
}

#[test]
fn another_dlsym_interposer_works_in_front_of_ours_and_behind_it() {
    let program = lookups_program();
    let wrapper = compile_c(
        "c_ffi",
        "dlsym_wrapper",
        "libdlsym_wrapper.so",
        &["-shared", "-fPIC", "-ldl"],
    );
    let shim = common::library();
    // Behind ours, the wrapper's lookups on a handle come to us: every call
    // counted. In front of ours, it forwards them to glibc's `dlsym@GLIBC_2.34`
    // by version (which our unversioned `dlsym` cannot answer), so the one
    // lookup on a handle it forwards escapes our mapping; the others are ours.
    for (order, counted) in [([&shim, &wrapper], 20), ([&wrapper, &shim], 15)] {
        let scratch = Scratch::new();
        let preload = format!("{}:{}", order[0].display(), order[1].display());
        let finished = run(
            scratch
                .command(&program, Shim::Default)
                .env("LD_PRELOAD", &preload)
                .arg(scratch.file("data"))
                .arg("5"),
            TIMEOUT,
        );
        finished.assert_success(&preload);
        assert!(
            finished.stderr.lines().any(|line| {
                line.strip_prefix("wrapper forwarded ")
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n >= 3)
            }),
            "{preload}: {finished}"
        );
        let merged = report(&scratch.stats_dir());
        assert_eq!(
            count(&merged, "fsync", "passed"),
            counted,
            "{preload}: {merged}"
        );
        assert!(
            finished.stdout.contains("next-from-library libc.so.6"),
            "{finished}"
        );
    }
}

/// A Java program calling libc through JNA (Debian's `libjna-java`).
fn jna_program(scratch: &Scratch) -> Option<PathBuf> {
    let jar = Path::new("/usr/share/java/jna.jar");
    if !jar.is_file()
        || std::process::Command::new("javac")
            .arg("-version")
            .output()
            .is_err()
    {
        eprintln!("skipped: needs javac and libjna-java (scripts/setup.sh installs them)");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/java_ffi/Calls.java");
    let classes = scratch.file("classes");
    std::fs::create_dir_all(&classes).unwrap();
    let compiled = std::process::Command::new("javac")
        .arg("-cp")
        .arg(jar)
        .arg("-d")
        .arg(&classes)
        .arg(&source)
        .output()
        .expect("javac runs");
    assert!(compiled.status.success(), "{compiled:?}");
    Some(classes)
}

#[test]
fn java_jna_calls_are_counted_and_dropped() {
    for (policy, verdict) in [
        (None, "passed"),
        (
            Some("[[rule]]\ncall = [\"fsync\", \"posix_fadvise\"]\naction = \"drop\"\n"),
            "dropped",
        ),
    ] {
        let scratch = Scratch::new();
        let Some(classes) = jna_program(&scratch) else {
            return;
        };
        let shim = match policy {
            Some(text) => Shim::Policy(text),
            None => Shim::Default,
        };
        let finished = run(
            scratch
                .command("java", shim)
                .arg("-Djna.nosys=false")
                .arg("-cp")
                .arg(format!("/usr/share/java/jna.jar:{}", classes.display()))
                .arg("Calls")
                .arg(scratch.file("data"))
                .arg("30"),
            TIMEOUT,
        );
        finished.assert_success("java under the shim");
        assert!(finished.stdout.contains("done 0"), "{finished}");
        let merged = report(&scratch.stats_dir());
        assert_eq!(count(&merged, "fsync", verdict), 30, "{merged}");
        assert_eq!(count(&merged, "posix_fadvise", verdict), 30, "{merged}");
    }
}

/// The shim loaded with `dlopen` (after libc) rather than preloaded: its
/// `dlsym` still answers.
#[test]
fn a_shim_loaded_with_dlopen_still_answers_dlsym() {
    let program = compile_c("c_ffi", "dlopen_shim", "dlopen_shim", &["-ldl"]);
    let scratch = Scratch::new();
    let finished = run(
        scratch.command(&program, Shim::Off).arg(common::library()),
        TIMEOUT,
    );
    finished.assert_success("dlopen of the shim");
    assert_eq!(finished.stdout, "found\n", "{finished}");
}
