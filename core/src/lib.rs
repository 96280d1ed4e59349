//! Code shared by the preload library and the command-line tool.
//!
//! Everything here is plain, safe Rust: the names of the calls we intercept,
//! the histogram bucket layout, the policy model and its parser, the rules a
//! dropped call must keep, and the dump format with its writer and reader
//! side by side. The preload library runs parts of it inside other people's
//! processes and signal handlers, so the pieces it uses there (`histogram`,
//! `text`, `tally`, `dump::write_dump`, `args`) never allocate and never
//! panic.
#![forbid(unsafe_code)]

pub mod args;
pub mod call;
pub mod compaction;
pub mod dump;
pub mod gcra;
pub mod histogram;
pub mod identity;
pub mod origin;
pub mod policy;
pub mod retired;
pub mod sites;
pub mod stats;
pub mod stats_file;
pub mod tally;
pub mod text;
