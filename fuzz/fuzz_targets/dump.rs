//! Fuzz target: `parse_dump` on arbitrary bytes read lossily as UTF-8 (see
//! `fadvise-shim-fuzz-checks`).
#![no_main]

use fadvise_shim_fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::dump(bytes));
