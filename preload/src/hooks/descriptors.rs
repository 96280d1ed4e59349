//! The program's own descriptor calls, watched for one thing: the
//! descriptor that holds this process's stats-file lock. A daemon that
//! closes every descriptor it did not open (a close loop, `close_range`,
//! `closefrom`) or `dup2`s over them must not make a live process look dead
//! to compactors, so ours is spared (its close reported done) or moved out
//! of the way first. Every other descriptor goes straight to libc; the cost
//! is one load and a compare. `close_range` and `closefrom` are glibc's
//! alone (2.34): under a libc without them (musl), a program that reaches
//! ours (through `dlsym`) gets the system call.

#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_uint};

use crate::stats::file::{guarded_fd, move_guarded_fd};
use crate::sys::real::real;

// Resolved at start-up with the hook table's (`exports.rs`, `also
// resolved`).
real!(REAL_CLOSE, c"close", fn(c_int) -> c_int);
real!(
    REAL_CLOSE_RANGE,
    c"close_range",
    fn(c_uint, c_uint, c_int) -> c_int
);
real!(REAL_CLOSEFROM, c"closefrom", fn(c_int));
real!(REAL_DUP2, c"dup2", fn(c_int, c_int) -> c_int);
real!(REAL_DUP3, c"dup3", fn(c_int, c_int, c_int) -> c_int);

/// Whether `fd` is the guarded descriptor.
#[inline(always)]
pub fn is_guarded(fd: c_int) -> bool {
    fd >= 0 && fd == guarded_fd()
}

fn missing() -> c_int {
    crate::sys::set_errno(libc::ENOSYS);
    -1
}

#[no_mangle]
pub unsafe extern "C-unwind" fn close(fd: c_int) -> c_int {
    if is_guarded(fd) {
        // The program did not open it; to the program it is closed.
        return 0;
    }
    match REAL_CLOSE.get() {
        // SAFETY: the next `close`, with the caller's argument.
        Some(real) => unsafe { real(fd) },
        None => missing(),
    }
}

/// `close_range` with the guarded descriptor inside the range closes the
/// two ranges around it (`CLOSE_RANGE_CLOEXEC` only marks, and ours is
/// marked already).
/// `close_range(2)` itself, as glibc's function would make it.
unsafe extern "C-unwind" fn close_range_call(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    match crate::sys::raw::close_range(first, last, flags) {
        Ok(()) => 0,
        Err(error) => {
            crate::sys::set_errno(error);
            -1
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn close_range(first: c_uint, last: c_uint, flags: c_int) -> c_int {
    let real = REAL_CLOSE_RANGE.get().unwrap_or(close_range_call);
    let guarded = guarded_fd();
    let inside = guarded >= 0 && (first..=last).contains(&(guarded as c_uint));
    if !inside || flags & libc::CLOSE_RANGE_CLOEXEC as c_int != 0 {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real(first, last, flags) };
    }
    let guarded = guarded as c_uint;
    let mut result = 0;
    if guarded > first {
        // SAFETY: a sub-range of the caller's, with its flags.
        result = unsafe { real(first, guarded - 1, flags) };
    }
    if result == 0 && guarded < last {
        // SAFETY: as above.
        result = unsafe { real(guarded + 1, last, flags) };
    }
    result
}

#[no_mangle]
pub unsafe extern "C-unwind" fn closefrom(lowest: c_int) {
    let guarded = guarded_fd();
    if guarded >= 0 && guarded >= lowest.max(0) {
        // SAFETY: the caller's request, as two ranges around ours.
        unsafe { close_range(lowest.max(0) as c_uint, c_uint::MAX, 0) };
        return;
    }
    match REAL_CLOSEFROM.get() {
        // SAFETY: the caller's argument, passed on.
        Some(real) => unsafe { real(lowest) },
        // As glibc's: the system call; `closefrom` reports nothing.
        None => {
            let _errno = crate::sys::ErrnoGuard::save();
            let _ = crate::sys::raw::close_range(lowest.max(0) as c_uint, c_uint::MAX, 0);
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn dup2(old: c_int, new: c_int) -> c_int {
    if is_guarded(new) && old != new {
        move_guarded_fd();
    }
    match REAL_DUP2.get() {
        // SAFETY: the caller's arguments, passed on.
        Some(real) => unsafe { real(old, new) },
        None => missing(),
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if is_guarded(new) && old != new {
        move_guarded_fd();
    }
    match REAL_DUP3.get() {
        // SAFETY: the caller's arguments, passed on.
        Some(real) => unsafe { real(old, new, flags) },
        None => missing(),
    }
}
