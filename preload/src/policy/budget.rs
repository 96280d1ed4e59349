//! Host-scope budgets: the GCRA word of a `scope = "host"` rule lives in a
//! small file in the limits directory (`/dev/shm/fadvise-shim` unless
//! `[limits] dir` says otherwise), mapped shared by every process whose
//! policy has a host rule of that name, so they all draw from one budget.
//!
//! The file is `<name>.<euid>.budget`, mode 0600: a user's budget is shared by
//! that user's processes (root's by every container running as root) and no
//! other user can open it, let alone starve or corrupt it. It records its
//! rate and burst; a process whose rule says otherwise keeps a budget of its
//! own (one stderr line), as it does when the directory is unusable. A file
//! that is corrupted is repaired in place by one process (a compare-and-swap
//! on its magic number), so every process keeps sharing the same file; a
//! deleted or replaced one is noticed at the next once-a-second policy check,
//! and mapped anew (`limits.rs`). Nothing is ever unmapped while a thread
//! might read it. This file knows only the budget file itself.

use std::ffi::CStr;
use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use crate::sys::dir::{link_at, unlink_at};
use crate::sys::fd::set_len;
use crate::sys::io::descriptor_status;
use crate::sys::{errno, Fd, Mapping};

const MAGIC: [u8; 8] = *b"FSHBDG01";
/// Bytes mapped: one page, whatever is used of it.
const FILE_SIZE: usize = 4096;
/// Marks a host limiter that uses its per-process word instead.
pub const FALLBACK: *mut SharedBudget = 1 as *mut SharedBudget;

/// The shared file's layout. Every field is atomic: other processes update
/// them at any time.
#[repr(C)]
pub struct SharedBudget {
    magic: AtomicU64,
    rate_bits: AtomicU64,
    burst_bits: AtomicU64,
    _reserved: [AtomicU64; 5],
    /// The GCRA arrival time, in `CLOCK_MONOTONIC` nanoseconds (one clock
    /// for the whole host), on a cache line of its own.
    pub next_ns: AtomicU64,
    pub admitted: AtomicU64,
    pub refused: AtomicU64,
}

/// A file's (device, inode).
pub type Identity = (u64, u64);

/// Opens (or creates) and maps the budget file `file` in `dir`.
pub fn map(
    dir: &CStr,
    file: &CStr,
    rate: f64,
    burst: f64,
) -> Result<(*mut SharedBudget, Identity), &'static [u8]> {
    let dir_fd = crate::sys::safedir::open_trusted_dir(dir.to_bytes(), 0o1777)?;
    map_in(dir_fd.as_raw(), file, rate, burst)
}

fn map_in(
    dir_fd: c_int,
    file: &CStr,
    rate: f64,
    burst: f64,
) -> Result<(*mut SharedBudget, Identity), &'static [u8]> {
    for _ in 0..4 {
        let opened = Fd::open_at_error(
            dir_fd,
            file,
            libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0,
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(libc::ENOENT) => match create(dir_fd, file, rate, burst) {
                Err(Created::Raced) => continue,
                other => return other.map_err(Created::problem),
            },
            Err(libc::ELOOP) => return Err(b"a symlink stands where the budget file should be"),
            Err(_) => return Err(b"cannot open the budget file"),
        };
        return open_existing(fd.as_raw(), rate, burst);
    }
    Err(b"the budget file keeps changing")
}

fn open_existing(
    fd: c_int,
    rate: f64,
    burst: f64,
) -> Result<(*mut SharedBudget, Identity), &'static [u8]> {
    let Some(status) =
        descriptor_status(fd).filter(|status| status.st_mode & libc::S_IFMT == libc::S_IFREG)
    else {
        return Err(b"the budget file is not a regular file");
    };
    if status.st_uid != crate::sys::process::euid() {
        return Err(b"the budget file belongs to another user");
    }
    // A truncated file grows back to its size (idempotent: racing
    // processes do the same), and is repaired below.
    if (status.st_size as usize) < FILE_SIZE && !set_len(fd, FILE_SIZE) {
        return Err(b"cannot repair the budget file");
    }
    let mapping = map_fd(fd).ok_or(b"cannot map the budget file".as_slice())?;
    let shared = budget_in(&mapping);
    repair_if_corrupt(shared, rate, burst);
    if !same_parameters(shared, rate, burst) {
        return Err(b"other processes use this budget with another rate or burst");
    }
    Ok((mapping.leak().cast(), (status.st_dev, status.st_ino)))
}

/// A magic number that is not ours means a corrupted file. One process
/// (the one whose compare-and-swap wins) rewrites it as a fresh, full budget
/// with its parameters; the others wait for it, briefly: a repairer killed
/// midway is replaced by the next process that looks.
fn repair_if_corrupt(shared: &SharedBudget, rate: f64, burst: f64) {
    let magic = u64::from_ne_bytes(MAGIC);
    for _ in 0..20 {
        let seen = shared.magic.load(Ordering::Acquire);
        if seen == magic {
            return;
        }
        if seen != REPAIRING
            && shared
                .magic
                .compare_exchange(seen, REPAIRING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            break;
        }
        crate::sys::process::sleep_ns(500_000);
    }
    shared.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    shared.burst_bits.store(burst.to_bits(), Ordering::Relaxed);
    shared.next_ns.store(0, Ordering::Relaxed);
    shared.magic.store(magic, Ordering::Release);
}

/// Marks a budget file being repaired.
const REPAIRING: u64 = u64::from_ne_bytes(*b"FSHBDGrp");

enum Created {
    Raced,
    Failed(&'static [u8]),
}

impl Created {
    fn problem(self) -> &'static [u8] {
        match self {
            Created::Raced => b"the budget file keeps changing",
            Created::Failed(problem) => problem,
        }
    }
}

/// Writes a complete budget file aside, then links it into place (which
/// fails if another process created one first: `Raced`).
fn create(
    dir_fd: c_int,
    file: &CStr,
    rate: f64,
    burst: f64,
) -> Result<(*mut SharedBudget, Identity), Created> {
    let mut temporary = [0u8; 300];
    let name = file.to_bytes();
    let mut pid_digits = [0u8; 20];
    let pid = crate::sys::io::decimal(crate::sys::process::pid() as u64, &mut pid_digits);
    let parts: [&[u8]; 4] = [b".", name, b".", pid];
    let mut length = 0;
    for part in parts.iter().chain([&&b".tmp"[..]]) {
        if length + part.len() >= temporary.len() {
            return Err(Created::Failed(b"the budget name is too long"));
        }
        temporary[length..length + part.len()].copy_from_slice(part);
        length += part.len();
    }
    // The buffer is zero-filled past `length`, so there is a NUL.
    let temporary = CStr::from_bytes_until_nul(&temporary)
        .map_err(|_| Created::Failed(b"the budget name is too long"))?;
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    unlink_at(dir_fd, temporary);
    let fd = Fd::open_at(dir_fd, temporary, flags, 0o600)
        .ok_or(Created::Failed(b"cannot create the budget file"))?;
    let status = if set_len(fd.as_raw(), FILE_SIZE) {
        descriptor_status(fd.as_raw())
    } else {
        None
    };
    let mapping = status.and_then(|_| map_fd(fd.as_raw()));
    drop(fd);
    let (Some(status), Some(mapping)) = (status, mapping) else {
        unlink_at(dir_fd, temporary);
        return Err(Created::Failed(b"cannot size or map the budget file"));
    };
    let shared = budget_in(&mapping);
    shared.rate_bits.store(rate.to_bits(), Ordering::Relaxed);
    shared.burst_bits.store(burst.to_bits(), Ordering::Relaxed);
    shared
        .magic
        .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
    if !link_at(dir_fd, temporary, file) {
        let raced = errno() == libc::EEXIST;
        unlink_at(dir_fd, temporary);
        drop(mapping);
        return Err(if raced {
            Created::Raced
        } else {
            Created::Failed(b"cannot put the budget file in place")
        });
    }
    unlink_at(dir_fd, temporary);
    Ok((mapping.leak().cast(), (status.st_dev, status.st_ino)))
}

fn same_parameters(shared: &SharedBudget, rate: f64, burst: f64) -> bool {
    shared.rate_bits.load(Ordering::Relaxed) == rate.to_bits()
        && shared.burst_bits.load(Ordering::Relaxed) == burst.to_bits()
}

/// Maps FILE_SIZE bytes of a file at least that long; unmapped if dropped
/// before it is handed out (`leak`).
fn map_fd(fd: c_int) -> Option<Mapping> {
    Mapping::shared_file(fd, FILE_SIZE)
}

/// The budget in a mapping of its file.
fn budget_in(mapping: &Mapping) -> &SharedBudget {
    // SAFETY: a shared mapping of FILE_SIZE bytes, page aligned and larger
    // than `SharedBudget`, whose fields are all atomics (valid whatever
    // other processes wrote); the borrow keeps the mapping alive.
    unsafe { &*mapping.as_ptr().cast::<SharedBudget>() }
}
