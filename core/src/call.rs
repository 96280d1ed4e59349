//! The intercepted calls and `posix_fadvise` advice values, with the names
//! used in policies, dumps and reports (the README lists them).

/// One intercepted call, as named in policies and reports. Several entry
/// points map to one call: `posix_fadvise64` and `syscall(SYS_fadvise64, …)`
/// are both `PosixFadvise`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Call {
    PosixFadvise,
    Readahead,
    SyncFileRange,
    Fsync,
    Fdatasync,
    Syncfs,
    Sync,
    Msync,
}

impl Call {
    /// Every call, in the order used for tables and array indices.
    pub const ALL: [Call; 8] = [
        Call::PosixFadvise,
        Call::Readahead,
        Call::SyncFileRange,
        Call::Fsync,
        Call::Fdatasync,
        Call::Syncfs,
        Call::Sync,
        Call::Msync,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub const fn name(self) -> &'static str {
        match self {
            Call::PosixFadvise => "posix_fadvise",
            Call::Readahead => "readahead",
            Call::SyncFileRange => "sync_file_range",
            Call::Fsync => "fsync",
            Call::Fdatasync => "fdatasync",
            Call::Syncfs => "syncfs",
            Call::Sync => "sync",
            Call::Msync => "msync",
        }
    }

    pub fn from_name(name: &str) -> Option<Call> {
        Self::ALL.into_iter().find(|call| call.name() == name)
    }

    /// The index of this call in `ALL` (and in every per-call array).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the call names a file through a descriptor or a mapping, so
    /// that `path` rules can apply to it. `sync` has no file.
    pub const fn has_file(self) -> bool {
        !matches!(self, Call::Sync)
    }

    /// The system call number behind this call on this target.
    pub const fn syscall_number(self) -> libc::c_long {
        match self {
            Call::PosixFadvise => libc::SYS_fadvise64,
            Call::Readahead => libc::SYS_readahead,
            Call::SyncFileRange => libc::SYS_sync_file_range,
            Call::Fsync => libc::SYS_fsync,
            Call::Fdatasync => libc::SYS_fdatasync,
            Call::Syncfs => libc::SYS_syncfs,
            Call::Sync => libc::SYS_sync,
            Call::Msync => libc::SYS_msync,
        }
    }

    /// The call behind a `syscall()` number, if it is one we intercept.
    pub fn from_syscall_number(number: libc::c_long) -> Option<Call> {
        Self::ALL
            .into_iter()
            .find(|call| call.syscall_number() == number)
    }
}

/// A `posix_fadvise` advice value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Advice {
    Normal,
    Random,
    Sequential,
    Willneed,
    Dontneed,
    Noreuse,
}

impl Advice {
    pub const ALL: [Advice; 6] = [
        Advice::Normal,
        Advice::Random,
        Advice::Sequential,
        Advice::Willneed,
        Advice::Dontneed,
        Advice::Noreuse,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Advice::Normal => "normal",
            Advice::Random => "random",
            Advice::Sequential => "sequential",
            Advice::Willneed => "willneed",
            Advice::Dontneed => "dontneed",
            Advice::Noreuse => "noreuse",
        }
    }

    pub fn from_name(name: &str) -> Option<Advice> {
        Self::ALL.into_iter().find(|advice| advice.name() == name)
    }

    /// The advice behind a `POSIX_FADV_*` value, if it is a valid one.
    /// (A `match`, not a search: this runs on every intercepted call.)
    #[inline]
    pub fn from_raw(raw: libc::c_int) -> Option<Advice> {
        match raw {
            libc::POSIX_FADV_NORMAL => Some(Advice::Normal),
            libc::POSIX_FADV_RANDOM => Some(Advice::Random),
            libc::POSIX_FADV_SEQUENTIAL => Some(Advice::Sequential),
            libc::POSIX_FADV_WILLNEED => Some(Advice::Willneed),
            libc::POSIX_FADV_DONTNEED => Some(Advice::Dontneed),
            libc::POSIX_FADV_NOREUSE => Some(Advice::Noreuse),
            _ => None,
        }
    }

    pub const fn raw(self) -> libc::c_int {
        match self {
            Advice::Normal => libc::POSIX_FADV_NORMAL,
            Advice::Random => libc::POSIX_FADV_RANDOM,
            Advice::Sequential => libc::POSIX_FADV_SEQUENTIAL,
            Advice::Willneed => libc::POSIX_FADV_WILLNEED,
            Advice::Dontneed => libc::POSIX_FADV_DONTNEED,
            Advice::Noreuse => libc::POSIX_FADV_NOREUSE,
        }
    }

    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for call in Call::ALL {
            assert_eq!(Call::from_name(call.name()), Some(call));
            assert_eq!(Call::from_syscall_number(call.syscall_number()), Some(call));
            assert_eq!(Call::ALL[call.index()], call);
        }
        for advice in Advice::ALL {
            assert_eq!(Advice::from_name(advice.name()), Some(advice));
            assert_eq!(Advice::from_raw(advice.raw()), Some(advice));
        }
        assert_eq!(Advice::from_raw(6), None);
        assert_eq!(Call::from_syscall_number(libc::SYS_getpid), None);
    }
}
