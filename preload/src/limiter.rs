//! Per-process rate limits: one GCRA ("generic cell rate algorithm") state
//! per `limit` rule, a single atomic word updated with compare-and-swap, so
//! limits are exact under threads and need no lock.
//!
//! A rule with `rate` r and `burst` b lets `b` calls through at once and then
//! one every 1/r seconds: over t seconds, about `r·t + b` calls pass.

use std::sync::atomic::{AtomicU64, Ordering};

/// Most `limit` rules one policy may hold; rules past this pass (with one
/// stderr line when the policy is loaded).
pub const MAX_LIMITERS: usize = 64;

struct Gcra {
    /// Theoretical arrival time of the next conforming call, in ns.
    next_ns: AtomicU64,
    /// 1/rate, in ns.
    interval_ns: AtomicU64,
    /// How far ahead of now `next_ns` may run: (burst - 1) intervals.
    tolerance_ns: AtomicU64,
}

static LIMITERS: [Gcra; MAX_LIMITERS] = [const {
    Gcra {
        next_ns: AtomicU64::new(0),
        interval_ns: AtomicU64::new(0),
        tolerance_ns: AtomicU64::new(0),
    }
}; MAX_LIMITERS];

/// Sets limiter `index` to `rate` calls per second with `burst`, full.
pub fn configure(index: usize, rate: f64, burst: f64) {
    if let Some(gcra) = LIMITERS.get(index) {
        let interval = (1e9 / rate).clamp(1.0, 1e18) as u64;
        let tolerance = ((burst.max(1.0) - 1.0) * interval as f64).min(1e18) as u64;
        gcra.interval_ns.store(interval, Ordering::Relaxed);
        gcra.tolerance_ns.store(tolerance, Ordering::Relaxed);
        gcra.next_ns.store(0, Ordering::Release);
    }
}

/// Whether a call at `now_ns` is within limiter `index`'s budget; if so it
/// is counted against it.
pub fn admit(index: usize, now_ns: u64) -> bool {
    let Some(gcra) = LIMITERS.get(index) else {
        return true;
    };
    let interval = gcra.interval_ns.load(Ordering::Relaxed);
    let tolerance = gcra.tolerance_ns.load(Ordering::Relaxed);
    let mut next = gcra.next_ns.load(Ordering::Acquire);
    loop {
        let start = next.max(now_ns);
        if start - now_ns > tolerance {
            return false;
        }
        match gcra.next_ns.compare_exchange_weak(
            next,
            start + interval,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(current) => next = current,
        }
    }
}

/// Refills every limiter: a forked child has budgets of its own.
pub fn reset() {
    for gcra in &LIMITERS {
        gcra.next_ns.store(0, Ordering::Relaxed);
    }
}
