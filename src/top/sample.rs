//! Sampling and rates for `top`: a `Sample` is every stats directory read
//! once and added up per group; two samples an interval apart give each
//! group's calls per second, time per second in passed calls, p99 latency
//! and busiest call over that interval.
//!
//! Totals only grow: a process that exits keeps its counts in the
//! directory (its dead stats file, then its container's and executable's
//! retained aggregate), so per container, executable or pod a difference
//! is the calls made in between. Per process, an exited process leaves its
//! row for its executable's `exited` row; the last counts of a row that
//! vanished are carried into that row's previous totals, so the move is not
//! taken for new calls. Differences are clamped at zero all the same: a
//! read racing a retirement can see a total dip for one sample.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::{self, BUCKETS};

use crate::cli::{TopBy, TopSort};
use crate::records::{self, group_key, GroupKey, Options};
use crate::Failure;

/// The pid shown for the processes that have exited, per executable.
pub const EXITED: &str = "exited";

/// Every directory read once, added up per group.
pub struct Sample {
    taken: Instant,
    groups: BTreeMap<GroupKey, Totals>,
    /// Files skipped as unreadable, one line each.
    pub warnings: Vec<String>,
}

/// One group's totals since its processes started.
#[derive(Clone)]
struct Totals {
    /// Processes running now.
    live: u64,
    /// Calls per executable in the group.
    exes: BTreeMap<String, u64>,
    calls: [u64; Call::COUNT],
    /// Approximate nanoseconds spent in passed calls, per call.
    passed_ns: [f64; Call::COUNT],
    /// Latency of every passed call of the group, whatever the call.
    latency: Vec<u64>,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            live: 0,
            exes: BTreeMap::new(),
            calls: [0; Call::COUNT],
            passed_ns: [0.0; Call::COUNT],
            latency: vec![0; BUCKETS],
        }
    }
}

impl Totals {
    fn add(&mut self, record: &Dump) {
        if record.reason == "live" {
            self.live += record.processes;
        }
        let mut calls = 0;
        for call in Call::ALL {
            let stats = record.stats.call(call);
            let index = call.index();
            calls += stats.count();
            self.calls[index] = self.calls[index].saturating_add(stats.count());
            self.passed_ns[index] += stats.approximate_sum_ns();
            for (mine, theirs) in self.latency.iter_mut().zip(&stats.buckets) {
                *mine = mine.saturating_add(*theirs);
            }
        }
        let exe = self.exes.entry(record.exe_name().to_string()).or_default();
        *exe = exe.saturating_add(calls);
    }

    /// Adds `other`'s counts (not its live processes).
    fn absorb(&mut self, other: &Totals) {
        for (exe, calls) in &other.exes {
            let mine = self.exes.entry(exe.clone()).or_default();
            *mine = mine.saturating_add(*calls);
        }
        for index in 0..Call::COUNT {
            self.calls[index] = self.calls[index].saturating_add(other.calls[index]);
            self.passed_ns[index] += other.passed_ns[index];
        }
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// One row of the table: a group over the last interval.
pub struct Row {
    pub key: GroupKey,
    pub live: u64,
    /// The group's executables, busiest over the interval first.
    pub exes: Vec<String>,
    pub calls_per_second: f64,
    /// Nanoseconds per second spent in passed calls.
    pub passed_ns_per_second: f64,
    /// Of the calls passed in the interval; `None` if none passed.
    pub p99_ns: Option<u64>,
    /// The call made most in the interval; `None` if none was.
    pub busiest: Option<Call>,
}

/// Reads every directory in `dirs` (the one reader's way: dead files
/// retired, each process once) and adds the records up per group of `by`.
pub fn take(dirs: &[PathBuf], by: TopBy) -> Sample {
    let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
    let options = Options {
        missing_is_empty: true,
        ..Options::default()
    };
    let read = records::read_each(dirs, options, &mut |record| {
        groups.entry(key_of(&record, by)).or_default().add(&record);
    });
    // A directory that cannot be listed is one more thing skipped: `top`
    // keeps drawing what it can read.
    let warnings = read.unwrap_or_else(|Failure(problem)| vec![problem]);
    Sample {
        taken: Instant::now(),
        groups,
        warnings,
    }
}

/// The group of a record. A process is its executable and pid as this pid
/// namespace sees it (two containers' pid 1 are two rows); processes that
/// have exited are one row per executable, as their aggregates are.
fn key_of(record: &Dump, by: TopBy) -> GroupKey {
    let origin = &record.origin;
    match by {
        TopBy::Container => group_key(record, crate::cli::GroupBy::Container),
        TopBy::Exe => group_key(record, crate::cli::GroupBy::Exe),
        TopBy::Pod => group_key(record, crate::cli::GroupBy::Pod),
        TopBy::Process if record.reason != "live" => exited_key(record.exe_name()),
        TopBy::Process => {
            let pid = if origin.outer_pid != 0 {
                origin.outer_pid
            } else {
                origin.pid
            };
            vec![
                ("exe", record.exe_name().to_string()),
                ("pid", pid.to_string()),
                ("start", origin.start_ticks.to_string()),
            ]
        }
    }
}

/// The row of an executable's exited processes (dead or retired).
fn exited_key(exe: &str) -> GroupKey {
    vec![
        ("exe", exe.to_string()),
        ("pid", EXITED.to_string()),
        ("start", "0".to_string()),
    ]
}

/// Where the counts of a vanished group went: a process's, to its
/// executable's exited row. Other groups do not vanish while their
/// aggregates are kept.
fn successor(key: &GroupKey) -> Option<GroupKey> {
    let exe = key.iter().find(|(field, _)| *field == "exe")?;
    let pid = key.iter().find(|(field, _)| *field == "pid")?;
    (pid.1 != EXITED).then(|| exited_key(&exe.1))
}

/// The rows of `current`, with rates over the time since `previous`.
pub fn rates(previous: &Sample, current: &Sample) -> Vec<Row> {
    let seconds = current
        .taken
        .duration_since(previous.taken)
        .as_secs_f64()
        .max(1e-3);
    let mut before = previous.groups.clone();
    for (key, totals) in &previous.groups {
        if current.groups.contains_key(key) {
            continue;
        }
        if let Some(next) = successor(key).filter(|next| current.groups.contains_key(next)) {
            before.entry(next).or_default().absorb(totals);
        }
    }
    let empty = Totals::default();
    current
        .groups
        .iter()
        .map(|(key, now)| {
            let then = before.get(key).unwrap_or(&empty);
            row(key, now, then, seconds)
        })
        .collect()
}

fn row(key: &GroupKey, now: &Totals, then: &Totals, seconds: f64) -> Row {
    let made: Vec<u64> = (0..Call::COUNT)
        .map(|index| now.calls[index].saturating_sub(then.calls[index]))
        .collect();
    let passed_ns: f64 = (0..Call::COUNT)
        .map(|index| (now.passed_ns[index] - then.passed_ns[index]).max(0.0))
        .sum();
    let latency: Vec<u64> = now
        .latency
        .iter()
        .zip(&then.latency)
        .map(|(now, then)| now.saturating_sub(*then))
        .collect();
    let passed = latency.iter().fold(0u64, |sum, &n| sum.saturating_add(n));
    let busiest = Call::ALL
        .into_iter()
        .filter(|call| made[call.index()] > 0)
        .max_by_key(|call| made[call.index()]);
    let mut exes: Vec<(u64, &String)> = now
        .exes
        .iter()
        .map(|(exe, calls)| {
            let before = then.exes.get(exe).copied().unwrap_or(0);
            (calls.saturating_sub(before), exe)
        })
        .collect();
    exes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    Row {
        key: key.clone(),
        live: now.live,
        exes: exes.into_iter().map(|(_, exe)| exe.clone()).collect(),
        calls_per_second: made.iter().sum::<u64>() as f64 / seconds,
        passed_ns_per_second: passed_ns / seconds,
        p99_ns: (passed > 0).then(|| histogram::value_at_quantile(&latency, 0.99)),
        busiest,
    }
}

/// Sorts rows highest first by `sort`, ties by calls per second and then
/// by group, so the order is stable from one redraw to the next.
pub fn sort(rows: &mut [Row], sort: TopSort) {
    let measure = |row: &Row| match sort {
        TopSort::Calls => row.calls_per_second,
        TopSort::Time => row.passed_ns_per_second,
        TopSort::P99 => row.p99_ns.map_or(-1.0, |ns| ns as f64),
    };
    rows.sort_by(|a, b| {
        measure(b)
            .total_cmp(&measure(a))
            .then(b.calls_per_second.total_cmp(&a.calls_per_second))
            .then(a.key.cmp(&b.key))
    });
}

/// Live processes in every group.
pub fn live_processes(rows: &[Row]) -> u64 {
    rows.iter().map(|row| row.live).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::histogram::index_of;
    use std::time::Duration;

    fn record(exe: &str, pid: u32, reason: &str, fsyncs: u64) -> Dump {
        let mut record = Dump {
            reason: reason.into(),
            ..Dump::default()
        };
        record.origin.exe = format!("/bin/{exe}");
        record.origin.pid = pid;
        record.stats.call_mut(Call::Fsync).buckets[index_of(1_000)] = fsyncs;
        record
    }

    fn sample(records: &[Dump], by: TopBy, at: Instant) -> Sample {
        let mut groups: BTreeMap<GroupKey, Totals> = BTreeMap::new();
        for record in records {
            groups.entry(key_of(record, by)).or_default().add(record);
        }
        Sample {
            taken: at,
            groups,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn an_exited_process_moves_to_its_exited_row_without_a_spike() {
        let start = Instant::now();
        let before = sample(
            &[record("db", 7, "live", 1_000), record("db", 8, "live", 50)],
            TopBy::Process,
            start,
        );
        // Process 7 made 100 more calls, exited and was retired; process 9
        // started, made 20 calls and exited, its file not yet retired.
        let mut dead = record("db", 9, "dead", 20);
        dead.origin.start_ticks = 12_345;
        let after = sample(
            &[
                record("db", 7, "retired", 1_100),
                record("db", 8, "live", 50),
                dead,
            ],
            TopBy::Process,
            start + Duration::from_secs(1),
        );
        let rows = rates(&before, &after);
        let exited = rows.iter().find(|row| row.key[1].1 == EXITED).unwrap();
        assert_eq!((exited.calls_per_second, exited.live), (120.0, 0));
        assert_eq!(rows.len(), 2);
        assert_eq!(exited.busiest, Some(Call::Fsync));
        let idle = rows.iter().find(|row| row.key[1].1 == "8").unwrap();
        assert_eq!(
            (idle.calls_per_second, idle.busiest, idle.p99_ns),
            (0.0, None, None)
        );
    }

    #[test]
    fn totals_that_dip_give_zero_not_a_negative_rate() {
        let start = Instant::now();
        let before = sample(&[record("db", 7, "live", 500)], TopBy::Exe, start);
        let after = sample(
            &[record("db", 7, "live", 400)],
            TopBy::Exe,
            start + Duration::from_secs(2),
        );
        let rows = rates(&before, &after);
        assert_eq!(rows[0].calls_per_second, 0.0);
        assert_eq!(rows[0].passed_ns_per_second, 0.0);
    }
}
