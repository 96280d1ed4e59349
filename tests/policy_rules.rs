//! Exe and path rules decide from the kernel's point of view: C programs
//! make intercepted calls under a seccomp filter that answers EPERM to those
//! syscalls, so a call that passed fails with EPERM and a dropped one
//! succeeds. Exe rules are tried on copies of one program under different
//! names and directories; path rules on fds whose numbers are reused
//! (close, dup, dup2, dup3, fcntl, fork, exec) and files that change name.

mod common;
mod policy_common;

use std::path::{Path, PathBuf};

use common::{run, Finished, Scratch, Shim, TIMEOUT};
use policy_common::{call_lines, exe_policy, policy_program, CallLine, Verdict};
use Verdict::{Kernel, Shim as Dropped};

/// Links `one_call` as `DIR/NAME` in the scratch directory (a hard link: a
/// copy's write descriptor, inherited by a process another test forks at
/// that moment, would make exec fail with ETXTBSY).
fn copy_of_one_call(scratch: &Scratch, dir: &str, name: &str) -> PathBuf {
    let dir = scratch.file(dir);
    std::fs::create_dir_all(&dir).expect("program directory");
    let copy = dir.join(name);
    std::fs::hard_link(policy_program("one_call"), &copy).expect("link one_call");
    copy
}

/// Runs `program` (a copy of `one_call`) on a data file, then `next` if
/// given, under `policy`; returns the verdicts by executable name.
fn one_call(scratch: &Scratch, program: &Path, next: Option<&Path>, policy: &str) -> Vec<CallLine> {
    let mut command = scratch.command(program, Shim::Policy(policy));
    command.arg(scratch.file("data"));
    command.args(next);
    let finished = run(&mut command, TIMEOUT);
    assert_eq!(finished.status.code(), Some(5), "{finished}");
    assert_eq!(finished.stderr, "", "{finished}");
    call_lines(&finished.stdout)
}

/// The two lines one copy of `one_call` prints, both with `verdict`.
fn both(name: &str, verdict: Verdict) -> Vec<CallLine> {
    ["posix_fadvise", "fsync"]
        .map(|call| CallLine {
            step: name.to_string(),
            call: call.to_string(),
            verdict,
        })
        .into()
}

#[test]
fn exe_rule_by_file_name_drops_only_the_matching_copy() {
    let scratch = Scratch::new();
    let alpha = copy_of_one_call(&scratch, "bin", "alpha-prog");
    let beta = copy_of_one_call(&scratch, "bin", "beta-prog");
    let policy = exe_policy("alpha-*", "drop");
    assert_eq!(
        one_call(&scratch, &alpha, None, &policy),
        both("alpha-prog", Dropped)
    );
    assert_eq!(
        one_call(&scratch, &beta, None, &policy),
        both("beta-prog", Kernel)
    );
}

#[test]
fn exe_rule_is_decided_again_after_exec() {
    let scratch = Scratch::new();
    let alpha = copy_of_one_call(&scratch, "bin", "alpha-prog");
    let beta = copy_of_one_call(&scratch, "bin", "beta-prog");
    let policy = exe_policy("alpha-*", "drop");
    let mut expected = both("alpha-prog", Dropped);
    expected.extend(both("beta-prog", Kernel));
    assert_eq!(one_call(&scratch, &alpha, Some(&beta), &policy), expected);
    let mut expected = both("beta-prog", Kernel);
    expected.extend(both("alpha-prog", Dropped));
    assert_eq!(one_call(&scratch, &beta, Some(&alpha), &policy), expected);
}

#[test]
fn exe_glob_with_a_slash_matches_the_full_path() {
    let scratch = Scratch::new();
    let in_a = copy_of_one_call(&scratch, "bin-a", "prog");
    let in_b = copy_of_one_call(&scratch, "bin-b", "prog");
    let by_directory = exe_policy("**/bin-a/prog", "drop");
    assert_eq!(
        one_call(&scratch, &in_a, None, &by_directory),
        both("prog", Dropped)
    );
    assert_eq!(
        one_call(&scratch, &in_b, None, &by_directory),
        both("prog", Kernel)
    );

    let absolute = exe_policy(&format!("{}/bin-b/*", scratch.path().display()), "drop");
    assert_eq!(
        one_call(&scratch, &in_a, None, &absolute),
        both("prog", Kernel)
    );
    assert_eq!(
        one_call(&scratch, &in_b, None, &absolute),
        both("prog", Dropped)
    );

    // Without a `/` a glob is about the file name (and `*` never crosses a
    // `/` in the full path), so a directory name matches nothing.
    let directory_without_slash = exe_policy("*bin-a*", "drop");
    assert_eq!(
        one_call(&scratch, &in_a, None, &directory_without_slash),
        both("prog", Kernel)
    );
}

/// Runs `fd_cases` with a policy that drops every call on files under
/// `match/` and returns its verdicts.
fn fd_cases(scratch: &Scratch, policy_for: impl Fn(&Path) -> String) -> Finished {
    let (match_dir, other_dir) = (scratch.file("match"), scratch.file("other"));
    std::fs::create_dir(&match_dir).expect("match dir");
    std::fs::create_dir(&other_dir).expect("other dir");
    let policy = policy_for(&match_dir);
    let mut command = scratch.command(policy_program("fd_cases"), Shim::Policy(&policy));
    command.arg(&match_dir).arg(&other_dir);
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("fd_cases");
    assert_eq!(finished.stderr, "", "{finished}");
    finished
}

/// What `fd_cases` must print under a rule dropping every call under
/// `match/`: each step with the verdict for its calls.
const FD_CASES: &[(&str, &[&str], Verdict)] = &[
    ("open-match", &["posix_fadvise", "fsync"], Dropped),
    (
        "reopen-other-same-number",
        &["posix_fadvise", "fsync"],
        Kernel,
    ),
    (
        "reopen-match-same-number",
        &["posix_fadvise", "fsync"],
        Dropped,
    ),
    ("dup-of-match", &["posix_fadvise", "fsync"], Dropped),
    ("dup2-before", &["posix_fadvise", "fsync"], Dropped),
    (
        "dup2-other-onto-match-number",
        &["posix_fadvise", "fsync"],
        Kernel,
    ),
    (
        "dup2-match-onto-other-number",
        &["posix_fadvise", "fsync"],
        Dropped,
    ),
    (
        "dup3-other-onto-match-number",
        &["posix_fadvise", "fsync"],
        Kernel,
    ),
    ("fcntl-dupfd-of-match", &["posix_fadvise", "fsync"], Dropped),
    (
        "fcntl-dupfd-cloexec-of-other",
        &["posix_fadvise", "fsync"],
        Kernel,
    ),
    ("fork-child-match", &["posix_fadvise", "fsync"], Dropped),
    ("fork-child-other", &["posix_fadvise", "fsync"], Kernel),
    (
        "fork-child-dup2-other-onto-match",
        &["posix_fadvise", "fsync"],
        Kernel,
    ),
    (
        "parent-after-child-dup2",
        &["posix_fadvise", "fsync"],
        Dropped,
    ),
    ("exec-inherited-match", &["posix_fadvise", "fsync"], Dropped),
    ("exec-inherited-other", &["posix_fadvise", "fsync"], Kernel),
    ("msync-match", &["msync"], Dropped),
    ("msync-other", &["msync"], Kernel),
    ("msync-match-fd-closed", &["msync"], Dropped),
    ("msync-other-fd-closed", &["msync"], Kernel),
    ("msync-match-behind-many-mappings", &["msync"], Dropped),
    ("unlinked-match", &["posix_fadvise", "fsync"], Dropped),
    ("renamed-out-of-match", &["posix_fadvise", "fsync"], Kernel),
    ("renamed-into-match", &["posix_fadvise", "fsync"], Dropped),
    (
        "symlink-in-match-to-other",
        &["posix_fadvise", "fsync"],
        Kernel,
    ),
    ("nested-in-match", &["posix_fadvise", "fsync"], Dropped),
    (
        "match",
        &[
            "sys_fadvise64",
            "readahead",
            "sync_file_range",
            "fdatasync",
            "syncfs",
        ],
        Dropped,
    ),
    ("no-file", &["sys_sync"], Kernel),
    ("pipe", &["posix_fadvise", "fsync"], Kernel),
];

fn expected_fd_cases(flip: bool) -> Vec<CallLine> {
    let mut lines = Vec::new();
    for &(step, calls, verdict) in FD_CASES {
        // `sync` and a pipe have no path, so no path rule decides them
        // whichever way the rule goes.
        let fileless = step == "no-file" || step == "pipe";
        let verdict = match verdict {
            Dropped if flip => Kernel,
            Kernel if flip && !fileless => Dropped,
            verdict => verdict,
        };
        for call in calls {
            lines.push(CallLine {
                step: step.to_string(),
                call: call.to_string(),
                verdict,
            });
        }
    }
    lines
}

#[test]
fn path_rule_follows_the_file_behind_each_fd_at_call_time() {
    let scratch = Scratch::new();
    let finished = fd_cases(&scratch, |match_dir| {
        format!(
            "[[rule]]\ncall = \"*\"\npath = [\"{}/**\"]\naction = \"drop\"\n",
            match_dir.display()
        )
    });
    assert_eq!(
        call_lines(&finished.stdout),
        expected_fd_cases(false),
        "{finished}"
    );
}

/// The first rule that matches decides: a path rule that passes files
/// under `match/` ahead of a rule that drops everything with a file turns
/// every verdict around, except for calls with no path (a pipe, `sync`).
#[test]
fn path_rule_ahead_of_a_general_rule_wins_for_its_files_only() {
    let scratch = Scratch::new();
    let finished = fd_cases(&scratch, |match_dir| {
        format!(
            "[[rule]]\ncall = \"*\"\npath = [\"{}/**\"]\naction = \"pass\"\n\n\
             [[rule]]\ncall = \"*\"\npath = [\"/**\"]\naction = \"drop\"\n",
            match_dir.display()
        )
    });
    assert_eq!(
        call_lines(&finished.stdout),
        expected_fd_cases(true),
        "{finished}"
    );
}

/// A rule naming only some calls leaves the others to the kernel, even on
/// a matching file.
#[test]
fn path_rule_for_some_calls_leaves_the_others_alone() {
    let scratch = Scratch::new();
    let dir = scratch.file("logs");
    std::fs::create_dir(&dir).unwrap();
    let policy = format!(
        "[[rule]]\ncall = [\"posix_fadvise\"]\nadvice = \"dontneed\"\npath = [\"{}/**\"]\naction = \"drop\"\n",
        dir.display()
    );
    let mut command = scratch.command(policy_program("one_call"), Shim::Policy(&policy));
    command.arg(dir.join("app.log"));
    let finished = run(&mut command, TIMEOUT);
    let mut expected = both("one_call", Dropped);
    expected[1].verdict = Kernel;
    assert_eq!(call_lines(&finished.stdout), expected, "{finished}");
}
