//! What stays fixed for a process image: where the policy comes from, what
//! the environment overrides, and the executable. Read from the environment
//! (`getenv`, which allocates nothing) once per process image, on its first
//! call; published with one compare-and-swap so that a handler re-entering
//! the first call never waits for it. The executable (`/proc/self/exe`) is
//! read when first asked for — by an `exe` or `caller` rule, a stats file or
//! a dump — the same way: a short process with statistics off and no such
//! rule never reads it (a `readlink` of a new process's `/proc/self`).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use fadvise_shim_core::policy::{
    StatsDir, DUMP_DIR_ENV, ON_EXIT_ENV, POLICY_ENV, RUNTIME_DIR_ENV, STATS_DIR_ENV,
    SYSTEM_POLICY_FILE,
};

pub struct Settings {
    /// The policy file watched for changes, or `None` for the built-in.
    pub policy_path: Option<CString>,
    pub dump_dir_override: Option<PathBuf>,
    /// `FADVISE_SHIM_STATS_DIR`: a directory, or `none`.
    pub stats_dir_override: Option<StatsDir>,
    pub on_exit_forced: bool,
    /// `XDG_RUNTIME_DIR`: where a user's default stats directory goes.
    pub runtime_dir: Option<PathBuf>,
    /// The executable's full path, for `exe` rules and dump names: `exe()`.
    exe: Exe,
    pub euid: u32,
}

/// The executable's path, read on first use and then kept (never freed).
struct Exe(AtomicPtr<PathBuf>);

impl Settings {
    /// The executable's full path, read from `/proc/self/exe` on first use.
    /// Async-signal-safe: a `readlink`, the library's own heap, and one
    /// compare-and-swap (a handler that races the first reader reads again
    /// and loses).
    pub fn exe(&self) -> &Path {
        // SAFETY: a non-null pointer came from `Box::into_raw` below and is
        // never freed: the path lives as long as the settings.
        if let Some(exe) = unsafe { self.exe.0.load(Ordering::Acquire).as_ref() } {
            return exe;
        }
        let fresh = Box::into_raw(Box::new(executable()));
        match self.exe.0.compare_exchange(
            ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            // SAFETY: just published; never freed.
            Ok(_) => unsafe { &*fresh },
            // SAFETY: `fresh` was never published; `theirs` is never freed.
            Err(theirs) => unsafe {
                drop(Box::from_raw(fresh));
                &*theirs
            },
        }
    }

    /// Settings with a known executable, for tests.
    #[cfg(test)]
    pub fn for_test(exe: &str, euid: u32) -> Settings {
        Settings {
            policy_path: None,
            dump_dir_override: None,
            stats_dir_override: None,
            on_exit_forced: false,
            runtime_dir: None,
            exe: Exe(AtomicPtr::new(Box::into_raw(Box::new(PathBuf::from(exe))))),
            euid,
        }
    }
}

static SETTINGS: AtomicPtr<Settings> = AtomicPtr::new(ptr::null_mut());

/// The settings of this process image, once read.
pub fn get() -> Option<&'static Settings> {
    // SAFETY: a non-null pointer came from `Box::into_raw` in `read` and is
    // never freed: settings live as long as the process image.
    unsafe { SETTINGS.load(Ordering::Acquire).as_ref() }
}

/// The settings, read from the environment on first use.
pub fn read() -> &'static Settings {
    if let Some(settings) = get() {
        return settings;
    }
    let fresh = Box::into_raw(Box::new(from_environment()));
    match SETTINGS.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published; never freed.
        Ok(_) => unsafe { &*fresh },
        Err(theirs) => {
            // SAFETY: `fresh` was never published; `theirs` is never freed.
            unsafe {
                drop(Box::from_raw(fresh));
                &*theirs
            }
        }
    }
}

fn from_environment() -> Settings {
    let path_from = |value: &CStr| PathBuf::from(OsStr::from_bytes(value.to_bytes()));
    Settings {
        policy_path: policy_path().map(CStr::to_owned),
        dump_dir_override: variable(DUMP_DIR_ENV).map(path_from),
        stats_dir_override: variable(STATS_DIR_ENV).map(|value| match value.to_bytes() {
            b"none" => StatsDir::None,
            _ => StatsDir::Path(path_from(value)),
        }),
        on_exit_forced: variable(ON_EXIT_ENV).is_some_and(|value| value.to_bytes() != b"0"),
        runtime_dir: variable(RUNTIME_DIR_ENV).map(path_from),
        exe: Exe(AtomicPtr::new(ptr::null_mut())),
        euid: crate::sys::process::euid(),
    }
}

/// Whether the process may trust its environment: not in secure execution
/// (setuid, setgid, file capabilities), where only the system policy applies.
fn environment_trusted() -> bool {
    // SAFETY: getauxval has no preconditions.
    (unsafe { libc::getauxval(libc::AT_SECURE) }) == 0
}

/// A `FADVISE_SHIM_*` variable, if set, non-empty and trusted.
pub fn variable(name: &str) -> Option<&'static CStr> {
    if !environment_trusted() {
        return None;
    }
    let name = NulTerminated::new(name.as_bytes());
    // SAFETY: `name` is NUL-terminated; a non-null result is a C string in
    // the environment.
    let value = unsafe { libc::getenv(name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated, and the environment outlives us.
    let value = unsafe { CStr::from_ptr(value) };
    (!value.is_empty()).then_some(value)
}

/// A short string made NUL-terminated on the stack, for libc.
struct NulTerminated([u8; 64]);

impl NulTerminated {
    fn new(text: &[u8]) -> Self {
        let mut bytes = [0u8; 64];
        let length = text.len().min(bytes.len() - 1);
        bytes[..length].copy_from_slice(&text[..length]);
        NulTerminated(bytes)
    }

    fn as_ptr(&self) -> *const libc::c_char {
        self.0.as_ptr().cast()
    }
}

/// The policy file: `FADVISE_SHIM_POLICY`, else the system policy if it
/// exists, else none (the built-in default).
pub fn policy_path() -> Option<&'static CStr> {
    if let Some(path) = variable(POLICY_ENV) {
        return Some(path);
    }
    crate::sys::io::exists(SYSTEM_POLICY_FILE).then_some(SYSTEM_POLICY_FILE)
}

fn executable() -> PathBuf {
    let mut target = [0u8; 4096];
    let length = crate::sys::io::read_link(c"/proc/self/exe", &mut target);
    match usize::try_from(length) {
        Ok(length) if length > 0 && length < target.len() => {
            PathBuf::from(OsStr::from_bytes(&target[..length]))
        }
        // No /proc (a chroot): the name the program was started with.
        _ => PathBuf::from(
            std::env::args_os()
                .next()
                .unwrap_or_else(|| OsString::from_vec(b"unknown".to_vec())),
        ),
    }
}
