//! What every hook does, in one place: ask the policy, then either time the
//! real call and record it, or answer without the kernel (keeping the
//! argument errors the real call would report) and count it.
//!
//! This is the hot path. It allocates nothing, takes no lock, and makes no
//! system call besides the real one: a table load, clock reads, and relaxed
//! atomic adds. Everything rare (initialisation, path lookups, reloads) is
//! behind a `#[cold]` call. The frame holds nothing with a destructor while
//! the real call runs, so a thread cancelled inside `fsync` unwinds through
//! it cleanly.

use std::path::Path;

use fadvise_shim_core::call::Call;

use crate::policy::compile::{self, BY_PATH, DROP, KIND_MASK, LIMIT};
use crate::policy::{active, limits};
use crate::stats::counters;
use crate::sys::clock::Clock;

/// The file behind a call, for `path` rules.
#[derive(Clone, Copy)]
pub enum File {
    None,
    Fd(libc::c_int),
    Mapping(usize),
}

/// How an intercepted call ended.
pub enum Outcome {
    /// The real call ran and returned this.
    Passed(i64),
    /// Answered without the kernel: success.
    Answered,
    /// Answered without the kernel: this argument error (an errno value).
    ArgumentError(libc::c_int),
}

/// Intercepts one call. `argument_error` says what the arguments alone make
/// the real call return; `real` makes the real call; `failed` tells a failed
/// result from a successful one; `cancellation_point` keeps an answered call
/// a cancellation point, as the real one is.
#[inline(always)]
pub fn intercept(
    call: Call,
    raw_advice: libc::c_int,
    file: File,
    argument_error: impl FnOnce() -> Option<libc::c_int>,
    cancellation_point: bool,
    real: impl FnOnce() -> i64,
    failed: impl FnOnce(i64) -> bool,
) -> Outcome {
    crate::init::ensure();
    let index = compile::table_index(call, raw_advice);
    let mut entry = active::entry(index);
    if entry & KIND_MASK == BY_PATH {
        entry = entry_by_path(call, raw_advice, file);
    }
    let kind = entry & KIND_MASK;
    if kind != DROP {
        // One clock reading serves the limiter and the start of the timing.
        let clock = Clock::current();
        let start = clock.read();
        let admitted = kind != LIMIT || limits::admit((entry >> 8) as usize, clock.to_ns(start));
        if admitted {
            return pass(call, clock, start, real, failed);
        }
    }
    crate::init::tick_if_due_by_wall_clock();
    let record = |call| {
        if kind == LIMIT {
            counters::record_limited(call);
        } else {
            counters::record_dropped(call);
        }
    };
    if let Some(error) = argument_error() {
        record(call);
        return Outcome::ArgumentError(error);
    }
    if cancellation_point {
        // SAFETY: plain libc call; if the thread is cancelled it unwinds
        // from here exactly as from the real call.
        unsafe { crate::sys::cancel::pthread_testcancel() };
    }
    record(call);
    Outcome::Answered
}

#[inline(always)]
fn pass(
    call: Call,
    clock: Clock,
    start: u64,
    real: impl FnOnce() -> i64,
    failed: impl FnOnce(i64) -> bool,
) -> Outcome {
    let result = real();
    let end = clock.read();
    counters::record_passed(call, clock.elapsed_ns(start, end), failed(result));
    let now_ns = clock.to_ns(end);
    clock.after_timed_call(now_ns);
    crate::init::tick_if_due(now_ns);
    Outcome::Passed(result)
}

/// The verdict for a call that meets a `path` rule: looks up its file
/// (for a descriptor, through the path cache).
#[cold]
#[inline(never)]
fn entry_by_path(call: Call, raw_advice: libc::c_int, file: File) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    let decide = |path: Option<&Path>| {
        active::with_current(|policy| policy.entry_by_path(call, raw_advice, path))
            .unwrap_or(compile::PASS)
    };
    // A panic in the lookup must not reach the host: the call passes.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match file {
        File::None => decide(None),
        File::Fd(fd) => crate::policy::path_cache::entry(call, raw_advice, fd),
        File::Mapping(address) => {
            let _no_cancel = crate::sys::NoCancel::new();
            crate::sys::fdpath::with_mapping_path(address, decide)
        }
    }))
    .unwrap_or(compile::PASS)
}
