//! `fadvise-shim report`: merges dumps (files, or directories of `*.dump`
//! files) into one report in the chosen format, on stdout or written
//! atomically to `--output FILE`.
//!
//! Every format is rendered from the same merged `Snapshot`s, so they all
//! tell the same counts; one module per format. The table and Prometheus
//! formats, and the reading and merging of records, are in `crate::metrics`,
//! which `run` and `serve` share.

mod hgrm;
mod hlog;
mod json;
mod svg;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::{Format, ReportArgs};
use crate::metrics::{load, prometheus, table};
use crate::{Failure, Outcome};

pub fn main(args: ReportArgs) -> Outcome {
    let dumps = load::load(&args.paths)?;
    let report = match args.format {
        Format::Table => table::render(&dumps, args.by),
        Format::Json => json::render(&dumps, args.by),
        Format::Hgrm => hgrm::render(&dumps),
        Format::Hlog => hlog::render(&dumps)?,
        Format::Prometheus => prometheus::render(&dumps),
        Format::Svg => svg::render(&dumps)?,
    };
    match &args.output {
        Some(file) => write_atomically(file, &report)?,
        None => crate::output::print(&report)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `file`, then renames it over
/// `file`: a reader (node_exporter's textfile collector, say) sees the old
/// report or the new one, never half of one.
fn write_atomically(file: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let name = file
        .file_name()
        .ok_or_else(|| Failure(format!("{}: not a file name", file.display())))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary: PathBuf = file.with_file_name(temporary_name);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut out| {
            out.write_all(bytes)?;
            out.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, file));
    written.map_err(|error| {
        let _ = fs::remove_file(&temporary);
        Failure(format!("{}: {error}", file.display()))
    })
}
