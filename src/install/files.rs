//! Writing into an image's root atomically: each file is written in full to
//! a temporary file beside it, given its mode, synced, then renamed over the
//! old one. A process starting meanwhile sees either the old file or the new
//! one, never half of either; and renaming (rather than writing in place)
//! also replaces a program that is running, such as this very CLI.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What writing a file did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Replaced,
    /// The file already held exactly these bytes: not touched.
    Unchanged,
}

/// Makes `path` hold `bytes` with `mode`, atomically; leaves it alone (not
/// even its modification time) if it already holds them. A replaced file
/// keeps its owner and group.
pub fn write_if_changed(path: &Path, bytes: &[u8], mode: u32) -> io::Result<Written> {
    let existing = match std::fs::metadata(path) {
        Ok(metadata) => Some(metadata),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    if let Some(metadata) = &existing {
        let same_mode = metadata.permissions().mode() & 0o7777 == mode;
        if same_mode && std::fs::read(path)? == bytes {
            return Ok(Written::Unchanged);
        }
    }
    let owner = existing
        .as_ref()
        .map(|metadata| (metadata.uid(), metadata.gid()));
    write_atomically(path, bytes, mode, owner)?;
    Ok(if existing.is_some() {
        Written::Replaced
    } else {
        Written::Created
    })
}

fn write_atomically(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "a file path must end in a name",
        )
    })?;
    let temporary = path.with_file_name(format!(
        ".{}.fadvise-shim-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(bytes)?;
        // The umask may have taken bits away from `mode`.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid))?;
        }
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        sync_directory(path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// Makes a rename or removal in `path`'s directory durable.
pub fn sync_directory(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(directory) => File::open(directory)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_replaces_and_leaves_identical_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ld.so.preload");
        assert_eq!(
            write_if_changed(&path, b"a\n", 0o644).unwrap(),
            Written::Created
        );
        let before = std::fs::metadata(&path).unwrap();
        assert_eq!(
            write_if_changed(&path, b"a\n", 0o644).unwrap(),
            Written::Unchanged
        );
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), before.ino());
        assert_eq!(
            write_if_changed(&path, b"b\n", 0o600).unwrap(),
            Written::Replaced
        );
        let after = std::fs::metadata(&path).unwrap();
        assert_eq!(after.permissions().mode() & 0o7777, 0o600);
        assert_ne!(
            after.ino(),
            before.ino(),
            "replaced by rename, not rewritten"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"b\n");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
