//! Scratch memory for one thread's short-lived work: the policy parse.
//!
//! Parsing a policy allocates far more than the compiled policy keeps (the
//! example policy: ~55 KB in ~200 blocks, of every size class, for a few
//! KB kept), and the heap's spans never give memory back, so the pages the
//! parse touched stayed resident in every process: ~36 KiB of its
//! `RssAnon`. While a window is open, the allocations of the thread that
//! opened it are bumped out of one reserved mapping instead; when the window
//! closes, after the parse's result has been consumed, the pages are handed
//! back with `MADV_DONTNEED`. The mapping is kept (and reused by the next
//! window), so a stale pointer into it reads zeros rather than faulting.
//!
//! Only the thread that opened the window allocates from it, with every
//! signal blocked, so no handler on that thread can allocate something
//! long-lived here; other threads compare one atomic with their own
//! identity and go on to the heap. Freeing a scratch block does nothing;
//! a window that ends by a panic leaves its memory as it is (the panic's
//! payload lives there until caught), and later windows begin after it.
//! (Blocking signals also holds back a `SIGTERM` while the policy file is
//! read: a read of a local file, done once per process and per change.)

use std::alloc::Layout;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Reserved address space (not memory: `MAP_NORESERVE`, and only touched
/// pages are resident). A parse that needs more takes the rest from the heap.
const SCRATCH_BYTES: usize = 8 << 20;

static BASE: AtomicUsize = AtomicUsize::new(0);
/// Where the next block begins; every byte of the mapping past it is zero
/// (never handed out since it was mapped or last handed back).
static USED: AtomicUsize = AtomicUsize::new(0);
/// `pthread_self` of the thread with a window open, 0 for none.
static OWNER: AtomicUsize = AtomicUsize::new(0);

/// Runs `work` with this thread's allocations in scratch memory, then
/// `consume` (allocating from the heap again) with its result, then hands
/// the scratch pages back. Whatever `consume` keeps must own nothing of
/// `work`'s result (copy it), since that memory is released when it
/// returns. If a window is open already (another thread's) or the mapping
/// cannot be made, both simply run on the heap.
pub fn scratch<T, R>(work: impl FnOnce() -> T, consume: impl FnOnce(T) -> R) -> R {
    let Some(window) = Window::open() else {
        return consume(work());
    };
    let value = work();
    window.stop_serving();
    let result = consume(value);
    window.release();
    drop(window);
    result
}

/// A block for `layout` if this thread has a window open and it has room.
#[inline(always)]
pub fn alloc(layout: Layout) -> Option<*mut u8> {
    let owner = OWNER.load(Ordering::Relaxed);
    if owner == 0 || owner != this_thread() {
        return None;
    }
    bump(layout)
}

/// Whether `block` lies in the scratch mapping (then freeing it is a no-op).
#[inline(always)]
pub fn contains(block: *mut u8) -> bool {
    let base = BASE.load(Ordering::Relaxed);
    base != 0 && (block as usize).wrapping_sub(base) < SCRATCH_BYTES
}

/// In a child of `fork`: a window open in another thread of the parent is
/// never closed, and a new thread could reuse that thread's identity.
pub fn after_fork_in_child() {
    crate::sys::fork::store_if_changed!(OWNER, 0);
}

fn this_thread() -> usize {
    // SAFETY: pthread_self only reads this thread's descriptor pointer.
    unsafe { libc::pthread_self() as usize }
}

fn bump(layout: Layout) -> Option<*mut u8> {
    if layout.align() > super::PAGE {
        return None;
    }
    // Only the owner thread, with signals blocked, changes `USED`.
    let used = USED.load(Ordering::Relaxed);
    let start = used.checked_add(layout.align() - 1)? & !(layout.align() - 1);
    let end = start.checked_add(layout.size().max(1))?;
    if end > SCRATCH_BYTES {
        return None;
    }
    USED.store(end, Ordering::Relaxed);
    Some((BASE.load(Ordering::Relaxed) + start) as *mut u8)
}

struct Window {
    /// Where this window's blocks begin.
    start: usize,
    /// The signal mask to put back.
    signals: libc::sigset_t,
}

impl Window {
    fn open() -> Option<Window> {
        if OWNER.load(Ordering::Relaxed) != 0 || !mapped() {
            return None;
        }
        let signals = crate::sys::sigmask::block_all()?;
        if OWNER
            .compare_exchange(0, this_thread(), Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            restore(&signals);
            return None;
        }
        Some(Window {
            start: USED.load(Ordering::Relaxed),
            signals,
        })
    }

    fn stop_serving(&self) {
        OWNER.store(0, Ordering::Release);
    }

    /// The window's blocks are no longer used: their pages go back.
    fn release(&self) {
        let used = USED.load(Ordering::Relaxed);
        let base = BASE.load(Ordering::Relaxed);
        let first_page = self.start.next_multiple_of(super::PAGE);
        if used > first_page {
            // SAFETY: pages of our own mapping that nothing refers to any
            // more; the mapping stays, and they read as zeros from now on.
            unsafe {
                crate::sys::mapping::advise(
                    (base + first_page) as *mut libc::c_void,
                    used - first_page,
                    libc::MADV_DONTNEED,
                )
            };
        }
        // Fresh pages from here on: the page holding `start` is not handed
        // back (an earlier window may have left blocks in it), so the next
        // window begins past what was written.
        USED.store(first_page.max(self.start), Ordering::Relaxed);
    }
}

impl Drop for Window {
    /// Also on a panic in `work` or `consume`: the blocks stay as they are.
    fn drop(&mut self) {
        let _ = OWNER.compare_exchange(this_thread(), 0, Ordering::Release, Ordering::Relaxed);
        restore(&self.signals);
    }
}

fn restore(signals: &libc::sigset_t) {
    crate::sys::sigmask::restore(signals);
}

/// Maps the scratch region on first use; whether it exists.
fn mapped() -> bool {
    if BASE.load(Ordering::Acquire) != 0 {
        return true;
    }
    let Some(mapping) = crate::sys::Mapping::anonymous(SCRATCH_BYTES, libc::MAP_NORESERVE) else {
        return false;
    };
    if BASE
        .compare_exchange(
            0,
            mapping.as_ptr() as usize,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
    {
        mapping.leak();
    }
    // Else another thread published its own first: ours is unmapped.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_serves_its_own_thread_and_hands_the_pages_back() {
        let older = vec![1u8; 100];
        let (older, fresh_address, others) = scratch(
            || {
                let mut older = older;
                older.resize(5000, 2);
                let fresh = vec![7u8; 3000];
                let grown = [fresh.clone(), vec![8u8; 20_000]].concat();
                let other_thread = std::thread::spawn(|| {
                    let block = Box::new([3u8; 64]);
                    contains(block.as_ptr() as *mut u8)
                });
                let others = other_thread.join().unwrap();
                (older, fresh, grown, others)
            },
            |(older, fresh, grown, others)| {
                assert!(contains(fresh.as_ptr() as *mut u8));
                assert!(contains(grown.as_ptr() as *mut u8));
                assert_eq!(grown[2999..3001], [7, 8]);
                let after = Box::new([5u8; 32]);
                assert!(!contains(after.as_ptr() as *mut u8), "the window is closed");
                (older, fresh.as_ptr() as usize, others)
            },
        );
        assert!(!others, "another thread's block came from scratch");
        assert!(
            !contains(older.as_ptr() as *mut u8),
            "an older block left the heap"
        );
        assert!(older[..100].iter().all(|&byte| byte == 1) && older[4999] == 2);
        // SAFETY: the mapping stays; its released pages read as zeros.
        let released = unsafe { std::ptr::read_volatile(fresh_address as *const u8) };
        assert_eq!(released, 0, "the pages were handed back");
    }
}
