//! Verdicts of `path` rules kept per descriptor, so that a call on a file
//! already seen costs one `statx` (≈ 0.4 µs here) instead of a walk through
//! `/proc` for its path (≈ 3 µs).
//!
//! What it guarantees: a cached verdict is used only while the descriptor's
//! file has the identity it had when its path was looked up (device, inode,
//! mount, change time, exactly one link; `sys::fdpath::identity`, asked of
//! the kernel on every call), under the same policy (the reload generation),
//! and for at most `FRESH_MS`. So a descriptor number reused after `close`,
//! `dup2`/`dup3`, `fcntl(F_DUPFD)`, a raw `close` system call we never see,
//! or in a forked child that changed its table gets the new file's verdict
//! at once; so does a file renamed into or out of the matched tree, or
//! linked (the link count and change time move; Linux's multigrain
//! timestamps, 6.13+, make the change visible however soon it follows), a
//! name replaced by another file (another inode), and a bind mount of the
//! same file (another mount). Files with several links (hard links; most
//! file systems' directories) are never cached: a hard-linked file's path
//! depends on the name it was opened by, which no identity shows. Nor are
//! unlinked files: ext4 gives a freed inode's number to the next file
//! created, and an unlinked file's change time is final, so a new file made
//! in the same clock tick could wear its identity; a file with one link
//! must be unlinked (a change, which multigrain timestamps make later than
//! any time already read) before its number can be reused.
//!
//! What it does not guarantee: a rename of a parent directory, a `chroot`
//! or another change of what the process's paths mean changes no identity
//! of the file, so its old verdict lasts until the entry is `FRESH_MS` old
//! (then the path is looked up again). So may, for as long: a rename on a
//! file system that leaves `ctime` alone; without multigrain timestamps
//! (ext4, xfs, btrfs and tmpfs have them since Linux 6.13), or for an inode
//! the kernel evicted from its cache between our look and the change, a
//! rename or an unlink and reuse of the inode number within the same clock
//! tick (≈ 1–4 ms) as the time we read; and a thread that swaps a
//! descriptor's file and back (two raw closes) within the ≈ 3 µs of another
//! thread's look-up of it, which can leave the second file's verdict on the
//! first.
//!
//! The cache is a fixed table indexed by descriptor number modulo `SLOTS`
//! (the slot names its descriptor), each slot a sequence lock: readers
//! never write and never wait (a slot being written reads as a miss), a
//! writer that finds the slot taken does not cache, so hooks in signal
//! handlers and racing threads are safe and nothing allocates. A slot keeps
//! the verdict of every table index that depends on the path, all found
//! with the one path look-up. After `fork` the child's table is a copy of
//! the parent's and so is the cache; after `exec` both start empty.

use std::path::Path;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use fadvise_shim_core::call::{Advice, Call};
use fadvise_shim_core::policy::evaluate::Fact;

use super::active;
use super::compile::{table_index, Compiled, BY_PATH, DROP, KIND_MASK, LIMIT, PASS, TABLE_LEN};
use crate::sys::fdpath::{self, Identity};

/// Slots in the table (a power of two): a descriptor `fd` uses slot `fd %
/// SLOTS`, so two open descriptors that far apart take turns.
const SLOTS: usize = 1024;
/// How long a verdict stands before its path is looked up again, in
/// milliseconds: the bound on staleness for the changes no identity shows.
const FRESH_MS: u64 = 1000;
/// One byte per table index.
const VERDICT_WORDS: usize = TABLE_LEN.div_ceil(8);

/// One descriptor's verdicts. Every field is written only by the writer
/// that holds `version` odd.
#[repr(align(64))]
struct Slot {
    /// Even when the slot is stable, odd while it is written; zero: empty.
    version: AtomicU64,
    /// `fd | generation << 32`.
    owner: AtomicU64,
    device: AtomicU64,
    inode: AtomicU64,
    mount: AtomicU64,
    ctime_seconds: AtomicU64,
    ctime_nanoseconds: AtomicU64,
    /// When the path was looked up (coarse monotonic clock, ms).
    looked_up_ms: AtomicU64,
    /// `encode`d entries by table index; 0: not known.
    verdicts: [AtomicU64; VERDICT_WORDS],
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        version: AtomicU64::new(0),
        owner: AtomicU64::new(0),
        device: AtomicU64::new(0),
        inode: AtomicU64::new(0),
        mount: AtomicU64::new(0),
        ctime_seconds: AtomicU64::new(0),
        ctime_nanoseconds: AtomicU64::new(0),
        looked_up_ms: AtomicU64::new(0),
        verdicts: [const { AtomicU64::new(0) }; VERDICT_WORDS],
    }
}; SLOTS];

/// A consistent copy of a slot.
struct Entry {
    owner: u64,
    identity: [u64; 5],
    looked_up_ms: u64,
    verdicts: [u64; VERDICT_WORDS],
}

/// The table entry for `call` on `fd` under a `path` rule.
pub fn entry(call: Call, raw_advice: libc::c_int, fd: libc::c_int) -> u32 {
    let index = table_index(call, raw_advice);
    // Read before anything is decided: a verdict found under a later
    // policy is then stored as older than it is, never the reverse.
    let generation = active::generation();
    let owner = u64::from(fd as u32) | u64::from(generation) << 32;
    let (Some(identity), Some(now_ms), Ok(number)) =
        (fdpath::identity(fd), coarse_ms(), usize::try_from(fd))
    else {
        return look_up(call, raw_advice, fd, None);
    };
    if identity.links != 1 {
        return look_up(call, raw_advice, fd, None);
    }
    let slot = &TABLE[number % SLOTS];
    let fields = identity_fields(&identity);
    let cached = slot.read().filter(|entry| {
        entry.owner == owner
            && entry.identity == fields
            && now_ms.wrapping_sub(entry.looked_up_ms) < FRESH_MS
    });
    if let Some(entry) = cached.and_then(|entry| decode(verdict_byte(&entry.verdicts, index))) {
        return entry;
    }
    look_up(
        call,
        raw_advice,
        fd,
        Some(Store {
            slot,
            owner,
            fields,
            now_ms,
        }),
    )
}

/// Where a look-up's verdicts go.
struct Store {
    slot: &'static Slot,
    owner: u64,
    fields: [u64; 5],
    now_ms: u64,
}

/// Looks the path of `fd` up and decides `call` by it; with `store`, also
/// every other path-dependent table index, and keeps them.
#[cold]
#[inline(never)]
fn look_up(call: Call, raw_advice: libc::c_int, fd: libc::c_int, store: Option<Store>) -> u32 {
    let _no_cancel = crate::sys::NoCancel::new();
    let mut verdicts = [0u8; TABLE_LEN];
    let fill = store.is_some();
    let decided = fdpath::with_fd_path(fd, |path| {
        active::with_current(|policy| {
            if fill {
                for (other_call, other_advice) in path_indices() {
                    let other = table_index(other_call, other_advice);
                    if active::entry(other) & KIND_MASK == BY_PATH {
                        verdicts[other] = encode(by_path(policy, other_call, other_advice, path));
                    }
                }
            }
            by_path(policy, call, raw_advice, path)
        })
    });
    if let (Some(store), Some(_)) = (store, decided) {
        store.slot.write(&store, &verdicts);
    }
    decided.unwrap_or(PASS)
}

/// The verdict of a call whose entry is `BY_PATH`, its file's path known
/// (`None`: it has none): the caller is then never asked.
fn by_path(policy: &Compiled, call: Call, raw_advice: libc::c_int, path: Option<&Path>) -> u32 {
    policy.decide(
        call,
        raw_advice,
        Fact::from_option(path),
        Fact::NotKnownHere,
    )
}

/// Every (call, raw advice) with a table index of its own among calls that
/// have a file.
fn path_indices() -> impl Iterator<Item = (Call, libc::c_int)> {
    Call::ALL
        .into_iter()
        .filter(|call| call.has_file())
        .flat_map(|call| {
            let advices = if call == Call::PosixFadvise {
                &Advice::ALL[..]
            } else {
                &[]
            };
            advices
                .iter()
                .map(|advice| advice.raw())
                .chain([-1])
                .map(move |raw| (call, raw))
        })
}

impl Slot {
    /// A consistent copy, or `None` while a writer is at work (or was, in
    /// the thread a `fork` left behind: that slot then stays a miss).
    fn read(&self) -> Option<Entry> {
        let before = self.version.load(Ordering::Acquire);
        if before == 0 || before & 1 == 1 {
            return None;
        }
        let entry = Entry {
            owner: self.owner.load(Ordering::Relaxed),
            identity: [
                self.device.load(Ordering::Relaxed),
                self.inode.load(Ordering::Relaxed),
                self.mount.load(Ordering::Relaxed),
                self.ctime_seconds.load(Ordering::Relaxed),
                self.ctime_nanoseconds.load(Ordering::Relaxed),
            ],
            looked_up_ms: self.looked_up_ms.load(Ordering::Relaxed),
            verdicts: std::array::from_fn(|word| self.verdicts[word].load(Ordering::Relaxed)),
        };
        // Pairs with the writer's release fence: if any load above saw a
        // write of a later version, the load below sees that version.
        fence(Ordering::Acquire);
        (self.version.load(Ordering::Relaxed) == before).then_some(entry)
    }

    /// Replaces the slot's contents, unless another writer (another
    /// thread, or the code this signal handler interrupted) holds it.
    fn write(&self, store: &Store, verdicts: &[u8; TABLE_LEN]) {
        let before = self.version.load(Ordering::Relaxed);
        if before & 1 == 1
            || self
                .version
                .compare_exchange(before, before + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        fence(Ordering::Release);
        self.owner.store(store.owner, Ordering::Relaxed);
        let [device, inode, mount, seconds, nanoseconds] = store.fields;
        self.device.store(device, Ordering::Relaxed);
        self.inode.store(inode, Ordering::Relaxed);
        self.mount.store(mount, Ordering::Relaxed);
        self.ctime_seconds.store(seconds, Ordering::Relaxed);
        self.ctime_nanoseconds.store(nanoseconds, Ordering::Relaxed);
        self.looked_up_ms.store(store.now_ms, Ordering::Relaxed);
        for (word, bytes) in self.verdicts.iter().zip(verdicts.chunks(8)) {
            let mut packed = [0u8; 8];
            packed[..bytes.len()].copy_from_slice(bytes);
            word.store(u64::from_le_bytes(packed), Ordering::Relaxed);
        }
        // Never back to zero (empty): a version wraps after 2^63 writes.
        self.version.store((before + 2).max(2), Ordering::Release);
    }
}

fn identity_fields(identity: &Identity) -> [u64; 5] {
    [
        identity.device,
        identity.inode,
        identity.mount,
        identity.ctime_seconds as u64,
        u64::from(identity.ctime_nanoseconds),
    ]
}

fn verdict_byte(verdicts: &[u64; VERDICT_WORDS], index: usize) -> u8 {
    verdicts
        .get(index / 8)
        .map_or(0, |word| word.to_le_bytes()[index % 8])
}

/// A table entry as one byte: 0 for "not known" (also for an entry that
/// does not fit, which is then never cached), then `PASS`, `DROP`, and one
/// value per limiter.
fn encode(entry: u32) -> u8 {
    match entry & KIND_MASK {
        PASS => 1,
        DROP => 2,
        LIMIT => u8::try_from((entry >> 8) + 3).unwrap_or(0),
        _ => 0,
    }
}

fn decode(byte: u8) -> Option<u32> {
    match byte {
        0 => None,
        1 => Some(PASS),
        2 => Some(DROP),
        limiter => Some(LIMIT | u32::from(limiter - 3) << 8),
    }
}

/// The coarse monotonic clock in ms (read from the vDSO, ≈ 5 ns, no
/// system call), or `None` if it cannot be read.
fn coarse_ms() -> Option<u64> {
    // Async-signal-safe, allocation-free.
    crate::sys::time::read(libc::CLOCK_MONOTONIC_COARSE)
        .map(|now| now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_their_one_byte_form() {
        for entry in [PASS, DROP, LIMIT, LIMIT | 1 << 8, LIMIT | 63 << 8] {
            assert_eq!(decode(encode(entry)), Some(entry));
        }
        assert_eq!(encode(BY_PATH), 0);
        assert_eq!(encode(LIMIT | 253 << 8), 0);
        assert_eq!(decode(0), None);
    }

    #[test]
    fn every_path_index_is_distinct_and_in_the_table() {
        let indices: Vec<usize> = path_indices()
            .map(|(call, raw)| table_index(call, raw))
            .collect();
        let mut unique = indices.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), indices.len());
        assert!(indices.iter().all(|&index| index < TABLE_LEN));
    }

    #[test]
    fn a_slot_reads_back_what_was_written_and_empty_reads_as_nothing() {
        let slot = &TABLE[SLOTS - 1];
        assert!(slot.read().is_none());
        let mut verdicts = [0u8; TABLE_LEN];
        verdicts[3] = encode(DROP);
        verdicts[TABLE_LEN - 1] = encode(LIMIT | 5 << 8);
        let store = Store {
            slot,
            owner: 7 | 9 << 32,
            fields: [1, 2, 3, 4, 5],
            now_ms: 42,
        };
        slot.write(&store, &verdicts);
        let entry = slot.read().expect("stable slot");
        assert_eq!(entry.owner, 7 | 9 << 32);
        assert_eq!(entry.identity, [1, 2, 3, 4, 5]);
        assert_eq!(entry.looked_up_ms, 42);
        assert_eq!(decode(verdict_byte(&entry.verdicts, 3)), Some(DROP));
        assert_eq!(
            decode(verdict_byte(&entry.verdicts, TABLE_LEN - 1)),
            Some(LIMIT | 5 << 8)
        );
        assert_eq!(verdict_byte(&entry.verdicts, 4), 0);
        // A writer at work: readers miss, a second writer gives up.
        slot.version.fetch_add(1, Ordering::Relaxed);
        assert!(slot.read().is_none());
        slot.write(&store, &[0; TABLE_LEN]);
        slot.version.fetch_add(1, Ordering::Relaxed);
        assert_eq!(
            decode(verdict_byte(&slot.read().expect("stable").verdicts, 3)),
            Some(DROP)
        );
    }
}
