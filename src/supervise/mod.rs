//! `fadvise-shim run --supervise`: reaches programs that symbol
//! interposition cannot (static binaries, Go, inline `syscall`
//! instructions) with a seccomp filter and a supervising process.
//!
//! The child installs the filter (`filter.rs`, `install.rs`) and execs the
//! program; the filter is inherited by every thread, child and exec after
//! it. This process is the supervisor: one loop (`serve`) polls the
//! listener, a signalfd and one pidfd per supervised process. For each
//! intercepted call it reads who made it (`processes.rs`), asks the policy
//! (`decide.rs`), checks the notification is still pending, and answers:
//! a passed call is made here on a duplicate of the caller's descriptor and
//! timed (`perform.rs`), or continues in the caller untimed; a dropped or
//! limited one is answered 0 (or its argument error) without running. A
//! process's dump is written when its pidfd says it exited, and every
//! process dumps on `SIGUSR1` (`dump.rs`). The run ends when the program
//! has exited and no process is left under the filter.
//!
//! If the supervisor dies (even by `SIGKILL`), the keeper (`keeper.rs`), a
//! process forked from it that holds the only other copy of the listener,
//! takes over and lets every call through to the kernel, uncounted: the
//! program is never left stuck, and its calls keep working. Were the keeper
//! gone too, the listener would close and the kernel would answer every
//! waiting and later intercepted call with `ENOSYS` at once. The program
//! itself never holds the listener (the child closes it before `exec`).

mod bpf;
mod decide;
mod dump;
mod filter;
mod install;
mod keeper;
mod listener;
mod perform;
mod processes;
mod request;
mod signals;

use std::ffi::{OsStr, OsString};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use fadvise_shim_core::dump::Reason;
use fadvise_shim_core::policy::Policy;

use crate::Failure;
use decide::{Decider, Verdict};
use dump::DumpSettings;
pub use filter::KernelDrops;
use install::Refusal;
use listener::{Answer, Listener};
use processes::Processes;
use request::{File, Request};
use signals::Signals;

/// What `run` asks of the supervisor.
pub struct Supervise<'a> {
    pub policy: Policy,
    /// The policy file, or `built-in`, as dumps name it.
    pub policy_label: &'a [u8],
    pub dump_dir: &'a Path,
    pub drop_in_kernel: bool,
    pub program: &'a OsStr,
    pub arguments: &'a [OsString],
}

/// How the run ended.
pub struct Ended {
    /// The program's wait status.
    pub status: libc::c_int,
    /// What the filter dropped itself, uncounted.
    pub kernel_drops: Vec<String>,
}

pub fn supervise(run: Supervise) -> Result<Ended, Failure> {
    let drops = if run.drop_in_kernel {
        KernelDrops::from_policy(&run.policy)
    } else {
        KernelDrops::default()
    };
    let program = filter::program(&drops).map_err(Failure)?;
    let signals = Signals::block().map_err(|error| Failure(format!("signalfd: {error}")))?;
    signals::become_subreaper();
    let (installer, receiver) =
        install::pair(program).map_err(|error| Failure(format!("socketpair: {error}")))?;
    let mut command = Command::new(run.program);
    command.args(run.arguments);
    let mask = signals.previous_mask();
    // SAFETY: both make only async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || {
            signals::restore_mask(&mask)?;
            installer.install()
        })
    };
    let spawned = command.spawn();
    drop(command);
    let (child, listener) = match (spawned, receiver.receive()) {
        (Ok(child), Ok(listener)) => (child, listener),
        (_, Err(Refusal::Kernel(error))) => {
            return Err(Failure(format!(
                "the kernel refused the seccomp filter ({error}); --supervise needs seccomp \
                 user notification (Linux 5.9 or later, seccomp enabled, and not already \
                 under a seccomp supervisor)"
            )))
        }
        (Err(error), _) => {
            return Err(Failure(format!(
                "cannot run {}: {error}",
                run.program.to_string_lossy()
            )))
        }
        (Ok(mut child), Err(Refusal::NoMessage)) => {
            let _ = child.kill();
            return Err(Failure("the program started without its filter".into()));
        }
    };
    let listener = Listener(listener);
    let keeper = keeper::Keeper::start(&listener)
        .map_err(|error| Failure(format!("cannot start the keeper process: {error}")))?;
    let decider = Decider::new(run.policy);
    let mut supervisor = Supervisor {
        listener,
        keeper,
        processes: Processes::new(decider.budget_count()),
        decider,
        settings: DumpSettings {
            dir: run.dump_dir,
            policy: run.policy_label,
        },
        main: child.id(),
        main_status: None,
    };
    supervisor.serve(&signals);
    let status = supervisor.main_status.unwrap_or(0);
    supervisor.keeper.finish();
    Ok(Ended {
        status,
        kernel_drops: drops.describe(),
    })
}

struct Supervisor<'a> {
    listener: Listener,
    keeper: keeper::Keeper,
    decider: Decider,
    processes: Processes,
    settings: DumpSettings<'a>,
    main: u32,
    main_status: Option<libc::c_int>,
}

impl Supervisor<'_> {
    /// Until the program has exited and the filter has no process left.
    fn serve(&mut self, signals: &Signals) {
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
        let mut verdict = self
            .decider
            .decide(&request, &process.exe, || file_path(tgid, request.file));
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

/// The path of the file behind a call in process `tgid`, for `path` rules.
fn file_path(tgid: u32, file: File) -> Option<PathBuf> {
    let path = match file {
        File::None => return None,
        File::Fd(fd) => std::fs::read_link(format!("/proc/{tgid}/fd/{fd}")).ok()?,
        File::Mapping(address) => mapping_path(tgid, address)?,
    };
    let bytes = path.as_os_str().as_bytes();
    let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
    bytes
        .starts_with(b"/")
        .then(|| PathBuf::from(OsStr::from_bytes(bytes)))
}

/// The file mapped at `address` in process `tgid`, from `/proc/PID/maps`.
fn mapping_path(tgid: u32, address: usize) -> Option<PathBuf> {
    let maps = std::fs::read(format!("/proc/{tgid}/maps")).ok()?;
    maps.split(|&byte| byte == b'\n').find_map(|line| {
        let range = line.split(|&byte| byte == b' ').next()?;
        let range = std::str::from_utf8(range).ok()?;
        let (start, end) = range.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        if !(start..end).contains(&address) {
            return None;
        }
        let path = line
            .splitn(6, |&byte| byte == b' ')
            .nth(5)?
            .trim_ascii_start();
        Some(PathBuf::from(OsStr::from_bytes(path)))
    })
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
