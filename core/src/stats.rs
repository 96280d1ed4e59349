//! Plain per-call statistics: what a dump holds and what reports merge.
//!
//! The preload library counts with atomics and copies them into a `Snapshot`
//! to write a dump; reports parse dumps back into `Snapshot`s and add them up.
//! A call's counters are a `Tally`, counted and merged as a site's are.

use crate::call::Call;
use crate::histogram::{self, BUCKETS};
use crate::sites::Sites;
use crate::tally::Tally;

/// One call's counters and latency histogram (`histogram`'s layout).
pub type CallStats = Tally<Vec<u64>>;

impl Default for CallStats {
    fn default() -> Self {
        Tally {
            dropped: 0,
            limited: 0,
            errors: 0,
            buckets: vec![0; BUCKETS],
        }
    }
}

impl CallStats {
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

    /// Refuses counts no process can have written: totals past `u64` (which
    /// merging could not add up) and more failed calls than passed ones (the
    /// writer reads `errors` before the histogram, so it never writes that).
    /// Readers check what they accept with it; fuzzing checks the readers.
    pub fn check_totals(&self) -> Result<(), String> {
        for (call, stats) in Call::ALL.iter().zip(&self.calls) {
            let passed = stats
                .buckets
                .iter()
                .try_fold(0u64, |total, &count| total.checked_add(count));
            let count = passed
                .and_then(|passed| passed.checked_add(stats.dropped))
                .and_then(|count| count.checked_add(stats.limited));
            match (passed, count) {
                (Some(passed), Some(_)) if stats.errors <= passed => {}
                (Some(passed), Some(_)) => {
                    return Err(format!(
                        "{}: {} errors but only {passed} passed calls",
                        call.name(),
                        stats.errors
                    ))
                }
                _ => return Err(format!("{}: counts overflow", call.name())),
            }
        }
        Ok(())
    }

    /// The calls that were made at least once, in table order.
    pub fn made(&self) -> impl Iterator<Item = (Call, &CallStats)> {
        Call::ALL
            .into_iter()
            .map(|call| (call, self.call(call)))
            .filter(|(_, stats)| !stats.is_empty())
    }
}
