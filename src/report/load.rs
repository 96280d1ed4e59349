//! Finding and reading dumps: the PATH arguments of `report` are dump files
//! or directories of them (only `*.dump`, not recursive, in name order).
//!
//! A file that is not a valid dump is an error, never skipped: a report that
//! silently left a process out would misstate every total. Inside a
//! directory only files named `*.dump` are considered, but a broken one is
//! an error too.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use fadvise_shim_core::dump::{parse_dump, Budget, Dump, FILE_SUFFIX};
use fadvise_shim_core::stats::Snapshot;

use crate::Failure;

/// Reads every dump named by `paths`, in argument order.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Dump>, Failure> {
    let mut files = Vec::new();
    for path in paths {
        let metadata =
            fs::metadata(path).map_err(|error| Failure(format!("{}: {error}", path.display())))?;
        if metadata.is_dir() {
            files.extend(dump_files_in(path)?);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
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
    files.iter().map(|file| read_dump(file)).collect()
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

/// The dumps of each executable (by file name) added up, with how many
/// processes each group holds; sorted by name.
pub fn merged_by_exe(dumps: &[Dump]) -> BTreeMap<&str, (usize, Snapshot)> {
    let mut groups: BTreeMap<&str, (usize, Snapshot)> = BTreeMap::new();
    for dump in dumps {
        let (processes, total) = groups.entry(dump.exe_name()).or_default();
        *processes += 1;
        total.merge(&dump.stats);
    }
    groups
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
