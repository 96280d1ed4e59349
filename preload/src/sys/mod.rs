//! System wrappers for code that runs inside the host process: `errno`,
//! cancellation, I/O into stack buffers, stderr lines, directories opened
//! without trusting them, the path behind a descriptor, the clock, and the
//! next definitions of the functions we intercept. Nothing here allocates
//! from the program's heap or takes a lock; everything is async-signal-safe.
//! The bottom layer: it imports nothing else of the library.

pub mod cancel;
pub mod clock;
pub mod elf;
pub mod errno;
pub mod fdpath;
pub mod fork;
pub mod io;
pub mod loader;
pub mod modules;
pub mod raw;
pub mod real;
pub mod safedir;
pub mod stderr;

pub use cancel::NoCancel;
pub use errno::{errno, set_errno, ErrnoGuard};
pub use stderr::warn;
