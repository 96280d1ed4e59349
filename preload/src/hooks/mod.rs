//! The exported entry points and what each does: `exports` is the hook
//! table, declaring every intercepted function once (`hook_table` turns it
//! into trampolines, bodies and the list of real functions the constructor
//! resolves), with `syscall` and `exit` beside it; `intercept` asks the
//! policy, times or answers the call, and records it; `descriptors` keeps
//! the program from closing the stats file's lock; `lookups` hands our
//! hooks to programs that look libc's functions up on a handle. The top
//! layer, with the start-up code: nothing below imports it.

pub mod descriptors;
mod exit;
pub mod exports;
mod hook_table;
pub mod intercept;
#[cfg(target_arch = "x86_64")]
pub mod lookups;
mod syscall;
mod trampoline;
