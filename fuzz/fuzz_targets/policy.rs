//! Fuzz target: `parse_policy_bytes` on arbitrary bytes (see
//! `fadvise-shim-fuzz-checks`).
#![no_main]

use fadvise_shim_fuzz_checks as checks;

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| checks::policy(bytes));
