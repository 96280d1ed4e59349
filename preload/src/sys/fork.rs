//! Registering the fork handler, found at run time. glibc's
//! `pthread_atfork` is a stub in `libc_nonshared.a` that calls
//! `__register_atfork` with the library's `__dso_handle` (so that unloading
//! the library drops the handler); linking that stub would name
//! `__register_atfork`, which musl lacks, and musl then refuses the whole
//! library. So glibc's function is looked up and called as the stub would,
//! and where it is missing, musl's `pthread_atfork`.

use std::ffi::c_void;

use super::real::Real;

static REGISTER_ATFORK: Real = Real::new(c"__register_atfork");
static PTHREAD_ATFORK: Real = Real::new(c"pthread_atfork");

/// Sets an atomic in a child of `fork` only if it holds another value. The
/// child shares every page of its parent's copy-on-write, and a store — even
/// of the value already there, and even a failed compare-and-swap, which
/// x86 performs as a write — copies its page in a fault of ≈ 1–2 µs; the
/// fork handlers touch statics on a dozen pages, most of them unchanged.
macro_rules! store_if_changed {
    ($atomic:expr, $value:expr) => {{
        let value = $value;
        if $atomic.load(::std::sync::atomic::Ordering::Relaxed) != value {
            $atomic.store(value, ::std::sync::atomic::Ordering::Relaxed);
        }
    }};
}
pub(crate) use store_if_changed;

type Handler = Option<unsafe extern "C" fn()>;
type RegisterAtforkFn = unsafe extern "C" fn(Handler, Handler, Handler, *mut c_void) -> i32;
type PthreadAtforkFn = unsafe extern "C" fn(Handler, Handler, Handler) -> i32;

extern "C" {
    /// This object's handle, defined (hidden) by the C runtime's
    /// `crtbeginS.o`.
    static __dso_handle: u8;
}

/// Runs `child` in the child of every `fork`; false if it could not be
/// registered.
pub fn in_child_after_fork(child: unsafe extern "C" fn()) -> bool {
    if let Some(register) = REGISTER_ATFORK.address() {
        // SAFETY: glibc's `__register_atfork`, whose type this is, given our
        // own object's handle as its stub would.
        let register: RegisterAtforkFn = unsafe { std::mem::transmute(register) };
        let handle = (&raw const __dso_handle).cast_mut().cast::<c_void>();
        // SAFETY: a plain function and our object's handle.
        return unsafe { register(None, None, Some(child), handle) } == 0;
    }
    let Some(pthread_atfork) = PTHREAD_ATFORK.address() else {
        return false;
    };
    // SAFETY: musl's `pthread_atfork`, whose type this is.
    let pthread_atfork: PthreadAtforkFn = unsafe { std::mem::transmute(pthread_atfork) };
    // SAFETY: registering a plain function.
    unsafe { pthread_atfork(None, None, Some(child)) == 0 }
}
