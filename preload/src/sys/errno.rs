//! `errno`, read and written for this thread, and a guard that gives it back:
//! the shim's own work must never change what the program sees in `errno`.

use libc::c_int;

pub fn errno() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

pub fn set_errno(value: c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

/// Restores `errno` when dropped.
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
