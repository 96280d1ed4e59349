//! Writing a supervised process's dump: the library's format
//! (`core::dump::write_dump`), name (`<exe>.<pid>.<pidns>-<start>.dump`,
//! `core::origin::write_file_stem`) and atomic
//! replacement (a temporary `.<exe>.<pid>.dump.tmp` created with
//! `O_EXCL | O_NOFOLLOW`, then renamed over the final name), so reports
//! read supervised and preloaded processes alike.
//!
//! Every dump of one process carries the same nonce, made from a random key
//! of this supervisor and the process's pid, pid namespace and start time:
//! readers count the process once however many dumps of it they find.

use std::hash::BuildHasher;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use fadvise_shim_core::dump::{write_dump, Header, NoBudgets, Reason, FILE_SUFFIX};
use fadvise_shim_core::origin::{write_file_stem, OriginRef};

use super::processes::Process;

/// What every dump of one run says about where its policy came from.
pub struct DumpSettings<'a> {
    pub dir: &'a Path,
    /// The policy file, or `built-in`.
    pub policy: &'a [u8],
}

/// Writes `process`'s dump, unless it made no intercepted call.
pub fn write(settings: &DumpSettings, process: &Process, reason: Reason) -> io::Result<()> {
    if process.stats.is_empty() {
        return Ok(());
    }
    let origin = OriginRef {
        pid: process.tgid,
        outer_pid: process.tgid,
        pid_namespace: process.pid_namespace,
        start_ticks: process.start_ticks,
        nonce: nonce_of(process),
        exe: process.exe.as_os_str().as_bytes(),
        ..OriginRef::default()
    };
    let header = Header {
        origin,
        ppid: process.ppid,
        policy: settings.policy,
        signal: "SIGUSR1",
        reason,
        unix_time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        budgets: &NoBudgets,
        processes: 1,
        absorbed: &[],
        stats_dir: None,
    };
    let mut text = Vec::new();
    write_dump(&mut text, &header, &process.stats);
    let exe_name: Vec<u8> = process
        .exe
        .file_name()
        .map_or(&b"unknown"[..], |name| name.as_bytes())
        .iter()
        .map(|&byte| if byte == b'/' { b'_' } else { byte })
        .collect();
    let mut stem = Vec::new();
    write_file_stem(&mut stem, &exe_name, &origin);
    let name = format!("{}{FILE_SUFFIX}", String::from_utf8_lossy(&stem));
    let target = settings.dir.join(&name);
    let temporary = settings.dir.join(format!(".{name}.tmp"));
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&temporary)?;
    let written = file
        .write_all(&text)
        .and_then(|()| std::fs::rename(&temporary, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// This process's nonce: the same for each of its dumps, unrelated to any
/// other process's (the key is random per supervisor), never 0.
fn nonce_of(process: &Process) -> u64 {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    KEY.get_or_init(Default::default)
        .hash_one((process.pid_namespace, process.tgid, process.start_ticks))
        .max(1)
}
