//! Initialisation, the first call, `fork` and exit.
//!
//! Initialisation runs from our constructor (`startup.rs`), or earlier, from
//! the first intercepted call, when another library's constructor makes one
//! before ours has run. It is a small state machine: the thread that wins the
//! compare-and-swap initialises; any call meanwhile (another thread, or a
//! call made during initialisation itself) simply passes with the built-in
//! verdicts and is counted — nothing ever waits. The first call of a process
//! image loads the policy the same way: a call that arrives while it is being
//! loaded (another thread, or a signal handler that interrupted the load)
//! goes on with the built-in verdicts.
//!
//! Policy problems cost one line on stderr and leave the built-in default;
//! a panic anywhere in here is caught and leaves the same.

use std::sync::atomic::{AtomicU8, Ordering};

use fadvise_shim_core::policy::{quick_dump_signal, DumpConfig};

use crate::policy::{active, limiter, load, settings};
use crate::stats::counters;
use crate::sys::{clock, stderr, ErrnoGuard, NoCancel};

const UNINITIALISED: u8 = 0;
const INITIALISING: u8 = 1;
/// Dump signal installed; no call made yet.
const READY: u8 = 2;
/// A call was made: the policy is loaded and the dump buffer exists.
const RECORDING: u8 = 3;
static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);

/// Policies up to this size are scanned for their dump signal at start-up
/// without the heap; a larger one is parsed in full there instead.
const POLICY_SCAN_BYTES: usize = 16 * 1024;

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
    if STATE.load(Ordering::Acquire) != READY {
        return;
    }
    let _errno = ErrnoGuard::save();
    let _no_cancel = NoCancel::new();
    // The policy (or the built-in default) is loaded now rather than at
    // start-up, which most processes never get past. If a load is under
    // way (this very thread, interrupted by a handler, or another thread),
    // this call goes on without waiting.
    if !load::loaded() && !load::load_initial() {
        return;
    }
    clock::start();
    crate::dump::allocate_buffer();
    let _ = STATE.compare_exchange(READY, RECORDING, Ordering::AcqRel, Ordering::Acquire);
}

/// Start-up, kept to what cannot wait: the dump signal. With no policy file
/// it takes the built-in signal; with one, it reads the file on the stack
/// and a quick scan finds the signal. Only when the scan is unsure (or the
/// file is large) is the policy parsed now rather than on the first call.
/// Allocates nothing otherwise; `tests/startup.rs` holds it to this.
#[cold]
#[inline(never)]
pub fn initialise() {
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
    // be output the host never asked for. A closure with no captures is
    // zero-sized, so this allocates nothing; it is done here, at start-up,
    // because setting the hook takes std's lock.
    std::panic::set_hook(Box::new(|_| {}));
    let _ = std::panic::catch_unwind(|| {
        crate::dump::remember_owner();
        stderr::remember_stderr();
        // SAFETY: registering a plain function; glibc keeps it per DSO.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        let signal = match settings::policy_path() {
            None => Some(DumpConfig::default().signal),
            // The signal is all start-up needs from the file; when a quick
            // scan is sure of it, the full parse waits for the first call.
            Some(path) => {
                let mut buffer = [0u8; POLICY_SCAN_BYTES];
                crate::sys::io::read_small_file(path, &mut buffer).and_then(quick_dump_signal)
            }
        };
        let signal = signal.unwrap_or_else(|| {
            load::load_initial();
            active::with_current(|policy| policy.signal).unwrap_or(DumpConfig::default().signal)
        });
        if let Some(number) = signal.number() {
            crate::dump::signals::install(number);
        }
    });
    STATE.store(READY, Ordering::Release);
}

/// In a forked child: statistics, budgets and dump state start afresh.
extern "C" fn after_fork_in_child() {
    clock::after_fork_in_child();
    counters::reset();
    limiter::reset();
    active::after_fork_in_child();
    load::after_fork_in_child();
    crate::dump::after_fork_in_child();
}
