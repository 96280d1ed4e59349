//! What every fuzz input must survive, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/`) and by `tests/fuzz_corpus.rs`, which replays the
//! saved corpus in the normal test suite: parsing never panics, and a parsed
//! value can be used the way the preload library, `check` and `report` use
//! it without panicking.
//!
//! A crate of its own, rather than a file both include with `#[path]` or a
//! module of `fadvise-shim-core`: the checks are test code (they panic on
//! purpose) and do not belong in the library the shim ships, and `fuzz/` is
//! its own workspace, built only with nightly and libFuzzer, which the normal
//! build must not need. This crate needs neither, so the fuzz targets and the
//! root package's tests both depend on it. The rules a reader enforces stay
//! in the readers (`Snapshot::check_totals`); these checks call them rather
//! than restate them.
#![forbid(unsafe_code)]

use std::path::Path;

use fadvise_shim_core::call::{Advice, Call};
use fadvise_shim_core::dump::{parse_dump, write_dump, Budget, BudgetUse, Budgets, Header, Reason};
use fadvise_shim_core::origin::OriginRef;
use fadvise_shim_core::policy::{parse_policy_bytes, Action, Glob};

/// A policy file's bytes: valid ones are used as the shim uses them; invalid
/// ones must come with at least one error at a real position.
pub fn policy(bytes: &[u8]) {
    let policy = match parse_policy_bytes(bytes) {
        Ok(policy) => policy,
        Err(errors) => {
            assert!(!errors.is_empty(), "rejected without a reason");
            let lines = bytes.split(|&byte| byte == b'\n').count();
            for error in &errors {
                assert!(error.line >= 1 && error.column >= 1, "{error}");
                assert!(error.line <= lines, "{error} is past line {lines}");
            }
            return;
        }
    };
    let _ = (policy.dump.signal.number(), policy.dump.signal.name());
    let advices = std::iter::once(None).chain(Advice::ALL.map(Some));
    let advices: Vec<Option<Advice>> = advices.collect();
    for rule in &policy.rules {
        let _ = rule.label();
        let _ = rule.applies_to_exe(Path::new("/usr/bin/dd"));
        if let Some(globs) = &rule.path {
            let _ = globs.matches_path(Path::new("/var/log/app/current.log"));
        }
        for call in Call::ALL {
            for &advice in &advices {
                let _ = rule.covers(call, advice);
            }
        }
        if let Action::Limit(limit) = rule.action {
            // The limiter divides by the rate and multiplies by the burst.
            assert!(limit.rate.is_finite() && limit.rate > 0.0, "{limit:?}");
            assert!(limit.burst.is_finite() && limit.burst >= 1.0, "{limit:?}");
        }
    }
}

/// What a reader accepted, a process could have written: exact totals and no
/// more failed calls than passed ones (the rule the readers apply).
fn assert_writable(snapshot: &fadvise_shim_core::stats::Snapshot) {
    if let Err(message) = snapshot.check_totals() {
        panic!("accepted counts no process can write: {message}");
    }
}

/// A dump file's bytes (read as `fadvise-shim report` reads them, lossily):
/// a dump that parses holds counts a process could have written, and can
/// be summarised, merged, and written back to the same statistics.
pub fn dump(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let Ok(dump) = parse_dump(&text) else {
        return;
    };
    assert_writable(&dump.stats);
    for (_, stats) in dump.stats.made() {
        let _ = (stats.count(), stats.passed(), stats.min(), stats.max());
        for quantile in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let _ = stats.quantile(quantile);
        }
        let _ = stats.approximate_sum_ns();
    }
    let budgets = ParsedBudgets(&dump.budgets);
    let origin = &dump.origin;
    let header = Header {
        origin: OriginRef {
            exe: origin.exe.as_bytes(),
            pid: origin.pid,
            outer_pid: origin.outer_pid,
            pid_namespace: origin.pid_namespace,
            start_ticks: origin.start_ticks,
            nonce: origin.nonce,
            uid: origin.uid,
            cgroup: origin.cgroup.as_bytes(),
            container_id: origin.container_id.as_bytes(),
            pod_uid: origin.pod_uid.as_bytes(),
            hostname: origin.hostname.as_bytes(),
        },
        ppid: dump.ppid,
        policy: dump.policy.as_bytes(),
        signal: &dump.signal,
        reason: Reason::Signal,
        unix_time: dump.unix_time,
        budgets: &budgets,
        processes: dump.processes,
        absorbed: &dump.absorbed,
        stats_dir: dump.stats_dir,
    };
    let mut written = Vec::new();
    write_dump(&mut written, &header, &dump.stats);
    let written = String::from_utf8(written).expect("the writer writes UTF-8");
    let again = parse_dump(&written)
        .unwrap_or_else(|error| panic!("a written dump does not read back: {error}\n{written}"));
    assert_eq!(
        again.stats, dump.stats,
        "statistics changed on a round trip"
    );
    assert_eq!(again.origin, dump.origin, "origin changed on a round trip");
    assert_eq!(
        again.absorbed, dump.absorbed,
        "absorbed changed on a round trip"
    );
    let counts = |budgets: &[Budget]| -> Vec<(u64, u64)> {
        budgets.iter().map(|b| (b.admitted, b.refused)).collect()
    };
    assert_eq!(
        counts(&again.budgets),
        counts(&dump.budgets),
        "budgets changed"
    );
    let mut merged = dump.stats.clone();
    merged.merge(&dump.stats);
}

/// Budgets read from a dump, handed back to the writer.
struct ParsedBudgets<'a>(&'a [Budget]);

impl Budgets for ParsedBudgets<'_> {
    fn each(&self, visit: &mut dyn FnMut(&BudgetUse)) {
        for budget in self.0 {
            visit(&BudgetUse {
                name: budget.name.as_bytes(),
                rate: budget.rate,
                burst: budget.burst,
                admitted: budget.admitted,
                refused: budget.refused,
            });
        }
    }
}

/// A glob pattern, a newline, then a path: compiling and matching never
/// panic, and a pattern with no special character matches exactly itself.
pub fn glob(bytes: &[u8]) {
    let split = bytes
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(bytes.len());
    let (pattern, path) = (&bytes[..split], bytes.get(split + 1..).unwrap_or_default());
    let Ok(pattern) = std::str::from_utf8(pattern) else {
        return;
    };
    let Ok(glob) = Glob::new(pattern) else {
        return;
    };
    let matched = glob.is_match(path);
    if !pattern.contains(['*', '?', '[', ']', '{', '}', ',', '\\']) {
        assert!(
            glob.is_match(pattern.as_bytes()),
            "{pattern:?} does not match itself"
        );
        assert_eq!(
            matched,
            path == pattern.as_bytes(),
            "{pattern:?} against {path:?}"
        );
    }
}

/// A stats file's bytes: `decode` never panics, and what it accepts holds
/// only totals a process can have written.
pub fn stats_file(bytes: &[u8]) {
    use fadvise_shim_core::stats_file::decode;
    let Ok(live) = decode(bytes) else {
        return;
    };
    assert_writable(&live.stats);
    assert!(live.origin.exe.len() <= fadvise_shim_core::origin::MAX_VALUE_BYTES);
    assert!(
        !live.origin.cgroup.contains('\n'),
        "a line break in the origin"
    );
}
