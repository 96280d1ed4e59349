//! The library's constructor and destructor. At load, every real function
//! is looked up (`dlsym` takes the loader's lock, so it is done now, never
//! inside a hook) and the shim initialises; at exit, it dumps if asked to.
//!
//! The functions looked up are one list, `RESOLVED_AT_START_UP`, made by
//! the hook table (`hooks::exports`) from its entries and the next
//! definitions the other hooks call; only what is not a plain lookup stays
//! apart: the real `dlsym` itself, found in the symbol tables, and the
//! `sys` lookups that decide something (`_dl_find_object`, which libc).
//!
//! What runs only here and at exit is placed in `.text.startup`, as GCC
//! places constructors: the linker gathers those sections into one stretch
//! of text, so a start-up faults in one or two pages of code instead of one
//! per function (`constructor`, `init::initialise`, `Real::resolve`, the
//! ELF walk, `loader::resolve`, `clock::resolve`). With the `.bss` section
//! `init::STATE` shares with the dump owner's pid, that is 3 page faults
//! fewer per glibc spawn and 5 per musl spawn (BENCHMARKS.md).

use crate::hooks::exports::RESOLVED_AT_START_UP;

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

#[used]
#[link_section = ".fini_array"]
static DESTRUCTOR: extern "C" fn() = destructor;

#[link_section = ".text.startup"]
extern "C" fn constructor() {
    // First: every lookup below is made with the real `dlsym` (through the
    // symbol it would be our own hook).
    #[cfg(target_arch = "x86_64")]
    crate::hooks::lookups::find_real_lookups();
    for real in RESOLVED_AT_START_UP {
        real.resolve();
    }
    crate::sys::loader::resolve();
    crate::sys::clock::resolve();
    crate::init::initialise();
}

/// Runs at `exit()` and on return from `main`, after the program's own
/// `atexit` handlers (which may still make calls).
#[link_section = ".text.startup"]
extern "C" fn destructor() {
    crate::init::before_exit();
}
