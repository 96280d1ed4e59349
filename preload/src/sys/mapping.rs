//! Memory mappings: `mmap`, `munmap` and `madvise`, through libc as ever.
//! A `Mapping` is one the caller owns and has not shown anyone: it is
//! unmapped when dropped, so a failure on the way to publishing it cannot
//! leak it or leave it mapped twice over. Once published (the stats file,
//! a host budget, the heap's spans), it is given up with `leak`, and its
//! memory lives as long as the process. For memory already handed out,
//! `unmap` and `advise` take the address and are `unsafe`. `page_size`
//! is the unit all of them (and `msync`'s argument check) work in.

use std::ffi::c_void;

use libc::c_int;

/// A mapping of `length` bytes at `address`, owned and unpublished.
#[derive(Debug)]
pub struct Mapping {
    address: *mut c_void,
    length: usize,
}

impl Mapping {
    /// A shared, readable and writable mapping of the first `length`
    /// bytes of the file behind `fd`.
    pub fn shared_file(fd: c_int, length: usize) -> Option<Mapping> {
        Mapping::new(length, libc::MAP_SHARED, fd)
    }

    /// Private anonymous memory, readable and writable, zero until
    /// written; `flags` adds to `MAP_PRIVATE | MAP_ANONYMOUS` (say
    /// `MAP_NORESERVE`).
    pub fn anonymous(length: usize, flags: c_int) -> Option<Mapping> {
        Mapping::new(length, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags, -1)
    }

    fn new(length: usize, flags: c_int, fd: c_int) -> Option<Mapping> {
        // SAFETY: a new mapping placed by the kernel (no `MAP_FIXED`): no
        // memory of ours is replaced, and nothing is touched.
        let address = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        (address != libc::MAP_FAILED).then_some(Mapping { address, length })
    }

    /// Where it starts; it stays mapped while `self` lives.
    pub fn as_ptr(&self) -> *mut c_void {
        self.address
    }

    /// `madvise(advice)` of `length` bytes from `offset` into the mapping
    /// (ends past the mapping are cut off); whether it succeeded.
    pub fn advise(&self, offset: usize, length: usize, advice: c_int) -> bool {
        let offset = offset.min(self.length);
        let length = length.min(self.length - offset);
        // SAFETY: a range inside this mapping, which no one else has seen.
        unsafe { advise(self.address.cast::<u8>().add(offset).cast(), length, advice) }
    }

    /// Gives the mapping up without unmapping it: it is published, and
    /// stays mapped for the process's life.
    pub fn leak(self) -> *mut c_void {
        let address = self.address;
        std::mem::forget(self);
        address
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, of this length, never published.
        unsafe { unmap(self.address, self.length) };
    }
}

/// `munmap(2)`.
///
/// # Safety
///
/// `address` and `length` cover pages of mappings this library made (or
/// nothing), and nothing will touch them again.
pub unsafe fn unmap(address: *mut c_void, length: usize) {
    // SAFETY: the caller's promise.
    unsafe { libc::munmap(address, length) };
}

/// `madvise(2)` of a range of this library's memory; whether it succeeded.
///
/// # Safety
///
/// The range lies in memory of this library's that `advice` may act on:
/// with `MADV_DONTNEED`, private memory that nothing relies on keeping
/// its contents (it reads as zeros afterwards).
pub unsafe fn advise(address: *mut c_void, length: usize, advice: c_int) -> bool {
    // SAFETY: the caller's promise.
    unsafe { libc::madvise(address, length, advice) == 0 }
}

/// The page size (`sysconf(_SC_PAGESIZE)`, which glibc and musl answer
/// without a system call or a lock).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always known.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An odd size: other tests' mappings, made meanwhile, may reuse part
    /// of a range just unmapped, but not the whole of it.
    const LENGTH: usize = 37 * 4096;

    /// Whether all of `LENGTH` bytes at `address` are mapped: `madvise`
    /// fails with `ENOMEM` on a range with unmapped pages.
    fn is_mapped(address: *mut c_void) -> bool {
        // SAFETY: MADV_NORMAL changes nothing about the memory.
        unsafe { advise(address, LENGTH, libc::MADV_NORMAL) }
    }

    #[test]
    fn a_dropped_mapping_is_unmapped_and_a_leaked_one_is_not() {
        let mapping = Mapping::anonymous(LENGTH, 0).expect("a mapping");
        let address = mapping.as_ptr();
        assert!(is_mapped(address));
        assert!(mapping.advise(0, LENGTH, libc::MADV_NORMAL));
        drop(mapping);
        assert!(!is_mapped(address));
        let leaked = Mapping::anonymous(LENGTH, 0).expect("a mapping").leak();
        assert!(is_mapped(leaked));
        // SAFETY: leaked above, and not used again.
        unsafe { unmap(leaked, LENGTH) };
    }
}
