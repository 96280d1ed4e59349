//! Clock reads off the hot path (the hot path's clock is `sys::clock`):
//! `time(NULL)` and `clock_gettime` of a named clock, through libc as ever
//! (both are usually served by the vDSO, without a system call).

/// `time(NULL)`: the wall clock in whole seconds.
pub fn now_seconds() -> libc::time_t {
    // SAFETY: `time` with a null pointer only returns the time.
    unsafe { libc::time(std::ptr::null_mut()) }
}

/// `clock_gettime(clock)`, or `None` if that clock cannot be read.
pub fn read(clock: libc::clockid_t) -> Option<libc::timespec> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    (unsafe { libc::clock_gettime(clock, &mut now) } == 0).then_some(now)
}
