//! Installing the filter in the child, between `fork` and `exec`, and
//! handing its listener to the supervisor.
//!
//! The child sets `PR_SET_NO_NEW_PRIVS` (required to install a filter
//! without privileges; it also means the program cannot gain them through
//! setuid files), installs the filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER`
//! and sends the listener over a socket pair with `SCM_RIGHTS`, then closes
//! its own copy: only the supervisor may hold the listener, so that when it
//! dies the kernel answers every waiting and later call itself (see
//! `mod.rs`). A refusal is sent as its errno instead, so the supervisor can
//! tell "the kernel refused the filter" from "the program cannot run".
//!
//! What runs in the child allocates nothing and makes only system calls:
//! it runs after `fork` in the supervisor's image.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use libc::{c_int, sock_filter, sock_fprog};

/// Room for one `cmsghdr` carrying one fd, aligned as the kernel wants.
#[repr(C, align(8))]
struct ControlBuffer([u8; 64]);

/// What the child needs, prepared before `fork`.
pub struct Installer {
    program: Vec<sock_filter>,
    child_end: OwnedFd,
}

/// The supervisor's end of the socket pair.
pub struct Receiver {
    parent_end: OwnedFd,
}

/// A new socket pair for one child: the installer goes into `pre_exec`.
pub fn pair(program: Vec<sock_filter>) -> io::Result<(Installer, Receiver)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let result = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair just created both descriptors; we own them.
    let (parent_end, child_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((Installer { program, child_end }, Receiver { parent_end }))
}

impl Installer {
    /// In the child: installs the filter and sends the listener (or the
    /// errno of the refusal). Async-signal-safe.
    pub fn install(&self) -> io::Result<()> {
        let socket = self.child_end.as_raw_fd();
        let listener = self.install_filter();
        let code = match listener {
            Ok(_) => 0,
            Err(errno) => errno,
        };
        let sent = send(socket, code, listener.ok());
        if let Ok(listener) = listener {
            // SAFETY: the listener is ours; the supervisor has its own copy.
            unsafe { libc::close(listener) };
        }
        match (listener, sent) {
            (Err(errno), _) => Err(io::Error::from_raw_os_error(errno)),
            (Ok(_), Err(errno)) => Err(io::Error::from_raw_os_error(errno)),
            (Ok(_), Ok(())) => Ok(()),
        }
    }

    fn install_filter(&self) -> Result<RawFd, c_int> {
        let program = sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr().cast_mut(),
        };
        // SAFETY: prctl with integer arguments; seccomp reads `program`,
        // which points at `self.program` for the duration of the call.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(errno());
            }
            let listener = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &program as *const sock_fprog,
            );
            if listener < 0 {
                return Err(errno());
            }
            Ok(listener as RawFd)
        }
    }
}

/// Why no listener came.
pub enum Refusal {
    /// The kernel refused the filter with this errno.
    Kernel(io::Error),
    /// The child never got as far as installing it (or the message was lost).
    NoMessage,
}

impl Receiver {
    /// The listener the child sent, without waiting: the child sends before
    /// `exec`, so once `spawn` has returned the message is there or never
    /// will be.
    pub fn receive(&self) -> Result<OwnedFd, Refusal> {
        let mut code = [0u8; 4];
        let mut data = libc::iovec {
            iov_base: code.as_mut_ptr().cast(),
            iov_len: code.len(),
        };
        let mut control = ControlBuffer([0; 64]);
        // SAFETY: an all-zero msghdr is valid; the pointers set below point
        // at buffers that outlive the call.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &mut data;
        message.msg_iovlen = 1;
        message.msg_control = control.0.as_mut_ptr().cast();
        message.msg_controllen = control.0.len();
        // SAFETY: `message` describes valid buffers; the socket is ours.
        let read = unsafe {
            libc::recvmsg(
                self.parent_end.as_raw_fd(),
                &mut message,
                libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
            )
        };
        if read != code.len() as isize {
            return Err(Refusal::NoMessage);
        }
        let code = i32::from_ne_bytes(code);
        // SAFETY: recvmsg filled `message`; CMSG_FIRSTHDR/CMSG_DATA walk the
        // control buffer within `msg_controllen`.
        let fd = unsafe {
            let header = libc::CMSG_FIRSTHDR(&message);
            if header.is_null()
                || (*header).cmsg_level != libc::SOL_SOCKET
                || (*header).cmsg_type != libc::SCM_RIGHTS
            {
                None
            } else {
                Some(std::ptr::read_unaligned(
                    libc::CMSG_DATA(header).cast::<c_int>(),
                ))
            }
        };
        match (code, fd) {
            // SAFETY: SCM_RIGHTS installed this descriptor in our table.
            (0, Some(fd)) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            (0, None) => Err(Refusal::NoMessage),
            (errno, fd) => {
                if let Some(fd) = fd {
                    // SAFETY: as above; we do not want it.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                }
                Err(Refusal::Kernel(io::Error::from_raw_os_error(errno)))
            }
        }
    }
}

/// Sends `code` and, if given, `fd` as `SCM_RIGHTS`. Async-signal-safe.
fn send(socket: RawFd, code: c_int, fd: Option<RawFd>) -> Result<(), c_int> {
    let mut bytes = code.to_ne_bytes();
    let mut data = libc::iovec {
        iov_base: bytes.as_mut_ptr().cast(),
        iov_len: bytes.len(),
    };
    let mut control = ControlBuffer([0; 64]);
    // SAFETY: an all-zero msghdr is valid; the pointers set below point at
    // buffers that outlive the call; CMSG_* stay inside `control`.
    unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut data;
        message.msg_iovlen = 1;
        if let Some(fd) = fd {
            let space = libc::CMSG_SPACE(std::mem::size_of::<c_int>() as u32) as usize;
            message.msg_control = control.0.as_mut_ptr().cast();
            message.msg_controllen = space;
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<c_int>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<c_int>(), fd);
        }
        if libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

fn errno() -> c_int {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
