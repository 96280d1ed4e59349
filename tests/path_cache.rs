//! The path cache (issue 17) never gives a verdict for a file other than
//! the one behind the descriptor at the time of the call, as the kernel
//! sees it: `tests/c_path_cache/cache_cases.c` makes every call twice (the
//! second meets the cache) under a seccomp filter that answers EPERM to the
//! intercepted syscalls, around every way a number can change its file —
//! close, a raw `close` from `syscall()` and from an inline `syscall`
//! instruction (as Go makes it), `fclose` (closed inside libc), `dup2`,
//! `dup3`, `fcntl(F_DUPFD)`, fork, exec, renames, hard links, a name
//! replaced by rename, an unlinked file's inode number reused at once, a
//! bind mount, threads and a signal handler racing, and a policy reload. A renamed parent directory is the one change it may
//! miss, for at most its freshness bound (1 s).

mod common;
mod policy_common;

use common::{library, run, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::policy::POLICY_ENV;
use policy_common::{call_lines, CallLine, Verdict};
use Verdict::{Kernel, Shim as Dropped};

/// Each step of `cache_cases` with the verdict of its calls (a
/// posix_fadvise and an fsync, twice) under a rule dropping every call on
/// files under `match/`.
const STEPS: &[(&str, Verdict)] = &[
    ("bind-opened-by-match-path", Dropped),
    ("bind-opened-by-other-mount", Kernel),
    ("open-match", Dropped),
    ("close-then-other", Kernel),
    ("close-then-match", Dropped),
    ("syscall-close-then-other", Kernel),
    ("inline-close-then-match", Dropped),
    ("inline-close-then-other", Kernel),
    ("fopen-match", Dropped),
    ("fclose-then-other", Kernel),
    ("dup2-before", Dropped),
    ("dup2-other-onto-match", Kernel),
    ("dup3-match-onto-it", Dropped),
    ("raw-dup3-other-onto-it", Kernel),
    ("fcntl-dupfd-other", Kernel),
    ("fcntl-dupfd-match-same-number", Dropped),
    ("before-fork-match", Dropped),
    ("before-fork-other", Kernel),
    ("fork-child-match", Dropped),
    ("fork-child-dup2-other-onto-match", Kernel),
    ("parent-after-child-dup2", Dropped),
    ("swapped-behind-cache-match", Dropped),
    ("swapped-behind-cache-other", Kernel),
    ("exec-inherited-match", Dropped),
    ("exec-inherited-other", Kernel),
    ("before-rename-out", Dropped),
    ("renamed-out-of-match", Kernel),
    ("renamed-back-into-match", Dropped),
    ("hard-link-opened-by-match-name", Dropped),
    ("hard-link-opened-by-other-name", Kernel),
    ("hard-link-match-name-again", Dropped),
    ("before-replace-other", Kernel),
    ("replaced-name-old-fd", Kernel),
    ("replaced-name-reopened", Kernel),
    ("after-replace-match", Dropped),
    ("unlinked-match", Dropped),
    ("new-file-after-unlinked", Kernel),
    ("unlinked-match", Dropped),
    ("new-file-after-unlinked", Kernel),
    ("unlinked-match", Dropped),
    ("new-file-after-unlinked", Kernel),
    ("before-parent-rename", Dropped),
    ("parent-renamed-after-bound", Kernel),
    ("after-racing-other", Kernel),
    ("after-racing-match", Dropped),
    ("before-reload", Dropped),
    ("after-reload", Kernel),
];

/// The step whose verdict the cache may get either way (its file changed no
/// identity: its parent directory was renamed an instant before).
const EITHER_WAY: &str = "parent-renamed-at-once";

#[test]
fn cached_path_verdicts_follow_the_file_behind_each_descriptor() {
    let scratch = Scratch::new();
    let (match_dir, other_dir) = (scratch.file("match"), scratch.file("other"));
    std::fs::create_dir(&match_dir).expect("match dir");
    std::fs::create_dir(&other_dir).expect("other dir");
    let policy = scratch.policy_file(&format!(
        "[[rule]]\ncall = \"*\"\npath = [\"{}/**\"]\naction = \"drop\"\n",
        match_dir.display()
    ));
    // The program rewrites its policy file, so it is given the path.
    let mut command = scratch.command(cache_cases(), Shim::Off);
    command
        .env("LD_PRELOAD", library())
        .env(POLICY_ENV, &policy)
        .arg(&match_dir)
        .arg(&other_dir)
        .arg(&policy);
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("cache_cases");
    assert_eq!(finished.stderr, "", "{finished}");

    let mut racing = None;
    let mut bind_skipped = false;
    let mut verdict_lines = String::new();
    for line in finished.stdout.lines() {
        if let Some(wrong) = line.strip_prefix("racing wrong=") {
            racing = Some(wrong.to_string());
        } else if line == "bind-mount-skipped" {
            bind_skipped = true;
        } else if !line.starts_with(EITHER_WAY) {
            verdict_lines.push_str(line);
            verdict_lines.push('\n');
        }
    }
    assert_eq!(
        racing.as_deref(),
        Some("0"),
        "threads or the signal handler got a verdict for another file:\n{finished}"
    );
    let expected: Vec<CallLine> = STEPS
        .iter()
        .filter(|(step, _)| !(bind_skipped && step.starts_with("bind-")))
        .flat_map(|&(step, verdict)| {
            ["posix_fadvise", "fsync", "posix_fadvise", "fsync"].map(|call| CallLine {
                step: step.to_string(),
                call: call.to_string(),
                verdict,
            })
        })
        .collect();
    assert_eq!(call_lines(&verdict_lines), expected, "{finished}");
    // Both verdicts of the renamed parent are fine; a garbled line is not.
    let either: String = finished
        .stdout
        .lines()
        .filter(|line| line.starts_with(EITHER_WAY))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_eq!(call_lines(&either).len(), 4, "{finished}");
}

/// `tests/c_path_cache/cache_cases.c`, compiled on first use.
fn cache_cases() -> std::path::PathBuf {
    common::compile_c(
        "c_path_cache",
        "cache_cases",
        "cache_cases",
        &["-Werror", "-Wno-format-truncation", "-pthread"],
    )
}
