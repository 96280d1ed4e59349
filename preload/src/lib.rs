//! `libfadvise_shim.so`: loaded with `LD_PRELOAD` (or `/etc/ld.so.preload`)
//! into unmodified programs, it intercepts `posix_fadvise` and the related
//! sync and readahead calls, times each passed call into a histogram, applies
//! the policy (pass, drop, rate-limit), and dumps its statistics on a signal
//! and at exit.
//!
//! It lives inside other people's processes, so: it never panics across the
//! C boundary, never aborts, keeps every call's return value and `errno`,
//! never calls the program's allocator (it has its own heap, `heap.rs`),
//! takes no lock anywhere a signal handler could re-enter it, and makes no
//! system call on the hot path beyond the real one and the clock.
//!
//! Folders by concern, with imports that only go down: `sys` (system
//! wrappers) and `heap` at the bottom; `stats` (counters) and `policy` (the
//! policy in force) above them; `dump` (dump files and the dump signal);
//! `init` (first call, fork, exit); `hooks` (the exported functions) and
//! `startup` (constructor) at the top. The whole exported ABI is the
//! `pub use` list at the end.

mod dump;
mod heap;
mod hooks;
mod init;
mod policy;
mod startup;
mod stats;
mod sys;

pub use dump::signals::{bsd_signal, sigaction, signal, sysv_signal};
pub use hooks::descriptors::{close, close_range, closefrom, dup2, dup3};
pub use hooks::exports::{
    _Exit, _exit, fdatasync, fsync, msync, posix_fadvise, posix_fadvise64, readahead, sync,
    sync_file_range, syncfs, syscall,
};
#[cfg(target_arch = "x86_64")]
pub use hooks::lookups::{dlclose, dlsym, dlvsym};
