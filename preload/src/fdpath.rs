//! The path of the file behind a call, for `path` rules.
//!
//! It is looked up at the time of each call that meets a path rule, from
//! the kernel's own record (`/proc/self/fd/N`, and `/proc/self/maps` for
//! `msync`), never from a cache: fd numbers are reused after `close`, `dup2`
//! and friends, and across `fork`/`exec`, and a cache would have to follow
//! all of them. Only calls whose verdict depends on a path pay for this.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const PATH_MAX: usize = 4096;

/// Runs `use_path` with the path of `fd`, or with `None` if it has none
/// (a pipe, a socket, an anonymous file, no `/proc`).
pub fn with_fd_path<R>(fd: libc::c_int, use_path: impl FnOnce(Option<&Path>) -> R) -> R {
    let mut link = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    link[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let digits = crate::sys::decimal(u64::try_from(fd).unwrap_or(0), &mut digits);
    link[prefix.len()..prefix.len() + digits.len()].copy_from_slice(digits);
    let mut target = [0u8; PATH_MAX];
    // SAFETY: `link` is NUL-terminated (zero-filled past the digits) and
    // `target` is a writable buffer of the given size.
    let length = unsafe {
        libc::readlink(
            link.as_ptr().cast(),
            target.as_mut_ptr().cast(),
            target.len(),
        )
    };
    let path = usize::try_from(length)
        .ok()
        .filter(|&length| length < target.len() && fd >= 0)
        .map(|length| &target[..length])
        .filter(|path| path.starts_with(b"/"))
        .map(without_deleted_suffix);
    use_path(path.map(|path| Path::new(OsStr::from_bytes(path))))
}

/// Runs `use_path` with the path of the file mapped at `address`, or
/// `None` for anonymous memory or an unmapped address.
pub fn with_mapping_path<R>(address: usize, use_path: impl FnOnce(Option<&Path>) -> R) -> R {
    let Ok(maps) = std::fs::read("/proc/self/maps") else {
        return use_path(None);
    };
    let path = maps
        .split(|&byte| byte == b'\n')
        .find(|line| mapping_contains(line, address))
        .and_then(|line| {
            let start = line.iter().position(|&byte| byte == b'/')?;
            Some(without_deleted_suffix(&line[start..]))
        });
    use_path(path.map(|path| Path::new(OsStr::from_bytes(path))))
}

/// Whether a `/proc/self/maps` line (`start-end perms …`) covers `address`.
fn mapping_contains(line: &[u8], address: usize) -> bool {
    let range = line.split(|&byte| byte == b' ').next().unwrap_or_default();
    let mut bounds = range.split(|&byte| byte == b'-').map(|hex| {
        std::str::from_utf8(hex)
            .ok()
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
    });
    matches!((bounds.next(), bounds.next()), (Some(Some(start)), Some(Some(end))) if start <= address && address < end)
}

/// The kernel appends " (deleted)" to unlinked files; rules are about the
/// name the file had.
fn without_deleted_suffix(path: &[u8]) -> &[u8] {
    path.strip_suffix(b" (deleted)").unwrap_or(path)
}
