//! File and descriptor I/O for code that runs inside the host process:
//! plain system calls through libc (never `std::fs`, whose `metadata` looks
//! `statx` up with `dlsym` on first use), retried on `EINTR`, into stack
//! buffers or the library's own heap. Async-signal-safe.

use std::ffi::CStr;

use libc::c_int;

use fadvise_shim_core::text::Sink;

use super::errno::ErrnoGuard;
use super::fd::Fd;

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and short writes.
/// Returns false on any other failure.
pub fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        let written = super::raw::write(fd, bytes);
        if written == -2 {
            continue;
        }
        if written < 0 {
            return false;
        }
        bytes = &bytes[written as usize..];
    }
    true
}

/// One `read(2)` into `buffer`, retried on `EINTR`: bytes read, 0 at the
/// end, negative on any other error.
pub fn read_some(fd: c_int, buffer: &mut [u8]) -> isize {
    loop {
        let read = super::raw::read(fd, buffer);
        if read != -2 {
            return read;
        }
    }
}

/// Opening a file the shim reads (a policy, a sysfs value): never blocks,
/// so a FIFO or a device named there cannot hang every process at start-up;
/// the readers below then refuse anything but a regular file.
const READ_FLAGS: c_int = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK;

/// The `fstat` of a descriptor.
pub fn descriptor_status(fd: c_int) -> Option<libc::stat> {
    // SAFETY: `stat` is plain data, valid all zero; fstat fills it or fails.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer; a bad descriptor only makes it fail.
    (unsafe { libc::fstat(fd, &mut status) } == 0).then_some(status)
}

/// The `stat` of a path, following symlinks.
pub fn path_status(path: &CStr) -> Option<libc::stat> {
    // SAFETY: as in `descriptor_status`.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    (unsafe { libc::stat(path.as_ptr(), &mut status) } == 0).then_some(status)
}

fn is_regular_file(fd: c_int) -> bool {
    descriptor_status(fd).is_some_and(|status| status.st_mode & libc::S_IFMT == libc::S_IFREG)
}

/// An open descriptor of a regular file.
fn open_regular_file(path: &CStr) -> Option<Fd> {
    let file = Fd::open(path, READ_FLAGS)?;
    is_regular_file(file.as_raw()).then_some(file)
}

/// Reads the whole of a small regular file into `buffer`, allocating
/// nothing. `None` if it cannot be read, is not a regular file, or does not
/// fit (a file that fills the buffer exactly counts as not fitting).
pub fn read_small_file<'a>(path: &CStr, buffer: &'a mut [u8]) -> Option<&'a [u8]> {
    let _errno = ErrnoGuard::save();
    let file = open_regular_file(path)?;
    let mut length = 0;
    loop {
        let free = &mut buffer[length..];
        if free.is_empty() {
            return None;
        }
        match read_some(file.as_raw(), free) {
            0 => return Some(&buffer[..length]),
            read if read > 0 => length += read as usize,
            _ => return None,
        }
    }
}

/// Reads a whole regular file of at most `limit` bytes into the library's
/// heap, or says why not.
pub fn read_whole_file(path: &CStr, limit: usize) -> Result<Vec<u8>, &'static str> {
    let _errno = ErrnoGuard::save();
    let file = open_regular_file(path).ok_or("cannot open it as a regular file")?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match read_some(file.as_raw(), &mut chunk) {
            0 => return Ok(bytes),
            read if read > 0 => {
                let read = read as usize;
                if bytes.len() + read > limit {
                    return Err("it is too large");
                }
                bytes
                    .try_reserve(read)
                    .map_err(|_| "out of memory reading it")?;
                bytes.extend_from_slice(&chunk[..read]);
            }
            _ => return Err("cannot read it"),
        }
    }
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

/// Writes `value` in decimal into `out`, returning the digits written.
pub fn decimal(value: u64, out: &mut [u8; 20]) -> &[u8] {
    let cell = fadvise_shim_core::text::Cell::number(value);
    let digits = cell.as_bytes();
    out[..digits.len()].copy_from_slice(digits);
    &out[..digits.len()]
}

/// `readlink(2)` of `path` into `buffer` (not NUL-terminated): the bytes
/// filled, or -1.
pub fn read_link(path: &CStr, buffer: &mut [u8]) -> isize {
    // SAFETY: a NUL-terminated path; the kernel writes at most
    // `buffer.len()` bytes into `buffer`.
    unsafe { libc::readlink(path.as_ptr(), buffer.as_mut_ptr().cast(), buffer.len()) }
}

/// The `lstat` of a path: symlinks not followed.
pub fn link_status(path: &CStr) -> Option<libc::stat> {
    // SAFETY: as in `descriptor_status`.
    let mut status: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid out-pointer.
    (unsafe { libc::lstat(path.as_ptr(), &mut status) } == 0).then_some(status)
}

/// Whether something exists at `path` (`access(F_OK)`).
pub fn exists(path: &CStr) -> bool {
    // SAFETY: a NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::F_OK) == 0 }
}
