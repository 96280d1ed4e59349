//! The live statistics per call: atomic counters and a latency histogram in
//! `fadvise_shim_core::histogram`'s layout, kept in the area in use
//! (`area`). Updating them is one relaxed atomic add — no lock, no
//! allocation — so counts stay exact under any number of threads.
//!
//! Counts made in the private area before the process's stats file exists
//! are moved into the file when it does (each word swapped to zero, then
//! added), with the call sites' (`sites::sweep`), so none is lost or
//! counted twice.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use fadvise_shim_core::call::Call;

use crate::sys::fork::store_if_changed;
use fadvise_shim_core::histogram::{self, BUCKETS};
use fadvise_shim_core::stats::Snapshot;
use fadvise_shim_core::stats_file::{
    bucket_word, COUNTERS_OFFSET, HISTOGRAMS_OFFSET, SITES_OFFSET,
};

use super::area::{
    self, area, area_for, page_ready, Area, CallCounters, PAGES, PAGE_WORDS, PRIVATE,
};
use super::sites;

/// One bit per histogram page of the private area that a count may have
/// reached: the sweep into a file reads only those, instead of faulting in
/// all ~90 pages of `.bss` (most of a short child's first call).
static PRIVATE_DIRTY: [AtomicU64; PAGES.div_ceil(64)] =
    [const { AtomicU64::new(0) }; PAGES.div_ceil(64)];

#[inline(always)]
fn mark_private(word: usize) {
    let page = word / PAGE_WORDS;
    let bits = &PRIVATE_DIRTY[page / 64];
    // A load first: the bit is set once, and a store to a shared line on
    // every call would make threads fight over it.
    if bits.load(Ordering::Relaxed) & (1 << (page % 64)) == 0 {
        bits.fetch_or(1 << (page % 64), Ordering::Relaxed);
    }
}

/// A call that went to the kernel and took `ns`.
#[inline(always)]
pub fn record_passed(call: Call, ns: u64, failed: bool) {
    let bucket = histogram::index_of(ns).min(BUCKETS - 1);
    let word = bucket_word(call, bucket);
    let counted_in = area_for(word);
    counted_in.histograms[call.index()][bucket].fetch_add(1, Ordering::Relaxed);
    if ptr::eq(counted_in, &PRIVATE) {
        mark_private(word);
    }
    if failed {
        // The counters' page is allocated with the file.
        area().counters[call.index()]
            .errors
            .fetch_add(1, Ordering::Relaxed);
    }
}

#[inline(always)]
pub fn record_dropped(call: Call) {
    area().counters[call.index()]
        .dropped
        .fetch_add(1, Ordering::Relaxed);
}

#[inline(always)]
pub fn record_limited(call: Call) {
    area().counters[call.index()]
        .limited
        .fetch_add(1, Ordering::Relaxed);
}

/// Makes `file` (a fresh stats file's mapping, its first `allocated` pages
/// allocated) the area in use, and moves what the private area counted into
/// it; `allocate_page` allocates one more page of it.
pub fn use_file(file: &'static Area, allocated: usize, allocate_page: fn(usize) -> bool) {
    area::switch_to(file, allocated, allocate_page);
    sweep_private_into_file();
}

/// Moves counts that reached the private area after the switch (a thread
/// that read the old pointer just before it) into the file.
pub fn sweep_private_into_file() {
    let current = area();
    if ptr::eq(current, &PRIVATE) {
        return;
    }
    let (private, file) = (PRIVATE.words(), current.words());
    let move_word = |word: usize| {
        let from = &private[word];
        // A read first: swapping would dirty every page of the area.
        if from.load(Ordering::Relaxed) != 0 && page_ready(word) {
            file[word].fetch_add(from.swap(0, Ordering::AcqRel), Ordering::Relaxed);
        }
    };
    for call in 0..Call::COUNT {
        let first = COUNTERS_OFFSET / 8 + call * std::mem::size_of::<CallCounters>() / 8;
        // dropped, limited, errors (`CallCounters`).
        (first..first + 3).for_each(move_word);
    }
    // Only the histogram pages a count may have reached (`PRIVATE_DIRTY`).
    for page in HISTOGRAMS_OFFSET / 4096..SITES_OFFSET / 4096 {
        if PRIVATE_DIRTY[page / 64].load(Ordering::Relaxed) & (1 << (page % 64)) != 0 {
            (page * PAGE_WORDS..(page + 1) * PAGE_WORDS).for_each(move_word);
        }
    }
    sites::sweep(&PRIVATE, current);
}

/// Whether the stats file in use holds every count (none is waiting in the
/// private area: a late thread's, or a page the file could not be given):
/// only then may a dump say the file has them all.
pub fn file_has_every_count() -> bool {
    let current = area();
    !ptr::eq(current, &PRIVATE)
        && PRIVATE.counters.iter().all(|counters| {
            counters.dropped.load(Ordering::Relaxed) == 0
                && counters.limited.load(Ordering::Relaxed) == 0
                && counters.errors.load(Ordering::Relaxed) == 0
        })
        && PRIVATE
            .histograms
            .iter()
            .flatten()
            .all(|bucket| bucket.load(Ordering::Relaxed) == 0)
}

/// Copies every counter into `snapshot` (async-signal-safe: loads and
/// stores only): the area in use, plus the private area when it is not the
/// one (counts that found no allocatable page). Not atomic across counters;
/// `passed` is taken from the histogram itself, so the snapshot is
/// self-consistent.
pub fn snapshot_into(snapshot: &mut Snapshot) {
    let current = area();
    let areas: &[&Area] = if ptr::eq(current, &PRIVATE) {
        &[&PRIVATE]
    } else {
        &[current, &PRIVATE]
    };
    for (index, copy) in snapshot.calls.iter_mut().enumerate() {
        let (mut dropped, mut limited, mut errors) = (0, 0, 0);
        copy.buckets.fill(0);
        for area in areas {
            let counters = &area.counters[index];
            dropped += counters.dropped.load(Ordering::Relaxed);
            limited += counters.limited.load(Ordering::Relaxed);
            errors += counters.errors.load(Ordering::Relaxed);
            for (bucket, count) in area.histograms[index].iter().zip(copy.buckets.iter_mut()) {
                *count += bucket.load(Ordering::Relaxed);
            }
        }
        (copy.dropped, copy.limited, copy.errors) = (dropped, limited, errors);
    }
}

/// A forked child starts with its own statistics, in private memory until
/// its own first call makes its own file. Only non-zero counters are
/// written, so pages the parent never touched stay shared with it.
pub fn reset_in_child() {
    area::use_private_in_child();
    for bits in &PRIVATE_DIRTY {
        store_if_changed!(bits, 0);
    }
    // The private area's whole pages lie in `.bss` past the file's bytes,
    // so they are private anonymous memory: `MADV_DONTNEED` makes them read
    // as zeros again, touching none of them. Reading all 376 KiB to find
    // what to clear, as before, faulted in every page the parent never
    // touched. The partial pages at either end are cleared word by word.
    let words = PRIVATE.words();
    let start = words.as_ptr() as usize;
    let end = start + std::mem::size_of::<Area>();
    let (first_page, last_page) = ((start + 4095) & !4095, end & !4095);
    // SAFETY: the range is whole pages inside `PRIVATE`, a static that
    // lives as long as the library and holds only atomics; in the child of
    // `fork` this is the only thread, so no access races with the reset.
    let dropped = last_page > first_page
        && unsafe {
            crate::sys::mapping::advise(
                first_page as *mut libc::c_void,
                last_page - first_page,
                libc::MADV_DONTNEED,
            )
        };
    let (head, tail) = if dropped {
        ((first_page - start) / 8, (last_page - start) / 8)
    } else {
        (words.len(), words.len())
    };
    for word in words[..head].iter().chain(&words[tail..]) {
        store_if_changed!(word, 0);
    }
}
