//! One library for every libc, checked on the built artifact: its dynamic
//! section needs `libc.so.6` alone (musl maps that name to itself; glibc's
//! loader, `ld-linux-x86-64.so.2`, is a file musl images lack), and every
//! symbol it imports without `weak` is one that both glibc 2.36 (libc, its
//! loader, libm) and musl 1.2.3 export — so a new dependency cannot bring
//! back a program that exits 127 before `main`. Read with `readelf` and
//! `nm` from binutils; the libcs' symbol lists from the files themselves.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const GLIBC_FILES: [&str; 3] = [
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/libm.so.6",
];
const MUSL_LIBC: &str = "/usr/lib/x86_64-linux-musl/libc.so";

/// musl 1.2.4 drops the `*64` names and binds these, with the suffix cut,
/// for old binaries (`ldso/dynlink.c`, `lfs64_list`); any other `*64`
/// import would stop loading there.
const MUSL_LFS64: &[&str] = &[
    "aio_cancel",
    "aio_error",
    "aio_fsync",
    "aio_read",
    "aio_return",
    "aio_suspend",
    "aio_write",
    "alphasort",
    "creat",
    "fallocate",
    "fgetpos",
    "fopen",
    "freopen",
    "fseeko",
    "fsetpos",
    "fstat",
    "fstatat",
    "fstatfs",
    "fstatvfs",
    "ftello",
    "ftruncate",
    "ftw",
    "getdents",
    "getrlimit",
    "glob",
    "globfree",
    "lio_listio",
    "lockf",
    "lseek",
    "lstat",
    "mkostemp",
    "mkostemps",
    "mkstemp",
    "mkstemps",
    "mmap",
    "nftw",
    "open",
    "openat",
    "posix_fadvise",
    "posix_fallocate",
    "pread",
    "preadv",
    "prlimit",
    "pwrite",
    "pwritev",
    "readdir",
    "scandir",
    "sendfile",
    "setrlimit",
    "stat",
    "statfs",
    "statvfs",
    "tmpfile",
    "truncate",
    "versionsort",
];

fn tool(program: &str, args: &[&str], file: &Path) -> String {
    let output = Command::new(program)
        .args(args)
        .arg(file)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(output.status.success(), "{program} {args:?} {file:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `nm -D` lines of `file` as (kind letter, name without version).
fn dynamic_symbols(file: &Path, which: &str) -> Vec<(String, String)> {
    tool("nm", &["-D", which], file)
        .lines()
        .filter_map(|line| {
            let mut cells = line.split_whitespace().rev();
            let name = cells.next()?;
            let kind = cells.next()?;
            let name = name.split('@').next().unwrap_or(name);
            Some((kind.to_string(), name.to_string()))
        })
        .collect()
}

fn exported_by(files: &[&str]) -> BTreeSet<String> {
    files
        .iter()
        .flat_map(|file| dynamic_symbols(Path::new(file), "--defined-only"))
        .map(|(_, name)| name)
        .collect()
}

#[test]
fn the_library_needs_only_libc_so_6() {
    let dynamic = tool("readelf", &["-d", "-W"], &common::library());
    let needed: Vec<&str> = dynamic
        .lines()
        .filter(|line| line.contains("(NEEDED)"))
        .filter_map(|line| line.split('[').nth(1)?.split(']').next())
        .collect();
    assert_eq!(needed, ["libc.so.6"], "{dynamic}");
}

#[test]
fn every_strong_import_is_exported_by_glibc_and_musl() {
    let glibc = exported_by(&GLIBC_FILES);
    let musl = exported_by(&[MUSL_LIBC]);
    assert!(glibc.contains("fsync") && glibc.contains("__tls_get_addr"));
    assert!(musl.contains("fsync") && musl.contains("__tls_get_addr"));
    let imports = dynamic_symbols(&common::library(), "--undefined-only");
    assert!(imports.len() > 30, "{imports:?}");
    let mut missing = Vec::new();
    for (kind, name) in &imports {
        if kind != "U" {
            continue; // weak: the library checks for null before use
        }
        for (libc, exported) in [("glibc 2.36", &glibc), ("musl 1.2.3", &musl)] {
            if !exported.contains(name) {
                missing.push(format!("{name} (not in {libc})"));
            }
        }
        if let Some(base) = name.strip_suffix("64") {
            if musl.contains(base) && !MUSL_LFS64.contains(&base) {
                missing.push(format!("{name} (gone from musl 1.2.4)"));
            }
        }
    }
    assert!(missing.is_empty(), "imports a libc lacks: {missing:?}");
}

#[test]
fn glibc_only_facilities_are_not_named_in_the_dynamic_section() {
    // Found at run time instead, each with a fallback (or, for
    // `_dl_find_object`, defined hidden inside the library for its unwinder).
    let symbols = dynamic_symbols(&common::library(), "--undefined-only");
    for glibc_only in [
        "_dl_find_object",
        "__register_atfork",
        "close_range",
        "closefrom",
    ] {
        assert!(
            !symbols.iter().any(|(_, name)| name == glibc_only),
            "{glibc_only} is imported"
        );
    }
    let defined = dynamic_symbols(&common::library(), "--defined-only");
    assert!(
        !defined.iter().any(|(_, name)| name == "_dl_find_object"),
        "our _dl_find_object would stand in for glibc's in the whole process"
    );
}
