//! `dlsym` and `dlvsym`, so that FFI and plugin loaders that look libc's
//! functions up on a handle (`ctypes.CDLL("libc.so.6").fsync`,
//! `dlopen("libc.so.6")` + `dlsym`) get our hooks, as symbol interposition
//! gives everyone else. A lookup on a handle is passed to the real `dlsym`,
//! and a result that is one of the definitions we hook (compared by
//! address, so aliases and versions are right) becomes our hook.
//!
//! `RTLD_NEXT` and `RTLD_DEFAULT` lookups depend on who asks: glibc reads the
//! caller from the return address. So the exported functions are naked
//! trampolines that tail-jump to the real `dlsym` for those, leaving the
//! caller's return address in place; other preloads that interpose `dlsym`
//! themselves keep working in either order, as their own `RTLD_NEXT`
//! lookups stay theirs. (`RTLD_DEFAULT` searches the global scope, where
//! our hooks come before libc's anyway.) The real `dlsym` is found in the
//! loaded objects' symbol tables (`sys::elf`): our own call to `dlsym`
//! would reach this very hook.

#![allow(clippy::missing_safety_doc)]

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::sys::elf::definitions_after;
use crate::sys::loader::REAL_DLCLOSE;
use crate::sys::real::{find_next, NEXT_DLSYM, NEXT_DLVSYM};
use crate::sys::ErrnoGuard;

type DlsymFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_void;
type DlvsymFn = unsafe extern "C" fn(*mut c_void, *const c_char, *const c_char) -> *mut c_void;

/// Something inside this library, to tell which loaded object is ours.
fn our_address() -> usize {
    our_address as *const () as usize
}

/// Finds the real `dlsym` (called by the trampoline when it is not known
/// yet: a lookup made before our constructor ran); never null.
extern "C" fn resolve_dlsym() -> *mut c_void {
    or_missing(
        find_next(&NEXT_DLSYM, b"dlsym"),
        missing_dlsym as *mut c_void,
    )
}

extern "C" fn resolve_dlvsym() -> *mut c_void {
    or_missing(
        find_next(&NEXT_DLVSYM, b"dlvsym"),
        missing_dlvsym as *mut c_void,
    )
}

fn or_missing(found: *mut c_void, missing: *mut c_void) -> *mut c_void {
    if found.is_null() {
        missing
    } else {
        found
    }
}

/// Finds the real `dlsym` and `dlvsym`; called at start-up, first, so that
/// every other lookup is made with the real `dlsym`.
#[link_section = ".text.startup"]
pub fn find_real_lookups() {
    resolve_dlsym();
    resolve_dlvsym();
}

/// `dlclose`: the real one, then call sites forget the objects it unloaded
/// (`stats::sites::forget_unloaded`), so that an object loaded later at the
/// same address is told apart. Their counts stay, under their names.
#[no_mangle]
pub unsafe extern "C" fn dlclose(handle: *mut c_void) -> c_int {
    let Some(real) = REAL_DLCLOSE.get() else {
        return -1;
    };
    // SAFETY: the caller's handle, passed on.
    let result = unsafe { real(handle) };
    if result == 0 {
        let _errno = ErrnoGuard::save();
        crate::sys::loader::objects_changed();
        let _ = std::panic::catch_unwind(crate::stats::sites::forget_unloaded);
    }
    result
}

extern "C" fn missing_dlsym(_: *mut c_void, _: *const c_char) -> *mut c_void {
    ptr::null_mut()
}

extern "C" fn missing_dlvsym(_: *mut c_void, _: *const c_char, _: *const c_char) -> *mut c_void {
    ptr::null_mut()
}

/// The body of `dlsym` and `dlvsym` (their first argument is the handle):
/// `RTLD_NEXT` (-1) and `RTLD_DEFAULT` (0) tail-jump to the real function in
/// `$real` (found by `$resolve` first if it is not yet), with the caller's
/// return address; a handle tail-jumps to `$on_handle`.
macro_rules! trampoline {
    ($real:ident, $resolve:ident, $on_handle:ident) => {
        std::arch::naked_asm!(
            "mov rax, qword ptr [rip + {real}]",
            "test rax, rax",
            "jnz 2f",
            // Not found yet: find it, keeping the arguments (three pushes
            // leave the stack 16-byte aligned for the call).
            "push rdi",
            "push rsi",
            "push rdx",
            "call {resolve}",
            "pop rdx",
            "pop rsi",
            "pop rdi",
            "2:",
            "cmp rdi, -1",
            "je 3f",
            "test rdi, rdi",
            "je 3f",
            "jmp {on_handle}",
            "3:",
            "jmp rax",
            real = sym $real,
            resolve = sym $resolve,
            on_handle = sym $on_handle,
        )
    };
}

/// `dlsym`: `RTLD_NEXT` and `RTLD_DEFAULT` go to the real one with the
/// caller's return address; a handle goes to `dlsym_on_handle`.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void {
    trampoline!(NEXT_DLSYM, resolve_dlsym, dlsym_on_handle)
}

/// `dlvsym`, the same way.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn dlvsym(
    handle: *mut c_void,
    name: *const c_char,
    version: *const c_char,
) -> *mut c_void {
    trampoline!(NEXT_DLVSYM, resolve_dlvsym, dlvsym_on_handle)
}

unsafe extern "C" fn dlsym_on_handle(handle: *mut c_void, name: *const c_char) -> *mut c_void {
    // SAFETY: the trampoline resolved it (never null) before jumping here.
    let real: DlsymFn = unsafe { std::mem::transmute(resolve_dlsym()) };
    // SAFETY: the caller's lookup, passed on.
    let found = unsafe { real(handle, name) };
    after_lookup_on_handle();
    hook_instead(found)
}

unsafe extern "C" fn dlvsym_on_handle(
    handle: *mut c_void,
    name: *const c_char,
    version: *const c_char,
) -> *mut c_void {
    // SAFETY: as in `dlsym_on_handle`.
    let real: DlvsymFn = unsafe { std::mem::transmute(resolve_dlvsym()) };
    // SAFETY: the caller's lookup, passed on.
    let found = unsafe { real(handle, name, version) };
    after_lookup_on_handle();
    hook_instead(found)
}

/// A lookup on a handle follows a `dlopen`: where the module table is in
/// use, it learns the objects loaded since (a lookup takes the loader's
/// lock anyway; this is no signal handler's call).
fn after_lookup_on_handle() {
    let _errno = ErrnoGuard::save();
    crate::sys::loader::objects_changed();
}

/// Calls `each` with every function we hook and our hook's address: the
/// hook table's, then the others.
fn for_each_hook(mut each: impl FnMut(&'static [u8], usize)) {
    use super::descriptors as d;
    use super::exports as e;
    use crate::dump::signals as s;
    e::for_each_hook(&mut each);
    let others: [(&'static [u8], usize); 13] = [
        (b"syscall", e::syscall as *const () as usize),
        (b"_exit", e::_exit as *const () as usize),
        (b"_Exit", e::_Exit as *const () as usize),
        (b"close", d::close as *const () as usize),
        (b"close_range", d::close_range as *const () as usize),
        (b"closefrom", d::closefrom as *const () as usize),
        (b"dup2", d::dup2 as *const () as usize),
        (b"dup3", d::dup3 as *const () as usize),
        (b"sigaction", s::sigaction as *const () as usize),
        (b"signal", s::signal as *const () as usize),
        (b"bsd_signal", s::bsd_signal as *const () as usize),
        (b"sysv_signal", s::sysv_signal as *const () as usize),
        (b"dlclose", dlclose as *const () as usize),
    ];
    for (name, hook) in others {
        each(name, hook);
    }
}

/// Every definition, in the objects after ours, of a function we hook, with
/// the hook it becomes: filled at the first handle lookup.
const MAX_DEFINITIONS: usize = 128;
static DEFINITIONS: [(AtomicUsize, AtomicUsize); MAX_DEFINITIONS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_DEFINITIONS];
static TABLE: AtomicU8 = AtomicU8::new(EMPTY);
const EMPTY: u8 = 0;
const FILLING: u8 = 1;
const FILLED: u8 = 2;

fn fill_table() {
    let mut used = 0;
    for_each_hook(|name, hook| {
        definitions_after(our_address(), name, &mut |found| {
            if let Some((address, replacement)) = DEFINITIONS.get(used) {
                address.store(found.address, Ordering::Relaxed);
                replacement.store(hook, Ordering::Relaxed);
                used += 1;
            }
        });
    });
}

/// Our hook if `found` is a definition of a function we hook; else `found`.
fn hook_instead(found: *mut c_void) -> *mut c_void {
    if found.is_null() {
        return found;
    }
    let _errno = ErrnoGuard::save();
    match TABLE.compare_exchange(EMPTY, FILLING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            let _ = std::panic::catch_unwind(fill_table);
            TABLE.store(FILLED, Ordering::Release);
        }
        Err(_) => {
            // Another thread fills it (dlsym is no signal handler's call):
            // wait the few microseconds that takes.
            while TABLE.load(Ordering::Acquire) != FILLED {
                std::hint::spin_loop();
                crate::sys::process::yield_now();
            }
        }
    }
    let address = found as usize;
    DEFINITIONS
        .iter()
        .find(|(definition, _)| definition.load(Ordering::Relaxed) == address)
        .map_or(found, |(_, hook)| {
            hook.load(Ordering::Relaxed) as *mut c_void
        })
}

#[cfg(test)]
mod tests {
    use super::for_each_hook;
    use crate::hooks::exports::RESOLVED_AT_START_UP;

    /// A function hooked but missing here would be handed out as libc's
    /// own to a program that looks it up on a handle: every function whose
    /// next definition the library resolves is one it hooks, and so one it
    /// must hand out.
    #[test]
    fn lookups_hand_out_every_hook() {
        let mut handed_out = Vec::new();
        for_each_hook(|name, _| handed_out.push(std::str::from_utf8(name).unwrap()));
        let mut resolved: Vec<_> = RESOLVED_AT_START_UP
            .iter()
            .map(|real| real.name().to_str().unwrap())
            .collect();
        handed_out.sort();
        resolved.sort();
        assert_eq!(handed_out, resolved);
    }
}
