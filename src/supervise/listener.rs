//! The supervisor's side of the listener: receive a notification, check it
//! is still pending, answer it. Thin wrappers over the three ioctls
//! (`seccomp_unotify(2)`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use libc::{seccomp_notif, seccomp_notif_resp};

pub struct Listener(pub OwnedFd);

/// How to answer a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The call returns this value.
    Value(i64),
    /// The call fails with this errno.
    Error(i32),
    /// The call runs in the caller, as if never intercepted.
    Continue,
}

impl Listener {
    /// The next notification; `Ok(None)` when the caller went away (was
    /// killed, or a signal interrupted its call) before we read it.
    pub fn receive(&self) -> io::Result<Option<seccomp_notif>> {
        loop {
            // SAFETY: the kernel wants a zeroed structure; all-zero is a
            // valid seccomp_notif.
            let mut notification: seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: the ioctl writes one seccomp_notif into `notification`.
            let result = unsafe {
                libc::ioctl(
                    self.0.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_RECV,
                    &mut notification,
                )
            };
            if result == 0 {
                return Ok(Some(notification));
            }
            let error = io::Error::last_os_error();
            match error.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOENT) => return Ok(None),
                _ => return Err(error),
            }
        }
    }

    /// Whether notification `id` is still waiting for its answer: after
    /// reading anything about the caller (its /proc files, its fd), this
    /// proves the caller is the same task, still stopped in the call.
    pub fn is_pending(&self, id: u64) -> bool {
        // SAFETY: the ioctl reads one u64.
        unsafe { libc::ioctl(self.0.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
    }

    /// Answers notification `id`. A caller that went away meanwhile is not
    /// an error: there is no one left to answer.
    pub fn answer(&self, id: u64, answer: Answer) -> io::Result<()> {
        let (val, error, flags) = match answer {
            Answer::Value(value) => (value, 0, 0),
            Answer::Error(errno) => (0, -errno, 0),
            Answer::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        };
        let response = seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        // SAFETY: the ioctl reads one seccomp_notif_resp.
        let result = unsafe {
            libc::ioctl(
                self.0.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &response,
            )
        };
        if result == 0 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        match error.raw_os_error() {
            Some(libc::ENOENT) => Ok(()),
            _ => Err(error),
        }
    }
}
