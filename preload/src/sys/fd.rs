//! An owned file descriptor: closed when dropped, so that no error path can
//! leak one or close it twice. A descriptor that is published (the stats
//! file's lock, kept for the process's life) leaves its owner on purpose,
//! with `into_raw`. Closing goes through `raw::close`, the `syscall`
//! instruction: it never touches `errno`, never allocates and cannot panic,
//! so a drop is safe anywhere, a signal handler included.

use std::ffi::CStr;

use libc::c_int;

use super::raw;

/// A descriptor this code opened and nothing else owns.
#[derive(Debug)]
pub struct Fd(c_int);

impl Fd {
    /// Takes ownership of `fd`.
    ///
    /// # Safety
    ///
    /// `fd` must be an open descriptor that nothing else closes: the `Fd`
    /// closes it when dropped.
    pub unsafe fn from_raw(fd: c_int) -> Fd {
        Fd(fd)
    }

    /// `open(2)` (as `openat` from the working directory).
    pub fn open(path: &CStr, flags: c_int) -> Option<Fd> {
        Fd::open_at(libc::AT_FDCWD, path, flags, 0)
    }

    /// `openat(2)` of `name` in the directory `dir` (or `AT_FDCWD`).
    pub fn open_at(dir: c_int, name: &CStr, flags: c_int, mode: libc::mode_t) -> Option<Fd> {
        Fd::open_at_error(dir, name, flags, mode).ok()
    }

    /// As `open_at`, but `Err` holds the error number, for the few callers
    /// that must tell `EEXIST` or `ENOENT` from other failures.
    pub fn open_at_error(
        dir: c_int,
        name: &CStr,
        flags: c_int,
        mode: libc::mode_t,
    ) -> Result<Fd, c_int> {
        // SAFETY: a descriptor just opened, owned by no one else.
        raw::openat(dir, name, flags, mode).map(|fd| unsafe { Fd::from_raw(fd) })
    }

    /// A close-on-exec duplicate at or above `lowest` (`F_DUPFD_CLOEXEC`,
    /// through libc as before).
    pub fn duplicate_above(&self, lowest: c_int) -> Option<Fd> {
        duplicate_above(self.0, lowest)
    }

    /// The number, still owned by `self`.
    pub fn as_raw(&self) -> c_int {
        self.0
    }

    /// Gives the descriptor up without closing it: it is published, and
    /// must outlive this owner.
    pub fn into_raw(self) -> c_int {
        let fd = self.0;
        std::mem::forget(self);
        fd
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        raw::close(self.0);
    }
}

/// A close-on-exec duplicate of `fd` (which may be borrowed from a static)
/// at or above `lowest`.
pub fn duplicate_above(fd: c_int, lowest: c_int) -> Option<Fd> {
    // SAFETY: `F_DUPFD_CLOEXEC` takes an integer; a bad descriptor only
    // makes it fail.
    let moved = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, lowest) };
    // SAFETY: a descriptor just made, owned by no one else.
    (moved >= 0).then(|| unsafe { Fd::from_raw(moved) })
}

/// `ftruncate(2)`: sets the file's size; whether it succeeded.
pub fn set_len(fd: c_int, length: usize) -> bool {
    // SAFETY: no memory is involved; a bad descriptor only makes it fail.
    unsafe { libc::ftruncate(fd, length as libc::off_t) == 0 }
}

/// A write lock on one byte of the file (`fcntl` with `F_SETLK`,
/// `F_SETLKW`, `F_OFD_SETLK` or `F_OFD_SETLKW`; any other command is
/// refused); whether it was taken.
pub fn lock_byte(fd: c_int, command: c_int, byte: i64) -> bool {
    if ![
        libc::F_SETLK,
        libc::F_SETLKW,
        libc::F_OFD_SETLK,
        libc::F_OFD_SETLKW,
    ]
    .contains(&command)
    {
        return false;
    }
    // SAFETY: `flock` is plain data; all-zero (l_pid 0, as OFD locks need)
    // is valid.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = byte;
    range.l_len = 1;
    // SAFETY: a lock command with a valid lock description; a bad
    // descriptor only makes it fail.
    unsafe { libc::fcntl(fd, command, &mut range) == 0 }
}

/// `flock(LOCK_EX | LOCK_NB)`: whether the whole-file lock was taken.
pub fn try_lock_exclusive(fd: c_int) -> bool {
    // SAFETY: no memory is involved.
    unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// `futimens(fd, NULL)`: sets the file's times to now.
pub fn touch(fd: c_int) {
    // SAFETY: null times mean "now"; a bad descriptor only makes it fail.
    unsafe { libc::futimens(fd, std::ptr::null()) };
}

/// `lseek(SEEK_DATA)`: the start of the first data at or after `offset`,
/// or -1 with `errno` set (`ENXIO`: only holes from there).
pub fn seek_data(fd: c_int, offset: i64) -> i64 {
    // SAFETY: no memory is involved.
    unsafe { libc::lseek(fd, offset as libc::off_t, libc::SEEK_DATA) as i64 }
}

/// `lseek(SEEK_HOLE)`: the start of the first hole at or after `offset`,
/// or -1 with `errno` set.
pub fn seek_hole(fd: c_int, offset: i64) -> i64 {
    // SAFETY: no memory is involved.
    unsafe { libc::lseek(fd, offset as libc::off_t, libc::SEEK_HOLE) as i64 }
}

/// One `pread(2)` into `buffer` at `offset`: bytes read, 0 at the end, -1
/// with `errno` set.
pub fn read_at(fd: c_int, buffer: &mut [u8], offset: usize) -> isize {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into it.
    unsafe {
        libc::pread(
            fd,
            buffer.as_mut_ptr().cast(),
            buffer.len(),
            offset as libc::off_t,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_open(fd: c_int) -> bool {
        // SAFETY: F_GETFD takes no argument; a closed number fails.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    #[test]
    fn a_dropped_descriptor_is_closed_and_a_given_up_one_is_not() {
        // High numbers, which other tests running meanwhile (taking the
        // lowest free ones) do not reuse.
        let null = Fd::open(c"/dev/null", libc::O_RDONLY | libc::O_CLOEXEC).expect("/dev/null");
        let dropped = null.duplicate_above(700).expect("a duplicate");
        let number = dropped.as_raw();
        assert!(number >= 700 && is_open(number));
        drop(dropped);
        assert!(!is_open(number));
        let kept = null.duplicate_above(800).expect("a duplicate");
        let copied = kept.as_raw();
        assert_eq!(kept.into_raw(), copied);
        assert!(is_open(copied));
        // SAFETY: given up above; nothing else owns it.
        drop(unsafe { Fd::from_raw(copied) });
        assert!(!is_open(copied));
    }

    #[test]
    fn opening_tells_the_error() {
        let missing = Fd::open_at_error(libc::AT_FDCWD, c"/nonexistent/x", libc::O_RDONLY, 0);
        assert_eq!(missing.map(|fd| fd.as_raw()), Err(libc::ENOENT));
    }
}
