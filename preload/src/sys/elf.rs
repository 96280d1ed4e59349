//! Finding functions in the loaded objects ourselves, from their dynamic
//! symbol tables (GNU hash), for the one lookup `dlsym` cannot do for us:
//! the next definition of `dlsym` itself (our own call to `dlsym` reaches our
//! own hook), and every definition of the functions we hook, to tell a
//! handle lookup that found libc's `fsync` (under any version or alias) from
//! one that found something else.
//!
//! Runs only where the loader's lock may be taken: at the first `dlsym` a
//! program makes (inside `dlsym`, which takes it anyway).

use std::ffi::c_void;

use libc::{c_int, dl_phdr_info, size_t};

const PT_DYNAMIC: u32 = 2;
const DT_NULL: i64 = 0;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_GNU_HASH: i64 = 0x6fff_fef5;
const DT_VERSYM: i64 = 0x6fff_fff0;
const SHN_UNDEF: u16 = 0;
const STT_FUNC: u8 = 2;
const STT_GNU_IFUNC: u8 = 10;
/// A `versym` entry with this bit is a non-default version (`name@VER`).
const VERSYM_HIDDEN: u16 = 0x8000;

#[repr(C)]
struct Dyn {
    tag: i64,
    value: u64,
}

#[repr(C)]
struct Sym {
    name: u32,
    info: u8,
    other: u8,
    shndx: u16,
    value: u64,
    size: u64,
}

/// A symbol found: its address, and whether it is the default version.
pub struct Definition {
    pub address: usize,
    pub default_version: bool,
}

struct Search<'a> {
    /// An address inside the object after which to search (ours).
    after: usize,
    past_ours: bool,
    /// Search every object but ours, not only those after it.
    anywhere: bool,
    name: &'a [u8],
    found: &'a mut dyn FnMut(Definition),
}

/// Calls `found` with every defined function named `name` (every version)
/// in the objects loaded after the one that contains address `after`, in
/// load order (the order of the global search scope).
pub fn definitions_after(after: usize, name: &[u8], found: &mut dyn FnMut(Definition)) {
    search(after, false, name, found);
}

/// Calls `found` with every defined function named `name` in every loaded
/// object but the one that contains address `ours`, in load order: for a
/// library loaded with `dlopen` rather than preloaded, libc comes before it.
pub fn definitions_elsewhere(ours: usize, name: &[u8], found: &mut dyn FnMut(Definition)) {
    search(ours, true, name, found);
}

fn search(after: usize, anywhere: bool, name: &[u8], found: &mut dyn FnMut(Definition)) {
    let mut search = Search {
        after,
        past_ours: false,
        anywhere,
        name,
        found,
    };
    // SAFETY: the callback only reads the objects' mapped dynamic sections
    // while the loader holds them; `search` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
}

#[link_section = ".text.startup"]
unsafe extern "C" fn visit(info: *mut dl_phdr_info, _size: size_t, data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Search` passed above; `info` is the loader's.
    let (search, info) = unsafe { (&mut *data.cast::<Search>(), &*info) };
    // SAFETY: the loader's program headers for this object.
    let headers =
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let base = info.dlpi_addr as usize;
    let ours = headers.iter().any(|header| {
        header.p_type == 1 && {
            let start = base + header.p_vaddr as usize;
            (start..start + header.p_memsz as usize).contains(&search.after)
        }
    });
    if ours {
        search.past_ours = true;
        return 0;
    }
    if !search.past_ours && !search.anywhere {
        return 0;
    }
    if let Some(dynamic) = headers.iter().find(|header| header.p_type == PT_DYNAMIC) {
        let address = info.dlpi_addr as usize + dynamic.p_vaddr as usize;
        // SAFETY: the object's mapped dynamic section, ended by DT_NULL.
        unsafe { look_up(address as *const Dyn, info.dlpi_addr as usize, search) };
    }
    0
}

/// Looks `search.name` up in one object's GNU hash table.
///
/// # Safety
/// `dynamic` must be the mapped dynamic section of a loaded object whose
/// load bias is `base`.
unsafe fn look_up(dynamic: *const Dyn, base: usize, search: &mut Search) {
    let (mut strings, mut symbols, mut hash, mut versions) = (0usize, 0usize, 0usize, 0usize);
    let mut entry = dynamic;
    // SAFETY: reads of the loader's mapped tables, within the bounds the
    // tables themselves give (the caller vouches for `dynamic` and `base`).
    unsafe {
        while (*entry).tag != DT_NULL {
            let value = (*entry).value as usize;
            // glibc relocates these in place; the vDSO's are not.
            let value = if value < base { value + base } else { value };
            match (*entry).tag {
                DT_STRTAB => strings = value,
                DT_SYMTAB => symbols = value,
                DT_GNU_HASH => hash = value,
                DT_VERSYM => versions = value,
                _ => {}
            }
            entry = entry.add(1);
        }
        if strings == 0 || symbols == 0 || hash == 0 {
            return;
        }
        let header = hash as *const u32;
        let (buckets, first_symbol, bloom_words) = (*header, *header.add(1), *header.add(2));
        if buckets == 0 {
            return;
        }
        let bucket_table = header
            .add(4)
            .cast::<u64>()
            .add(bloom_words as usize)
            .cast::<u32>();
        let chains = bucket_table.add(buckets as usize);
        let wanted = gnu_hash(search.name);
        let mut index = *bucket_table.add((wanted % buckets) as usize);
        if index < first_symbol {
            return;
        }
        loop {
            let chain = *chains.add((index - first_symbol) as usize);
            if (chain | 1) == (wanted | 1) {
                let symbol = &*(symbols as *const Sym).add(index as usize);
                let name = std::ffi::CStr::from_ptr(
                    (strings + symbol.name as usize) as *const libc::c_char,
                );
                let kind = symbol.info & 0xf;
                if name.to_bytes() == search.name
                    && symbol.shndx != SHN_UNDEF
                    && (kind == STT_FUNC || kind == STT_GNU_IFUNC)
                {
                    let hidden = versions != 0
                        && *(versions as *const u16).add(index as usize) & VERSYM_HIDDEN != 0;
                    (search.found)(Definition {
                        address: base + symbol.value as usize,
                        default_version: !hidden,
                    });
                }
            }
            if chain & 1 != 0 {
                return;
            }
            index += 1;
        }
    }
}

fn gnu_hash(name: &[u8]) -> u32 {
    name.iter().fold(5381u32, |hash, &byte| {
        hash.wrapping_mul(33).wrapping_add(u32::from(byte))
    })
}
