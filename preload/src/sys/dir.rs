//! Names in a directory the caller holds open: unlinking, renaming,
//! linking and listing, relative to that descriptor (`*at` calls, through
//! libc as ever), so that a path swapped under us leads nowhere. Names are
//! `&CStr`; the calls return whether they succeeded and leave the reason
//! in `errno`, for the callers that look.

use std::ffi::CStr;

use libc::c_int;

/// `unlinkat(2)` of a file.
pub fn unlink_at(dir: c_int, name: &CStr) -> bool {
    // SAFETY: a NUL-terminated name, only read.
    unsafe { libc::unlinkat(dir, name.as_ptr(), 0) == 0 }
}

/// `renameat(2)` within the directory, replacing `to` if it exists.
pub fn rename_at(dir: c_int, from: &CStr, to: &CStr) -> bool {
    // SAFETY: NUL-terminated names, only read.
    unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) == 0 }
}

/// `renameat2(2)` with `RENAME_NOREPLACE` (by its number: older libcs lack
/// the function): fails with `EEXIST` if `to` exists, `EINVAL` or
/// `ENOSYS` where the kernel or the file system cannot.
pub fn rename_noreplace_at(dir: c_int, from: &CStr, to: &CStr) -> bool {
    // SAFETY: NUL-terminated names, only read.
    unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir,
            from.as_ptr(),
            dir,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        ) == 0
    }
}

/// `linkat(2)` within the directory: fails with `EEXIST` if `to` exists.
pub fn link_at(dir: c_int, from: &CStr, to: &CStr) -> bool {
    // SAFETY: NUL-terminated names, only read.
    unsafe { libc::linkat(dir, from.as_ptr(), dir, to.as_ptr(), 0) == 0 }
}

/// `getdents64(2)`: fills `buffer` with the next directory records of
/// `dir` (inode (8), offset (8), length (2), type (1), then the
/// NUL-terminated name); the bytes filled, 0 at the end, -1 on error.
pub fn read_entries(dir: c_int, buffer: &mut [u8]) -> isize {
    // SAFETY: the kernel writes at most `buffer.len()` bytes into it.
    unsafe { libc::syscall(libc::SYS_getdents64, dir, buffer.as_mut_ptr(), buffer.len()) as isize }
}
