//! The counters one unit of counting holds — a call's, or a call site's —
//! and how they add up, written once for both.
//!
//! `passed` is not stored: it is the histogram's total, so a tally copied
//! while other threads keep counting is still self-consistent, and
//! `count = passed + dropped + limited` holds by construction. Every sum
//! saturates: a report merging absurd (hand-made) dumps must not panic or
//! wrap around. `stats` (a call's fine histogram) and `sites` (a site's
//! coarse one) both build on this module, so neither imports the other for
//! it.

/// A call's or a site's counters and latency histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally<Buckets> {
    /// Calls answered by the shim without entering the kernel.
    pub dropped: u64,
    /// Calls over a rate limit (answered like dropped ones).
    pub limited: u64,
    /// Passed calls that failed.
    pub errors: u64,
    /// Passed calls by latency bucket: `histogram`'s layout for a call,
    /// the coarse one of `sites` for a site.
    pub buckets: Buckets,
}

/// A tally of nothing, for fixed-size histograms (a site's).
impl<const N: usize> Default for Tally<[u64; N]> {
    fn default() -> Self {
        Tally {
            dropped: 0,
            limited: 0,
            errors: 0,
            buckets: [0; N],
        }
    }
}

impl<Buckets: AsRef<[u64]> + AsMut<[u64]>> Tally<Buckets> {
    pub fn passed(&self) -> u64 {
        self.buckets
            .as_ref()
            .iter()
            .fold(0u64, |total, &count| total.saturating_add(count))
    }

    pub fn count(&self) -> u64 {
        self.passed()
            .saturating_add(self.dropped)
            .saturating_add(self.limited)
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    pub fn merge(&mut self, other: &Self) {
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.limited = self.limited.saturating_add(other.limited);
        self.errors = self.errors.saturating_add(other.errors);
        for (mine, theirs) in self.buckets.as_mut().iter_mut().zip(other.buckets.as_ref()) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_is_passed_plus_dropped_plus_limited() {
        let stats = Tally {
            dropped: 3,
            limited: 2,
            errors: 1,
            buckets: [5, 0, 0],
        };
        assert_eq!((stats.passed(), stats.count()), (5, 10));
        let mut merged = stats.clone();
        merged.merge(&stats);
        assert_eq!(
            (merged.passed(), merged.count(), merged.errors),
            (10, 20, 2)
        );
        assert!(!merged.is_empty());
        let errors_only = Tally {
            errors: 1,
            ..Tally::<[u64; 3]>::default()
        };
        assert!(errors_only.is_empty(), "errors count among passed calls");
    }

    #[test]
    fn sums_saturate() {
        let mut stats = Tally {
            dropped: u64::MAX,
            limited: 1,
            errors: 0,
            buckets: [u64::MAX, 1],
        };
        assert_eq!((stats.passed(), stats.count()), (u64::MAX, u64::MAX));
        stats.merge(&stats.clone());
        assert_eq!((stats.dropped, stats.buckets), (u64::MAX, [u64::MAX, 2]));
    }
}
