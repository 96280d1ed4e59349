//! The dump signal, shared with the program.
//!
//! The shim's handler is what the kernel runs for the dump signal; what the
//! program set (with `sigaction`, `signal`, `bsd_signal` or `sysv_signal` —
//! glibc's `signal` does not go through the exported `sigaction`, so each is
//! caught) is kept here and reported back exactly, and the program's handler
//! runs after every dump. `SIG_IGN` is handed to the kernel as it is, so a
//! program that ignores the signal (or was started with it ignored) behaves
//! as without the shim. Other signals go straight to libc.

#![allow(clippy::missing_safety_doc)]

use std::mem;
use std::ptr;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use libc::{c_int, c_void, sighandler_t, siginfo_t, SIG_DFL, SIG_ERR, SIG_IGN};

use crate::sys::real::real;
use crate::sys::ErrnoGuard;

// Resolved at start-up in the hook table's list (`hooks::exports`, `also
// resolved`).
real!(
    REAL_SIGACTION,
    c"sigaction",
    fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int
);
real!(
    REAL_SIGNAL,
    c"signal",
    fn(c_int, sighandler_t) -> sighandler_t
);
real!(
    REAL_BSD_SIGNAL,
    c"bsd_signal",
    fn(c_int, sighandler_t) -> sighandler_t
);
real!(
    REAL_SYSV_SIGNAL,
    c"sysv_signal",
    fn(c_int, sighandler_t) -> sighandler_t
);

/// The dump signal's number; 0 until installed, or for `none`.
static DUMP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// What the program set for the dump signal: handler (or `SIG_DFL`/`SIG_IGN`)
/// and flags. The mask lives in the kernel, which we give the program's.
static PROGRAM_HANDLER: AtomicUsize = AtomicUsize::new(SIG_DFL);
static PROGRAM_FLAGS: AtomicI32 = AtomicI32::new(0);

/// glibc on x86_64 adds SA_RESTORER to every action it installs, and reports
/// it back; so do we, so that queries read exactly as without the shim.
const RESTORER_ADDED: c_int = if cfg!(target_arch = "x86_64") {
    SA_RESTORER
} else {
    0
};
/// Not exported by the `libc` crate; the kernel's value.
const SA_RESTORER: c_int = 0x0400_0000;

/// Takes over `signal` for dumps, keeping whatever disposition it has now
/// as the program's. A signal ignored at start stays ignored (no dumps).
pub fn install(signal: c_int) {
    let Some(real_sigaction) = REAL_SIGACTION.get() else {
        return;
    };
    // SAFETY: `sigaction` is plain data; all-zero is a valid value.
    let mut current: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: the real `sigaction`, asked only for the current action into
    // a valid out-pointer; a bad signal number only makes it fail.
    if unsafe { real_sigaction(signal, ptr::null(), &mut current) } != 0 {
        return;
    }
    PROGRAM_HANDLER.store(current.sa_sigaction, Ordering::SeqCst);
    PROGRAM_FLAGS.store(current.sa_flags, Ordering::SeqCst);
    DUMP_SIGNAL.store(signal, Ordering::SeqCst);
    if current.sa_sigaction != SIG_IGN {
        let flags = if current.sa_sigaction == SIG_DFL {
            libc::SA_RESTART
        } else {
            current.sa_flags
        };
        install_ours(real_sigaction, signal, &current, flags);
    }
}

/// Puts our handler in the kernel with the program's mask and flags.
fn install_ours(
    real_sigaction: unsafe extern "C-unwind" fn(
        c_int,
        *const libc::sigaction,
        *mut libc::sigaction,
    ) -> c_int,
    signal: c_int,
    template: &libc::sigaction,
    flags: c_int,
) -> c_int {
    let mut ours = *template;
    ours.sa_sigaction = on_dump_signal as *const () as usize;
    // SA_RESETHAND stays: after one delivery the kernel resets the signal to
    // SIG_DFL, as the program asked; `on_dump_signal` records that.
    ours.sa_flags = (flags | libc::SA_SIGINFO) & !SA_RESTORER;
    // SAFETY: valid pointers; the real sigaction.
    unsafe { real_sigaction(signal, &ours, ptr::null_mut()) }
}

extern "C" fn on_dump_signal(signal: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let handler = PROGRAM_HANDLER.load(Ordering::SeqCst);
    let flags = PROGRAM_FLAGS.load(Ordering::SeqCst);
    {
        let _errno = ErrnoGuard::save();
        super::writer::on_signal();
    }
    if flags & libc::SA_RESETHAND != 0 {
        PROGRAM_HANDLER.store(SIG_DFL, Ordering::SeqCst);
        PROGRAM_FLAGS.store(0, Ordering::SeqCst);
    }
    if handler == SIG_DFL || handler == SIG_IGN {
        return;
    }
    // SAFETY: the program installed `handler` for this signal with these
    // flags; we call it as the kernel would have.
    unsafe {
        if flags & libc::SA_SIGINFO != 0 {
            let handler: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
                mem::transmute(handler);
            handler(signal, info, context);
        } else {
            let handler: extern "C" fn(c_int) = mem::transmute(handler);
            handler(signal);
        }
    }
}

fn is_dump_signal(signal: c_int) -> bool {
    signal > 0 && signal == DUMP_SIGNAL.load(Ordering::Relaxed)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigaction(
    signal: c_int,
    action: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let Some(real_sigaction) = REAL_SIGACTION.get() else {
        crate::sys::set_errno(libc::ENOSYS);
        return -1;
    };
    if !is_dump_signal(signal) {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real_sigaction(signal, action, old) };
    }
    // SAFETY: `sigaction` is plain data; all-zero is a valid value.
    let mut kernel: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: the real `sigaction`, asked only for the kernel's action into
    // a valid out-pointer.
    if unsafe { real_sigaction(signal, ptr::null(), &mut kernel) } != 0 {
        return -1;
    }
    let previous = (
        PROGRAM_HANDLER.load(Ordering::SeqCst),
        PROGRAM_FLAGS.load(Ordering::SeqCst),
    );
    // SAFETY: a non-null `action` points to the caller's sigaction.
    // Copied: `action` and `old` may be the same struct.
    if let Some(new) = unsafe { action.as_ref() }.copied() {
        // A vfork child shares our memory but not our signal table: its
        // action goes to its own table as it is, and what we remember of
        // the parent's stays the parent's.
        let owner = super::writer::is_owner();
        let result = if !owner || new.sa_sigaction == SIG_IGN {
            // SAFETY: the caller's action, passed on.
            unsafe { real_sigaction(signal, &new, ptr::null_mut()) }
        } else {
            install_ours(real_sigaction, signal, &new, new.sa_flags)
        };
        if result != 0 {
            return result;
        }
        if owner {
            PROGRAM_FLAGS.store(new.sa_flags | RESTORER_ADDED, Ordering::SeqCst);
            PROGRAM_HANDLER.store(new.sa_sigaction, Ordering::SeqCst);
        }
    }
    // SAFETY: a non-null `old` points to the caller's buffer.
    if let Some(old) = unsafe { old.as_mut() } {
        *old = kernel;
        old.sa_sigaction = previous.0;
        old.sa_flags = previous.1;
    }
    0
}

/// `signal`-style calls on the dump signal: the same as `sigaction` with
/// the flags each flavour uses; other signals go to the real function, or,
/// where libc has none (musl has no `sysv_signal`), through `sigaction` as
/// glibc's would.
fn signal_style(
    real: Option<unsafe extern "C-unwind" fn(c_int, sighandler_t) -> sighandler_t>,
    signal: c_int,
    handler: sighandler_t,
    flags: c_int,
    mask_self: bool,
) -> sighandler_t {
    if let (false, Some(real)) = (is_dump_signal(signal), real) {
        // SAFETY: the caller's arguments, passed on.
        return unsafe { real(signal, handler) };
    }
    // SAFETY: `sigaction` is plain data; all-zero is a valid value (the
    // handler, flags and mask are filled in below).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: as above; the kernel fills it.
    let mut old: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = flags;
    // SAFETY: the mask functions are given a mask of ours, and `sigaction`
    // valid pointers to the two values above.
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        if mask_self {
            libc::sigaddset(&mut action.sa_mask, signal);
        }
    }
    // SAFETY: valid pointers to our locals.
    if unsafe { sigaction(signal, &action, &mut old) } != 0 {
        return SIG_ERR;
    }
    old.sa_sigaction
}

/// BSD semantics, as glibc's `signal`: restart, and block the signal while
/// its handler runs.
#[no_mangle]
pub unsafe extern "C-unwind" fn signal(signal: c_int, handler: sighandler_t) -> sighandler_t {
    signal_style(REAL_SIGNAL.get(), signal, handler, libc::SA_RESTART, true)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn bsd_signal(signal: c_int, handler: sighandler_t) -> sighandler_t {
    signal_style(
        REAL_BSD_SIGNAL.get(),
        signal,
        handler,
        libc::SA_RESTART,
        true,
    )
}

/// System V semantics: one-shot, not blocked while it runs.
#[no_mangle]
pub unsafe extern "C-unwind" fn sysv_signal(signal: c_int, handler: sighandler_t) -> sighandler_t {
    signal_style(
        REAL_SYSV_SIGNAL.get(),
        signal,
        handler,
        libc::SA_RESETHAND | libc::SA_NODEFER,
        false,
    )
}
