//! The live statistics: per call, atomic counters and a latency histogram in
//! `fadvise_shim_core::histogram`'s layout, in an `Area` laid out exactly as
//! a stats file (`fadvise_shim_core::stats_file`). Updating them is one
//! relaxed atomic add — no lock, no allocation — so counts stay exact under
//! any number of threads.
//!
//! The area in use is private memory (`.bss`: free until touched) until the
//! process's stats file exists, then the file's shared mapping; the hot path
//! reads which through one pointer. Counts made in the private area before
//! the switch are moved into the file (each word swapped to zero, then
//! added), so none is lost or counted twice.
//!
//! A stats file is sparse, and a write to a hole of a shared mapping on a
//! full tmpfs would raise SIGBUS in the program: so each page of the file is
//! allocated (`fallocate`) before its first write, which the hot path checks
//! with one bit. A page that cannot be allocated is counted in the private
//! area instead, which dumps add in; no count is lost.

use std::mem::offset_of;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use fadvise_shim_core::call::Call;

use crate::sys::fork::store_if_changed;
use fadvise_shim_core::histogram::{self, BUCKETS};
use fadvise_shim_core::stats::Snapshot;
use fadvise_shim_core::stats_file::{
    bucket_word, COUNTERS_OFFSET, FILE_BYTES, FILE_WORDS, FIRST_MODULES, FIRST_MODULES_OFFSET,
    HISTOGRAMS_OFFSET, MODULES_OFFSET, MODULE_SLOTS, MODULE_WORDS, SITES_OFFSET, SITE_KEYS_OFFSET,
    SITE_SLOTS, SITE_WORDS,
};

#[repr(C)]
struct CallCounters {
    dropped: AtomicU64,
    limited: AtomicU64,
    errors: AtomicU64,
    _spare: AtomicU64,
}

const GAP_WORDS: usize =
    (SITE_KEYS_OFFSET - FIRST_MODULES_OFFSET) / 8 - FIRST_MODULES * MODULE_WORDS;
type Module = [AtomicU64; MODULE_WORDS];

/// A stats file's contents, word for word. (Not page-aligned: that would
/// align all of `.bss`, which then no longer shares its first page with
/// `.data`, and moves RELRO across one more page: two more page faults in
/// every process's start-up.)
#[repr(C)]
pub struct Area {
    header: [AtomicU64; COUNTERS_OFFSET / 8],
    counters: [CallCounters; Call::COUNT],
    first_modules: [Module; FIRST_MODULES],
    _gap: [AtomicU64; GAP_WORDS],
    /// Call-site keys (`sites.rs`), in the counters' page: allocated with
    /// the file, so the hot path may read them.
    pub(super) site_keys: [AtomicU64; SITE_SLOTS],
    histograms: [[AtomicU64; BUCKETS]; Call::COUNT],
    pub(super) sites: [[AtomicU64; SITE_WORDS]; SITE_SLOTS],
    modules: [Module; MODULE_SLOTS - FIRST_MODULES],
}

const _: () = {
    assert!(offset_of!(Area, counters) == COUNTERS_OFFSET);
    assert!(offset_of!(Area, first_modules) == FIRST_MODULES_OFFSET);
    assert!(offset_of!(Area, site_keys) == SITE_KEYS_OFFSET);
    assert!(offset_of!(Area, histograms) == HISTOGRAMS_OFFSET);
    assert!(offset_of!(Area, sites) == SITES_OFFSET);
    assert!(offset_of!(Area, modules) == MODULES_OFFSET);
    assert!(std::mem::size_of::<Area>() == FILE_BYTES);
};

impl Area {
    /// A module slot (`stats_file::module_word`'s numbering).
    pub(super) fn module(&self, slot: usize) -> &Module {
        match slot.checked_sub(FIRST_MODULES) {
            None => &self.first_modules[slot],
            Some(later) => &self.modules[later],
        }
    }

    /// Every module slot, in order.
    pub(super) fn module_slots(&self) -> impl Iterator<Item = &Module> {
        self.first_modules.iter().chain(&self.modules)
    }

    /// Every word of the area, for the file format's writer.
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `Area` is `repr(C)` and made only of `AtomicU64`s, with no
        // padding (its size is checked above), so it is `FILE_WORDS` of them.
        unsafe { std::slice::from_raw_parts(ptr::from_ref(self).cast::<AtomicU64>(), FILE_WORDS) }
    }
}

// Zero-initialised, so it lives in .bss and costs no memory until used.
static PRIVATE: Area = Area {
    header: [const { AtomicU64::new(0) }; COUNTERS_OFFSET / 8],
    counters: [const {
        CallCounters {
            dropped: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            _spare: AtomicU64::new(0),
        }
    }; Call::COUNT],
    first_modules: [const { [const { AtomicU64::new(0) }; MODULE_WORDS] }; FIRST_MODULES],
    _gap: [const { AtomicU64::new(0) }; GAP_WORDS],
    site_keys: [const { AtomicU64::new(0) }; SITE_SLOTS],
    histograms: [const { [const { AtomicU64::new(0) }; BUCKETS] }; Call::COUNT],
    sites: [const { [const { AtomicU64::new(0) }; SITE_WORDS] }; SITE_SLOTS],
    modules: [const { [const { AtomicU64::new(0) }; MODULE_WORDS] }; MODULE_SLOTS - FIRST_MODULES],
};

static AREA: AtomicPtr<Area> = AtomicPtr::new(ptr::from_ref(&PRIVATE).cast_mut());

const PAGES: usize = FILE_BYTES / 4096;
const PAGE_WORDS: usize = 4096 / 8;
/// One bit per page of the area in use that may be written: all for the
/// private area; in a file, those allocated so far.
static WRITABLE: [AtomicU64; PAGES.div_ceil(64)] =
    [const { AtomicU64::new(u64::MAX) }; PAGES.div_ceil(64)];

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

/// Allocates a page of the file in use; false if it cannot be.
static ALLOCATE_PAGE: AtomicPtr<()> = AtomicPtr::new(ptr::null_mut());

#[inline(always)]
fn writable(word: usize) -> bool {
    let page = word / PAGE_WORDS;
    WRITABLE[page / 64].load(Ordering::Relaxed) & (1 << (page % 64)) != 0
}

/// The area a word may be counted in: the area in use if its page is
/// writable, else the private area.
#[inline(always)]
fn area_for(word: usize) -> &'static Area {
    if writable(word) {
        area()
    } else {
        allocate_or_private(word)
    }
}

#[cold]
#[inline(never)]
fn allocate_or_private(word: usize) -> &'static Area {
    let page = word / PAGE_WORDS;
    let allocate = ALLOCATE_PAGE.load(Ordering::Acquire);
    if !allocate.is_null() {
        // SAFETY: only `use_file` stores this pointer, from a
        // `fn(usize) -> bool`.
        let allocate: fn(usize) -> bool = unsafe { std::mem::transmute(allocate) };
        if allocate(page) {
            WRITABLE[page / 64].fetch_or(1 << (page % 64), Ordering::Relaxed);
            return area();
        }
    }
    &PRIVATE
}

/// Whether the word's page of the area in use may be written, allocating
/// it if need be (for sites and modules, which claim whole records).
pub(super) fn page_ready(word: usize) -> bool {
    writable(word) || !ptr::eq(allocate_or_private(word), &PRIVATE)
}

/// The private area, for sweeping its sites into a file.
pub(super) fn private() -> &'static Area {
    &PRIVATE
}

#[inline(always)]
pub(super) fn area() -> &'static Area {
    // SAFETY: `AREA` always points to `PRIVATE` or to a stats file mapping,
    // which is never unmapped.
    unsafe { &*AREA.load(Ordering::Relaxed) }
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
    ALLOCATE_PAGE.store(allocate_page as *mut (), Ordering::Release);
    for (index, bits) in WRITABLE.iter().enumerate() {
        let first = index * 64;
        let mask = match allocated.saturating_sub(first) {
            0 => 0,
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        bits.store(mask, Ordering::Relaxed);
    }
    AREA.store(ptr::from_ref(file).cast_mut(), Ordering::Release);
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
    super::sites::sweep(&PRIVATE, current);
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
    store_if_changed!(AREA, ptr::from_ref(&PRIVATE).cast_mut());
    store_if_changed!(ALLOCATE_PAGE, ptr::null_mut());
    for bits in &WRITABLE {
        store_if_changed!(bits, u64::MAX);
    }
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
