//! Thread cancellation around the shim's own slow paths. Those paths call
//! `open`/`read`/`write`, which are cancellation points; a cancellation there
//! would unwind through frames that must not be unwound. The program's own
//! calls stay cancellation points.

use libc::c_int;

// Not in the `libc` crate for this target; glibc has them.
const PTHREAD_CANCEL_DISABLE: c_int = 1;
extern "C" {
    fn pthread_setcancelstate(state: c_int, old: *mut c_int) -> c_int;
}
extern "C-unwind" {
    /// Acts on a pending cancellation, which unwinds the thread.
    pub fn pthread_testcancel();
}

/// Disables thread cancellation while it lives.
pub struct NoCancel(c_int);

impl NoCancel {
    pub fn new() -> Self {
        let mut old = 0;
        // SAFETY: plain libc call with a valid out-pointer; it only sets a
        // flag of this thread (no lock, no allocation).
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
