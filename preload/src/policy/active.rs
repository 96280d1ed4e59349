//! The policy in force.
//!
//! The hot path reads one atomic word from `TABLE`. Everything else about
//! the policy (path rules, dump settings) lives in a `Compiled` held in one
//! of a few fixed slots; readers announce themselves with a per-slot count
//! and re-check that the slot is still current, so a reload never frees a
//! policy that a thread (or the dump signal handler) is reading, memory stays
//! bounded over any number of reloads, and readers never block or allocate.

use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use super::compile::{Compiled, PASS, TABLE_LEN};

/// The verdict table of the current policy; all `PASS` before the first.
static TABLE: [AtomicU32; TABLE_LEN] = [const { AtomicU32::new(PASS) }; TABLE_LEN];

const SLOTS: usize = 4;
const NO_SLOT: usize = usize::MAX;

struct Slot {
    readers: AtomicUsize,
    policy: AtomicPtr<Compiled>,
}

static SLOT: [Slot; SLOTS] = [const {
    Slot {
        readers: AtomicUsize::new(0),
        policy: AtomicPtr::new(ptr::null_mut()),
    }
}; SLOTS];
static CURRENT: AtomicUsize = AtomicUsize::new(NO_SLOT);
/// Counts publications (from 1), so that verdicts cached per call site and
/// per descriptor (the path cache) can tell which policy decided them.
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// The generation of the policy in force. It moves after the new policy is
/// current: a verdict decided after reading it, and stamped with it, comes
/// from that policy or a later one.
#[inline(always)]
pub fn generation() -> u32 {
    GENERATION.load(Ordering::Acquire)
}

/// The table entry for a call.
#[inline(always)]
pub fn entry(index: usize) -> u32 {
    TABLE
        .get(index)
        .map_or(PASS, |entry| entry.load(Ordering::Relaxed))
}

/// Runs `read` on the current compiled policy, if there is one. Lock-free
/// and allocation-free: safe in a signal handler.
pub fn with_current<R>(read: impl FnOnce(&Compiled) -> R) -> Option<R> {
    loop {
        let index = CURRENT.load(Ordering::SeqCst);
        let slot = SLOT.get(index)?;
        slot.readers.fetch_add(1, Ordering::SeqCst);
        if CURRENT.load(Ordering::SeqCst) == index {
            let policy = slot.policy.load(Ordering::SeqCst);
            // SAFETY: the slot is current and we are counted as its reader,
            // so `publish` will not free or replace its policy until we
            // leave; a non-null pointer came from `Box::into_raw`.
            let result = unsafe { policy.as_ref() }.map(read);
            slot.readers.fetch_sub(1, Ordering::SeqCst);
            return result;
        }
        slot.readers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Makes `compiled` the policy in force. The caller ensures there is one
/// writer at a time (`load`'s reload flag, or initialisation). Returns false
/// (and keeps the old policy) if every other slot is still being read.
pub fn publish(compiled: Box<Compiled>) -> bool {
    let current = CURRENT.load(Ordering::SeqCst);
    let free = (0..SLOTS)
        .find(|&index| index != current && SLOT[index].readers.load(Ordering::SeqCst) == 0);
    let Some(index) = free else {
        return false;
    };
    // SAFETY: we are the only writer, and only writers free policies.
    let previous = SLOT
        .get(current)
        .and_then(|slot| unsafe { slot.policy.load(Ordering::SeqCst).as_ref() });
    compiled.configure_limiters(previous);
    for (live, &entry) in TABLE.iter().zip(compiled.table.iter()) {
        live.store(entry, Ordering::Relaxed);
    }
    let old = SLOT[index]
        .policy
        .swap(Box::into_raw(compiled), Ordering::SeqCst);
    CURRENT.store(index, Ordering::SeqCst);
    GENERATION.fetch_add(1, Ordering::Release);
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw`, its slot was not current
        // and had no readers, and a reader that arrives now sees that the
        // slot it counted itself in is not the one it loaded, so backs off.
        drop(unsafe { Box::from_raw(old) });
    }
    true
}

/// Resets what a forked child must not inherit: reader counts held by
/// threads that do not exist in the child.
pub fn after_fork_in_child() {
    for slot in &SLOT {
        crate::sys::fork::store_if_changed!(slot.readers, 0);
    }
}
