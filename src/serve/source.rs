//! Where `serve` gets its numbers: one `ProcessStats` per process (or per
//! retained aggregate of processes), read fresh on every scrape by the one
//! reader (`crate::records`), each process once.
//!
//! The sources are stats directories and dump files, in each directory
//! given and in each of its immediate subdirectories (the DaemonSet layout,
//! one subdirectory per pod, named by the pod's UID, which wins over what a
//! file says about itself). The renderer only sees `ProcessStats`.
//!
//! Files here are written by the processes being watched, so they are
//! hostile input. This reader, unlike `report`'s (which must fail rather
//! than leave a process out of a report), skips a file it cannot read and
//! counts it, so one broken or planted file never blanks the exporter.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::records::process::ProcessStats;
use crate::records::{self, process::from_dump, Options};
use crate::Failure;

/// What one scrape read.
#[derive(Debug, Default)]
pub struct Collected {
    pub processes: Vec<ProcessStats>,
    /// Files that looked like stats but could not be read (broken,
    /// oversized, not regular): counted, not fatal.
    pub unreadable: u64,
}

/// Reads every process in `dirs` and its subdirectories. A directory that
/// does not exist is empty (the stats directory appears with the first
/// process); one that exists but cannot be listed is a failure.
///
/// Records with the same labels are added up as they are handed over, so
/// what a scrape keeps is proportional to the number of label sets.
pub fn collect(dirs: &[PathBuf]) -> Result<Collected, Failure> {
    // Said once, on the first scrape: the exporter's log names the owner.
    static ALARMED: std::sync::Once = std::sync::Once::new();
    ALARMED.call_once(|| {
        for alarm in records::squatted_defaults(dirs) {
            eprintln!("fadvise-shim: {alarm}");
        }
    });
    let mut groups = Groups::new();
    let options = Options {
        missing_is_empty: true,
        pod_subdirectories: true,
        ..Options::default()
    };
    let warnings = records::read_each(dirs, options, &mut |record| {
        fold(&mut groups, from_dump(&record));
    })?;
    Ok(Collected {
        processes: groups.into_values().collect(),
        unreadable: warnings.len() as u64,
    })
}

/// Live and dead processes of one identity stay apart: the renderer counts
/// the live ones.
type Groups = BTreeMap<(String, Option<String>, Option<String>, bool), ProcessStats>;

/// Adds one process (or aggregate) into its group.
fn fold(groups: &mut Groups, process: ProcessStats) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
