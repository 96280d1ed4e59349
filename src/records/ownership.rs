//! Whether this user's default directories were made by someone else:
//! `/dev/shm` and `/tmp` are writable by all, so another user can make
//! `/dev/shm/fadvise-shim/stats-UID` (or a directory above it) before the
//! first process does. The library then refuses it and keeps its statistics
//! in private memory; a reader that only said "nothing here" would hide the
//! attack, so readers name the owner and what is lost.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fadvise_shim_core::policy::default_dump_dir;

/// One line per default directory of this user that a user other than root
/// and us made (it, or a directory above it), whether or not it exists:
/// among `named`, or both when `named` is empty (a reader of the defaults).
pub fn squatted_defaults(named: &[PathBuf]) -> Vec<String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let stats = super::default_stats_dir_of(euid);
    let dumps = default_dump_dir(euid);
    [&stats, &dumps]
        .into_iter()
        .filter(|dir| named.is_empty() || named.contains(dir))
        .filter_map(|dir| {
            let lost = if *dir == stats {
                "this user's processes keep their live statistics in private memory instead, unseen here"
            } else if *dir == dumps {
                "this user's processes write no dumps there"
            } else {
                return None;
            };
            let (place, owner) = foreign_owner(dir, euid)?;
            let place = if place == *dir {
                dir.display().to_string()
            } else {
                format!("{}: {}", dir.display(), place.display())
            };
            Some(format!(
                "{place} belongs to {}, not to root or this user: {lost}",
                user_name(owner)
            ))
        })
        .collect()
}

/// The first component of `path` (symlinks not followed) owned by neither
/// root nor `euid`, with its owner.
fn foreign_owner(path: &Path, euid: u32) -> Option<(PathBuf, u32)> {
    path.ancestors()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find_map(|place| {
            let owner = std::fs::symlink_metadata(place).ok()?.uid();
            (owner != 0 && owner != euid).then(|| (place.to_path_buf(), owner))
        })
}

/// `user NAME (UID)` from `/etc/passwd` (no NSS: the CLI is static), or
/// `user UID`.
fn user_name(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid.to_string()).then(|| format!("user {name} ({uid})"))
        })
        .unwrap_or_else(|| format!("user {uid}"))
}
