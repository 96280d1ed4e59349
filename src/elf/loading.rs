//! What an ELF file tells about loading `libfadvise_shim.so` with it: its
//! machine, its loader (`PT_INTERP`), the libraries it needs and where it
//! looks for them, the functions it imports, whether it is a Go program, and
//! the symbol versions it needs (`.gnu.version_r`) and defines
//! (`.gnu.version_d`, e.g. every `GLIBC_2.x` of a `libc.so.6`), and which
//! symbols it must find and which it exports (musl ignores versions: a
//! library loads there when every non-weak import is exported). `doctor`
//! reads programs with it, `install` an image's loader and libc.

use std::collections::BTreeSet;
use std::path::Path;

use object::elf;
use object::read::elf::{Dyn, ElfFile, FileHeader, ProgramHeader};
use object::{Architecture, Endianness, Object, ObjectSymbol};

use super::{parse, Elf};

/// What one ELF file says.
pub struct ElfFacts {
    pub architecture: Architecture,
    /// 32 or 64.
    pub bits: u8,
    /// `PT_INTERP`: the loader's path; `None` for a static program.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` entries, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, else `DT_RPATH`, split at `:` (`$ORIGIN` unexpanded).
    pub search_path: Vec<String>,
    /// Names of undefined dynamic symbols (imports), without versions.
    pub imports: BTreeSet<String>,
    /// The imports that are not weak: loading fails when one is missing.
    pub required_imports: BTreeSet<String>,
    /// Names of the dynamic symbols this file defines.
    pub exports: BTreeSet<String>,
    /// Go's runtime makes system calls itself, bypassing libc.
    pub is_go: bool,
    /// For each needed file, the version names required from it.
    pub version_needs: Vec<(String, Vec<String>)>,
    /// The version names this file defines.
    pub version_definitions: Vec<String>,
}

/// Reads the facts from the bytes of an ELF file.
pub fn read_facts(bytes: &[u8]) -> Result<ElfFacts, String> {
    let facts = parse(bytes).and_then(|file| {
        match file {
            Elf::Elf32(file) => facts_of(&file, 32),
            Elf::Elf64(file) => facts_of(&file, 64),
        }
        .map_err(|error| error.to_string())
    });
    facts.map_err(|error| format!("not a readable ELF file: {error}"))
}

fn facts_of<'data, Elf>(file: &ElfFile<'data, Elf>, bits: u8) -> object::Result<ElfFacts>
where
    Elf: FileHeader<Endian = Endianness>,
{
    let (endian, data) = (file.endian(), file.data());
    let mut interpreter = None;
    for header in file.elf_program_headers() {
        if let Some(path) = header.interpreter(endian, data)? {
            interpreter = Some(String::from_utf8_lossy(path).into_owned());
        }
    }
    let mut needed = Vec::new();
    let (mut runpath, mut rpath) = (Vec::new(), Vec::new());
    let sections = file.elf_section_table();
    if let Some((entries, strings_index)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, strings_index)?;
        for entry in entries {
            let list = match entry.tag32(endian) {
                Some(elf::DT_NEEDED) => &mut needed,
                Some(elf::DT_RUNPATH) => &mut runpath,
                Some(elf::DT_RPATH) => &mut rpath,
                _ => continue,
            };
            list.push(String::from_utf8_lossy(entry.string(endian, strings)?).into_owned());
        }
    }
    // The loader ignores DT_RPATH when DT_RUNPATH is present.
    let search_path = if runpath.is_empty() { rpath } else { runpath };
    let (mut imports, mut required_imports, mut exports) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for symbol in file.dynamic_symbols() {
        let Some(name) = symbol.name().ok().filter(|name| !name.is_empty()) else {
            continue;
        };
        if !symbol.is_undefined() {
            exports.insert(name.to_string());
            continue;
        }
        if !symbol.is_weak() {
            required_imports.insert(name.to_string());
        }
        imports.insert(name.to_string());
    }
    let (version_needs, version_definitions) = versions(file)?;
    let is_go = file.section_by_name(".go.buildinfo").is_some()
        || file
            .symbols()
            .any(|symbol| symbol.name() == Ok("runtime.main"));
    Ok(ElfFacts {
        architecture: file.architecture(),
        bits,
        interpreter,
        needed,
        search_path: search_path
            .iter()
            .flat_map(|list| list.split(':'))
            .filter(|dir| !dir.is_empty())
            .map(str::to_string)
            .collect(),
        imports,
        required_imports,
        exports,
        is_go,
        version_needs,
        version_definitions,
    })
}

type Versions = (Vec<(String, Vec<String>)>, Vec<String>);

/// The symbol versions `file` needs, per library, and those it defines.
fn versions<Elf>(file: &ElfFile<'_, Elf>) -> object::Result<Versions>
where
    Elf: FileHeader<Endian = Endianness>,
{
    let (endian, data) = (file.endian(), file.data());
    let sections = file.elf_section_table();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let mut needs = Vec::new();
    if let Some((mut files, strings_index)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, strings_index)?;
        while let Some((need, mut versions)) = files.next()? {
            let mut names = Vec::new();
            while let Some(version) = versions.next()? {
                names.push(text(version.name(endian, strings)?));
            }
            needs.push((text(need.file(endian, strings)?), names));
        }
    }
    let mut definitions = Vec::new();
    if let Some((mut defined, strings_index)) = sections.gnu_verdef(endian, data)? {
        let strings = sections.strings(endian, data, strings_index)?;
        while let Some((_, mut names)) = defined.next()? {
            // The first auxiliary entry is the version's own name; the
            // others are the versions it inherits from.
            if let Some(name) = names.next()? {
                definitions.push(text(name.name(endian, strings)?));
            }
        }
    }
    Ok((needs, definitions))
}

/// The architecture this tool (and so the library next to it) was built for.
pub fn host_architecture() -> Option<Architecture> {
    if cfg!(target_arch = "x86_64") {
        Some(Architecture::X86_64)
    } else if cfg!(target_arch = "aarch64") {
        Some(Architecture::Aarch64)
    } else {
        None
    }
}

/// The C library a loader path belongs to, from its file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loader {
    Glibc,
    Musl,
    Unknown,
}

impl Loader {
    pub fn of(interpreter: &str) -> Loader {
        let name = Path::new(interpreter)
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        if name.starts_with("ld-musl-") {
            Loader::Musl
        } else if name.starts_with("ld-linux") || name.starts_with("ld64.so") {
            Loader::Glibc
        } else {
            Loader::Unknown
        }
    }
}

/// musl's file naming its library directories for the loader at
/// `interpreter`: `/etc/ld-musl-x86_64.path` for `/lib/ld-musl-x86_64.so.1`.
pub fn musl_path_file(interpreter: &str) -> String {
    let name = Path::new(interpreter)
        .file_name()
        .map(|name| name.to_string_lossy().replace(".so.1", ".path"))
        .unwrap_or_default();
    format!("/etc/{name}")
}

/// musl's library directories, given the text of its path file (entries
/// separated by newlines or `:`; empty or missing: the built-in default).
pub fn musl_search_path(path_file: &str) -> Vec<String> {
    let dirs: Vec<String> = path_file
        .split(['\n', ':'])
        .map(str::trim)
        .filter(|dir| dir.starts_with('/'))
        .map(str::to_string)
        .collect();
    if dirs.is_empty() {
        ["/lib", "/usr/local/lib", "/usr/lib"]
            .map(String::from)
            .to_vec()
    } else {
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaders_are_told_apart_by_file_name() {
        assert_eq!(Loader::of("/lib64/ld-linux-x86-64.so.2"), Loader::Glibc);
        assert_eq!(Loader::of("/lib/ld-musl-x86_64.so.1"), Loader::Musl);
        assert_eq!(Loader::of("/system/bin/linker64"), Loader::Unknown);
    }

    #[test]
    fn this_test_binary_is_a_dynamic_glibc_program() {
        let bytes = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(crate::elf::is_elf(&bytes));
        let facts = read_facts(&bytes).unwrap();
        let interpreter = facts.interpreter.expect("dynamic");
        assert_eq!(Loader::of(&interpreter), Loader::Glibc);
        assert!(facts.needed.iter().any(|name| name.starts_with("libc.so")));
        assert!(!facts.is_go);
        assert_eq!(Some(facts.architecture), host_architecture());
    }

    #[test]
    fn this_test_binary_needs_glibc_versions_its_libc_defines() {
        let program =
            read_facts(&std::fs::read(std::env::current_exe().unwrap()).unwrap()).unwrap();
        let (_, needs) = program
            .version_needs
            .iter()
            .find(|(file, _)| file == "libc.so.6")
            .expect("needs versions from libc.so.6");
        let libc_path = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("a Debian libc.so.6");
        let libc = read_facts(&std::fs::read(libc_path).unwrap()).unwrap();
        assert!(needs
            .iter()
            .all(|version| libc.version_definitions.contains(version)));
        assert!(libc
            .version_definitions
            .iter()
            .any(|name| name == "GLIBC_2.2.5" || name == "GLIBC_2.17"));
    }

    #[test]
    fn musl_reads_its_path_file_or_uses_its_default() {
        assert_eq!(
            musl_path_file("/lib/ld-musl-x86_64.so.1"),
            "/etc/ld-musl-x86_64.path"
        );
        assert_eq!(musl_search_path(""), ["/lib", "/usr/local/lib", "/usr/lib"]);
        assert_eq!(
            musl_search_path("/opt/lib\n/lib:/usr/lib\n"),
            ["/opt/lib", "/lib", "/usr/lib"]
        );
    }

    #[test]
    fn other_bytes_are_not_elf() {
        assert!(!crate::elf::is_elf(b"#!/bin/sh\n"));
        assert!(read_facts(b"#!/bin/sh\n").is_err());
    }
}
