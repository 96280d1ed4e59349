//! The generator behind the hook table in `exports.rs`. One entry per
//! intercepted function gives, once, everything its hook is made of; from
//! it `hook_table!` writes, in a module named after the function:
//!
//! - `REAL`, the next definition, typed with the entry's C signature;
//! - `body`, which asks `intercept` with the entry's `Call`, advice, file,
//!   argument check and cancellation point, makes the real call, and turns
//!   the outcome into the entry's return convention;
//!
//! and beside the module the exported trampoline (`trampoline.rs`) that
//! hands `body` the caller's return address. It also writes
//! `RESOLVED_AT_START_UP`: every entry's `REAL` followed by the table's
//! `also resolved` list — the next definitions the other hooks call — so
//! that the constructor resolves one list, and a hook cannot be declared
//! without its real function being in it.
//!
//! Return conventions (`returns:`):
//! - `error_number`: the error number is the result, `errno` is never
//!   touched (`posix_fadvise`); a missing real function gives `ENOSYS`;
//! - `errno`: -1 and `errno` (`fsync`, `msync`, …), `ENOSYS` if missing;
//! - `nothing`: no result (`sync`); if missing, the call does nothing.
//!
//! Every trampoline and body is `extern "C-unwind"`: several real functions
//! are cancellation points, and `pthread_cancel` unwinds through us. Nothing
//! here can panic, and the body's frame holds nothing with a destructor.

use libc::c_int;

use super::intercept::Outcome;
use crate::sys::set_errno;

/// For calls that report errors as -1 and `errno`.
#[inline(always)]
pub fn with_errno(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Passed(result) => result,
        Outcome::Answered => 0,
        Outcome::ArgumentError(error) => {
            set_errno(error);
            -1
        }
    }
}

/// For `posix_fadvise`, which returns the error number itself.
#[inline(always)]
pub fn as_error_number(outcome: Outcome) -> c_int {
    match outcome {
        Outcome::Passed(result) => result as c_int,
        Outcome::Answered => 0,
        Outcome::ArgumentError(error) => error,
    }
}

/// What a -1-and-`errno` call returns when its real function is missing.
pub fn missing() -> i64 {
    set_errno(libc::ENOSYS);
    -1
}

/// See the file's opening comment; the table in `exports.rs` shows the
/// syntax. `file:` is `none`, `fd(expr)` or `mapping(address)`; `advice:`
/// is given only for `posix_fadvise`; `fallback:` names another entry
/// whose real function stands in when this one's is missing.
macro_rules! hook_table {
    (@advice) => { 0 };
    (@advice $advice:expr) => { $advice };

    (@file none) => { $crate::hooks::intercept::File::None };
    (@file fd $fd:expr) => { $crate::hooks::intercept::File::Fd($fd) };
    (@file mapping $address:expr) => {
        $crate::hooks::intercept::File::Mapping($address as usize)
    };

    (@missing error_number $ret:ty) => { libc::ENOSYS };
    (@missing errno $ret:ty) => { $crate::hooks::hook_table::missing() as $ret };
    (@missing nothing $ret:ty) => { () };

    (@real nothing $real:ident($($arg:ident),*)) => {
        || {
            // SAFETY: the next definition of the function we were called
            // as, with the caller's arguments.
            unsafe { $real($($arg),*) };
            0
        }
    };
    (@real $returns:ident $real:ident($($arg:ident),*)) => {
        // SAFETY: the next definition of the function we were called as,
        // with the caller's arguments.
        || unsafe { $real($($arg),*) } as i64
    };

    (@failed error_number) => { |result: i64| result != 0 };
    (@failed errno) => { |result: i64| result < 0 };
    (@failed nothing) => { |_: i64| false };

    (@returned error_number $ret:ty, $outcome:expr) => {
        $crate::hooks::hook_table::as_error_number($outcome)
    };
    (@returned errno $ret:ty, $outcome:expr) => {
        $crate::hooks::hook_table::with_errno($outcome) as $ret
    };
    (@returned nothing $ret:ty, $outcome:expr) => {{
        let _: $crate::hooks::intercept::Outcome = $outcome;
    }};

    (
        intercepted {
            $(
                $(#[$meta:meta])*
                fn $name:ident($($arg:ident: $type:ty),*) -> $ret:ty {
                    call: $call:ident,
                    $(advice: $advice:expr,)?
                    file: $file:ident $(($file_arg:expr))?,
                    check: $check:expr,
                    returns: $returns:ident,
                    cancellation_point: $cancellation_point:literal,
                    $(fallback: $fallback:ident,)?
                }
            )*
        }
        also_resolved {
            $($(#[$also_meta:meta])* $also:path,)*
        }
    ) => {
        $(
            $(#[$meta])*
            pub(crate) mod $name {
                // The table's types and checks (`sync` uses none).
                #[allow(unused_imports)]
                use super::*;

                $crate::sys::real::real!(
                    REAL,
                    $crate::sys::real::c_name(concat!(stringify!($name), "\0")),
                    fn($($type),*) -> $ret
                );

                /// The hook's body, reached from the trampoline with the
                /// caller's return address.
                pub(crate) extern "C-unwind" fn body($($arg: $type,)* caller: usize) -> $ret {
                    let real = REAL.get() $(.or_else(|| super::$fallback::REAL.get()))?;
                    let Some(real) = real else {
                        return $crate::hooks::hook_table::hook_table!(@missing $returns $ret);
                    };
                    let request = $crate::hooks::intercept::Request {
                        call: fadvise_shim_core::call::Call::$call,
                        caller,
                        raw_advice: $crate::hooks::hook_table::hook_table!(@advice $($advice)?),
                        file: $crate::hooks::hook_table::hook_table!(@file $file $($file_arg)?),
                        cancellation_point: $cancellation_point,
                    };
                    $crate::hooks::hook_table::hook_table!(
                        @returned $returns $ret,
                        $crate::hooks::intercept::intercept(
                            request,
                            || $check,
                            $crate::hooks::hook_table::hook_table!(@real $returns real($($arg),*)),
                            $crate::hooks::hook_table::hook_table!(@failed $returns),
                        )
                    )
                }
            }

            $crate::hooks::trampoline::with_caller!($name($($arg: $type),*) -> $ret, $name::body);
        )*

        /// Every next definition the library calls, which the constructor
        /// resolves (`startup.rs`): each hook's of the table, then the
        /// `also resolved` list.
        pub static RESOLVED_AT_START_UP: &[&$crate::sys::real::Real] = &[
            $($name::REAL.as_real(),)*
            $($(#[$also_meta])* $also.as_real(),)*
        ];

        /// Calls `each` with every hook of the table: its name and the
        /// address of the exported function (for lookups on a handle,
        /// `lookups.rs`).
        #[cfg(target_arch = "x86_64")]
        pub fn for_each_hook(mut each: impl FnMut(&'static [u8], usize)) {
            $(each(stringify!($name).as_bytes(), $name as *const () as usize);)*
        }

        /// The table's functions, by name.
        #[cfg(test)]
        pub const INTERCEPTED: &[&str] = &[$(stringify!($name)),*];
    };
}

pub(crate) use hook_table;
