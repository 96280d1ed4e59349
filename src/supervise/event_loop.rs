//! The supervisor's loop: one thread polls the listener, the signalfd and
//! one pidfd per supervised process, and handles what is ready — a
//! notification (decide, check it is still pending, answer), a signal
//! (reap, dump, forward), a process that exited (its last dump).

use std::os::fd::AsRawFd;

use fadvise_shim_core::dump::Reason;

use super::decide::{Decider, Verdict};
use super::dump::{self, DumpSettings};
use super::keeper::Keeper;
use super::listener::{Answer, Listener};
use super::paths::file_path;
use super::perform;
use super::processes::{self, Processes};
use super::request::{File, Request};
use super::signals::{self, Signals};

pub struct Supervisor<'a> {
    pub listener: Listener,
    pub keeper: Keeper,
    pub decider: Decider,
    pub processes: Processes,
    pub settings: DumpSettings<'a>,
    /// The program `run` started, and its wait status once reaped.
    pub main: u32,
    pub main_status: Option<libc::c_int>,
}

impl Supervisor<'_> {
    /// Until the program has exited and the filter has no process left.
    pub fn run(&mut self, signals: &Signals) {
        let mut filter_in_use = true;
        while filter_in_use || self.main_status.is_none() {
            let exits = self.processes.pidfds();
            let mut polled: Vec<libc::pollfd> = [signals.fd(), self.listener.0.as_raw_fd()]
                .into_iter()
                .chain(exits.iter().map(|&(_, fd)| fd))
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            if !filter_in_use {
                polled[1].fd = -1;
            }
            // SAFETY: `polled` is a valid array of pollfd of this length.
            let ready = unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as _, -1) };
            if ready < 0 {
                continue;
            }
            if polled[0].revents != 0 {
                for arrived in signals.read() {
                    self.on_signal(arrived);
                }
            }
            for (&(tgid, _), entry) in exits.iter().zip(&polled[2..]) {
                if entry.revents != 0 {
                    if let Some(process) = self.processes.remove(tgid) {
                        self.write_dump(&process, Reason::Exit);
                    }
                }
            }
            let listener = polled[1].revents;
            if listener & libc::POLLIN != 0 {
                self.on_notification();
            } else if listener & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                filter_in_use = false;
            }
        }
        for tgid in self.processes.tgids() {
            if let Some(process) = self.processes.remove(tgid) {
                self.write_dump(&process, Reason::Exit);
            }
        }
    }

    fn on_signal(&mut self, arrived: signals::Arrived) {
        match arrived.signal {
            libc::SIGCHLD => {
                if let Some(status) = signals::reap(self.main) {
                    self.main_status = Some(status);
                }
            }
            libc::SIGUSR1 => {
                for process in self.processes.iter() {
                    self.write_dump(process, Reason::Signal);
                }
            }
            _ if arrived.from_terminal => {}
            signal if self.main_status.is_none() => signals::forward(self.main, signal),
            signal => {
                for tgid in self.processes.tgids() {
                    signals::forward(tgid, signal);
                }
            }
        }
    }

    fn write_dump(&self, process: &processes::Process, reason: Reason) {
        if let Err(error) = dump::write(&self.settings, process, reason) {
            eprintln!(
                "fadvise-shim: cannot write a dump into {}: {error}",
                self.settings.dir.display()
            );
        }
    }

    fn on_notification(&mut self) {
        let notification = match self.listener.receive() {
            Ok(Some(notification)) => notification,
            Ok(None) => return,
            Err(error) => {
                eprintln!("fadvise-shim: reading a seccomp notification: {error}");
                return;
            }
        };
        let id = notification.id;
        self.keeper.received(id);
        let Some(request) = Request::new(notification.data.nr as u32, notification.data.args)
        else {
            let _ = self.listener.answer(id, Answer::Continue);
            return;
        };
        let Ok(process) = self.processes.of_thread(notification.pid) else {
            // Gone already, or not ours to read: let the call run.
            let _ = self.listener.answer(id, Answer::Continue);
            return;
        };
        process.refresh_exe();
        let tgid = process.tgid;
        let instruction_pointer = notification.data.instruction_pointer;
        let modules = &mut process.modules;
        let mut verdict = self.decider.decide(
            &request,
            &process.exe,
            || file_path(tgid, request.file),
            || modules.caller(tgid, instruction_pointer),
        );
        if let Verdict::Limit(budget) = verdict {
            if self
                .decider
                .admit(budget, &process.budgets[budget], monotonic_ns())
            {
                verdict = Verdict::Pass;
            }
        }
        if verdict != Verdict::Pass {
            let answer = match request.argument_error {
                Some(errno) => Answer::Error(errno),
                None => Answer::Value(0),
            };
            if self.listener.is_pending(id) && self.listener.answer(id, answer).is_ok() {
                if verdict == Verdict::Drop {
                    process.record_dropped(request.call);
                } else {
                    process.record_limited(request.call);
                }
            }
            return;
        }
        let local = match (perform::can_make_here(&request), request.file) {
            (true, File::Fd(fd)) => match perform::duplicate_fd(&process.pidfd, fd) {
                Ok(local) => Local::Fd(local),
                // Not open in the caller: every one of these calls looks
                // the descriptor up first and fails with EBADF.
                Err(error) if error.raw_os_error() == Some(libc::EBADF) => Local::NotOpen,
                Err(_) => Local::Unavailable,
            },
            (true, _) => Local::NoFile,
            (false, _) => Local::Unavailable,
        };
        // Everything read about the caller (its exe, its file, its fd) is
        // about the task still stopped in this call only if the
        // notification is still pending now.
        if !self.listener.is_pending(id) {
            return;
        }
        match local {
            Local::Fd(local) => {
                let made = perform::make(&request, Some(&local));
                let _ = self.listener.answer(id, made.answer);
                process.record_passed(request.call, made.latency_ns, made.failed);
            }
            Local::NoFile => {
                let made = perform::make(&request, None);
                let _ = self.listener.answer(id, made.answer);
                process.record_passed(request.call, made.latency_ns, made.failed);
            }
            Local::NotOpen => {
                if self.listener.answer(id, Answer::Error(libc::EBADF)).is_ok() {
                    process.record_passed(request.call, 0, true);
                }
            }
            Local::Unavailable => {
                if self.listener.answer(id, Answer::Continue).is_ok() {
                    // Not timed: the call runs after we answer.
                    process.record_passed(request.call, 0, false);
                }
            }
        }
    }
}

/// What stands for the caller's file when the supervisor makes its call.
enum Local {
    /// A duplicate of the caller's descriptor.
    Fd(std::os::fd::OwnedFd),
    /// The call has no file (`sync`).
    NoFile,
    /// The descriptor is not open in the caller.
    NotOpen,
    /// The call cannot be made here: it continues in the caller.
    Unavailable,
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}
