//! The loaded objects, kept in a table that hooks read without a lock, for
//! where the loader has no lock-free answer of its own: musl, and glibc
//! before 2.35 (no `_dl_find_object`).
//!
//! `dl_iterate_phdr` takes the loader's lock on both libcs; a hook in a
//! signal handler that interrupted `dlopen` would deadlock on it. So it is
//! asked only where the lock may be taken: at start-up (the constructor),
//! and on the `dlopen` side of the program's life — after a lookup on a
//! handle (`dlsym` takes the lock itself, and follows a `dlopen`) and after
//! `dlclose`. Readers never wait: the table is a sequence lock whose readers
//! retry a few times and then answer "unknown", so a handler that
//! interrupts a refresh on its own thread gets "unknown", never a hang.
//!
//! Entries hold the names as the loader gives them, except the main
//! program's, which is empty as glibc gives it (musl names it by its path):
//! `caller` rules then read the executable's path for it on both libcs.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};

use libc::{dl_phdr_info, size_t};

/// Objects the table holds; a process with more has the rest "unknown".
const CAPACITY: usize = 512;
const READ_ATTEMPTS: usize = 4;

/// One loaded object: its address range, load bias, `PT_GNU_EH_FRAME`
/// address (0: none) and name (0: the main program).
#[derive(Clone, Copy, Default)]
pub struct Module {
    pub start: usize,
    pub end: usize,
    pub load_bias: usize,
    pub eh_frame: usize,
    pub name: usize,
}

struct Slot([AtomicUsize; 5]);

static SLOTS: [Slot; CAPACITY] = [const { Slot([const { AtomicUsize::new(0) }; 5]) }; CAPACITY];
static USED: AtomicUsize = AtomicUsize::new(0);
/// Odd while a refresh writes the table.
static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
static REFRESHING: AtomicBool = AtomicBool::new(false);

/// Reads the loader's list into the table. Takes the loader's lock: call
/// only from start-up or the `dlopen`/`dlclose` side, never from a hook.
pub fn refresh() {
    if REFRESHING.swap(true, Ordering::Acquire) {
        return; // another thread is at it
    }
    SEQUENCE.fetch_add(1, Ordering::AcqRel);
    fence(Ordering::Release);
    let mut used = 0usize;
    // SAFETY: the callback reads only the loader's `dl_phdr_info`, during
    // the call; `used` outlives it.
    unsafe { libc::dl_iterate_phdr(Some(record), (&raw mut used).cast()) };
    USED.store(used, Ordering::Relaxed);
    SEQUENCE.fetch_add(1, Ordering::Release);
    REFRESHING.store(false, Ordering::Release);
}

unsafe extern "C" fn record(info: *mut dl_phdr_info, _size: size_t, data: *mut c_void) -> c_int {
    // SAFETY: `data` is `refresh`'s counter; `info` is the loader's.
    let (used, info) = unsafe { (&mut *data.cast::<usize>(), &*info) };
    let Some(slot) = SLOTS.get(*used) else {
        return 1; // full: stop
    };
    let module = describe(info, *used == 0);
    for (word, value) in slot.0.iter().zip([
        module.start,
        module.end,
        module.load_bias,
        module.eh_frame,
        module.name,
    ]) {
        word.store(value, Ordering::Relaxed);
    }
    *used += 1;
    0
}

/// The module `info` describes; both libcs list the main program first.
fn describe(info: &dl_phdr_info, main_program: bool) -> Module {
    // SAFETY: the loader's program headers for this object.
    let headers =
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
    let bias = info.dlpi_addr as usize;
    let (mut start, mut end, mut eh_frame) = (usize::MAX, 0usize, 0usize);
    for header in headers {
        let address = bias.wrapping_add(header.p_vaddr as usize);
        match header.p_type {
            libc::PT_LOAD => {
                start = start.min(address);
                end = end.max(address.saturating_add(header.p_memsz as usize));
            }
            libc::PT_GNU_EH_FRAME => eh_frame = address,
            _ => {}
        }
    }
    let name = if main_program {
        0
    } else {
        info.dlpi_name as usize
    };
    Module {
        start: if end == 0 { 0 } else { start },
        end,
        load_bias: bias,
        eh_frame,
        name,
    }
}

/// The module `address` lies in, from the table; `None` if it is in none
/// of them or a refresh kept the table busy. Lock-free and
/// async-signal-safe.
pub fn find(address: usize) -> Option<Module> {
    for _ in 0..READ_ATTEMPTS {
        let before = SEQUENCE.load(Ordering::Acquire);
        if before % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let used = USED.load(Ordering::Relaxed).min(CAPACITY);
        let found = SLOTS[..used].iter().find_map(|slot| {
            let word = |index: usize| slot.0[index].load(Ordering::Relaxed);
            let (start, end) = (word(0), word(1));
            (start <= address && address < end).then(|| Module {
                start,
                end,
                load_bias: word(2),
                eh_frame: word(3),
                name: word(4),
            })
        });
        fence(Ordering::Acquire);
        if SEQUENCE.load(Ordering::Relaxed) == before {
            return found;
        }
    }
    None
}

/// The module `address` lies in, asked of the loader now (takes its lock):
/// for the unwinder before the table is filled.
pub fn find_now(address: usize) -> Option<Module> {
    let mut search = (address, None::<Module>, true);
    // SAFETY: the callback reads the loader's `dl_phdr_info` during the
    // call; `search` outlives it.
    unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
    return search.1;

    unsafe extern "C" fn visit(info: *mut dl_phdr_info, _: size_t, data: *mut c_void) -> c_int {
        // SAFETY: `data` is `find_now`'s search; `info` is the loader's.
        let (search, info) =
            unsafe { (&mut *data.cast::<(usize, Option<Module>, bool)>(), &*info) };
        let module = describe(info, std::mem::take(&mut search.2));
        if module.start <= search.0 && search.0 < module.end {
            search.1 = Some(module);
            return 1;
        }
        0
    }
}

impl Module {
    /// The name the loader gives it: empty for the main program.
    pub fn name_pointer(&self) -> *const c_char {
        self.name as *const c_char
    }
}
