//! The library's constructor and destructor. At load, every real function
//! is looked up (`dlsym` takes the loader's lock, so it is done now, never
//! inside a hook) and the shim initialises; at exit, it dumps if asked to.

use crate::dump::signals;
use crate::hooks::{descriptors, exports};

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

#[used]
#[link_section = ".fini_array"]
static DESTRUCTOR: extern "C" fn() = destructor;

extern "C" fn constructor() {
    // First: every `dlsym` below goes through our own `dlsym`.
    #[cfg(target_arch = "x86_64")]
    crate::hooks::lookups::resolve_next_definitions();
    exports::resolve_next_definitions();
    descriptors::resolve_next_definitions();
    signals::resolve_next_definitions();
    crate::sys::clock::resolve();
    crate::init::initialise();
}

/// Runs at `exit()` and on return from `main`, after the program's own
/// `atexit` handlers (which may still make calls).
extern "C" fn destructor() {
    crate::init::before_exit();
}
