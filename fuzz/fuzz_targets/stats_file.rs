//! Fuzz target: the stats-file reader (`stats_file::decode`) on arbitrary
//! bytes (see `fadvise-shim-fuzz-checks`).
#![no_main]

use fadvise_shim_fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::stats_file(bytes));
