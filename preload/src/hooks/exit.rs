//! `_exit` and `_Exit`: they skip `atexit` handlers and destructors, so the
//! dump at exit is written here, then the real function ends the process
//! (or, if it is missing, `exit_group`).

#![allow(clippy::missing_safety_doc)]

use libc::c_int;

use crate::sys::real::{real, Typed};

// Resolved at start-up with the hook table's (`exports.rs`, `also
// resolved`).
real!(REAL_EXIT, c"_exit", fn(c_int));
real!(REAL_EXIT_UPPER, c"_Exit", fn(c_int));

/// `_exit`: the dump, then the real one.
#[no_mangle]
pub unsafe extern "C-unwind" fn _exit(status: c_int) -> ! {
    dump_and_exit(&REAL_EXIT, status)
}

/// `_Exit`: the same as `_exit`.
#[no_mangle]
pub unsafe extern "C-unwind" fn _Exit(status: c_int) -> ! {
    dump_and_exit(&REAL_EXIT_UPPER, status)
}

fn dump_and_exit(real: &Typed<unsafe extern "C-unwind" fn(c_int)>, status: c_int) -> ! {
    crate::init::before_exit();
    if let Some(real) = real.get() {
        // SAFETY: the next `_exit` or `_Exit`, which ends the process.
        unsafe { real(status) };
    }
    crate::sys::process::exit_group(status)
}
