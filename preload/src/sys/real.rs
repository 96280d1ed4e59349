//! The next definition of each intercepted function, found with
//! `dlsym(RTLD_NEXT, …)` and cached in an atomic pointer: no lock, no
//! `Once` to poison, and a missing symbol is an answer ("missing"), not an
//! abort. "Next" matters: with another preload library after ours (say
//! libeatmydata), a call we pass goes on to it, not straight to libc.
//!
//! `dlsym` takes the loader's lock and may allocate, so every definition is
//! looked up at start-up: the constructor resolves the one list of them that
//! the hook table builds (`hooks::exports::RESOLVED_AT_START_UP`). The lazy
//! path in `address` serves only calls that other libraries' constructors
//! make before ours has run, which is still start-up.

use std::ffi::{c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::errno::ErrnoGuard;

/// Marks a symbol that `dlsym` did not find.
const MISSING: *mut c_void = 1 as *mut c_void;

pub struct Real {
    name: &'static CStr,
    address: AtomicPtr<c_void>,
}

impl Real {
    pub const fn new(name: &'static CStr) -> Self {
        Real {
            name,
            address: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Itself: the hook table's list takes a `Real` or a `Typed` alike.
    pub const fn as_real(&self) -> &Real {
        self
    }

    /// The C function's name.
    #[cfg(test)]
    pub fn name(&self) -> &'static CStr {
        self.name
    }

    /// Whether the definition has been looked up (found or missing).
    #[cfg(test)]
    pub fn is_resolved(&self) -> bool {
        !self.address.load(Ordering::Relaxed).is_null()
    }

    /// The next definition's address, or `None` if there is none.
    #[inline(always)]
    pub fn address(&self) -> Option<*mut c_void> {
        let address = self.address.load(Ordering::Relaxed);
        if address.is_null() {
            self.resolve()
        } else if address == MISSING {
            None
        } else {
            Some(address)
        }
    }

    /// Looks the definition up now; called at start-up for every one.
    #[cold]
    #[inline(never)]
    #[link_section = ".text.startup"]
    pub fn resolve(&self) -> Option<*mut c_void> {
        let _errno = ErrnoGuard::save();
        // SAFETY: `name` is a NUL-terminated string; RTLD_NEXT is valid from
        // code inside a shared object. Two threads may race here: both store
        // the same answer.
        let found = unsafe { next_dlsym()(libc::RTLD_NEXT, self.name.as_ptr()) };
        let stored = if found.is_null() { MISSING } else { found };
        self.address.store(stored, Ordering::Relaxed);
        (!found.is_null()).then_some(found)
    }
}

type DlsymFn = unsafe extern "C" fn(*mut c_void, *const libc::c_char) -> *mut c_void;

/// The next `dlsym` and `dlvsym` after this library; null until found.
pub static NEXT_DLSYM: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());
pub static NEXT_DLVSYM: AtomicPtr<c_void> = AtomicPtr::new(ptr::null_mut());

/// The next `dlsym`, called directly: through the `dlsym` symbol, our
/// lookups would reach our own hook, or another preload's in front of ours,
/// and `RTLD_NEXT` would then be relative to the wrong caller. glibc takes
/// the caller from the return address, which is then ours.
fn next_dlsym() -> DlsymFn {
    let found = find_next(&NEXT_DLSYM, b"dlsym");
    if found.is_null() {
        return libc::dlsym;
    }
    // SAFETY: a definition of `dlsym`, which has this signature.
    unsafe { std::mem::transmute::<*mut c_void, DlsymFn>(found) }
}

/// The next definition of `dlsym` or `dlvsym` (`name`), found in the loaded
/// objects' symbol tables and kept in `slot`; null if there is none.
#[link_section = ".text.startup"]
pub fn find_next(slot: &AtomicPtr<c_void>, name: &[u8]) -> *mut c_void {
    let known = slot.load(Ordering::Acquire);
    if !known.is_null() {
        return known;
    }
    let _errno = ErrnoGuard::save();
    let mut chosen: Option<(usize, bool)> = None;
    let ours = find_next as *const () as usize;
    let mut choose = |found: super::elf::Definition| {
        let better = match chosen {
            None => true,
            Some((_, default)) => found.default_version && !default,
        };
        if better {
            chosen = Some((found.address, found.default_version));
        }
    };
    let mut any = false;
    super::elf::definitions_after(ours, name, &mut |found| {
        any = true;
        choose(found)
    });
    if !any {
        // Loaded with dlopen, after libc: any definition but ours.
        super::elf::definitions_elsewhere(ours, name, &mut choose);
    }
    let found = chosen.map_or(ptr::null_mut(), |(address, _)| address as *mut c_void);
    slot.store(found, Ordering::Release);
    found
}

/// A C name from a Rust one with a NUL appended, at compile time (for
/// macros, which cannot write a `c"…"` literal from an identifier).
pub const fn c_name(with_nul: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(with_nul.as_bytes()) {
        Ok(name) => name,
        Err(_) => panic!("a C name ends with its only NUL"),
    }
}

/// Declares the cached next definition of a function with its C signature
/// and a typed accessor: `real!(REAL_FSYNC, c"fsync", fn(c_int) -> c_int)`
/// gives `REAL_FSYNC.get() -> Option<unsafe extern "C-unwind" fn(c_int) -> c_int>`.
/// Declaring it does not resolve it: it must also be in the constructor's
/// list (the hook table's `also resolved` part).
macro_rules! real {
    ($static:ident, $name:expr, fn($($arg:ty),*) $(-> $ret:ty)?) => {
        pub static $static: $crate::sys::real::Typed<unsafe extern "C-unwind" fn($($arg),*) $(-> $ret)?> =
            $crate::sys::real::Typed::new($crate::sys::real::Real::new($name));
    };
}
pub(crate) use real;

/// A `Real` with the function type its address has.
pub struct Typed<F> {
    real: Real,
    _type: std::marker::PhantomData<F>,
}

// SAFETY: `Typed` only holds a `Real` (atomics and a static string); the
// type parameter is a function pointer type used for the cast only.
unsafe impl<F> Sync for Typed<F> {}

impl<F: Copy> Typed<F> {
    pub const fn new(real: Real) -> Self {
        Typed {
            real,
            _type: std::marker::PhantomData,
        }
    }

    /// The untyped definition, for the list the constructor resolves.
    pub const fn as_real(&self) -> &Real {
        &self.real
    }

    #[inline(always)]
    pub fn get(&self) -> Option<F> {
        const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut c_void>()) };
        // SAFETY: `F` is the function pointer type of the C function named
        // by `real` (the `real!` macro writes both from one declaration), and
        // a non-null address from `dlsym` is that function.
        self.real
            .address()
            .map(|address| unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) })
    }
}
