//! Loads one module for naming: finds the file the process had mapped (in
//! its root first), checks it is the build that made the calls, and gathers
//! function symbols from it and, when it is stripped, from its debug file.

use std::path::{Path, PathBuf};

use super::debuginfo::{by_build_id, by_debuglink, hex, rooted};
use super::symbols::SymbolTable;
use super::Options;
use crate::elf::{read_symbols, ElfSymbols};

/// A module ready for lookups.
pub(super) struct Module {
    pub table: SymbolTable,
    /// Said of every name from this module: the file is not the build that
    /// made the calls.
    pub caveat: Option<String>,
    /// Why an address in the code has no name.
    pub unnamed: &'static str,
}

/// The module the process saw at `seen`, of build `recorded` when known; an
/// error says why it cannot be read.
pub(super) fn load(
    options: &Options,
    seen: &Path,
    recorded: Option<&[u8]>,
) -> Result<Module, String> {
    let (opened, file) = match open(options, seen, recorded) {
        Ok(found) => found,
        // The module is gone (a container's, a deleted file), but its debug
        // file may be installed here.
        Err(why) => {
            return recorded
                .and_then(|id| by_build_id(options, id))
                .map(from_debug_file)
                .ok_or(why)
        }
    };
    let mut caveat = None;
    if let (Some(recorded), Some(found)) = (recorded, file.build_id.as_deref()) {
        if recorded != found {
            // The debug file of the recorded build still names its calls.
            if let Some(debug) = by_build_id(options, recorded) {
                return Ok(from_debug_file(debug));
            }
            caveat = Some(format!(
                "build id differs: {} was replaced after the calls were made (recorded {}, now {}); the name may be wrong",
                opened.display(),
                hex(recorded),
                hex(found)
            ));
        }
    }
    let stripped = file.symtab.is_empty();
    let debug = stripped
        .then(|| find_debug_file(options, seen, &opened, &file))
        .flatten();
    let unnamed = if stripped && debug.is_none() {
        "no symbol covers it: the module is stripped and no debug file was found"
    } else {
        "no symbol covers it"
    };
    Ok(Module {
        table: table([file].into_iter().chain(debug)),
        caveat,
        unnamed,
    })
}

/// The first readable ELF file among the process's root and the plain path,
/// preferring one of the recorded build.
fn open(
    options: &Options,
    seen: &Path,
    recorded: Option<&[u8]>,
) -> Result<(PathBuf, ElfSymbols), String> {
    let mut errors = Vec::new();
    let mut first_readable = None;
    for candidate in rooted(options, seen) {
        match read_symbols(&candidate) {
            Ok(file) => {
                let same = match (recorded, file.build_id.as_deref()) {
                    (Some(recorded), Some(found)) => recorded == found,
                    _ => true,
                };
                if same {
                    return Ok((candidate, file));
                }
                first_readable.get_or_insert((candidate, file));
            }
            Err(why) => errors.push(why),
        }
    }
    first_readable.ok_or_else(|| errors.join("; "))
}

/// The debug file of the build on disk (which, when it differs from the
/// recorded one, is what gets named, with a caveat).
fn find_debug_file(
    options: &Options,
    seen: &Path,
    opened: &Path,
    file: &ElfSymbols,
) -> Option<ElfSymbols> {
    let build_id = file.build_id.as_deref();
    build_id
        .and_then(|id| by_build_id(options, id))
        .or_else(|| {
            let link = file.debuglink.as_ref()?;
            by_debuglink(options, seen, opened, link, build_id)
        })
}

fn from_debug_file(debug: ElfSymbols) -> Module {
    Module {
        table: table([debug]),
        caveat: None,
        unnamed: "no symbol covers it",
    }
}

/// The functions and code of `files` (a module and its debug file) in one
/// table.
fn table(files: impl IntoIterator<Item = ElfSymbols>) -> SymbolTable {
    let mut symbols = Vec::new();
    let mut code = Vec::new();
    for file in files {
        symbols.extend(file.symtab);
        symbols.extend(file.dynsym);
        code.extend(file.code);
    }
    SymbolTable::new(symbols, code)
}
