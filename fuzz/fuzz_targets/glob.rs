//! Fuzz target: `Glob::new` and `Glob::is_match` (see
//! `fadvise-shim-fuzz-checks`).
#![no_main]

use fadvise_shim_fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::glob(bytes));
