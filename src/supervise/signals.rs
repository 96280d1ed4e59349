//! Signals, as an init forwards them (compare tini): the supervisor blocks
//! them and reads them from a `signalfd` in its loop, so nothing runs in a
//! signal handler.
//!
//! - `SIGCHLD`: reap children (the supervisor is a child subreaper, so
//!   orphaned descendants come to it too).
//! - `SIGUSR1`: every supervised process dumps now.
//! - The others in `FORWARDED` go on to the program, unless the terminal
//!   sent them (`SI_KERNEL`): Ctrl-C already reaches the whole foreground
//!   process group, program included, and must not arrive twice.
//!
//! `SIGTSTP`, `SIGTTIN` and `SIGTTOU` are left alone (job control stops the
//! supervisor with its program), as are the signals a fault raises.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub const FORWARDED: [libc::c_int; 11] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGALRM,
    libc::SIGPWR,
    libc::SIGXCPU,
    libc::SIGURG,
];

/// One signal read from the signalfd.
pub struct Arrived {
    pub signal: libc::c_int,
    /// Sent by the kernel on the terminal's behalf (Ctrl-C, a hang-up)
    /// rather than by a process.
    pub from_terminal: bool,
}

pub struct Signals {
    fd: OwnedFd,
    /// The mask before `block`, which the program must start with.
    previous: libc::sigset_t,
}

impl Signals {
    /// Blocks the signals the supervisor handles and opens a signalfd for
    /// them. Call before starting the program: a signal that arrives in
    /// between must not kill the supervisor. The mask is inherited across
    /// `fork` and `exec`: the child puts back `previous_mask` before `exec`.
    pub fn block() -> io::Result<Signals> {
        // SAFETY: sigset operations on a local set; sigprocmask and signalfd
        // only read it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for signal in FORWARDED.iter().chain(&[libc::SIGCHLD, libc::SIGUSR1]) {
                libc::sigaddset(&mut set, *signal);
            }
            if libc::sigprocmask(libc::SIG_BLOCK, &set, &mut previous) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Signals {
                fd: OwnedFd::from_raw_fd(fd),
                previous,
            })
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The signal mask the program must start with.
    pub fn previous_mask(&self) -> libc::sigset_t {
        self.previous
    }

    /// Every signal waiting now.
    pub fn read(&self) -> Vec<Arrived> {
        let mut arrived = Vec::new();
        loop {
            // SAFETY: all-zero is a valid signalfd_siginfo.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`.
            let read = unsafe {
                libc::read(
                    self.fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if read != size as isize {
                return arrived;
            }
            arrived.push(Arrived {
                signal: info.ssi_signo as libc::c_int,
                from_terminal: info.ssi_code == libc::SI_KERNEL,
            });
        }
    }
}

/// In the child before `exec`: puts back the mask the supervisor started
/// with. Async-signal-safe.
pub fn restore_mask(mask: &libc::sigset_t) -> io::Result<()> {
    // SAFETY: sigprocmask reads the set.
    if unsafe { libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to process `pid`; one that has just exited is no error.
pub fn forward(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety requirements.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Makes orphaned descendants our children, so we reap them.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Reaps every child that has exited; returns the wait status of `main` if
/// it is among them.
pub fn reap(main: u32) -> Option<libc::c_int> {
    let mut main_status = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into `status`.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return main_status;
        }
        if pid as u32 == main {
            main_status = Some(status);
        }
    }
}
