//! The latency histogram's bucket layout: HdrHistogram's, with 2 significant
//! digits from 1 ns to 1 hour, in a flat array of `BUCKETS` counters.
//!
//! The preload library keeps one array of atomic counters per call and indexes
//! it with `index_of`; reports turn it into an `hdrhistogram::Histogram` by
//! recording `lowest_value_at(i)` with each counter, which lands every count
//! in the same bucket (the tests below prove it against the crate). Nothing
//! here allocates or panics: it runs on the hot path and in signal handlers.

/// Values above this (one hour, in nanoseconds) are recorded as this.
pub const HIGHEST_VALUE: u64 = 3_600_000_000_000;
/// Significant decimal digits kept for every value.
pub const SIGNIFICANT_DIGITS: u8 = 2;

/// `2 * 10^digits` rounded up to a power of two: 200 -> 256.
const SUB_BUCKET_COUNT_MAGNITUDE: u32 = 8;
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = SUB_BUCKET_COUNT_MAGNITUDE - 1;
const SUB_BUCKET_COUNT: u64 = 1 << SUB_BUCKET_COUNT_MAGNITUDE;
const SUB_BUCKET_HALF_COUNT: u64 = SUB_BUCKET_COUNT / 2;
const SUB_BUCKET_MASK: u64 = SUB_BUCKET_COUNT - 1;
/// Buckets needed so that `SUB_BUCKET_COUNT << (BUCKET_COUNT - 1)` exceeds
/// `HIGHEST_VALUE`: 256 << 34 = 4.4e12 > 3.6e12.
const BUCKET_COUNT: u32 = 35;

/// Number of counters in one histogram.
pub const BUCKETS: usize = ((BUCKET_COUNT as u64 + 1) * SUB_BUCKET_HALF_COUNT) as usize;

/// The counter index for a value in nanoseconds; values past
/// `HIGHEST_VALUE` saturate.
#[inline(always)]
pub fn index_of(value: u64) -> usize {
    let value = if value > HIGHEST_VALUE {
        HIGHEST_VALUE
    } else {
        value
    };
    let bucket = 64 - SUB_BUCKET_COUNT_MAGNITUDE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = value >> bucket;
    (((bucket as u64 + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + sub_bucket - SUB_BUCKET_HALF_COUNT)
        as usize
}

/// The lowest value that counts into counter `index`.
pub fn lowest_value_at(index: usize) -> u64 {
    let index = index as u64;
    let bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as i64 - 1;
    let mut sub_bucket = (index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT;
    let bucket = if bucket < 0 {
        sub_bucket -= SUB_BUCKET_HALF_COUNT;
        0
    } else {
        bucket as u32
    };
    sub_bucket << bucket
}

/// The highest value that counts into counter `index`: what HdrHistogram
/// reports for a percentile that falls in it.
pub fn highest_value_at(index: usize) -> u64 {
    let lowest = lowest_value_at(index);
    let bucket = 64 - SUB_BUCKET_COUNT_MAGNITUDE - (lowest | SUB_BUCKET_MASK).leading_zeros();
    lowest + (1u64 << bucket) - 1
}

/// The value at `quantile` (0.0..=1.0) of a histogram, as HdrHistogram's
/// `value_at_quantile` computes it; 0 for an empty histogram.
pub fn value_at_quantile(counts: &[u64], quantile: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let quantile = quantile.clamp(0.0, 1.0);
    let wanted = ((quantile * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (index, &count) in counts.iter().enumerate() {
        seen += count;
        if seen >= wanted {
            return if quantile == 0.0 {
                lowest_value_at(index)
            } else {
                highest_value_at(index)
            };
        }
    }
    0
}

/// The highest value recorded (the top of the highest non-empty counter).
pub fn max_value(counts: &[u64]) -> u64 {
    counts
        .iter()
        .rposition(|&count| count != 0)
        .map_or(0, highest_value_at)
}

/// The lowest value recorded (the bottom of the lowest non-empty counter).
pub fn min_value(counts: &[u64]) -> u64 {
    counts
        .iter()
        .position(|&count| count != 0)
        .map_or(0, lowest_value_at)
}

/// The histogram as an `hdrhistogram::Histogram` with the same buckets.
#[cfg(feature = "hdr")]
pub fn to_hdrhistogram(counts: &[u64]) -> hdrhistogram::Histogram<u64> {
    let mut histogram = new_hdrhistogram();
    for (index, &count) in counts.iter().enumerate() {
        if count != 0 {
            histogram.record_n(lowest_value_at(index), count).ok();
        }
    }
    histogram
}

/// An empty `hdrhistogram::Histogram` with exactly our layout.
#[cfg(any(feature = "hdr", test))]
pub fn new_hdrhistogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, HIGHEST_VALUE, SIGNIFICANT_DIGITS)
        .expect("constant bounds are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_values() -> Vec<u64> {
        let mut values = vec![0, 1, 2, 127, 128, 255, 256, 257, 511, 512, 1000, 380, 4095];
        let mut value = 3u64;
        while value < HIGHEST_VALUE {
            values.extend([value - 1, value, value + 1]);
            value = value * 7 / 3;
        }
        values.extend([HIGHEST_VALUE - 1, HIGHEST_VALUE]);
        values
    }

    #[test]
    fn layout_matches_hdrhistogram() {
        let reference = new_hdrhistogram();
        assert_eq!(reference.distinct_values(), BUCKETS);
        for value in sample_values() {
            let ours = index_of(value);
            assert_eq!(
                lowest_value_at(ours),
                reference.lowest_equivalent(value),
                "{value}"
            );
            assert_eq!(
                highest_value_at(ours),
                reference.highest_equivalent(value),
                "{value}"
            );
        }
    }

    #[test]
    fn counters_tile_the_range_like_hdrhistogram_buckets() {
        let reference = new_hdrhistogram();
        for index in 0..BUCKETS {
            let (low, high) = (lowest_value_at(index), highest_value_at(index));
            if index <= index_of(HIGHEST_VALUE) {
                assert_eq!(index_of(low), index);
                assert_eq!(index_of(high), index);
            }
            if index > 0 {
                assert_eq!(reference.lowest_equivalent(low), low);
                assert_eq!(reference.highest_equivalent(low), high);
                assert_eq!(
                    lowest_value_at(index - 1),
                    reference.lowest_equivalent(low - 1)
                );
            }
        }
    }

    #[test]
    fn conversion_keeps_every_count_in_its_bucket() {
        let mut counts = vec![0u64; BUCKETS];
        for (index, count) in counts.iter_mut().enumerate() {
            *count = (index as u64 * 31) % 7;
        }
        let mut direct = new_hdrhistogram();
        for (index, &count) in counts.iter().enumerate() {
            direct.record_n(highest_value_at(index), count).unwrap();
        }
        let mut converted = new_hdrhistogram();
        for (index, &count) in counts.iter().enumerate() {
            converted.record_n(lowest_value_at(index), count).unwrap();
        }
        assert_eq!(direct, converted);
        assert_eq!(direct.len(), counts.iter().sum::<u64>());
    }

    #[test]
    fn saturates_at_one_hour() {
        assert_eq!(index_of(u64::MAX), index_of(HIGHEST_VALUE));
        assert!(index_of(HIGHEST_VALUE) < BUCKETS);
    }

    #[test]
    fn quantiles_match_hdrhistogram() {
        let mut reference = new_hdrhistogram();
        let mut counts = vec![0u64; BUCKETS];
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let value = 1 + (seed % 1_000_000) * (seed % 97);
            counts[index_of(value)] += 1;
            reference.record(value).unwrap();
        }
        for quantile in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                value_at_quantile(&counts, quantile),
                reference.value_at_quantile(quantile),
                "quantile {quantile}"
            );
        }
        assert_eq!(max_value(&counts), reference.max());
        assert_eq!(min_value(&counts), reference.min());
    }
}
