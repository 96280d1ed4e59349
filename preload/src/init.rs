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

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use fadvise_shim_core::policy::{DUMP_DIR_ENV, ON_EXIT_ENV, POLICY_ENV, SYSTEM_POLICY_PATH};

use crate::compile::Settings;
use crate::sys::{ErrnoGuard, NoCancel};

const UNINITIALISED: u8 = 0;
const INITIALISING: u8 = 1;
/// Policy loaded, dump signal installed.
const READY: u8 = 2;
/// A call was made: the dump buffer exists too.
const RECORDING: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);

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
        crate::dump::allocate_buffer();
        let _ = STATE.compare_exchange(READY, RECORDING, Ordering::AcqRel, Ordering::Acquire);
    }
}

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
    // Our copy of std is ours alone: silence its panic message, which would
    // be output the host never asked for.
    std::panic::set_hook(Box::new(|_| {}));
    let _ = std::panic::catch_unwind(|| {
        crate::clock::start();
        crate::dump::remember_owner();
        let settings = settings_from_environment();
        crate::active::load_initial(settings);
        // SAFETY: registering a plain function; glibc keeps it per DSO.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        let signal = crate::active::with_current(|policy| policy.signal.number()).flatten();
        if let Some(signal) = signal {
            crate::signals::install(signal);
        }
    });
    STATE.store(READY, Ordering::Release);
}

/// Reads the environment, which a secure-execution process (setuid, setgid,
/// file capabilities) must not trust: there only the system policy applies.
fn settings_from_environment() -> Settings {
    // SAFETY: getauxval has no preconditions.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    let variable = |name: &str| {
        if secure {
            None
        } else {
            std::env::var_os(name).filter(|value| !value.is_empty())
        }
    };
    let policy_path = match variable(POLICY_ENV) {
        Some(path) => Some(PathBuf::from(path)),
        None => Some(PathBuf::from(SYSTEM_POLICY_PATH)).filter(|path| path.exists()),
    };
    Settings {
        policy_path,
        dump_dir_override: variable(DUMP_DIR_ENV).map(PathBuf::from),
        on_exit_forced: variable(ON_EXIT_ENV).is_some_and(|value| value != "0"),
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
    crate::counters::reset();
    crate::limiter::reset();
    crate::active::after_fork_in_child();
    crate::dump::after_fork_in_child();
}
