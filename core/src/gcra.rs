//! The rate-limit step shared by everything that enforces a `limit` rule:
//! GCRA ("generic cell rate algorithm") over one atomic word holding the
//! theoretical arrival time of the next conforming call, in nanoseconds.
//!
//! A rule with `rate` r and `burst` b lets b calls through at once, then one
//! every 1/r seconds: over t seconds, about `r·t + b` calls pass. The word is
//! updated with compare-and-swap, so a limit is exact under threads, needs no
//! lock, and a process that dies mid-update (the word may live in shared
//! memory) leaves nothing locked. Pure and safe: the caller owns the clock.

use std::sync::atomic::{AtomicU64, Ordering};

/// The GCRA parameters for a rate and burst: `(interval, tolerance)` in ns,
/// where `interval` is 1/rate and `tolerance` is how far ahead of now the
/// next arrival may run, `(burst - 1)` intervals.
pub fn parameters(rate: f64, burst: f64) -> (u64, u64) {
    let interval = (1e9 / rate).clamp(1.0, 1e18) as u64;
    let tolerance = ((burst.max(1.0) - 1.0) * interval as f64).min(1e18) as u64;
    (interval, tolerance)
}

/// One GCRA step on `next` at `now_ns`: admits the call and moves the
/// arrival time on, or refuses it and leaves the word alone. An arrival
/// time further ahead than any conforming history can put it (a corrupted
/// shared word, or another host's clock) is reset rather than trusted.
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
            start.saturating_add(interval),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return true,
            Err(seen) => current = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_follow_rate_and_burst() {
        assert_eq!(parameters(100.0, 20.0), (10_000_000, 190_000_000));
        // A burst below one still lets one call through.
        assert_eq!(parameters(1.0, 0.0), (1_000_000_000, 0));
        // Absurd rates are clamped, never zero or overflowing.
        assert_eq!(parameters(1e12, 1.0).0, 1);
        assert_eq!(parameters(1e-12, 1.0).0, 1_000_000_000_000_000_000);
    }

    #[test]
    fn a_burst_passes_at_once_then_one_per_interval() {
        let (interval, tolerance) = parameters(10.0, 3.0);
        let next = AtomicU64::new(0);
        let now = 5_000_000_000;
        let admitted = (0..10)
            .filter(|_| conforms(&next, interval, tolerance, now))
            .count();
        assert_eq!(admitted, 3);
        assert!(!conforms(&next, interval, tolerance, now + interval - 1));
        assert!(conforms(&next, interval, tolerance, now + interval));
        assert!(!conforms(&next, interval, tolerance, now + interval));
        // After a long pause the budget is full again, not fuller.
        let later = now + 100 * interval;
        let admitted = (0..10)
            .filter(|_| conforms(&next, interval, tolerance, later))
            .count();
        assert_eq!(admitted, 3);
    }

    #[test]
    fn an_impossible_arrival_time_is_reset() {
        let (interval, tolerance) = parameters(1.0, 1.0);
        let next = AtomicU64::new(u64::MAX - 5);
        assert!(conforms(&next, interval, tolerance, 1_000));
        assert_eq!(next.load(Ordering::Relaxed), 1_000 + interval);
    }

    #[test]
    fn threads_share_one_budget_exactly() {
        let (interval, tolerance) = parameters(1.0, 100.0);
        let next = AtomicU64::new(0);
        let admitted = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        if conforms(&next, interval, tolerance, 10) {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Ordering::Relaxed), 100);
    }
}
