//! The `prometheus` format: text exposition for node_exporter's textfile
//! collector, one series per executable (dumps grouped by file name).
//!
//! Latency is a classic histogram in seconds with fixed `le` bounds from
//! 100 ns to 10 s. An HdrHistogram counter goes into the first bound at or
//! above its highest value, so a bucket never counts a latency above its
//! bound. No timestamps: the collector stamps the scrape.

use std::fmt::Write;

use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::highest_value_at;

use super::load::merged_by_exe;

/// Bucket bounds in nanoseconds: 1, 2.5 and 5 per decade, 100 ns .. 10 s.
const BOUNDS_NS: [u64; 25] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

const DURATION: &str = "fadvise_shim_call_duration_seconds";
const CALLS: &str = "fadvise_shim_calls_total";
const PROCESSES: &str = "fadvise_shim_processes";

pub fn render(dumps: &[Dump]) -> Vec<u8> {
    let groups = merged_by_exe(dumps);
    let mut out = String::new();
    let _ = write!(
        out,
        "# HELP {DURATION} Latency of intercepted calls that passed to the kernel.\n\
         # TYPE {DURATION} histogram\n"
    );
    for (exe, (_, snapshot)) in &groups {
        let exe = escape(exe);
        for (call, stats) in snapshot.made() {
            let labels = format!("call=\"{}\",exe=\"{exe}\"", call.name());
            let mut cumulative = 0u64;
            let mut counters = stats.buckets.iter().enumerate().peekable();
            for bound in BOUNDS_NS {
                while let Some((_, &count)) =
                    counters.next_if(|&(index, _)| highest_value_at(index) <= bound)
                {
                    cumulative += count;
                }
                let seconds = bound as f64 / 1e9;
                let _ = writeln!(
                    out,
                    "{DURATION}_bucket{{{labels},le=\"{seconds}\"}} {cumulative}"
                );
            }
            let passed = stats.passed();
            let _ = writeln!(out, "{DURATION}_bucket{{{labels},le=\"+Inf\"}} {passed}");
            // `+ 0.0` turns the empty sum's -0 into 0.
            let sum = stats.approximate_sum_ns() / 1e9 + 0.0;
            let _ = writeln!(out, "{DURATION}_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "{DURATION}_count{{{labels}}} {passed}");
        }
    }
    let _ = write!(
        out,
        "# HELP {CALLS} Intercepted calls by outcome: passed to the kernel, dropped, \
         limited (over a rate limit), or error (passed calls that failed: a subset of passed).\n\
         # TYPE {CALLS} counter\n"
    );
    for (exe, (_, snapshot)) in &groups {
        let exe = escape(exe);
        for (call, stats) in snapshot.made() {
            for (outcome, value) in [
                ("passed", stats.passed()),
                ("dropped", stats.dropped),
                ("limited", stats.limited),
                ("error", stats.errors),
            ] {
                let _ = writeln!(
                    out,
                    "{CALLS}{{call=\"{}\",exe=\"{exe}\",outcome=\"{outcome}\"}} {value}",
                    call.name()
                );
            }
        }
    }
    let _ = write!(
        out,
        "# HELP {PROCESSES} Processes whose dumps were merged into this report.\n\
         # TYPE {PROCESSES} gauge\n"
    );
    for (exe, (processes, _)) in &groups {
        let _ = writeln!(out, "{PROCESSES}{{exe=\"{}\"}} {processes}", escape(exe));
    }
    out.into_bytes()
}

/// A label value as the text format wants it: `\`, `"` and line feeds
/// escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
