//! Plain per-call statistics: what a dump holds and what reports merge.
//!
//! The preload library counts with atomics and copies them into a `Snapshot`
//! to write a dump; reports parse dumps back into `Snapshot`s and add them up.
//! `passed` is not stored: it is the histogram's total, so a snapshot taken
//! while other threads keep counting is still self-consistent, and
//! `count = passed + dropped + limited` holds by construction.

use crate::call::Call;
use crate::histogram::{self, BUCKETS};
use crate::sites::Sites;

/// One call's counters and latency histogram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallStats {
    /// Calls answered by the shim without entering the kernel.
    pub dropped: u64,
    /// Calls over a rate limit (answered like dropped ones).
    pub limited: u64,
    /// Passed calls that failed.
    pub errors: u64,
    /// Latency of passed calls in nanoseconds, `histogram`'s layout.
    pub buckets: Vec<u64>,
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            dropped: 0,
            limited: 0,
            errors: 0,
            buckets: vec![0; BUCKETS],
        }
    }
}

/// The sum of `counts`, saturating: a report merging absurd (hand-made)
/// dumps must not panic or wrap around.
pub(crate) fn saturating_sum(counts: &[u64]) -> u64 {
    counts
        .iter()
        .fold(0u64, |total, &count| total.saturating_add(count))
}

/// Adds `theirs` into `mine`, count by count, saturating.
pub(crate) fn saturating_add_each(mine: &mut [u64], theirs: &[u64]) {
    for (mine, theirs) in mine.iter_mut().zip(theirs) {
        *mine = mine.saturating_add(*theirs);
    }
}

impl CallStats {
    pub fn passed(&self) -> u64 {
        saturating_sum(&self.buckets)
    }

    pub fn count(&self) -> u64 {
        self.passed()
            .saturating_add(self.dropped)
            .saturating_add(self.limited)
    }

    pub fn is_empty(&self) -> bool {
        self.dropped == 0 && self.limited == 0 && self.buckets.iter().all(|&c| c == 0)
    }

    pub fn merge(&mut self, other: &CallStats) {
        self.dropped = self.dropped.saturating_add(other.dropped);
        self.limited = self.limited.saturating_add(other.limited);
        self.errors = self.errors.saturating_add(other.errors);
        saturating_add_each(&mut self.buckets, &other.buckets);
    }

    pub fn quantile(&self, quantile: f64) -> u64 {
        histogram::value_at_quantile(&self.buckets, quantile)
    }

    pub fn max(&self) -> u64 {
        histogram::max_value(&self.buckets)
    }

    pub fn min(&self) -> u64 {
        histogram::min_value(&self.buckets)
    }

    /// Sum of latencies, each bucket counted at its middle: good to the
    /// histogram's precision, for means and Prometheus' `_sum`.
    pub fn approximate_sum_ns(&self) -> f64 {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, &count)| count != 0)
            .map(|(index, &count)| {
                let middle = (histogram::lowest_value_at(index) as f64
                    + histogram::highest_value_at(index) as f64)
                    / 2.0;
                middle * count as f64
            })
            .sum()
    }
}

/// Statistics for every call, indexed by `Call::index`, and where the
/// calls came from (filled by readers; the preload library writes its
/// sites from shared memory instead).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub calls: [CallStats; Call::COUNT],
    pub sites: Sites,
}

impl Snapshot {
    pub fn call(&self, call: Call) -> &CallStats {
        &self.calls[call.index()]
    }

    pub fn call_mut(&mut self, call: Call) -> &mut CallStats {
        &mut self.calls[call.index()]
    }

    pub fn is_empty(&self) -> bool {
        self.calls.iter().all(CallStats::is_empty)
    }

    pub fn merge(&mut self, other: &Snapshot) {
        for (mine, theirs) in self.calls.iter_mut().zip(&other.calls) {
            mine.merge(theirs);
        }
        self.sites.merge(&other.sites);
    }

    /// The calls that were made at least once, in table order.
    pub fn made(&self) -> impl Iterator<Item = (Call, &CallStats)> {
        Call::ALL
            .into_iter()
            .map(|call| (call, self.call(call)))
            .filter(|(_, stats)| !stats.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::index_of;

    #[test]
    fn count_is_passed_plus_dropped_plus_limited() {
        let mut stats = CallStats::default();
        stats.buckets[index_of(380)] += 5;
        stats.dropped = 3;
        stats.limited = 2;
        stats.errors = 1;
        assert_eq!((stats.passed(), stats.count()), (5, 10));
        let mut merged = stats.clone();
        merged.merge(&stats);
        assert_eq!(
            (merged.passed(), merged.count(), merged.errors),
            (10, 20, 2)
        );
    }
}
