//! Who this process is, and small waits: `getpid`, `getppid`, `geteuid`,
//! `uname`, `getrandom`, `sched_yield`, `nanosleep` and `exit_group`, through libc as
//! ever. None of them allocates or takes a lock; all are async-signal-safe.

/// `getpid(2)`.
pub fn pid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// `getppid(2)`.
pub fn parent_pid() -> libc::pid_t {
    // SAFETY: getppid has no preconditions.
    unsafe { libc::getppid() }
}

/// `geteuid(2)`.
pub fn euid() -> libc::uid_t {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// `uname(2)`, or `None` if it fails.
pub fn uname() -> Option<libc::utsname> {
    // SAFETY: `utsname` is plain data; all-zero is valid; uname fills it.
    let mut names: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-pointer.
    (unsafe { libc::uname(&mut names) } == 0).then_some(names)
}

/// `getrandom(2)` into `buffer` with `flags`: the bytes filled, or -1.
pub fn random_bytes(buffer: &mut [u8], flags: libc::c_uint) -> isize {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into it.
    unsafe { libc::getrandom(buffer.as_mut_ptr().cast(), buffer.len(), flags) }
}

/// `sched_yield(2)`.
pub fn yield_now() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

/// `nanosleep(2)` for `nanoseconds` (under a second); an interrupted
/// sleep returns early.
pub fn sleep_ns(nanoseconds: i64) {
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: nanoseconds as _,
    };
    // SAFETY: a valid timespec; the remainder is not asked for.
    unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
}

/// `exit_group(2)`, straight to the kernel: what `_exit` ends in when the
/// real one is missing. It does not return.
pub fn exit_group(status: libc::c_int) -> ! {
    // SAFETY: exit_group ends every thread of the process; it has no
    // preconditions and does not return.
    unsafe { libc::syscall(libc::SYS_exit_group, status) };
    // Not reached; loop rather than claim otherwise to the compiler.
    loop {
        std::hint::spin_loop();
    }
}
