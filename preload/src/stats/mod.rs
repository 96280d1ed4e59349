//! This process's statistics: per call, counters and a latency histogram,
//! per call site the same in brief (`sites`),
//! updated with one relaxed atomic add per event, in private memory until
//! the first call makes the process's stats file, then in that file's
//! shared mapping; who the process is; and, at exit, the retirement of dead
//! neighbours' files.

mod area;
pub mod compact;
pub mod counters;
pub mod file;
pub mod origin;
pub mod sites;
