//! Finds a stripped module's separate debug file, where GDB looks for it:
//! by GNU build id (`<debug dir>/.build-id/ab/cdef….debug`), then by
//! `.gnu_debuglink` name (next to the module, in its `.debug/` subdirectory,
//! and under `<debug dir>/<the module's directory>/`).
//!
//! A candidate counts only if it is the module's: its build id equals the
//! one wanted, or, when either has none, the CRC-32 of its contents equals
//! the one the debuglink records. Debian's `-dbgsym` packages install the
//! build-id layout under `/usr/lib/debug`.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;

pub(super) use fadvise_shim_core::text::hex_encode as hex;
use std::path::{Path, PathBuf};

use super::Options;
use crate::elf::{read_symbols, ElfSymbols};

/// The debug file of the build `build_id`, from the build-id layout.
pub(super) fn by_build_id(options: &Options, build_id: &[u8]) -> Option<ElfSymbols> {
    // Two hex digits name the directory, the rest the file.
    let (first, rest) = build_id
        .split_first()
        .filter(|(_, rest)| !rest.is_empty())?;
    let relative = Path::new(".build-id")
        .join(format!("{first:02x}"))
        .join(format!("{}.debug", hex(rest)));
    debug_dirs(options)
        .into_iter()
        .filter_map(|dir| read_symbols(&dir.join(&relative)).ok())
        .find(|debug| debug.build_id.as_deref() == Some(build_id))
}

/// The debug file that `.gnu_debuglink` (`link`: its name and CRC-32) names
/// for the module the process saw at `seen` and that was read at `opened`.
pub(super) fn by_debuglink(
    options: &Options,
    seen: &Path,
    opened: &Path,
    link: &(String, u32),
    build_id: Option<&[u8]>,
) -> Option<ElfSymbols> {
    let (name, crc) = link;
    // A bare file name only: a debuglink is not allowed to point elsewhere.
    if name.is_empty() || name.contains('/') {
        return None;
    }
    let opened_dir = opened.parent()?;
    let seen_dir = seen.parent()?;
    let mut candidates = vec![opened_dir.join(name), opened_dir.join(".debug").join(name)];
    for dir in debug_dirs(options) {
        candidates.push(dir.join(relative(seen_dir)).join(name));
    }
    candidates
        .into_iter()
        .filter(|candidate| candidate != opened)
        .find_map(|candidate| {
            let debug = read_symbols(&candidate).ok()?;
            let same = match (build_id, debug.build_id.as_deref()) {
                (Some(wanted), Some(found)) => wanted == found,
                _ => crc32(&candidate).ok() == Some(*crc),
            };
            same.then_some(debug)
        })
}

/// `path` inside the process's root (`Options::root`) when there is one,
/// then `path` itself.
pub(super) fn rooted(options: &Options, path: &Path) -> Vec<PathBuf> {
    let inside = options.root.iter().map(|root| root.join(relative(path)));
    inside.chain([path.to_path_buf()]).collect()
}

fn debug_dirs(options: &Options) -> Vec<PathBuf> {
    options
        .debug_dirs
        .iter()
        .flat_map(|dir| rooted(options, dir))
        .collect()
}

/// `path` without its leading `/`, to be joined under another directory.
fn relative(path: &Path) -> &Path {
    path.strip_prefix("/").unwrap_or(path)
}

/// The CRC-32 (IEEE 802.3, as zlib's `crc32`) of a file's contents: what
/// `objcopy --add-gnu-debuglink` records.
fn crc32(path: &Path) -> io::Result<u32> {
    // A debug link names a file in the module's own directory, which a
    // process in a container controls: never wait on a FIFO there.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut buffer = vec![0; 1 << 16];
    let mut crc = !0u32;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            return Ok(!crc);
        }
        for &byte in &buffer[..read] {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("check");
        std::fs::write(&path, b"123456789").unwrap();
        assert_eq!(crc32(&path).unwrap(), 0xcbf4_3926);
    }

    #[test]
    fn the_root_is_tried_before_the_plain_path() {
        let options = Options {
            root: Some("/proc/42/root".into()),
            debug_dirs: vec!["/usr/lib/debug".into()],
        };
        assert_eq!(
            rooted(&options, Path::new("/usr/lib/libfoo.so")),
            [
                PathBuf::from("/proc/42/root/usr/lib/libfoo.so"),
                PathBuf::from("/usr/lib/libfoo.so")
            ]
        );
        assert_eq!(
            debug_dirs(&options),
            [
                PathBuf::from("/proc/42/root/usr/lib/debug"),
                PathBuf::from("/usr/lib/debug")
            ]
        );
    }

    #[test]
    fn a_build_id_too_short_for_the_layout_finds_nothing() {
        let options = Options::default();
        assert!(by_build_id(&options, &[]).is_none());
        assert!(by_build_id(&options, &[0xab]).is_none());
    }
}
