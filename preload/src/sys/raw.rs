//! The shim's own file I/O, made with the `syscall` instruction rather than
//! through libc's symbols: other preloaded libraries interpose `open`,
//! `close`, `read` and `write` (nocache drops the pages of every file closed
//! through it — with a `posix_fadvise` our hooks would then count as the
//! program's; libeatmydata rewrites `open` flags). What the shim does for
//! itself must stay invisible to them, and leave `errno` alone: these
//! return the result, or `-1` with the error number kept aside.

use std::ffi::CStr;
use std::mem::MaybeUninit;

use libc::{c_int, c_long};

/// A system call with up to four arguments; a negative result is `-errno`.
///
/// # Safety
///
/// The arguments must be valid for system call `number`: every pointer
/// among them points to memory the kernel may read or write as that call
/// does, for the lengths given.
#[cfg(target_arch = "x86_64")]
unsafe fn call4(number: c_long, a: c_long, b: c_long, c: c_long, d: c_long) -> c_long {
    let result: c_long;
    // SAFETY: the Linux x86_64 system call convention: number in rax,
    // arguments in rdi, rsi, rdx, r10; rcx and r11 are clobbered. The
    // caller passes valid pointers for the call it makes.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") number => result,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// Elsewhere, libc's `syscall` (no interposer is known to wrap it), with
/// `errno` put back.
///
/// # Safety
///
/// As the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn call4(number: c_long, a: c_long, b: c_long, c: c_long, d: c_long) -> c_long {
    let _errno = super::ErrnoGuard::save();
    // SAFETY: as the x86_64 version; libc passes the arguments on.
    let result = unsafe { libc::syscall(number, a, b, c, d) };
    if result < 0 {
        -c_long::from(super::errno())
    } else {
        result
    }
}

fn result(value: c_long) -> c_long {
    if value < 0 && value > -4096 {
        -1
    } else {
        value
    }
}

/// `close(2)`. Code above `sys` owns descriptors as `sys::fd::Fd`,
/// which calls this when dropped.
pub fn close(fd: c_int) {
    // SAFETY: no pointer; a bad descriptor only makes it fail.
    unsafe { call4(libc::SYS_close, c_long::from(fd), 0, 0, 0) };
}

/// `close_range(2)` (Linux 5.9), for a libc without the function (musl,
/// glibc before 2.34): `Err` holds the error number.
pub fn close_range(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> Result<(), c_int> {
    // SAFETY: no pointer; bad arguments only make it fail.
    let value = unsafe {
        call4(
            libc::SYS_close_range,
            c_long::from(first),
            c_long::from(last),
            c_long::from(flags),
            0,
        )
    };
    match value {
        value if value < 0 => Err((-value) as c_int),
        _ => Ok(()),
    }
}

/// `read(2)`: bytes read, 0 at the end, -1 on error (`-EINTR` is -2, so
/// that callers can retry).
pub fn read(fd: c_int, buffer: &mut [u8]) -> isize {
    // SAFETY: `read` writes at most `buffer.len()` bytes into `buffer`.
    unsafe { transfer(libc::SYS_read, fd, buffer.as_mut_ptr(), buffer.len()) }
}

/// `write(2)`: as `read`.
pub fn write(fd: c_int, bytes: &[u8]) -> isize {
    // SAFETY: `write` only reads the `bytes.len()` bytes of `bytes`.
    unsafe { transfer(libc::SYS_write, fd, bytes.as_ptr().cast_mut(), bytes.len()) }
}

/// # Safety
///
/// `buffer` holds `length` bytes that system call `number` (`read` or
/// `write`) may write or read.
unsafe fn transfer(number: c_long, fd: c_int, buffer: *mut u8, length: usize) -> isize {
    // SAFETY: the caller's promise about `buffer`.
    let value = unsafe {
        call4(
            number,
            c_long::from(fd),
            buffer as c_long,
            length as c_long,
            0,
        )
    };
    match value {
        value if value == -c_long::from(libc::EINTR) => -2,
        value => result(value) as isize,
    }
}

/// `openat(2)`: the new descriptor, or `Err` with the error number (for
/// the callers that must tell `EEXIST` or `ENOENT` from other failures).
/// The caller owns the descriptor; `sys::fd::Fd` wraps it.
pub fn openat(dir: c_int, path: &CStr, flags: c_int, mode: libc::mode_t) -> Result<c_int, c_int> {
    // SAFETY: the kernel only reads `path`, which is NUL-terminated.
    let value = unsafe {
        call4(
            libc::SYS_openat,
            c_long::from(dir),
            path.as_ptr() as c_long,
            c_long::from(flags),
            c_long::from(mode),
        )
    };
    if value < 0 {
        Err((-value) as c_int)
    } else {
        Ok(value as c_int)
    }
}

/// `statx(2)` of the file behind `fd` (`AT_EMPTY_PATH`; `path` is `None`,
/// passed as null, or `""`, null being cheaper but only accepted since
/// Linux 6.11) into `buffer`, which it fills when it succeeds: `Err` holds
/// the error number. Five arguments, so a call of its own.
pub fn statx_fd(
    fd: c_int,
    path: Option<&CStr>,
    mask: libc::c_uint,
    buffer: &mut MaybeUninit<libc::statx>,
) -> Result<(), c_int> {
    let path = path.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: `path` is null or NUL-terminated; `buffer` is a writable
    // `struct statx`.
    let value = unsafe { statx_call(fd, path, mask, buffer.as_mut_ptr()) };
    if value < 0 {
        Err((-value) as c_int)
    } else {
        Ok(())
    }
}

/// # Safety
///
/// `path` is null or NUL-terminated; `buffer` points to a writable
/// `struct statx`.
#[cfg(target_arch = "x86_64")]
unsafe fn statx_call(
    fd: c_int,
    path: *const libc::c_char,
    mask: libc::c_uint,
    buffer: *mut libc::statx,
) -> c_long {
    let result: c_long;
    // SAFETY: as in `call4`, with the fifth argument in r8; the caller
    // passes a writable `struct statx` and `path` null or a NUL-terminated
    // string.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_statx => result,
            in("rdi") c_long::from(fd),
            in("rsi") path,
            in("rdx") c_long::from(libc::AT_EMPTY_PATH),
            in("r10") c_long::from(mask),
            in("r8") buffer,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// # Safety
///
/// As the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
unsafe fn statx_call(
    fd: c_int,
    path: *const libc::c_char,
    mask: libc::c_uint,
    buffer: *mut libc::statx,
) -> c_long {
    let _errno = super::ErrnoGuard::save();
    // SAFETY: as the x86_64 version; libc passes the arguments on.
    let result =
        unsafe { libc::syscall(libc::SYS_statx, fd, path, libc::AT_EMPTY_PATH, mask, buffer) };
    if result < 0 {
        -c_long::from(super::errno())
    } else {
        result
    }
}
