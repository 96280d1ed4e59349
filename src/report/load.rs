//! Finding and reading what reports merge: the PATH arguments of `report`
//! are dump files, stats files, retained aggregates, or directories of them
//! (dump directories and stats directories, not recursive, in name order);
//! no PATH means this user's default stats and dump directories.
//!
//! A dump named on the command line that is not a valid dump is an error: a
//! report that silently left a process out would misstate every total. In a
//! stats directory, which processes write at any time and anyone sharing it
//! could tamper with, a bad file is skipped with one warning naming it
//! (`stats_dir`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use fadvise_shim_core::dump::{parse_dump, Budget, Dump, FILE_SUFFIX};
use fadvise_shim_core::policy::{default_dump_dir, default_stats_dir, DUMP_DIR_ENV, STATS_DIR_ENV};
use fadvise_shim_core::stats::Snapshot;
use fadvise_shim_core::stats_file::FILE_SUFFIX as STATS_SUFFIX;

use crate::cli::GroupBy;
use crate::Failure;

/// This user's default directory: the live statistics, which hold every
/// process that made a call (dumps of the same processes would count them
/// twice); the dump directory where there are no live statistics.
pub fn default_paths() -> Vec<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let stats = std::env::var_os(STATS_DIR_ENV)
        .filter(|dir| dir != "none" && !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| default_stats_dir(euid));
    let dumps = std::env::var_os(DUMP_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| default_dump_dir(euid));
    [stats, dumps]
        .into_iter()
        .find(|dir| dir.is_dir())
        .into_iter()
        .collect()
}

/// Reads everything named by `paths` (or the defaults), in argument order;
/// warnings about skipped stats files go to stderr.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Dump>, Failure> {
    let defaults;
    let paths = if paths.is_empty() {
        defaults = default_paths();
        if defaults.is_empty() {
            return Err(Failure(
                "no statistics: this user's stats and dump directories do not exist yet".into(),
            ));
        }
        &defaults[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    let mut records = Vec::new();
    for path in paths {
        let metadata =
            fs::metadata(path).map_err(|error| Failure(format!("{}: {error}", path.display())))?;
        if metadata.is_dir() {
            files.extend(dump_files_in(path)?);
            let contents = crate::stats_dir::read(path, true);
            for warning in &contents.warnings {
                eprintln!("fadvise-shim: {warning}");
            }
            records.extend(contents.records);
        } else if path.to_string_lossy().ends_with(STATS_SUFFIX) {
            records.extend(crate::stats_dir::read_one(path)?);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() && records.is_empty() {
        let names: Vec<String> = paths
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        return Err(Failure(format!(
            "no dumps (*{FILE_SUFFIX} files) in {}",
            names.join(", ")
        )));
    }
    // A dump named twice (`report DIR DIR/x.dump`) is still one process.
    let mut seen = BTreeSet::new();
    files.retain(|file| seen.insert(fs::canonicalize(file).unwrap_or_else(|_| file.clone())));
    let mut dumps = files
        .iter()
        .map(|file| read_dump(file))
        .collect::<Result<Vec<_>, _>>()?;
    dumps.extend(records);
    Ok(dumps)
}

/// What defines a group of `--by`: identity fields and their values.
pub type GroupKey = Vec<(&'static str, String)>;

/// The group a record belongs to.
pub fn group_key(dump: &Dump, by: GroupBy) -> GroupKey {
    let origin = &dump.origin;
    match by {
        GroupBy::Call => vec![],
        GroupBy::Exe => vec![("exe", dump.exe_name().to_string())],
        GroupBy::Process => vec![
            ("exe", dump.exe_name().to_string()),
            ("pid", origin.pid.to_string()),
        ],
        GroupBy::Container => vec![("container_id", origin.container_id.clone())],
        GroupBy::Pod => vec![("pod_uid", origin.pod_uid.clone())],
        // Callers are within records, not records: see `callers`.
        GroupBy::Caller => vec![],
    }
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

/// The `*.dump` files directly inside `dir`, sorted by name.
fn dump_files_in(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries =
        fs::read_dir(dir).map_err(|error| Failure(format!("{}: {error}", dir.display())))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| Failure(format!("{}: {error}", dir.display())))?;
        let is_dump = entry.file_name().to_string_lossy().ends_with(FILE_SUFFIX);
        // `metadata` follows symlinks, so a link to a dump counts as a dump.
        if is_dump && entry.path().metadata().is_ok_and(|meta| meta.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one dump; errors read `FILE: line N: message`.
pub fn read_dump(file: &Path) -> Result<Dump, Failure> {
    let bytes = fs::read(file).map_err(|error| Failure(format!("{}: {error}", file.display())))?;
    parse_dump(&String::from_utf8_lossy(&bytes))
        .map_err(|error| Failure(format!("{}: {error}", file.display())))
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
