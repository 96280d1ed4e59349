//! Start-up, `fork` and exit.
//!
//! Initialisation runs from our constructor, or earlier, from the first
//! intercepted call, when another library's constructor makes one before ours
//! has run. It is a small state machine: the thread that wins the
//! compare-and-swap initialises; any call meanwhile (another thread, or a
//! call made during initialisation itself) simply passes with the built-in
//! verdicts and is counted — nothing ever waits.
//!
//! Policy problems cost one line on stderr and leave the built-in default;
//! a panic anywhere in here is caught and leaves the same.

use std::ffi::{CStr, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use fadvise_shim_core::policy::{
    quick_dump_signal, DumpConfig, DUMP_DIR_ENV, ON_EXIT_ENV, POLICY_ENV, SYSTEM_POLICY_FILE,
};

use crate::compile::Settings;
use crate::sys::{ErrnoGuard, NoCancel};

const UNINITIALISED: u8 = 0;
const INITIALISING: u8 = 1;
/// Policy loaded, dump signal installed.
const READY: u8 = 2;
/// A call was made: the dump buffer exists too.
const RECORDING: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);

/// Policies up to this size are scanned for their dump signal at start-up
/// without the heap; a larger one is parsed in full there instead.
const POLICY_SCAN_BYTES: usize = 16 * 1024;

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = constructor;

#[used]
#[link_section = ".fini_array"]
static DESTRUCTOR: extern "C" fn() = destructor;

extern "C" fn constructor() {
    initialise();
}

/// Runs at `exit()` and on return from `main`, after the program's own
/// `atexit` handlers (which may still make calls).
extern "C" fn destructor() {
    before_exit();
}

/// Dumps at exit if the policy asks for it (`exit`, `_exit`, `_Exit`).
pub fn before_exit() {
    if STATE.load(Ordering::Acquire) == RECORDING {
        crate::dump::at_exit();
    }
}

/// Called by every intercepted call: initialises on first use (a call from
/// another library's constructor may come before ours ran), then readies
/// what only processes that make calls need. Never blocks.
#[inline(always)]
pub fn ensure() {
    if STATE.load(Ordering::Acquire) != RECORDING {
        first_call();
    }
}

#[cold]
#[inline(never)]
fn first_call() {
    initialise();
    if STATE.load(Ordering::Acquire) == READY {
        let _errno = ErrnoGuard::save();
        let _no_cancel = NoCancel::new();
        if crate::active::settings().is_none() {
            // The policy (or the built-in default) is loaded now rather than
            // at start-up, which most processes never get past.
            load_policy();
        }
        crate::clock::start();
        crate::dump::allocate_buffer();
        let _ = STATE.compare_exchange(READY, RECORDING, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Start-up, kept to what cannot wait: the dump signal. It allocates
/// nothing: with no policy file it takes the built-in signal; with one, it
/// reads the file on the stack and a quick scan finds the signal. Only when
/// the scan is unsure (or the file is large) is the policy parsed now rather
/// than on the first call. `tests/startup.rs` holds it to this.
#[cold]
#[inline(never)]
fn initialise() {
    if STATE
        .compare_exchange(
            UNINITIALISED,
            INITIALISING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return;
    }
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    let _ = std::panic::catch_unwind(|| {
        crate::dump::remember_owner();
        crate::sys::remember_stderr();
        // SAFETY: registering a plain function; glibc keeps it per DSO.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        let signal = match policy_path() {
            None => Some(DumpConfig::default().signal),
            // The signal is all start-up needs from the file; when a quick
            // scan is sure of it, the full parse waits for the first call.
            // It is read on the stack: a process that makes no call should
            // not have its heap set up by us.
            Some(path) => {
                let mut buffer = [0u8; POLICY_SCAN_BYTES];
                crate::sys::read_small_file(path, &mut buffer).and_then(quick_dump_signal)
            }
        };
        let signal = signal.unwrap_or_else(|| {
            load_policy();
            crate::active::with_current(|policy| policy.signal)
                .unwrap_or(DumpConfig::default().signal)
        });
        if let Some(number) = signal.number() {
            crate::signals::install(number);
        }
    });
    STATE.store(READY, Ordering::Release);
}

/// Reads the settings and the policy and puts them in force. Any problem
/// costs one stderr line and leaves the built-in default.
fn load_policy() {
    // Our copy of std is ours alone: silence its panic message, which would
    // be output the host never asked for.
    std::panic::set_hook(Box::new(|_| {}));
    let _ = std::panic::catch_unwind(|| crate::active::load_initial(settings_from_environment()));
}

/// Whether the process may trust its environment: not in secure execution
/// (setuid, setgid, file capabilities), where only the system policy applies.
fn environment_trusted() -> bool {
    // SAFETY: getauxval has no preconditions.
    (unsafe { libc::getauxval(libc::AT_SECURE) }) == 0
}

/// A `FADVISE_SHIM_*` variable, if set, non-empty and trusted. Read with
/// `getenv`, which allocates nothing.
fn variable(name: &str) -> Option<&'static CStr> {
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
fn policy_path() -> Option<&'static CStr> {
    if let Some(path) = variable(POLICY_ENV) {
        return Some(path);
    }
    // SAFETY: a NUL-terminated path.
    let exists = unsafe { libc::access(SYSTEM_POLICY_FILE.as_ptr(), libc::F_OK) } == 0;
    exists.then_some(SYSTEM_POLICY_FILE)
}

/// What the environment says, in the form the policy compiler takes.
fn settings_from_environment() -> Settings {
    let path_from = |value: &CStr| PathBuf::from(OsStr::from_bytes(value.to_bytes()));
    Settings {
        policy_path: policy_path().map(path_from),
        dump_dir_override: variable(DUMP_DIR_ENV).map(path_from),
        on_exit_forced: variable(ON_EXIT_ENV).is_some_and(|value| value.to_bytes() != b"0"),
        exe: executable(),
        // SAFETY: geteuid has no preconditions.
        euid: unsafe { libc::geteuid() },
    }
}

fn executable() -> PathBuf {
    std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| {
        // No /proc (a chroot): the name the program was started with.
        let name = std::env::args_os()
            .next()
            .unwrap_or_else(|| OsString::from_vec(b"unknown".to_vec()));
        Path::new(&name).to_path_buf()
    })
}

/// In a forked child: statistics, budgets and dump state start afresh.
extern "C" fn after_fork_in_child() {
    crate::clock::after_fork_in_child();
    crate::counters::reset();
    crate::limiter::reset();
    crate::active::after_fork_in_child();
    crate::dump::after_fork_in_child();
}
