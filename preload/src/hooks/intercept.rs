//! What every hook does, in one place: intercept → decide → real call (or
//! an answer without the kernel, keeping the argument errors the real call
//! would report) → record, in the call's totals and its site's.
//!
//! Deciding is one table load; an entry that depends on the call's file or
//! calling module is decided by the policy's one evaluator
//! (`Compiled::decide`) with those answered here: the path from the path
//! cache (or the kernel), the module from the loader. A verdict that
//! depends on the caller only is cached in the site's record, stamped with
//! the policy's generation and table index, so a known site's call costs a
//! load and a compare more.
//!
//! This is the hot path. It allocates nothing, takes no lock, and makes no
//! system call besides the real one: a site lookup, a table load, clock
//! reads, and relaxed atomic adds. Everything rare (initialisation, path
//! lookups, module lookups, reloads) is behind a `#[cold]` call. The frame
//! holds nothing with a destructor while the real call runs, so a thread
//! cancelled inside `fsync` unwinds through it cleanly.

use std::path::Path;

use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::evaluate::Fact;

use crate::policy::compile::{
    self, BY_CALLER, BY_PATH, BY_PATH_AND_CALLER, DROP, KIND_MASK, LIMIT, PASS,
};
use crate::policy::{active, limits, path_cache};
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

/// One intercepted call, as the hook table describes it: which call, made
/// from where, with which advice (0 for calls without one) on which file.
#[derive(Clone, Copy)]
pub struct Request {
    pub call: Call,
    /// The return address of the program's call (0: unknown).
    pub caller: usize,
    /// `posix_fadvise`'s advice, as the caller passed it; 0 for other calls.
    pub raw_advice: libc::c_int,
    pub file: File,
    /// Whether the real call is a cancellation point: an answered call
    /// then stays one.
    pub cancellation_point: bool,
}

/// Intercepts one call. `argument_error` says what the arguments alone make
/// the real call return; `real` makes the real call; `failed` tells a failed
/// result from a successful one. They stay closures (not function pointers)
/// so that each hook gets its own copy of this path, inlined.
#[inline(always)]
pub fn intercept(
    request: Request,
    argument_error: impl FnOnce() -> Option<libc::c_int>,
    real: impl FnOnce() -> i64,
    failed: impl FnOnce(i64) -> bool,
) -> Outcome {
    let Request {
        call,
        caller,
        raw_advice,
        file,
        cancellation_point,
    } = request;
    crate::init::ensure();
    let site = sites::find(call, caller);
    let entry = decide(call, raw_advice, file, site, caller);
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

/// The policy's entry for a call: the table's, unless it depends on the
/// call's file or calling module.
#[inline(always)]
fn decide(
    call: Call,
    raw_advice: libc::c_int,
    file: File,
    site: Option<Site>,
    caller: usize,
) -> u32 {
    let index = compile::table_index(call, raw_advice);
    let entry = active::entry(index);
    match entry & KIND_MASK {
        BY_PATH => by_path(call, raw_advice, file),
        BY_CALLER => by_caller(call, raw_advice, index, site, caller),
        BY_PATH_AND_CALLER => by_path_and_caller(call, raw_advice, file, caller),
        _ => entry,
    }
}

/// A verdict that depends on the caller only: the site's cached verdict
/// when the policy in force decided it, else decided and cached.
#[inline(always)]
fn by_caller(
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
        None => by_caller_uncached(call, raw_advice, stamp, site, caller),
    }
}

#[cold]
#[inline(never)]
fn by_caller_uncached(
    call: Call,
    raw_advice: libc::c_int,
    stamp: u32,
    site: Option<Site>,
    caller: usize,
) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    let entry = guarded(|| {
        with_caller(caller, |module| {
            decide_now(call, raw_advice, Fact::NotKnownHere, module)
        })
    });
    if let Some(site) = site {
        site.cache_verdict(stamp, entry);
    }
    entry
}

/// A verdict that depends on the file only: for a descriptor, through the
/// path cache.
#[cold]
#[inline(never)]
fn by_path(call: Call, raw_advice: libc::c_int, file: File) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    guarded(|| match file {
        File::Fd(fd) => path_cache::entry(call, raw_advice, fd),
        other => with_file_path(other, |path| {
            decide_now(call, raw_advice, path, Fact::NotKnownHere)
        }),
    })
}

/// A verdict that depends on both: the path cache holds verdicts of the
/// path alone, so the path is looked up.
#[cold]
#[inline(never)]
fn by_path_and_caller(call: Call, raw_advice: libc::c_int, file: File, caller: usize) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    guarded(|| {
        with_file_path(file, |path| {
            with_caller(caller, |module| decide_now(call, raw_advice, path, module))
        })
    })
}

/// The evaluator's entry under the policy in force.
fn decide_now(call: Call, raw_advice: libc::c_int, path: Fact<&Path>, caller: Fact<&[u8]>) -> u32 {
    active::with_current(|policy| policy.decide(call, raw_advice, path, caller)).unwrap_or(PASS)
}

/// A panic in a decision must not reach the host: the call passes.
fn guarded(decide: impl FnOnce() -> u32) -> u32 {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decide)).unwrap_or(PASS)
}

/// The path of the call's file (none for a call without one, or a file
/// the kernel gives no path for).
fn with_file_path(file: File, use_path: impl FnOnce(Fact<&Path>) -> u32) -> u32 {
    let _no_cancel = crate::sys::NoCancel::new();
    let use_found = |path: Option<&Path>| use_path(Fact::from_option(path));
    match file {
        File::None => use_found(None),
        File::Fd(fd) => crate::sys::fdpath::with_fd_path(fd, use_found),
        File::Mapping(address) => crate::sys::fdpath::with_mapping_path(address, use_found),
    }
}

/// The calling module as the loader names it (none if it cannot).
fn with_caller(caller: usize, use_module: impl FnOnce(Fact<&[u8]>) -> u32) -> u32 {
    sites::with_caller_path(caller, |module| use_module(Fact::from_option(module)))
}
