//! What an intercepted system call asks, read from the kernel's
//! `seccomp_data`: which call, its file, and the error its arguments alone
//! give (`core::args`, exactly as the preload library's `syscall()` hook
//! reads the same registers), so that a dropped or limited call still fails
//! where the real one would without looking at the file.

use libc::c_int;

use fadvise_shim_core::args;
use fadvise_shim_core::call::{Advice, Call};

/// x32 system calls are x86_64 ones with this bit set in the number; the
/// filter catches both, and the supervisor never makes an x32 call itself.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The file behind a call, for `path` rules and for making it on the
/// caller's behalf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum File {
    None,
    Fd(c_int),
    Mapping(usize),
}

/// One intercepted call.
#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub call: Call,
    /// The raw system call number (x32 bit included).
    pub number: u32,
    pub args: [u64; 6],
    pub file: File,
    /// The advice of a `posix_fadvise` that has a valid one.
    pub advice: Option<Advice>,
    /// The errno the arguments alone give, if any.
    pub argument_error: Option<c_int>,
}

impl Request {
    /// The request behind a system call number and its arguments, or
    /// `None` for a number we do not intercept.
    pub fn new(number: u32, args: [u64; 6]) -> Option<Request> {
        let call = Call::from_syscall_number((number & !X32_SYSCALL_BIT).into())?;
        let fd = args[0] as c_int;
        let signed = |index: usize| args[index] as i64;
        let (file, advice, argument_error) = match call {
            Call::PosixFadvise => {
                let advice = args[3] as c_int;
                (
                    File::Fd(fd),
                    Advice::from_raw(advice),
                    args::fadvise_error(fd, signed(2), advice),
                )
            }
            Call::SyncFileRange => (
                File::Fd(fd),
                None,
                args::sync_file_range_error(fd, signed(1), signed(2), args[3] as u32),
            ),
            Call::Msync => (
                File::Mapping(args[0] as usize),
                None,
                args::msync_error(
                    args[0] as usize,
                    args[1] as usize,
                    args[2] as c_int,
                    page_size(),
                ),
            ),
            Call::Sync => (File::None, None, None),
            Call::Readahead | Call::Fsync | Call::Fdatasync | Call::Syncfs => {
                (File::Fd(fd), None, args::fd_error(fd))
            }
        };
        Some(Request {
            call,
            number,
            args,
            file,
            advice,
            argument_error,
        })
    }

    /// Whether the caller used the x32 entry point.
    pub fn is_x32(&self) -> bool {
        self.number & X32_SYSCALL_BIT != 0
    }
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; _SC_PAGESIZE is always known.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_read_as_the_kernel_reads_them() {
        let number = libc::SYS_fadvise64 as u32;
        let dontneed = libc::POSIX_FADV_DONTNEED as u64;
        let request = Request::new(number, [3, 0, 4096, dontneed, 0, 0]).unwrap();
        assert_eq!(request.file, File::Fd(3));
        assert_eq!(request.advice, Some(Advice::Dontneed));
        assert_eq!(request.argument_error, None);
        // fd -1 arrives as a 64-bit register whose low half is -1.
        let request = Request::new(number, [u32::MAX as u64, 0, 0, 99, 0, 0]).unwrap();
        assert_eq!(request.argument_error, Some(libc::EBADF));
        let request = Request::new(number, [3, 0, 0, 99, 0, 0]).unwrap();
        assert_eq!(
            (request.advice, request.argument_error),
            (None, Some(libc::EINVAL))
        );
        let fsync = libc::SYS_fsync as u32 | X32_SYSCALL_BIT;
        let request = Request::new(fsync, [3, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(request.call, Call::Fsync);
        assert!(request.is_x32());
        assert!(Request::new(libc::SYS_getpid as u32, [0; 6]).is_none());
    }
}
