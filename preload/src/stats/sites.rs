//! Call sites: for each return address a hook was called with, the site's
//! counters and coarse latency histogram, and the loaded object it lies in,
//! in the stats area's site and module tables (`fadvise_shim_core::
//! stats_file` has the layout, `fadvise_shim_core::sites` what readers make
//! of it).
//!
//! The table is an open-addressing hash of `SITE_SLOTS` keys in the
//! counters' page (always allocated, so the hot path may read it): a known
//! site costs a multiply, a load and a compare, then relaxed adds. A new
//! site is claimed by compare-and-swap on an empty key, its record filled
//! (where it is in which object: `_dl_find_object`, lock-free and
//! async-signal-safe), then marked ready for readers; a thread that meets a
//! key being filled counts into it anyway. Nothing waits, so a signal
//! handler that interrupts a claim just claims or counts on its own. When
//! the table is full, or a record's page cannot be allocated, the call
//! counts only in its call's totals (readers show the rest as "other").
//!
//! Modules are claimed the same way, one slot per loaded object identified
//! by its start address and link map; `dlclose` (`forget_unloaded`) makes
//! the slots and sites of objects that are gone unmatchable, so an object
//! loaded later at the same address gets sites of its own.

use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::sites::{coarse_bucket, RawModule, RawSite, SiteSource, SITE_BUCKETS};
use fadvise_shim_core::stats_file::{
    module_word, ready_site_call, site_stats, site_word, store_bytes, BUILD_ID_CAPACITY,
    MODULE_BUILD_ID, MODULE_BUILD_ID_BYTES, MODULE_CLAIMED, MODULE_LINK_MAP, MODULE_PATH,
    MODULE_PATH_BYTES, MODULE_READY, MODULE_SLOTS, MODULE_START, MODULE_STATE, MODULE_WORDS,
    NO_MODULE, PATH_CAPACITY, SITE_ADDRESS, SITE_ADDRESS_MASK, SITE_CALL_SHIFT, SITE_DROPPED,
    SITE_ERRORS, SITE_FIRST_BUCKET, SITE_LIMITED, SITE_MODULE, SITE_READY, SITE_RETIRED,
    SITE_SLOTS, SITE_VERDICT, SITE_WORDS,
};

use super::area::{self, Area, PRIVATE};
use crate::sys::loader::{self, Object};

/// Keys looked at before a call gives up on a site of its own.
const MAX_PROBES: usize = 16;

/// A site's record in the area it was found in.
#[derive(Clone, Copy)]
pub struct Site {
    area: &'static Area,
    slot: usize,
}

#[inline(always)]
fn key_of(call: Call, caller: usize) -> u64 {
    (caller as u64 & SITE_ADDRESS_MASK) | (call.index() as u64) << SITE_CALL_SHIFT
}

/// The key's first slot: the top bits of a Fibonacci hash.
#[inline(always)]
fn home(key: u64) -> usize {
    const _: () = assert!(SITE_SLOTS == 256);
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize
}

/// The site of a call made from return address `caller` (0: unknown),
/// claimed if new; `None` if it has no room. A site in its home slot (the
/// usual case) costs a multiply, a load and a compare, inline; the rest is
/// out of line.
#[inline(always)]
pub fn find(call: Call, caller: usize) -> Option<Site> {
    if caller == 0 {
        return None;
    }
    let area = area::area();
    let key = key_of(call, caller);
    let slot = home(key);
    if area.site_keys[slot].load(Ordering::Acquire) & !SITE_READY == key {
        return Some(Site { area, slot });
    }
    find_in(area, key, caller)
}

/// `find` beyond the home slot, in a given area (also for a key already
/// made, when sweeping).
#[inline(never)]
fn find_in(area: &'static Area, key: u64, caller: usize) -> Option<Site> {
    let mut slot = home(key);
    for _ in 0..MAX_PROBES {
        let found = area.site_keys[slot].load(Ordering::Acquire);
        if found & !SITE_READY == key {
            return Some(Site { area, slot });
        }
        if found == 0 {
            return claim(area, slot, key, caller);
        }
        slot = (slot + 1) % SITE_SLOTS;
    }
    None
}

impl Site {
    #[inline(always)]
    fn word(&self, field: usize) -> &'static AtomicU64 {
        &self.area.sites[self.slot][field]
    }

    #[inline(always)]
    pub fn record_passed(&self, ns: u64, failed: bool) {
        self.word(SITE_FIRST_BUCKET + coarse_bucket(ns))
            .fetch_add(1, Ordering::Relaxed);
        if failed {
            self.word(SITE_ERRORS).fetch_add(1, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    pub fn record_dropped(&self) {
        self.word(SITE_DROPPED).fetch_add(1, Ordering::Relaxed);
    }

    #[inline(always)]
    pub fn record_limited(&self) {
        self.word(SITE_LIMITED).fetch_add(1, Ordering::Relaxed);
    }

    /// The verdict cached for this site under `stamp` (policy generation
    /// and table index, never 0), if any. One word: never torn.
    #[inline(always)]
    pub fn cached_verdict(&self, stamp: u32) -> Option<u32> {
        let cached = self.word(SITE_VERDICT).load(Ordering::Relaxed);
        ((cached >> 32) as u32 == stamp).then_some(cached as u32)
    }

    pub fn cache_verdict(&self, stamp: u32, entry: u32) {
        self.word(SITE_VERDICT)
            .store(u64::from(stamp) << 32 | u64::from(entry), Ordering::Relaxed);
    }
}

/// Claims the first free key from `slot` on (or finds the key claimed by a
/// racing thread) and fills in the site's record.
#[cold]
#[inline(never)]
fn claim(area: &'static Area, mut slot: usize, key: u64, caller: usize) -> Option<Site> {
    for _ in 0..MAX_PROBES {
        let record_pages = area::page_ready(site_word(slot, 0))
            && area::page_ready(site_word(slot, SITE_WORDS - 1));
        match area.site_keys[slot].load(Ordering::Acquire) {
            0 if !record_pages => return None,
            0 => match area.site_keys[slot].compare_exchange(
                0,
                key,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    fill(area, slot, caller);
                    area.site_keys[slot].store(key | SITE_READY, Ordering::Release);
                    return Some(Site { area, slot });
                }
                Err(found) if found & !SITE_READY == key => return Some(Site { area, slot }),
                Err(_) => {}
            },
            found if found & !SITE_READY == key => return Some(Site { area, slot }),
            _ => {}
        }
        slot = (slot + 1) % SITE_SLOTS;
    }
    None
}

/// Where the site is: relative to its object, when the object has a
/// module slot; else the raw address.
fn fill(area: &'static Area, slot: usize, caller: usize) {
    let record = &area.sites[slot];
    // The return address is one past the call: the call itself is in the
    // object even when it is the object's last instruction.
    let object = loader::find_object(caller - 1);
    let module = object.and_then(|object| module_slot(area, &object).map(|m| (object, m)));
    let (address, module) = match module {
        Some((object, module)) => (caller.wrapping_sub(object.load_bias) as u64, module as u64),
        None => (caller as u64, NO_MODULE),
    };
    record[SITE_ADDRESS].store(address, Ordering::Relaxed);
    record[SITE_MODULE].store(module, Ordering::Relaxed);
}

/// The module slot of `object` in `area`, claimed and filled if new.
fn module_slot(area: &'static Area, object: &Object) -> Option<usize> {
    for (slot, module) in area.module_slots().enumerate() {
        match module[MODULE_STATE].load(Ordering::Acquire) {
            MODULE_READY if is_object(module, object) => return Some(slot),
            0 if !area::page_ready(module_word(slot, 0)) => return None,
            0 if module[MODULE_STATE]
                .compare_exchange(0, MODULE_CLAIMED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok() =>
            {
                describe(module, object);
                module[MODULE_STATE].store(MODULE_READY, Ordering::Release);
                return Some(slot);
            }
            // Taken (maybe by a racing thread for the same object: then the
            // object has two slots, which readers merge).
            _ => {}
        }
    }
    None
}

fn is_object(module: &[AtomicU64; MODULE_WORDS], object: &Object) -> bool {
    module[MODULE_START].load(Ordering::Relaxed) == object.start as u64
        && module[MODULE_LINK_MAP].load(Ordering::Relaxed) == object.link_map as u64
}

fn describe(module: &[AtomicU64; MODULE_WORDS], object: &Object) {
    module[MODULE_START].store(object.start as u64, Ordering::Relaxed);
    module[MODULE_LINK_MAP].store(object.link_map as u64, Ordering::Relaxed);
    let mut build_id = [0u8; BUILD_ID_CAPACITY];
    let length = object.build_id(&mut build_id);
    store_bytes(
        &module[MODULE_BUILD_ID..MODULE_PATH_BYTES],
        &build_id[..length],
    );
    module[MODULE_BUILD_ID_BYTES].store(length as u64, Ordering::Relaxed);
    let path = object.name(PATH_CAPACITY);
    store_bytes(&module[MODULE_PATH..], path);
    module[MODULE_PATH_BYTES].store(path.len() as u64, Ordering::Relaxed);
}

/// After `dlclose`: module slots whose object is no longer where it was
/// stop matching (their identity is cleared), and so do their sites (their
/// keys are marked retired); readers still count both.
pub fn forget_unloaded() {
    for area in areas() {
        for (slot, module) in area.module_slots().enumerate() {
            let start = module[MODULE_START].load(Ordering::Relaxed) as usize;
            if module[MODULE_STATE].load(Ordering::Acquire) != MODULE_READY || start == 0 {
                continue;
            }
            let link_map = module[MODULE_LINK_MAP].load(Ordering::Relaxed) as usize;
            let loaded = loader::find_object(start)
                .is_some_and(|object| object.start == start && object.link_map == link_map);
            if loaded {
                continue;
            }
            module[MODULE_START].store(0, Ordering::Relaxed);
            module[MODULE_LINK_MAP].store(0, Ordering::Relaxed);
            for (key, record) in area.site_keys.iter().zip(&area.sites) {
                if record[SITE_MODULE].load(Ordering::Relaxed) == slot as u64
                    && key.load(Ordering::Acquire) & SITE_READY != 0
                {
                    key.fetch_or(SITE_RETIRED, Ordering::Release);
                }
            }
        }
    }
}

/// The area in use and, if it is a file, the private one (where counts go
/// whose page could not be allocated, and early counts not yet swept).
fn areas() -> impl Iterator<Item = &'static Area> {
    let current = area::area();
    let private = &PRIVATE;
    std::iter::once(current).chain((!ptr::eq(current, private)).then_some(private))
}

/// Moves the sites counted in `from` (the private area) into `to` (the
/// stats file just made the area in use): each site is found or claimed in
/// `to` with its module described again, then its counts swapped out and
/// added, so none is lost or counted twice.
pub fn sweep(from: &'static Area, to: &'static Area) {
    for (slot, key) in from.site_keys.iter().enumerate() {
        let key = key.load(Ordering::Acquire);
        if key & SITE_READY == 0 || key & SITE_RETIRED != 0 {
            continue;
        }
        let record = &from.sites[slot];
        let Some(target) = find_in(to, key, (key & SITE_ADDRESS_MASK) as usize) else {
            continue;
        };
        let fields = [SITE_DROPPED, SITE_LIMITED, SITE_ERRORS]
            .into_iter()
            .chain((0..SITE_BUCKETS).map(|bucket| SITE_FIRST_BUCKET + bucket));
        for field in fields {
            if record[field].load(Ordering::Relaxed) != 0 {
                let moved = record[field].swap(0, Ordering::AcqRel);
                target.word(field).fetch_add(moved, Ordering::Relaxed);
            }
        }
    }
}

/// The sites of this process for a dump, listed without allocating: the
/// area in use's modules and sites, then the private area's (module index
/// `area * MODULE_SLOTS + slot`); a site in both appears twice and readers
/// add the two up.
pub struct ProcessSites;

impl SiteSource for ProcessSites {
    fn each_module(&self, visit: &mut dyn FnMut(&RawModule)) {
        for (number, area) in areas().enumerate() {
            for (slot, module) in area.module_slots().enumerate() {
                if module[MODULE_STATE].load(Ordering::Acquire) != MODULE_READY {
                    continue;
                }
                let mut path = [0u8; PATH_CAPACITY];
                let mut build_id = [0u8; BUILD_ID_CAPACITY];
                let path = load_bytes(
                    &module[MODULE_PATH..],
                    &module[MODULE_PATH_BYTES],
                    &mut path,
                );
                let build_id = load_bytes(
                    &module[MODULE_BUILD_ID..MODULE_PATH_BYTES],
                    &module[MODULE_BUILD_ID_BYTES],
                    &mut build_id,
                );
                visit(&RawModule {
                    index: number * MODULE_SLOTS + slot,
                    path,
                    build_id,
                });
            }
        }
    }

    fn each_site(&self, visit: &mut dyn FnMut(&RawSite)) {
        for (number, area) in areas().enumerate() {
            for (key, record) in area.site_keys.iter().zip(&area.sites) {
                let key = key.load(Ordering::Acquire);
                let Some(call) = ready_site_call(key) else {
                    continue;
                };
                let load = |field: usize| record[field].load(Ordering::Relaxed);
                let stats = site_stats(load);
                if stats.is_empty() {
                    continue;
                }
                let module = usize::try_from(load(SITE_MODULE))
                    .ok()
                    .filter(|&slot| slot < MODULE_SLOTS)
                    .filter(|&slot| {
                        area.module(slot)[MODULE_STATE].load(Ordering::Acquire) == MODULE_READY
                    })
                    .map(|slot| number * MODULE_SLOTS + slot);
                let address = match module {
                    Some(_) => load(SITE_ADDRESS),
                    None => key & SITE_ADDRESS_MASK,
                };
                visit(&RawSite {
                    call,
                    module,
                    address,
                    stats: &stats,
                });
            }
        }
    }
}

/// Text stored by `store_bytes`, into `out`, its length bounded by both.
fn load_bytes<'a>(words: &[AtomicU64], length: &AtomicU64, out: &'a mut [u8]) -> &'a [u8] {
    let length = usize::try_from(length.load(Ordering::Relaxed))
        .unwrap_or(usize::MAX)
        .min(words.len() * 8)
        .min(out.len());
    for (chunk, word) in out[..length].chunks_mut(8).zip(words) {
        chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_le_bytes()[..chunk.len()]);
    }
    &out[..length]
}

/// The calling object's path for `caller` rules, from the loader (the
/// object is loaded: the call is in progress), or `None` if unknown.
pub fn with_caller_path<R>(caller: usize, use_path: impl FnOnce(Option<&[u8]>) -> R) -> R {
    if caller == 0 {
        return use_path(None);
    }
    match loader::find_object(caller - 1) {
        Some(object) => use_path(Some(object.name(PATH_CAPACITY))),
        None => use_path(None),
    }
}
