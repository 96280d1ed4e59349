//! The exported entry points: every intercepted function (README), plus
//! `_exit`/`_Exit` for the dump at exit. Each has the same shape: call
//! `intercept` with the call's name, its argument checks and its real
//! function, then turn the outcome into the call's own return convention:
//! `posix_fadvise` returns an error number and never touches `errno`; the
//! others return -1 and set `errno`; `sync` returns nothing.
//!
//! Every intercepted function is a trampoline (`trampoline.rs`) that hands
//! its body the caller's return address, for call sites; `syscall()`, whose
//! seven arguments leave no register free, has one of its own that calls.
//!
//! They are `extern "C-unwind"` because the real `fsync`, `fdatasync` and
//! `msync` are cancellation points: `pthread_cancel` unwinds through us.
//! Nothing here can panic. If a real function is missing, the hook fails
//! with `ENOSYS` the way the call reports errors.

#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_long, c_void, off64_t, off_t, size_t, ssize_t};

use fadvise_shim_core::args;
use fadvise_shim_core::call::Call;

use super::intercept::{intercept, File, Outcome, Request};
use super::trampoline::with_caller;
use crate::sys::real::{real, Real};
use crate::sys::set_errno;

real!(
    REAL_POSIX_FADVISE,
    c"posix_fadvise",
    fn(c_int, off_t, off_t, c_int) -> c_int
);
real!(
    REAL_POSIX_FADVISE64,
    c"posix_fadvise64",
    fn(c_int, off64_t, off64_t, c_int) -> c_int
);
real!(
    REAL_READAHEAD,
    c"readahead",
    fn(c_int, off64_t, size_t) -> ssize_t
);
real!(
    REAL_SYNC_FILE_RANGE,
    c"sync_file_range",
    fn(c_int, off64_t, off64_t, u32) -> c_int
);
real!(REAL_FSYNC, c"fsync", fn(c_int) -> c_int);
real!(REAL_FDATASYNC, c"fdatasync", fn(c_int) -> c_int);
real!(REAL_SYNCFS, c"syncfs", fn(c_int) -> c_int);
real!(REAL_SYNC, c"sync", fn());
real!(
    REAL_MSYNC,
    c"msync",
    fn(*mut c_void, size_t, c_int) -> c_int
);
real!(REAL_EXIT, c"_exit", fn(c_int));
real!(REAL_EXIT_UPPER, c"_Exit", fn(c_int));

/// The real `syscall()`. It is C-variadic: declared so, Rust passes the
/// arguments as a C caller would.
static REAL_SYSCALL: Real = Real::new(c"syscall");
type SyscallFn = unsafe extern "C" fn(c_long, ...) -> c_long;

/// Looks up every real function; called at start-up.
pub fn resolve_next_definitions() {
    for typed in [&REAL_FSYNC, &REAL_FDATASYNC, &REAL_SYNCFS] {
        typed.resolve();
    }
    REAL_POSIX_FADVISE.resolve();
    REAL_POSIX_FADVISE64.resolve();
    REAL_READAHEAD.resolve();
    REAL_SYNC_FILE_RANGE.resolve();
    REAL_SYNC.resolve();
    REAL_MSYNC.resolve();
    REAL_EXIT.resolve();
    REAL_EXIT_UPPER.resolve();
    REAL_SYSCALL.resolve();
}

/// For calls that report errors as -1 and `errno`.
fn with_errno(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Passed(result) => result,
        Outcome::Answered => 0,
        Outcome::ArgumentError(error) => {
            set_errno(error);
            -1
        }
    }
}

/// For `posix_fadvise`, which returns the error number itself.
fn as_error_number(outcome: Outcome) -> c_int {
    match outcome {
        Outcome::Passed(result) => result as c_int,
        Outcome::Answered => 0,
        Outcome::ArgumentError(error) => error,
    }
}

fn missing() -> i64 {
    set_errno(libc::ENOSYS);
    -1
}

#[inline(always)]
fn fadvise(
    real: Option<unsafe extern "C-unwind" fn(c_int, off64_t, off64_t, c_int) -> c_int>,
    fd: c_int,
    offset: off64_t,
    len: off64_t,
    advice: c_int,
    caller: usize,
) -> c_int {
    let Some(real) = real else {
        return libc::ENOSYS;
    };
    as_error_number(intercept(
        Request {
            call: Call::PosixFadvise,
            caller,
            raw_advice: advice,
            file: File::Fd(fd),
            cancellation_point: false,
        },
        || args::fadvise_error(fd, len, advice),
        // SAFETY: the next definition of the function we were called as,
        // with the caller's arguments.
        || unsafe { real(fd, offset, len, advice) }.into(),
        |result| result != 0,
    ))
}

with_caller!(posix_fadvise(fd: c_int, offset: off_t, len: off_t, advice: c_int) -> c_int, "r8", posix_fadvise_body);

extern "C-unwind" fn posix_fadvise_body(
    fd: c_int,
    offset: off_t,
    len: off_t,
    advice: c_int,
    caller: usize,
) -> c_int {
    fadvise(REAL_POSIX_FADVISE.get(), fd, offset, len, advice, caller)
}

with_caller!(posix_fadvise64(fd: c_int, offset: off64_t, len: off64_t, advice: c_int) -> c_int, "r8", posix_fadvise64_body);

extern "C-unwind" fn posix_fadvise64_body(
    fd: c_int,
    offset: off64_t,
    len: off64_t,
    advice: c_int,
    caller: usize,
) -> c_int {
    // musl from 1.2.4 has no `*64` names (on 64-bit targets they were
    // aliases): the plain function is the same one.
    let real = REAL_POSIX_FADVISE64
        .get()
        .or_else(|| REAL_POSIX_FADVISE.get());
    fadvise(real, fd, offset, len, advice, caller)
}

with_caller!(readahead(fd: c_int, offset: off64_t, count: size_t) -> ssize_t, "rcx", readahead_body);

extern "C-unwind" fn readahead_body(
    fd: c_int,
    offset: off64_t,
    count: size_t,
    caller: usize,
) -> ssize_t {
    let Some(real) = REAL_READAHEAD.get() else {
        return missing() as ssize_t;
    };
    with_errno(intercept(
        Request {
            call: Call::Readahead,
            caller,
            raw_advice: 0,
            file: File::Fd(fd),
            cancellation_point: false,
        },
        || args::fd_error(fd),
        // SAFETY: the next `readahead`, with the caller's arguments.
        || unsafe { real(fd, offset, count) } as i64,
        |result| result < 0,
    )) as ssize_t
}

with_caller!(sync_file_range(fd: c_int, offset: off64_t, nbytes: off64_t, flags: u32) -> c_int, "r8", sync_file_range_body);

extern "C-unwind" fn sync_file_range_body(
    fd: c_int,
    offset: off64_t,
    nbytes: off64_t,
    flags: u32,
    caller: usize,
) -> c_int {
    let Some(real) = REAL_SYNC_FILE_RANGE.get() else {
        return missing() as c_int;
    };
    with_errno(intercept(
        Request {
            call: Call::SyncFileRange,
            caller,
            raw_advice: 0,
            file: File::Fd(fd),
            cancellation_point: false,
        },
        || args::sync_file_range_error(fd, offset, nbytes, flags),
        // SAFETY: the next `sync_file_range`, with the caller's arguments.
        || unsafe { real(fd, offset, nbytes, flags) }.into(),
        |result| result < 0,
    )) as c_int
}

/// `fsync`, `fdatasync` and `syncfs`: one descriptor, -1 and `errno`.
#[inline(always)]
fn fd_call(
    call: Call,
    real: Option<unsafe extern "C-unwind" fn(c_int) -> c_int>,
    fd: c_int,
    cancellation_point: bool,
    caller: usize,
) -> c_int {
    let Some(real) = real else {
        return missing() as c_int;
    };
    with_errno(intercept(
        Request {
            call,
            caller,
            raw_advice: 0,
            file: File::Fd(fd),
            cancellation_point,
        },
        || args::fd_error(fd),
        // SAFETY: the next definition of the function we were called as.
        || unsafe { real(fd) }.into(),
        |result| result < 0,
    )) as c_int
}

with_caller!(fsync(fd: c_int) -> c_int, "rsi", fsync_body);

extern "C-unwind" fn fsync_body(fd: c_int, caller: usize) -> c_int {
    fd_call(Call::Fsync, REAL_FSYNC.get(), fd, true, caller)
}

with_caller!(fdatasync(fd: c_int) -> c_int, "rsi", fdatasync_body);

extern "C-unwind" fn fdatasync_body(fd: c_int, caller: usize) -> c_int {
    fd_call(Call::Fdatasync, REAL_FDATASYNC.get(), fd, true, caller)
}

with_caller!(syncfs(fd: c_int) -> c_int, "rsi", syncfs_body);

extern "C-unwind" fn syncfs_body(fd: c_int, caller: usize) -> c_int {
    fd_call(Call::Syncfs, REAL_SYNCFS.get(), fd, false, caller)
}

with_caller!(sync() -> (), "rdi", sync_body);

extern "C-unwind" fn sync_body(caller: usize) {
    let Some(real) = REAL_SYNC.get() else {
        return;
    };
    intercept(
        Request {
            call: Call::Sync,
            caller,
            raw_advice: 0,
            file: File::None,
            cancellation_point: false,
        },
        || None,
        || {
            // SAFETY: the next `sync`.
            unsafe { real() };
            0
        },
        |_| false,
    );
}

with_caller!(msync(address: *mut c_void, length: size_t, flags: c_int) -> c_int, "rcx", msync_body);

extern "C-unwind" fn msync_body(
    address: *mut c_void,
    length: size_t,
    flags: c_int,
    caller: usize,
) -> c_int {
    let Some(real) = REAL_MSYNC.get() else {
        return missing() as c_int;
    };
    with_errno(intercept(
        Request {
            call: Call::Msync,
            caller,
            raw_advice: 0,
            file: File::Mapping(address as usize),
            cancellation_point: true,
        },
        || args::msync_error(address as usize, length, flags, page_size()),
        // SAFETY: the next `msync`, with the caller's arguments.
        || unsafe { real(address, length, flags) }.into(),
        |result| result < 0,
    )) as c_int
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always known.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

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
            args::msync_error(a1 as usize, a2 as usize, a3 as c_int, page_size()),
        ),
        Call::Sync => (0, File::None, None),
        Call::Readahead | Call::Fsync | Call::Fdatasync | Call::Syncfs => {
            (0, File::Fd(fd), args::fd_error(fd))
        }
    };
    with_errno(intercept(
        Request {
            call,
            caller,
            raw_advice: advice,
            file,
            cancellation_point: false,
        },
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

/// `_exit` skips `atexit` handlers and destructors, so the dump at exit is
/// written here.
#[no_mangle]
pub unsafe extern "C-unwind" fn _exit(status: c_int) -> ! {
    crate::init::before_exit();
    if let Some(real) = REAL_EXIT.get() {
        // SAFETY: the next `_exit`.
        unsafe { real(status) };
    }
    // SAFETY: exit_group ends the process; it has no preconditions.
    unsafe { libc::syscall(libc::SYS_exit_group, status) };
    unreachable_end()
}

#[no_mangle]
pub unsafe extern "C-unwind" fn _Exit(status: c_int) -> ! {
    crate::init::before_exit();
    if let Some(real) = REAL_EXIT_UPPER.get() {
        // SAFETY: the next `_Exit`.
        unsafe { real(status) };
    }
    // SAFETY: as in `_exit`.
    unsafe { libc::syscall(libc::SYS_exit_group, status) };
    unreachable_end()
}

/// After `exit_group` nothing runs; loop rather than claim otherwise.
fn unreachable_end() -> ! {
    loop {
        std::hint::spin_loop();
    }
}
