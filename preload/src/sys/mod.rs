//! System wrappers for code that runs inside the host process: `errno`,
//! cancellation, owned descriptors and mappings, I/O into stack buffers,
//! names in a directory, stderr lines, directories opened without trusting
//! them, the path behind a descriptor, the clock, and the next definitions
//! of the functions we intercept. Every system call the library makes for
//! itself is made here; code above holds descriptors and mappings as `Fd`
//! and `Mapping`, which close and unmap on drop. Nothing here allocates
//! from the program's heap or takes a lock; everything is async-signal-safe.
//! The bottom layer: it imports nothing else of the library.

pub mod cancel;
pub mod clock;
pub mod dir;
pub mod elf;
pub mod errno;
pub mod fd;
pub mod fdpath;
pub mod fork;
pub mod io;
pub mod loader;
pub mod mapping;
pub mod modules;
pub mod process;
pub mod raw;
pub mod real;
pub mod safedir;
pub mod sigmask;
pub mod stderr;
pub mod time;

pub use cancel::NoCancel;
pub use errno::{errno, set_errno, ErrnoGuard};
pub use fd::Fd;
pub use mapping::Mapping;
pub use stderr::warn;
