//! The library's own heap: its `#[global_allocator]`, so that nothing the
//! shim does ever enters the program's allocator. A hook may run inside a
//! signal handler that interrupted the program's `malloc` (`fsync` and
//! `fdatasync` are async-signal-safe), and the first call, a policy reload or
//! a host-budget attach allocates (the policy parser, paths); from the
//! program's heap that corrupted it in one run in five.
//!
//! So this heap is lock-free and async-signal-safe: re-entered from a
//! handler on the same thread, used from a `vfork` child, or caught by
//! `fork` midway in another thread, it stays consistent, because every
//! operation is one compare-and-swap. No allocator crate fits: the `no_std`
//! ones (talc, linked_list_allocator, buddy_system_allocator, dlmalloc) take
//! a lock, which a handler on the same thread would deadlock on, and
//! blocking signals around it costs two system calls per allocation.
//!
//! Small requests (≤ 4 KiB) are rounded up to a power of two and served from
//! 64 KiB spans, each holding blocks of one size. A freed block goes onto its
//! size's free list, a Treiber stack whose head packs a 40-bit version tag
//! with the block's 24-bit id (span, index), so a stale head never wins a
//! compare-and-swap (the ABA problem). Spans are mapped on demand, eight at
//! a time, 64 KiB aligned so a block finds its span from its address, and
//! never unmapped, so reading a popped block's link can never fault. Larger
//! requests are mapped and unmapped directly. If `mmap` fails, two spans in `.bss` (untouched,
//! so free, until then) keep the library working rather than aborting.
//!
//! Because spans keep what they once held, the policy parse, which
//! allocates much and keeps little, runs in a scratch window
//! (`heap/scratch.rs`): its blocks come from a separate mapping whose pages
//! are handed back once the compiled policy is made.

pub mod scratch;

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::sys::Mapping;

#[global_allocator]
static HEAP: Heap = Heap;

const SPAN_SHIFT: u32 = 16;
const SPAN_SIZE: usize = 1 << SPAN_SHIFT;
/// Spans the heap can hold: 256 MiB of small blocks, far above any need.
const MAX_SPANS: usize = 4096;
const MIN_CLASS_SHIFT: u32 = 4;
/// Blocks of up to 4 KiB come from spans; larger requests are mapped.
const MAX_CLASS_SHIFT: u32 = 12;
const CLASSES: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;
/// Bits of a block id that hold its index within its span (16-byte blocks:
/// 4,096 per span).
const INDEX_BITS: u32 = SPAN_SHIFT - MIN_CLASS_SHIFT;
const ID_BITS: u32 = 24;
const ID_MASK: u64 = (1 << ID_BITS) - 1;
const PAGE: usize = 4096;

/// Base address of each span, by index; set once, before any block id that
/// names the span is published, and never cleared.
static SPANS: [AtomicUsize; MAX_SPANS] = [const { AtomicUsize::new(0) }; MAX_SPANS];
static SPANS_USED: AtomicUsize = AtomicUsize::new(0);

/// Block 0 of every span holds its header: its index, and its link while
/// it waits on the spare list.
#[repr(C)]
struct SpanHeader {
    index: AtomicU32,
    next_spare: AtomicU32,
}

struct Class {
    /// Free-list head: tag << 24 | block id (0: empty; block 0 of a span is
    /// never a block, so id 0 is never one).
    free: AtomicU64,
    /// Fresh blocks: span index << 16 | next index to carve; `NO_SPAN` first.
    carve: AtomicU64,
}

const NO_SPAN: u64 = u64::MAX;

static CLASS: [Class; CLASSES] = [const {
    Class {
        free: AtomicU64::new(0),
        carve: AtomicU64::new(NO_SPAN),
    }
}; CLASSES];

/// Spans handed back by a thread that lost the race to install one: tag << 24
/// | span index + 1.
static SPARE: AtomicU64 = AtomicU64::new(0);

struct Heap;

// SAFETY: `alloc` returns blocks of at least `layout.size()` bytes aligned
// to `layout.align()` that no one else holds (each is taken from a free list
// or carved by exactly one successful compare-and-swap, or freshly mapped),
// and `dealloc` takes back only what `alloc` gave for the same layout.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        scratch::alloc(layout).unwrap_or_else(|| heap_alloc(layout))
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Scratch memory is handed out once between releases, which zero it.
        if let Some(block) = scratch::alloc(layout) {
            return block;
        }
        match class_of(layout) {
            Some(class) => {
                let block = small_alloc(class);
                if !block.is_null() {
                    // SAFETY: the block has at least `layout.size()` bytes.
                    unsafe { ptr::write_bytes(block, 0, layout.size()) };
                }
                block
            }
            // Fresh anonymous pages are zero: writing them would only make
            // them resident.
            None => map_large(layout),
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if scratch::contains(block) {
            return;
        }
        match class_of(layout) {
            // SAFETY: `block` came from `small_alloc(class)` for this layout.
            Some(class) => unsafe { push(class, block) },
            None => {
                // SAFETY: `block` is a mapping of this length from
                // `map_large`, which the caller no longer uses.
                unsafe { crate::sys::mapping::unmap(block.cast(), large_length(layout)) };
            }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees a valid layout for the new size.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if scratch::contains(block) {
            // SAFETY: as for `alloc`.
            let moved = unsafe { self.alloc(new_layout) };
            if !moved.is_null() {
                // SAFETY: both blocks hold at least the smaller size and are
                // distinct; a scratch block needs no freeing.
                unsafe { ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size)) };
            }
            return moved;
        }
        let same_block = match (class_of(layout), class_of(new_layout)) {
            (Some(old), Some(new)) => old == new,
            (None, None) => large_length(layout) == large_length(new_layout),
            _ => false,
        };
        if same_block {
            return block;
        }
        // A heap block stays on the heap, in a scratch window too: it may
        // be older than the window.
        let moved = heap_alloc(new_layout);
        if !moved.is_null() {
            // SAFETY: both blocks hold at least the smaller size and are
            // distinct; the old one is then returned.
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}

fn heap_alloc(layout: Layout) -> *mut u8 {
    match class_of(layout) {
        Some(class) => small_alloc(class),
        None => map_large(layout),
    }
}

/// The size class of a layout (block size `1 << (class + MIN_CLASS_SHIFT)`),
/// or `None` for a request mapped on its own. A block of a power-of-two size
/// within an aligned span is aligned to its size.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS_SHIFT);
    let shift = usize::BITS - (size - 1).leading_zeros();
    (shift <= MAX_CLASS_SHIFT).then(|| (shift - MIN_CLASS_SHIFT) as usize)
}

fn block_size(class: usize) -> usize {
    1 << (class as u32 + MIN_CLASS_SHIFT)
}

fn small_alloc(class: usize) -> *mut u8 {
    pop(class)
        .or_else(|| carve(class))
        .unwrap_or(ptr::null_mut())
}

fn address(class: usize, id: u64) -> *mut u8 {
    let span = (id >> INDEX_BITS) as usize;
    let index = (id & ((1 << INDEX_BITS) - 1)) as usize;
    let base = SPANS
        .get(span)
        .map_or(0, |base| base.load(Ordering::Acquire));
    (base + index * block_size(class)) as *mut u8
}

/// A block's link field: its first 8 bytes while it is on a free list.
///
/// # Safety
/// `block` must lie inside a mapped span (spans are never unmapped).
unsafe fn link(block: *mut u8) -> &'static AtomicU64 {
    // SAFETY: blocks are at least 16 bytes and 16-byte aligned, and spans
    // stay mapped. A thread that popped the block may be writing its own
    // data there while a slower thread reads the link: that read is then
    // stale, and the slower thread's compare-and-swap fails on the tag.
    unsafe { AtomicU64::from_ptr(block.cast()) }
}

fn pop(class: usize) -> Option<*mut u8> {
    let free = &CLASS[class].free;
    let mut head = free.load(Ordering::Acquire);
    loop {
        let id = head & ID_MASK;
        if id == 0 {
            return None;
        }
        let block = address(class, id);
        // SAFETY: `id` named a block of a mapped span when `head` was read.
        let next = unsafe { link(block) }.load(Ordering::Relaxed) & ID_MASK;
        let replacement = next_tag(head) | next;
        match free.compare_exchange_weak(head, replacement, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(block),
            Err(seen) => head = seen,
        }
    }
}

/// # Safety
/// `block` must be a block of `class` that no one else holds.
unsafe fn push(class: usize, block: *mut u8) {
    let Some(id) = id_of(class, block) else {
        return;
    };
    let free = &CLASS[class].free;
    let mut head = free.load(Ordering::Acquire);
    loop {
        // SAFETY: the block is ours until the compare-and-swap publishes it.
        unsafe { link(block) }.store(head & ID_MASK, Ordering::Relaxed);
        match free.compare_exchange_weak(
            head,
            next_tag(head) | id,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return,
            Err(seen) => head = seen,
        }
    }
}

fn next_tag(head: u64) -> u64 {
    ((head >> ID_BITS).wrapping_add(1)) << ID_BITS
}

fn id_of(class: usize, block: *mut u8) -> Option<u64> {
    let base = block as usize & !(SPAN_SIZE - 1);
    // SAFETY: every block lies in an aligned span whose first bytes are its
    // header, written before any of its blocks was handed out.
    let header = unsafe { &*(base as *const SpanHeader) };
    let span = u64::from(header.index.load(Ordering::Relaxed));
    let index = ((block as usize - base) / block_size(class)) as u64;
    (index != 0).then_some(span << INDEX_BITS | index)
}

/// A block never used before, from the class's current span or a new one.
fn carve(class: usize) -> Option<*mut u8> {
    let carve = &CLASS[class].carve;
    let per_span = (SPAN_SIZE / block_size(class)) as u64;
    let mut current = carve.load(Ordering::Acquire);
    loop {
        if current != NO_SPAN && current & 0xffff < per_span {
            match carve.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let id = (current >> 16) << INDEX_BITS | (current & 0xffff);
                    return Some(address(class, id));
                }
                Err(seen) => current = seen,
            }
            continue;
        }
        let span = new_span()?;
        // Block 0 is the header: this thread takes block 1.
        let installed = u64::from(span) << 16 | 2;
        match carve.compare_exchange(current, installed, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(address(class, u64::from(span) << INDEX_BITS | 1)),
            Err(seen) => {
                give_back(span);
                current = seen;
            }
        }
    }
}

fn span_header(span: u32) -> &'static SpanHeader {
    let base = SPANS[span as usize].load(Ordering::Acquire);
    // SAFETY: a registered span's base is a mapped, aligned span whose
    // first bytes are its header.
    unsafe { &*(base as *const SpanHeader) }
}

/// A span for a class: a spare one, or a new one.
fn new_span() -> Option<u32> {
    let mut head = SPARE.load(Ordering::Acquire);
    while head & ID_MASK != 0 {
        let span = (head & ID_MASK) as u32 - 1;
        let next = u64::from(span_header(span).next_spare.load(Ordering::Relaxed));
        match SPARE.compare_exchange_weak(
            head,
            next_tag(head) | next,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => return Some(span),
            Err(seen) => head = seen,
        }
    }
    let base = map_span()?;
    let span = SPANS_USED.fetch_add(1, Ordering::AcqRel);
    if span >= MAX_SPANS {
        SPANS_USED.fetch_sub(1, Ordering::AcqRel);
        return None;
    }
    // SAFETY: a fresh, aligned, writable span; no one else knows it yet.
    let header = unsafe { &*(base as *const SpanHeader) };
    header.index.store(span as u32, Ordering::Relaxed);
    SPANS[span].store(base, Ordering::Release);
    Some(span as u32)
}

fn give_back(span: u32) {
    let header = span_header(span);
    let mut head = SPARE.load(Ordering::Acquire);
    loop {
        header
            .next_spare
            .store((head & ID_MASK) as u32, Ordering::Relaxed);
        let replacement = next_tag(head) | (u64::from(span) + 1);
        match SPARE.compare_exchange_weak(head, replacement, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return,
            Err(seen) => head = seen,
        }
    }
}

/// Spans mapped at once: one `mmap` serves the first call's few size
/// classes (four or five spans), which cost twelve system calls when each
/// span was mapped and trimmed on its own (BENCHMARKS.md, "A short process
/// (issue 24)").
const CHUNK_SPANS: usize = 8;

/// The spans of the last chunk not handed out yet: the next one's address
/// shifted by `SPAN_SHIFT` in the high 32 bits (user addresses have 47),
/// how many are left in the low ones. One word, so that taking a span is
/// one compare-and-swap, whoever interrupts whom.
static CHUNK: AtomicU64 = AtomicU64::new(0);

/// A new span: the next of the current chunk, or the first of a new one
/// (the first chunk of all lies in `.bss`); or one of the `.bss` reserve
/// spans if the kernel refuses.
fn map_span() -> Option<usize> {
    let mut current = CHUNK.load(Ordering::Acquire);
    while current & 0xffff_ffff != 0 {
        let next = current + (1 << 32) - 1;
        match CHUNK.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Some(((current >> 32) as usize) << SPAN_SHIFT),
            Err(seen) => current = seen,
        }
    }
    if !FIRST_CHUNK_TAKEN.swap(true, Ordering::AcqRel) {
        return Some(publish_chunk(
            FIRST_CHUNK.0.get() as usize,
            (CHUNK_SPANS + 1) * SPAN_SIZE,
            false,
        ));
    }
    map_chunk().or_else(reserve_span)
}

/// The first chunk, in `.bss`: a process's first call (and a forked
/// child's, which starts with its parent's heap) finds its spans here
/// without a system call; untouched, its pages cost nothing.
static FIRST_CHUNK: Reserve<{ (CHUNK_SPANS + 1) * SPAN_SIZE }> =
    Reserve(UnsafeCell::new([0; (CHUNK_SPANS + 1) * SPAN_SIZE]));
static FIRST_CHUNK_TAKEN: AtomicBool = AtomicBool::new(false);

/// Maps `CHUNK_SPANS` aligned spans (plus the slack that aligning needs,
/// left mapped and unused: untouched, it costs no memory, and trimming it
/// would cost two more system calls), keeps the first and publishes the
/// rest as the current chunk.
fn map_chunk() -> Option<usize> {
    let length = (CHUNK_SPANS + 1) * SPAN_SIZE;
    // Published at once: `publish_chunk` unmaps what it does not use.
    let mapped = Mapping::anonymous(length, 0)?.leak();
    Some(publish_chunk(mapped as usize, length, true))
}

/// Takes the first aligned span of `length` bytes at `start` and publishes
/// the next `CHUNK_SPANS - 1` as the current chunk; returns the span. If
/// another chunk was published meanwhile (another thread, or a handler that
/// interrupted this one), only the span is used and the rest is unmapped
/// if `unmap` says it may be.
fn publish_chunk(start: usize, length: usize, unmap: bool) -> usize {
    let aligned = (start + SPAN_SIZE - 1) & !(SPAN_SIZE - 1);
    if (aligned + CHUNK_SPANS * SPAN_SIZE) >> SPAN_SHIFT > u32::MAX as usize {
        // Too high to be packed (a 57-bit address space): one span of it
        // is used, the rest stays untouched.
        return aligned;
    }
    let rest = (((aligned + SPAN_SIZE) >> SPAN_SHIFT) as u64) << 32 | (CHUNK_SPANS as u64 - 1);
    let mut seen = CHUNK.load(Ordering::Acquire);
    while seen & 0xffff_ffff == 0 {
        match CHUNK.compare_exchange_weak(seen, rest, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return aligned,
            Err(now) => seen = now,
        }
    }
    if unmap {
        let tail = aligned + SPAN_SIZE;
        // SAFETY: unmapping the unused end of our own, unpublished mapping.
        unsafe { crate::sys::mapping::unmap(tail as *mut libc::c_void, start + length - tail) };
    }
    aligned
}

/// Spans' worth of `.bss`: the first chunk, and the reserve of three spans'
/// worth, of which two aligned spans are used.
struct Reserve<const BYTES: usize>(UnsafeCell<[u8; BYTES]>);
// SAFETY: each span of these is handed out once (`FIRST_CHUNK_TAKEN`,
// `RESERVE_USED`) and then belongs to the heap.
unsafe impl<const BYTES: usize> Sync for Reserve<BYTES> {}
static RESERVE: Reserve<{ 3 * SPAN_SIZE }> = Reserve(UnsafeCell::new([0; 3 * SPAN_SIZE]));
static RESERVE_USED: AtomicUsize = AtomicUsize::new(0);

fn reserve_span() -> Option<usize> {
    let taken = RESERVE_USED.fetch_add(1, Ordering::AcqRel);
    let start = RESERVE.0.get() as usize;
    let aligned = (start + SPAN_SIZE - 1) & !(SPAN_SIZE - 1);
    (taken < 2).then_some(aligned + taken * SPAN_SIZE)
}

fn large_length(layout: Layout) -> usize {
    layout.size().max(1).div_ceil(PAGE) * PAGE
}

/// A request too large for a span: its own mapping (page aligned, which is
/// all the library ever asks for; larger alignments are refused).
fn map_large(layout: Layout) -> *mut u8 {
    if layout.align() > PAGE {
        return ptr::null_mut();
    }
    // Handed out: `dealloc` unmaps it.
    Mapping::anonymous(large_length(layout), 0)
        .map_or(ptr::null_mut(), |mapping| mapping.leak().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two_and_keep_alignment() {
        let class = |size, align| class_of(Layout::from_size_align(size, align).unwrap());
        assert_eq!(class(1, 1), Some(0));
        assert_eq!(class(16, 8), Some(0));
        assert_eq!(class(17, 8), Some(1));
        assert_eq!(class(24, 32), Some(1));
        assert_eq!(class(4096, 8), Some(CLASSES - 1));
        assert_eq!(class(4097, 8), None);
        assert_eq!(class(8, 8192), None);
    }

    #[test]
    fn blocks_are_distinct_aligned_and_reused_after_free() {
        let layout = Layout::from_size_align(48, 16).unwrap();
        // SAFETY: a valid, non-zero-sized layout; every block is freed below.
        let blocks: Vec<*mut u8> = (0..5000).map(|_| unsafe { HEAP.alloc(layout) }).collect();
        let mut sorted = blocks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), blocks.len());
        for &block in &blocks {
            assert!(!block.is_null());
            assert_eq!(block as usize % 64, 0);
            // SAFETY: a live block of 48 bytes.
            unsafe { ptr::write_bytes(block, 0xab, 48) };
        }
        for &block in &blocks {
            // SAFETY: allocated above with this layout, freed once.
            unsafe { HEAP.dealloc(block, layout) };
        }
        // SAFETY: as above.
        let again = unsafe { HEAP.alloc(layout) };
        assert!(blocks.contains(&again), "a freed block is reused");
        // SAFETY: allocated just above with this layout.
        unsafe { HEAP.dealloc(again, layout) };
    }

    #[test]
    fn threads_never_share_a_block() {
        let threads: Vec<_> = (0..4)
            .map(|seed: usize| {
                std::thread::spawn(move || {
                    let mut held: Vec<(usize, Layout)> = Vec::new();
                    let mut state = seed as u64 + 1;
                    for _ in 0..20_000 {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        let size = 1 + (state % 9000) as usize;
                        let layout = Layout::from_size_align(size, 8).unwrap();
                        if held.len() > 64 || (state >> 40) % 3 == 0 {
                            if let Some((block, layout)) = held.pop() {
                                let block = block as *mut u8;
                                // SAFETY: a live block of this thread's, at least one byte.
                                let stamp = unsafe { *block };
                                assert_eq!(stamp, seed as u8, "someone else wrote our block");
                                // SAFETY: allocated by this thread with this layout, freed once.
                                unsafe { HEAP.dealloc(block, layout) };
                            }
                        }
                        // SAFETY: a valid, non-zero-sized layout.
                        let block = unsafe { HEAP.alloc(layout) };
                        assert!(!block.is_null());
                        // SAFETY: the block just allocated holds `size` bytes.
                        unsafe { ptr::write_bytes(block, seed as u8, size) };
                        held.push((block as usize, layout));
                    }
                    for (block, layout) in held {
                        // SAFETY: every held block is live, with its layout.
                        unsafe { HEAP.dealloc(block as *mut u8, layout) };
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
}
