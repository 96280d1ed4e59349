//! The one reader of statistics, for `report`, `serve` and `top`: PATHs
//! (dump files, stats files, retained aggregates, directories of them) in,
//! records out — each process counted once, whatever mix of directories
//! holds it and in whatever order its records arrived (`dedup`).
//!
//! A directory is read as a stats directory (`crate::stats_dir`: dead files
//! retired first, hostile files skipped with a warning) and as a dump
//! directory (its `*.dump` files, opened without following symlinks or
//! blocking, regular and at most `MAX_DUMP_BYTES`); with
//! `pod_subdirectories`, its immediate subdirectories too (the DaemonSet
//! layout, one per pod named by the pod's UID, which wins over what a
//! record says). A directory named twice, and a file named beside its own
//! directory, are read once.
//!
//! A file that cannot be read is an error with `strict` (a report that left
//! a process out would misstate every total), else one warning (an exporter
//! must not go blank because of one planted file).

mod dedup;
mod group;
mod held;
mod ownership;
pub mod process;

use std::collections::BTreeSet;
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fadvise_shim_core::dump::{parse_dump, Dump, FILE_SUFFIX};
use fadvise_shim_core::policy::{
    default_dump_dir, default_stats_dir, DUMP_DIR_ENV, RUNTIME_DIR_ENV, STATS_DIR_ENV,
};
use fadvise_shim_core::stats_file::FILE_SUFFIX as STATS_SUFFIX;

use crate::Failure;
pub use group::{group_key, GroupKey};
use held::Held;
pub use ownership::squatted_defaults;

/// A dump is at most a few hundred KiB (8 calls of 4,608 counters, sites);
/// a bigger file is not one, and is not read into memory.
const MAX_DUMP_BYTES: u64 = 8 << 20;

/// How the paths are read.
#[derive(Clone, Copy, Default)]
pub struct Options {
    /// A file that cannot be read fails the whole read.
    pub strict: bool,
    /// A path that does not exist is empty (the stats directory appears
    /// with the first process), not an error.
    pub missing_is_empty: bool,
    /// Also read each directory's immediate subdirectories.
    pub pod_subdirectories: bool,
}

/// This user's default directories that exist: the stats directory and the
/// dump directory (a process in both is counted once).
pub fn default_paths() -> Vec<PathBuf> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let stats = std::env::var_os(STATS_DIR_ENV)
        .filter(|dir| dir != "none" && !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| default_stats_dir_of(euid));
    let dumps = std::env::var_os(DUMP_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| default_dump_dir(euid));
    let mut paths: Vec<PathBuf> = [stats, dumps]
        .into_iter()
        .filter(|dir| dir.is_dir())
        .collect();
    paths.dedup();
    paths
}

/// The default stats directory of user `euid` as this environment gives it
/// (`$XDG_RUNTIME_DIR`, as the library reads it).
pub fn default_stats_dir_of(euid: u32) -> PathBuf {
    let runtime_dir = std::env::var_os(RUNTIME_DIR_ENV).map(PathBuf::from);
    default_stats_dir(euid, runtime_dir.as_deref())
}

/// Every record that counts, with one line per file skipped.
pub fn read(paths: &[PathBuf], options: Options) -> Result<(Vec<Dump>, Vec<String>), Failure> {
    let mut records = Vec::new();
    let warnings = read_each(paths, options, &mut |record| records.push(record))?;
    Ok((records, warnings))
}

/// Hands every record that counts to `visit`, one at a time (so that a
/// caller that adds them up holds only its sums); returns one line per file
/// skipped.
pub fn read_each(
    paths: &[PathBuf],
    options: Options,
    visit: &mut dyn FnMut(Dump),
) -> Result<Vec<String>, Failure> {
    let (dirs, files) = places(paths, options)?;
    let stats_dirs: BTreeSet<(u64, u64)> = dirs.iter().map(|dir| dir.id).collect();
    let mut warnings = Vec::new();
    let mut held = Vec::new();
    let mut keep = |mut record: Dump, pod: &Option<String>| {
        if let Some(pod) = pod {
            record.origin.pod_uid = pod.clone();
        }
        held.push(Held::new(record));
    };
    for dir in &dirs {
        // What a stats directory skips (files its writers, or anyone
        // sharing it, left broken) is said, never fatal.
        warnings.extend(crate::stats_dir::read_each(
            &dir.path,
            true,
            &mut |record| {
                keep(record, &dir.pod);
            },
        ));
        for file in dump_files_in(&dir.path)? {
            match read_dump(&file, false) {
                Ok(record) => keep(record, &dir.pod),
                Err(problem) if options.strict => return Err(problem),
                Err(Failure(problem)) => warnings.push(format!("{problem}; skipped")),
            }
        }
    }
    for file in &files {
        let read = if file.to_string_lossy().ends_with(STATS_SUFFIX) {
            crate::stats_dir::read_one(file)
        } else {
            read_dump(file, true).map(Some)
        };
        match read {
            Ok(record) => record.into_iter().for_each(|record| keep(record, &None)),
            Err(problem) if options.strict => return Err(problem),
            Err(Failure(problem)) => warnings.push(format!("{problem}; skipped")),
        }
    }
    let counted = dedup::counted(&held, &stats_dirs);
    let mut held: Vec<Option<Held>> = held.into_iter().map(Some).collect();
    for index in counted {
        if let Some(record) = held[index].take() {
            visit(record.into_record());
        }
    }
    Ok(warnings)
}

/// A directory to read, by its (device, inode), with the pod its name
/// gives it.
struct Dir {
    path: PathBuf,
    id: (u64, u64),
    pod: Option<String>,
}

/// The directories and files `paths` name, each once; a file in one of the
/// directories is read with it.
fn places(paths: &[PathBuf], options: Options) -> Result<(Vec<Dir>, Vec<PathBuf>), Failure> {
    let failure =
        |path: &Path, error: std::io::Error| Failure(format!("{}: {error}", path.display()));
    let mut dirs: Vec<Dir> = Vec::new();
    let mut files = Vec::new();
    let add_dir = |dirs: &mut Vec<Dir>, path: PathBuf, meta: &fs::Metadata, pod| {
        let id = (meta.dev(), meta.ino());
        if !dirs.iter().any(|dir| dir.id == id) {
            dirs.push(Dir { path, id, pod });
        }
    };
    for path in paths {
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(error) if options.missing_is_empty && error.kind() == ErrorKind::NotFound => {
                continue
            }
            Err(error) => return Err(failure(path, error)),
        };
        if !meta.is_dir() {
            files.push((path.clone(), meta));
            continue;
        }
        add_dir(&mut dirs, path.clone(), &meta, None);
        if options.pod_subdirectories {
            let mut inner: Vec<_> = fs::read_dir(path)
                .map_err(|error| failure(path, error))?
                .flatten()
                // `file_type` does not follow symlinks: a link to a
                // directory elsewhere is not walked into.
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
                .collect();
            inner.sort_by_key(|entry| entry.file_name());
            for entry in inner {
                let Ok(meta) = entry.metadata() else { continue };
                let name = entry.file_name().to_string_lossy().into_owned();
                let pod = is_uuid(&name).then_some(name);
                add_dir(&mut dirs, entry.path(), &meta, pod);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let files = files
        .into_iter()
        .filter(|(path, meta)| {
            let in_a_dir = path
                .parent()
                .map(|parent| {
                    if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    }
                })
                .and_then(|parent| fs::metadata(parent).ok())
                .is_some_and(|parent| {
                    dirs.iter()
                        .any(|dir| dir.id == (parent.dev(), parent.ino()))
                });
            !in_a_dir && seen.insert((meta.dev(), meta.ino()))
        })
        .map(|(path, _)| path)
        .collect();
    Ok((dirs, files))
}

/// The `*.dump` entries of `dir`, sorted by name (a vanished one is
/// skipped: processes come and go while we list).
fn dump_files_in(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let entries =
        fs::read_dir(dir).map_err(|error| Failure(format!("{}: {error}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(FILE_SUFFIX))
        .map(|entry| entry.path())
        .collect();
    files.sort();
    Ok(files)
}

/// Reads one dump (a symlink only if `follow`, as for a file named on the
/// command line); errors read `FILE: line N: message`.
pub fn read_dump(file: &Path, follow: bool) -> Result<Dump, Failure> {
    let failure = |problem: String| Failure(format!("{}: {problem}", file.display()));
    let flags = if follow { 0 } else { libc::O_NOFOLLOW } | libc::O_NONBLOCK;
    let mut opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(file)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => failure("a symlink".into()),
            _ => failure(error.to_string()),
        })?;
    let meta = opened
        .metadata()
        .map_err(|error| failure(error.to_string()))?;
    if !meta.is_file() {
        return Err(failure("not a regular file".into()));
    }
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_DUMP_BYTES) as usize);
    // `take`: a file that grows after the check is still bounded.
    (&mut opened)
        .take(MAX_DUMP_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| failure(error.to_string()))?;
    if bytes.len() as u64 > MAX_DUMP_BYTES {
        return Err(failure(format!(
            "larger than {MAX_DUMP_BYTES} bytes: not a dump"
        )));
    }
    parse_dump(&String::from_utf8_lossy(&bytes)).map_err(|error| failure(error.to_string()))
}

/// Whether `name` is a Kubernetes pod UID: an RFC 4122 UUID in lowercase
/// hex, `8-4-4-4-12`.
pub fn is_uuid(name: &str) -> bool {
    let groups: Vec<&str> = name.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| {
            group.len() == length
                && group
                    .bytes()
                    .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_uids_are_lowercase_uuids_only() {
        assert!(is_uuid("0f3c5a2e-8b1d-4c6e-9a7f-112233445566"));
        for not in [
            "",
            "0F3C5A2E-8B1D-4C6E-9A7F-112233445566",
            "0f3c5a2e-8b1d-4c6e-9a7f-11223344556",
            "0f3c5a2e8b1d4c6e9a7f112233445566",
            "../../etc",
            "0f3c5a2e-8b1d-4c6e-9a7f-11223344556g",
        ] {
            assert!(!is_uuid(not), "{not}");
        }
    }
}
