//! The fuzz corpus in the normal test suite: every saved input under
//! `fuzz/corpus/<target>/` goes through the same checks the cargo-fuzz
//! targets run (the `fadvise-shim-fuzz-checks` crate), so a fixed finding
//! stays fixed without a nightly toolchain. Bounded and deterministic: a
//! fixed set of files.
//! Also the dump-reader findings of the fuzzing runs, as regression tests.

use std::path::{Path, PathBuf};

use fadvise_shim_core::dump::parse_dump;
use fadvise_shim_fuzz_checks as checks;

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

fn replay(target: &str, check: fn(&[u8])) {
    for path in corpus(target) {
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{} panicked", path.display());
    }
}

#[test]
fn policy_corpus_never_panics() {
    replay("policy", checks::policy);
}

#[test]
fn dump_corpus_never_panics() {
    replay("dump", checks::dump);
}

#[test]
fn glob_corpus_never_panics() {
    replay("glob", checks::glob);
}

#[test]
fn stats_file_corpus_never_panics() {
    replay("stats_file", checks::stats_file);
}

/// A real dump with its `buckets` line for posix_fadvise replaced.
fn dump_with_buckets(buckets: &str) -> String {
    let seed = corpus("dump")
        .into_iter()
        .find(|path| path.ends_with("seed-dd.dump"))
        .unwrap();
    let text = std::fs::read_to_string(seed).unwrap();
    text.lines()
        .map(|line| match line.starts_with("buckets posix_fadvise ") {
            true => format!("buckets posix_fadvise {buckets}\n"),
            false => format!("{line}\n"),
        })
        .collect()
}

/// Every bucket fits in a u64 but their sum does not: `passed()` and
/// `count()` then overflow (a panic in debug builds, a wrong total that
/// `report` prints in release builds). The reader should refuse the file.
#[test]
fn dump_whose_bucket_total_overflows_is_refused() {
    let text = dump_with_buckets(&format!("0:{} 1:1", u64::MAX));
    assert!(
        parse_dump(&text).is_err(),
        "accepted a dump whose count overflows"
    );
}

/// `errors` counts passed calls that failed, so it can never exceed
/// `passed`; the writer cannot produce such a file, and a report of it
/// shows more errors than calls.
#[test]
fn dump_with_more_errors_than_passed_calls_is_refused() {
    let text = dump_with_buckets("0:1").replace(
        "stats posix_fadvise dropped=0 limited=0 errors=0",
        "stats posix_fadvise dropped=0 limited=0 errors=5",
    );
    assert!(text.contains("errors=5"));
    assert!(parse_dump(&text).is_err(), "accepted errors > passed");
}
