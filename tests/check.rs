//! `fadvise-shim check` from the outside: the built binary is run on policy
//! files written to a temporary directory, and must refuse each bad one with
//! exit 1 and a `FILE:LINE:COL: message` line pointing at the fault, accept
//! the shipped example, and summarise a valid policy on stdout.

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

/// A bad policy, and the error it must produce: line, column (when the
/// position within the line matters) and a fragment of the message.
struct Bad {
    name: &'static str,
    text: &'static [u8],
    line: usize,
    column: Option<usize>,
    fragment: &'static str,
}

const fn bad(
    name: &'static str,
    text: &'static [u8],
    line: usize,
    column: Option<usize>,
    fragment: &'static str,
) -> Bad {
    Bad {
        name,
        text,
        line,
        column,
        fragment,
    }
}

/// One case per validation the parser makes, plus bytes that are not TOML.
const BAD: &[Bad] = &[
    bad("toml-syntax", b"[dump]\nsignal = \"SIGUSR1\n", 2, None, "TOML syntax"),
    bad("duplicate-key", b"[dump]\non_exit = true\non_exit = false\n", 3, Some(1), "duplicate key"),
    bad("garbage", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x03\x00>\x00", 1, None, "TOML syntax"),
    bad("invalid-utf8", b"# ok\n[dump]\nsignal = \"SIG\xc3\x28\"\n", 3, Some(14), "invalid UTF-8 (byte 0xc3)"),
    bad("unknown-top-key", b"[rules]\ncall = \"fsync\"\n", 1, Some(2), "unknown key `rules` at the top level; did you mean `rule`?"),
    bad("unknown-rule-key", b"[[rule]]\ncall = \"fsync\"\nacton = \"drop\"\n", 3, Some(1), "unknown key `acton` in [[rule]]; did you mean `action`?"),
    bad("unknown-dump-key", b"[dump]\nsignl = \"SIGUSR2\"\n", 2, Some(1), "did you mean `signal`?"),
    bad("unknown-call", b"[[rule]]\ncall = [\"fsync\", \"fadvise\"]\naction = \"drop\"\n", 2, Some(18), "unknown call `fadvise`; did you mean `posix_fadvise`?"),
    bad("unknown-advice", b"[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dont_need\"\naction = \"drop\"\n", 3, Some(10), "did you mean `dontneed`?"),
    bad("unknown-action", b"[[rule]]\ncall = \"fsync\"\naction = \"dorp\"\n", 3, Some(10), "unknown action `dorp`; did you mean `drop`?"),
    bad("unknown-scope", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\nscope = \"hots\"\n", 5, Some(9), "did you mean `host`?"),
    bad("unknown-signal", b"[dump]\nsignal = \"SIGUSR3\"\n", 2, Some(10), "unknown signal `SIGUSR3`"),
    bad("uncatchable-signal", b"[dump]\nsignal = \"SIGKILL\"\n", 2, Some(10), "cannot be caught"),
    bad("signal-programs-use", b"[dump]\nsignal = \"SIGCHLD\"\n", 2, Some(10), "would break programs"),
    bad("signal-past-rtmax", b"[dump]\nsignal = \"SIGRTMIN+99\"\n", 2, Some(10), "past SIGRTMAX"),
    bad("type-on-exit", b"[dump]\non_exit = \"yes\"\n", 2, Some(11), "`on_exit` must be true or false, not a string"),
    bad("type-rate", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = \"100\"\n", 4, Some(8), "`rate` must be a number"),
    bad("type-call", b"[[rule]]\ncall = 3\naction = \"drop\"\n", 2, Some(8), "must be a string or an array of strings"),
    bad("type-rule-table", b"[rule]\ncall = \"fsync\"\n", 1, None, "write [[rule]]"),
    bad("advice-on-fsync", b"[[rule]]\ncall = [\"posix_fadvise\", \"fsync\"]\nadvice = \"dontneed\"\naction = \"drop\"\n", 3, Some(1), "`advice` applies only to posix_fadvise"),
    bad("advice-on-all-calls", b"[[rule]]\ncall = \"*\"\nadvice = \"willneed\"\naction = \"drop\"\n", 3, Some(1), "also covers readahead"),
    bad("limit-without-rate", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\n", 3, Some(10), "needs `rate`"),
    bad("rate-zero", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 0\n", 4, Some(8), "positive, finite"),
    bad("rate-negative", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = -5\n", 4, Some(8), "not -5"),
    bad("rate-nan", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = nan\n", 4, Some(8), "not NaN"),
    bad("burst-inf", b"[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\nburst = inf\n", 5, Some(9), "`burst` must be a finite number"),
    bad("rate-on-drop", b"[[rule]]\ncall = \"fsync\"\naction = \"drop\"\nburst = 5\n", 4, Some(1), "`burst` applies only to action = \"limit\""),
    bad("malformed-glob", b"[[rule]]\ncall = \"fsync\"\npath = [\"/var/log/**\", \"/srv/[log\"]\naction = \"drop\"\n", 3, Some(24), "invalid glob"),
    bad("unreachable-glob", b"[[rule]]\ncall = \"fsync\"\npath = \"*.log\"\naction = \"drop\"\n", 3, Some(8), "write `**/*.log`"),
    bad("unclosed-brace-glob", b"[[rule]]\ncall = \"fsync\"\nexe = \"/usr/{bin,sbin/db\"\naction = \"drop\"\n", 3, Some(7), "unclosed `{`"),
    bad("directory-glob", b"[[rule]]\ncall = \"fsync\"\npath = \"/var/log/\"\naction = \"drop\"\n", 3, Some(8), "write `/var/log/**`"),
    bad("path-on-sync", b"[[rule]]\ncall = \"sync\"\npath = \"/var/**\"\naction = \"drop\"\n", 3, Some(1), "`sync`, which has no file"),
    bad("missing-call", b"# first rule\n[[rule]]\naction = \"drop\"\n", 2, Some(1), "has no `call`"),
    bad("missing-action", b"[[rule]]\ncall = \"fsync\"\n", 1, Some(1), "has no `action`"),
    bad("empty-array", b"[[rule]]\ncall = \"fsync\"\nexe = []\naction = \"drop\"\n", 3, Some(7), "empty array"),
    bad("duplicate-name", b"[[rule]]\nname = \"a\"\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\n\n[[rule]]\nname = \"a\"\ncall = \"fdatasync\"\naction = \"drop\"\n", 8, Some(8), "already used at line 1"),
    bad("relative-dump-dir", b"[dump]\ndir = \"dumps\"\n", 2, Some(7), "absolute path"),
    bad("relative-limits-dir", b"[limits]\ndir = \"\"\n", 2, Some(7), "absolute path"),
];

fn check(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fadvise-shim"))
        .arg("check")
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("run fadvise-shim check")
}

/// Why the output does not show `case`'s error, if it does not.
fn mismatch(case: &Bad, path: &Path, output: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let prefix = match case.column {
        Some(column) => format!("{}:{}:{column}: ", path.display(), case.line),
        None => format!("{}:{}:", path.display(), case.line),
    };
    let found = stderr
        .lines()
        .any(|line| line.starts_with(&prefix) && line.contains(case.fragment));
    let well_formed = stderr
        .lines()
        .all(|line| line.starts_with(&format!("{}:", path.display())));
    if output.status.code() == Some(1) && found && well_formed && output.stdout.is_empty() {
        return None;
    }
    Some(format!(
        "{}: wanted exit 1 and `{prefix}…{}…`; got {:?}\n{stderr}",
        case.name, case.fragment, output.status
    ))
}

#[test]
fn bad_policies_are_refused_at_the_right_place() {
    let dir = TempDir::new().unwrap();
    let failures: Vec<String> = BAD
        .iter()
        .filter_map(|case| {
            let path = dir.path().join(format!("{}.toml", case.name));
            std::fs::write(&path, case.text).unwrap();
            mismatch(case, &path, &check(&path))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_is_reported_in_order() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("many.toml");
    let text = "[dump]\nsignal = \"SIGTERM\"\ndir = \"tmp\"\n\n[[rule]]\nacton = \"drop\"\ncall = \"fsink\"\n";
    std::fs::write(&path, text).unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let positions: Vec<&str> = stderr
        .lines()
        .map(|line| {
            let rest = line.strip_prefix(&format!("{}:", path.display())).unwrap();
            let end = rest.find(": ").unwrap();
            &rest[..end]
        })
        .collect();
    assert_eq!(positions, ["2:10", "3:7", "5:1", "6:1", "7:8"], "{stderr}");
}

#[test]
fn unreadable_files_get_one_clear_error() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("missing.toml");
    for (path, reason) in [
        (missing.as_path(), "No such file"),
        (dir.path(), "Is a directory"),
    ] {
        let output = check(path);
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8(output.stderr).unwrap();
        let expected = format!("fadvise-shim: {}: {reason}", path.display());
        assert!(stderr.starts_with(&expected), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn empty_file_is_the_built_in_default() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("empty.toml");
    std::fs::write(&path, "# nothing yet\n").unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.contains("signal SIGUSR1"), "{stdout}");
    assert!(stdout.contains("at exit: no"), "{stdout}");
    assert!(stdout.contains("no match: pass"), "{stdout}");
}

#[test]
fn shipped_example_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("policy.example.toml");
    let output = check(&example);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("drop posix_fadvise(dontneed) for paths /var/log/**"),
        "{stdout}"
    );
}

#[test]
fn valid_policy_is_summarised_rule_by_rule() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("policy.toml");
    let text = r#"
[dump]
dir = "/var/tmp/dumps"
signal = "rtmin+2"
on_exit = true

[[rule]]
name = "old-glog"
call = "posix_fadvise"
advice = ["dontneed"]
exe = "*falcon*"
path = "/var/log/**"
action = "drop"

[[rule]]
name = "sync-budget"
call = ["fsync", "fdatasync"]
action = "limit"
rate = 100
burst = 20
scope = "host"

[[rule]]
call = "*"
action = "pass"
"#;
    std::fs::write(&path, text).unwrap();
    let output = check(&path);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty());
    let stdout = String::from_utf8(output.stdout).unwrap();
    let expected = "\
valid policy
dump: signal SIGRTMIN+2, dir /var/tmp/dumps, at exit: yes
host-wide limits kept in /dev/shm/fadvise-shim
rules (the first that matches decides):
  1. old-glog: drop posix_fadvise(dontneed) in exe *falcon* for paths /var/log/**
  2. sync-budget: limit fsync, fdatasync to 100 calls/s, burst 20, shared by every process on the host
  3. line 23: pass every call
  no match: pass
";
    assert_eq!(stdout, expected);
}
