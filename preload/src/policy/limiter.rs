//! Rate limits: one GCRA ("generic cell rate algorithm") state per `limit`
//! rule — a single atomic word updated with compare-and-swap, so limits are
//! exact under threads, need no lock, and a process that dies mid-update
//! leaves nothing locked. A rule with `rate` r and `burst` b lets b calls
//! through at once, then one every 1/r seconds: over t seconds, about
//! `r·t + b` calls pass.
//!
//! A process-scope rule keeps its word here; a host-scope rule keeps it in a
//! shared budget file (`budget.rs`, mapped by `limits.rs` on first use), and
//! falls back to its word here when the file cannot be used.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

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

/// The GCRA parameters for a rate and burst: (interval, tolerance) in ns.
pub fn parameters(rate: f64, burst: f64) -> (u64, u64) {
    let interval = (1e9 / rate).clamp(1.0, 1e18) as u64;
    let tolerance = ((burst.max(1.0) - 1.0) * interval as f64).min(1e18) as u64;
    (interval, tolerance)
}

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

/// One GCRA step on `next`: admits the call and moves the arrival time on,
/// or refuses it. An arrival time further ahead than any conforming history
/// can put it (a corrupted shared word, or another host's clock) is reset.
pub fn conforms(next: &AtomicU64, interval: u64, tolerance: u64, now_ns: u64) -> bool {
    let impossible = now_ns
        .saturating_add(tolerance)
        .saturating_add(interval)
        .saturating_add(1_000_000_000);
    let mut current = next.load(Ordering::Acquire);
    loop {
        let start = if current > impossible {
            now_ns
        } else {
            current.max(now_ns)
        };
        if start - now_ns > tolerance {
            return false;
        }
        match next.compare_exchange_weak(
            current,
            start + interval,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(seen) => current = seen,
        }
    }
}

/// Refills every process-scope budget: a forked child has its own. Host
/// budgets are shared with the child, as with every process.
pub fn reset() {
    for limiter in &LIMITERS {
        limiter.next_ns.store(0, Ordering::Relaxed);
    }
}
