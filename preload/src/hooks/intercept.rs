//! What every hook does, in one place: find the call's site, ask the
//! policy, then either time the real call and record it, or answer without
//! the kernel (keeping the argument errors the real call would report) and
//! count it, in the call's totals and its site's.
//!
//! This is the hot path. It allocates nothing, takes no lock, and makes no
//! system call besides the real one: a site lookup, a table load, clock
//! reads, and relaxed atomic adds. A verdict that depends on the caller
//! only is cached in the site's record, stamped with the policy's
//! generation, so a known site's call costs a load and a compare more. Everything rare (initialisation, path lookups, reloads) is
//! behind a `#[cold]` call. The frame holds nothing with a destructor while
//! the real call runs, so a thread cancelled inside `fsync` unwinds through
//! it cleanly.

use std::path::Path;

use fadvise_shim_core::call::Call;

use crate::policy::compile::{
    self, BY_CALLER, BY_PATH, BY_PATH_AND_CALLER, DROP, KIND_MASK, LIMIT,
};
use crate::policy::{active, limits};
use crate::stats::counters;
use crate::stats::sites::{self, Site};
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

/// Intercepts one call made from return address `caller` (0: unknown).
/// `argument_error` says what the arguments alone make the real call
/// return; `real` makes the real call; `failed` tells a failed result from a
/// successful one; `cancellation_point` keeps an answered call a
/// cancellation point, as the real one is.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn intercept(
    call: Call,
    caller: usize,
    raw_advice: libc::c_int,
    file: File,
    argument_error: impl FnOnce() -> Option<libc::c_int>,
    cancellation_point: bool,
    real: impl FnOnce() -> i64,
    failed: impl FnOnce(i64) -> bool,
) -> Outcome {
    crate::init::ensure();
    let site = sites::find(call, caller);
    let index = compile::table_index(call, raw_advice);
    let mut entry = active::entry(index);
    match entry & KIND_MASK {
        BY_PATH => entry = entry_by_path(call, raw_advice, file, None),
        BY_CALLER => entry = entry_by_caller(call, raw_advice, index, site, caller),
        BY_PATH_AND_CALLER => entry = entry_by_path(call, raw_advice, file, Some(caller)),
        _ => {}
    }
    let kind = entry & KIND_MASK;
    if kind != DROP {
        // One clock reading serves the limiter and the start of the timing.
        let clock = Clock::current();
        let start = clock.read();
        let admitted = kind != LIMIT || limits::admit((entry >> 8) as usize, clock.to_ns(start));
        if admitted {
            return pass(call, site, clock, start, real, failed);
        }
    }
    crate::init::tick_if_due_by_wall_clock();
    let record = |call| {
        if kind == LIMIT {
            counters::record_limited(call);
            if let Some(site) = site {
                site.record_limited();
            }
        } else {
            counters::record_dropped(call);
            if let Some(site) = site {
                site.record_dropped();
            }
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
    site: Option<Site>,
    clock: Clock,
    start: u64,
    real: impl FnOnce() -> i64,
    failed: impl FnOnce(i64) -> bool,
) -> Outcome {
    let result = real();
    let end = clock.read();
    let (ns, failed) = (clock.elapsed_ns(start, end), failed(result));
    counters::record_passed(call, ns, failed);
    if let Some(site) = site {
        site.record_passed(ns, failed);
    }
    let now_ns = clock.to_ns(end);
    clock.after_timed_call(now_ns);
    crate::init::tick_if_due(now_ns);
    Outcome::Passed(result)
}

/// The verdict for a call that meets a `caller` rule: the site's cached
/// verdict when the policy in force decided it, else decided and cached.
#[inline(always)]
fn entry_by_caller(
    call: Call,
    raw_advice: libc::c_int,
    index: usize,
    site: Option<Site>,
    caller: usize,
) -> u32 {
    // Never 0 (an empty cache word): the table index is below 2^8 and the
    // generation, once a policy is in force, at least 1.
    let stamp = active::generation() << 8 | index as u32;
    match site.and_then(|site| site.cached_verdict(stamp)) {
        Some(entry) => entry,
        None => decide_by_caller(call, raw_advice, stamp, site, caller),
    }
}

#[cold]
#[inline(never)]
fn decide_by_caller(
    call: Call,
    raw_advice: libc::c_int,
    stamp: u32,
    site: Option<Site>,
    caller: usize,
) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    // A panic in the decision must not reach the host: the call passes.
    let entry = std::panic::catch_unwind(|| {
        sites::with_caller_path(caller, |module| {
            active::with_current(|policy| policy.entry_by_context(call, raw_advice, None, module))
        })
        .unwrap_or(compile::PASS)
    })
    .unwrap_or(compile::PASS);
    if let Some(site) = site {
        site.cache_verdict(stamp, entry);
    }
    entry
}

/// The verdict for a call that meets a `path` rule: looks up its file (for
/// a descriptor, through the path cache). With `caller` (the policy has
/// `caller` rules too for this call), also its calling object; the path
/// cache holds verdicts of the path alone, so then the path is looked up.
#[cold]
#[inline(never)]
fn entry_by_path(call: Call, raw_advice: libc::c_int, file: File, caller: Option<usize>) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    let decide = |path: Option<&Path>| {
        match caller {
            None => active::with_current(|policy| policy.entry_by_path(call, raw_advice, path)),
            Some(caller) => sites::with_caller_path(caller, |module| {
                active::with_current(|policy| {
                    policy.entry_by_context(call, raw_advice, path, module)
                })
            }),
        }
        .unwrap_or(compile::PASS)
    };
    // A panic in the lookup must not reach the host: the call passes.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match file {
        File::None => decide(None),
        File::Fd(fd) if caller.is_none() => crate::policy::path_cache::entry(call, raw_advice, fd),
        File::Fd(fd) => {
            let _no_cancel = crate::sys::NoCancel::new();
            crate::sys::fdpath::with_fd_path(fd, decide)
        }
        File::Mapping(address) => {
            let _no_cancel = crate::sys::NoCancel::new();
            crate::sys::fdpath::with_mapping_path(address, decide)
        }
    }))
    .unwrap_or(compile::PASS)
}
