//! The file behind a call, for `path` rules: its path, and the identity
//! that tells whether it is still the same file.
//!
//! The path comes from the kernel's own record (`/proc/self/fd/N`, and
//! `/proc/self/maps` for `msync`): ≈ 3 µs, a walk through `/proc`. The
//! identity (`statx` of the descriptor: device, inode, mount, link count,
//! change time) costs one system call; `policy::path_cache` keeps a
//! verdict per descriptor and asks for the path again only when the
//! identity moves (or the verdict is old), since fd numbers are reused after
//! `close`, `dup2` and friends, by raw system calls we never see, and across
//! `fork`/`exec`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

const PATH_MAX: usize = 4096;

/// Runs `use_path` with the path of `fd`, or with `None` if it has none
/// (a pipe, a socket, an anonymous file, no `/proc`).
pub fn with_fd_path<R>(fd: libc::c_int, use_path: impl FnOnce(Option<&Path>) -> R) -> R {
    let mut link = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    link[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let digits = super::io::decimal(u64::try_from(fd).unwrap_or(0), &mut digits);
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

/// What tells one file behind a descriptor from another: equal identities
/// taken at two moments mean the same inode, reached through the same mount,
/// not changed in between (a rename or a new link changes `ctime`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Identity {
    /// `major << 32 | minor`.
    pub device: u64,
    pub inode: u64,
    /// The mount's id (unique for the boot where the kernel has it, 6.8+).
    pub mount: u64,
    pub ctime_seconds: i64,
    pub ctime_nanoseconds: u32,
    /// A file with several names has several paths, and an unlinked one's
    /// identity can be worn by a new file (see `policy::path_cache`):
    /// callers must not trust an identity to stand for one path unless
    /// this is 1.
    pub links: u32,
}

/// Whether `statx` takes a null path (Linux 6.11); cleared on the first
/// `EFAULT`, after which `""` is passed.
static NULL_PATH_WORKS: AtomicBool = AtomicBool::new(true);

const IDENTITY_MASK: libc::c_uint =
    libc::STATX_INO | libc::STATX_NLINK | libc::STATX_CTIME | libc::STATX_MNT_ID_UNIQUE;

/// The identity of the file behind `fd`, or `None` if the kernel does not
/// give all of it (a bad descriptor, a kernel without a mount id). One
/// system call, no `errno` change; async-signal-safe.
pub fn identity(fd: libc::c_int) -> Option<Identity> {
    // Not zeroed: the kernel writes the whole structure when it succeeds,
    // and it is read only then (zeroing 256 bytes per call shows).
    let mut buffer = std::mem::MaybeUninit::<libc::statx>::uninit();
    let null_path = NULL_PATH_WORKS.load(Ordering::Relaxed);
    let path = if null_path { None } else { Some(c"") };
    match crate::sys::raw::statx_fd(fd, path, IDENTITY_MASK, &mut buffer) {
        Ok(()) => {}
        Err(libc::EFAULT) if null_path => {
            NULL_PATH_WORKS.store(false, Ordering::Relaxed);
            return identity(fd);
        }
        Err(_) => return None,
    }
    // SAFETY: `statx` succeeded, so the kernel filled the structure.
    let buffer = unsafe { buffer.assume_init() };
    let needed = libc::STATX_INO | libc::STATX_NLINK | libc::STATX_CTIME;
    let mount_known = buffer.stx_mask & (libc::STATX_MNT_ID | libc::STATX_MNT_ID_UNIQUE) != 0;
    (buffer.stx_mask & needed == needed && mount_known).then(|| Identity {
        device: u64::from(buffer.stx_dev_major) << 32 | u64::from(buffer.stx_dev_minor),
        inode: buffer.stx_ino,
        mount: buffer.stx_mnt_id,
        ctime_seconds: buffer.stx_ctime.tv_sec,
        ctime_nanoseconds: buffer.stx_ctime.tv_nsec,
        links: buffer.stx_nlink,
    })
}

/// Runs `use_path` with the path of the file mapped at `address`, or
/// `None` for anonymous memory or an unmapped address. `/proc/self/maps` is
/// read a buffer at a time on the stack: a process may have thousands of
/// mappings, and this runs inside the program's `msync`, where allocating
/// is not ours to do (it may be called from a signal handler).
pub fn with_mapping_path<R>(address: usize, use_path: impl FnOnce(Option<&Path>) -> R) -> R {
    let mut buffer = [0u8; 2 * PATH_MAX];
    let Some(maps) = super::fd::Fd::open(c"/proc/self/maps", libc::O_RDONLY | libc::O_CLOEXEC)
    else {
        return use_path(None);
    };
    let line = find_line(
        &mut buffer,
        |free| super::io::read_some(maps.as_raw(), free),
        |line| mapping_contains(line, address),
    );
    // Closed before `use_path` runs, as it always was.
    drop(maps);
    let path = line.and_then(|line| {
        let start = line.iter().position(|&byte| byte == b'/')?;
        Some(without_deleted_suffix(&line[start..]))
    });
    use_path(path.map(|path| Path::new(OsStr::from_bytes(path))))
}

/// The first line that `wanted` accepts, reading with `read_more` (as
/// `sys::read_some`: bytes read, 0 at the end, negative on error) into
/// `buffer`, which holds the line being read and what follows it. `None` on
/// a read error or a line longer than `buffer`.
fn find_line(
    buffer: &mut [u8],
    mut read_more: impl FnMut(&mut [u8]) -> isize,
    wanted: impl Fn(&[u8]) -> bool,
) -> Option<&[u8]> {
    let mut filled = 0;
    loop {
        let read = read_more(&mut buffer[filled..]);
        let at_end = read <= 0;
        filled += read.max(0) as usize;
        let mut start = 0;
        while start < filled {
            let Some(length) = buffer[start..filled].iter().position(|&byte| byte == b'\n') else {
                break;
            };
            if wanted(&buffer[start..start + length]) {
                return Some(&buffer[start..start + length]);
            }
            start += length + 1;
        }
        if read < 0 {
            return None;
        }
        if at_end {
            // A last line without its newline.
            let rest = &buffer[start..filled];
            return (!rest.is_empty() && wanted(rest)).then_some(rest);
        }
        buffer.copy_within(start..filled, 0);
        filled -= start;
        if filled == buffer.len() {
            return None;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` delivered `chunk` bytes per read.
    fn reader(text: &[u8], chunk: usize) -> impl FnMut(&mut [u8]) -> isize + '_ {
        let mut offset = 0;
        move |free: &mut [u8]| {
            let length = chunk.min(free.len()).min(text.len() - offset);
            free[..length].copy_from_slice(&text[offset..offset + length]);
            offset += length;
            length as isize
        }
    }

    #[test]
    fn finds_lines_across_reads_and_buffer_refills() {
        let text: Vec<u8> = (0..500)
            .flat_map(|i| format!("line {i} {}\n", "x".repeat(i % 37)).into_bytes())
            .collect();
        for chunk in [1, 7, 64, 4096] {
            for buffer_size in [64, 100, 8192] {
                let mut buffer = vec![0u8; buffer_size];
                let found = find_line(&mut buffer, reader(&text, chunk), |line| {
                    line.starts_with(b"line 437 ")
                });
                let expected = format!("line 437 {}", "x".repeat(437 % 37));
                assert_eq!(
                    found,
                    Some(expected.as_bytes()),
                    "chunk {chunk} buffer {buffer_size}"
                );
                let mut buffer = vec![0u8; buffer_size];
                let missing = find_line(&mut buffer, reader(&text, chunk), |line| line == b"nope");
                assert_eq!(missing, None);
            }
        }
    }

    #[test]
    fn reads_a_last_line_without_newline_and_gives_up_on_overlong_lines() {
        let mut buffer = [0u8; 16];
        let found = find_line(&mut buffer, reader(b"a\nlast", 3), |line| line == b"last");
        assert_eq!(found, Some(&b"last"[..]));
        let mut buffer = [0u8; 8];
        let long = find_line(
            &mut buffer,
            reader(b"far too long a line\nx\n", 4),
            |line| line == b"x",
        );
        assert_eq!(long, None);
    }

    #[test]
    fn mapping_lines_are_matched_by_address_range() {
        let line = b"7f00a000-7f00b000 rw-s 00000000 fd:01 123 /data/file.db (deleted)";
        assert!(mapping_contains(line, 0x7f00a000));
        assert!(mapping_contains(line, 0x7f00afff));
        assert!(!mapping_contains(line, 0x7f00b000));
        assert_eq!(
            without_deleted_suffix(b"/data/file.db (deleted)"),
            b"/data/file.db"
        );
    }
}
