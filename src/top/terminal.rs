//! The terminal while `top` runs: its size, keys without Enter, the
//! alternate screen, and putting everything back on every way out.
//!
//! `Session::start` saves the terminal's modes, turns off canonical input
//! and echo (keys arrive one by one, unseen) and the suspend key (a
//! stopped `top` would leave the shell in our modes), and switches to the
//! alternate screen with the cursor hidden. Dropping the session undoes all
//! of it, so a return, an error or a panic restores the terminal. SIGINT,
//! SIGTERM and SIGHUP only set a flag (no `SA_RESTART`, so the wait in
//! `next_event` ends at once); the main loop then returns normally and the
//! drop runs. `ISIG` stays on, so Ctrl-C is SIGINT as everywhere else.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Instant;

/// The signal that asked us to stop, or 0.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
/// Set when the window changed size: redraw now.
static RESIZED: AtomicBool = AtomicBool::new(false);

/// Rows and columns of the terminal on `fd`, or 24×80 when it is not one.
pub fn size(fd: libc::c_int) -> (usize, usize) {
    // SAFETY: `winsize` is plain data; all-zero is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which
    // points to one that outlives the call.
    let known = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    if known && size.ws_row > 0 && size.ws_col > 0 {
        (usize::from(size.ws_row), usize::from(size.ws_col))
    } else {
        (24, 80)
    }
}

pub fn is_terminal(fd: libc::c_int) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// What ended a wait.
pub enum Event {
    /// The deadline passed.
    Tick,
    /// The window changed size.
    Resized,
    /// `q` was pressed or a stop signal came, with its number (0 for `q`).
    Quit(libc::c_int),
}

/// The terminal in `top`'s modes, until dropped.
pub struct Session {
    /// The modes of stdin before we changed them, if stdin is a terminal.
    saved: Option<libc::termios>,
}

impl Session {
    pub fn start() -> io::Result<Session> {
        catch_signals();
        let saved = if is_terminal(libc::STDIN_FILENO) {
            // SAFETY: `termios` is plain data; tcgetattr fills it in.
            let mut modes: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: a valid descriptor and a `termios` to write to.
            if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut modes) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut ours = modes;
            ours.c_lflag &= !(libc::ICANON | libc::ECHO);
            ours.c_cc[libc::VMIN] = 0;
            ours.c_cc[libc::VTIME] = 0;
            ours.c_cc[libc::VSUSP] = libc::_POSIX_VDISABLE;
            // SAFETY: a valid descriptor and modes derived from its own.
            if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &ours) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Some(modes)
        } else {
            None
        };
        let session = Session { saved };
        // Alternate screen, cursor hidden.
        write_all(b"\x1b[?1049h\x1b[?25l")?;
        Ok(session)
    }

    /// Replaces the screen with `lines`: each drawn from the top-left over
    /// the last screen and cleared to its end, the rest cleared below, so
    /// a redraw does not flicker.
    pub fn draw(&self, lines: &[String]) -> io::Result<()> {
        let mut screen = String::from("\x1b[H");
        for line in lines {
            screen.push_str(line);
            screen.push_str("\x1b[K\r\n");
        }
        screen.push_str("\x1b[J");
        write_all(screen.as_bytes())
    }

    /// Waits until `deadline` for a key, a resize or a stop signal.
    pub fn next_event(&self, deadline: Instant) -> Event {
        loop {
            let stop = STOP_SIGNAL.load(Ordering::SeqCst);
            if stop != 0 {
                return Event::Quit(stop);
            }
            if RESIZED.swap(false, Ordering::SeqCst) {
                return Event::Resized;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Event::Tick;
            }
            let mut watched = libc::pollfd {
                fd: libc::STDIN_FILENO,
                events: libc::POLLIN,
                revents: 0,
            };
            let count = if self.saved.is_some() { 1 } else { 0 };
            let millis = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            // SAFETY: `watched` is one valid pollfd (or none is read).
            let ready = unsafe { libc::poll(&mut watched, count, millis) };
            if ready > 0 && self.pressed_quit() {
                return Event::Quit(0);
            }
        }
    }

    /// Reads the keys waiting; whether one of them is `q`.
    fn pressed_quit(&self) -> bool {
        let mut keys = [0u8; 64];
        // SAFETY: reads at most `keys.len()` bytes into `keys`.
        let read = unsafe { libc::read(libc::STDIN_FILENO, keys.as_mut_ptr().cast(), keys.len()) };
        match usize::try_from(read) {
            // End of input (the terminal hung up) ends `top` too.
            Ok(0) => true,
            Ok(read) => keys[..read].iter().any(|&key| key == b'q' || key == b'Q'),
            Err(_) => false,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Errors are ignored: there is nowhere left to report them, and the
        // modes must be restored even if the screen cannot be.
        let _ = write_all(b"\x1b[?25h\x1b[?1049l");
        if let Some(modes) = &self.saved {
            // SAFETY: a valid descriptor and the modes it had before.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, modes) };
        }
    }
}

/// After the terminal is restored: a SIGTERM or SIGHUP is delivered again
/// with its default action, so whoever sent it sees us die of it (SIGINT
/// and `q` are the normal ways to quit and exit 0).
pub fn die_of(signal: libc::c_int) {
    if signal == libc::SIGTERM || signal == libc::SIGHUP {
        // SAFETY: restoring a default disposition and raising a signal
        // have no memory-safety requirements.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

fn write_all(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

extern "C" fn on_stop(signal: libc::c_int) {
    STOP_SIGNAL.store(signal, Ordering::SeqCst);
}

extern "C" fn on_resize(_signal: libc::c_int) {
    RESIZED.store(true, Ordering::SeqCst);
}

fn catch_signals() {
    let stop = on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let resize = on_resize as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for (signal, handler) in [
        (libc::SIGINT, stop),
        (libc::SIGTERM, stop),
        (libc::SIGHUP, stop),
        (libc::SIGWINCH, resize),
    ] {
        // SAFETY: `sigaction` is plain data; the handlers only store to
        // atomics, which is async-signal-safe. No SA_RESTART: a signal
        // ends the `poll` in `next_event`.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}
