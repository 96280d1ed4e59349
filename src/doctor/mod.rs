//! `fadvise-shim doctor PID|PROGRAM`: says whether the shim is loaded in a
//! process (and with which policy, dump directory and signal, and its counts
//! so far), or whether it can reach a program at all.
//!
//! A target of digits is a process when `/proc/PID` exists; anything else
//! is a program, examined from its file by `program`. For a process it also
//! says whether io_uring instances are open, which nothing here reaches.
//! Both say when a default directory of this user was made by another user
//! (`records::squatted_defaults`): what the library then refuses is lost.

mod program;

use std::path::Path;
use std::process::ExitCode;

use crate::cli::DoctorArgs;
use crate::process::{self, dump, ShimProcess};
use crate::{output, Failure, Outcome};

pub fn main(args: DoctorArgs) -> Outcome {
    let target = args.target.as_str();
    let is_pid = !target.is_empty() && target.bytes().all(|byte| byte.is_ascii_digit());
    if !is_pid || (!Path::new("/proc").join(target).exists() && Path::new(target).exists()) {
        return program::main(target);
    }
    let pid = target
        .parse()
        .map_err(|_| Failure(format!("{target} is not a process id")))?;
    diagnose_process(pid)
}

fn diagnose_process(pid: u32) -> Outcome {
    let process = ShimProcess::inspect(pid)?;
    let io_uring = io_uring_line(&process::io_uring_fds(pid));
    let library = match process.require_library() {
        Ok(library) => library,
        Err(failure) => {
            // Said even without the library: it is what neither path reaches.
            if let Some(line) = &io_uring {
                output::print(
                    format!("process {pid}: {}\n{line}\n", process.exe.display()).as_bytes(),
                )?;
            }
            return Err(failure);
        }
    };
    let mut lines = vec![
        format!("process {pid}: {}", process.exe.display()),
        format!("library: {}", library.display()),
    ];
    lines.extend(io_uring);
    if process.secure {
        lines.push(
            "secure execution: yes (setuid, setgid or capabilities): FADVISE_SHIM_* variables \
             are ignored"
                .into(),
        );
    }
    lines.push(format!("policy: {}", process.policy_source.describe()));
    if let Some(problem) = &process.policy_problem {
        lines.push(format!(
            "policy problem: {problem} (the lines below assume the built-in default)"
        ));
    }
    lines.push(format!(
        "dump directory: {} ({})",
        process.dump_dir.display(),
        process.dump_dir_origin
    ));
    lines.push(format!("dump signal: {}", process.dump_signal.name()));
    lines.extend(squatted_directories());
    let mut out = format!("{}\n\n", lines.join("\n")).into_bytes();
    match dump::request(&process) {
        Ok((path, counts)) => out.extend(dump::render(&process, &path, &counts)),
        Err(Failure(reason)) => out.extend(format!("counts: not available: {reason}\n").bytes()),
    }
    output::print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// One warning per default directory of this user that another user made
/// first: the library refuses it, so statistics or dumps are lost.
fn squatted_directories() -> Vec<String> {
    crate::records::squatted_defaults(&[])
        .into_iter()
        .map(|alarm| format!("warning: {alarm}"))
        .collect()
}

/// What `doctor` says about a process's io_uring instances, if it has any.
fn io_uring_line(fds: &[u32]) -> Option<String> {
    if fds.is_empty() {
        return None;
    }
    let list: Vec<String> = fds.iter().map(u32::to_string).collect();
    let plural = if fds.len() == 1 { "" } else { "s" };
    Some(format!(
        "io_uring: {} instance{plural} open (fd {}): IORING_OP_FSYNC, IORING_OP_FADVISE and \
         IORING_OP_SYNC_FILE_RANGE requests bypass the preload library and every seccomp \
         filter (run --supervise too); they are not seen, counted or limited",
        fds.len(),
        list.join(", ")
    ))
}
