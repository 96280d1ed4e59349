//! The kernel's view of intercepted calls: a dropped call must never reach
//! it, a passed one must. Proved from outside the shim with a seccomp filter
//! that fails every such system call with EPERM, with `strace`, and with the
//! page cache itself (`mincore` after `posix_fadvise(DONTNEED)`).

mod common;

use common::{c_program, run, Scratch, Shim, DROP_ALL, TIMEOUT};

/// The system calls behind the intercepted calls, as strace names them.
const SYSCALLS: [&str; 8] = [
    "fadvise64",
    "readahead",
    "sync_file_range",
    "fsync",
    "fdatasync",
    "syncfs",
    "sync",
    "msync",
];

fn kernel_view(scratch: &Scratch, shim: Shim) -> common::Finished {
    let mut command = scratch.command(c_program("kernel_view"), shim);
    command.arg(scratch.path());
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("kernel_view");
    assert!(finished.stdout.ends_with("sync done\n"), "{finished}");
    finished
}

/// The lines of `kernel_view` output that report a call (all but the last).
fn call_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|line| line.contains(" ret="))
        .collect()
}

#[test]
fn dropped_calls_never_reach_the_kernel() {
    let scratch = Scratch::new();
    let finished = kernel_view(&scratch, Shim::Policy(DROP_ALL));
    let lines = call_lines(&finished.stdout);
    assert_eq!(lines.len(), 16, "{finished}");
    for line in lines {
        assert!(
            line.ends_with(" ret=0 errno=12345"),
            "a dropped call reached the seccomp filter or touched errno: {line}\n{finished}"
        );
    }
}

#[test]
fn passed_calls_reach_the_kernel() {
    let scratch = Scratch::new();
    let without = kernel_view(&scratch, Shim::Off);
    let lines = call_lines(&without.stdout);
    assert_eq!(lines.len(), 16, "{without}");
    for line in lines {
        let expected = if line.starts_with("posix_fadvise") {
            " ret=1 errno=12345" // EPERM as the return value, errno untouched
        } else {
            " ret=-1 errno=1"
        };
        assert!(
            line.ends_with(expected),
            "seccomp filter did not answer: {line}"
        );
    }
    let with = kernel_view(&scratch, Shim::Default);
    assert_eq!(
        with.stdout, without.stdout,
        "built-in default changed results"
    );
    assert_eq!(with.stderr, "", "the shim printed something with no policy");
}

/// The system calls named in an strace log, one entry per call.
fn traced_calls(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| {
            let call = line.split_whitespace().nth(1)?;
            let name = call.split('(').next()?;
            SYSCALLS.contains(&name).then(|| line.to_string())
        })
        .collect()
}

fn strace_kernel_view(scratch: &Scratch, policy: Option<&str>, log_name: &str) -> String {
    let log = scratch.file(log_name);
    let mut command = scratch.command("strace", Shim::Off);
    command
        .arg("-f")
        .arg("-o")
        .arg(&log)
        .arg("-e")
        .arg(format!("trace={}", SYSCALLS.join(",")));
    // `-E` sets the shim up in the traced program only, not in strace.
    command
        .arg("-E")
        .arg(format!("LD_PRELOAD={}", common::library().display()));
    if let Some(policy) = policy {
        let path = scratch.policy_file(policy);
        command
            .arg("-E")
            .arg(format!("FADVISE_SHIM_POLICY={}", path.display()));
    }
    command
        .arg(c_program("kernel_view"))
        .arg(scratch.path())
        .arg("nofilter");
    run(&mut command, TIMEOUT).assert_success("strace kernel_view");
    std::fs::read_to_string(log).expect("strace log")
}

#[test]
fn strace_sees_no_dropped_call() {
    let scratch = Scratch::new();
    let passed = strace_kernel_view(&scratch, None, "passed.strace");
    let passed_calls = traced_calls(&passed);
    for name in SYSCALLS {
        assert!(
            passed_calls
                .iter()
                .any(|line| line.contains(&format!(" {name}("))),
            "strace should see {name} when calls pass:\n{passed}"
        );
    }
    let dropped = strace_kernel_view(&scratch, Some(DROP_ALL), "dropped.strace");
    assert_eq!(
        traced_calls(&dropped),
        Vec::<String>::new(),
        "the kernel saw dropped calls:\n{dropped}"
    );
}

/// Runs `page_cache` and returns (resident before, resident after, total)
/// pages of its 8 MiB file, and posix_fadvise's result.
fn page_cache(scratch: &Scratch, shim: Shim, name: &str) -> (u64, u64, u64, String) {
    let mut command = scratch.command(c_program("page_cache"), shim);
    command.arg(scratch.file(name));
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("page_cache");
    if matches!(shim, Shim::Default) {
        assert_eq!(
            finished.stderr, "",
            "the shim printed something with no policy"
        );
    }
    let field = |label: &str| -> Vec<String> {
        let line = finished
            .stdout
            .lines()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line\n{finished}"));
        line.split_whitespace()
            .skip(1)
            .map(str::to_string)
            .collect()
    };
    let number = |text: &str| -> u64 { text.parse().expect("page count") };
    let before = field("before ");
    let after = field("after ");
    let ret = field("fadvise ").join(" ");
    assert_eq!(before[1], after[1]);
    (
        number(&before[0]),
        number(&after[0]),
        number(&before[1]),
        ret,
    )
}

#[test]
fn page_cache_shows_dontneed_passed_or_dropped() {
    let Some(scratch) = Scratch::on_real_fs() else {
        eprintln!("skipped: no real (non-tmpfs) file system for the page-cache test");
        return;
    };
    for (shim, label) in [(Shim::Off, "no shim"), (Shim::Default, "built-in default")] {
        let (before, after, total, ret) = page_cache(&scratch, shim, "passed.data");
        assert_eq!(ret, "ret=0", "{label}");
        assert_eq!(before, total, "{label}: freshly written file not resident");
        assert!(
            after <= total / 8,
            "{label}: DONTNEED passed but {after} of {total} pages stayed resident"
        );
    }
    let drop_dontneed =
        "[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\naction = \"drop\"\n";
    let (before, after, total, ret) =
        page_cache(&scratch, Shim::Policy(drop_dontneed), "dropped.data");
    assert_eq!(ret, "ret=0");
    assert_eq!(before, total, "freshly written file not resident");
    assert_eq!(after, total, "DONTNEED was dropped, yet pages were evicted");
}
