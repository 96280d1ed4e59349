//! Where `serve` gets its numbers: one `ProcessStats` per process (or per
//! retained aggregate of processes), read fresh on every scrape.
//!
//! The sources are stats directories (live processes, dead ones not yet
//! retired, retained aggregates: `crate::stats_dir`, which retires what is
//! dead before reading) and dump files, in each directory given and in each
//! of its immediate subdirectories (the DaemonSet layout, one subdirectory
//! per pod, named by the pod's UID). The renderer only sees
//! `ProcessStats`.
//!
//! Files here are written by the processes being watched, so they are
//! hostile input. This reader, unlike `report`'s (which must fail rather
//! than leave a process out of a report), skips a file it cannot read and
//! counts it, so one broken or planted file never blanks the exporter:
//! files are opened without following symlinks or blocking (a FIFO), must
//! be regular and at most `MAX_FILE_BYTES`. A pod UID comes from the
//! directory a file lies in when that directory is named by one, over what
//! the file says about itself.

use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use fadvise_shim_core::dump::{parse_dump, Dump, FILE_SUFFIX};
use fadvise_shim_core::sites::{Module, SiteKey};
use fadvise_shim_core::stats::Snapshot;

use crate::Failure;

/// The statistics of one process, or of several with the same identity
/// folded together (dead processes' retained aggregate).
#[derive(Clone, Debug, Default)]
pub struct ProcessStats {
    /// The executable's file name.
    pub exe: String,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
    /// Whether this is a process running now (a live stats file).
    pub live: bool,
    /// How many processes these counts come from.
    pub processes: u64,
    pub stats: Snapshot,
}

/// What one scrape read.
#[derive(Debug, Default)]
pub struct Collected {
    pub processes: Vec<ProcessStats>,
    /// Files that looked like stats but could not be read (broken,
    /// oversized, not regular): counted, not fatal.
    pub unreadable: u64,
}

/// A dump is at most a few hundred KiB (8 calls of 4,608 counters); a
/// bigger file is not one, and is not read into memory.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// Reads every process in `dirs` and its subdirectories. A directory that
/// does not exist is empty (the stats directory appears with the first
/// process); one that exists but cannot be listed is a failure.
///
/// Dumps with the same identity are added up as they are read, so memory
/// stays proportional to the number of identities, not of processes (each
/// `Snapshot` is about 300 KiB).
pub fn collect(dirs: &[PathBuf]) -> Result<Collected, Failure> {
    let mut groups = Groups::new();
    let mut unreadable = 0;
    for dir in dirs {
        for (dir, pod_from_dir) in dirs_under(dir)? {
            let warnings = crate::stats_dir::read_each(&dir, true, &mut |record| {
                fold(&mut groups, from_dump(&record), pod_from_dir.clone());
            });
            unreadable += warnings.len() as u64;
        }
        for (file, pod_from_dir) in dump_files_under(dir)? {
            match read_process(&file) {
                Some(process) => fold(&mut groups, process, pod_from_dir),
                None => unreadable += 1,
            }
        }
    }
    Ok(Collected {
        processes: groups.into_values().collect(),
        unreadable,
    })
}

/// Live and dead processes of one identity stay apart: the renderer counts
/// the live ones.
type Groups = BTreeMap<(String, Option<String>, Option<String>, bool), ProcessStats>;

/// Adds one process (or aggregate) into its group; the pod uid of the
/// directory it lies in, if any, wins over what it says.
fn fold(groups: &mut Groups, mut process: ProcessStats, pod_from_dir: Option<String>) {
    if pod_from_dir.is_some() {
        process.pod_uid = pod_from_dir;
    }
    let key = (
        process.exe.clone(),
        process.container_id.clone(),
        process.pod_uid.clone(),
        process.live,
    );
    match groups.get_mut(&key) {
        Some(group) => {
            group.processes += process.processes;
            group.stats.merge(&process.stats);
        }
        None => {
            groups.insert(key, process);
        }
    }
}

/// What a dump, a stats file or an aggregate says, as a `ProcessStats`.
pub fn from_dump(dump: &Dump) -> ProcessStats {
    let known = |value: &str| (!value.is_empty()).then(|| value.to_string());
    ProcessStats {
        exe: dump.exe_name().to_string(),
        container_id: known(&dump.origin.container_id),
        pod_uid: known(&dump.origin.pod_uid),
        live: dump.reason == "live",
        processes: dump.processes,
        stats: by_module(&dump.stats),
    }
}

/// `stats` with its sites added up per call and calling module (by file
/// name): what the exporter serves of them, and all a group keeps, so its
/// memory does not grow with the number of sites.
fn by_module(stats: &Snapshot) -> Snapshot {
    let mut collapsed = Snapshot {
        calls: stats.calls.clone(),
        sites: Default::default(),
    };
    for (key, site) in &stats.sites.sites {
        let Some(module) = &key.module else { continue };
        let key = SiteKey {
            call: key.call,
            module: Some(Module {
                path: module.file_name().to_owned(),
                build_id: String::new(),
            }),
            address: 0,
        };
        collapsed.sites.add(key, site);
    }
    collapsed
}

/// `dir` and its immediate subdirectories, each with the pod UID its name
/// gives (for subdirectories named by one).
fn dirs_under(dir: &Path) -> Result<Vec<(PathBuf, Option<String>)>, Failure> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Failure(format!("{}: {error}", dir.display()))),
    };
    let mut dirs = vec![(dir.to_path_buf(), None)];
    for entry in entries.flatten() {
        // `file_type` does not follow symlinks: a link to a directory
        // elsewhere is not walked into.
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pod = is_uuid(&name).then_some(name);
            dirs.push((entry.path(), pod));
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// `*.dump` entries of `dir` and of its subdirectories, each with the pod
/// UID its subdirectory's name gives, if it is one. A vanished entry is
/// skipped: processes come and go while we list.
fn dump_files_under(dir: &Path) -> Result<Vec<(PathBuf, Option<String>)>, Failure> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Failure(format!("{}: {error}", dir.display()))),
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // `file_type` does not follow symlinks: a link to a directory
        // elsewhere is not walked into.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if name.ends_with(FILE_SUFFIX) {
            files.push((entry.path(), None));
        } else if kind.is_dir() {
            let pod = is_uuid(&name).then_some(name);
            let Ok(inner) = fs::read_dir(entry.path()) else {
                continue;
            };
            for inner in inner.flatten() {
                if inner.file_name().to_string_lossy().ends_with(FILE_SUFFIX) {
                    files.push((inner.path(), pod.clone()));
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// One dump file, or `None` if it is not a readable regular dump.
fn read_process(file: &Path) -> Option<ProcessStats> {
    let mut opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .ok()?;
    let metadata = opened.metadata().ok()?;
    if !metadata.is_file() || metadata.len() > MAX_FILE_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // `take`: a file that grows after the check is still bounded.
    (&mut opened)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return None;
    }
    let dump = parse_dump(&String::from_utf8_lossy(&bytes)).ok()?;
    Some(from_dump(&dump))
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

    #[test]
    fn a_missing_directory_is_empty_and_junk_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let none = collect(&[dir.path().join("absent")]).unwrap();
        assert_eq!((none.processes.len(), none.unreadable), (0, 0));
        fs::write(dir.path().join("junk.dump"), "not a dump").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link.dump")).unwrap();
        let junk = collect(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!((junk.processes.len(), junk.unreadable), (0, 2));
    }
}
