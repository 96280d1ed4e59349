//! The keeper: a small process forked from the supervisor that holds a copy
//! of the listener and does nothing while the supervisor lives. If the
//! supervisor dies (even by `SIGKILL`), the keeper sees its pipe close and
//! takes over, answering every notification with
//! `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: from then on the program's calls go
//! straight to the kernel, uncounted, instead of failing.
//!
//! Without a keeper the listener would close with the supervisor, and the
//! kernel would answer every waiting and later call with `ENOSYS` — not
//! stuck, but an `fsync` that fails can make a database stop. (If the keeper
//! is killed too, that is what happens.)
//!
//! The one notification the dead supervisor may have received but not
//! answered is found through a word shared with the supervisor: the id of
//! the last notification it received. Ids are given out in sequence, so the
//! keeper answers that id and the next few (answering one that is not
//! waiting is refused by the kernel, harmlessly). A call the supervisor had
//! already made on the caller's behalf then runs once more in the caller;
//! these calls can all be repeated without harm.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::listener::{Answer, Listener};

/// How many ids after the last one published the keeper answers when it
/// takes over: notifications created meanwhile by other threads, and ones
/// whose caller was interrupted, take ids too.
const IDS_TO_SWEEP: u64 = 256;

pub struct Keeper {
    pid: libc::pid_t,
    /// Closed when the supervisor ends, however it ends.
    alive: OwnedFd,
    /// The id of the last notification received, in a page shared with
    /// the keeper.
    last_id: &'static AtomicU64,
}

impl Keeper {
    /// Forks the keeper. Call while the supervisor has one thread (the
    /// keeper runs Rust code after `fork`).
    pub fn start(listener: &Listener) -> io::Result<Keeper> {
        let last_id = shared_word()?;
        let mut pipe = [0 as libc::c_int; 2];
        // SAFETY: `pipe` has room for the two descriptors.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 just created both descriptors; we own them.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
        // SAFETY: the supervisor is single-threaded here, so the child may
        // run ordinary code; it never returns from `keep`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            drop(write_end);
            keep(listener, read_end.as_raw_fd(), last_id);
        }
        Ok(Keeper {
            pid,
            alive: write_end,
            last_id,
        })
    }

    /// Publishes the id of a notification just received.
    pub fn received(&self, id: u64) {
        self.last_id.store(id, Ordering::Release);
    }

    /// At the supervisor's normal end (no process left under the filter):
    /// lets the keeper go and reaps it.
    pub fn finish(self) {
        drop(self.alive);
        let mut status = 0;
        // SAFETY: waitpid writes the status; the keeper is our child.
        unsafe { libc::waitpid(self.pid, &mut status, 0) };
    }
}

/// One word of memory shared with processes forked after this.
fn shared_word() -> io::Result<&'static AtomicU64> {
    // SAFETY: a fresh anonymous shared mapping, never unmapped: it lives as
    // long as the process, so a 'static reference to it is sound; zeroed
    // memory is a valid AtomicU64.
    unsafe {
        let page = libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<AtomicU64>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(&*page.cast::<AtomicU64>())
    }
}

/// The keeper's life: wait for the supervisor's end, then pass every call
/// until no process is left under the filter.
fn keep(listener: &Listener, alive: RawFd, last_id: &AtomicU64) -> ! {
    detach_from_terminal_output();
    wait_readable(alive);
    let last = last_id.load(Ordering::Acquire);
    for id in last..last.saturating_add(IDS_TO_SWEEP) {
        let _ = listener.answer(id, Answer::Continue);
    }
    loop {
        let events = wait_readable(listener.0.as_raw_fd());
        if events & libc::POLLIN != 0 {
            if let Ok(Some(notification)) = listener.receive() {
                let _ = listener.answer(notification.id, Answer::Continue);
            }
        } else if events & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            // SAFETY: ends this process only.
            unsafe { libc::_exit(0) };
        }
    }
}

/// The keeper writes nothing, and must not keep the program's output pipes
/// open after the program has closed them.
fn detach_from_terminal_output() {
    // SAFETY: opening /dev/null and duplicating it over 0, 1 and 2.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::close(null);
        }
    }
}

/// Blocks until `fd` is readable or hung up; returns its events.
fn wait_readable(fd: RawFd) -> libc::c_short {
    let mut polled = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut polled, 1, -1) } > 0 {
            return polled.revents;
        }
    }
}
