//! The `fadvise-shim` command line as a library: every command, and the
//! layers below them that commands share. `main.rs` only parses arguments
//! and reports failures; tests use these modules directly.
//!
//! Commands: `run`, `report`, `serve`, `top`, `check`, `dump_cmd`,
//! `doctor`, `install`. A command imports only the layers below it, never
//! another command. Shared layers: `cli` (arguments), `failure`, `output`,
//! `library` (the preload library's name and where it is), `metrics` (what
//! `report`, `serve` and `run` render: the call table, call sites, the
//! Prometheus families), `process` (a live process's shim settings, and dump
//! requests), `supervise` (the seccomp supervisor of `run --supervise`),
//! `records` (the one reader of stats files, aggregates and dumps, each
//! process once) over `stats_dir`, `procfs`, and `elf` and `symbolize`
//! (reading ELF files and naming call sites).

pub mod check;
pub mod cli;
pub mod doctor;
pub mod dump_cmd;
pub mod elf;
mod failure;
pub mod install;
pub mod library;
pub mod metrics;
pub mod output;
pub mod process;
pub mod procfs;
pub mod records;
pub mod report;
pub mod run;
pub mod serve;
pub mod stats_dir;
pub mod supervise;
pub mod symbolize;
pub mod top;

pub use failure::{Failure, Outcome};
