//! Which loaded object an address lies in, asked without the loader's
//! lock, and that object's build id, read from its own mapped ELF headers.
//!
//! `dladdr` and `dl_iterate_phdr` take the loader's lock, which a thread
//! interrupted inside `dlopen` holds: a hook in its signal handler would
//! deadlock. glibc 2.35's `_dl_find_object` is documented async-signal-safe
//! and lock-free, so where it exists (found at run time) it is the question
//! asked; elsewhere (musl, older glibc) the lock-free table of
//! `sys::modules` answers.
//!
//! The statically linked unwinder (libgcc_eh) calls `_dl_find_object` to
//! find the unwind tables of a frame. A reference to it in the dynamic
//! section would stop musl from loading the library, so this library
//! defines it itself, hidden (it must not stand in for glibc's in the rest
//! of the process): glibc's when there is one, else the module table's
//! answer, else (before the table is filled) `dl_iterate_phdr`'s. A caught
//! panic, after which the shim falls back to the real call, needs a real
//! answer: without one, the unwinder aborts the host.
//!
//! The build id is read from memory the object maps readable: the ELF
//! header at its lowest address, its program headers, and the `PT_NOTE`
//! segments, each read only after checking that it lies inside a
//! readable `PT_LOAD` segment of the object, so a strange object yields no
//! build id rather than a fault.

use std::ffi::{c_char, c_int, c_void};

use super::modules::{self, Module};
use super::real::Real;

// The next `dlclose`, for the `dlclose` hook (`hooks::lookups`); declared
// here, with the loader's other functions, so that the hook table's list
// of what the constructor resolves (`hooks::exports`) reaches it going
// down. Resolved at start-up with that list.
#[cfg(target_arch = "x86_64")]
super::real::real!(REAL_DLCLOSE, c"dlclose", fn(*mut c_void) -> c_int);

static FIND_OBJECT: Real = Real::new(c"_dl_find_object");
type FindObjectFn = unsafe extern "C" fn(*mut c_void, *mut DlFindObject) -> c_int;

/// glibc's `struct dl_find_object` (2.35, stable ABI).
#[repr(C)]
struct DlFindObject {
    flags: u64,
    map_start: *mut c_void,
    map_end: *mut c_void,
    link_map: *const LinkMap,
    eh_frame: *mut c_void,
    reserved: [u64; 7],
}

/// The public head of glibc's `struct link_map` (`<link.h>`).
#[repr(C)]
struct LinkMap {
    load_bias: usize,
    name: *const c_char,
}

/// Looks `_dl_find_object` up; called at start-up. Without it, the
/// module table is filled now.
#[link_section = ".text.startup"]
pub fn resolve() {
    if FIND_OBJECT.resolve().is_none() {
        modules::refresh();
    }
}

/// After the set of loaded objects may have changed (`dlopen` side: a
/// lookup on a handle, `dlclose`): the module table follows, where used.
/// Takes the loader's lock: never from a hook.
pub fn objects_changed() {
    if FIND_OBJECT.address().is_none() {
        modules::refresh();
    }
}

/// Our `_dl_find_object`: a hidden symbol (no Rust attribute makes one)
/// that tail-jumps to its body.
macro_rules! hidden_find_object {
    ($jump:literal) => {
        std::arch::global_asm!(
            ".globl _dl_find_object",
            ".hidden _dl_find_object",
            ".type _dl_find_object, %function",
            "_dl_find_object:",
            concat!($jump, " {body}"),
            body = sym find_object_for_unwinder,
        );
    };
}
#[cfg(target_arch = "x86_64")]
hidden_find_object!("jmp");
#[cfg(target_arch = "aarch64")]
hidden_find_object!("b");

/// The body of our hidden `_dl_find_object`, for the unwinder: fills
/// `found` for the object `address` lies in; 0 on success, -1 if none.
/// Never panics (it runs while a panic unwinds).
unsafe extern "C" fn find_object_for_unwinder(
    address: *mut c_void,
    found: *mut DlFindObject,
) -> c_int {
    if let Some(find) = FIND_OBJECT.address() {
        // SAFETY: glibc's `_dl_find_object`, with the unwinder's arguments.
        let find: FindObjectFn = unsafe { std::mem::transmute::<*mut c_void, FindObjectFn>(find) };
        // SAFETY: the unwinder's pointers, passed on.
        return unsafe { find(address, found) };
    }
    let address = address as usize;
    let Some(module) = modules::find(address).or_else(|| modules::find_now(address)) else {
        return -1;
    };
    // SAFETY: the unwinder passes a writable `struct dl_find_object`.
    unsafe {
        found.write(DlFindObject {
            flags: 0,
            map_start: module.start as *mut c_void,
            map_end: module.end as *mut c_void,
            link_map: std::ptr::null(),
            eh_frame: module.eh_frame as *mut c_void,
            reserved: [0; 7],
        })
    };
    if module.eh_frame == 0 {
        -1
    } else {
        0
    }
}

/// A loaded object, as the loader describes it.
#[derive(Clone, Copy)]
pub struct Object {
    /// The lowest and one past the highest address it maps.
    pub start: usize,
    pub end: usize,
    /// Its `struct link_map`: with `start`, who it is in this process.
    pub link_map: usize,
    /// What its ELF virtual addresses are offset by.
    pub load_bias: usize,
    name: *const c_char,
}

/// The object `address` lies in, or `None` (no answer, or an address in
/// no object: generated code).
pub fn find_object(address: usize) -> Option<Object> {
    let Some(find) = FIND_OBJECT.address() else {
        return modules::find(address).map(Object::from);
    };
    // SAFETY: `find` is glibc's `_dl_find_object`, whose type this is.
    let find: FindObjectFn = unsafe { std::mem::transmute::<*mut c_void, FindObjectFn>(find) };
    let mut found = DlFindObject {
        flags: 0,
        map_start: std::ptr::null_mut(),
        map_end: std::ptr::null_mut(),
        link_map: std::ptr::null(),
        eh_frame: std::ptr::null_mut(),
        reserved: [0; 7],
    };
    // SAFETY: `found` is a writable `struct dl_find_object`; the function
    // only reads the loader's lock-free copy of its object list.
    if unsafe { find(address as *mut c_void, &mut found) } != 0 || found.link_map.is_null() {
        return None;
    }
    // SAFETY: the loader's link map of an object that is loaded (the
    // address being asked about is a return address into it, so it cannot
    // be unloaded while the call it made is in progress).
    let link_map = unsafe { &*found.link_map };
    Some(Object {
        start: found.map_start as usize,
        end: found.map_end as usize,
        link_map: found.link_map as usize,
        load_bias: link_map.load_bias,
        name: link_map.name,
    })
}

impl From<Module> for Object {
    fn from(module: Module) -> Object {
        Object {
            start: module.start,
            end: module.end,
            link_map: 0,
            load_bias: module.load_bias,
            name: module.name_pointer(),
        }
    }
}

impl Object {
    /// The object's path as the loader has it (empty for the main
    /// program), cut at `limit` bytes.
    pub fn name(&self, limit: usize) -> &[u8] {
        if self.name.is_null() {
            return &[];
        }
        let mut length = 0;
        // SAFETY: `l_name` is a NUL-terminated string owned by the loader
        // for the object's lifetime; we read up to its NUL or `limit`.
        while length < limit && unsafe { *self.name.add(length) } != 0 {
            length += 1;
        }
        // SAFETY: the `length` bytes just read.
        unsafe { std::slice::from_raw_parts(self.name.cast::<u8>(), length) }
    }

    /// Copies the object's GNU build id into `out`; returns its length (0
    /// when it has none or its headers are not as expected).
    pub fn build_id(&self, out: &mut [u8]) -> usize {
        self.find_build_id().map_or(0, |id| {
            let length = id.len().min(out.len());
            out[..length].copy_from_slice(&id[..length]);
            length
        })
    }

    fn find_build_id(&self) -> Option<&[u8]> {
        let header = self.bytes(self.start, 64)?;
        if &header[..4] != b"\x7fELF" || header[4] != 2 {
            return None;
        }
        let field = |at: usize, size: usize| -> usize {
            let mut word = [0u8; 8];
            word[..size].copy_from_slice(&header[at..at + size]);
            u64::from_le_bytes(word) as usize
        };
        let (phoff, phentsize, phnum) = (field(32, 8), field(54, 2), field(56, 2));
        if phentsize != 56 || phnum == 0 || phnum > 1024 {
            return None;
        }
        let headers = self.bytes(self.start.checked_add(phoff)?, phentsize * phnum)?;
        let header_at = |index: usize| ProgramHeader::read(&headers[index * 56..index * 56 + 56]);
        let readable = |address: usize, length: usize| {
            (0..phnum).map(header_at).any(|segment| {
                let start = self.load_bias.wrapping_add(segment.vaddr);
                segment.kind == libc::PT_LOAD
                    && segment.flags & libc::PF_R != 0
                    && address >= start
                    && address.checked_add(length) <= start.checked_add(segment.memsz)
            })
        };
        // The header must itself lie in a readable segment: proof that
        // `start` is where the loader mapped this object's file from.
        if !readable(self.start.checked_add(phoff)?, phentsize * phnum) {
            return None;
        }
        for note in (0..phnum)
            .map(header_at)
            .filter(|s| s.kind == libc::PT_NOTE)
        {
            let address = self.load_bias.wrapping_add(note.vaddr);
            if note.memsz > 1 << 16 || !readable(address, note.memsz) {
                continue;
            }
            if let Some(id) = gnu_build_id(self.bytes(address, note.memsz)?) {
                return Some(id);
            }
        }
        None
    }

    /// `length` bytes of the object at `address`, if inside its mapping.
    fn bytes(&self, address: usize, length: usize) -> Option<&[u8]> {
        let end = address.checked_add(length)?;
        if address < self.start || end > self.end {
            return None;
        }
        // SAFETY: inside the loader's mapping of the object; callers read
        // only the ELF header (its first bytes, which the loader reads
        // itself) or ranges checked to lie in a readable segment.
        Some(unsafe { std::slice::from_raw_parts(address as *const u8, length) })
    }
}

struct ProgramHeader {
    kind: u32,
    flags: u32,
    vaddr: usize,
    memsz: usize,
}

impl ProgramHeader {
    fn read(bytes: &[u8]) -> ProgramHeader {
        let word = |at: usize, size: usize| {
            let mut word = [0u8; 8];
            word[..size].copy_from_slice(&bytes[at..at + size]);
            u64::from_le_bytes(word)
        };
        ProgramHeader {
            kind: word(0, 4) as u32,
            flags: word(4, 4) as u32,
            vaddr: word(16, 8) as usize,
            memsz: word(40, 8) as usize,
        }
    }
}

/// The descriptor of the `NT_GNU_BUILD_ID` note among `notes`.
fn gnu_build_id(mut notes: &[u8]) -> Option<&[u8]> {
    let align4 = |n: usize| n.checked_add(3).map(|n| n & !3);
    while notes.len() >= 12 {
        let word = |at: usize| {
            u32::from_le_bytes([notes[at], notes[at + 1], notes[at + 2], notes[at + 3]]) as usize
        };
        let (name_size, descriptor_size, kind) = (word(0), word(4), word(8));
        let name_end = 12usize.checked_add(align4(name_size)?)?;
        let end = name_end.checked_add(align4(descriptor_size)?)?;
        if end > notes.len() {
            return None;
        }
        if kind == 3 && name_size == 4 && &notes[12..16] == b"GNU\0" {
            return Some(&notes[name_end..name_end + descriptor_size]);
        }
        notes = &notes[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_object_and_its_build_id() {
        resolve();
        let here = finds_our_own_object_and_its_build_id as *const () as usize;
        let Some(object) = find_object(here) else {
            return; // glibc before 2.35
        };
        assert!(object.start <= here && here < object.end);
        let mut id = [0u8; 32];
        // Rust test binaries are linked with a build id by default on Linux.
        let length = object.build_id(&mut id);
        assert!(length == 0 || length >= 8, "{length}");
        let libc = find_object(libc::getpid as *const () as usize).unwrap();
        assert!(libc.name(4096).ends_with(b".so.6"));
        assert_eq!(libc.build_id(&mut id), 20);
    }

    /// The fallback (musl, glibc before 2.35) tells the unwinder what
    /// glibc's `_dl_find_object` does, for code here and in libc.
    #[test]
    fn the_unwinders_fallback_answers_as_glibc_does() {
        resolve();
        let Some(glibc) = FIND_OBJECT.address() else {
            return; // glibc before 2.35: nothing to compare with
        };
        // SAFETY: glibc's `_dl_find_object`.
        let glibc: FindObjectFn =
            unsafe { std::mem::transmute::<*mut c_void, FindObjectFn>(glibc) };
        modules::refresh();
        let here = the_unwinders_fallback_answers_as_glibc_does as *const () as usize;
        for address in [here, libc::getpid as *const () as usize] {
            // SAFETY: zeroed is a valid `struct dl_find_object`.
            let mut expected: DlFindObject = unsafe { std::mem::zeroed() };
            // SAFETY: glibc's own `_dl_find_object`, given an address in
            // this process and a valid out-pointer.
            assert_eq!(unsafe { glibc(address as *mut c_void, &mut expected) }, 0);
            for module in [modules::find(address), modules::find_now(address)] {
                let module = module.expect("found");
                assert_eq!(module.start, expected.map_start as usize);
                assert_eq!(module.end, expected.map_end as usize);
                assert_eq!(module.eh_frame, expected.eh_frame as usize);
            }
        }
        assert!(modules::find(0).is_none());
    }

    #[test]
    fn notes_are_parsed_bounded() {
        let mut note = Vec::new();
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&3u32.to_le_bytes());
        note.extend_from_slice(&3u32.to_le_bytes());
        note.extend_from_slice(b"GNU\0\xab\xcd\xef\0");
        assert_eq!(gnu_build_id(&note), Some(&[0xab, 0xcd, 0xef][..]));
        note[4] = 200;
        assert_eq!(gnu_build_id(&note), None);
        assert_eq!(gnu_build_id(&note[..5]), None);
    }
}
