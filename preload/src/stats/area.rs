//! The memory statistics are counted in: an `Area` laid out exactly as a
//! stats file (`fadvise_shim_core::stats_file`), which area is in use, and
//! which of its pages may be written. The layer below both `counters` (per
//! call) and `sites` (per call site): it counts nothing itself.
//!
//! The area in use is private memory (`.bss`: free until touched) until the
//! process's stats file exists, then the file's shared mapping; the hot path
//! reads which through one pointer.
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
use fadvise_shim_core::histogram::BUCKETS;
use fadvise_shim_core::stats_file::{
    COUNTERS_OFFSET, FILE_BYTES, FILE_WORDS, FIRST_MODULES, FIRST_MODULES_OFFSET,
    HISTOGRAMS_OFFSET, MODULES_OFFSET, MODULE_SLOTS, MODULE_WORDS, SITES_OFFSET, SITE_KEYS_OFFSET,
    SITE_SLOTS, SITE_WORDS,
};

use crate::sys::fork::store_if_changed;

#[repr(C)]
pub(super) struct CallCounters {
    pub(super) dropped: AtomicU64,
    pub(super) limited: AtomicU64,
    pub(super) errors: AtomicU64,
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
    pub(super) counters: [CallCounters; Call::COUNT],
    first_modules: [Module; FIRST_MODULES],
    _gap: [AtomicU64; GAP_WORDS],
    /// Call-site keys (`sites.rs`), in the counters' page: allocated with
    /// the file, so the hot path may read them.
    pub(super) site_keys: [AtomicU64; SITE_SLOTS],
    pub(super) histograms: [[AtomicU64; BUCKETS]; Call::COUNT],
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

/// The private area: in use until there is a stats file, and where counts
/// go whose page of the file could not be allocated. Zero-initialised, so
/// it lives in .bss and costs no memory until used.
pub(super) static PRIVATE: Area = Area {
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

pub(super) const PAGES: usize = FILE_BYTES / 4096;
pub(super) const PAGE_WORDS: usize = 4096 / 8;
/// One bit per page of the area in use that may be written: all for the
/// private area; in a file, those allocated so far.
static WRITABLE: [AtomicU64; PAGES.div_ceil(64)] =
    [const { AtomicU64::new(u64::MAX) }; PAGES.div_ceil(64)];

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
pub(super) fn area_for(word: usize) -> &'static Area {
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
        // SAFETY: only `switch_to` stores this pointer, from a
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

/// The area in use.
#[inline(always)]
pub(super) fn area() -> &'static Area {
    // SAFETY: `AREA` always points to `PRIVATE` or to a stats file mapping,
    // which is never unmapped.
    unsafe { &*AREA.load(Ordering::Relaxed) }
}

/// Makes `file` (a fresh stats file's mapping, its first `allocated` pages
/// allocated) the area in use; `allocate_page` allocates one more page of
/// it. Moving what the private area holds is the caller's.
pub(super) fn switch_to(file: &'static Area, allocated: usize, allocate_page: fn(usize) -> bool) {
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
}

/// In a forked child: the private area is in use again, all of it
/// writable. (Clearing what it holds is the caller's.)
pub(super) fn use_private_in_child() {
    store_if_changed!(AREA, ptr::from_ref(&PRIVATE).cast_mut());
    store_if_changed!(ALLOCATE_PAGE, ptr::null_mut());
    for bits in &WRITABLE {
        store_if_changed!(bits, u64::MAX);
    }
}
