//! The shim's own file I/O, made with the `syscall` instruction rather than
//! through libc's symbols: other preloaded libraries interpose `open`,
//! `close`, `read` and `write` (nocache drops the pages of every file closed
//! through it — with a `posix_fadvise` our hooks would then count as the
//! program's; libeatmydata rewrites `open` flags). What the shim does for
//! itself must stay invisible to them, and leave `errno` alone: these
//! return the result, or `-1` with the error number kept aside.

use libc::{c_int, c_long};

/// A system call with up to four arguments; a negative result is `-errno`.
#[cfg(target_arch = "x86_64")]
fn call4(number: c_long, a: c_long, b: c_long, c: c_long, d: c_long) -> c_long {
    let result: c_long;
    // SAFETY: the Linux x86_64 system call convention: number in rax,
    // arguments in rdi, rsi, rdx, r10; rcx and r11 are clobbered. Callers
    // pass valid pointers for the call they make.
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
#[cfg(not(target_arch = "x86_64"))]
fn call4(number: c_long, a: c_long, b: c_long, c: c_long, d: c_long) -> c_long {
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

/// `openat(2)`.
pub fn openat(dir: c_int, path: *const libc::c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    result(call4(
        libc::SYS_openat,
        c_long::from(dir),
        path as c_long,
        c_long::from(flags),
        c_long::from(mode),
    )) as c_int
}

/// `open(2)`, as `openat` from the working directory.
pub fn open(path: *const libc::c_char, flags: c_int) -> c_int {
    openat(libc::AT_FDCWD, path, flags, 0)
}

/// `close(2)`.
pub fn close(fd: c_int) {
    call4(libc::SYS_close, c_long::from(fd), 0, 0, 0);
}

/// `close_range(2)` (Linux 5.9), for a libc without the function (musl,
/// glibc before 2.34): `Err` holds the error number.
pub fn close_range(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> Result<(), c_int> {
    match call4(
        libc::SYS_close_range,
        c_long::from(first),
        c_long::from(last),
        c_long::from(flags),
        0,
    ) {
        value if value < 0 => Err((-value) as c_int),
        _ => Ok(()),
    }
}

/// `read(2)`: bytes read, 0 at the end, -1 on error (`-EINTR` is -2, so
/// that callers can retry).
pub fn read(fd: c_int, buffer: &mut [u8]) -> isize {
    transfer(libc::SYS_read, fd, buffer.as_mut_ptr(), buffer.len())
}

/// `write(2)`: as `read`.
pub fn write(fd: c_int, bytes: &[u8]) -> isize {
    transfer(libc::SYS_write, fd, bytes.as_ptr().cast_mut(), bytes.len())
}

fn transfer(number: c_long, fd: c_int, buffer: *mut u8, length: usize) -> isize {
    match call4(
        number,
        c_long::from(fd),
        buffer as c_long,
        length as c_long,
        0,
    ) {
        value if value == -c_long::from(libc::EINTR) => -2,
        value => result(value) as isize,
    }
}

/// Whether the last `openat` failed with `error`: for the few callers that
/// must tell `EEXIST` or `ENOENT` from other failures.
pub fn openat_error(
    dir: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mode: libc::mode_t,
) -> Result<c_int, c_int> {
    let value = call4(
        libc::SYS_openat,
        c_long::from(dir),
        path as c_long,
        c_long::from(flags),
        c_long::from(mode),
    );
    if value < 0 {
        Err((-value) as c_int)
    } else {
        Ok(value as c_int)
    }
}

/// `statx(2)` of the file behind `fd` (`AT_EMPTY_PATH`; `path` is null or
/// `""`, null being cheaper but only accepted since Linux 6.11) into
/// `buffer`, which must be writable: `Err` holds the error number. Five
/// arguments, so a call of its own.
pub fn statx_fd(
    fd: c_int,
    path: *const libc::c_char,
    mask: libc::c_uint,
    buffer: *mut libc::statx,
) -> Result<(), c_int> {
    let value = statx_call(fd, path, mask, buffer);
    if value < 0 {
        Err((-value) as c_int)
    } else {
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
fn statx_call(
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

#[cfg(not(target_arch = "x86_64"))]
fn statx_call(
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
