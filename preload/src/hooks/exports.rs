//! The hook table: every intercepted function (README), declared once, with
//! its C signature, the `Call` it counts as, the file it acts on, the
//! argument check that an answered call keeps (`fadvise_shim_core::args`),
//! its return convention and whether it is a cancellation point.
//! `hook_table!` (`hook_table.rs`) makes each entry's trampoline, body and
//! real function, and the one list of next definitions the constructor
//! resolves: the table's, then the `also resolved` list of those that the
//! other hooks here and in `dump::signals` call.
//!
//! `syscall()`, whose seven arguments leave no register free for the
//! caller, has a trampoline and body of its own (`syscall.rs`), and
//! `_exit`/`_Exit`, for the dump at exit, are in `exit.rs`; both are
//! re-exported here, so the whole intercepted ABI is named in this file.
//!
//! A test (`tests/resolved_at_start_up.rs`) checks from outside that every
//! function the built library exports had its next definition looked up
//! before `main`, and the unit tests below that the list holds every
//! table entry once and that the constructor resolved all of it.

#![allow(clippy::missing_safety_doc)]

use libc::{c_int, c_void, off64_t, off_t, size_t, ssize_t};

use fadvise_shim_core::args;

use super::hook_table::hook_table;

pub use super::exit::{_Exit, _exit};
pub use super::syscall::syscall;

hook_table! {
    intercepted {
        fn posix_fadvise(fd: c_int, offset: off_t, len: off_t, advice: c_int) -> c_int {
            call: PosixFadvise,
            advice: advice,
            file: fd(fd),
            check: args::fadvise_error(fd, len, advice),
            returns: error_number,
            cancellation_point: false,
        }
        /// musl from 1.2.4 has no `*64` names (on 64-bit targets they were
        /// aliases): the plain function is the same one.
        fn posix_fadvise64(fd: c_int, offset: off64_t, len: off64_t, advice: c_int) -> c_int {
            call: PosixFadvise,
            advice: advice,
            file: fd(fd),
            check: args::fadvise_error(fd, len, advice),
            returns: error_number,
            cancellation_point: false,
            fallback: posix_fadvise,
        }
        fn readahead(fd: c_int, offset: off64_t, count: size_t) -> ssize_t {
            call: Readahead,
            file: fd(fd),
            check: args::fd_error(fd),
            returns: errno,
            cancellation_point: false,
        }
        fn sync_file_range(fd: c_int, offset: off64_t, nbytes: off64_t, flags: u32) -> c_int {
            call: SyncFileRange,
            file: fd(fd),
            check: args::sync_file_range_error(fd, offset, nbytes, flags),
            returns: errno,
            cancellation_point: false,
        }
        fn fsync(fd: c_int) -> c_int {
            call: Fsync,
            file: fd(fd),
            check: args::fd_error(fd),
            returns: errno,
            cancellation_point: true,
        }
        fn fdatasync(fd: c_int) -> c_int {
            call: Fdatasync,
            file: fd(fd),
            check: args::fd_error(fd),
            returns: errno,
            cancellation_point: true,
        }
        fn syncfs(fd: c_int) -> c_int {
            call: Syncfs,
            file: fd(fd),
            check: args::fd_error(fd),
            returns: errno,
            cancellation_point: false,
        }
        fn sync() -> () {
            call: Sync,
            file: none,
            check: None,
            returns: nothing,
            cancellation_point: false,
        }
        fn msync(address: *mut c_void, length: size_t, flags: c_int) -> c_int {
            call: Msync,
            file: mapping(address),
            check: args::msync_error(address as usize, length, flags, crate::sys::mapping::page_size()),
            returns: errno,
            cancellation_point: true,
        }
    }
    also_resolved {
        super::syscall::REAL_SYSCALL,
        super::exit::REAL_EXIT,
        super::exit::REAL_EXIT_UPPER,
        super::descriptors::REAL_CLOSE,
        super::descriptors::REAL_CLOSE_RANGE,
        super::descriptors::REAL_CLOSEFROM,
        super::descriptors::REAL_DUP2,
        super::descriptors::REAL_DUP3,
        crate::dump::signals::REAL_SIGACTION,
        crate::dump::signals::REAL_SIGNAL,
        crate::dump::signals::REAL_BSD_SIGNAL,
        crate::dump::signals::REAL_SYSV_SIGNAL,
        // `dlsym` and `dlvsym` are not here: found in the symbol tables
        // before everything else (`lookups::find_real_lookups`).
        #[cfg(target_arch = "x86_64")]
        crate::sys::loader::REAL_DLCLOSE,
    }
}

#[cfg(test)]
mod tests {
    use super::{INTERCEPTED, RESOLVED_AT_START_UP};

    fn names() -> Vec<&'static str> {
        RESOLVED_AT_START_UP
            .iter()
            .map(|real| real.name().to_str().unwrap())
            .collect()
    }

    /// The constructor (`startup.rs`) runs in this test binary too, before
    /// the harness's `main`: nothing here resolves anything.
    #[test]
    fn the_constructor_resolved_every_next_definition() {
        let unresolved: Vec<_> = RESOLVED_AT_START_UP
            .iter()
            .filter(|real| !real.is_resolved())
            .map(|real| real.name())
            .collect();
        assert!(unresolved.is_empty(), "not looked up: {unresolved:?}");
    }

    #[test]
    fn the_list_holds_every_hook_of_the_table_and_each_once() {
        let names = names();
        for hook in INTERCEPTED {
            assert!(names.contains(hook), "{hook} is not resolved at start-up");
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "listed twice: {names:?}");
    }
}
