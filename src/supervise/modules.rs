//! The calling module of a supervised call, for `caller` rules: the file
//! mapped where the system call instruction lies. The kernel gives the
//! address of the instruction after it (`seccomp_data.instruction_pointer`);
//! the byte before is the instruction's own, looked up in the process's
//! `/proc/PID/maps` among its file-backed mappings. So a static program's
//! calls (and a Go program's) come from its executable, a glibc program's
//! from `libc.so.6` — not from the code that called libc, as the preload
//! library reports them — and code the program wrote into anonymous memory
//! (a JIT) comes from no module: `caller` rules do not match it.
//!
//! Each process's file-backed mappings are read once and kept; an address
//! they do not hold reads them again (a library loaded since), and an
//! `exec` empties them. A library unloaded and another loaded at the very
//! same addresses within one process image keeps the first one's name
//! until an address misses.

use std::path::PathBuf;

use super::paths::{as_file_path, mappings};

/// One process's file-backed mappings, as last read.
#[derive(Default)]
pub struct Modules {
    mappings: Vec<(std::ops::Range<u64>, PathBuf)>,
}

impl Modules {
    /// The module holding the system call instruction that ends just
    /// before `instruction_pointer` in process `tgid`, if any.
    pub fn caller(&mut self, tgid: u32, instruction_pointer: u64) -> Option<PathBuf> {
        let address = instruction_pointer.checked_sub(1)?;
        if let Some(module) = self.find(address) {
            return Some(module);
        }
        self.read(tgid);
        self.find(address)
    }

    /// Forgets every mapping: the process image was replaced.
    pub fn forget(&mut self) {
        self.mappings.clear();
    }

    fn find(&self, address: u64) -> Option<PathBuf> {
        self.mappings
            .iter()
            .find(|(range, _)| range.contains(&address))
            .map(|(_, path)| path.clone())
    }

    fn read(&mut self, tgid: u32) {
        let Ok(maps) = std::fs::read(format!("/proc/{tgid}/maps")) else {
            self.mappings.clear();
            return;
        };
        self.mappings = mappings(&maps)
            .filter_map(|mapping| Some((mapping.range, as_file_path(mapping.name)?)))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test's own code lies in its executable; a stack address in no
    /// file; a libc function in a file (libc, or the executable if static).
    #[test]
    fn an_address_is_found_in_the_file_mapped_there() {
        let tgid = std::process::id();
        let mut modules = Modules::default();
        let here = an_address_is_found_in_the_file_mapped_there as *const () as u64;
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(modules.caller(tgid, here + 1), Some(exe));
        let local = 0u8;
        assert_eq!(modules.caller(tgid, &local as *const u8 as u64 + 1), None);
        let getpid = libc::getpid as *const () as u64;
        assert!(modules.caller(tgid, getpid + 1).is_some());
        assert_eq!(modules.caller(tgid, 0), None);
    }
}
