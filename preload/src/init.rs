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

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use fadvise_shim_core::policy::DumpConfig;

use crate::policy::{active, limiter, load, settings};
use crate::stats::{counters, file, origin};
use crate::sys::fork::store_if_changed;
use crate::sys::{clock, stderr, ErrnoGuard, NoCancel};

const UNINITIALISED: u8 = 0;
const INITIALISING: u8 = 1;
/// Dump signal installed; no call made yet.
const READY: u8 = 2;
/// A call was made: the policy is loaded and the dump buffer exists.
const RECORDING: u8 = 3;
// The constructor writes this and `dump::writer`'s `OWNER_PID`, and so does
// a forked child: one section keeps them in one page, one page fault.
#[link_section = ".bss.fadvise_shim.written_at_start"]
static STATE: AtomicU8 = AtomicU8::new(UNINITIALISED);
/// Whether this process (or the parent it was forked from) ever entered a
/// hook or loaded a policy: until then the state the fork handler resets
/// (policy readers, loads, limiters, clock, identity, private counters) is
/// as it was at load, on pages nobody touched, which a child need not touch
/// to find so (each would cost it a page fault).
static USED: AtomicBool = AtomicBool::new(false);

/// How often the tick comes: the policy file looked at, the stats file
/// looked after.
const TICK_NS: u64 = 1_000_000_000;
static NEXT_TICK_NS: AtomicU64 = AtomicU64::new(u64::MAX);
/// The same deadline in wall-clock seconds, for calls that read no clock.
static NEXT_TICK_SECONDS: AtomicU64 = AtomicU64::new(u64::MAX);
static TICKING: AtomicBool = AtomicBool::new(false);
/// Held by the one thread finishing a first call.
static FIRST_CALL: AtomicBool = AtomicBool::new(false);

/// At exit (`exit`, `_exit`, `_Exit`): the dump, if the policy asks for it,
/// and the exit logged for the retirement of this process's stats file.
#[link_section = ".text.startup"]
pub fn before_exit() {
    if STATE.load(Ordering::Acquire) != RECORDING || !crate::dump::writer::is_owner() {
        return;
    }
    crate::dump::at_exit();
    if let (Some(name), Some(directory)) = (file::own_name(), file::directory()) {
        let _ = active::with_current(|policy| {
            if let Some(dir) = &policy.stats_dir {
                crate::stats::compact::at_exit(dir, directory, name);
            }
        });
    }
}

/// Called by calls with the time they read: at most once per interval, one
/// of them does the tick's work.
#[inline(always)]
pub fn tick_if_due(now_ns: u64) {
    if now_ns >= NEXT_TICK_NS.load(Ordering::Relaxed) {
        tick(now_ns);
    }
}

/// For calls answered without the kernel, which read no clock: the wall
/// clock in seconds is one memory load in the vDSO (`clock::wall_clock_seconds`),
/// and its one-second resolution is all a once-a-second tick needs.
#[inline(always)]
pub fn tick_if_due_by_wall_clock() {
    let now = clock::wall_clock_seconds();
    let next = NEXT_TICK_SECONDS.load(Ordering::Relaxed);
    // The wall clock can be stepped back (NTP, `date -s`): a deadline more
    // than a tick ahead is one that time went back from.
    if now >= next || now.saturating_add(2) < next {
        tick(clock::monotonic_ns());
    }
}

fn schedule_next_tick(now_ns: u64) {
    NEXT_TICK_NS.store(now_ns.saturating_add(TICK_NS), Ordering::Relaxed);
    NEXT_TICK_SECONDS.store(clock::wall_clock_seconds() + 1, Ordering::Relaxed);
}

#[cold]
#[inline(never)]
fn tick(now_ns: u64) {
    if TICKING.swap(true, Ordering::Acquire) {
        return;
    }
    schedule_next_tick(now_ns);
    load::reload();
    file::upkeep();
    TICKING.store(false, Ordering::Release);
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
    mark_used();
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
    // A vfork child shares our memory: it must not make files as us.
    if !crate::dump::writer::is_owner() || FIRST_CALL.swap(true, Ordering::Acquire) {
        return;
    }
    clock::start();
    crate::dump::enable();
    // The dump buffer and the identity wait for the first dump (most
    // processes never dump) unless a stats file, which carries the
    // identity, is made now: a short process with statistics off pays
    // neither (8 mappings, 4 files of /proc read).
    let _ = active::with_current(|policy| {
        if policy.stats_dir.is_some() {
            origin::gather();
        }
        if let (Some(dir), Some(settings)) = (&policy.stats_dir, settings::get()) {
            let exe_name = settings.exe().file_name().map_or(&b"unknown"[..], |name| {
                std::os::unix::ffi::OsStrExt::as_bytes(name)
            });
            file::create(dir, policy.stats_dir_configured, exe_name);
        }
    });
    schedule_next_tick(clock::monotonic_ns());
    let _ = STATE.compare_exchange(READY, RECORDING, Ordering::AcqRel, Ordering::Acquire);
    FIRST_CALL.store(false, Ordering::Release);
}

/// Start-up, kept to what cannot wait: the dump signal. With no policy file
/// it takes the built-in signal; with one, it reads the file on the stack
/// and a quick scan finds the signal. Only when the scan is unsure (or the
/// file is large) is the policy parsed now rather than on the first call.
/// Allocates nothing otherwise; `tests/startup.rs` holds it to this.
#[cold]
#[inline(never)]
#[link_section = ".text.startup"]
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
        crate::sys::fork::in_child_after_fork(after_fork_in_child);
        let signal = match settings::policy_path() {
            None => Some(DumpConfig::default().signal),
            // The signal is all start-up needs from the file; when a quick
            // scan is sure of it, the full parse waits for the first call.
            Some(path) => load::scanned_signal(path),
        };
        let signal = signal.unwrap_or_else(|| {
            mark_used();
            load::load_initial();
            active::with_current(|policy| policy.signal).unwrap_or(DumpConfig::default().signal)
        });
        if let Some(number) = signal.number() {
            crate::dump::signals::install(number);
        }
    });
    STATE.store(READY, Ordering::Release);
}

fn mark_used() {
    if !USED.load(Ordering::Relaxed) {
        USED.store(true, Ordering::Relaxed);
    }
}

/// In a forked child: statistics, budgets and dump state start afresh, and
/// its first call makes its own stats file.
/// (Every reset here stores only what changed: `store_if_changed`.)
extern "C" fn after_fork_in_child() {
    crate::dump::after_fork_in_child();
    file::after_fork_in_child();
    if !USED.load(Ordering::Relaxed) {
        return;
    }
    clock::after_fork_in_child();
    counters::reset_in_child();
    origin::after_fork_in_child();
    store_if_changed!(TICKING, false);
    store_if_changed!(FIRST_CALL, false);
    if STATE.load(Ordering::Acquire) == RECORDING {
        let _ = STATE.compare_exchange(RECORDING, READY, Ordering::AcqRel, Ordering::Acquire);
    }
    limiter::reset();
    active::after_fork_in_child();
    load::after_fork_in_child();
}
