//! An exiting process's part in retiring stats files
//! (`fadvise_shim_core::compaction`): it logs its own exit — one `O_APPEND`
//! write of its file's name to the directory's exit log, whatever the
//! host's history — and, when that makes the log long enough and no one
//! else is compacting, drains it into a segment. Its own file is still
//! locked (the kernel releases the lock when the last thread is gone), so
//! it logs itself again for the next drain.
//!
//! The directory is the one the stats file was made in: opened again by its
//! path and accepted only if it is the same directory (device and inode),
//! which was vetted then (`sys::safedir`), so a path swapped since leads
//! nowhere. Everything the compaction reads
//! is hostile: no symlink followed, nothing but regular files, sizes bounded.

use std::ffi::{CStr, CString};

use libc::c_int;

use fadvise_shim_core::compaction::{
    compact, names_in_log, Budget, DeadFile, Scope, StatsDirectory, DRAIN_AT_BYTES, MAX_LOG_BYTES,
};
use fadvise_shim_core::stats_file::{self, FILE_BYTES};

use crate::sys::dir::{read_entries, rename_at, rename_noreplace_at, unlink_at};
use crate::sys::fd::{read_at, seek_data, seek_hole, touch, try_lock_exclusive};
use crate::sys::io::{descriptor_status, read_some, write_all};
use crate::sys::{ErrnoGuard, Fd, NoCancel};

/// Dead files one exit folds at most (a drain finds about as many as the
/// log names).
const EXIT_FOLDS: usize = 64;
/// Segments and the summary are small; anything larger is not ours.
const MAX_RETIRED_BYTES: usize = 16 << 20;
const LOCK_NAME: &CStr = c".compaction.lock";
const EXIT_LOG_C: &CStr = c".exits";
const DRAINING_LOG: &CStr = c".exits.draining";

/// Logs this process's exit in `dir` (whose identity is `expected`: the
/// directory its stats file is in), draining the log if it is due.
pub fn at_exit(dir: &CStr, expected: (u64, u64), own_name: &[u8]) {
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    // Symlinks are followed as when the file was made (`sys::safedir`
    // vetted them then): what counts is that it is the same directory.
    let Some(dir_fd) = Fd::open(dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) else {
        return;
    };
    let mut directory = Directory {
        held: Vec::new(),
        lock: None,
        fd: dir_fd,
        spare: None,
        filled: Vec::new(),
    };
    let same = descriptor_status(directory.fd.as_raw())
        .is_some_and(|status| (status.st_dev, status.st_ino) == expected);
    if !same {
        return;
    }
    let Some(log_bytes) = directory.append_to_log(&[own_name, b"\n"].concat()) else {
        return;
    };
    if log_bytes < DRAIN_AT_BYTES {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compact(
            &mut directory,
            Budget {
                folds: EXIT_FOLDS,
                scope: Scope::ExitLog,
            },
        )
    }));
}

/// What a compaction holds open. Fields drop in this order: the dead files
/// (which releases their locks), then the compaction lock, then the
/// directory.
struct Directory {
    /// Dead files opened (their locks held) until the compaction ends.
    held: Vec<Fd>,
    lock: Option<Fd>,
    fd: Fd,
    /// A dead file's buffer, all zero again, for the next one.
    spare: Option<Vec<u8>>,
    /// The ranges of the buffer lent out that hold data.
    filled: Vec<(usize, usize)>,
}

fn c_name(name: &str) -> Option<CString> {
    CString::new(name).ok().filter(|_| !name.contains('/'))
}

fn is_regular(fd: c_int) -> bool {
    descriptor_status(fd).is_some_and(|status| status.st_mode & libc::S_IFMT == libc::S_IFREG)
}

impl Directory {
    fn open_c(&self, name: &CStr, flags: c_int) -> Option<Fd> {
        let fd = Fd::open_at(
            self.fd.as_raw(),
            name,
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
            0o644,
        )?;
        is_regular(fd.as_raw()).then_some(fd)
    }

    fn open(&self, name: &str, flags: c_int) -> Option<Fd> {
        self.open_c(&c_name(name)?, flags)
    }

    /// Appends `bytes` to the exit log (one write, which `O_APPEND` keeps
    /// whole among concurrent writers); the log's size after it.
    fn append_to_log(&self, bytes: &[u8]) -> Option<u64> {
        let fd = self.open_c(EXIT_LOG_C, libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT)?;
        write_all(fd.as_raw(), bytes)
            .then(|| descriptor_status(fd.as_raw()))
            .flatten()
            .map(|status| status.st_size as u64)
    }

    fn unlink(&self, name: &CStr) {
        unlink_at(self.fd.as_raw(), name);
    }
}

fn read_all(fd: c_int, limit: usize) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match read_some(fd, &mut chunk) {
            0 => return Some(bytes),
            read if read > 0 => {
                if bytes.len() + read as usize > limit {
                    return None;
                }
                bytes.try_reserve(read as usize).ok()?;
                bytes.extend_from_slice(&chunk[..read as usize]);
            }
            _ => return None,
        }
    }
}

/// The first `length` bytes of a stats file, reading only its data (it is
/// mostly holes, which stay zero without being copied) into `spare` (all
/// zero) if there is one; `None` if it is longer than that or cannot be
/// read.
fn read_sparse(
    fd: c_int,
    length: usize,
    spare: Option<Vec<u8>>,
    filled: &mut Vec<(usize, usize)>,
) -> Option<Vec<u8>> {
    filled.clear();
    let size = descriptor_status(fd)?.st_size;
    if size < 0 || size as usize > length {
        return None;
    }
    let size = size as usize;
    let mut bytes = spare.unwrap_or_default();
    if bytes.len() < size {
        bytes.try_reserve_exact(size - bytes.len()).ok()?;
    }
    bytes.resize(size, 0);
    let mut offset = 0usize;
    while offset < size {
        let data = seek_data(fd, offset as i64);
        if data < 0 {
            // ENXIO: nothing but holes from here; anything else (a file
            // system without SEEK_DATA): read the rest whole.
            if crate::sys::errno::errno() == libc::ENXIO {
                break;
            }
            filled.push((offset, size));
            return read_range(fd, &mut bytes[offset..], offset).then_some(bytes);
        }
        let hole = seek_hole(fd, data);
        let start = (data as usize).min(size);
        let end = if hole < 0 {
            size
        } else {
            (hole as usize).min(size)
        };
        filled.push((start, end));
        if !read_range(fd, &mut bytes[start..end], start) {
            return None;
        }
        offset = end.max(start + 1);
    }
    Some(bytes)
}

/// Fills `buffer` from `fd` at `offset` (`pread`, retried on `EINTR` and
/// short reads).
fn read_range(fd: c_int, buffer: &mut [u8], offset: usize) -> bool {
    let mut done = 0;
    while done < buffer.len() {
        let read = read_at(fd, &mut buffer[done..], offset + done);
        if read > 0 {
            done += read as usize;
        } else if read < 0 && crate::sys::errno::errno() == libc::EINTR {
            continue;
        } else {
            return false;
        }
    }
    true
}

impl StatsDirectory for Directory {
    fn lock_compaction(&mut self) -> bool {
        let Some(fd) = self.open_c(LOCK_NAME, libc::O_RDWR | libc::O_CREAT) else {
            return false;
        };
        let locked = try_lock_exclusive(fd.as_raw());
        self.lock = Some(fd);
        locked
    }

    fn list(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        // A second descriptor of the directory, for its own reading offset.
        let Some(fd) = Fd::open_at(
            self.fd.as_raw(),
            c".",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
        ) else {
            return names;
        };
        let mut buffer = [0u8; 8192];
        loop {
            let read = read_entries(fd.as_raw(), &mut buffer);
            if read <= 0 {
                break;
            }
            let mut offset = 0;
            // Each record: inode (8), offset (8), length (2), type (1),
            // then the NUL-terminated name.
            while offset + 19 < read as usize {
                let length =
                    u16::from_ne_bytes([buffer[offset + 16], buffer[offset + 17]]) as usize;
                if length == 0 || offset + length > read as usize {
                    break;
                }
                let name = &buffer[offset + 19..offset + length];
                let name = CStr::from_bytes_until_nul(name)
                    .map(CStr::to_bytes)
                    .unwrap_or_default();
                if let Ok(name) = std::str::from_utf8(name) {
                    if fadvise_shim_core::compaction::is_statistics_file(name)
                        && !name.ends_with(".dump")
                    {
                        names.push(name.to_owned());
                    }
                }
                offset += length;
            }
        }
        names
    }

    fn take_exit_log(&mut self) -> Vec<String> {
        // Set aside, unless a killed drain left its log there: then that one
        // is dealt with first (RENAME_NOREPLACE fails with EEXIST).
        let set_aside = rename_noreplace_at(self.fd.as_raw(), EXIT_LOG_C, DRAINING_LOG);
        let unsupported = matches!(crate::sys::errno::errno(), libc::EINVAL | libc::ENOSYS);
        if !set_aside
            && unsupported
            && self
                .open_c(DRAINING_LOG, libc::O_RDONLY)
                .map(drop)
                .is_none()
        {
            // A kernel or file system without renameat2: a plain rename
            // where nothing is set aside (the lock keeps other drains out).
            rename_at(self.fd.as_raw(), EXIT_LOG_C, DRAINING_LOG);
        }
        self.open_c(DRAINING_LOG, libc::O_RDONLY)
            .map(|fd| {
                let bytes = read_all(fd.as_raw(), MAX_LOG_BYTES);
                drop(fd);
                names_in_log(&bytes.unwrap_or_default())
            })
            .unwrap_or_default()
    }

    fn finish_exit_log(&mut self) {
        self.unlink(DRAINING_LOG);
    }

    fn log_exits(&mut self, names: &[String]) {
        let mut bytes = Vec::new();
        for name in names {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(b'\n');
        }
        let _ = self.append_to_log(&bytes);
    }

    fn full_scan_due(&mut self, seconds: u64) -> bool {
        let Some(status) = self
            .lock
            .as_ref()
            .and_then(|lock| descriptor_status(lock.as_raw()))
        else {
            return false;
        };
        let now = crate::sys::time::now_seconds();
        if now < status.st_mtime.saturating_add(seconds as libc::time_t) {
            return false;
        }
        // The lock file's time says when the last full scan was.
        if let Some(lock) = &self.lock {
            touch(lock.as_raw());
        }
        true
    }

    fn open_dead(&mut self, name: &str) -> Option<DeadFile> {
        let fd = self.open(name, libc::O_RDWR)?;
        let status = descriptor_status(fd.as_raw());
        // Taking the writer's liveness lock proves it dead, and keeps other
        // compactors off the file.
        let dead =
            crate::sys::fd::lock_byte(fd.as_raw(), libc::F_OFD_SETLK, stats_file::LIVENESS_BYTE);
        let bytes = if dead {
            read_sparse(fd.as_raw(), FILE_BYTES, self.spare.take(), &mut self.filled)
        } else {
            None
        };
        match (status, bytes) {
            (Some(status), Some(bytes)) => {
                self.held.push(fd);
                Some(DeadFile {
                    name: name.to_owned(),
                    inode: status.st_ino,
                    bytes,
                })
            }
            _ => None,
        }
    }

    fn read(&mut self, name: &str) -> Option<Vec<u8>> {
        let fd = self.open(name, libc::O_RDONLY)?;
        read_all(fd.as_raw(), MAX_RETIRED_BYTES)
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> bool {
        let temporary = format!(".{name}.{}.tmp", crate::sys::process::pid());
        let (Some(temporary_c), Some(name_c)) = (c_name(&temporary), c_name(name)) else {
            return false;
        };
        self.unlink(&temporary_c);
        let Some(fd) = self.open(&temporary, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) else {
            return false;
        };
        let written = write_all(fd.as_raw(), bytes);
        drop(fd);
        let renamed = written && rename_at(self.fd.as_raw(), &temporary_c, &name_c);
        if !renamed {
            self.unlink(&temporary_c);
        }
        renamed
    }

    fn remove(&mut self, name: &str) {
        if let Some(name) = c_name(name) {
            self.unlink(&name);
        }
    }

    fn unique_stem(&mut self) -> String {
        // CLOCK_REALTIME always exists.
        let now = crate::sys::time::read(libc::CLOCK_REALTIME).unwrap_or(libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        });
        let pid = crate::sys::process::pid();
        format!("{:x}{:08x}-{pid}", now.tv_sec, now.tv_nsec)
    }

    /// Other processes' broken files are not this program's business: a
    /// reader warns about them.
    fn warn(&mut self, _name: &str, _problem: &str) {}

    fn recycle(&mut self, mut bytes: Vec<u8>) {
        // Zero again only what the file filled (a few pages of ~90):
        // cheaper than a fresh mapping's faults and its unmapping.
        for &(start, end) in &self.filled {
            if let Some(range) = bytes.get_mut(start..end) {
                range.fill(0);
            }
        }
        self.filled.clear();
        self.spare = Some(bytes);
    }
}
