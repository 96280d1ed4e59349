//! The preload library as the CLI knows it: its file name, and where the
//! installed or built `fadvise-shim` finds it. `run` preloads it, `install`
//! copies it into a root, and `doctor` and `crate::process` look for it by
//! name in programs and processes.

use std::path::{Path, PathBuf};

use crate::Failure;

/// File name of the preload library.
pub const LIBRARY_NAME: &str = "libfadvise_shim.so";

/// Finds the library beside this executable, or where `install` puts it
/// (`/usr/lib/fadvise-shim/` next to `/usr/bin/`).
pub fn locate_library() -> Result<PathBuf, Failure> {
    let executable = std::env::current_exe()
        .map_err(|error| Failure(format!("cannot find my own executable: {error}")))?;
    let directory = executable.parent().unwrap_or(Path::new("/"));
    let candidates = [
        directory.join(LIBRARY_NAME),
        directory.join("../lib/fadvise-shim").join(LIBRARY_NAME),
    ];
    candidates
        .iter()
        .find(|candidate| candidate.is_file())
        .map(|found| found.canonicalize().unwrap_or_else(|_| found.clone()))
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
            Failure(format!(
                "cannot find {LIBRARY_NAME} (looked in {})",
                looked.join(" and ")
            ))
        })
}
