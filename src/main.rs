//! `fadvise-shim`: run programs under the shim, read their dumps, check
//! policies, and install the library into images.
//!
//! This file only parses arguments and reports failures; each command lives
//! in its own module. Every error is one line prefixed `fadvise-shim:`; exit
//! codes are 0 for success, 1 for failure and 2 for usage errors.

mod check;
mod cli;
mod doctor;
mod dump_cmd;
mod elf;
mod install;
mod output;
mod procfs;
mod records;
mod report;
mod run;
mod serve;
mod stats_dir;
mod supervise;
mod symbolize;
mod top;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// A failure to report on stderr as `fadvise-shim: <message>`, exit 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure(error.to_string())
    }
}

/// What a command returns: its exit code, or a failure to report.
pub type Outcome = Result<ExitCode, Failure>;

fn main() -> ExitCode {
    output::quiet_broken_pipe();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Run(args) => run::main(args),
        Command::Report(args) => report::main(args),
        Command::Serve(args) => serve::main(args),
        Command::Top(args) => top::main(args),
        Command::Check(args) => check::main(args),
        Command::Dump(args) => dump_cmd::main(args),
        Command::Doctor(args) => doctor::main(args),
        Command::Install(args) => install::install(args),
        Command::Uninstall(args) => install::uninstall(args),
    };
    match outcome {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("fadvise-shim: {message}");
            ExitCode::FAILURE
        }
    }
}
