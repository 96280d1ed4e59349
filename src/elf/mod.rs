//! Reading ELF files, for every command that needs one: what loading the
//! shim into a program depends on (`loading`: `doctor`, `install`) and what
//! naming its call sites needs (`symbols`: `symbolize`).
//!
//! Both go through one parser, `parse`, over any data `object` reads: a
//! whole file in memory or a cache of the ranges the parser asks for, so a
//! file of either class is taken apart the same way whoever asks. Only the
//! file is read; nothing is executed (unlike `ldd`, which runs the loader
//! and must never be pointed at a setuid program).

mod loading;
mod symbols;

use object::elf::ELFMAG;
use object::read::elf::{ElfFile32, ElfFile64};
use object::{Endianness, ReadRef};

pub use loading::{
    host_architecture, musl_path_file, musl_search_path, read_facts, ElfFacts, Loader,
};
pub use symbols::{read_symbols, Binding, ElfSymbols, Symbol};

/// An ELF file of either class.
pub enum Elf<'data, R: ReadRef<'data>> {
    Elf32(ElfFile32<'data, Endianness, R>),
    Elf64(ElfFile64<'data, Endianness, R>),
}

/// Whether `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&ELFMAG)
}

/// Parses `data` as an ELF file; the error is `object`'s own words.
pub fn parse<'data, R: ReadRef<'data>>(data: R) -> Result<Elf<'data, R>, String> {
    match object::File::parse(data) {
        Ok(object::File::Elf32(file)) => Ok(Elf::Elf32(file)),
        Ok(object::File::Elf64(file)) => Ok(Elf::Elf64(file)),
        // We build `object` with its ELF format only, but its `File` may
        // hold others should a dependency ask for them.
        Ok(_) => Err("another object format".into()),
        Err(error) => Err(error.to_string()),
    }
}
