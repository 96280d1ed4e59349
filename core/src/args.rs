//! The errors a call gets from its arguments alone, before the kernel looks
//! at the file: what a dropped or rate-limited call must still return.
//!
//! Each function mirrors the order of the kernel's own checks (Linux 6.x,
//! verified against the real calls by `tests/shim_semantics.rs`). Errors that need
//! the kernel — a closed fd, a pipe, an unmapped `msync` range — cannot be
//! known without asking it, so a dropped call reports success for them.

use libc::{c_int, EBADF, EINVAL, ENOMEM};

/// `posix_fadvise(fd, offset, len, advice)`. A negative offset is accepted
/// by the kernel; a negative length is not.
pub fn fadvise_error(fd: c_int, len: i64, advice: c_int) -> Option<c_int> {
    if fd < 0 {
        Some(EBADF)
    } else if len < 0 || crate::call::Advice::from_raw(advice).is_none() {
        Some(EINVAL)
    } else {
        None
    }
}

/// `fsync`, `fdatasync`, `syncfs` and `readahead`: only the descriptor can be
/// wrong without asking the kernel (`readahead` accepts negative offsets).
pub fn fd_error(fd: c_int) -> Option<c_int> {
    (fd < 0).then_some(EBADF)
}

/// `sync_file_range(fd, offset, nbytes, flags)`: the descriptor first, then
/// flags, then the range (negative, or past the largest file offset).
pub fn sync_file_range_error(fd: c_int, offset: i64, nbytes: i64, flags: u32) -> Option<c_int> {
    const VALID_FLAGS: u32 = libc::SYNC_FILE_RANGE_WAIT_BEFORE
        | libc::SYNC_FILE_RANGE_WRITE
        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    if fd < 0 {
        return Some(EBADF);
    }
    let end_overflows = offset.checked_add(nbytes).is_none_or(|end| end < 0);
    if flags & !VALID_FLAGS != 0 || offset < 0 || nbytes < 0 || end_overflows {
        return Some(EINVAL);
    }
    None
}

/// `msync(addr, len, flags)`: flags and alignment, then a range that wraps
/// around the address space. Unmapped ranges need the kernel.
pub fn msync_error(addr: usize, len: usize, flags: c_int, page_size: usize) -> Option<c_int> {
    let valid = libc::MS_ASYNC | libc::MS_INVALIDATE | libc::MS_SYNC;
    let page_mask = page_size.wrapping_sub(1);
    if flags & !valid != 0
        || addr & page_mask != 0
        || (flags & libc::MS_ASYNC != 0 && flags & libc::MS_SYNC != 0)
    {
        return Some(EINVAL);
    }
    let rounded_len = len.wrapping_add(page_mask) & !page_mask;
    addr.checked_add(rounded_len).is_none().then_some(ENOMEM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fadvise_checks_fd_then_length_and_advice() {
        assert_eq!(fadvise_error(-1, -5, 99), Some(EBADF));
        assert_eq!(fadvise_error(3, -5, 0), Some(EINVAL));
        assert_eq!(fadvise_error(3, 0, 99), Some(EINVAL));
        assert_eq!(fadvise_error(3, 0, libc::POSIX_FADV_DONTNEED), None);
    }

    #[test]
    fn sync_file_range_checks_fd_first() {
        assert_eq!(sync_file_range_error(-1, 0, 0, 0xff), Some(EBADF));
        assert_eq!(sync_file_range_error(3, 0, 0, 0xff), Some(EINVAL));
        assert_eq!(sync_file_range_error(3, -5, 0, 0), Some(EINVAL));
        assert_eq!(sync_file_range_error(3, 0, -5, 0), Some(EINVAL));
        assert_eq!(sync_file_range_error(3, i64::MAX, 10, 0), Some(EINVAL));
        assert_eq!(sync_file_range_error(3, 0, 0, 7), None);
    }

    #[test]
    fn msync_checks_flags_alignment_and_wrap() {
        assert_eq!(msync_error(4097, 10, libc::MS_SYNC, 4096), Some(EINVAL));
        assert_eq!(msync_error(4096, 10, 0xff, 4096), Some(EINVAL));
        assert_eq!(
            msync_error(4096, 10, libc::MS_SYNC | libc::MS_ASYNC, 4096),
            Some(EINVAL)
        );
        assert_eq!(
            msync_error(usize::MAX - 4095, 8192, libc::MS_SYNC, 4096),
            Some(ENOMEM)
        );
        assert_eq!(msync_error(4096, usize::MAX, libc::MS_SYNC, 4096), None);
        assert_eq!(msync_error(4096, 10, 0, 4096), None);
    }
}
