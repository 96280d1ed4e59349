//! A stats directory as the compaction algorithm sees it, for readers (the
//! CLI): the same rules as the preload library's own (`stats/compact.rs`) —
//! no symlink followed, a dead file taken by its lock, segments and the
//! summary written aside and renamed into place — with std I/O and
//! `fcntl`/`flock`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fadvise_shim_core::compaction::{
    is_statistics_file, names_in_log, DeadFile, StatsDirectory, DRAINING_LOG, EXIT_LOG,
    MAX_LOG_BYTES,
};
use fadvise_shim_core::stats_file::{FILE_BYTES, LIVENESS_BYTE};

/// A stats directory opened for compaction; the locks it takes are held
/// until it is dropped.
pub struct Directory<'a> {
    path: PathBuf,
    compaction_lock: Option<File>,
    /// Dead files taken, by name (their locks die with the descriptors).
    held: BTreeMap<String, File>,
    warnings: &'a mut Vec<String>,
}

impl<'a> Directory<'a> {
    pub fn open(path: &Path, warnings: &'a mut Vec<String>) -> Option<Directory<'a>> {
        path.is_dir().then(|| Directory {
            path: path.to_path_buf(),
            compaction_lock: None,
            held: BTreeMap::new(),
            warnings,
        })
    }

    fn open_file(&self, name: &str, write: bool, create: bool) -> Option<File> {
        if name.contains('/') {
            return None;
        }
        std::fs::OpenOptions::new()
            .read(true)
            .write(write)
            .create(create)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .mode(0o644)
            .open(self.path.join(name))
            .ok()
            .filter(|file| file.metadata().is_ok_and(|meta| meta.is_file()))
    }
}

impl StatsDirectory for Directory<'_> {
    fn lock_compaction(&mut self) -> bool {
        let Some(file) = self.open_file(".compaction.lock", true, true) else {
            return false;
        };
        // SAFETY: a valid descriptor.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        self.compaction_lock = Some(file);
        locked
    }

    fn list(&mut self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| entry.file_name().into_string().ok())
                    .filter(|name| is_statistics_file(name) && !name.ends_with(".dump"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn open_dead(&mut self, name: &str) -> Option<DeadFile> {
        let file = self.open_file(name, true, false)?;
        // Taking the writer's liveness lock proves it dead, and keeps other
        // compactors off the file.
        if !super::lock_byte(&file, libc::F_OFD_SETLK, LIVENESS_BYTE, false) {
            return None;
        }
        let meta = file.metadata().ok()?;
        // Only its data: a stats file is mostly holes.
        let length = meta.len().min(2 * FILE_BYTES as u64) as usize;
        let bytes = super::read_sparse(&file, length).ok()?;
        let inode = meta.ino();
        self.held.insert(name.to_owned(), file);
        Some(DeadFile {
            name: name.to_owned(),
            inode,
            bytes,
        })
    }

    fn take_exit_log(&mut self) -> Vec<String> {
        // Set aside unless a killed drain left one: that one is dealt with
        // first (a hard link fails where the name is taken, as
        // RENAME_NOREPLACE would).
        let (log, draining) = (self.path.join(EXIT_LOG), self.path.join(DRAINING_LOG));
        if std::fs::hard_link(&log, &draining).is_ok() {
            let _ = std::fs::remove_file(&log);
        }
        let mut bytes = Vec::new();
        if let Some(file) = self.open_file(DRAINING_LOG, false, false) {
            let _ = file.take(MAX_LOG_BYTES as u64).read_to_end(&mut bytes);
        }
        names_in_log(&bytes)
    }

    fn finish_exit_log(&mut self) {
        let _ = std::fs::remove_file(self.path.join(DRAINING_LOG));
    }

    fn log_exits(&mut self, names: &[String]) {
        let text: String = names.iter().map(|name| format!("{name}\n")).collect();
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .mode(0o644)
            .open(self.path.join(EXIT_LOG));
        if let Ok(mut log) = log {
            if log.metadata().is_ok_and(|meta| meta.is_file()) {
                let _ = log.write_all(text.as_bytes());
            }
        }
    }

    fn full_scan_due(&mut self, seconds: u64) -> bool {
        // The lock file's time says when the last full scan was.
        let Some(lock) = &self.compaction_lock else {
            return false;
        };
        let now = std::time::SystemTime::now();
        let last = lock.metadata().and_then(|meta| meta.modified());
        let due = last.map_or(true, |last| {
            now.duration_since(last).unwrap_or_default().as_secs() >= seconds
        });
        if due {
            let _ = lock.set_modified(now);
        }
        due
    }

    /// A segment, the summary or an old aggregate: a regular file of ours
    /// (or root's) of a sane size, or a warning naming it.
    fn read(&mut self, name: &str) -> Option<Vec<u8>> {
        if name.contains('/') {
            return None;
        }
        let path = self.path.join(name);
        let mut bytes = Vec::new();
        let read = super::open_regular(&path).and_then(|file| {
            file.take(16 << 20)
                .read_to_end(&mut bytes)
                .map_err(|error| error.to_string())
        });
        match read {
            Ok(_) => Some(bytes),
            // Merged and removed since the listing.
            Err(_) if std::fs::symlink_metadata(&path).is_err() => None,
            Err(problem) => {
                self.warn(name, &problem);
                None
            }
        }
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> bool {
        let temporary = self
            .path
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&temporary);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&temporary)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| std::fs::rename(&temporary, self.path.join(name)));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written.is_ok()
    }

    fn unique_stem(&mut self) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!(
            "{:x}{:08x}-{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        )
    }

    fn remove(&mut self, name: &str) {
        let _ = std::fs::remove_file(self.path.join(name));
        self.held.remove(name);
    }

    fn warn(&mut self, name: &str, problem: &str) {
        self.warnings.push(format!(
            "{}: {problem}; skipped",
            self.path.join(name).display()
        ));
    }
}
