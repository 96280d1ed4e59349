//! A policy that cannot be read or does not validate is harmless at run
//! time: the host process prints exactly one stderr line, `fadvise-shim:`
//! with the file and its first error (`FILE:LINE:COL:` for what the parser
//! refuses, the same first error `fadvise-shim check` names), and is
//! otherwise unaffected: same stdout, same exit status, every call passes.
//! A C program sees that from the kernel's side (a seccomp filter answers
//! EPERM to the intercepted syscalls); `dd oflag=nocache` is counted with
//! strace. (`check` itself is tested in tests/check.rs.)

mod common;
mod policy_common;

use std::path::{Path, PathBuf};

use common::{clean_command, library, run, Finished, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::policy::POLICY_ENV;
use policy_common::policy_program;

/// A bad policy: its bytes and where its first error is (`None` when the
/// file cannot be read at all).
struct Bad {
    name: &'static str,
    text: &'static [u8],
    first_error: Option<(usize, usize)>,
}

const fn bad(name: &'static str, text: &'static [u8], line: usize, column: usize) -> Bad {
    Bad {
        name,
        text,
        first_error: Some((line, column)),
    }
}

/// One policy per validation, plus bytes that are not TOML.
const BAD: &[Bad] = &[
    bad("toml-syntax", b"[dump]\nsignal = \"SIGUSR1\n", 2, 18),
    bad(
        "unknown-key",
        b"[[rule]]\ncall = \"fsync\"\naction = \"drop\"\npaht = [\"/x/**\"]\n",
        4,
        1,
    ),
    bad(
        "unknown-call",
        b"[[rule]]\ncall = [\"fsync\", \"fadvise\"]\naction = \"drop\"\n",
        2,
        18,
    ),
    bad(
        "unknown-advice",
        b"[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dont_need\"\naction = \"drop\"\n",
        3,
        10,
    ),
    bad(
        "unknown-action",
        b"[[rule]]\ncall = \"fsync\"\naction = \"dorp\"\n",
        3,
        10,
    ),
    bad(
        "unknown-scope",
        b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\nscope = \"hots\"\n",
        5,
        9,
    ),
    bad("unknown-signal", b"[dump]\nsignal = \"SIGUSR3\"\n", 2, 10),
    bad(
        "advice-on-fsync",
        b"[[rule]]\ncall = \"fsync\"\nadvice = \"dontneed\"\naction = \"drop\"\n",
        3,
        1,
    ),
    bad(
        "limit-without-rate",
        b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\n",
        3,
        10,
    ),
    bad(
        "rate-zero",
        b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 0\n",
        4,
        8,
    ),
    bad(
        "rate-negative",
        b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = -5\n",
        4,
        8,
    ),
    bad(
        "rate-inf",
        b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = inf\n",
        4,
        8,
    ),
    bad(
        "burst-zero",
        b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\nburst = 0\n",
        5,
        9,
    ),
    bad(
        "malformed-glob",
        b"[[rule]]\ncall = \"fsync\"\npath = [\"/srv/[log\"]\naction = \"drop\"\n",
        3,
        9,
    ),
    bad("sigkill", b"[dump]\nsignal = \"SIGKILL\"\n", 2, 10),
    bad("sigsegv", b"[dump]\nsignal = \"SIGSEGV\"\n", 2, 10),
    bad(
        "invalid-utf8",
        b"# ok\n[dump]\nsignal = \"SIG\xc3\x28\"\n",
        3,
        14,
    ),
    bad(
        "garbage",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x03\x00>\x00",
        1,
        1,
    ),
    // Several errors still cost one line: the first.
    bad(
        "many-errors",
        b"[dump]\nsignal = \"SIGKILL\"\n\n[[rule]]\ncall = \"fsink\"\naction = \"dorp\"\n",
        2,
        10,
    ),
    Bad {
        name: "missing-file",
        text: b"",
        first_error: None,
    },
    Bad {
        name: "directory",
        text: b"",
        first_error: None,
    },
    // Opening a FIFO for reading waits for a writer: the shim must not,
    // or every process (`timeout` and `kill` too) hangs at start-up.
    Bad {
        name: "fifo",
        text: b"",
        first_error: None,
    },
];

/// Where `case`'s policy is: a file holding its bytes, a path with nothing
/// behind it, a directory, or a FIFO nobody writes to.
fn policy_path(scratch: &Scratch, case: &Bad) -> PathBuf {
    let path = scratch.file(&format!("{}.toml", case.name));
    match case.name {
        "missing-file" => {}
        "directory" => std::fs::create_dir(&path).expect("policy directory"),
        "fifo" => {
            let status = std::process::Command::new("mkfifo").arg(&path).status();
            assert!(status.is_ok_and(|status| status.success()), "mkfifo");
        }
        _ => std::fs::write(&path, case.text).expect("write policy"),
    }
    path
}

/// The one line a host process may print for `case`, before what the shim
/// says it does next.
fn expected_line_start(path: &Path, case: &Bad) -> String {
    let shown = path.display();
    let Some((line, column)) = case.first_error else {
        return format!("fadvise-shim: {shown}: cannot read the policy: ");
    };
    // `check` names the same first error, with the same message.
    let output = clean_command(common::cli())
        .arg("check")
        .arg(path)
        .output()
        .expect("run check");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}: check accepted it",
        case.name
    );
    let errors = String::from_utf8_lossy(&output.stderr);
    let first = errors.lines().next().unwrap_or_default();
    let position = format!("{shown}:{line}:{column}: ");
    assert!(
        first.starts_with(&position),
        "{}: check's first error {first:?} is not at {position}",
        case.name
    );
    format!("fadvise-shim: {first}")
}

/// Exactly one stderr line, starting with `start`.
fn assert_one_line(stderr: &str, start: &str, what: &str) {
    assert!(
        stderr.ends_with('\n') && stderr.matches('\n').count() == 1 && stderr.starts_with(start),
        "{what}: expected one line starting with {start:?}, got {stderr:?}"
    );
}

/// `one_call` with `policy` in its environment (`None`: without the shim).
fn one_call(scratch: &Scratch, policy: Option<&Path>) -> Finished {
    let mut command = scratch.command(policy_program("one_call"), Shim::Off);
    if let Some(policy) = policy {
        command.env("LD_PRELOAD", library()).env(POLICY_ENV, policy);
    }
    command.arg(scratch.file("data"));
    run(&mut command, TIMEOUT)
}

/// `dd oflag=nocache` under strace, with `policy` in its environment
/// (`None`: without the shim); returns how it ended and how many fadvise64
/// system calls it made.
fn dd_nocache(scratch: &Scratch, policy: Option<&Path>, log_name: &str) -> (Finished, usize) {
    let log = scratch.file(log_name);
    let mut command = scratch.command("strace", Shim::Off);
    command
        .args(["-f", "-qq", "-e", "trace=fadvise64", "-o"])
        .arg(&log);
    if let Some(policy) = policy {
        command
            .arg("-E")
            .arg(format!("LD_PRELOAD={}", library().display()));
        command.env(POLICY_ENV, policy);
    }
    command
        .arg("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", scratch.file("dd.out").display()))
        .args(["bs=128k", "count=4", "oflag=nocache", "status=none"]);
    let finished = run(&mut command, TIMEOUT);
    let traced = std::fs::read_to_string(&log).expect("strace log");
    let calls = traced
        .lines()
        .filter(|line| line.contains("fadvise64("))
        .count();
    (finished, calls)
}

#[test]
fn every_bad_policy_costs_one_stderr_line_and_nothing_else() {
    assert!(BAD.len() >= 15);
    let scratch = Scratch::new();
    let plain = one_call(&scratch, None);
    assert_eq!(plain.status.code(), Some(5), "{plain}");
    assert_eq!(plain.stderr, "");
    assert_eq!(
        plain.stdout, "one_call posix_fadvise ret=1 errno=12345\none_call fsync ret=-1 errno=1\n",
        "without the shim both calls reach the kernel"
    );
    let (plain_dd, plain_dd_calls) = dd_nocache(&scratch, None, "dd-plain.strace");
    assert!(
        plain_dd.status.success() && plain_dd.stderr.is_empty(),
        "{plain_dd}"
    );
    assert!(
        plain_dd_calls >= 4,
        "dd oflag=nocache made {plain_dd_calls} fadvise64 calls"
    );

    for case in BAD {
        let path = policy_path(&scratch, case);
        let start = expected_line_start(&path, case);

        let shimmed = one_call(&scratch, Some(&path));
        assert_eq!(
            shimmed.status.code(),
            plain.status.code(),
            "{}: {shimmed}",
            case.name
        );
        // The same stdout means both calls still reached the kernel.
        assert_eq!(shimmed.stdout, plain.stdout, "{}: {shimmed}", case.name);
        assert_one_line(&shimmed.stderr, &start, case.name);

        let log_name = format!("dd-{}.strace", case.name);
        let (dd, dd_calls) = dd_nocache(&scratch, Some(&path), &log_name);
        assert_eq!(dd.status.code(), Some(0), "{}: dd {dd}", case.name);
        assert_eq!(dd.stdout, "", "{}: dd {dd}", case.name);
        assert_one_line(&dd.stderr, &start, case.name);
        assert_eq!(
            dd_calls, plain_dd_calls,
            "{}: dd's fadvise64 calls",
            case.name
        );
    }
}

/// The strace count above is not blind: a policy that drops the calls
/// takes every fadvise64 away from dd.
#[test]
fn strace_sees_dd_calls_a_valid_policy_drops() {
    let scratch = Scratch::new();
    let policy = scratch.policy_file(common::DROP_ALL);
    let (dd, calls) = dd_nocache(&scratch, Some(&policy), "dd-drop.strace");
    assert!(dd.status.success() && dd.stderr.is_empty(), "{dd}");
    assert_eq!(calls, 0);
}
