//! Keeps served counters from going backwards while `serve` runs: each
//! counter (and each histogram bucket, sum and count) is served as the
//! largest value served so far for that series.
//!
//! Why: a scrape reads many files one after another while processes keep
//! writing them. When a process exits, its counts move from its own stats
//! file into the retained aggregate (compaction); a scrape that reads the
//! aggregate before the fold and the directory after the file is gone sees
//! that process's counts vanish for one scrape. Served as is, Prometheus
//! would take the dip for a counter reset and `rate()` would count the
//! whole counter again as new increase: a spike of millions of calls that
//! never happened. Serving the maximum turns the dip into one flat scrape.
//! Taking the maximum element by element keeps a histogram valid: the
//! maximum of two cumulative bucket series is cumulative, and `+Inf` and
//! `_count` stay equal.
//!
//! Memory: one entry per series served. Series present on disk are bounded
//! by the directory; what could grow is series that disappeared (an
//! operator removed files, a container's identity is gone for good). An
//! entry not seen for `FORGET_AFTER` is dropped, and past `MAX_ABSENT`
//! absent entries the oldest go first. A series that comes back after
//! being forgotten starts from its value on disk, which Prometheus sees as
//! a reset: right, since its counts really did go away.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::metrics::prometheus::{Family, Kind};

/// Twice Prometheus' default lookback (5 minutes): a series absent longer
/// has gone stale in Prometheus anyway.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// Absent series remembered at most (each entry is about 200 bytes).
const MAX_ABSENT: usize = 100_000;

#[derive(Default)]
pub struct Monotonic {
    served: HashMap<String, Served>,
}

struct Served {
    value: f64,
    seen: Instant,
}

impl Monotonic {
    /// Raises every counter and histogram sample of `families` to the
    /// largest value served before for its series, and remembers the
    /// result.
    pub fn apply(&mut self, families: &mut [Family]) {
        let now = Instant::now();
        for family in families.iter_mut() {
            if family.kind == Kind::Gauge {
                continue;
            }
            for sample in &mut family.samples {
                let key = format!("{}{}{{{}}}", family.name, sample.suffix, sample.labels);
                let served = self.served.entry(key).or_insert(Served {
                    value: sample.value,
                    seen: now,
                });
                served.value = served.value.max(sample.value);
                served.seen = now;
                sample.value = served.value;
            }
        }
        self.forget(now);
    }

    fn forget(&mut self, now: Instant) {
        self.served
            .retain(|_, served| now.duration_since(served.seen) < FORGET_AFTER);
        let mut absent: Vec<(Instant, String)> = self
            .served
            .iter()
            .filter(|(_, served)| served.seen != now)
            .map(|(key, served)| (served.seen, key.clone()))
            .collect();
        if absent.len() > MAX_ABSENT {
            absent.sort();
            for (_, key) in &absent[..absent.len() - MAX_ABSENT] {
                self.served.remove(key);
            }
        }
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.served.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::prometheus::Sample;

    fn counter(values: &[(&str, f64)]) -> Vec<Family> {
        vec![Family {
            name: "c",
            help: "",
            kind: Kind::Counter,
            samples: values
                .iter()
                .map(|&(labels, value)| Sample {
                    suffix: "_total",
                    labels: labels.to_string(),
                    value,
                })
                .collect(),
        }]
    }

    #[test]
    fn a_dip_is_served_flat_and_growth_goes_through() {
        let mut monotonic = Monotonic::default();
        let served = |monotonic: &mut Monotonic, value| {
            let mut families = counter(&[("a=\"1\"", value)]);
            monotonic.apply(&mut families);
            families[0].samples[0].value
        };
        assert_eq!(served(&mut monotonic, 10.0), 10.0);
        assert_eq!(served(&mut monotonic, 4.0), 10.0);
        assert_eq!(served(&mut monotonic, 12.0), 12.0);
    }

    #[test]
    fn gauges_are_served_as_they_are() {
        let mut monotonic = Monotonic::default();
        for value in [5.0, 2.0] {
            let mut families = counter(&[("", value)]);
            families[0].kind = Kind::Gauge;
            monotonic.apply(&mut families);
            assert_eq!(families[0].samples[0].value, value);
        }
        assert_eq!(monotonic.remembered(), 0);
    }

    #[test]
    fn absent_series_are_bounded() {
        let mut monotonic = Monotonic::default();
        let many: Vec<String> = (0..MAX_ABSENT + 10).map(|i| format!("i=\"{i}\"")).collect();
        let pairs: Vec<(&str, f64)> = many.iter().map(|l| (l.as_str(), 1.0)).collect();
        monotonic.apply(&mut counter(&pairs));
        assert_eq!(monotonic.remembered(), MAX_ABSENT + 10);
        // One scrape later all of them are absent but one.
        std::thread::sleep(Duration::from_millis(2));
        monotonic.apply(&mut counter(&[("other=\"1\"", 1.0)]));
        assert_eq!(monotonic.remembered(), MAX_ABSENT + 1);
    }
}
