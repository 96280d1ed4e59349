//! Making a passed call on the caller's behalf, so that it can be timed:
//! the supervisor takes a duplicate of the caller's descriptor
//! (`pidfd_getfd`: the same open file, so the same page cache, readahead
//! state and writeback), makes the raw system call on it with the caller's
//! arguments, and hands back the kernel's result or errno unchanged.
//!
//! `sync` has no descriptor and is made here too. `msync` needs the
//! caller's memory, and x32 calls need the caller's ABI: they continue in
//! the caller (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`), as does any call whose
//! descriptor cannot be duplicated (a closed fd: the kernel then reports
//! `EBADF` itself); those are counted as passed but not timed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

use fadvise_shim_core::call::Call;

use super::listener::Answer;
use super::request::{File, Request};

/// Whether the supervisor can make this call itself, given a duplicate of
/// the caller's descriptor when the call has one.
pub fn can_make_here(request: &Request) -> bool {
    !request.is_x32() && request.call != Call::Msync
}

/// A pidfd for process `pid` (`pidfd_open(2)`), readable once it exits.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A duplicate of descriptor `fd` of the process behind `pidfd`
/// (`pidfd_getfd(2)`; needs ptrace-attach rights: same user, or root).
pub fn duplicate_fd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let local = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if local < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just installed this descriptor in our table.
    Ok(unsafe { OwnedFd::from_raw_fd(local as i32) })
}

/// A call made here: what to answer, how long it took, whether it failed.
pub struct Made {
    pub answer: Answer,
    pub latency_ns: u64,
    pub failed: bool,
}

/// Makes `request` with `local` standing for the caller's descriptor
/// (`None` only for `sync`).
pub fn make(request: &Request, local: Option<&OwnedFd>) -> Made {
    let fd = local.map_or(-1, |fd| fd.as_raw_fd()) as libc::c_long;
    let [_, a1, a2, a3, ..] = request.args.map(|arg| arg as libc::c_long);
    let number = request.call.syscall_number();
    let start = Instant::now();
    // SAFETY: the caller's own system call, with its arguments, on our
    // duplicate of its descriptor; none of these calls touch our memory.
    let result = unsafe {
        match request.file {
            File::None => libc::syscall(number),
            _ => libc::syscall(number, fd, a1, a2, a3),
        }
    };
    let latency_ns = start.elapsed().as_nanos().min(u64::MAX.into()) as u64;
    if result < 0 {
        let errno = io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        Made {
            answer: Answer::Error(errno),
            latency_ns,
            failed: true,
        }
    } else {
        Made {
            answer: Answer::Value(result),
            latency_ns,
            failed: false,
        }
    }
}
