//! The `hgrm` format: HdrHistogram's percentile distribution text, as the
//! Java `outputPercentileDistribution(out, 1000.0)` prints it (values
//! recorded in nanoseconds, printed in microseconds), one block per call
//! after a `# call: NAME` line, for hdr-plot and the HdrHistogram web plotter.

use std::fmt::Write;

use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::to_hdrhistogram;

use crate::metrics::load::merged;

/// Java's default number of percentile ticks per halving of the distance to
/// 100%.
const TICKS_PER_HALF_DISTANCE: u32 = 5;
/// Recorded nanoseconds per printed microsecond.
const UNIT_RATIO: f64 = 1000.0;

pub fn render(dumps: &[Dump]) -> Vec<u8> {
    let total = merged(dumps);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# fadvise-shim: latency of passed calls from {} processes; values in microseconds \
         (recorded in nanoseconds, output value unit scaling ratio {UNIT_RATIO})",
        crate::metrics::load::process_count(dumps)
    );
    for (call, stats) in total.made() {
        let _ = writeln!(out, "# call: {}", call.name());
        write_distribution(&mut out, &to_hdrhistogram(&stats.buckets));
    }
    out.into_bytes()
}

/// One distribution block. Java prints values with as many decimals as the
/// histogram keeps significant digits; three keep every nanosecond here.
fn write_distribution(out: &mut String, histogram: &hdrhistogram::Histogram<u64>) {
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total_count = 0u64;
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        total_count += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / UNIT_RATIO;
        let quantile = step.quantile_iterated_to();
        let _ = write!(out, "{value:12.3} {quantile:2.12} {total_count:10}");
        // The last line, at 100%, has no finite "1 in N".
        if quantile < 1.0 {
            let _ = write!(out, " {:14.2}", 1.0 / (1.0 - quantile));
        }
        out.push('\n');
    }
    let sub_buckets = 2 * histogram.distinct_values() / (usize::from(histogram.buckets()) + 1);
    let _ = write!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]\n\
         #[Max     = {:12.3}, Total count    = {:12}]\n\
         #[Buckets = {:12}, SubBuckets     = {:12}]\n",
        histogram.mean() / UNIT_RATIO,
        histogram.stdev() / UNIT_RATIO,
        histogram.max() as f64 / UNIT_RATIO,
        histogram.len(),
        histogram.buckets(),
        sub_buckets,
    );
}
