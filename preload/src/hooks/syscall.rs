//! `syscall()`: the numbers of intercepted calls go through `intercept`
//! with the arguments read as the kernel reads them; `close`, `close_range`
//! and `dup2`/`dup3` by number are guarded as `descriptors` guards the libc
//! calls; every other number goes straight on. It is apart from the hook
//! table (`exports.rs`) because its seven arguments leave no register free
//! for the caller's address, so its trampoline is a call, not a jump.

#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_long, c_void};

use fadvise_shim_core::args;
use fadvise_shim_core::call::Call;

use super::hook_table::{missing, with_errno};
use super::intercept::{intercept, File, Request};
use crate::sys::real::Real;

/// The real `syscall()`. It is C-variadic: declared so, Rust passes the
/// arguments as a C caller would. Resolved at start-up with the table's
/// (`exports.rs`, `also resolved`).
pub(super) static REAL_SYSCALL: Real = Real::new(c"syscall");
type SyscallFn = unsafe extern "C" fn(c_long, ...) -> c_long;

/// `syscall()`: intercepted numbers go through `intercept` with the
/// arguments read as the kernel reads them; every other number goes
/// straight on. Stable Rust cannot define a C-variadic function, but on
/// x86_64 and aarch64 the first six variadic integer arguments arrive in the
/// same registers as fixed ones, so six fixed `long`s read them correctly.
///
/// The number and six arguments fill every argument register and one stack
/// slot, so the return address cannot ride in a register: the trampoline
/// copies the seventh argument and the return address below its own
/// return address (the body's two stack arguments) and calls the body.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    std::arch::naked_asm!(
        ".cfi_startproc",
        // On entry rsp is 8 past a 16-byte boundary; 24 bytes more leave it
        // aligned for the call: padding, then the return address (the
        // body's 8th argument), then a copy of `a6` (its 7th).
        "mov rax, qword ptr [rsp]",
        "sub rsp, 8",
        ".cfi_adjust_cfa_offset 8",
        "push rax",
        ".cfi_adjust_cfa_offset 8",
        "push qword ptr [rsp + 24]",
        ".cfi_adjust_cfa_offset 8",
        "call {body}",
        "add rsp, 24",
        ".cfi_adjust_cfa_offset -24",
        "ret",
        ".cfi_endproc",
        body = sym syscall_body,
    )
}

#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
pub unsafe extern "C" fn syscall(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    syscall_body(number, a1, a2, a3, a4, a5, a6, 0)
}

#[allow(clippy::too_many_arguments)]
extern "C" fn syscall_body(
    number: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
    caller: usize,
) -> c_long {
    let Some(address) = REAL_SYSCALL.address() else {
        return missing() as c_long;
    };
    // SAFETY: `address` is the next definition of `syscall`.
    let real: SyscallFn = unsafe { std::mem::transmute::<*mut c_void, SyscallFn>(address) };
    let Some(call) = Call::from_syscall_number(number) else {
        if let Some(answer) = guard_descriptor_syscall(number, a1, a2, a3) {
            return answer;
        }
        // SAFETY: the caller's own system call, passed on unchanged.
        return unsafe { real(number, a1, a2, a3, a4, a5, a6) };
    };
    let real_call = || {
        // SAFETY: the caller's system call, passed on unchanged.
        unsafe { real(number, a1, a2, a3, a4, a5, a6) }
    };
    let fd = a1 as c_int;
    let (advice, file, argument_error) = match call {
        Call::PosixFadvise => (
            a4 as c_int,
            File::Fd(fd),
            args::fadvise_error(fd, a3, a4 as c_int),
        ),
        Call::SyncFileRange => (
            0,
            File::Fd(fd),
            args::sync_file_range_error(fd, a2, a3, a4 as u32),
        ),
        Call::Msync => (
            0,
            File::Mapping(a1 as usize),
            args::msync_error(
                a1 as usize,
                a2 as usize,
                a3 as c_int,
                crate::sys::mapping::page_size(),
            ),
        ),
        Call::Sync => (0, File::None, None),
        Call::Readahead | Call::Fsync | Call::Fdatasync | Call::Syncfs => {
            (0, File::Fd(fd), args::fd_error(fd))
        }
    };
    // `syscall()` is no cancellation point, whatever the number.
    let request = Request {
        call,
        caller,
        raw_advice: advice,
        file,
        cancellation_point: false,
    };
    with_errno(intercept(
        request,
        || argument_error,
        real_call,
        |result| result < 0,
    ))
}

/// `syscall(SYS_close, …)` and friends, as `descriptors` treats the libc
/// calls; `None` for every other number (and for descriptors not ours).
fn guard_descriptor_syscall(number: c_long, a1: c_long, a2: c_long, a3: c_long) -> Option<c_long> {
    use super::descriptors::{self, is_guarded};
    let fd = a1 as c_int;
    match number {
        libc::SYS_close if is_guarded(fd) => Some(0),
        libc::SYS_close_range => Some(
            // SAFETY: the caller's own request, made through the hook that
            // spares our descriptor.
            unsafe {
                descriptors::close_range(a1 as libc::c_uint, a2 as libc::c_uint, a3 as c_int)
            }
            .into(),
        ),
        libc::SYS_dup2 | libc::SYS_dup3 if is_guarded(a2 as c_int) && a1 != a2 => {
            crate::stats::file::move_guarded_fd();
            None
        }
        _ => None,
    }
}
