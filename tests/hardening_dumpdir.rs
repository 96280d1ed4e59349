//! Dump directory safety (issue 6, point 2), proved on the file system:
//! the shim never follows a symlink that another user planted (for the
//! directory or for the dump file and its temporary name), never writes
//! into a directory that another user owns, creates a missing directory
//! without group or world write even under umask 0, and an unsafe
//! directory costs the process at most one stderr line and nothing else.
//!
//! The process runs as root, the most dangerous case: the kernel lets root
//! write anywhere, so only the shim's own checks stand between a planted
//! link and a victim file. "Another user" is `nobody`. Needs root to give
//! files to nobody; skipped with a reason otherwise.

mod common;
mod hardening;

use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{counts, run, Finished, Running, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::parse_dump;
use fadvise_shim_core::policy::{DUMP_DIR_ENV, ON_EXIT_ENV};
use hardening::{lchown, listing, mode, NOBODY};

/// `calls` making 3 fadvise and 2 fsync calls, with its dumps going to
/// `dump_dir` at exit.
fn calls_dumping_into(scratch: &Scratch, dump_dir: &Path, shim: Shim) -> std::process::Command {
    let mut command = scratch.command(hardening::program("calls"), shim);
    command
        .arg(scratch.file("data"))
        .args(["3", "2"])
        .env(DUMP_DIR_ENV, dump_dir)
        .env(ON_EXIT_ENV, "1");
    command
}

/// Runs `calls` with and without the shim into `dump_dir`: the process must
/// be unharmed (same exit and stdout, at most one stderr line from us).
fn run_unharmed(scratch: &Scratch, dump_dir: &Path) -> Finished {
    let without = run(
        &mut calls_dumping_into(scratch, dump_dir, Shim::Off),
        TIMEOUT,
    );
    let with = run(
        &mut calls_dumping_into(scratch, dump_dir, Shim::Default),
        TIMEOUT,
    );
    with.assert_success("calls under the shim");
    assert_eq!(with.stdout, without.stdout, "{with}");
    let lines: Vec<&str> = with.stderr.lines().collect();
    assert!(
        lines.len() <= 1 && lines.iter().all(|line| line.starts_with("fadvise-shim: ")),
        "at most one line of our own on stderr:\n{with}"
    );
    with
}

fn victim_dir(scratch: &Scratch) -> PathBuf {
    let dir = scratch.file("victim-dir");
    std::fs::create_dir(&dir).unwrap();
    dir
}

#[test]
fn symlink_planted_by_another_user_is_not_followed() {
    if hardening::skip(hardening::root_unavailable()) {
        return;
    }
    let scratch = Scratch::new();
    let target = victim_dir(&scratch);
    let link = scratch.file("planted");
    symlink(&target, &link).unwrap();
    lchown(&link, NOBODY);
    let finished = run_unharmed(&scratch, &link);
    assert_eq!(listing(&target), Vec::<String>::new(), "{finished}");
    assert!(finished.stderr.contains("symlink"), "{finished}");
}

/// The control for the test above: the same link, owned by root (the
/// process's own user), is followed.
#[test]
fn symlink_of_our_own_user_is_followed() {
    if hardening::skip(hardening::root_unavailable()) {
        return;
    }
    let scratch = Scratch::new();
    let target = victim_dir(&scratch);
    let link = scratch.file("ours");
    symlink(&target, &link).unwrap();
    let finished = run_unharmed(&scratch, &link);
    assert_eq!(finished.stderr, "");
    let names = listing(&target);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("calls.") && names[0].ends_with(".dump"));
}

#[test]
fn symlink_higher_up_the_path_is_not_followed() {
    if hardening::skip(hardening::root_unavailable()) {
        return;
    }
    let scratch = Scratch::new();
    let target = victim_dir(&scratch);
    let link = scratch.file("planted");
    symlink(&target, &link).unwrap();
    lchown(&link, NOBODY);
    run_unharmed(&scratch, &link.join("sub/dumps"));
    assert_eq!(listing(&target), Vec::<String>::new());
}

#[test]
fn directory_owned_by_another_user_is_not_written_into() {
    if hardening::skip(hardening::root_unavailable()) {
        return;
    }
    let scratch = Scratch::new();
    let theirs = victim_dir(&scratch);
    lchown(&theirs, NOBODY);
    let finished = run_unharmed(&scratch, &theirs);
    assert_eq!(listing(&theirs), Vec::<String>::new());
    assert!(finished.stderr.contains("another user"), "{finished}");
}

#[test]
fn missing_directories_are_created_without_group_or_world_write() {
    let scratch = Scratch::new();
    let top = scratch.file("made");
    let dump_dir = top.join("by/the-shim");
    let mut command = calls_dumping_into(&scratch, &dump_dir, Shim::Default);
    // SAFETY: umask() is async-signal-safe and cannot fail.
    unsafe {
        command.pre_exec(|| {
            libc::umask(0);
            Ok(())
        })
    };
    run(&mut command, TIMEOUT).assert_success("calls under umask 0");
    for dir in [&top, &top.join("by"), &dump_dir] {
        assert_eq!(mode(dir) & 0o022, 0, "{} is {:o}", dir.display(), mode(dir));
    }
    assert_eq!(listing(&dump_dir).len(), 1);
}

/// Links planted at the dump file's name and at its temporary name, while
/// the process runs (its pid is in both names): the victims stay as they
/// were, and the dump ends up a regular file in place of the link.
#[test]
fn links_planted_at_the_dump_file_names_are_not_followed() {
    if hardening::skip(hardening::root_unavailable()) {
        return;
    }
    let scratch = Scratch::new();
    let victims = victim_dir(&scratch);
    let stop = scratch.file("stop");
    let mut command = scratch.command(hardening::program("calls"), Shim::Default);
    command
        .arg(scratch.file("data"))
        .args(["3", "2"])
        .arg(&stop);
    let mut running = Running::start(&mut command);
    running.wait_for_line(TIMEOUT, |line| line.ends_with(" ready"));
    let pid = running.pid();
    let dump_name = common::dump_name("calls", pid);
    let planted = [
        (dump_name.clone(), victims.join("victim-final")),
        (format!(".{dump_name}.tmp"), victims.join("victim-temp")),
    ];
    for (name, victim) in &planted {
        std::fs::write(victim, "precious\n").unwrap();
        let link = scratch.dump_dir().join(name);
        symlink(victim, &link).unwrap();
        lchown(&link, NOBODY);
    }
    running.signal(libc::SIGUSR1);
    let dump_path = scratch.dump_dir().join(&dump_name);
    let replaced = common::poll(TIMEOUT, || {
        std::fs::symlink_metadata(&dump_path)
            .ok()
            .filter(|meta| meta.file_type().is_file())
    });
    assert!(replaced.is_some(), "the link was never replaced by a dump");
    std::fs::write(&stop, "").unwrap();
    let finished = running.wait(TIMEOUT);
    finished.assert_success("calls");
    for (_, victim) in &planted {
        assert_eq!(std::fs::read_to_string(victim).unwrap(), "precious\n");
    }
    assert_eq!(listing(&scratch.dump_dir()), vec![dump_name]);
    let dump = parse_dump(&std::fs::read_to_string(&dump_path).unwrap()).unwrap();
    assert_eq!(counts(dump.stats.call(Call::PosixFadvise)), (3, 3, 0, 0, 0));
    assert_eq!(counts(dump.stats.call(Call::Fsync)), (2, 2, 0, 0, 0));
}
