//! Writing this process's dump: on the dump signal (from inside the signal
//! handler) and at exit. Everything here is async-signal-safe: statistics are
//! copied into a buffer allocated at start-up, text is formatted on the stack
//! and written with `write(2)`, and the file is created next to its final
//! name and renamed over it, so a reader never sees half a dump.
//!
//! Dumps coalesce: a signal that arrives while a dump is being written asks
//! for one more dump after it, never a pile of them.
//!
//! The directory is handled as hostile ground: no symlink planted by another
//! user is followed, no directory owned by another user is written into, a
//! missing one is created without group or world write permission, and files
//! are created with `O_EXCL | O_NOFOLLOW`.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};

use libc::c_int;

use fadvise_shim_core::dump::{
    write_dump_with_sites, BudgetUse, Budgets, Header, Reason, FILE_SUFFIX,
};
use fadvise_shim_core::origin::{write_file_stem, OriginRef};
use fadvise_shim_core::stats::Snapshot;

use crate::policy::{active, limits, settings};
use crate::sys::dir::{rename_at, unlink_at};
use crate::sys::io::FdSink;
use crate::sys::{warn, ErrnoGuard, Fd, NoCancel};

/// The copy of the statistics a dump is written from, allocated by the
/// first dump (from the library's own heap, which is async-signal-safe, so
/// also from the signal's handler) and used only by the thread that holds
/// `WRITING`.
struct SnapshotBuffer(UnsafeCell<Snapshot>);

static BUFFER: AtomicPtr<SnapshotBuffer> = AtomicPtr::new(ptr::null_mut());
static WRITING: AtomicBool = AtomicBool::new(false);
static PENDING: AtomicBool = AtomicBool::new(false);
/// Whether the "cannot write a dump" line was printed (once per process).
static WARNED: AtomicBool = AtomicBool::new(false);
/// The pid that owns the statistics: a `vfork` child shares our memory but
/// not our pid, and must not dump the parent's statistics as its own.
// Beside `init`'s `STATE`: see there.
#[link_section = ".bss.fadvise_shim.written_at_start"]
static OWNER_PID: AtomicU32 = AtomicU32::new(0);

/// Notes whose statistics these are; called once per process image at
/// start-up.
pub fn remember_owner() {
    OWNER_PID.store(std::process::id(), Ordering::Relaxed);
}

/// Whether a first call was made (in this process or the parent it was
/// forked from): before it, a dump has nothing to say.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Lets dumps be written; called on the first intercepted call. The buffer
/// is allocated by the first dump (most processes never dump, and a short
/// one should not pay for it).
pub fn enable() {
    if !ENABLED.load(Ordering::Relaxed) {
        ENABLED.store(true, Ordering::Release);
    }
}

fn allocate_buffer() {
    if !BUFFER.load(Ordering::Acquire).is_null() {
        return;
    }
    let fresh = Box::into_raw(Box::new(SnapshotBuffer(UnsafeCell::new(
        Snapshot::default(),
    ))));
    if BUFFER
        .compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        // SAFETY: `fresh` was never published.
        drop(unsafe { Box::from_raw(fresh) });
    }
}

/// A forked child dumps under its own pid.
pub fn after_fork_in_child() {
    crate::sys::fork::store_if_changed!(WRITING, false);
    crate::sys::fork::store_if_changed!(PENDING, false);
    OWNER_PID.store(crate::sys::process::pid() as u32, Ordering::Relaxed);
}

/// From the dump signal's handler.
pub fn on_signal() {
    dump(Reason::Signal);
}

/// At exit, if the policy asks for it. The last dump must not be lost: if
/// another thread is writing one, wait for it (a bounded while: it may be
/// this very thread, interrupted by a handler that calls `exit`).
pub fn at_exit() {
    if active::with_current(|policy| policy.on_exit) != Some(true) {
        return;
    }
    for _ in 0..2000 {
        if !WRITING.load(Ordering::Acquire) {
            break;
        }
        // An interrupted sleep just loops.
        crate::sys::process::sleep_ns(1_000_000);
    }
    dump(Reason::Exit);
}

/// Whether this process owns the shim's memory: false in a `vfork` child,
/// which shares it with its parent until it execs or exits.
pub fn is_owner() -> bool {
    crate::sys::process::pid() as u32 == OWNER_PID.load(Ordering::Relaxed)
}

fn dump(reason: Reason) {
    if !is_owner() {
        return;
    }
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    loop {
        if WRITING.swap(true, Ordering::Acquire) {
            // Someone is writing (another thread, or the code this signal
            // interrupted): ask them for one more round.
            PENDING.store(true, Ordering::Release);
            return;
        }
        loop {
            PENDING.store(false, Ordering::Relaxed);
            write_one(reason);
            if !PENDING.load(Ordering::Acquire) {
                break;
            }
        }
        WRITING.store(false, Ordering::Release);
        // A request that came in between the last check and the release
        // would otherwise be lost.
        if !PENDING.load(Ordering::Acquire) {
            return;
        }
    }
}

/// Writes one dump; called with `WRITING` held.
fn write_one(reason: Reason) {
    // Before the first call there is nothing to dump.
    if !ENABLED.load(Ordering::Acquire) {
        return;
    }
    allocate_buffer();
    // A process without a stats file reads who it is at its first dump.
    crate::stats::origin::gather_unless_ready();
    // SAFETY: a non-null buffer was published by `allocate_buffer` and is
    // never freed.
    let Some(buffer) = (unsafe { BUFFER.load(Ordering::Acquire).as_ref() }) else {
        return;
    };
    // SAFETY: we hold `WRITING`, so no one else touches the buffer.
    let snapshot = unsafe { &mut *buffer.0.get() };
    crate::stats::counters::snapshot_into(snapshot);
    if snapshot.is_empty() {
        return;
    }
    active::with_current(|policy| {
        let Some(settings) = settings::get() else {
            return;
        };
        crate::stats::origin::with_origin(|origin| {
            let header = Header {
                origin: OriginRef {
                    pid: OWNER_PID.load(Ordering::Relaxed),
                    ..*origin
                },
                ppid: crate::sys::process::parent_pid() as u32,
                policy: &policy.source,
                signal: &policy.signal_name,
                reason,
                unix_time: unix_time(),
                budgets: &HostBudgetsInUse,
                processes: 1,
                absorbed: &[],
                // Checked after the snapshot: a count it took from the
                // private area is still there (no `stats_dir`) or has been
                // moved into the file since.
                stats_dir: crate::stats::file::directory()
                    .filter(|_| crate::stats::counters::file_has_every_count()),
            };
            let dir = policy.dump_dir.to_bytes();
            let written = write_file(dir, exe_name(settings.exe()), &header, snapshot);
            if let Err(problem) = written {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    warn(&[b"cannot write a dump into ", dir, b": ", problem]);
                }
            }
        });
    });
}

/// The host budgets this process has mapped, read from shared memory.
struct HostBudgetsInUse;

impl Budgets for HostBudgetsInUse {
    fn each(&self, visit: &mut dyn FnMut(&BudgetUse)) {
        limits::for_each_host_budget_in_use(|name, rate, burst, admitted, refused| {
            visit(&BudgetUse {
                name,
                rate,
                burst,
                admitted,
                refused,
            })
        });
    }
}

fn exe_name(exe: &std::path::Path) -> &[u8] {
    exe.file_name()
        .map(std::os::unix::ffi::OsStrExt::as_bytes)
        .unwrap_or(b"unknown")
}

fn unix_time() -> u64 {
    crate::sys::time::read(libc::CLOCK_REALTIME).map_or(0, |now| now.tv_sec.max(0) as u64)
}

/// A NUL-terminated file name built on the stack.
struct Name {
    bytes: [u8; 300],
    len: usize,
}

impl Name {
    fn new(parts: &[&[u8]]) -> Name {
        let mut name = Name {
            bytes: [0; 300],
            len: 0,
        };
        for part in parts {
            fadvise_shim_core::text::Sink::put(&mut name, part);
        }
        name
    }

    /// The name as a C string: `put` always leaves a NUL after it.
    fn as_c(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or_default()
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fadvise_shim_core::text::Sink for Name {
    fn put(&mut self, part: &[u8]) {
        for &byte in part {
            // Keep room for the NUL; replace '/' so it stays one name.
            if self.len + 1 < self.bytes.len() {
                self.bytes[self.len] = if byte == b'/' || byte == 0 {
                    b'_'
                } else {
                    byte
                };
                self.len += 1;
            }
        }
    }
}

fn write_file(
    dir: &[u8],
    exe_name: &[u8],
    header: &Header,
    snapshot: &Snapshot,
) -> Result<(), &'static [u8]> {
    let dir_fd = crate::sys::safedir::open_trusted_dir(dir, 0o755)?;
    let mut stem = Name::new(&[]);
    write_file_stem(&mut stem, exe_name, &header.origin);
    let final_name = Name::new(&[stem.as_bytes(), FILE_SUFFIX.as_bytes()]);
    let temp_name = Name::new(&[b".", stem.as_bytes(), FILE_SUFFIX.as_bytes(), b".tmp"]);
    write_into(dir_fd.as_raw(), &temp_name, &final_name, header, snapshot)
}

fn write_into(
    dir_fd: c_int,
    temp: &Name,
    target: &Name,
    header: &Header,
    snapshot: &Snapshot,
) -> Result<(), &'static [u8]> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let (temp, target) = (temp.as_c(), target.as_c());
    let opened = match Fd::open_at_error(dir_fd, temp, flags, 0o644) {
        Err(libc::EEXIST) => {
            // Left over by a dump that was interrupted (or a process that
            // died mid-dump with our pid): it is ours to replace.
            unlink_at(dir_fd, temp);
            Fd::open_at(dir_fd, temp, flags, 0o644)
        }
        opened => opened.ok(),
    };
    let fd = opened.ok_or(b"cannot create the dump file".as_slice())?;
    let mut buffer = [0u8; 1024];
    let mut sink = FdSink::new(fd.as_raw(), &mut buffer);
    write_dump_with_sites(
        &mut sink,
        header,
        snapshot,
        &crate::stats::sites::ProcessSites,
    );
    let complete = sink.flush();
    drop(fd);
    if !complete {
        unlink_at(dir_fd, temp);
        return Err(b"cannot write the dump file");
    }
    if !rename_at(dir_fd, temp, target) {
        unlink_at(dir_fd, temp);
        return Err(b"cannot rename the dump file into place");
    }
    Ok(())
}
