//! Which records count: every process once, from its most complete record.
//!
//! - A dump that names the stats directory holding its process's stats
//!   file (`stats_dir`), when that directory is being read, is left out: the
//!   directory counts the process, from its stats file or from the retained
//!   aggregate that file was folded into (which, after a while, no longer
//!   lists the files it absorbed — the dump's provenance still tells).
//! - A record of a process an aggregate read lists as absorbed (by its
//!   nonce) is left out: the aggregate has its counts.
//! - Of the records left with one identity (a dump copied into two
//!   directories, a stats file named beside its directory, an exit dump
//!   and the stats file of a directory not read…), the one with the most
//!   calls counts; on a tie, the stats file.
//! - Records without an identity (aggregates, dumps written before nonces)
//!   count as they are.

use std::collections::{BTreeMap, BTreeSet};

use super::held::{Held, Kind};

/// The indexes of `records` that count, in order. `stats_dirs`: (device,
/// inode) of every directory read as a stats directory.
pub fn counted(records: &[Held], stats_dirs: &BTreeSet<(u64, u64)>) -> Vec<usize> {
    let absorbed: BTreeSet<u64> = records
        .iter()
        .filter(|held| held.kind == Kind::Aggregate)
        .flat_map(|held| held.record().absorbed.iter().map(|&(_, nonce, _)| nonce))
        .collect();
    let superseded = |held: &Held| {
        let by_dir = held.kind == Kind::Dump
            && held
                .record()
                .stats_dir
                .is_some_and(|dir| stats_dirs.contains(&dir));
        let by_aggregate = held
            .identity()
            .is_some_and(|identity| absorbed.contains(&identity.nonce));
        by_dir || by_aggregate
    };
    let mut best = BTreeMap::new();
    let mut kept = Vec::new();
    for (index, held) in records.iter().enumerate() {
        if superseded(held) {
            continue;
        }
        let Some(identity) = held.identity() else {
            kept.push(index);
            continue;
        };
        let rank = |held: &Held| (held.total, held.kind == Kind::StatsFile);
        best.entry(identity)
            .and_modify(|chosen: &mut usize| {
                if rank(held) > rank(&records[*chosen]) {
                    *chosen = index;
                }
            })
            .or_insert(index);
    }
    kept.extend(best.into_values());
    kept.sort_unstable();
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::call::Call;
    use fadvise_shim_core::dump::Dump;
    use fadvise_shim_core::histogram::index_of;

    fn record(reason: &str, pid: u32, nonce: u64, calls: u64) -> Dump {
        let mut record = Dump {
            reason: reason.into(),
            ..Dump::default()
        };
        record.origin.pid = pid;
        record.origin.pid_namespace = 4026531836;
        record.origin.start_ticks = 500;
        record.origin.nonce = nonce;
        record.stats.call_mut(Call::PosixFadvise).buckets[index_of(400)] = calls;
        record
    }

    fn counted_of(records: Vec<Dump>, dirs: &[(u64, u64)]) -> Vec<usize> {
        let held: Vec<Held> = records.into_iter().map(Held::new).collect();
        counted(&held, &dirs.iter().copied().collect())
    }

    #[test]
    fn a_dump_of_a_stats_directory_being_read_is_left_out() {
        let mut dump = record("exit", 7, 9, 100);
        dump.stats_dir = Some((2049, 12));
        // Even when its stats file has been retired and is no longer listed.
        let aggregate = record("retired", 0, 0, 100);
        assert_eq!(
            counted_of(vec![dump.clone(), aggregate.clone()], &[(2049, 12)]),
            vec![1]
        );
        // Another directory: the dump counts.
        assert_eq!(counted_of(vec![dump, aggregate], &[(2049, 13)]), vec![0, 1]);
    }

    #[test]
    fn one_identity_counts_once_from_its_most_complete_record() {
        let live = record("live", 7, 9, 100);
        let early = record("signal", 7, 9, 60);
        let copy = record("signal", 7, 9, 60);
        assert_eq!(counted_of(vec![early, live, copy], &[]), vec![1]);
        // A dump with more calls than the file (counts the file missed).
        let exit = record("exit", 7, 9, 101);
        let dead = record("dead", 7, 9, 100);
        assert_eq!(counted_of(vec![dead, exit], &[]), vec![1]);
        // A tie goes to the stats file.
        assert_eq!(
            counted_of(
                vec![record("exit", 7, 9, 100), record("dead", 7, 9, 100)],
                &[]
            ),
            vec![1]
        );
    }

    #[test]
    fn other_images_and_records_without_identity_all_count() {
        let records = vec![
            record("exit", 7, 9, 100),
            // The program it exec'd: same pid and start, another nonce.
            record("exit", 7, 10, 5),
            // Old dumps: no nonce, no identity.
            record("exit", 7, 0, 100),
            record("exit", 7, 0, 100),
            record("retired", 0, 0, 3),
            record("retired", 0, 0, 3),
        ];
        assert_eq!(counted_of(records, &[]), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_process_an_aggregate_absorbed_is_not_added_again() {
        let mut aggregate = record("retired", 0, 0, 100);
        aggregate.absorbed = vec![(131, 9, 1_764_000_000)];
        let dump = record("exit", 7, 9, 100);
        let stats_file = record("dead", 7, 9, 100);
        let other = record("exit", 8, 11, 1);
        assert_eq!(
            counted_of(vec![dump, aggregate, stats_file, other], &[]),
            vec![1, 3]
        );
    }
}
