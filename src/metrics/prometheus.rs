//! The one Prometheus renderer, shared by `report --format prometheus` (for
//! node_exporter's textfile collector) and `serve` (`GET /metrics`): the
//! metric families built from `ProcessStats`, and their exposition as text
//! format 0.0.4 or OpenMetrics 1.0.0.
//!
//! Series are labelled by `call`, `verdict`, `exe`, `container_id` and
//! `pod_uid` (the last two only where known), never by pid;
//! `fadvise_shim_caller_calls_total` also by `caller`, the file name of the
//! loaded object that made the calls (`unknown` for calls no site names),
//! so a dashboard shows which library makes them: one series per library,
//! not per call site (those are for `report --by caller`). Label values
//! come from files the watched processes wrote, so they are bounded:
//! control characters become `_` and each value is cut to a fixed length;
//! processes are grouped by the cleaned values, so two hostile names that
//! clean to the same value make one series, never a duplicate.
//!
//! Latency is a classic histogram in seconds. Its `le` bounds are
//! `2^k - 1` ns, each the highest value of an HDR bucket, so every HDR
//! counter lies entirely at or below a bound or entirely above it: bucket
//! counts are exact, not rounded (proved in the tests below). No
//! timestamps: the scraper stamps the scrape.

use std::collections::btree_map::{BTreeMap, Entry};
use std::fmt::Write;

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::highest_value_at;
use fadvise_shim_core::stats::Snapshot;
use fadvise_shim_core::text::clean;

use crate::records::process::{from_dump, ProcessStats};

/// Bucket bounds in nanoseconds: `2^k - 1` for k = 8, 10, .., 34, from
/// 255 ns to 17.2 s, a factor of 4 apart.
pub const BOUNDS_NS: [u64; 14] = {
    let mut bounds = [0; 14];
    let mut i = 0;
    while i < bounds.len() {
        bounds[i] = (1u64 << (8 + 2 * i)) - 1;
        i += 1;
    }
    bounds
};

/// Longest label values kept: a file name's limit (NAME_MAX), a container
/// id's 64 hex digits, a UUID's 36 characters.
const MAX_EXE: usize = 255;
const MAX_CONTAINER_ID: usize = 64;
const MAX_POD_UID: usize = 36;
/// A module's file name, as an executable's.
const MAX_CALLER: usize = 255;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric family: its name (for counters without `_total`, as
/// OpenMetrics names families), help, type and samples.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

/// One sample line: `<family name><suffix>{<labels>} <value>`.
#[derive(Debug)]
pub struct Sample {
    /// `_total`, `_bucket`, `_sum`, `_count`, or empty (gauges).
    pub suffix: &'static str,
    /// Rendered and escaped: `call="fsync",exe="dd"`.
    pub labels: String,
    pub value: f64,
}

/// The `report --format prometheus` output for a set of dumps.
pub fn render(dumps: &[Dump]) -> Vec<u8> {
    expose(&families(dumps.iter().map(from_dump), None), Format::Text)
}

/// The metric families for `processes`; with `unreadable`, also the gauge
/// of files the scrape could not read (only `serve` reads on its own).
/// `processes` are taken one at a time and folded into their group, so
/// memory holds one `Snapshot` per group, not per process.
pub fn families(
    processes: impl IntoIterator<Item = ProcessStats>,
    unreadable: Option<u64>,
) -> Vec<Family> {
    let groups = grouped(processes);
    let mut calls = family(
        "fadvise_shim_calls",
        "Intercepted calls by verdict: passed to the kernel, dropped, or limited (over a rate limit).",
        Kind::Counter,
    );
    let mut errors = family(
        "fadvise_shim_call_errors",
        "Passed calls that returned an error.",
        Kind::Counter,
    );
    let mut duration = family(
        "fadvise_shim_call_duration_seconds",
        "Latency of intercepted calls that passed to the kernel.",
        Kind::Histogram,
    );
    let mut by_caller = family(
        "fadvise_shim_caller_calls",
        "Intercepted calls by the loaded object (program or library) that made them, and verdict.",
        Kind::Counter,
    );
    let mut seen = family(
        "fadvise_shim_processes_seen",
        "Processes whose counts are included, live or exited.",
        Kind::Counter,
    );
    let mut live = family(
        "fadvise_shim_processes",
        "Processes running now that keep live statistics.",
        Kind::Gauge,
    );
    for (identity, group) in &groups {
        for (call, stats) in group.stats.made() {
            let labels = format!("call=\"{}\",{identity}", call.name());
            for (verdict, value) in [
                ("passed", stats.passed()),
                ("dropped", stats.dropped),
                ("limited", stats.limited),
            ] {
                calls.push("_total", format!("{labels},verdict=\"{verdict}\""), value);
            }
            errors.push("_total", labels.clone(), stats.errors);
            histogram(&mut duration, &labels, &stats.buckets);
            let sum = stats.approximate_sum_ns() / 1e9;
            duration.samples.push(Sample {
                suffix: "_sum",
                labels: labels.clone(),
                value: sum,
            });
            duration.push("_count", labels.clone(), stats.passed());
            let mut left = [stats.passed(), stats.dropped, stats.limited];
            for (caller, counts) in by_calling_module(&group.stats, call) {
                push_verdicts(&mut by_caller, &labels, caller, &counts);
                for (left, count) in left.iter_mut().zip(counts) {
                    *left = left.saturating_sub(count);
                }
            }
            if left.iter().any(|&count| count != 0) {
                push_verdicts(&mut by_caller, &labels, "unknown", &left);
            }
        }
        seen.push("_total", identity.clone(), group.seen);
        if group.live > 0 {
            live.push("", identity.clone(), group.live);
        }
    }
    let mut all = vec![calls, errors, duration, by_caller, seen, live];
    if let Some(unreadable) = unreadable {
        let mut files = family(
            "fadvise_shim_unreadable_files",
            "Files in the statistics directories that this scrape could not read.",
            Kind::Gauge,
        );
        files.push("", String::new(), unreadable);
        all.push(files);
    }
    all
}

/// The exposition of `families` in `format`.
pub fn expose(families: &[Family], format: Format) -> Vec<u8> {
    let mut out = String::new();
    for family in families {
        // Text 0.0.4 names a counter's metadata with `_total`; OpenMetrics
        // names the family without it.
        let name = match (format, family.kind) {
            (Format::Text, Kind::Counter) => format!("{}_total", family.name),
            _ => family.name.to_string(),
        };
        let kind = match family.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(out, "# HELP {name} {}", family.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if format == Format::OpenMetrics && family.name.ends_with("_seconds") {
            let _ = writeln!(out, "# UNIT {name} seconds");
        }
        for sample in &family.samples {
            let _ = write!(out, "{}{}", family.name, sample.suffix);
            if !sample.labels.is_empty() {
                let _ = write!(out, "{{{}}}", sample.labels);
            }
            // `+ 0.0` turns an empty sum's -0 into 0.
            let _ = writeln!(out, " {}", sample.value + 0.0);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out.into_bytes()
}

/// `_total` samples of one caller: passed, dropped, limited.
fn push_verdicts(family: &mut Family, labels: &str, caller: &str, counts: &[u64; 3]) {
    for (verdict, &value) in ["passed", "dropped", "limited"].iter().zip(counts) {
        let caller = label_value(caller, MAX_CALLER);
        family.push(
            "_total",
            format!("{labels},caller=\"{caller}\",verdict=\"{verdict}\""),
            value,
        );
    }
}

/// A call's passed, dropped and limited counts by calling module's file
/// name (`from_dump` has already added the sites up per module; this adds
/// up whatever sites there are, so a module is one series).
fn by_calling_module(stats: &Snapshot, call: Call) -> BTreeMap<&str, [u64; 3]> {
    let mut callers: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for (key, site) in stats.sites.of_call(call) {
        let Some(module) = &key.module else { continue };
        let counts = callers.entry(module.file_name()).or_default();
        for (count, add) in counts
            .iter_mut()
            .zip([site.passed(), site.dropped, site.limited])
        {
            *count = count.saturating_add(add);
        }
    }
    callers
}

/// Processes added up by their cleaned identity, which is also the
/// rendered label set `exe="…"[,container_id="…"][,pod_uid="…"]`.
struct Group {
    seen: u64,
    live: u64,
    stats: Snapshot,
}

fn grouped(processes: impl IntoIterator<Item = ProcessStats>) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for process in processes {
        let mut identity = format!("exe=\"{}\"", label_value(&process.exe, MAX_EXE));
        for (name, value, limit) in [
            ("container_id", &process.container_id, MAX_CONTAINER_ID),
            ("pod_uid", &process.pod_uid, MAX_POD_UID),
        ] {
            if let Some(value) = value.as_deref().filter(|value| !value.is_empty()) {
                let _ = write!(identity, ",{name}=\"{}\"", label_value(value, limit));
            }
        }
        let live = if process.live { process.processes } else { 0 };
        match groups.entry(identity) {
            Entry::Vacant(vacant) => {
                vacant.insert(Group {
                    seen: process.processes,
                    live,
                    stats: process.stats,
                });
            }
            Entry::Occupied(mut occupied) => {
                let group = occupied.get_mut();
                group.seen += process.processes;
                group.live += live;
                group.stats.merge(&process.stats);
            }
        }
    }
    groups
}

/// The cumulative `_bucket` samples of one HDR histogram, `+Inf` last.
fn histogram(duration: &mut Family, labels: &str, counts: &[u64]) {
    let mut cumulative = 0u64;
    let mut counters = counts.iter().enumerate().peekable();
    for bound in BOUNDS_NS {
        while let Some((_, &count)) =
            counters.next_if(|&(index, _)| highest_value_at(index) <= bound)
        {
            cumulative = cumulative.saturating_add(count);
        }
        let seconds = bound as f64 / 1e9;
        duration.push("_bucket", format!("{labels},le=\"{seconds}\""), cumulative);
    }
    let total = counts
        .iter()
        .fold(0u64, |total, &count| total.saturating_add(count));
    duration.push("_bucket", format!("{labels},le=\"+Inf\""), total);
}

fn family(name: &'static str, help: &'static str, kind: Kind) -> Family {
    Family {
        name,
        help,
        kind,
        samples: Vec::new(),
    }
}

impl Family {
    fn push(&mut self, suffix: &'static str, labels: String, count: u64) {
        self.samples.push(Sample {
            suffix,
            labels,
            value: count as f64,
        });
    }
}

/// A label value from untrusted text: control characters replaced, at
/// most `limit` bytes (cut at a character boundary), then escaped as both
/// formats want (`\`, `"`, line feed).
fn label_value(value: &str, limit: usize) -> String {
    clean(value, '_', limit)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::histogram::{lowest_value_at, BUCKETS};

    #[test]
    fn every_hdr_bucket_lies_on_one_side_of_every_bound() {
        for bound in BOUNDS_NS {
            assert!(
                (0..BUCKETS).any(|index| highest_value_at(index) == bound),
                "{bound} is not the top of an HDR bucket"
            );
            for index in 0..BUCKETS {
                let (low, high) = (lowest_value_at(index), highest_value_at(index));
                assert!(
                    high <= bound || low > bound,
                    "bucket {index} straddles {bound}"
                );
            }
        }
        assert_eq!(BOUNDS_NS[0], 255);
        assert_eq!(BOUNDS_NS[13], 17_179_869_183);
    }

    #[test]
    fn hostile_label_values_are_cleaned_escaped_and_capped() {
        assert_eq!(label_value("a\"b\\c\nd\u{1b}e", 64), "a\\\"b\\\\c_d_e");
        assert_eq!(label_value(&"é".repeat(200), MAX_EXE).len(), 254);
        let long = ProcessStats {
            exe: "x".repeat(1000),
            container_id: Some("f".repeat(100)),
            processes: 1,
            ..ProcessStats::default()
        };
        let other = ProcessStats {
            exe: "x".repeat(300),
            container_id: Some("f".repeat(64)),
            processes: 1,
            ..ProcessStats::default()
        };
        // Both clean to the same identity: one series, both counted.
        let groups = grouped([long, other]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups.values().next().unwrap().seen, 2);
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let text = String::from_utf8(expose(&families([], None), Format::OpenMetrics)).unwrap();
        assert!(
            text.contains("# TYPE fadvise_shim_calls counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        let text = String::from_utf8(expose(&families([], None), Format::Text)).unwrap();
        assert!(
            text.contains("# TYPE fadvise_shim_calls_total counter\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
    }
}
