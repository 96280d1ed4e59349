//! How a command fails: one message, printed by `main` as
//! `fadvise-shim: <message>` with exit status 1.

use std::process::ExitCode;

/// A failure to report on stderr as `fadvise-shim: <message>`, exit 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure(error.to_string())
    }
}

/// What a command returns: its exit code, or a failure to report.
pub type Outcome = Result<ExitCode, Failure>;
