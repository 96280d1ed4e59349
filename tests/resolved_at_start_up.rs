//! Every hook's real function is looked up at start-up, never inside the
//! hook: `dlsym` takes the loader's lock, which a hook must not (a call from
//! a signal handler, or from another library's constructor while the loader
//! holds it, would deadlock). The library keeps one list of what its
//! constructor looks up, made by its hook table; this checks that list from
//! outside, against the built artifact: every function the library exports
//! (its dynamic symbol table, read with `nm -D`) must have been bound by the
//! library itself to another object before `main`, as glibc's loader
//! reports with `LD_DEBUG=bindings` (a `dlsym(RTLD_NEXT, …)` is reported as
//! a binding by the object that asked), and none after `main`, while the
//! program calls every one of them.
//!
//! A function this libc does not define cannot be bound; it is skipped.
//! `dlsym` and `dlvsym` themselves are found in the loaded objects' symbol
//! tables, not by a lookup (ours would reach our own hook), so no binding
//! reports them.

mod common;

use std::collections::BTreeSet;
use std::ffi::CString;

use common::{c_program, library, run, Scratch, Shim, TIMEOUT};

/// What `tests/c/after_start_up.c` writes to stderr as `main` begins.
const MAIN_MARK: &str = "after_start_up: main";

/// Exported, but not looked up with `dlsym` (see the opening comment).
const FOUND_IN_SYMBOL_TABLES: [&str; 2] = ["dlsym", "dlvsym"];

/// The symbol of an `LD_DEBUG=bindings` line in which `library` is bound
/// to another object: `binding file LIB [0] to OTHER [0]: normal symbol
/// `NAME' [VERSION]`.
fn bound_by(line: &str, library: &str) -> Option<String> {
    let rest = line.split_once("binding file ")?.1;
    let (from, rest) = rest.split_once(" [")?;
    let (to, rest) = rest.split_once(" to ")?.1.split_once(" [")?;
    if from != library || to == library {
        return None;
    }
    let name = rest.split_once("symbol `")?.1.split_once('\'')?.0;
    Some(name.to_string())
}

/// Whether any object in this process (the test, with the system's libc)
/// defines `name`.
fn libc_defines(name: &str) -> bool {
    let name = CString::new(name).unwrap();
    // SAFETY: a NUL-terminated name; RTLD_DEFAULT searches the global scope.
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }.is_null()
}

#[test]
fn every_exported_hook_has_its_real_function_looked_up_before_main() {
    let library = library();
    let library_name = library.to_str().expect("a UTF-8 path").to_string();
    let program = c_program("after_start_up");
    let scratch = Scratch::new();
    let mut command = scratch.command(&program, Shim::Default);
    command.env("LD_DEBUG", "bindings");
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("after_start_up");

    let lines: Vec<&str> = finished.stderr.lines().collect();
    let main = lines
        .iter()
        .position(|line| *line == MAIN_MARK)
        .unwrap_or_else(|| panic!("no {MAIN_MARK:?} line: {finished}"));
    let bound_before: BTreeSet<String> = lines[..main]
        .iter()
        .filter_map(|line| bound_by(line, &library_name))
        .collect();
    let bound_after: BTreeSet<String> = lines[main..]
        .iter()
        .filter_map(|line| bound_by(line, &library_name))
        .collect();

    let exported = common::exported_functions(&library);
    assert!(exported.contains("fsync"), "{exported:?}");
    let mut checked = 0;
    for name in &exported {
        if FOUND_IN_SYMBOL_TABLES.contains(&name.as_str()) {
            continue;
        }
        assert!(
            !bound_after.contains(name),
            "`{name}` was looked up after start-up, inside a hook"
        );
        if !libc_defines(name) {
            continue;
        }
        assert!(
            bound_before.contains(name),
            "`{name}` is exported but its real function was not looked up at \
             start-up: add it to the hook table's list (preload/src/hooks/exports.rs)"
        );
        checked += 1;
    }
    // posix_fadvise…msync, syscall, _exit, _Exit, the descriptor and signal
    // functions, dlclose: glibc has them all since 2.34.
    assert!(checked >= 20, "only {checked} checked: {bound_before:?}");
}
