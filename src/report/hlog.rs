//! The `hlog` format: an HdrHistogram interval log with one tagged interval
//! per call (`Tag=fsync,...`), readable by HdrHistogram's log tools.
//!
//! The `hdrhistogram` crate writes the intervals (V2 + Deflate, base64) but
//! not the version and legend lines that Java's `HistogramLogWriter` emits,
//! so the header is written here. Dumps do not record when counting started:
//! every interval starts at the earliest dump (the log's StartTime) and lasts
//! until the latest one. Interval_Max is in milliseconds, as with Java's
//! default max value unit ratio of 1e6 for nanosecond histograms.

use std::time::Duration;

use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::to_hdrhistogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use crate::metrics::load::merged;
use crate::Failure;

/// Nanoseconds per millisecond: the Java writer's default ratio.
const MAX_VALUE_UNIT_RATIO: f64 = 1e6;

pub fn render(dumps: &[Dump]) -> Result<Vec<u8>, Failure> {
    let first = dumps.iter().map(|dump| dump.unix_time).min().unwrap_or(0);
    let last = dumps.iter().map(|dump| dump.unix_time).max().unwrap_or(0);
    let mut out = format!(
        "#[Logged with fadvise-shim {}: {} processes merged]\n\
         #[Histogram log format version 1.3]\n\
         #[StartTime: {first}.000 (seconds since epoch)]\n\
         \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
        env!("CARGO_PKG_VERSION"),
        crate::metrics::load::process_count(dumps),
    )
    .into_bytes();
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_VALUE_UNIT_RATIO)
        .begin_log_with(&mut out, &mut serializer)?;
    for (call, stats) in merged(dumps).made() {
        let tag = Tag::new(call.name()).expect("call names have no commas or spaces");
        writer.write_histogram(
            &to_hdrhistogram(&stats.buckets),
            Duration::ZERO,
            Duration::from_secs(last - first),
            Some(tag),
        )?;
    }
    Ok(out)
}
