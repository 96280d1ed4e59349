//! Helpers for the hardening tests (issue 6), on top of `tests/common`:
//! compiling the C programs and libraries under `tests/c_hardening/`, and
//! telling whether this run may use root-only tools (namespaces, setuid,
//! files owned by another user), so that those tests skip with a reason
//! instead of failing where they cannot run.
// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `nobody`: the unprivileged "other user" of these tests.
pub const NOBODY: u32 = 65534;

/// Compiles `tests/c_hardening/NAME.c` on first use, with `extra`
/// arguments after the source (libraries to link, `-shared`…). The output's
/// file name is `output`, so dumps are `<output>.<pid>.dump`.
pub fn build(name: &str, output: &str, extra: &[&str]) -> PathBuf {
    crate::common::compile_c("c_hardening", name, output, extra)
}

/// A program from `tests/c_hardening/NAME.c`, named NAME.
pub fn program(name: &str) -> PathBuf {
    build(name, name, &[])
}

pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_hardening")
}

/// Why this run cannot use root-only features, or `None` if it can.
pub fn root_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root (files owned by another user, setuid, namespaces)".into());
    }
    None
}

/// Why `unshare -m` and `setpriv` cannot be used here, or `None`.
pub fn namespaces_unavailable() -> Option<String> {
    if let Some(reason) = root_unavailable() {
        return Some(reason);
    }
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    };
    if !works("unshare", &["-m", "true"]) {
        return Some("`unshare -m` does not work here".into());
    }
    if !works(
        "setpriv",
        &["--reuid=65534", "--regid=65534", "--clear-groups", "true"],
    ) {
        return Some("`setpriv` cannot switch to nobody here".into());
    }
    None
}

/// Prints why a test is skipped; returns true if it must be.
pub fn skip(reason: Option<String>) -> bool {
    match reason {
        Some(reason) => {
            eprintln!("SKIPPED: {reason}");
            true
        }
        None => false,
    }
}

/// Changes the owner of `path` itself (not what a symlink points to).
pub fn lchown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .unwrap_or_else(|error| panic!("lchown {}: {error}", path.display()));
}

/// The owner of `path` itself.
pub fn owner(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .uid()
}

/// Permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Every name in `dir` (empty if it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs `command` under `strace -f` for `syscalls`; returns how it ended
/// and the traced lines. `LD_PRELOAD` is handed to the traced program only
/// (`strace -E`), so strace itself runs without the libraries.
pub fn traced(
    scratch: &crate::common::Scratch,
    log: &str,
    syscalls: &str,
    command: &mut Command,
) -> (crate::common::Finished, Vec<String>) {
    let log = scratch.file(log);
    let mut strace = crate::common::clean_command("strace");
    strace
        .args(["-f", "-qq", "-e"])
        .arg(format!("trace={syscalls}"))
        .arg("-o")
        .arg(&log);
    for (name, value) in command.get_envs() {
        match value {
            Some(value) if name == "LD_PRELOAD" => {
                let mut setting = OsString::from("LD_PRELOAD=");
                setting.push(value);
                strace.arg("-E").arg(setting)
            }
            Some(value) => strace.env(name, value),
            None => strace.env_remove(name),
        };
    }
    strace.arg(command.get_program()).args(command.get_args());
    let finished = crate::common::run(&mut strace, crate::common::TIMEOUT);
    let text = std::fs::read_to_string(&log).expect("strace log");
    let lines = text
        .lines()
        .filter(|line| {
            syscalls
                .split(',')
                .any(|name| line.contains(&format!("{name}(")))
        })
        .map(str::to_string)
        .collect();
    (finished, lines)
}
