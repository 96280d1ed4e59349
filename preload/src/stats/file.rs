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

use super::counters::{self, Area};
use super::origin::with_origin;
use crate::sys::io::descriptor_status;
use crate::sys::{safedir, warn, ErrnoGuard};

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

fn open_dir(dir: &CStr) -> Result<c_int, &'static [u8]> {
    // The shared parent of the default directories is sticky and writable
    // by all, as for host budgets; make sure it is that, not 0755.
    if dir.to_bytes().starts_with(DEFAULT_LIMITS_DIR.as_bytes()) {
        let parent = safedir::open_trusted_dir(DEFAULT_LIMITS_DIR.as_bytes(), 0o1777)?;
        crate::sys::raw::close(parent);
    }
    safedir::open_trusted_dir(dir.to_bytes(), 0o755)
}

fn try_create(dir: &CStr, exe_name: &[u8]) -> Result<(), &'static [u8]> {
    let dir_fd = open_dir(dir)?;
    let result = create_in(dir_fd, dir, exe_name);
    crate::sys::raw::close(dir_fd);
    result
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
    // SAFETY (this function's libc calls): valid descriptors, NUL-terminated
    // names (zero-filled past their length), valid out-pointers.
    let created = crate::sys::raw::openat(dir_fd, temporary.path.as_ptr().cast(), flags, 0o644);
    if created < 0 {
        return Err(b"cannot create the stats file");
    }
    // SAFETY: duplicating the descriptor just opened.
    let moved = unsafe { libc::fcntl(created, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    let fd = if moved >= 0 {
        crate::sys::raw::close(created);
        moved
    } else {
        created
    };
    let fail = |problem: &'static [u8]| {
        crate::sys::raw::close(fd);
        // SAFETY: our directory descriptor and the temporary's
        // NUL-terminated name.
        unsafe { libc::unlinkat(dir_fd, temporary.path.as_ptr().cast(), 0) };
        Err(problem)
    };
    // SAFETY: a descriptor of the file just made; sizing it has no
    // memory effect here.
    if unsafe { libc::ftruncate(fd, FILE_BYTES as libc::off_t) } != 0 {
        return fail(b"cannot size the stats file");
    }
    let (Some(status), Some(directory)) = (descriptor_status(fd), descriptor_status(dir_fd)) else {
        return fail(b"cannot stat the stats file");
    };
    // SAFETY: a new shared mapping of the file, placed by the kernel: no
    // memory of ours is replaced.
    let mapped = unsafe {
        libc::mmap(
            ptr::null_mut(),
            FILE_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        )
    };
    if mapped == libc::MAP_FAILED {
        return fail(b"cannot map the stats file");
    }
    // SAFETY: the first pages of the mapping just made; populating them
    // changes no content.
    if unsafe { libc::madvise(mapped, FIRST_PAGES * PAGE, MADV_POPULATE_WRITE) } != 0 {
        // SAFETY: the mapping just made, not yet shared with anyone.
        unsafe { libc::munmap(mapped, FILE_BYTES) };
        return fail(b"no room for the stats file");
    }
    // SAFETY: a shared mapping of FILE_BYTES bytes whose written pages are
    // allocated; `Area` is all atomics, valid all zero. Never unmapped.
    let area: &'static Area = unsafe { &*mapped.cast::<Area>() };
    // SAFETY: `time` with a null pointer only returns the time.
    let now = unsafe { libc::time(ptr::null_mut()) }.max(0) as u64;
    with_origin(|origin| stats_file::write_header(area.words(), origin, nonce, now));
    if !lock(fd) {
        // SAFETY: the mapping is not published yet (`area` goes unused
        // after this), so nothing refers to it.
        unsafe { libc::munmap(mapped, FILE_BYTES) };
        return fail(b"cannot lock the stats file");
    }
    stats_file::mark_complete(area.words());
    // SAFETY: our directory descriptor and two NUL-terminated names.
    if unsafe {
        libc::renameat(
            dir_fd,
            temporary.path.as_ptr().cast(),
            dir_fd,
            name.path.as_ptr().cast(),
        )
    } != 0
    {
        // SAFETY: as above: not published, nothing refers to it.
        unsafe { libc::munmap(mapped, FILE_BYTES) };
        return fail(b"cannot put the stats file in place");
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
    LOCK_FD.store(fd, Ordering::Relaxed);
    MAPPED.store(mapped.cast(), Ordering::Release);
    counters::use_file(area, FIRST_PAGES, allocate_page);
    Ok(())
}

/// Allocates page `page` of the file (see `counters`).
fn allocate_page(page: usize) -> bool {
    let mapped = MAPPED.load(Ordering::Acquire);
    if mapped.is_null() || page * PAGE >= FILE_BYTES {
        return false;
    }
    let _errno = ErrnoGuard::save();
    // SAFETY: a page inside our mapping.
    unsafe {
        libc::madvise(
            mapped.cast::<u8>().add(page * PAGE).cast(),
            PAGE,
            MADV_POPULATE_WRITE,
        ) == 0
    }
}

/// A write lock on one byte of the file.
pub fn lock_byte(fd: c_int, command: c_int, byte: i64) -> bool {
    // SAFETY: `flock` is plain data; all-zero (l_pid 0, as OFD locks need)
    // is valid.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = byte;
    range.l_len = 1;
    // SAFETY: a valid descriptor and lock description.
    unsafe { libc::fcntl(fd, command, &range) == 0 }
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
    // SAFETY: duplicating our own descriptor.
    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if moved >= 0 {
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
    // A NUL-terminated path (zero-filled past its length).
    let fresh = crate::sys::raw::open(
        place.path.as_ptr().cast(),
        libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    );
    if fresh < 0 {
        return;
    }
    let same =
        descriptor_status(fresh).is_some_and(|status| (status.st_dev, status.st_ino) == ours);
    if same && lock(fresh) {
        LOCK_FD.store(fresh, Ordering::Relaxed);
    } else {
        crate::sys::raw::close(fresh);
    }
}

/// A forked child does not own its parent's file: it makes its own at its
/// first call. (The parent's lock is not inherited; the descriptor is.)
pub fn after_fork_in_child() {
    if LOCK_FD.load(Ordering::Relaxed) >= 0 {
        let fd = LOCK_FD.swap(-1, Ordering::Relaxed);
        if fd >= 0 {
            crate::sys::raw::close(fd);
        }
    }
    crate::sys::fork::store_if_changed!(MAPPED, ptr::null_mut());
}
