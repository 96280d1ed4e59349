//! The live statistics file: a process's counters and histograms in shared
//! memory, in the stats directory, so that readers see every live process
//! without signalling it, and a process that dies leaves its counts behind.
//! Its layout, its writer (run by the preload library on a shared mapping,
//! word by word with atomics) and its reader (run by reports on a copy of
//! the file), side by side.
//!
//! Layout, in little-endian 64-bit words (JVM hsperfdata-like: a versioned
//! header, a flag set only once the file is complete, then fixed regions):
//!
//! | bytes | what |
//! | --- | --- |
//! | 0..128 | header words: magic, major, histogram layout, state, creation time, nonce, origin length, minor; the rest reserved (zero) |
//! | 128..4096 | the origin (`origin.rs` lines: who made the calls) |
//! | 4096.. | per call: `dropped`, `limited`, `errors`, one spare word |
//! | 4352..5888 | the first `FIRST_MODULES` module slots (below) |
//! | 6144..8192 | call-site keys: return address, call, ready bit (`SITE_SLOTS` words) |
//! | 8192.. | per call: the latency histogram, `histogram::BUCKETS` words |
//! | `SITES_OFFSET`.. | per site: its address in its module, module slot, counters, coarse histogram |
//! | `MODULES_OFFSET`.. | the other module slots: state, identity, build id, path |
//!
//! Layouts and compatibility. `WORD_VERSION` holds the layout's major
//! number and `WORD_MINOR` (in header space that every earlier layout left
//! zero) its minor. The rule for a change to this layout:
//!
//! - an addition an older reader can skip without misreporting what it
//!   does read — a new region past `FILE_BYTES`, a new header word whose 0
//!   means "nothing", a field in a spare word — keeps the major and raises
//!   the minor; a reader reads every minor of a major it knows, ignoring
//!   what it does not know;
//! - anything else — a region moved or resized, a word whose meaning
//!   changes, counts an older reader would take for something else or
//!   miss from the totals it prints — raises the major, and readers refuse
//!   a major they do not know (`decode` says which it knows).
//!
//! Writers write `LAYOUT`; readers read every layout this project has
//! written: major 1 (before call sites: header, origin, counters,
//! histograms, `LAYOUT_1_BYTES` long) and major 2 (this table). A file's
//! major is the first thing checked; readers of layout 2 written before
//! this rule required `WORD_VERSION == 2`, so the major stays in that word.
//!
//! The file is sparse: a process pays (in shared memory) only for the pages
//! it touches, a few for a process that makes one kind of call. Liveness is
//! not in the file: the writer holds a lock on it for its whole life (see the
//! preload library's `stats/file.rs`). The reader refuses a file it does not
//! understand — wrong magic, version or layout, cut short, not complete —
//! rather than misreport it.
//!
//! Sites (`sites.rs`) are claimed by compare-and-swap on their key, filled,
//! then marked ready; modules likewise on their state word. Readers take
//! only ready ones, so a site or module half written is never misnamed (its
//! calls are still in the call's totals).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::call::Call;
use crate::histogram::{BUCKETS, HIGHEST_VALUE, SIGNIFICANT_DIGITS};
use crate::origin::{read_origin_line, write_origin, Origin, OriginRef};
use crate::sites::{Module, SiteKey, SiteStats, Sites, SITE_BUCKETS};
use crate::stats::Snapshot;

/// File-name suffix of stats files.
pub const FILE_SUFFIX: &str = ".stats";
pub const MAGIC: u64 = u64::from_le_bytes(*b"FSHSTAT1");
/// The layout written: (major, minor), see "Layouts and compatibility".
pub const LAYOUT: (u64, u64) = (2, 0);
/// The majors this reader reads.
pub const READ_MAJORS: [u64; 2] = [1, 2];
/// Layout 1 ended where layout 2's call sites begin.
pub const LAYOUT_1_BYTES: usize = SITES_OFFSET;

pub const WORD_MAGIC: usize = 0;
pub const WORD_VERSION: usize = 1;
pub const WORD_BUCKETS: usize = 2;
pub const WORD_HIGHEST_VALUE: usize = 3;
pub const WORD_DIGITS_AND_CALLS: usize = 4;
/// 0 while the writer fills the header, `COMPLETE` after.
pub const WORD_STATE: usize = 5;
pub const WORD_CREATED: usize = 6;
/// A random number fixed at creation: with the file's inode, what an
/// aggregate remembers of a file it absorbed.
pub const WORD_NONCE: usize = 7;
pub const WORD_ORIGIN_BYTES: usize = 8;
/// The layout's minor number (0 in files written before it was kept).
pub const WORD_MINOR: usize = 9;
pub const COMPLETE: u64 = 1;

pub const ORIGIN_OFFSET: usize = 128;
pub const ORIGIN_CAPACITY: usize = 4096 - ORIGIN_OFFSET;
pub const COUNTERS_OFFSET: usize = 4096;
pub const COUNTER_WORDS_PER_CALL: usize = 4;
pub const SITE_KEYS_OFFSET: usize = 6144;
pub const HISTOGRAMS_OFFSET: usize = 8192;
pub const SITES_OFFSET: usize = HISTOGRAMS_OFFSET + Call::COUNT * BUCKETS * 8;
pub const MODULES_OFFSET: usize = SITES_OFFSET + SITE_SLOTS * SITE_WORDS * 8;
pub const FILE_BYTES: usize = MODULES_OFFSET + (MODULE_SLOTS - FIRST_MODULES) * MODULE_WORDS * 8;
pub const FILE_WORDS: usize = FILE_BYTES / 8;

/// The writer's locks, held for its life. Liveness: an open-file-description
/// lock (`F_OFD_SETLK`, write) on this byte, which the kernel drops only when
/// the process's last descriptor of the file is gone — at its death — and
/// which a compactor takes to retire the file. Identity: a POSIX record lock
/// (`F_SETLK`, write) on `IDENTITY_BYTE`, through which `F_GETLK` names the
/// writer's pid in the reader's pid namespace; best effort (POSIX locks go
/// with any close of the file).
pub const LIVENESS_BYTE: i64 = 0;
pub const IDENTITY_BYTE: i64 = 1;

/// Call sites a process records (then its calls count only in the totals).
pub const SITE_SLOTS: usize = 256;
/// A site key: the return address (bits 0..48), the call's index (48..56),
/// `SITE_READY` once the site's record is filled in.
pub const SITE_ADDRESS_MASK: u64 = (1 << 48) - 1;
pub const SITE_CALL_SHIFT: u32 = 48;
pub const SITE_READY: u64 = 1 << 63;
/// Set on the key of a site whose module was unloaded: no new call matches
/// it (another object may load at the same address), readers still count it.
pub const SITE_RETIRED: u64 = 1 << 62;

/// Words of a site's record.
pub const SITE_WORDS: usize = 24;
/// The address relative to the module's load address (or absolute, without
/// a module).
pub const SITE_ADDRESS: usize = 0;
/// The module slot, or `NO_MODULE`.
pub const SITE_MODULE: usize = 1;
pub const SITE_DROPPED: usize = 2;
pub const SITE_LIMITED: usize = 3;
pub const SITE_ERRORS: usize = 4;
pub const SITE_FIRST_BUCKET: usize = 5;
/// The writer's own cache of the site's verdict; not for readers.
pub const SITE_VERDICT: usize = SITE_FIRST_BUCKET + SITE_BUCKETS;
pub const NO_MODULE: u64 = u64::MAX;

/// Loaded objects a process names.
pub const MODULE_SLOTS: usize = 3 + 64;
pub const MODULE_WORDS: usize = 64;
/// The first module slots lie in the counters' page, which every file has
/// allocated: a process whose calls come from up to three objects (most)
/// pays no page for naming them.
pub const FIRST_MODULES: usize = 3;
pub const FIRST_MODULES_OFFSET: usize = COUNTERS_OFFSET + Call::COUNT * COUNTER_WORDS_PER_CALL * 8;
/// 0 free, `MODULE_CLAIMED` while being filled, then `MODULE_READY`.
pub const MODULE_STATE: usize = 0;
pub const MODULE_CLAIMED: u64 = 1;
pub const MODULE_READY: u64 = 2;
/// The writer's identity of the object (its start address and link map):
/// process-local, not for readers.
pub const MODULE_START: usize = 1;
pub const MODULE_LINK_MAP: usize = 2;
pub const MODULE_BUILD_ID_BYTES: usize = 4;
pub const MODULE_BUILD_ID: usize = 5;
pub const BUILD_ID_CAPACITY: usize = 32;
pub const MODULE_PATH_BYTES: usize = MODULE_BUILD_ID + BUILD_ID_CAPACITY / 8;
pub const MODULE_PATH: usize = MODULE_PATH_BYTES + 1;
pub const PATH_CAPACITY: usize = (MODULE_WORDS - MODULE_PATH) * 8;

/// Word index of a site's key.
pub const fn site_key_word(slot: usize) -> usize {
    SITE_KEYS_OFFSET / 8 + slot
}

/// Word index of a field of a site's record.
pub const fn site_word(slot: usize, field: usize) -> usize {
    SITES_OFFSET / 8 + slot * SITE_WORDS + field
}

/// Word index of a field of a module slot.
pub const fn module_word(slot: usize, field: usize) -> usize {
    if slot < FIRST_MODULES {
        FIRST_MODULES_OFFSET / 8 + slot * MODULE_WORDS + field
    } else {
        MODULES_OFFSET / 8 + (slot - FIRST_MODULES) * MODULE_WORDS + field
    }
}

const _: () = {
    assert!(module_word(FIRST_MODULES, 0) * 8 == MODULES_OFFSET);
    assert!(module_word(FIRST_MODULES - 1, MODULE_WORDS) * 8 <= SITE_KEYS_OFFSET);
    assert!(FILE_BYTES % 4096 == 0);
};

/// The call of a ready site's key; `None` for a key not (yet) ready or
/// naming no call. For the writer's dumps and the reader alike.
pub fn ready_site_call(key: u64) -> Option<Call> {
    let call = Call::ALL.get(((key >> SITE_CALL_SHIFT) & 0xff) as usize)?;
    (key & SITE_READY != 0).then_some(*call)
}

/// A site's counts from its record's fields (`field(SITE_DROPPED)`…).
/// Errors are counted after their bucket, so a copy taken while the
/// process counts may hold one too many: never more than passed calls.
pub fn site_stats(field: impl Fn(usize) -> u64) -> SiteStats {
    let mut stats = SiteStats {
        dropped: field(SITE_DROPPED),
        limited: field(SITE_LIMITED),
        errors: 0,
        buckets: [0; SITE_BUCKETS],
    };
    for (bucket, count) in stats.buckets.iter_mut().enumerate() {
        *count = field(SITE_FIRST_BUCKET + bucket);
    }
    stats.errors = field(SITE_ERRORS).min(stats.passed());
    stats
}

/// Packs bytes into little-endian words, as the file holds text; what does
/// not fit is cut. For the writer (no allocation).
pub fn store_bytes(words: &[AtomicU64], bytes: &[u8]) {
    for (slot, chunk) in words.iter().zip(bytes.chunks(8)) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        slot.store(u64::from_le_bytes(word), Ordering::Relaxed);
    }
}

/// Word index of a call's `dropped`, `limited` and `errors` counters.
pub const fn counter_word(call: Call, counter: Counter) -> usize {
    COUNTERS_OFFSET / 8 + call.index() * COUNTER_WORDS_PER_CALL + counter as usize
}

/// Word index of a call's histogram bucket.
pub const fn bucket_word(call: Call, bucket: usize) -> usize {
    HISTOGRAMS_OFFSET / 8 + call.index() * BUCKETS + bucket
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Dropped = 0,
    Limited = 1,
    Errors = 2,
}

fn layout_word() -> u64 {
    u64::from(SIGNIFICANT_DIGITS) | (Call::COUNT as u64) << 8
}

/// Fills a fresh file's header and origin (everything but `WORD_STATE`);
/// `words` is the whole file. Allocates nothing.
pub fn write_header(words: &[AtomicU64], origin: &OriginRef, nonce: u64, created: u64) {
    let mut text = OriginText {
        bytes: [0; ORIGIN_CAPACITY],
        len: 0,
    };
    write_origin(&mut text, origin);
    for (index, chunk) in text.bytes[..text.len].chunks(8).enumerate() {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        if let Some(slot) = words.get(ORIGIN_OFFSET / 8 + index) {
            slot.store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
    }
    let header = [
        (WORD_MAGIC, MAGIC),
        (WORD_VERSION, LAYOUT.0),
        (WORD_MINOR, LAYOUT.1),
        (WORD_BUCKETS, BUCKETS as u64),
        (WORD_HIGHEST_VALUE, HIGHEST_VALUE),
        (WORD_DIGITS_AND_CALLS, layout_word()),
        (WORD_CREATED, created),
        (WORD_NONCE, nonce),
        (WORD_ORIGIN_BYTES, text.len as u64),
    ];
    for (index, value) in header {
        if let Some(slot) = words.get(index) {
            slot.store(value, Ordering::Relaxed);
        }
    }
}

/// Marks the file complete: readers take it from now on.
pub fn mark_complete(words: &[AtomicU64]) {
    if let Some(state) = words.get(WORD_STATE) {
        state.store(COMPLETE, Ordering::Release);
    }
}

/// The origin text, built on the stack; what does not fit is cut.
struct OriginText {
    bytes: [u8; ORIGIN_CAPACITY],
    len: usize,
}

impl crate::text::Sink for OriginText {
    fn put(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }
}

/// A stats file as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveStats {
    pub nonce: u64,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    pub origin: Origin,
    pub stats: Snapshot,
}

/// Why a stats file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsFileError(pub String);

impl std::fmt::Display for StatsFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StatsFileError {}

fn word(bytes: &[u8], index: usize) -> u64 {
    bytes
        .get(index * 8..index * 8 + 8)
        .and_then(|slice| slice.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// Reads a copy of a stats file. A file still being created is refused
/// (`is_incomplete` tells that case from a broken file).
pub fn decode(bytes: &[u8]) -> Result<LiveStats, StatsFileError> {
    let mut stats = Snapshot::default();
    let head = decode_adding(bytes, |_| &mut stats)?;
    Ok(LiveStats {
        nonce: head.nonce,
        created: head.created,
        origin: head.origin,
        stats,
    })
}

/// What a stats file says of its process, besides its counts.
#[derive(Clone, Debug, PartialEq)]
pub struct FileHead {
    pub nonce: u64,
    /// Creation time, seconds since the epoch.
    pub created: u64,
    pub origin: Origin,
}

/// Reads a copy of a stats file as `decode` does, adding its counts into
/// the snapshot `into` picks by the file's origin instead of building one
/// of its own (what a compactor folding many files into one record per
/// program wants). Nothing is added unless the whole file is sound.
pub fn decode_adding<'a>(
    bytes: &[u8],
    into: impl FnOnce(&Origin) -> &'a mut Snapshot,
) -> Result<FileHead, StatsFileError> {
    let refuse = |message: String| Err(StatsFileError(message));
    if bytes.len() < 8 || word(bytes, WORD_MAGIC) != MAGIC {
        return refuse("not a fadvise-shim stats file".into());
    }
    let major = word(bytes, WORD_VERSION);
    let length = match major {
        1 => LAYOUT_1_BYTES,
        2 => FILE_BYTES,
        _ => {
            return refuse(format!(
                "stats file layout {major} (this reader knows {})",
                layouts_read()
            ))
        }
    };
    if bytes.len() < length {
        return refuse(format!("cut short: {} bytes of {length}", bytes.len()));
    }
    if word(bytes, WORD_BUCKETS) != BUCKETS as u64
        || word(bytes, WORD_HIGHEST_VALUE) != HIGHEST_VALUE
        || word(bytes, WORD_DIGITS_AND_CALLS) != layout_word()
    {
        return refuse("another histogram layout".into());
    }
    if word(bytes, WORD_STATE) != COMPLETE {
        return refuse(INCOMPLETE.into());
    }
    let origin_bytes = word(bytes, WORD_ORIGIN_BYTES) as usize;
    if origin_bytes > ORIGIN_CAPACITY {
        return refuse(format!("origin of {origin_bytes} bytes"));
    }
    let mut origin = Origin::default();
    let text = String::from_utf8_lossy(&bytes[ORIGIN_OFFSET..ORIGIN_OFFSET + origin_bytes]);
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        if let Some(Err(message)) = read_origin_line(&mut origin, key, value) {
            return refuse(message);
        }
    }
    // Checked whole before anything is added.
    let mut passed = [0u64; Call::COUNT];
    for call in Call::ALL {
        let total = buckets_of(bytes, call)
            .try_fold(0u64, |total, count| total.checked_add(count))
            .inspect(|&sum| passed[call.index()] = sum)
            .and_then(|sum| sum.checked_add(word(bytes, counter_word(call, Counter::Dropped))))
            .and_then(|sum| sum.checked_add(word(bytes, counter_word(call, Counter::Limited))));
        if total.is_none() {
            return refuse(format!("{}: counts overflow", call.name()));
        }
    }
    let sites = (major >= 2).then(|| decode_sites(bytes, &origin.exe));
    let stats = into(&origin);
    for call in Call::ALL {
        let counts = stats.call_mut(call);
        let field = |counter| word(bytes, counter_word(call, counter));
        counts.dropped = counts.dropped.saturating_add(field(Counter::Dropped));
        counts.limited = counts.limited.saturating_add(field(Counter::Limited));
        // A copy taken while the process counts may catch an error before
        // the bucket of its call: never more errors than passed calls.
        let errors = field(Counter::Errors).min(passed[call.index()]);
        counts.errors = counts.errors.saturating_add(errors);
        for (mine, count) in counts.buckets.iter_mut().zip(buckets_of(bytes, call)) {
            if count != 0 {
                *mine = mine.saturating_add(count);
            }
        }
    }
    if let Some(sites) = &sites {
        stats.sites.merge(sites);
    }
    Ok(FileHead {
        nonce: word(bytes, WORD_NONCE),
        created: word(bytes, WORD_CREATED),
        origin,
    })
}

/// The nonce a copy of a stats file holds (0 if it is too short), to tell
/// whether it was already absorbed before decoding it.
pub fn nonce_of(bytes: &[u8]) -> u64 {
    word(bytes, WORD_NONCE)
}

/// A call's histogram buckets, read from the file's bytes in one run.
fn buckets_of(bytes: &[u8], call: Call) -> impl Iterator<Item = u64> + '_ {
    let start = bucket_word(call, 0) * 8;
    bytes[start..start + BUCKETS * 8]
        .chunks_exact(8)
        .map(|chunk| u64::from_le_bytes(chunk.try_into().unwrap_or_default()))
}

/// The ready sites of a file. Hostile values cannot harm: a site naming a
/// module slot that is not ready is kept without its module; counts
/// saturate when merged.
fn decode_sites(bytes: &[u8], exe: &str) -> Sites {
    let modules: Vec<Option<Module>> = (0..MODULE_SLOTS)
        .map(|slot| decode_module(bytes, slot, exe))
        .collect();
    let mut sites = Sites::default();
    for slot in 0..SITE_SLOTS {
        let Some(call) = ready_site_call(word(bytes, site_key_word(slot))) else {
            continue;
        };
        let field = |field| word(bytes, site_word(slot, field));
        let stats = site_stats(field);
        let module = usize::try_from(field(SITE_MODULE))
            .ok()
            .and_then(|index| modules.get(index).cloned().flatten());
        sites.add(
            SiteKey {
                call,
                module,
                address: field(SITE_ADDRESS),
            },
            &stats,
        );
    }
    sites
}

/// A ready module slot; an empty path is the main program's, `exe`.
fn decode_module(bytes: &[u8], slot: usize, exe: &str) -> Option<Module> {
    if word(bytes, module_word(slot, MODULE_STATE)) != MODULE_READY {
        return None;
    }
    let text = |first: usize, length: u64, capacity: usize| {
        let start = module_word(slot, first) * 8;
        let length = usize::try_from(length).unwrap_or(usize::MAX).min(capacity);
        bytes.get(start..start + length).unwrap_or(&[])
    };
    let build_id = text(
        MODULE_BUILD_ID,
        word(bytes, module_word(slot, MODULE_BUILD_ID_BYTES)),
        BUILD_ID_CAPACITY,
    );
    let path = text(
        MODULE_PATH,
        word(bytes, module_word(slot, MODULE_PATH_BYTES)),
        PATH_CAPACITY,
    );
    let path = String::from_utf8_lossy(path);
    Some(Module {
        path: if path.is_empty() {
            exe.to_owned()
        } else {
            path.into_owned()
        },
        build_id: crate::text::hex_encode(build_id),
    })
}

/// The layouts read, for messages and `--version`: "1 and 2".
pub fn layouts_read() -> String {
    let majors: Vec<String> = READ_MAJORS.iter().map(u64::to_string).collect();
    match majors.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

const INCOMPLETE: &str = "still being created";

/// Whether `decode` refused a file only because its writer has not finished
/// creating it.
pub fn is_incomplete(error: &StatsFileError) -> bool {
    error.0 == INCOMPLETE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::index_of;

    fn written() -> Vec<u8> {
        let words: Vec<AtomicU64> = (0..FILE_WORDS).map(|_| AtomicU64::new(0)).collect();
        let origin = OriginRef {
            exe: b"/usr/bin/dd",
            pid: 1,
            outer_pid: 777,
            cgroup: b"/docker/0123",
            ..OriginRef::default()
        };
        write_header(&words, &origin, 0xfeed, 1_764_000_000);
        words[bucket_word(Call::PosixFadvise, index_of(380))].store(150, Ordering::Relaxed);
        words[counter_word(Call::Fsync, Counter::Dropped)].store(7, Ordering::Relaxed);
        words[counter_word(Call::PosixFadvise, Counter::Errors)].store(2, Ordering::Relaxed);
        // Two sites of fsync, one in a ready module, one naming a slot that
        // is not ready; and a key still being claimed.
        let key = |address: u64| address | (Call::Fsync.index() as u64) << SITE_CALL_SHIFT;
        words[site_key_word(3)].store(key(0x5555_0000_1000) | SITE_READY, Ordering::Relaxed);
        words[site_word(3, SITE_ADDRESS)].store(0x1a3, Ordering::Relaxed);
        words[site_word(3, SITE_MODULE)].store(0, Ordering::Relaxed);
        words[site_word(3, SITE_DROPPED)].store(7, Ordering::Relaxed);
        words[site_key_word(4)].store(key(0x5555_0000_2000) | SITE_READY, Ordering::Relaxed);
        words[site_word(4, SITE_ADDRESS)].store(0x2000, Ordering::Relaxed);
        words[site_word(4, SITE_MODULE)].store(1, Ordering::Relaxed);
        words[site_word(4, SITE_FIRST_BUCKET + 2)].store(5, Ordering::Relaxed);
        words[site_key_word(5)].store(key(0x5555_0000_3000), Ordering::Relaxed);
        words[site_word(5, SITE_DROPPED)].store(9, Ordering::Relaxed);
        words[module_word(0, MODULE_STATE)].store(MODULE_READY, Ordering::Relaxed);
        store_bytes(&words[module_word(0, MODULE_BUILD_ID)..], &[0xab, 0xcd]);
        words[module_word(0, MODULE_BUILD_ID_BYTES)].store(2, Ordering::Relaxed);
        store_bytes(
            &words[module_word(0, MODULE_PATH)..],
            b"/usr/lib/libglog.so.1",
        );
        words[module_word(0, MODULE_PATH_BYTES)].store(21, Ordering::Relaxed);
        words[module_word(1, MODULE_STATE)].store(MODULE_CLAIMED, Ordering::Relaxed);
        mark_complete(&words);
        words
            .iter()
            .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
            .collect()
    }

    #[test]
    fn round_trip() {
        let live = decode(&written()).unwrap();
        assert_eq!(live.nonce, 0xfeed);
        assert_eq!((live.origin.pid, live.origin.outer_pid), (1, 777));
        assert_eq!(live.origin.exe_name(), "dd");
        assert_eq!(live.origin.cgroup, "/docker/0123");
        let fadvise = live.stats.call(Call::PosixFadvise);
        assert_eq!((fadvise.passed(), fadvise.errors), (150, 2));
        assert_eq!(live.stats.call(Call::Fsync).dropped, 7);
        let sites: Vec<_> = live.stats.sites.sites.iter().collect();
        assert_eq!(sites.len(), 2, "{sites:?}");
        let (named, unnamed) = (sites[1], sites[0]);
        let module = named.0.module.as_ref().unwrap();
        assert_eq!(
            (module.path.as_str(), module.build_id.as_str()),
            ("/usr/lib/libglog.so.1", "abcd")
        );
        assert_eq!((named.0.address, named.1.dropped), (0x1a3, 7));
        assert_eq!((unnamed.0.module.as_ref(), unnamed.1.passed()), (None, 5));
    }

    #[test]
    fn a_later_minor_is_read_and_what_it_adds_skipped() {
        let mut bytes = written();
        bytes[WORD_MINOR * 8] = 7;
        bytes[10 * 8] = 0x55;
        bytes.extend([0xee; 8192]);
        assert_eq!(decode(&bytes).unwrap(), decode(&written()).unwrap());
    }

    #[test]
    fn layout_1_is_read_without_call_sites() {
        let mut bytes = written();
        bytes[WORD_VERSION * 8] = 1;
        // What layout 1 had: no module slots, no site keys.
        bytes[FIRST_MODULES_OFFSET..HISTOGRAMS_OFFSET].fill(0);
        bytes.truncate(LAYOUT_1_BYTES);
        let live = decode(&bytes).unwrap();
        assert_eq!(live.stats.call(Call::PosixFadvise).passed(), 150);
        assert_eq!(live.stats.call(Call::Fsync).dropped, 7);
        assert!(live.stats.sites.sites.is_empty());
        let short = decode(&bytes[..LAYOUT_1_BYTES - 8]).unwrap_err();
        assert!(short.0.starts_with("cut short"), "{short}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, failure_persistence: None, ..Default::default() })]

        /// Mutated files never panic the reader, and what it accepts is
        /// self-consistent.
        #[test]
        fn mutated_files_never_panic(
            edits in proptest::collection::vec((0usize..FILE_BYTES, proptest::prelude::any::<u8>()), 1..40),
            cut in proptest::option::of(0usize..FILE_BYTES + 100),
        ) {
            let mut bytes = written();
            for (at, byte) in edits {
                bytes[at] = byte;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            if let Ok(live) = decode(&bytes) {
                for (_, stats) in live.stats.made() {
                    proptest::prop_assert!(stats.errors <= stats.passed());
                }
            }
        }
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        let good = written();
        let mut incomplete = good.clone();
        incomplete[WORD_STATE * 8] = 0;
        assert!(is_incomplete(&decode(&incomplete).unwrap_err()));
        assert!(decode(&good[..FILE_BYTES - 1]).is_err());
        assert!(decode(b"hello").is_err());
        assert!(decode(&[]).is_err());
        let mut version = good.clone();
        version[WORD_VERSION * 8] = 9;
        assert_eq!(
            decode(&version).unwrap_err().0,
            "stats file layout 9 (this reader knows 1 and 2)"
        );
        let mut layout = good.clone();
        layout[WORD_BUCKETS * 8] = 1;
        assert!(decode(&layout).is_err());
        let mut origin = good.clone();
        origin[WORD_ORIGIN_BYTES * 8..WORD_ORIGIN_BYTES * 8 + 8]
            .copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&origin).is_err());
        let mut overflow = good;
        for bucket in 0..3 {
            let at = bucket_word(Call::Sync, bucket) * 8;
            overflow[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        }
        assert!(decode(&overflow).unwrap_err().0.contains("overflow"));
    }
}
