//! The path of the file behind an intercepted call, for `path` rules, read
//! from the kernel's record of the calling process at the time of the call:
//! `/proc/PID/fd/N` for a descriptor, `/proc/PID/maps` for `msync`'s
//! mapping (the maps reader also serves `modules.rs`). Only calls that meet
//! a `path` rule pay for the lookup.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::request::File;

/// The path of the file behind a call in process `tgid`, for `path` rules.
pub fn file_path(tgid: u32, file: File) -> Option<PathBuf> {
    let path = match file {
        File::None => return None,
        File::Fd(fd) => std::fs::read_link(format!("/proc/{tgid}/fd/{fd}")).ok()?,
        File::Mapping(address) => mapping_path(tgid, address)?,
    };
    as_file_path(path.as_os_str().as_bytes())
}

/// A name the kernel gives a file (a link in `/proc/PID/fd`, a mapping's
/// name) as its path, without the ` (deleted)` of a removed file; `None`
/// for names that are not paths (`socket:[…]`, `[heap]`, anonymous memory).
pub fn as_file_path(bytes: &[u8]) -> Option<PathBuf> {
    let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
    bytes
        .starts_with(b"/")
        .then(|| PathBuf::from(OsStr::from_bytes(bytes)))
}

/// The file mapped at `address` in process `tgid`, from `/proc/PID/maps`.
fn mapping_path(tgid: u32, address: usize) -> Option<PathBuf> {
    let maps = std::fs::read(format!("/proc/{tgid}/maps")).ok()?;
    let path = mappings(&maps)
        .find(|mapping| mapping.range.contains(&(address as u64)))
        .map(|mapping| PathBuf::from(OsStr::from_bytes(mapping.name)));
    path
}

/// One line of `/proc/PID/maps`.
pub struct Mapping<'a> {
    pub range: std::ops::Range<u64>,
    /// What is mapped: a file's path (` (deleted)` and all), `[heap]`,
    /// `[vdso]`..., or empty for anonymous memory.
    pub name: &'a [u8],
}

/// The lines of a `/proc/PID/maps` text that parse.
pub fn mappings(maps: &[u8]) -> impl Iterator<Item = Mapping<'_>> {
    maps.split(|&byte| byte == b'\n').filter_map(|line| {
        let mut fields = line.splitn(6, |&byte| byte == b' ');
        let range = std::str::from_utf8(fields.next()?).ok()?;
        let (start, end) = range.split_once('-')?;
        let start = u64::from_str_radix(start, 16).ok()?;
        let end = u64::from_str_radix(end, 16).ok()?;
        let name = fields.nth(4).unwrap_or_default().trim_ascii_start();
        Some(Mapping {
            range: start..end,
            name,
        })
    })
}
