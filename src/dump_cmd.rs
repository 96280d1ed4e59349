//! `fadvise-shim dump PID`: makes a running process dump now and prints its
//! table.
//!
//! The process's settings (dump signal, dump directory) are learned from
//! `/proc` by `crate::process`, which also makes the request
//! (`crate::process::dump`).

use std::process::ExitCode;

use crate::cli::DumpArgs;
use crate::process::{dump, ShimProcess};
use crate::{output, Outcome};

pub fn main(args: DumpArgs) -> Outcome {
    let process = ShimProcess::inspect(args.pid)?;
    process.require_library()?;
    let (path, dump) = dump::request(&process)?;
    output::print(&dump::render(&process, &path, &dump))?;
    Ok(ExitCode::SUCCESS)
}
