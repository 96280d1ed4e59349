//! Standard output for a tool whose output is often piped into `head`: a
//! closed pipe ends the program quietly with success instead of a panic.

use std::io::{self, Write};

/// Restores the default SIGPIPE action, so that writing to a closed pipe
/// ends the process quietly, as it does for other Unix tools.
pub fn quiet_broken_pipe() {
    // SAFETY: setting a signal's disposition to SIG_DFL at start-up, before
    // any thread exists, has no memory-safety requirement.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Writes `bytes` to stdout; a closed pipe is not an error.
pub fn print(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
