//! A module's function symbols sorted by address, and the lookup that says
//! which function holds an address — or that none does.
//!
//! A stripped library keeps only its exported functions (`.dynsym`), so the
//! nearest symbol below an address inside a static function is some other
//! function. The lookup therefore trusts a symbol only up to its size
//! (`st_size`); a symbol of size 0 (hand-written assembly) is trusted up to
//! the end of the code section it starts in.

use std::ops::Range;

use crate::elf::{Binding, Symbol};

/// The function symbols of a module and its code sections' address ranges.
#[derive(Debug, Default)]
pub(super) struct SymbolTable {
    symbols: Vec<Symbol>,
    code: Vec<Range<u64>>,
}

/// Where an address falls.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found<'a> {
    /// Inside this function.
    Function(&'a Symbol),
    /// In the module's code, but no symbol covers it.
    Unnamed,
    /// Outside every code section the module describes.
    NotCode,
}

impl SymbolTable {
    /// A table of `symbols` (any order, duplicates allowed) in the `code`
    /// ranges.
    pub fn new(mut symbols: Vec<Symbol>, code: Vec<Range<u64>>) -> Self {
        symbols.sort_by(|a, b| (a.start, &a.name).cmp(&(b.start, &b.name)));
        symbols.dedup_by(|a, b| a.start == b.start && a.name == b.name);
        SymbolTable { symbols, code }
    }

    /// The function holding `address`. Of several symbols starting at the
    /// same place, an exported name with the fewest leading underscores wins
    /// (`readahead`, weak, over `__readahead`, global).
    pub fn find(&self, address: u64) -> Found<'_> {
        let below = self.symbols.partition_point(|s| s.start <= address);
        let nearest = below
            .checked_sub(1)
            .map(|last| self.symbols[last].start)
            .map(|start| {
                let first = self.symbols[..below].partition_point(|s| s.start < start);
                &self.symbols[first..below]
            })
            .unwrap_or_default();
        let best = nearest
            .iter()
            .filter(|symbol| self.covers(symbol, address))
            .max_by_key(|symbol| {
                let underscores = symbol.name.bytes().take_while(|&b| b == b'_').count();
                (
                    symbol.size != 0,
                    symbol.binding != Binding::Local,
                    std::cmp::Reverse(underscores),
                    symbol.binding,
                    std::cmp::Reverse(symbol.name.len()),
                )
            });
        match best {
            Some(symbol) => Found::Function(symbol),
            None if self.code.is_empty() || self.code_section(address).is_some() => Found::Unnamed,
            None => Found::NotCode,
        }
    }

    fn covers(&self, symbol: &Symbol, address: u64) -> bool {
        if symbol.size != 0 {
            return address - symbol.start < symbol.size;
        }
        match self.code_section(symbol.start) {
            Some(section) => section.contains(&address),
            // Without section headers nothing bounds it.
            None => self.code.is_empty(),
        }
    }

    fn code_section(&self, address: u64) -> Option<&Range<u64>> {
        self.code.iter().find(|range| range.contains(&address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(start: u64, size: u64, name: &str, binding: Binding) -> Symbol {
        Symbol {
            start,
            size,
            name: name.into(),
            binding,
        }
    }

    fn table() -> SymbolTable {
        SymbolTable::new(
            vec![
                symbol(0x1100, 0x20, "beta", Binding::Weak),
                symbol(0x1100, 0x20, "__beta", Binding::Global),
                symbol(0x1100, 0x20, "beta_local", Binding::Local),
                symbol(0x1000, 0x40, "alpha", Binding::Global),
                symbol(0x1000, 0x40, "__alpha", Binding::Global),
                symbol(0x1000, 0x40, "alpha_local", Binding::Local),
                symbol(0x1000, 0x40, "alpha", Binding::Global),
                symbol(0x1200, 0, "asm_entry", Binding::Global),
            ],
            vec![0x1000..0x1300, 0x2000..0x2100],
        )
    }

    fn name(found: Found<'_>) -> Option<&str> {
        match found {
            Found::Function(symbol) => Some(&symbol.name),
            _ => None,
        }
    }

    #[test]
    fn an_address_inside_a_function_names_it() {
        let table = table();
        assert_eq!(name(table.find(0x1000)), Some("alpha"));
        assert_eq!(name(table.find(0x103f)), Some("alpha"));
        assert_eq!(name(table.find(0x1110)), Some("beta"));
    }

    #[test]
    fn past_a_functions_size_is_no_function() {
        let table = table();
        assert_eq!(table.find(0x1040), Found::Unnamed);
        assert_eq!(table.find(0x1120), Found::Unnamed);
    }

    #[test]
    fn a_symbol_without_size_reaches_the_end_of_its_section() {
        let table = table();
        assert_eq!(name(table.find(0x12ff)), Some("asm_entry"));
        assert_eq!(table.find(0x1300), Found::NotCode);
        assert_eq!(table.find(0x2050), Found::Unnamed);
    }

    #[test]
    fn addresses_outside_the_code_are_said_so() {
        let table = table();
        assert_eq!(table.find(0), Found::NotCode);
        assert_eq!(table.find(0xfff), Found::NotCode);
        assert_eq!(table.find(u64::MAX), Found::NotCode);
    }

    #[test]
    fn an_empty_table_names_nothing() {
        let table = SymbolTable::new(Vec::new(), Vec::new());
        assert_eq!(table.find(0x1000), Found::Unnamed);
        assert_eq!(table.find(u64::MAX), Found::Unnamed);
    }
}
