//! Names call sites: turns (module, return address, build id), as the
//! library records them, into `libglog.so.1
//! google::LogFileObject::Write(bool, long, char const*, unsigned long)+0x1a3`,
//! in the reader's process, possibly later and outside the container the
//! calls were made in.
//!
//! Names come from ELF symbol tables: `.symtab`, else the exported
//! `.dynsym` plus the `.symtab` of a separate debug file (found by build id
//! or `.gnu_debuglink`, see `debuginfo`), demangled for C++ and Rust. DWARF
//! is not read: a function name and an offset need no line tables, and
//! debug files keep the full symbol table.
//!
//! Naming never fails: what cannot be named is given as module and offset,
//! with the reason (`why_not`), and a name from a file that is not the
//! recorded build says so.
//!
//! # Addresses
//! [`Site::address`] is the return address, as an ELF virtual address in the
//! module (the runtime address minus the module's load bias: what `nm` and
//! `addr2line -e module` use). The function is looked up at `address - 1`,
//! inside the call instruction, so that a call ending a function (to a
//! `noreturn` function) is not taken for the next function. The printed
//! offset is that of the return address itself, as `backtrace_symbols(3)`
//! and GDB print a caller's frame.
//!
//! # Use
//! One [`Symbolizer`] per report, so that each module is read once:
//!
//! ```text
//! let mut symbolizer = Symbolizer::new(Options { root: Some("/proc/PID/root".into()), ..Options::default() });
//! let named = symbolizer.name(&Site { module, address, build_id });
//! println!("{named}"); // libfoo.so bar+0x1c
//! ```

mod debuginfo;
mod demangle;
mod module;
mod symbols;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use module::Module;
use symbols::Found;

/// One call site as recorded.
#[derive(Clone, Copy, Debug)]
pub struct Site<'a> {
    /// The calling module's path as the process saw it (`/proc/PID/maps`);
    /// a trailing ` (deleted)` is allowed.
    pub module: &'a Path,
    /// The return address as an ELF virtual address in the module.
    pub address: u64,
    /// The module's GNU build id, when it has one.
    pub build_id: Option<&'a [u8]>,
}

/// Where to look for modules and debug files.
#[derive(Clone, Debug)]
pub struct Options {
    /// The process's root directory as the reader sees it, e.g.
    /// `/proc/PID/root` for a process in a container: modules and debug
    /// directories are looked for under it first, then at their plain paths.
    pub root: Option<PathBuf>,
    /// Directories of separate debug files, in the order tried.
    pub debug_dirs: Vec<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: None,
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
        }
    }
}

/// Names call sites, reading each module (path and build id) once.
pub struct Symbolizer {
    options: Options,
    modules: HashMap<ModuleKey, Result<Module, String>>,
}

/// A module as the process saw it: its path and recorded build id.
type ModuleKey = (PathBuf, Option<Vec<u8>>);

/// A named call site.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The module's file name.
    pub module: String,
    /// The demangled function, when a symbol covers the call.
    pub function: Option<String>,
    /// From the function's start when there is a function, else from the
    /// module's start (the address itself).
    pub offset: u64,
    /// Why there is no function, or why it may be wrong.
    pub why_not: Option<String>,
}

impl Symbolizer {
    pub fn new(options: Options) -> Self {
        Symbolizer {
            options,
            modules: HashMap::new(),
        }
    }

    /// Names `site`; see the module documentation for the address
    /// convention.
    pub fn name(&mut self, site: &Site) -> Named {
        let seen = without_deleted(site.module);
        let mut named = Named {
            module: match seen.file_name() {
                Some(name) => name.to_string_lossy().into_owned(),
                None => seen.display().to_string(),
            },
            function: None,
            offset: site.address,
            why_not: None,
        };
        // An empty build id is none (a writer with nothing to record).
        let build_id = site.build_id.filter(|id| !id.is_empty());
        let key = (seen.to_path_buf(), build_id.map(<[u8]>::to_vec));
        let options = &self.options;
        let module = match self
            .modules
            .entry(key)
            .or_insert_with(|| module::load(options, seen, build_id))
        {
            Ok(module) => module,
            Err(why) => {
                named.why_not = Some(why.clone());
                return named;
            }
        };
        let Some(call) = site.address.checked_sub(1) else {
            named.why_not = Some("0x0 is not a return address".into());
            return named;
        };
        let reason = match module.table.find(call) {
            Found::Function(symbol) => {
                named.function = Some(demangle::demangle(&symbol.name));
                named.offset = site.address - symbol.start;
                None
            }
            Found::Unnamed => Some(module.unnamed.to_owned()),
            Found::NotCode => Some(format!("{:#x} is outside the module's code", site.address)),
        };
        named.why_not = match (reason, &module.caveat) {
            (Some(reason), Some(caveat)) => Some(format!("{reason}; {caveat}")),
            (reason, caveat) => reason.or_else(|| caveat.clone()),
        };
        named
    }
}

impl fmt::Display for Named {
    /// `libfoo.so bar+0x1c`, or `libfoo.so+0x11c2` without a function, then
    /// ` (why not)` when there is a reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(function) => write!(f, "{} {function}+{:#x}", self.module, self.offset)?,
            None => write!(f, "{}+{:#x}", self.module, self.offset)?,
        }
        match &self.why_not {
            Some(why) => write!(f, " ({why})"),
            None => Ok(()),
        }
    }
}

/// The path the file had: `/proc/PID/maps` appends ` (deleted)` once the
/// file is unlinked.
fn without_deleted(path: &Path) -> &Path {
    path.to_str()
        .and_then(|text| text.strip_suffix(" (deleted)"))
        .map_or(path, Path::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(function: Option<&str>, offset: u64, why_not: Option<&str>) -> Named {
        Named {
            module: "libfoo.so".into(),
            function: function.map(Into::into),
            offset,
            why_not: why_not.map(Into::into),
        }
    }

    #[test]
    fn display_gives_module_function_and_offset() {
        assert_eq!(
            named(Some("bar"), 0x1c, None).to_string(),
            "libfoo.so bar+0x1c"
        );
        assert_eq!(
            named(
                None,
                0x11c2,
                Some("cannot read /x/libfoo.so: No such file or directory")
            )
            .to_string(),
            "libfoo.so+0x11c2 (cannot read /x/libfoo.so: No such file or directory)"
        );
        assert_eq!(
            named(Some("bar"), 0x1c, Some("build id differs")).to_string(),
            "libfoo.so bar+0x1c (build id differs)"
        );
    }

    #[test]
    fn a_deleted_module_is_looked_for_at_its_path() {
        assert_eq!(
            without_deleted(Path::new("/usr/lib/libfoo.so (deleted)")),
            Path::new("/usr/lib/libfoo.so")
        );
        assert_eq!(
            without_deleted(Path::new("/usr/lib/libfoo.so")),
            Path::new("/usr/lib/libfoo.so")
        );
    }

    #[test]
    fn an_unreadable_module_gives_its_name_offset_and_reason() {
        let mut symbolizer = Symbolizer::new(Options::default());
        for module in ["", "/", "/nonexistent/libfoo.so (deleted)"] {
            let named = symbolizer.name(&Site {
                module: Path::new(module),
                address: u64::MAX,
                build_id: Some(&[0xab, 0xcd]),
            });
            assert_eq!(named.function, None, "{module}");
            assert_eq!(named.offset, u64::MAX);
            assert!(named.why_not.is_some(), "{module}");
        }
    }
}
