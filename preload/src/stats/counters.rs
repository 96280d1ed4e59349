//! The live statistics: per call, atomic counters and a latency histogram in
//! `fadvise_shim_core::histogram`'s layout. Updating them is one relaxed
//! atomic add — no lock, no allocation — so counts stay exact under any
//! number of threads. `snapshot_into` copies them for a dump.

use std::sync::atomic::{AtomicU64, Ordering};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::histogram::{self, BUCKETS};
use fadvise_shim_core::stats::Snapshot;

struct CallCounters {
    dropped: AtomicU64,
    limited: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl CallCounters {
    const fn new() -> Self {
        CallCounters {
            dropped: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
        }
    }
}

// Zero-initialised, so it lives in .bss and costs no memory until used.
static COUNTERS: [CallCounters; Call::COUNT] = [const { CallCounters::new() }; Call::COUNT];

#[inline(always)]
fn counters(call: Call) -> &'static CallCounters {
    &COUNTERS[call.index()]
}

/// A call that went to the kernel and took `ns`.
#[inline(always)]
pub fn record_passed(call: Call, ns: u64, failed: bool) {
    let counters = counters(call);
    if let Some(bucket) = counters.buckets.get(histogram::index_of(ns)) {
        bucket.fetch_add(1, Ordering::Relaxed);
    }
    if failed {
        counters.errors.fetch_add(1, Ordering::Relaxed);
    }
}

#[inline(always)]
pub fn record_dropped(call: Call) {
    counters(call).dropped.fetch_add(1, Ordering::Relaxed);
}

#[inline(always)]
pub fn record_limited(call: Call) {
    counters(call).limited.fetch_add(1, Ordering::Relaxed);
}

/// Copies every counter into `snapshot` (async-signal-safe: loads and
/// stores only). Not atomic across counters; `passed` is taken from the
/// histogram itself, so the snapshot is self-consistent.
pub fn snapshot_into(snapshot: &mut Snapshot) {
    for (live, copy) in COUNTERS.iter().zip(snapshot.calls.iter_mut()) {
        copy.dropped = live.dropped.load(Ordering::Relaxed);
        copy.limited = live.limited.load(Ordering::Relaxed);
        copy.errors = live.errors.load(Ordering::Relaxed);
        for (bucket, count) in live.buckets.iter().zip(copy.buckets.iter_mut()) {
            *count = bucket.load(Ordering::Relaxed);
        }
    }
}

/// Zeroes every counter: a forked child starts with its own statistics.
/// Only non-zero counters are written, so pages the parent never touched
/// stay shared with it.
pub fn reset() {
    for live in &COUNTERS {
        let all = [&live.dropped, &live.limited, &live.errors]
            .into_iter()
            .chain(live.buckets.iter());
        for counter in all {
            if counter.load(Ordering::Relaxed) != 0 {
                counter.store(0, Ordering::Relaxed);
            }
        }
    }
}
