//! The exported entry points and what each does: `exports` gives every
//! intercepted function its C signature and return convention; `intercept`
//! asks the policy, times or answers the call, and records it;
//! `descriptors` keeps the program from closing the stats file's lock;
//! `lookups` hands our hooks to programs that look libc's functions up on a
//! handle. The top layer, with the start-up code: nothing below imports it.

pub mod descriptors;
pub mod exports;
pub mod intercept;
#[cfg(target_arch = "x86_64")]
pub mod lookups;
mod trampoline;
