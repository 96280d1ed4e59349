//! A dump request: makes a live process dump now, waits for the fresh dump
//! and shows its header line and call table. `fadvise-shim dump PID` and
//! `fadvise-shim doctor PID` both ask through here.
//!
//! Before signalling we note which dump files already exist, so that only a
//! dump written after the signal is shown: dumps are replaced by rename, so
//! a fresh one is a new inode. A process that made no intercepted call
//! writes no dump, which looks the same from outside as an unwritable
//! directory; the timeout message says both.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fadvise_shim_core::dump::{
    parse_dump, write_table_heading, write_table_row, Dump, FILE_SUFFIX,
};
use fadvise_shim_core::text::Sink;

use super::ShimProcess;
use crate::Failure;

/// How long a process gets to write its dump.
const DUMP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Signals `process` and waits for its fresh dump; returns the dump's path
/// (as the process sees it) and contents.
pub fn request(process: &ShimProcess) -> Result<(PathBuf, Dump), Failure> {
    let pid = process.pid;
    let signal_name = process.dump_signal.name();
    let Some(signal) = process.dump_signal.number() else {
        return Err(Failure(format!(
            "process {pid} has dump signal {signal_name}; nothing can make it dump"
        )));
    };
    require_handler(pid, signal, &signal_name)?;
    let dir = process.seen_from_here(&process.dump_dir);
    let suffix = dump_name_suffix(process)?;
    let earlier: HashSet<FileIdentity> = dump_candidates(&dir, &suffix)
        .iter()
        .filter_map(|path| FileIdentity::of(path))
        .collect();
    send_signal(pid, signal, &signal_name)?;

    let deadline = Instant::now() + DUMP_TIMEOUT;
    loop {
        for path in dump_candidates(&dir, &suffix) {
            let fresh =
                FileIdentity::of(&path).is_some_and(|identity| !earlier.contains(&identity));
            if !fresh {
                continue;
            }
            // A file that does not parse may be someone else's, or cut
            // short: keep waiting for the real one.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if let Ok(dump) = parse_dump(&text) {
                if dump.origin.pid == process.inner_pid {
                    let name = path.file_name().unwrap_or_default();
                    return Ok((process.dump_dir.join(name), dump));
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(timeout_failure(process, !earlier.is_empty()));
        }
        if !is_alive(pid) {
            return Err(Failure(format!("process {pid} ended before it dumped")));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The header line and call table of a dump.
pub fn render(process: &ShimProcess, path: &Path, dump: &Dump) -> Vec<u8> {
    let mut out = Vec::new();
    out.put_str(&format!(
        "{}  policy: {}  signal: {}  dump: {}\n",
        process.label(),
        dump.policy,
        dump.signal,
        path.display()
    ));
    if dump.stats.is_empty() {
        out.put(b"(no intercepted calls)\n");
        return out;
    }
    write_table_heading(&mut out, "call", 0);
    for (call, stats) in dump.stats.made() {
        write_table_row(&mut out, call.name().as_bytes(), 0, stats);
    }
    out
}

/// A file's identity and version: a dump replaced by rename gets a new
/// inode, and one rewritten in place a new modification time.
#[derive(Hash, PartialEq, Eq)]
struct FileIdentity {
    inode: u64,
    modified_ns: i128,
    len: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> Option<FileIdentity> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(FileIdentity {
            inode: metadata.ino(),
            modified_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            len: metadata.len(),
        })
    }
}

/// The end of the process's dump name, `.PID.NAMESPACE-START.dump` (its pid
/// as it sees it, its pid namespace and its start time), from the kernel.
fn dump_name_suffix(process: &ShimProcess) -> Result<String, Failure> {
    let pid = process.pid;
    let unreadable = |what: &str| Failure(format!("cannot read the {what} of process {pid}"));
    let namespace = crate::procfs::pid_namespace(pid).ok_or_else(|| unreadable("pid namespace"))?;
    let start = crate::procfs::start_ticks(pid).ok_or_else(|| unreadable("start time"))?;
    Ok(format!(
        ".{}.{namespace}-{start}{FILE_SUFFIX}",
        process.inner_pid
    ))
}

/// Files in `dir` whose names end with the process's suffix. Normally there
/// is one, but the name the shim read at start can differ from today's
/// `/proc/PID/exe` (a renamed or replaced executable).
fn dump_candidates(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(suffix))
        .map(|entry| entry.path())
        .collect()
}

/// Fails unless the process catches `signal`: one it does not catch would
/// end it (or, if ignored, do nothing).
fn require_handler(pid: u32, signal: libc::c_int, signal_name: &str) -> Result<(), Failure> {
    match signal_disposition(pid, signal)? {
        Disposition::Caught => Ok(()),
        Disposition::Ignored => Err(Failure(format!(
            "process {pid} ignores {signal_name} (its program asked for that), \
             so it cannot dump"
        ))),
        Disposition::Default => Err(Failure(format!(
            "process {pid} does not catch {signal_name}, so the shim's dump handler is not \
             installed there; not sending it, since it would end the process"
        ))),
    }
}

/// What process `pid` does on a signal.
enum Disposition {
    Caught,
    Ignored,
    /// Usually: end the process.
    Default,
}

/// The disposition of `signal` in process `pid`, from the `SigCgt` and
/// `SigIgn` masks of its status.
fn signal_disposition(pid: u32, signal: libc::c_int) -> Result<Disposition, Failure> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|_| Failure(format!("no process {pid}")))?;
    let in_mask = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .map(|mask| (1..=64).contains(&signal) && mask & (1u64 << (signal - 1)) != 0)
            .ok_or_else(|| Failure(format!("cannot read the signal masks of process {pid}")))
    };
    Ok(if in_mask("SigCgt:")? {
        Disposition::Caught
    } else if in_mask("SigIgn:")? {
        Disposition::Ignored
    } else {
        Disposition::Default
    })
}

fn send_signal(pid: u32, signal: libc::c_int, signal_name: &str) -> Result<(), Failure> {
    let target = libc::pid_t::try_from(pid).map_err(|_| Failure(format!("no process {pid}")))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    if unsafe { libc::kill(target, signal) } == 0 {
        return Ok(());
    }
    Err(match io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Failure(format!("no process {pid}")),
        Some(libc::EPERM) => Failure(format!(
            "permission denied sending {signal_name} to process {pid}: it belongs to another user"
        )),
        _ => Failure(format!(
            "cannot send {signal_name} to process {pid}: {}",
            io::Error::last_os_error()
        )),
    })
}

/// The state letter of `/proc/PID/stat` (`R`, `S`, `T`, `Z`...), after
/// the command name, which may itself contain `)`.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Whether the process still exists and has not ended (a zombie has).
fn is_alive(pid: u32) -> bool {
    !matches!(process_state(pid), Some('Z' | 'X') | None)
}

fn timeout_failure(process: &ShimProcess, dumped_before: bool) -> Failure {
    let (pid, dir) = (process.pid, process.dump_dir.display());
    let seconds = DUMP_TIMEOUT.as_secs();
    if matches!(process_state(pid), Some('T' | 't')) {
        return Failure(format!(
            "process {pid} is stopped: it cannot dump until it is continued (kill -CONT {pid})"
        ));
    }
    if dumped_before {
        Failure(format!(
            "process {pid} wrote no fresh dump into {dir} within {seconds} s \
             (is the directory still writable by it?)"
        ))
    } else {
        Failure(format!(
            "process {pid} made no intercepted call yet (no dump written), or it cannot write \
             into {dir}: no dump appeared within {seconds} s"
        ))
    }
}
