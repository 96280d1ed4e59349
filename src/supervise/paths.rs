//! The path of the file behind an intercepted call, for `path` rules, read
//! from the kernel's record of the calling process at the time of the call:
//! `/proc/PID/fd/N` for a descriptor, `/proc/PID/maps` for `msync`'s
//! mapping. Only calls that meet a `path` rule pay for the lookup.

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
    let bytes = path.as_os_str().as_bytes();
    let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
    bytes
        .starts_with(b"/")
        .then(|| PathBuf::from(OsStr::from_bytes(bytes)))
}

/// The file mapped at `address` in process `tgid`, from `/proc/PID/maps`.
fn mapping_path(tgid: u32, address: usize) -> Option<PathBuf> {
    let maps = std::fs::read(format!("/proc/{tgid}/maps")).ok()?;
    maps.split(|&byte| byte == b'\n').find_map(|line| {
        let range = line.split(|&byte| byte == b' ').next()?;
        let range = std::str::from_utf8(range).ok()?;
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        if !(start..end).contains(&address) {
            return None;
        }
        let path = line
            .splitn(6, |&byte| byte == b' ')
            .nth(5)?
            .trim_ascii_start();
        Some(PathBuf::from(OsStr::from_bytes(path)))
    })
}
