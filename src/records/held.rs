//! A record held until every source has been read and the duplicates are
//! known: a `Dump` without its histograms' zero buckets. A record's full
//! histograms are about 300 KiB and a host may have thousands of processes;
//! the buckets a process used are a few hundred.

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::BUCKETS;
use fadvise_shim_core::origin::Identity;

/// What kind of file a record was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A process's dump (`signal`, `exit`, or a supervisor's).
    Dump,
    /// A process's stats file, live or dead: its origin comes from the
    /// kernel where it can, so it wins a tie with a dump.
    StatsFile,
    /// A retained aggregate of dead processes.
    Aggregate,
}

pub struct Held {
    pub kind: Kind,
    /// Every call made: what tells the more complete of two records of one
    /// process (counts only grow).
    pub total: u64,
    /// The record, its bucket vectors emptied.
    record: Dump,
    buckets: Vec<(u8, u16, u64)>,
}

impl Held {
    pub fn new(mut record: Dump) -> Held {
        let kind = match record.reason.as_str() {
            "live" | "dead" => Kind::StatsFile,
            "retired" => Kind::Aggregate,
            _ => Kind::Dump,
        };
        let total = record
            .stats
            .calls
            .iter()
            .fold(0u64, |sum, stats| sum.saturating_add(stats.count()));
        let mut buckets = Vec::new();
        for (call, stats) in record.stats.calls.iter_mut().enumerate() {
            let counts = std::mem::take(&mut stats.buckets);
            buckets.extend(
                counts
                    .iter()
                    .enumerate()
                    .filter(|(_, &count)| count != 0)
                    .map(|(bucket, &count)| (call as u8, bucket as u16, count)),
            );
        }
        Held {
            kind,
            total,
            record,
            buckets,
        }
    }

    /// The process this is a record of; `None` for an aggregate and for a
    /// record without a nonce.
    pub fn identity(&self) -> Option<Identity> {
        match self.kind {
            Kind::Aggregate => None,
            _ => self.record.origin.identity(),
        }
    }

    pub fn record(&self) -> &Dump {
        &self.record
    }

    pub fn into_record(self) -> Dump {
        let mut record = self.record;
        for stats in &mut record.stats.calls {
            stats.buckets = vec![0; BUCKETS];
        }
        for (call, bucket, count) in self.buckets {
            if let Some(stats) = record.stats.calls.get_mut(usize::from(call)) {
                stats.buckets[usize::from(bucket)] = count;
            }
        }
        debug_assert_eq!(record.stats.calls.len(), Call::COUNT);
        record
    }
}
