//! `libfadvise_shim.so`: loaded with `LD_PRELOAD` (or `/etc/ld.so.preload`)
//! into unmodified programs, it intercepts `posix_fadvise` and the related
//! sync and readahead calls, times each passed call into a histogram, applies
//! the policy (pass, drop, rate-limit), and dumps its statistics on a signal
//! and at exit.
//!
//! It lives inside other people's processes, so: it never panics across the
//! C boundary, never aborts, keeps every call's return value and `errno`,
//! takes no lock and allocates nothing on the hot path, and does only
//! async-signal-safe work in its signal handler. One file per concern; the
//! whole exported ABI is the `pub use` list at the end.

mod active;
mod budget;
mod clock;
mod compile;
mod counters;
mod dump;
mod fdpath;
mod hooks;
mod init;
mod intercept;
mod limiter;
mod real;
mod safedir;
mod signals;
mod sys;

pub use hooks::{
    _Exit, _exit, fdatasync, fsync, msync, posix_fadvise, posix_fadvise64, readahead, sync,
    sync_file_range, syncfs, syscall,
};
pub use signals::{bsd_signal, sigaction, signal, sysv_signal};
