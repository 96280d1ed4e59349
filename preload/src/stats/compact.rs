//! An exiting process retires dead neighbours: the compaction of
//! `fadvise_shim_core::compaction`, over the stats directory with plain
//! system calls, bounded so that exit stays cheap (a few dozen files looked
//! at, from a random place in the listing). Its own file is still locked
//! (the kernel releases the lock when the last thread is gone), so a later
//! compaction, by the next process to exit or by any reader, retires it.
//! That keeps the directory bounded even when no reader ever runs.

use std::ffi::{CStr, CString};

use libc::c_int;

use fadvise_shim_core::compaction::{compact, Budget, DeadFile, StatsDirectory};
use fadvise_shim_core::stats_file::{self, FILE_BYTES};

use crate::sys::io::{descriptor_status, read_some, write_all};
use crate::sys::{safedir, ErrnoGuard, NoCancel};

const EXIT_BUDGET: Budget = Budget {
    folds: 16,
    looks: 48,
    start: 0,
};
/// Aggregates are small; anything larger is not ours.
const MAX_AGGREGATE_BYTES: usize = 4 << 20;

/// Runs a bounded compaction of `dir`, skipping the file of inode `own`.
pub fn at_exit(dir: &CStr, own: u64) {
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    let Ok(dir_fd) = safedir::open_trusted_dir(dir.to_bytes(), 0o755) else {
        return;
    };
    let mut directory = Directory {
        fd: dir_fd,
        own,
        lock: -1,
        held: Vec::new(),
    };
    let start = (crate::sys::clock::monotonic_ns() / 1000) as usize;
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compact(
            &mut directory,
            Budget {
                start,
                ..EXIT_BUDGET
            },
        )
    }));
}

struct Directory {
    fd: c_int,
    own: u64,
    lock: c_int,
    /// Dead files opened (their locks held) until the compaction ends.
    held: Vec<c_int>,
}

impl Drop for Directory {
    fn drop(&mut self) {
        // Closing what this compaction opened (which drops its locks).
        for &fd in &self.held {
            crate::sys::raw::close(fd);
        }
        if self.lock >= 0 {
            crate::sys::raw::close(self.lock);
        }
        crate::sys::raw::close(self.fd);
    }
}

fn c_name(name: &str) -> Option<CString> {
    CString::new(name).ok().filter(|_| !name.contains('/'))
}

impl Directory {
    fn open(&self, name: &str, flags: c_int) -> Option<c_int> {
        let name = c_name(name)?;
        let fd = crate::sys::raw::openat(
            self.fd,
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        );
        (fd >= 0).then_some(fd)
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

impl StatsDirectory for Directory {
    fn lock_compaction(&mut self) -> bool {
        let Some(fd) = self.open(".compaction.lock", libc::O_RDWR | libc::O_CREAT) else {
            return false;
        };
        self.lock = fd;
        // SAFETY: a valid descriptor.
        unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) == 0 }
    }

    fn list(&mut self) -> Vec<String> {
        let mut names = Vec::new();
        let Some(fd) = self.open(".", libc::O_RDONLY | libc::O_DIRECTORY) else {
            return names;
        };
        let mut buffer = [0u8; 8192];
        loop {
            // SAFETY: a valid directory descriptor and buffer.
            let read = unsafe {
                libc::syscall(libc::SYS_getdents64, fd, buffer.as_mut_ptr(), buffer.len())
            };
            if read <= 0 {
                break;
            }
            let mut offset = 0;
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
        crate::sys::raw::close(fd);
        names
    }

    fn open_dead(&mut self, name: &str) -> Option<DeadFile> {
        let fd = self.open(name, libc::O_RDWR)?;
        let status = descriptor_status(fd).filter(|status| {
            status.st_mode & libc::S_IFMT == libc::S_IFREG && status.st_ino != self.own
        });
        // Taking the writer's liveness lock proves it dead, and keeps other
        // compactors off the file.
        let dead = status.is_some()
            && super::file::lock_byte(fd, libc::F_OFD_SETLK, stats_file::LIVENESS_BYTE);
        let bytes = if dead {
            read_all(fd, FILE_BYTES + 4096)
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
            _ => {
                crate::sys::raw::close(fd);
                None
            }
        }
    }

    fn inode(&mut self, name: &str) -> Option<u64> {
        let name = c_name(name)?;
        // SAFETY: `stat` is plain data; all-zero is valid.
        let mut status: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid descriptor, name and out-pointer.
        (unsafe {
            libc::fstatat(
                self.fd,
                name.as_ptr(),
                &mut status,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        } == 0)
            .then_some(status.st_ino)
    }

    fn read(&mut self, name: &str) -> Option<Vec<u8>> {
        let fd = self.open(name, libc::O_RDONLY | libc::O_NONBLOCK)?;
        let regular = descriptor_status(fd)
            .is_some_and(|status| status.st_mode & libc::S_IFMT == libc::S_IFREG);
        let bytes = if regular {
            read_all(fd, MAX_AGGREGATE_BYTES)
        } else {
            None
        };
        crate::sys::raw::close(fd);
        bytes
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> bool {
        // SAFETY: getpid has no preconditions.
        let temporary = format!(".{name}.{}.tmp", unsafe { libc::getpid() });
        let (Some(temporary_c), Some(name_c)) = (c_name(&temporary), c_name(name)) else {
            return false;
        };
        // SAFETY: valid descriptor and names.
        unsafe { libc::unlinkat(self.fd, temporary_c.as_ptr(), 0) };
        let Some(fd) = self.open(&temporary, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) else {
            return false;
        };
        let written = write_all(fd, bytes);
        // SAFETY: valid descriptors and names.
        unsafe {
            crate::sys::raw::close(fd);
            if written
                && libc::renameat(self.fd, temporary_c.as_ptr(), self.fd, name_c.as_ptr()) == 0
            {
                return true;
            }
            libc::unlinkat(self.fd, temporary_c.as_ptr(), 0);
        }
        false
    }

    fn remove(&mut self, name: &str) {
        if let Some(name) = c_name(name) {
            // SAFETY: valid descriptor and name.
            unsafe { libc::unlinkat(self.fd, name.as_ptr(), 0) };
        }
    }

    /// Other processes' broken files are not this program's business: a
    /// reader warns about them.
    fn warn(&mut self, _name: &str, _problem: &str) {}
}
