//! This thread's signal mask, for the one place that blocks signals: the
//! heap's scratch window (`heap/scratch.rs`), so that no handler on the
//! thread that opened it allocates there. `pthread_sigmask`, through libc.

/// Blocks every signal (glibc leaves out those it needs itself:
/// cancellation, setxid); the mask before, to give back to `restore`, or
/// `None` if nothing changed.
pub fn block_all() -> Option<libc::sigset_t> {
    // SAFETY: a sigset_t is plain bits; all-zero is a valid value.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: every bit set is every signal, still a valid set.
    unsafe { std::ptr::write_bytes(&mut all, 0xff, 1) };
    // SAFETY: both sets are valid, initialised sigset_t values.
    (unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous) } == 0)
        .then_some(previous)
}

/// Puts back a mask that `block_all` returned.
pub fn restore(mask: &libc::sigset_t) {
    // SAFETY: a valid mask; the previous one is not asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, mask, std::ptr::null_mut()) };
}
