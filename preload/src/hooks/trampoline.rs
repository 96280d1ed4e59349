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

/// `with_caller!(name(args…) -> ret, body)` defines the exported `name`,
/// passing its return address to `body` as one more argument, in the next
/// integer argument register after `args` (`free_register!`). Every
/// argument must be an integer or a pointer, and there may be at most five:
/// `syscall()`, which has seven, has a trampoline of its own.
macro_rules! with_caller {
    ($name:ident($($arg:ident: $type:ty),*) -> $ret:ty, $body:path) => {
        #[cfg(target_arch = "x86_64")]
        #[unsafe(naked)]
        #[no_mangle]
        pub unsafe extern "C-unwind" fn $name($($arg: $type),*) -> $ret {
            std::arch::naked_asm!(
                concat!(
                    "mov ",
                    $crate::hooks::trampoline::free_register!($($arg)*),
                    ", qword ptr [rsp]"
                ),
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

/// The System V x86_64 register that carries the integer argument after
/// these (`rdi`, `rsi`, `rdx`, `rcx`, `r8`, `r9` in order).
macro_rules! free_register {
    () => {
        "rdi"
    };
    ($a:ident) => {
        "rsi"
    };
    ($a:ident $b:ident) => {
        "rdx"
    };
    ($a:ident $b:ident $c:ident) => {
        "rcx"
    };
    ($a:ident $b:ident $c:ident $d:ident) => {
        "r8"
    };
    ($a:ident $b:ident $c:ident $d:ident $e:ident) => {
        "r9"
    };
}

pub(crate) use {free_register, with_caller};
