//! Hooks that know their caller: each exported function is a two-instruction
//! trampoline that puts its return address (the instruction after the
//! program's `call`, through the PLT) into the first argument register its
//! signature leaves free, then tail-jumps to a body that takes it as one
//! more argument. The body runs in the trampoline's place — same stack,
//! same return address — so unwinding (thread cancellation inside `fsync`)
//! and stack traces see the program's frame directly above the body's.
//!
//! Elsewhere than x86_64 the functions are plain and the caller unknown
//! (0): calls are counted, without sites.

/// `with_caller!(name(args…) -> ret, "register", body)` defines the
/// exported `name`, passing its return address to `body` in `register`
/// (the next integer argument register after `args`).
macro_rules! with_caller {
    ($name:ident($($arg:ident: $type:ty),*) -> $ret:ty, $register:literal, $body:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($($arg: $type),*) -> $ret {
            std::arch::naked_asm!(
                concat!("mov ", $register, ", qword ptr [rsp]"),
                "jmp {body}",
                body = sym $body,
            )
        }

        #[cfg(not(target_arch = "x86_64"))]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($($arg: $type),*) -> $ret {
            $body($($arg,)* 0)
        }
    };
}

pub(crate) use with_caller;
