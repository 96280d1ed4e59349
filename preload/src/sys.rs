//! Small wrappers over libc for code that runs inside the host process:
//! `errno` access, a one-line stderr message written with `write(2)`, and a
//! guard that keeps thread cancellation out of the shim's own slow paths.

use std::sync::atomic::{AtomicU64, Ordering};

use libc::c_int;

use fadvise_shim_core::text::Sink;

// Not in the `libc` crate for this target; glibc has them.
const PTHREAD_CANCEL_DISABLE: c_int = 1;
extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}
extern "C-unwind" {
    /// Acts on a pending cancellation, which unwinds the thread.
    pub fn pthread_testcancel();
}

pub fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// Restores `errno` when dropped: the shim's own work must never change
/// what the program sees in `errno`.
pub struct ErrnoGuard(c_int);

impl ErrnoGuard {
    pub fn save() -> Self {
        ErrnoGuard(errno())
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// Disables thread cancellation while it lives. The shim's slow paths
/// (policy reads, dumps) call `open`/`read`/`write`, which are cancellation
/// points; a cancellation there would unwind through frames that must not be
/// unwound. The program's own calls stay cancellation points.
pub struct NoCancel(c_int);

impl NoCancel {
    pub fn new() -> Self {
        let mut old = 0;
        // SAFETY: plain libc call with a valid out-pointer.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        NoCancel(old)
    }
}

impl Drop for NoCancel {
    fn drop(&mut self) {
        let mut ignored = 0;
        // SAFETY: restores the state saved in `new`.
        unsafe { pthread_setcancelstate(self.0, &mut ignored) };
    }
}

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and short writes.
/// Async-signal-safe. Returns false on any other failure.
pub fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable buffer of the given length.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        bytes = &bytes[written as usize..];
    }
    true
}

/// One `read(2)` into `buffer`, retried on `EINTR`: bytes read, 0 at the
/// end, negative on any other error. Async-signal-safe.
pub fn read_some(fd: c_int, buffer: &mut [u8]) -> isize {
    loop {
        // SAFETY: `buffer` is a valid writable buffer of the given length.
        let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
        if read >= 0 || errno() != libc::EINTR {
            return read;
        }
    }
}

/// Opening a file the shim reads (a policy, a sysfs value): never blocks,
/// so a FIFO or a device named there cannot hang every process at start-up.
/// `read_*` below then refuse anything but a regular file.
const READ_FLAGS: c_int = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK;

/// Reads the whole of a small regular file into `buffer` with plain
/// `open`/`read`, allocating nothing. `None` if it cannot be read, is not a
/// regular file, or does not fit (a file that fills the buffer exactly
/// counts as not fitting).
pub fn read_small_file<'a>(path: &std::ffi::CStr, buffer: &'a mut [u8]) -> Option<&'a [u8]> {
    let _errno = ErrnoGuard::save();
    // SAFETY: NUL-terminated path; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), READ_FLAGS) };
    if fd < 0 {
        return None;
    }
    let regular = is_regular_file(fd);
    let mut length = 0;
    let complete = regular
        && loop {
            let free = &mut buffer[length..];
            if free.is_empty() {
                break false;
            }
            match read_some(fd, free) {
                0 => break true,
                read if read > 0 => length += read as usize,
                _ => break false,
            }
        };
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    complete.then_some(&buffer[..length])
}

/// Reads a whole regular file (the policy, when it is compiled), opened as
/// `read_small_file` opens one.
pub fn read_regular_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(READ_FLAGS)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A `Sink` over a fixed stack buffer, flushed to a file descriptor with
/// `write(2)`: output without allocation, usable in a signal handler.
pub struct FdSink<'a> {
    fd: c_int,
    buffer: &'a mut [u8],
    used: usize,
    pub failed: bool,
}

impl<'a> FdSink<'a> {
    pub fn new(fd: c_int, buffer: &'a mut [u8]) -> Self {
        FdSink {
            fd,
            buffer,
            used: 0,
            failed: false,
        }
    }

    /// Writes out what is buffered; false if anything failed.
    pub fn flush(&mut self) -> bool {
        if self.used > 0 && !self.failed {
            self.failed = !write_all(self.fd, &self.buffer[..self.used]);
        }
        self.used = 0;
        !self.failed
    }
}

impl Sink for FdSink<'_> {
    fn put(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.used == self.buffer.len() {
                self.flush();
            }
            let take = bytes.len().min(self.buffer.len() - self.used);
            self.buffer[self.used..self.used + take].copy_from_slice(&bytes[..take]);
            self.used += take;
            bytes = &bytes[take..];
        }
    }
}

/// Identity (device, inode) of the process's stderr at start-up, so that a
/// warning never lands in a file that took descriptor 2 since (a daemon that
/// closed its standard descriptors and opened its data files).
static STDERR_IDENTITY: (AtomicU64, AtomicU64) = (AtomicU64::new(0), AtomicU64::new(0));

fn descriptor_status(fd: c_int) -> Option<libc::stat> {
    // SAFETY: `stat` is plain data, valid all zero; fstat fills it or fails.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer; a bad descriptor only makes it fail.
    (unsafe { libc::fstat(fd, &mut status) } == 0).then_some(status)
}

fn descriptor_identity(fd: c_int) -> Option<(u64, u64)> {
    descriptor_status(fd).map(|status| (status.st_dev, status.st_ino))
}

fn is_regular_file(fd: c_int) -> bool {
    descriptor_status(fd).is_some_and(|status| status.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// Notes what stderr is; called at start-up.
pub fn remember_stderr() {
    let _errno = ErrnoGuard::save();
    if let Some((device, inode)) = descriptor_identity(libc::STDERR_FILENO) {
        STDERR_IDENTITY.0.store(device, Ordering::Relaxed);
        STDERR_IDENTITY.1.store(inode, Ordering::Relaxed);
    }
}

/// Writes one line to stderr: `fadvise-shim: ` followed by `parts`, if
/// descriptor 2 is still the stderr the process started with.
/// Async-signal-safe; `errno` is preserved.
pub fn warn(parts: &[&[u8]]) {
    let _errno = ErrnoGuard::save();
    let started_with = (
        STDERR_IDENTITY.0.load(Ordering::Relaxed),
        STDERR_IDENTITY.1.load(Ordering::Relaxed),
    );
    if descriptor_identity(libc::STDERR_FILENO) != Some(started_with) {
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

/// Writes `value` in decimal into `out`, returning the digits written.
pub fn decimal(value: u64, out: &mut [u8; 20]) -> &[u8] {
    let cell = fadvise_shim_core::text::Cell::number(value);
    let digits = cell.as_bytes();
    out[..digits.len()].copy_from_slice(digits);
    &out[..digits.len()]
}
