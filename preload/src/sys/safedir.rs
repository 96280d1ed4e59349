//! Opening the dump and budget directories without trusting them: the path
//! is walked one component at a time with `openat`, a symlink is followed
//! only when root or this user owns it (the rule the kernel's
//! `protected_symlinks` applies in sticky directories), a missing component
//! is created with mode 0755 (no group or world write; the last one with the
//! mode asked for), and the directory itself must belong to root or to this
//! user. Async-signal-safe: system calls and stack buffers only.

use libc::c_int;

/// An open descriptor of the directory `path`, created with `mode` if it is
/// missing, or why it is unsafe.
pub fn open_trusted_dir(path: &[u8], mode: libc::mode_t) -> Result<c_int, &'static [u8]> {
    if !path.starts_with(b"/") {
        return Err(b"the directory is not an absolute path");
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let trusted = |owner: libc::uid_t| owner == 0 || owner == euid;
    // SAFETY: a NUL-terminated literal.
    let mut dir = crate::sys::raw::open(c"/".as_ptr(), libc::O_DIRECTORY | libc::O_CLOEXEC);
    if dir < 0 {
        return Err(b"cannot open /");
    }
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
        let next = open_component(dir, component, mode, &trusted);
        crate::sys::raw::close(dir);
        dir = next?;
    }
    let mut status = zeroed_stat();
    // SAFETY: valid fd and out-pointer.
    if unsafe { libc::fstat(dir, &mut status) } != 0 || !trusted(status.st_uid) {
        crate::sys::raw::close(dir);
        return Err(b"the directory belongs to another user");
    }
    Ok(dir)
}

fn open_component(
    dir: c_int,
    component: &[u8],
    mode: libc::mode_t,
    trusted: &impl Fn(libc::uid_t) -> bool,
) -> Result<c_int, &'static [u8]> {
    let mut name = [0u8; 256];
    if component.len() >= name.len() {
        return Err(b"a path component is too long");
    }
    name[..component.len()].copy_from_slice(component);
    let name = name.as_ptr().cast::<libc::c_char>();
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
    let next = crate::sys::raw::openat(dir, name, libc::O_DIRECTORY | libc::O_CLOEXEC | follow, 0);
    if next < 0 {
        return Err(b"cannot open the directory");
    }
    Ok(next)
}

fn zeroed_stat() -> libc::stat {
    // SAFETY: `stat` is plain data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}
