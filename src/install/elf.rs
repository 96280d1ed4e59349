//! What the loader check needs from an ELF file: its machine, its loader
//! (`PT_INTERP`), the libraries it needs, the symbol versions it needs from
//! each (`.gnu.version_r`) and the versions it defines (`.gnu.version_d`,
//! e.g. every `GLIBC_2.x` of a `libc.so.6`). Only the bytes are read.

use object::elf;
use object::read::elf::{Dyn, ElfFile, ElfFile32, ElfFile64, FileHeader, ProgramHeader};
use object::{Architecture, Endianness, Object};

pub struct ElfInfo {
    pub architecture: Architecture,
    /// 32 or 64.
    pub bits: u8,
    pub interpreter: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// For each needed file, the version names required from it.
    pub version_needs: Vec<(String, Vec<String>)>,
    pub version_definitions: Vec<String>,
}

/// Reads `bytes` as an ELF file; `None` if they are not one.
pub fn read(bytes: &[u8]) -> Option<ElfInfo> {
    if !bytes.starts_with(&elf::ELFMAG) {
        return None;
    }
    // e_ident[EI_CLASS], the byte after the magic, tells 32 from 64 bits.
    let info = if bytes.get(4) == Some(&elf::ELFCLASS32) {
        ElfFile32::<Endianness>::parse(bytes).and_then(|file| info_of(&file, 32))
    } else {
        ElfFile64::<Endianness>::parse(bytes).and_then(|file| info_of(&file, 64))
    };
    info.ok()
}

fn info_of<Elf>(file: &ElfFile<'_, Elf>, bits: u8) -> object::Result<ElfInfo>
where
    Elf: FileHeader<Endian = Endianness>,
{
    let (endian, data) = (file.endian(), file.data());
    let mut interpreter = None;
    for header in file.elf_program_headers() {
        if let Some(path) = header.interpreter(endian, data)? {
            interpreter = Some(text(path));
        }
    }
    let sections = file.elf_section_table();
    let mut needed = Vec::new();
    if let Some((entries, strings_index)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, strings_index)?;
        for entry in entries {
            if entry.tag32(endian) == Some(elf::DT_NEEDED) {
                needed.push(text(entry.string(endian, strings)?));
            }
        }
    }
    let mut version_needs = Vec::new();
    if let Some((mut files, strings_index)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, strings_index)?;
        while let Some((need, mut versions)) = files.next()? {
            let mut names = Vec::new();
            while let Some(version) = versions.next()? {
                names.push(text(version.name(endian, strings)?));
            }
            version_needs.push((text(need.file(endian, strings)?), names));
        }
    }
    let mut version_definitions = Vec::new();
    if let Some((mut definitions, strings_index)) = sections.gnu_verdef(endian, data)? {
        let strings = sections.strings(endian, data, strings_index)?;
        while let Some((_, mut names)) = definitions.next()? {
            // The first auxiliary entry is the version's own name; the
            // others are the versions it inherits from.
            if let Some(name) = names.next()? {
                version_definitions.push(text(name.name(endian, strings)?));
            }
        }
    }
    Ok(ElfInfo {
        architecture: file.architecture(),
        bits,
        interpreter,
        needed,
        version_needs,
        version_definitions,
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_needs_glibc_versions_its_libc_defines() {
        let program = read(&std::fs::read(std::env::current_exe().unwrap()).unwrap()).unwrap();
        assert!(program.interpreter.unwrap().contains("ld-linux"));
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
        let libc = read(&std::fs::read(libc_path).unwrap()).unwrap();
        assert!(needs
            .iter()
            .all(|version| libc.version_definitions.contains(version)));
        assert!(libc
            .version_definitions
            .iter()
            .any(|name| name == "GLIBC_2.2.5" || name == "GLIBC_2.17"));
    }

    #[test]
    fn other_bytes_are_not_elf() {
        assert!(read(b"#!/bin/sh\n").is_none());
    }
}
