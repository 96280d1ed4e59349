//! The policy in force, and its replacement when the file changes.
//!
//! The hot path reads one atomic word from `TABLE`. Everything else about
//! the policy (path rules, dump settings) lives in a `Compiled` held in one
//! of a few fixed slots; readers announce themselves with a per-slot count
//! and re-check that the slot is still current, so a reload never frees a
//! policy that a thread (or the dump signal handler) is reading, memory stays
//! bounded over any number of reloads, and readers never block or allocate.
//!
//! Reloading needs no thread and no per-call `stat`: calls carry the time
//! they already read, and at most once a second one of them looks at the
//! file's metadata and, if it changed, loads it.

use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use fadvise_shim_core::policy::{parse_policy_bytes, Policy};

use crate::compile::{Compiled, Settings, PASS, TABLE_LEN};
use crate::sys::{warn, ErrnoGuard, NoCancel};

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

/// How often the policy file's metadata is looked at.
const CHECK_INTERVAL_NS: u64 = 1_000_000_000;
static NEXT_CHECK_NS: AtomicU64 = AtomicU64::new(u64::MAX);
/// The same deadline in wall-clock seconds, for calls that read no clock.
static NEXT_CHECK_SECONDS: AtomicU64 = AtomicU64::new(u64::MAX);
static RELOADING: AtomicBool = AtomicBool::new(false);
/// Identity of the file version last looked at (0: none yet).
static SEEN_STAMP: AtomicU64 = AtomicU64::new(0);

static SETTINGS: OnceLock<Settings> = OnceLock::new();

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

/// Makes `compiled` the policy in force. Called with `RELOADING` held (or
/// during initialisation), so there is one writer at a time. Returns false
/// (and keeps the old policy) if every other slot is still being read.
fn publish(compiled: Box<Compiled>) -> bool {
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
    if !old.is_null() {
        // SAFETY: `old` came from `Box::into_raw`, its slot was not current
        // and had no readers, and a reader that arrives now sees that the
        // slot it counted itself in is not the one it loaded, so backs off.
        drop(unsafe { Box::from_raw(old) });
    }
    true
}

/// Loads the policy at start-up. Any problem costs one stderr line, then
/// the built-in default (pass everything) applies.
pub fn load_initial(settings: Settings) {
    let settings = SETTINGS.get_or_init(|| settings);
    let (stamp, policy) = match &settings.policy_path {
        None => (0, Policy::default()),
        Some(path) => {
            let stamp = file_stamp(path);
            let policy = read_policy(path, stamp).unwrap_or_else(|problem| {
                warn(&[problem.as_bytes(), b"; passing every call"]);
                Policy::default()
            });
            (stamp, policy)
        }
    };
    SEEN_STAMP.store(stamp, Ordering::Relaxed);
    let source = settings.policy_path.as_deref().filter(|_| stamp != 0);
    publish(Box::new(Compiled::new(&policy, source, settings)));
    schedule_next_check(crate::clock::monotonic_ns());
}

/// Called by calls with the time they read: at most once per interval, one
/// of them looks at the policy file and reloads it if it changed.
#[inline(always)]
pub fn reload_if_due(now_ns: u64) {
    if now_ns >= NEXT_CHECK_NS.load(Ordering::Relaxed) {
        reload(now_ns);
    }
}

/// For calls answered without the kernel, which read no clock: `time()` goes
/// through the vDSO to one memory load (≈ 2 ns), and its one-second
/// resolution is all a once-a-second check needs.
#[inline(always)]
pub fn reload_if_due_by_wall_clock() {
    let now = wall_clock_seconds();
    let next = NEXT_CHECK_SECONDS.load(Ordering::Relaxed);
    // The wall clock can be stepped back (NTP, `date -s`): a deadline more
    // than a check interval ahead is one that time went back from.
    if now >= next || now.saturating_add(2) < next {
        reload(crate::clock::monotonic_ns());
    }
}

#[inline(always)]
fn wall_clock_seconds() -> u64 {
    // SAFETY: `time` with a null pointer only returns the time.
    unsafe { libc::time(ptr::null_mut()) }.max(0) as u64
}

/// Sets when the policy file is next looked at: a second from now.
fn schedule_next_check(now_ns: u64) {
    NEXT_CHECK_NS.store(now_ns.saturating_add(CHECK_INTERVAL_NS), Ordering::Relaxed);
    NEXT_CHECK_SECONDS.store(wall_clock_seconds() + 1, Ordering::Relaxed);
}

#[cold]
#[inline(never)]
fn reload(now_ns: u64) {
    if RELOADING.swap(true, Ordering::Acquire) {
        return;
    }
    schedule_next_check(now_ns);
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    if let Some(settings) = SETTINGS.get() {
        // A panic here must not reach the host: keep the old policy.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(path) = &settings.policy_path {
                reload_from(path, settings);
            }
            crate::budget::notice_replaced_files();
        }));
    }
    RELOADING.store(false, Ordering::Release);
}

fn reload_from(path: &Path, settings: &Settings) {
    let stamp = file_stamp(path);
    if stamp == SEEN_STAMP.load(Ordering::Relaxed) {
        return;
    }
    SEEN_STAMP.store(stamp, Ordering::Relaxed);
    if stamp == 0 {
        // The file went away; a config tool may be replacing it. Keep the
        // policy in force until a new version appears.
        return;
    }
    match read_policy(path, stamp) {
        Ok(policy) => {
            if !publish(Box::new(Compiled::new(&policy, Some(path), settings))) {
                // Every free slot is being read: try again at the next check.
                SEEN_STAMP.store(0, Ordering::Relaxed);
            }
        }
        Err(problem) => warn(&[problem.as_bytes(), b"; keeping the previous policy"]),
    }
}

/// Reads and validates the policy file, or says (in one line) why not.
fn read_policy(path: &Path, stamp: u64) -> Result<Policy, String> {
    let shown = path.display();
    if stamp == 0 {
        return Err(format!("{shown}: cannot read the policy: no such file"));
    }
    let bytes = crate::sys::read_regular_file(path)
        .map_err(|error| format!("{shown}: cannot read the policy: {error}"))?;
    parse_policy_bytes(&bytes).map_err(|errors| match errors.first() {
        Some(first) => format!("{shown}:{}:{}: {}", first.line, first.column, first.message),
        None => format!("{shown}: invalid policy"),
    })
}

/// A number that changes whenever the file at `path` is replaced or
/// rewritten (device, inode, size, modification and change times), or 0 if
/// there is no file there.
fn file_stamp(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
        .hash(&mut hasher);
    (meta.ctime(), meta.ctime_nsec(), meta.is_dir()).hash(&mut hasher);
    hasher.finish().max(1)
}

/// Resets what a forked child must not inherit: reader counts and the
/// reload flag held by threads that do not exist in the child.
pub fn after_fork_in_child() {
    for slot in &SLOT {
        slot.readers.store(0, Ordering::Relaxed);
    }
    RELOADING.store(false, Ordering::Relaxed);
}

/// The settings of this process image, once initialised.
pub fn settings() -> Option<&'static Settings> {
    SETTINGS.get()
}
