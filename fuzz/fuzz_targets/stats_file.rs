//! Fuzz target: the stats-file reader (`stats_file::decode`) on arbitrary
//! bytes (see `checks.rs`).
#![no_main]

// Each target uses one of the shared checks.
#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::stats_file(bytes));
