//! This process's stats file: created at its first call in the stats
//! directory, mapped shared, and kept locked for the process's life.
//!
//! - Name: `<exe>.<pid>.<pid namespace>-<start ticks>.<nonce>.stats`, unique
//!   across pid namespaces, pid reuse and `exec` of the same program.
//! - Creation: written aside as a dot file (readers skip those), header and
//!   origin filled, the lock taken, marked complete, then renamed into place:
//!   a reader never sees an incomplete or unlocked live file.
//! - Liveness: an open-file-description lock, held through a close-on-exec
//!   descriptor kept above the numbers programs expect. The kernel drops it
//!   when the process dies (exit, `SIGKILL`, OOM kill, crash) — then the file
//!   is dead, and any compactor folds it into the retained aggregate. A POSIX
//!   lock beside it lets a reader learn the holder's pid (`F_GETLK`) and ask
//!   the kernel who the process is. A program that closes every descriptor it
//!   did not open keeps ours open: `close`, `close_range`, `closefrom`,
//!   `dup2` and `dup3` spare it (`hooks::descriptors`), and once a second the
//!   process checks that its descriptor still holds the lock and takes it
//!   again if not.
//! - The directory is handled as hostile ground (`sys::safedir`); a directory
//!   that cannot be used leaves the statistics in private memory, with one
//!   stderr line when it was configured. The default is silent when it
//!   cannot be made (a read-only `/run` in a container), but not when
//!   another user made it (or a directory above it) first: that is someone
//!   switching this process's statistics off, said in one line.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};

use libc::c_int;

use fadvise_shim_core::origin::write_file_stem;
use fadvise_shim_core::policy::DEFAULT_LIMITS_DIR;
use fadvise_shim_core::stats_file::{self, FILE_BYTES, FILE_SUFFIX, IDENTITY_BYTE, LIVENESS_BYTE};
use fadvise_shim_core::text::{put_hex, Sink};

use super::area::Area;
use super::counters;
use super::origin::with_origin;
use crate::sys::fd::{duplicate_above, lock_byte, set_len};
use crate::sys::io::descriptor_status;
use crate::sys::{dir as names, safedir, warn, ErrnoGuard, Fd, Mapping};

/// `madvise` advice (Linux 5.14): populate pages writable, failing with an
/// error where a write would raise SIGBUS (a full tmpfs).
const MADV_POPULATE_WRITE: c_int = 23;
const PAGE: usize = 4096;
/// Header and counters: allocated with the file.
const FIRST_PAGES: usize = 2;
/// The lock's descriptor is moved at or above this number, out of the way
/// of programs that expect the lowest free numbers (a daemon reopening its
/// standard descriptors).
const HIGH_FD: c_int = 100;

static MAPPED: AtomicPtr<Area> = AtomicPtr::new(ptr::null_mut());
static LOCK_FD: AtomicI32 = AtomicI32::new(-1);
/// (device, inode) of the file.
static IDENTITY: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
/// (device, inode) of its directory, as opened: what dumps name it by.
static DIRECTORY: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));
static WARNED: AtomicBool = AtomicBool::new(false);

/// The directory and name, for taking the lock again.
struct Place {
    path: [u8; 4096],
    len: usize,
}

struct PlaceSlot(UnsafeCell<Place>);
// SAFETY: written once by the creating thread before `MAPPED` is published
// (Release), read only after `MAPPED` is seen non-null (Acquire).
unsafe impl Sync for PlaceSlot {}
static PLACE: PlaceSlot = PlaceSlot(UnsafeCell::new(Place {
    path: [0; 4096],
    len: 0,
}));

impl Place {
    /// The path or name as a C string: `put` always leaves a NUL after it.
    fn as_c(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.path).unwrap_or_default()
    }
}

impl Sink for Place {
    fn put(&mut self, bytes: &[u8]) {
        // Keep room for the NUL.
        let take = bytes.len().min(self.path.len() - 1 - self.len);
        self.path[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }
}

/// Whether this process has its stats file.
pub fn exists() -> bool {
    !MAPPED.load(Ordering::Acquire).is_null()
}

/// (device, inode) of the directory of this process's stats file, if it
/// has one.
pub fn directory() -> Option<(u64, u64)> {
    exists().then(|| {
        (
            DIRECTORY.0.load(Ordering::Relaxed),
            DIRECTORY.1.load(Ordering::Relaxed),
        )
    })
}

/// The name of this process's stats file in its directory, if it has one.
pub fn own_name() -> Option<&'static [u8]> {
    if !exists() {
        return None;
    }
    // SAFETY: `PLACE` was written before `MAPPED` was published (seen
    // non-null above), and this process never writes it again (a forked
    // child writes its own copy, after `after_fork_in_child`).
    let place: &'static Place = unsafe { &*PLACE.0.get() };
    let path = &place.path[..place.len];
    let start = path
        .iter()
        .rposition(|&byte| byte == b'/')
        .map_or(0, |slash| slash + 1);
    Some(&path[start..])
}

/// Creates this process's stats file in `dir` and moves the statistics
/// into it. `configured`: the directory was named by the policy or the
/// environment (a failure is then worth one stderr line).
pub fn create(dir: &CStr, configured: bool, exe_name: &[u8]) {
    if exists() {
        return;
    }
    let _errno = ErrnoGuard::save();
    if let Err(problem) = try_create(dir, exe_name) {
        let squatter = if configured {
            None
        } else {
            safedir::foreign_owner(dir.to_bytes())
        };
        if !(configured || squatter.is_some()) || WARNED.swap(true, Ordering::Relaxed) {
            return;
        }
        match squatter {
            Some(owner) => {
                let mut uid = Place {
                    path: [0; 4096],
                    len: 0,
                };
                fadvise_shim_core::text::put_u64(&mut uid, owner.into());
                warn(&[
                    b"the default stats directory ",
                    dir.to_bytes(),
                    b" was made by user ",
                    &uid.path[..uid.len],
                    b", not by root or this user: live statistics stay in private memory, \
                      unseen by report, top and serve",
                ]);
            }
            None => warn(&[
                b"cannot keep live statistics in ",
                dir.to_bytes(),
                b": ",
                problem,
                b"; they stay in private memory",
            ]),
        }
    }
}

fn open_dir(dir: &CStr) -> Result<Fd, &'static [u8]> {
    // The shared parent of the default directories is sticky and writable
    // by all, as for host budgets; make sure it is that, not 0755.
    if dir.to_bytes().starts_with(DEFAULT_LIMITS_DIR.as_bytes()) {
        drop(safedir::open_trusted_dir(
            DEFAULT_LIMITS_DIR.as_bytes(),
            0o1777,
        )?);
    }
    safedir::open_trusted_dir(dir.to_bytes(), 0o755)
}

fn try_create(dir: &CStr, exe_name: &[u8]) -> Result<(), &'static [u8]> {
    let dir_fd = open_dir(dir)?;
    create_in(dir_fd.as_raw(), dir, exe_name)
}

fn create_in(dir_fd: c_int, dir: &CStr, exe_name: &[u8]) -> Result<(), &'static [u8]> {
    let nonce = super::origin::nonce();
    let mut name = Place {
        path: [0; 4096],
        len: 0,
    };
    with_origin(|origin| write_file_stem(&mut name, exe_name, origin));
    name.put(b".");
    put_hex(&mut name, nonce, 16);
    name.put(FILE_SUFFIX.as_bytes());
    let mut temporary = Place {
        path: [0; 4096],
        len: 0,
    };
    temporary.put(b".");
    temporary.put(&name.path[..name.len]);
    temporary.put(b".tmp");
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let temporary = temporary.as_c();
    let created = Fd::open_at(dir_fd, temporary, flags, 0o644)
        .ok_or(b"cannot create the stats file".as_slice())?;
    // The duplicate, when there is one, replaces (closes) the original.
    let fd = created.duplicate_above(HIGH_FD).unwrap_or(created);
    // Closes the file (after its mapping, which callers drop first) and
    // removes it.
    let fail = |fd: Fd, problem: &'static [u8]| {
        drop(fd);
        names::unlink_at(dir_fd, temporary);
        Err(problem)
    };
    if !set_len(fd.as_raw(), FILE_BYTES) {
        return fail(fd, b"cannot size the stats file");
    }
    let (Some(status), Some(directory)) =
        (descriptor_status(fd.as_raw()), descriptor_status(dir_fd))
    else {
        return fail(fd, b"cannot stat the stats file");
    };
    let Some(mapping) = Mapping::shared_file(fd.as_raw(), FILE_BYTES) else {
        return fail(fd, b"cannot map the stats file");
    };
    // Populating the first pages changes no content.
    if !mapping.advise(0, FIRST_PAGES * PAGE, MADV_POPULATE_WRITE) {
        drop(mapping);
        return fail(fd, b"no room for the stats file");
    }
    let area = area_in(&mapping);
    let now = crate::sys::time::now_seconds().max(0) as u64;
    with_origin(|origin| stats_file::write_header(area.words(), origin, nonce, now));
    if !lock(fd.as_raw()) {
        drop(mapping);
        return fail(fd, b"cannot lock the stats file");
    }
    stats_file::mark_complete(area.words());
    if !names::rename_at(dir_fd, temporary, name.as_c()) {
        drop(mapping);
        return fail(fd, b"cannot put the stats file in place");
    }
    // SAFETY: no one reads `PLACE` before `MAPPED` is published below.
    let place = unsafe { &mut *PLACE.0.get() };
    place.len = 0;
    place.put(dir.to_bytes());
    place.put(b"/");
    place.put(&name.path[..name.len]);
    IDENTITY.0.store(status.st_dev, Ordering::Relaxed);
    IDENTITY.1.store(status.st_ino, Ordering::Relaxed);
    DIRECTORY.0.store(directory.st_dev, Ordering::Relaxed);
    DIRECTORY.1.store(directory.st_ino, Ordering::Relaxed);
    // Both are published: the descriptor holds the locks for the
    // process's life, and the mapping is never unmapped.
    LOCK_FD.store(fd.into_raw(), Ordering::Relaxed);
    let mapped = mapping.leak();
    MAPPED.store(mapped.cast(), Ordering::Release);
    // SAFETY: as in `area_in`, and the mapping is now never unmapped.
    let area: &'static Area = unsafe { &*mapped.cast::<Area>() };
    counters::use_file(area, FIRST_PAGES, allocate_page);
    Ok(())
}

/// The statistics in a mapping of the file, borrowed from it: the
/// compiler keeps them from outliving an unpublished mapping.
fn area_in(mapping: &Mapping) -> &Area {
    // SAFETY: a shared mapping of FILE_BYTES bytes (the size of `Area`, page
    // aligned) whose written pages are allocated; `Area` is all atomics,
    // valid all zero; the borrow keeps the mapping alive.
    unsafe { &*mapping.as_ptr().cast::<Area>() }
}

/// Allocates page `page` of the file (see `counters`).
fn allocate_page(page: usize) -> bool {
    let mapped = MAPPED.load(Ordering::Acquire);
    if mapped.is_null() || page * PAGE >= FILE_BYTES {
        return false;
    }
    let _errno = ErrnoGuard::save();
    // SAFETY: a page inside our mapping, which is never unmapped;
    // populating it changes no content.
    unsafe {
        crate::sys::mapping::advise(
            mapped.cast::<u8>().add(page * PAGE).cast(),
            PAGE,
            MADV_POPULATE_WRITE,
        )
    }
}

/// Takes the writer's locks (see `stats_file::LIVENESS_BYTE`).
fn lock(fd: c_int) -> bool {
    if !lock_byte(fd, libc::F_OFD_SETLK, LIVENESS_BYTE) {
        return false;
    }
    lock_byte(fd, libc::F_SETLK, IDENTITY_BYTE);
    true
}

/// The descriptor that holds the file's locks, which the program must not
/// close (see `hooks::descriptors`); -1 when there is none.
pub fn guarded_fd() -> c_int {
    LOCK_FD.load(Ordering::Relaxed)
}

/// The program is about to reuse our descriptor's number (`dup2` onto it):
/// the locks move to another descriptor of the same open file first.
pub fn move_guarded_fd() {
    let fd = LOCK_FD.load(Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    let _errno = ErrnoGuard::save();
    if let Some(moved) = duplicate_above(fd, HIGH_FD) {
        // Published in the old one's place (which the program then reuses).
        let moved = moved.into_raw();
        LOCK_FD.store(moved, Ordering::Relaxed);
        // The POSIX lock goes with the old number's close; take it again.
        lock_byte(moved, libc::F_SETLK, IDENTITY_BYTE);
    }
}

/// Once a second: counts that reached the private area late go to the file,
/// and the lock is taken again if its descriptor was closed under us.
pub fn upkeep() {
    if !exists() {
        return;
    }
    let _errno = ErrnoGuard::save();
    counters::sweep_private_into_file();
    let fd = LOCK_FD.load(Ordering::Relaxed);
    let ours = (
        IDENTITY.0.load(Ordering::Relaxed),
        IDENTITY.1.load(Ordering::Relaxed),
    );
    let still = descriptor_status(fd).is_some_and(|status| (status.st_dev, status.st_ino) == ours);
    if still {
        return;
    }
    // SAFETY: `PLACE` was written before `MAPPED` was published.
    let place = unsafe { &*PLACE.0.get() };
    let Some(fresh) = Fd::open(
        place.as_c(),
        libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    ) else {
        return;
    };
    let same = descriptor_status(fresh.as_raw())
        .is_some_and(|status| (status.st_dev, status.st_ino) == ours);
    if same && lock(fresh.as_raw()) {
        LOCK_FD.store(fresh.into_raw(), Ordering::Relaxed);
    }
}

/// A forked child does not own its parent's file: it makes its own at its
/// first call. (The parent's lock is not inherited; the descriptor is.)
pub fn after_fork_in_child() {
    if LOCK_FD.load(Ordering::Relaxed) >= 0 {
        let fd = LOCK_FD.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: swapped out of `LOCK_FD`, the number is no longer
            // published: this is its only owner, and it closes it.
            drop(unsafe { Fd::from_raw(fd) });
        }
    }
    crate::sys::fork::store_if_changed!(MAPPED, ptr::null_mut());
}
