//! The ABI: `libfadvise_shim.so` exports every intercepted entry point (and
//! the signal functions it shares with the program) and nothing of its
//! insides; the CLI defines none of them, so it is never a shim itself.
//! Read from the files' dynamic symbol tables with `nm -D`.

mod common;

use common::ENTRY_POINTS;

#[test]
fn the_library_exports_exactly_the_hooks() {
    let exported = common::exported_functions(&common::library());
    let expected: std::collections::BTreeSet<String> = ENTRY_POINTS
        .iter()
        .chain(&[
            "_exit",
            "_Exit",
            "sigaction",
            "signal",
            "bsd_signal",
            "sysv_signal",
            // Guarding the stats file's lock descriptor.
            "close",
            "close_range",
            "closefrom",
            "dup2",
            "dup3",
            // Handing our hooks to lookups on a handle (ctypes, plugins).
            "dlsym",
            "dlvsym",
            // Telling objects unloaded apart from those loaded later, for
            // call sites.
            "dlclose",
        ])
        .map(|name| name.to_string())
        .collect();
    assert_eq!(exported, expected);
}

#[test]
fn the_cli_defines_none_of_them() {
    let defined = common::exported_functions(&common::cli());
    for name in ENTRY_POINTS {
        assert!(
            !defined.iter().any(|symbol| symbol == name),
            "the CLI defines {name}"
        );
    }
}
