//! `fadvise-shim run --supervise`: reaches programs that symbol
//! interposition cannot (static binaries, Go, inline `syscall`
//! instructions) with a seccomp filter and a supervising process.
//!
//! The child installs the filter (`filter.rs`, `handoff.rs`) and execs the
//! program; the filter is inherited by every thread, child and exec after
//! it. This process is the supervisor: one loop (`event_loop.rs`) polls the
//! listener, a signalfd and one pidfd per supervised process. For each
//! intercepted call it reads who made it (`processes.rs`, `paths.rs`,
//! `modules.rs`), asks the policy (`decide.rs`, core's one evaluator),
//! checks the notification is still pending, and answers: a passed call is
//! made here on a duplicate of the caller's descriptor and timed
//! (`perform.rs`), or continues in the caller untimed; a dropped or
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
mod event_loop;
mod filter;
mod handoff;
mod keeper;
mod listener;
mod modules;
mod paths;
mod perform;
mod processes;
mod request;
mod signals;

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use fadvise_shim_core::policy::Policy;

use crate::Failure;
use decide::Decider;
use dump::DumpSettings;
use event_loop::Supervisor;
use filter::KernelDrops;
use handoff::Refusal;
use listener::Listener;
use processes::Processes;
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
        handoff::pair(program).map_err(|error| Failure(format!("socketpair: {error}")))?;
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
    supervisor.run(&signals);
    let status = supervisor.main_status.unwrap_or(0);
    supervisor.keeper.finish();
    Ok(Ended {
        status,
        kernel_drops: drops.describe(),
    })
}
