//! The ABI: `libfadvise_shim.so` exports every intercepted entry point (and
//! the signal functions it shares with the program) and nothing of its
//! insides; the CLI defines none of them, so it is never a shim itself.
//! Read from the files' dynamic symbol tables with `nm -D`.

mod common;

use std::path::Path;
use std::process::Command;

use common::ENTRY_POINTS;

/// Function symbols `file` defines in its dynamic symbol table.
fn defined_functions(file: &Path) -> Vec<String> {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(file)
        .output()
        .expect("nm runs");
    assert!(output.status.success(), "nm {file:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut cells = line.split_whitespace().rev();
            let name = cells.next()?;
            let kind = cells.next()?;
            (kind == "T" || kind == "W").then(|| name.split('@').next().unwrap_or(name).to_string())
        })
        .collect()
}

#[test]
fn the_library_exports_exactly_the_hooks() {
    let mut exported = defined_functions(&common::library());
    exported.sort();
    let mut expected: Vec<String> = ENTRY_POINTS
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
    expected.sort();
    assert_eq!(exported, expected);
}

#[test]
fn the_cli_defines_none_of_them() {
    let defined = defined_functions(&common::cli());
    for name in ENTRY_POINTS {
        assert!(
            !defined.iter().any(|symbol| symbol == name),
            "the CLI defines {name}"
        );
    }
}
