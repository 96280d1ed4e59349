//! What naming call sites needs from one ELF file: its function symbols
//! (`.symtab` and `.dynsym`), its code sections, its GNU build id and its
//! `.gnu_debuglink`. `symbolize` reads modules and debug files with it.
//!
//! The file is read through a cache of the ranges the parser asks for, not
//! loaded whole: a separate debug file can be hundreds of megabytes of DWARF
//! of which only the symbol table is wanted.

use std::fs::OpenOptions;
use std::io;
use std::ops::Range;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use object::read::ReadCache;
use object::{Object, ObjectSection, ObjectSymbol, SectionFlags, SymbolKind, SymbolSection};

use super::{parse, Elf};

/// One function symbol (`STT_FUNC` or `STT_GNU_IFUNC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    pub start: u64,
    pub size: u64,
    /// The linkage (mangled) name.
    pub name: Box<str>,
    pub binding: Binding,
}

/// Ordered from least to most preferred when several symbols share an
/// address and are otherwise alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Binding {
    Local,
    Weak,
    Global,
}

/// What one ELF file says about its functions.
pub struct ElfSymbols {
    /// Functions from `.symtab`; empty when the file is stripped.
    pub symtab: Vec<Symbol>,
    /// Exported functions from `.dynsym`.
    pub dynsym: Vec<Symbol>,
    /// Address ranges of the allocated, executable sections.
    pub code: Vec<Range<u64>>,
    pub build_id: Option<Vec<u8>>,
    /// The debug file's name and the CRC-32 of its contents.
    pub debuglink: Option<(String, u32)>,
}

/// Reads `path`, or says in a few words why it cannot be named from.
pub fn read_symbols(path: &Path) -> Result<ElfSymbols, String> {
    let cannot = |why: String| format!("cannot read {}: {why}", path.display());
    // Not blocking: opening a FIFO for reading would wait for a writer.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| cannot(describe(&error)))?;
    let metadata = file.metadata().map_err(|error| cannot(describe(&error)))?;
    if !metadata.is_file() {
        return Err(cannot("not a regular file".into()));
    }
    let cache = ReadCache::new(file);
    let elf = parse(&cache).map_err(|error| cannot(format!("not an ELF file ({error})")))?;
    Ok(match elf {
        Elf::Elf32(file) => symbols_of(&file),
        Elf::Elf64(file) => symbols_of(&file),
    })
}

fn symbols_of<'data>(object: &impl Object<'data>) -> ElfSymbols {
    ElfSymbols {
        symtab: functions(object.symbols()),
        dynsym: functions(object.dynamic_symbols()),
        code: object
            .sections()
            .filter(|section| is_code(section.flags()) && section.size() != 0)
            .map(|section| section.address()..section.address().saturating_add(section.size()))
            .collect(),
        // A malformed note or link section only costs that fact.
        build_id: object.build_id().ok().flatten().map(<[u8]>::to_vec),
        debuglink: object
            .gnu_debuglink()
            .ok()
            .flatten()
            .map(|(name, crc)| (String::from_utf8_lossy(name).into_owned(), crc)),
    }
}

/// An I/O error the way `strerror` says it, without Rust's "(os error N)".
fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

/// `SHF_ALLOC | SHF_EXECINSTR`: loaded and executable. Flags rather than
/// section kinds, because a debug file keeps `.text` as `SHT_NOBITS`.
fn is_code(flags: SectionFlags) -> bool {
    let code = u64::from(object::elf::SHF_ALLOC | object::elf::SHF_EXECINSTR);
    matches!(flags, SectionFlags::Elf { sh_flags } if sh_flags & code == code)
}

fn functions<'data, S: ObjectSymbol<'data>>(symbols: impl Iterator<Item = S>) -> Vec<Symbol> {
    symbols
        .filter(|symbol| {
            symbol.kind() == SymbolKind::Text
                && matches!(symbol.section(), SymbolSection::Section(_))
        })
        .filter_map(|symbol| {
            let name = symbol.name_bytes().ok().filter(|name| !name.is_empty())?;
            Some(Symbol {
                start: symbol.address(),
                size: symbol.size(),
                name: String::from_utf8_lossy(name).into(),
                binding: if symbol.is_local() {
                    Binding::Local
                } else if symbol.is_weak() {
                    Binding::Weak
                } else {
                    Binding::Global
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_says_so_like_strerror() {
        let error = read_symbols(Path::new("/nonexistent/libfoo.so"))
            .err()
            .unwrap();
        assert_eq!(
            error,
            "cannot read /nonexistent/libfoo.so: No such file or directory"
        );
    }

    #[test]
    fn a_directory_is_not_a_module() {
        let error = read_symbols(Path::new("/")).err().unwrap();
        assert_eq!(error, "cannot read /: not a regular file");
    }

    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let error = read_symbols(&fifo).err().unwrap();
        assert!(error.ends_with(": not a regular file"), "{error}");
    }

    #[test]
    fn empty_and_garbage_files_are_not_elf() {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in [
            ("empty", &b""[..]),
            ("garbage", &b"\x7fELF\x02\x01\x01garbage"[..]),
            ("text", &b"hello\n"[..]),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let error = read_symbols(&path).err().unwrap();
            assert!(error.contains("not an ELF file"), "{name}: {error}");
        }
    }
}
