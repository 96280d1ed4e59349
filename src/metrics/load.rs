//! What reports merge: the PATH arguments of `report` (dump files, stats
//! files, retained aggregates, or directories of them, not recursive), or
//! the dump directory of `run`, read by the one reader (`crate::records`),
//! each process once; no PATH means this user's default stats and dump
//! directories. Then the records added up, in total or by group.
//!
//! A dump that is not a valid dump is an error: a report that silently left
//! a process out would misstate every total. In a stats directory, which
//! processes write at any time and anyone sharing it could tamper with, a
//! bad file is skipped with one warning naming it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fadvise_shim_core::dump::{Budget, Dump};
use fadvise_shim_core::stats::Snapshot;

use crate::cli::GroupBy;
pub use crate::records::GroupKey;
use crate::records::{self, group_key, Options};
use crate::Failure;

/// Reads everything named by `paths` (or the defaults); warnings about
/// skipped stats files go to stderr.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Dump>, Failure> {
    for alarm in records::squatted_defaults(paths) {
        eprintln!("fadvise-shim: {alarm}");
    }
    let defaults;
    let paths = if paths.is_empty() {
        defaults = records::default_paths();
        if defaults.is_empty() {
            return Err(Failure(
                "no statistics: this user's stats and dump directories do not exist yet".into(),
            ));
        }
        &defaults[..]
    } else {
        paths
    };
    let options = Options {
        strict: true,
        ..Options::default()
    };
    let (dumps, warnings) = records::read(paths, options)?;
    for warning in &warnings {
        eprintln!("fadvise-shim: {warning}");
    }
    if dumps.is_empty() {
        let names: Vec<String> = paths
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        return Err(Failure(format!(
            "no statistics (stats files, retained aggregates or dumps) in {}",
            names.join(", ")
        )));
    }
    Ok(dumps)
}

/// Records added up by group, with how many processes each holds.
pub fn merged_by(dumps: &[Dump], by: GroupBy) -> BTreeMap<GroupKey, (u64, Snapshot)> {
    let mut groups: BTreeMap<GroupKey, (u64, Snapshot)> = BTreeMap::new();
    for dump in dumps {
        let (processes, total) = groups.entry(group_key(dump, by)).or_default();
        *processes += dump.processes;
        total.merge(&dump.stats);
    }
    groups
}

/// How many processes `dumps` hold (an aggregate holds many).
pub fn process_count(dumps: &[Dump]) -> u64 {
    dumps.iter().map(|dump| dump.processes).sum()
}

/// Every dump's statistics added up.
pub fn merged(dumps: &[Dump]) -> Snapshot {
    let mut total = Snapshot::default();
    for dump in dumps {
        total.merge(&dump.stats);
    }
    total
}

/// The host-scope budgets the dumps drew from, one per name. Their counts
/// are the host's (shared by every process), so dumps are not added up: the
/// most advanced count of each budget is the latest.
pub fn host_budgets(dumps: &[Dump]) -> Vec<Budget> {
    let mut budgets: BTreeMap<&str, &Budget> = BTreeMap::new();
    for budget in dumps.iter().flat_map(|dump| &dump.budgets) {
        let latest = budgets.entry(&budget.name).or_insert(budget);
        if budget.admitted + budget.refused > latest.admitted + latest.refused {
            *latest = budget;
        }
    }
    budgets.into_values().cloned().collect()
}
