//! A stats directory as the compaction algorithm sees it, for readers (the
//! CLI): the same rules as the preload library's own (`stats/compact.rs`) —
//! no symlink followed, a dead file taken by its lock, aggregates replaced by
//! rename — with std I/O and `fcntl`/`flock`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fadvise_shim_core::compaction::{is_statistics_file, DeadFile, StatsDirectory};
use fadvise_shim_core::stats_file::LIVENESS_BYTE;

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
        let mut file = self.open_file(name, true, false)?;
        // Taking the writer's liveness lock proves it dead, and keeps other
        // compactors off the file.
        if !super::lock_byte(&file, libc::F_OFD_SETLK, LIVENESS_BYTE, false) {
            return None;
        }
        let inode = file.metadata().ok()?.ino();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        self.held.insert(name.to_owned(), file);
        Some(DeadFile {
            name: name.to_owned(),
            inode,
            bytes,
        })
    }

    fn inode(&mut self, name: &str) -> Option<u64> {
        std::fs::symlink_metadata(self.path.join(name))
            .ok()
            .map(|meta| meta.ino())
    }

    fn read(&mut self, name: &str) -> Option<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_file(name, false, false)?
            .take(4 << 20)
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
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
