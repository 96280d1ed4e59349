//! The shim's one-line messages on stderr (`fadvise-shim: …`), written with
//! `write(2)` from a stack buffer, and only while descriptor 2 is still the
//! stderr the process started with: a daemon that closed its standard
//! descriptors and opened its data files must not find our text in them.

use std::sync::atomic::{AtomicU64, Ordering};

use fadvise_shim_core::text::Sink;

use super::errno::ErrnoGuard;
use super::io::{descriptor_status, FdSink};

/// Identity (device, inode) of the process's stderr at start-up.
static STDERR_IDENTITY: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

fn identity(fd: libc::c_int) -> Option<(u64, u64)> {
    descriptor_status(fd).map(|status| (status.st_dev, status.st_ino))
}

/// Notes what stderr is; called at start-up.
pub fn remember_stderr() {
    let _errno = ErrnoGuard::save();
    if let Some((device, inode)) = identity(libc::STDERR_FILENO) {
        STDERR_IDENTITY.0.store(device, Ordering::Relaxed);
        STDERR_IDENTITY.1.store(inode, Ordering::Relaxed);
    }
}

/// Writes one line to stderr: `fadvise-shim: ` followed by `parts`, control
/// bytes replaced. Async-signal-safe; `errno` is preserved.
pub fn warn(parts: &[&[u8]]) {
    let _errno = ErrnoGuard::save();
    let started_with = (
        STDERR_IDENTITY.0.load(Ordering::Relaxed),
        STDERR_IDENTITY.1.load(Ordering::Relaxed),
    );
    if identity(libc::STDERR_FILENO) != Some(started_with) {
        return;
    }
    let mut buffer = [0u8; 512];
    let mut sink = FdSink::new(libc::STDERR_FILENO, &mut buffer);
    sink.put(b"fadvise-shim: ");
    for part in parts {
        fadvise_shim_core::text::put_sanitized(&mut sink, part);
    }
    sink.put(b"\n");
    sink.flush();
}
