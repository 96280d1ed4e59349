//! Putting the policy file in force: at the first call, and again whenever
//! the file changes.
//!
//! Reloading needs no thread and no per-call `stat`: at most once a second
//! (`init`'s tick) a call looks at the file's metadata and, if it changed,
//! reads, parses and publishes it. All of
//! it is safe wherever a call arrives, a signal handler included: the file is
//! read with plain system calls, the parse allocates from the library's own
//! heap (a scratch window of it, handed back once the policy is compiled),
//! and a call that finds a reload under way (another thread's, or the
//! one its handler interrupted) simply goes on with the policy in force.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use fadvise_shim_core::policy::{parse_policy_bytes, quick_dump_signal, DumpSignal, Policy};

use super::active::publish;
use super::compile::Compiled;
use super::limits;
use super::settings::{self, Settings};
use crate::heap::scratch::scratch;
use crate::sys::clock::monotonic_ns;
use crate::sys::io::{path_status, read_small_file, read_whole_file};
use crate::sys::{warn, ErrnoGuard, NoCancel};

/// A policy file larger than this is refused (one stderr line).
const MAX_POLICY_BYTES: usize = 1 << 20;
/// Policies up to this size are scanned for their dump signal at start-up
/// without the heap; a larger one is parsed in full there instead.
const POLICY_SCAN_BYTES: usize = 16 * 1024;
/// Held by the one thread reloading the policy (the first load is guarded
/// by `LOADER`; reloads begin only after it).
static LOADING: AtomicBool = AtomicBool::new(false);
/// Identity of the file version last looked at (0: none yet).
static SEEN_STAMP: AtomicU64 = AtomicU64::new(0);
static LOADED: AtomicBool = AtomicBool::new(false);

/// Whether the first policy has been put in force.
pub fn loaded() -> bool {
    LOADED.load(Ordering::Acquire)
}

/// The thread loading the first policy (`pthread_self`), 0 for none.
static LOADER: AtomicUsize = AtomicUsize::new(0);
/// How long a call waits for another thread's first load.
const WAIT_FOR_LOAD_NS: u64 = 2_000_000_000;

/// Reads the settings and the policy and puts them in force. If another
/// thread is loading it, waits for that (a few hundred microseconds), so
/// that no call of a threaded program escapes the policy; if the load under
/// way is this thread's own — a signal handler that interrupted it — returns
/// false at once, and the call goes on with the built-in verdicts. Any
/// problem with the file costs one stderr line, and the built-in default
/// applies.
pub fn load_initial() -> bool {
    // SAFETY: pthread_self only reads this thread's descriptor.
    let me = unsafe { libc::pthread_self() } as usize;
    match LOADER.compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {}
        Err(holder) if holder == me => return false,
        Err(_) => {
            let deadline = monotonic_ns().saturating_add(WAIT_FOR_LOAD_NS);
            while !loaded() && monotonic_ns() < deadline {
                crate::sys::process::yield_now();
            }
            return loaded();
        }
    }
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    if !loaded() {
        // A panic must not reach the host: the built-in default stays.
        let _ = std::panic::catch_unwind(|| {
            let settings = settings::read();
            let (stamp, compiled) = match &settings.policy_path {
                None => (0, Compiled::new(&Policy::default(), None, settings)),
                Some(path) => {
                    let stamp = file_stamp(path);
                    let source = Some(path.as_c_str()).filter(|_| stamp != 0);
                    let compiled = scratch(
                        || read_policy(path, stamp),
                        |read| {
                            let policy = read.unwrap_or_else(|problem| {
                                warn(&[problem.as_bytes(), b"; passing every call"]);
                                Policy::default()
                            });
                            Compiled::new(&policy, source, settings)
                        },
                    );
                    (stamp, compiled)
                }
            };
            SEEN_STAMP.store(stamp, Ordering::Relaxed);
            publish(Box::new(compiled));
        });
        LOADED.store(true, Ordering::Release);
    }
    LOADER.store(0, Ordering::Release);
    true
}

/// The dump signal of the policy at `path`, when a quick scan of it (read
/// onto the stack, no heap) is sure of it; `None` sends start-up to the full
/// parse. A function of its own, never inlined, so that start-up without a
/// policy file never touches the stack pages of the buffer (each a page
/// fault in a fresh process).
#[inline(never)]
pub fn scanned_signal(path: &CStr) -> Option<DumpSignal> {
    let mut buffer = [0u8; POLICY_SCAN_BYTES];
    read_small_file(path, &mut buffer).and_then(quick_dump_signal)
}

/// Looks at the policy file and puts it in force again if it changed
/// (called once a second by `init`'s tick); host budget files that were
/// replaced are mapped anew. Goes on at once if a load is under way.
pub fn reload() {
    if LOADING.swap(true, Ordering::Acquire) {
        return;
    }
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    if let Some(settings) = settings::get() {
        // A panic here must not reach the host: keep the old policy.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if let Some(path) = &settings.policy_path {
                reload_from(path, settings);
            }
            limits::notice_replaced_files();
        }));
    }
    LOADING.store(false, Ordering::Release);
}

fn reload_from(path: &CStr, settings: &Settings) {
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
    let compiled = scratch(
        || read_policy(path, stamp),
        |read| match read {
            Ok(policy) => Some(Box::new(Compiled::new(&policy, Some(path), settings))),
            Err(problem) => {
                warn(&[problem.as_bytes(), b"; keeping the previous policy"]);
                None
            }
        },
    );
    // Every free slot is being read: try again at the next check.
    if compiled.is_some_and(|compiled| !publish(compiled)) {
        SEEN_STAMP.store(0, Ordering::Relaxed);
    }
}

/// Reads and validates the policy file, or says (in one line) why not.
/// Run in a scratch window (`heap::scratch`): all it allocates is handed
/// back once the policy is compiled.
fn read_policy(path: &CStr, stamp: u64) -> Result<Policy, String> {
    let shown = String::from_utf8_lossy(path.to_bytes());
    if stamp == 0 {
        return Err(format!("{shown}: cannot read the policy: no such file"));
    }
    let bytes = read_whole_file(path, MAX_POLICY_BYTES)
        .map_err(|problem| format!("{shown}: cannot read the policy: {problem}"))?;
    parse_policy_bytes(&bytes).map_err(|errors| match errors.first() {
        Some(first) => format!("{shown}:{}:{}: {}", first.line, first.column, first.message),
        None => format!("{shown}: invalid policy"),
    })
}

/// A number that changes whenever the file at `path` is replaced or
/// rewritten (device, inode, size, modification and change times), or 0 if
/// there is no file there.
fn file_stamp(path: &CStr) -> u64 {
    use std::hash::{Hash, Hasher};
    let Some(status) = path_status(path) else {
        return 0;
    };
    // SipHash with fixed keys: no randomness to fetch, nothing allocated.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime,
        status.st_mtime_nsec,
        status.st_ctime,
        status.st_ctime_nsec,
        status.st_mode & libc::S_IFMT,
    )
        .hash(&mut hasher);
    hasher.finish().max(1)
}

/// A load under way in another thread at `fork` never finishes in the
/// child: let the child's calls load again.
pub fn after_fork_in_child() {
    crate::sys::fork::store_if_changed!(LOADER, 0);
    crate::sys::fork::store_if_changed!(LOADING, false);
    crate::heap::scratch::after_fork_in_child();
}
