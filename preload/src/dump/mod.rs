//! Dumps and the dump signal: writing this process's dump file (from the
//! signal handler and at exit), and sharing the dump signal with the
//! program's own use of it.

pub mod signals;
pub mod writer;

pub use writer::{after_fork_in_child, at_exit, enable, remember_owner};
