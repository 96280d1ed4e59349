//! `fadvise-shim run`: runs a command and all its children under the shim,
//! each process dumping at exit into one directory, then prints the merged
//! table to stderr and exits with the command's status. The shim is the
//! preload library, or with `--supervise` a seccomp supervisor in this
//! process (`crate::supervise`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};

use fadvise_shim_core::policy::{
    parse_policy_bytes, Policy, DUMP_DIR_ENV, ON_EXIT_ENV, POLICY_ENV, SYSTEM_POLICY_PATH,
};

use crate::cli::{GroupBy, RunArgs};
use crate::library::locate_library;
use crate::metrics::{load, table};
use crate::supervise::Supervise;
use crate::{Failure, Outcome};

pub fn main(args: RunArgs) -> Outcome {
    let policy = match &args.policy {
        Some(policy) => Some(check_policy(policy)?),
        None => None,
    };
    let (dump_dir, temporary) = match &args.dump_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|error| Failure(format!("{}: {error}", dir.display())))?;
            (absolute(dir)?, false)
        }
        None => (temporary_dir()?, true),
    };
    let (program, arguments) = args
        .command
        .split_first()
        .ok_or_else(|| Failure("no command given".into()))?;
    let ran = if args.supervise {
        run_supervised(&args, policy, &dump_dir, program, arguments)
    } else {
        run_preloaded(&args, &dump_dir, program, arguments).map(|status| (status, Vec::new()))
    };
    let (status, kernel_drops) = match ran {
        Ok(ran) => ran,
        Err(failure) => {
            if temporary {
                let _ = std::fs::remove_dir_all(&dump_dir);
            }
            return Err(failure);
        }
    };
    print_table(&dump_dir, program);
    if !kernel_drops.is_empty() {
        eprintln!(
            "fadvise-shim: dropped in the kernel and not counted: {}",
            kernel_drops.join(", ")
        );
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dump_dir);
    }
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// The program with the preload library, each process dumping at exit.
fn run_preloaded(
    args: &RunArgs,
    dump_dir: &Path,
    program: &OsStr,
    arguments: &[OsString],
) -> Result<ExitStatus, Failure> {
    let library = locate_library()?;
    let mut command = Command::new(program);
    command
        .args(arguments)
        .env(
            "LD_PRELOAD",
            preload_value(&library, std::env::var_os("LD_PRELOAD")),
        )
        .env(DUMP_DIR_ENV, dump_dir)
        .env(ON_EXIT_ENV, "1");
    if let Some(policy) = &args.policy {
        command.env(POLICY_ENV, absolute(policy)?);
    }
    let mut child = command
        .spawn()
        .map_err(|error| Failure(format!("cannot run {}: {error}", program.to_string_lossy())))?;
    // Like `time`, let Ctrl-C reach the command but not us, so the table of
    // an interrupted command is still printed.
    ignore_terminal_signals();
    child
        .wait()
        .map_err(|error| Failure(format!("waiting for the command: {error}")))
}

/// The program under the seccomp supervisor (`supervise`); its policy is
/// found as the library finds it: `--policy`, `FADVISE_SHIM_POLICY`, the
/// system policy, the built-in default.
fn run_supervised(
    args: &RunArgs,
    policy: Option<Policy>,
    dump_dir: &Path,
    program: &OsStr,
    arguments: &[OsString],
) -> Result<(ExitStatus, Vec<String>), Failure> {
    let from_env = std::env::var_os(POLICY_ENV)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    let system = Path::new(SYSTEM_POLICY_PATH);
    let (policy, source) = match (policy, &args.policy, from_env) {
        (Some(policy), Some(path), _) => (policy, Some(absolute(path)?)),
        (_, _, Some(path)) => (check_policy(&path)?, Some(absolute(&path)?)),
        _ if system.exists() => (check_policy(system)?, Some(system.to_path_buf())),
        _ => (Policy::default(), None),
    };
    let label = source.map_or_else(
        || b"built-in".to_vec(),
        |path| path.as_os_str().as_bytes().to_vec(),
    );
    let ended = crate::supervise::supervise(Supervise {
        policy,
        policy_label: &label,
        dump_dir,
        drop_in_kernel: args.drop_in_kernel,
        program,
        arguments,
    })?;
    Ok((ExitStatus::from_raw(ended.status), ended.kernel_drops))
}

/// The library in front of an existing `LD_PRELOAD`, never replacing it.
pub fn preload_value(library: &Path, existing: Option<OsString>) -> OsString {
    let mut value = OsString::from(library);
    if let Some(existing) = existing.filter(|existing| !existing.is_empty()) {
        let already = existing
            .to_string_lossy()
            .split([':', ' '])
            .any(|entry| Path::new(entry) == library);
        if already {
            return existing;
        }
        value.push(":");
        value.push(existing);
    }
    value
}

/// Refuses to start with a policy the shim would ignore.
fn check_policy(policy: &Path) -> Result<Policy, Failure> {
    let bytes =
        std::fs::read(policy).map_err(|error| Failure(format!("{}: {error}", policy.display())))?;
    parse_policy_bytes(&bytes).map_err(|errors| {
        let first = &errors[0];
        Failure(format!(
            "{}:{}:{}: {} (see `fadvise-shim check {}`)",
            policy.display(),
            first.line,
            first.column,
            first.message,
            policy.display()
        ))
    })
}

fn absolute(path: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(path).map_err(|error| Failure(format!("{}: {error}", path.display())))
}

/// A fresh private directory for this run's dumps.
fn temporary_dir() -> Result<PathBuf, Failure> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for attempt in 0..100u32 {
        let dir = base.join(format!("fadvise-shim-run.{pid}.{attempt}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(Failure(format!("{}: {error}", dir.display()))),
        }
    }
    Err(Failure(format!(
        "cannot create a directory in {}",
        base.display()
    )))
}

fn ignore_terminal_signals() {
    // SAFETY: setting dispositions to SIG_IGN has no memory-safety
    // requirement; the child already runs with its own.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
}

fn print_table(dump_dir: &Path, program: &std::ffi::OsStr) {
    use std::io::Write;
    let has_dumps = std::fs::read_dir(dump_dir).is_ok_and(|mut entries| {
        entries.any(|entry| {
            entry.is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with(".dump"))
        })
    });
    let text = if has_dumps {
        match load::load(&[dump_dir.to_path_buf()]) {
            Ok(dumps) => table::render(&dumps, GroupBy::Call),
            Err(Failure(message)) => format!("fadvise-shim: {message}\n").into_bytes(),
        }
    } else {
        format!(
            "fadvise-shim: {} made no intercepted call\n",
            program.to_string_lossy()
        )
        .into_bytes()
    };
    let _ = std::io::stderr().write_all(&text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_is_prepended_not_replaced() {
        let library = Path::new("/opt/libfadvise_shim.so");
        assert_eq!(preload_value(library, None), "/opt/libfadvise_shim.so");
        assert_eq!(
            preload_value(library, Some("/usr/lib/libeatmydata.so".into())),
            "/opt/libfadvise_shim.so:/usr/lib/libeatmydata.so"
        );
        let already = OsString::from("/x.so:/opt/libfadvise_shim.so");
        assert_eq!(preload_value(library, Some(already.clone())), already);
    }
}
