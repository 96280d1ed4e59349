//! `limit` rules at work: the hot path's `admit`, and the host budgets'
//! life in this process — mapped from the policy in force on first use,
//! re-mapped when the file is replaced, reported in dumps. This sits above
//! the policy in force (`active`), the limiter words (`limiter`) and the
//! budget file (`budget`), which know nothing of each other.

use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::active::with_current;
use super::budget::{self, SharedBudget, FALLBACK};
use fadvise_shim_core::gcra::conforms;

use super::limiter::{Limiter, LIMITERS, MAX_LIMITERS};
use crate::sys::{warn, ErrnoGuard, NoCancel};

/// Re-mappings allowed per limiter (each keeps its old page mapped).
const MAX_REMAPS: u32 = 16;

/// Identity (device, inode) of each limiter's mapped file, to notice a
/// file that was deleted or replaced.
static MAPPED: [(AtomicU64, AtomicU64); MAX_LIMITERS] =
    [const { (AtomicU64::new(0), AtomicU64::new(0)) }; MAX_LIMITERS];
static REMAPS: [AtomicU32; MAX_LIMITERS] = [const { AtomicU32::new(0) }; MAX_LIMITERS];
static WARNED: [AtomicBool; MAX_LIMITERS] = [const { AtomicBool::new(false) }; MAX_LIMITERS];

/// Whether a call at `now_ns` is within limiter `index`'s budget; if so it
/// is counted against it.
#[inline(always)]
pub fn admit(index: usize, now_ns: u64) -> bool {
    let Some(limiter) = LIMITERS.get(index) else {
        return true;
    };
    if limiter.host.load(Ordering::Acquire) {
        if let Some(shared) = shared(index, limiter) {
            let (interval, tolerance) = limiter.parameters();
            let admitted = conforms(&shared.next_ns, interval, tolerance, now_ns);
            let tally = if admitted {
                &shared.admitted
            } else {
                &shared.refused
            };
            tally.fetch_add(1, Ordering::Relaxed);
            return admitted;
        }
    }
    limiter.admit_local(now_ns)
}

/// The shared budget of host limiter `index`, mapping it on first use;
/// `None` when this process keeps its own budget instead.
#[inline(always)]
fn shared(index: usize, limiter: &Limiter) -> Option<&'static SharedBudget> {
    let mut mapped = limiter.shared.load(Ordering::Acquire);
    if mapped.is_null() {
        mapped = attach(index, limiter);
    }
    // SAFETY: a pointer other than null and FALLBACK is a live shared
    // mapping of a budget file, never unmapped (see `budget`).
    (mapped != FALLBACK).then(|| unsafe { &*mapped })
}

#[cold]
#[inline(never)]
fn attach(index: usize, limiter: &Limiter) -> *mut SharedBudget {
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    let outcome = std::panic::catch_unwind(|| {
        with_current(|policy| {
            let limit = policy.limits.get(index)?;
            let host = limit.host.as_ref()?;
            Some(
                budget::map(&host.dir, &host.file, limit.rate, limit.burst).map_err(|problem| {
                    if !WARNED[index].swap(true, Ordering::Relaxed) {
                        warn(&[
                            b"host budget ",
                            host.name.as_bytes(),
                            b" in ",
                            host.dir.to_bytes(),
                            b": ",
                            problem,
                            b"; this process keeps a budget of its own",
                        ]);
                    }
                }),
            )
        })
        .flatten()
    });
    let mapped = match outcome {
        Ok(Some(Ok((budget, identity)))) => {
            MAPPED[index].0.store(identity.0, Ordering::Relaxed);
            MAPPED[index].1.store(identity.1, Ordering::Relaxed);
            budget
        }
        _ => FALLBACK,
    };
    match limiter.shared.compare_exchange(
        ptr::null_mut(),
        mapped,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => mapped,
        // Another thread attached first; ours stays mapped but unused.
        Err(theirs) => theirs,
    }
}

/// Once a second (from the policy check): a budget file that was deleted or
/// replaced since it was mapped is mapped anew on next use.
pub fn notice_replaced_files() {
    let _ = with_current(|policy| {
        for (index, limit) in policy.limits.iter().enumerate() {
            let (Some(host), Some(limiter)) = (&limit.host, LIMITERS.get(index)) else {
                continue;
            };
            let mapped = limiter.shared.load(Ordering::Acquire);
            if mapped.is_null()
                || mapped == FALLBACK
                || REMAPS[index].load(Ordering::Relaxed) >= MAX_REMAPS
            {
                continue;
            }
            let current = host_file_identity(host.dir.to_bytes(), host.file.to_bytes());
            let known = (
                MAPPED[index].0.load(Ordering::Relaxed),
                MAPPED[index].1.load(Ordering::Relaxed),
            );
            if current != Some(known) {
                REMAPS[index].fetch_add(1, Ordering::Relaxed);
                limiter.shared.store(ptr::null_mut(), Ordering::Release);
            }
        }
    });
}

/// The (device, inode) at `dir/file`, not following a final symlink.
fn host_file_identity(dir: &[u8], file: &[u8]) -> Option<budget::Identity> {
    let mut path = [0u8; 4096];
    let length = dir.len() + 1 + file.len();
    if length >= path.len() {
        return None;
    }
    path[..dir.len()].copy_from_slice(dir);
    path[dir.len()] = b'/';
    path[dir.len() + 1..length].copy_from_slice(file);
    // Zero-filled past `length`, so there is a NUL.
    let path = std::ffi::CStr::from_bytes_until_nul(&path).ok()?;
    crate::sys::io::link_status(path).map(|status| (status.st_dev, status.st_ino))
}

/// What a dump reports of each host budget this process uses.
pub fn for_each_host_budget_in_use(mut report: impl FnMut(&[u8], f64, f64, u64, u64)) {
    let _ = with_current(|policy| {
        for (index, limit) in policy.limits.iter().enumerate() {
            let (Some(host), Some(limiter)) = (&limit.host, LIMITERS.get(index)) else {
                continue;
            };
            let mapped = limiter.shared.load(Ordering::Acquire);
            if !mapped.is_null() && mapped != FALLBACK {
                // SAFETY: see `shared`.
                let shared = unsafe { &*mapped };
                report(
                    host.name.as_bytes(),
                    limit.rate,
                    limit.burst,
                    shared.admitted.load(Ordering::Relaxed),
                    shared.refused.load(Ordering::Relaxed),
                );
            }
        }
    });
}
