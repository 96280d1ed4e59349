//! Rate limits: one GCRA state (`fadvise_shim_core::gcra`, the step the
//! supervisor uses too) per `limit` rule — a single atomic word updated with compare-and-swap, so limits are
//! exact under threads, need no lock, and a process that dies mid-update
//! leaves nothing locked. A rule with `rate` r and `burst` b lets b calls
//! through at once, then one every 1/r seconds: over t seconds, about
//! `r·t + b` calls pass.
//!
//! A process-scope rule keeps its word here; a host-scope rule keeps it in a
//! shared budget file (`budget.rs`, mapped by `limits.rs` on first use), and
//! falls back to its word here when the file cannot be used.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use fadvise_shim_core::gcra::{conforms, parameters};

use super::budget::SharedBudget;

/// Most `limit` rules one policy may hold; rules past this pass.
pub const MAX_LIMITERS: usize = 64;

pub struct Limiter {
    /// Theoretical arrival time of the next conforming call, in ns, for a
    /// process-scope rule (or a host-scope one that fell back).
    next_ns: AtomicU64,
    /// 1/rate, in ns.
    interval_ns: AtomicU64,
    /// How far ahead of now the next arrival may run: (burst - 1) intervals.
    tolerance_ns: AtomicU64,
    /// Whether the rule has `scope = "host"`.
    pub host: AtomicBool,
    /// The mapped budget of a host-scope rule: null until first used,
    /// `budget::FALLBACK` when it cannot be used.
    pub shared: AtomicPtr<SharedBudget>,
}

pub static LIMITERS: [Limiter; MAX_LIMITERS] = [const {
    Limiter {
        next_ns: AtomicU64::new(0),
        interval_ns: AtomicU64::new(0),
        tolerance_ns: AtomicU64::new(0),
        host: AtomicBool::new(false),
        shared: AtomicPtr::new(std::ptr::null_mut()),
    }
}; MAX_LIMITERS];

/// Sets limiter `index` to `rate` calls per second with `burst`. A rule
/// that is `unchanged` by a reload keeps its budget as it stands (and a
/// host-scope one its mapping); a new or changed one starts full.
pub fn configure(index: usize, rate: f64, burst: f64, host: bool, unchanged: bool) {
    if let Some(limiter) = LIMITERS.get(index) {
        if unchanged {
            return;
        }
        let (interval, tolerance) = parameters(rate, burst);
        limiter.interval_ns.store(interval, Ordering::Relaxed);
        limiter.tolerance_ns.store(tolerance, Ordering::Relaxed);
        limiter.next_ns.store(0, Ordering::Relaxed);
        // A budget mapped for other parameters stays mapped (a thread may
        // still be reading it) but is no longer used.
        limiter
            .shared
            .store(std::ptr::null_mut(), Ordering::Relaxed);
        limiter.host.store(host, Ordering::Release);
    }
}

impl Limiter {
    /// The rule's (interval, tolerance) in ns.
    #[inline(always)]
    pub fn parameters(&self) -> (u64, u64) {
        (
            self.interval_ns.load(Ordering::Relaxed),
            self.tolerance_ns.load(Ordering::Relaxed),
        )
    }

    /// Admits a call at `now_ns` against this process's own budget.
    #[inline(always)]
    pub fn admit_local(&self, now_ns: u64) -> bool {
        let (interval, tolerance) = self.parameters();
        conforms(&self.next_ns, interval, tolerance, now_ns)
    }
}

/// Refills every process-scope budget: a forked child has its own. Host
/// budgets are shared with the child, as with every process.
pub fn reset() {
    for limiter in &LIMITERS {
        crate::sys::fork::store_if_changed!(limiter.next_ns, 0);
    }
}
