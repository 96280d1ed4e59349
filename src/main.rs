//! `fadvise-shim`: run programs under the shim, read their dumps, check
//! policies, and install the library into images.
//!
//! This file only parses arguments and reports failures; each command lives
//! in its own module of the library (`lib.rs`). Every error is one line
//! prefixed `fadvise-shim:`; exit codes are 0 for success, 1 for failure and
//! 2 for usage errors.

use std::process::ExitCode;

use clap::Parser;

use fadvise_shim_cli::cli::{Cli, Command};
use fadvise_shim_cli::{
    check, doctor, dump_cmd, install, output, report, run, serve, top, Failure,
};

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
