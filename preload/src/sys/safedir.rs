//! Opening the dump and budget directories without trusting them: the path
//! is walked one component at a time with `openat`, a symlink is followed
//! only when root or this user owns it (the rule the kernel's
//! `protected_symlinks` applies in sticky directories), a missing component
//! is created with mode 0755 (no group or world write; the last one with the
//! mode asked for), and the directory itself must belong to root or to this
//! user. Async-signal-safe: system calls and stack buffers only.

use std::ffi::CStr;

use libc::c_int;

use super::fd::Fd;

/// An open descriptor of the directory `path`, created with `mode` if it is
/// missing, or why it is unsafe.
pub fn open_trusted_dir(path: &[u8], mode: libc::mode_t) -> Result<Fd, &'static [u8]> {
    if !path.starts_with(b"/") {
        return Err(b"the directory is not an absolute path");
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let trusted = |owner: libc::uid_t| owner == 0 || owner == euid;
    let mut dir =
        Fd::open(c"/", libc::O_DIRECTORY | libc::O_CLOEXEC).ok_or(b"cannot open /".as_slice())?;
    let mut components = path
        .split(|&byte| byte == b'/')
        .filter(|c| !c.is_empty())
        .peekable();
    while let Some(component) = components.next() {
        let mode = if components.peek().is_none() {
            mode
        } else {
            0o755
        };
        // The parent is closed as the child is taken (or on failure).
        dir = open_component(dir.as_raw(), component, mode, &trusted)?;
    }
    let mut status = zeroed_stat();
    // SAFETY: valid fd and out-pointer.
    if unsafe { libc::fstat(dir.as_raw(), &mut status) } != 0 || !trusted(status.st_uid) {
        return Err(b"the directory belongs to another user");
    }
    Ok(dir)
}

fn open_component(
    dir: c_int,
    component: &[u8],
    mode: libc::mode_t,
    trusted: &impl Fn(libc::uid_t) -> bool,
) -> Result<Fd, &'static [u8]> {
    let mut buffer = [0u8; 256];
    if component.len() >= buffer.len() {
        return Err(b"a path component is too long");
    }
    buffer[..component.len()].copy_from_slice(component);
    // Zero-filled past the component, so there is a NUL.
    let name_c = CStr::from_bytes_until_nul(&buffer)
        .map_err(|_| b"a path component is too long".as_slice())?;
    let name = name_c.as_ptr();
    let mut status = zeroed_stat();
    // SAFETY: valid fd, NUL-terminated name, out-pointer.
    let mut found =
        unsafe { libc::fstatat(dir, name, &mut status, libc::AT_SYMLINK_NOFOLLOW) } == 0;
    if !found && super::errno() == libc::ENOENT {
        // SAFETY: as above. A racing creator is fine: we re-check below.
        // A shared sticky directory (01777) must not lose bits to the umask.
        let created = unsafe { libc::mkdirat(dir, name, mode) } == 0;
        if created && mode & libc::S_ISVTX != 0 {
            // SAFETY: valid fd and NUL-terminated name.
            unsafe { libc::fchmodat(dir, name, mode, 0) };
        }
        // SAFETY: valid fd, NUL-terminated name, out-pointer.
        found = unsafe { libc::fstatat(dir, name, &mut status, libc::AT_SYMLINK_NOFOLLOW) } == 0;
    }
    if !found {
        return Err(b"cannot create or find the directory");
    }
    let is_link = status.st_mode & libc::S_IFMT == libc::S_IFLNK;
    if is_link && !trusted(status.st_uid) {
        return Err(b"its path holds a symlink that another user owns");
    }
    let follow = if is_link { 0 } else { libc::O_NOFOLLOW };
    Fd::open_at(dir, name_c, libc::O_DIRECTORY | libc::O_CLOEXEC | follow, 0)
        .ok_or(b"cannot open the directory")
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: `stat` is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The owner of the first component of `path` (symlinks not followed) that
/// belongs neither to root nor to this user: who made a directory there
/// before us. `None` when there is none, or the path cannot be examined.
pub fn foreign_owner(path: &[u8]) -> Option<libc::uid_t> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let mut prefix = [0u8; 4096];
    if path.len() >= prefix.len() {
        return None;
    }
    let ends = path
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(_, &byte)| byte == b'/')
        .map(|(index, _)| index)
        .chain([path.len()]);
    for end in ends {
        prefix[..end].copy_from_slice(&path[..end]);
        prefix[end] = 0;
        let mut status = zeroed_stat();
        // SAFETY: a NUL-terminated path and a valid out-pointer.
        if unsafe { libc::lstat(prefix.as_ptr().cast(), &mut status) } != 0 {
            return None;
        }
        if status.st_uid != 0 && status.st_uid != euid {
            return Some(status.st_uid);
        }
    }
    None
}
