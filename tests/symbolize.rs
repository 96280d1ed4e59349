//! Naming call sites in real ELF files: a shared library of C functions and
//! a namespaced C++ method (`tests/c_symbolize/`), built at test time and
//! then shipped the ways libraries are — with symbols, stripped, stripped
//! with a `.gnu_debuglink` debug file, with a build-id debug directory,
//! missing, replaced by another build — plus Debian's own libc.
//!
//! The expected answers come from outside the code under test: addresses
//! from `nm`, build ids from `readelf -n`, stripping from `strip`/`objcopy`.
//! Each site is a function's start + 5, standing for a return address; its
//! expected offset is therefore 5.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fadvise_shim_cli::symbolize::{Named, Options, Site, Symbolizer};
use tempfile::TempDir;

/// The functions in the library: linkage name and demangled name.
const FUNCTIONS: [(&str, &str); 4] = [
    ("alpha", "alpha"),
    ("beta", "beta"),
    ("hidden_helper", "hidden_helper"),
    (
        "_ZN5outer5inner6Writer5writeEblPKcm",
        "outer::inner::Writer::write(bool, long, char const*, unsigned long)",
    ),
];

/// Stands for a return address 5 bytes into a function.
const INTO: u64 = 5;

const LIBRARY: &str = "libsites.so";

/// Runs `program` in `dir`, which must succeed; returns its stdout.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|error| panic!("{program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {args:?}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `tests/c_symbolize/sites.{c,cpp}` built as `dir/libsites.so`, with a
/// build id, without optimisation so that every function stays a function.
fn build(dir: &Path, extra: &[&str]) -> PathBuf {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c_symbolize");
    let c = sources.join("sites.c");
    let cpp = sources.join("sites.cpp");
    let mut args = vec!["-shared", "-fPIC", "-O0", "-Wl,--build-id=sha1"];
    args.extend(extra);
    args.extend(["-o", LIBRARY, "-x", "c"]);
    args.push(c.to_str().unwrap());
    args.extend(["-x", "c++"]);
    args.push(cpp.to_str().unwrap());
    run(dir, "g++", &args);
    dir.join(LIBRARY)
}

/// Every defined symbol's address, from `nm`.
fn nm(path: &Path) -> HashMap<String, u64> {
    run(
        Path::new("/"),
        "nm",
        &["--defined-only", path.to_str().unwrap()],
    )
    .lines()
    .filter_map(|line| {
        let mut fields = line.split_whitespace();
        let address = u64::from_str_radix(fields.next()?, 16).ok()?;
        let name = fields.nth(1)?;
        Some((name.to_owned(), address))
    })
    .collect()
}

/// The GNU build id, from `readelf -n`.
fn build_id(path: &Path) -> Vec<u8> {
    let notes = run(Path::new("/"), "readelf", &["-n", path.to_str().unwrap()]);
    let hex = notes
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .expect("a build id");
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).unwrap())
        .collect()
}

/// Whether the file still has a `.symtab` section, from `readelf -S`.
fn has_symtab(path: &Path) -> bool {
    run(
        Path::new("/"),
        "readelf",
        &["-S", "-W", path.to_str().unwrap()],
    )
    .contains(".symtab")
}

/// Options that look for debug files only in `debug_dir`, so that what the
/// machine has installed cannot change the answer.
fn only_debug_dir(debug_dir: &Path) -> Options {
    Options {
        root: None,
        debug_dirs: vec![debug_dir.to_path_buf()],
    }
}

fn name(options: Options, module: &Path, address: u64, build_id: Option<&[u8]>) -> Named {
    Symbolizer::new(options).name(&Site {
        module,
        address,
        build_id,
    })
}

/// Every function is named, demangled, at offset 5, with nothing to say,
/// for calls recorded from the build `id`.
fn assert_all_named(options: &Options, module: &Path, id: &[u8], addresses: &HashMap<String, u64>) {
    let mut symbolizer = Symbolizer::new(options.clone());
    for (symbol, demangled) in FUNCTIONS {
        let named = symbolizer.name(&Site {
            module,
            address: addresses[symbol] + INTO,
            build_id: Some(id),
        });
        assert_eq!(
            named,
            Named {
                module: LIBRARY.into(),
                function: Some(demangled.into()),
                offset: INTO,
                why_not: None
            },
            "{symbol}"
        );
    }
}

#[test]
fn a_library_with_symbols_names_every_function_demangled() {
    let dir = TempDir::new().unwrap();
    let library = build(dir.path(), &[]);
    let addresses = nm(&library);
    assert_all_named(
        &only_debug_dir(dir.path()),
        &library,
        &build_id(&library),
        &addresses,
    );
    let named = name(
        Options::default(),
        &library,
        addresses["_ZN5outer5inner6Writer5writeEblPKcm"] + INTO,
        None,
    );
    assert_eq!(
        named.to_string(),
        "libsites.so outer::inner::Writer::write(bool, long, char const*, unsigned long)+0x5"
    );
    // A return address just past a function (its last instruction was the
    // call, as for a `noreturn` callee) belongs to that function.
    let end = run(dir.path(), "nm", &["-S", LIBRARY])
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let start = u64::from_str_radix(fields[0], 16).ok()?;
            let size = u64::from_str_radix(fields.get(1)?, 16).ok()?;
            (fields.get(3) == Some(&"hidden_helper")).then_some(start + size)
        })
        .expect("nm -S gives hidden_helper's size");
    assert_eq!(end, addresses["beta"], "no padding between the functions");
    let named = name(Options::default(), &library, end, None);
    assert_eq!(
        named.to_string(),
        format!(
            "libsites.so hidden_helper+{:#x}",
            end - addresses["hidden_helper"]
        )
    );
    // An empty build id is no build id, not a different one.
    let named = name(
        Options::default(),
        &library,
        addresses["beta"] + INTO,
        Some(&[]),
    );
    assert_eq!(named.to_string(), "libsites.so beta+0x5");
}

#[test]
fn a_stripped_library_names_its_exports_and_not_its_static_function() {
    let dir = TempDir::new().unwrap();
    let library = build(dir.path(), &[]);
    let addresses = nm(&library);
    run(dir.path(), "strip", &["--strip-unneeded", LIBRARY]);
    assert!(!has_symtab(&library));
    let options = only_debug_dir(dir.path());
    let mut symbolizer = Symbolizer::new(options);
    for symbol in ["alpha", "beta", "_ZN5outer5inner6Writer5writeEblPKcm"] {
        let named = symbolizer.name(&Site {
            module: &library,
            address: addresses[symbol] + INTO,
            build_id: None,
        });
        assert_eq!(named.offset, INTO, "{symbol}");
        assert!(named.function.is_some(), "{symbol}");
        assert_eq!(named.why_not, None, "{symbol}");
    }
    // Just past alpha: .dynsym's nearest symbol, but not alpha's code.
    let hidden = addresses["hidden_helper"] + INTO;
    let named = symbolizer.name(&Site {
        module: &library,
        address: hidden,
        build_id: None,
    });
    assert_eq!(named.function, None);
    assert_eq!(named.offset, hidden);
    assert_eq!(
        named.to_string(),
        format!(
            "libsites.so+{hidden:#x} (no symbol covers it: the module is stripped and no debug file was found)"
        )
    );
}

/// `dir/libsites.so` stripped of everything but `.dynsym`, its symbols kept
/// in `dir/libsites.so.debug`, which `.gnu_debuglink` names when `link`.
fn split_debug_file(dir: &Path, link: bool) {
    let debug = format!("{LIBRARY}.debug");
    run(dir, "objcopy", &["--only-keep-debug", LIBRARY, &debug]);
    let link_option = format!("--add-gnu-debuglink={debug}");
    let mut args = vec!["--strip-unneeded"];
    if link {
        args.push(&link_option);
    }
    args.push(LIBRARY);
    run(dir, "objcopy", &args);
    assert!(!has_symtab(&dir.join(LIBRARY)));
}

#[test]
fn a_debuglink_is_followed_next_to_the_module_in_debug_and_under_the_debug_dir() {
    let dir = TempDir::new().unwrap();
    let lib_dir = dir.path().join("lib");
    let debug_dir = dir.path().join("debug");
    std::fs::create_dir_all(&lib_dir).unwrap();
    let library = build(&lib_dir, &[]);
    let addresses = nm(&library);
    let id = build_id(&library);
    split_debug_file(&lib_dir, true);
    let debug_file = lib_dir.join("libsites.so.debug");
    let options = only_debug_dir(&debug_dir);

    // Next to the module.
    assert_all_named(&options, &library, &id, &addresses);

    // In its .debug subdirectory.
    std::fs::create_dir(lib_dir.join(".debug")).unwrap();
    let in_dot_debug = lib_dir.join(".debug/libsites.so.debug");
    std::fs::rename(&debug_file, &in_dot_debug).unwrap();
    assert_all_named(&options, &library, &id, &addresses);

    // Under the debug directory, at the module's directory.
    let under_debug_dir = debug_dir
        .join(lib_dir.strip_prefix("/").unwrap())
        .join("libsites.so.debug");
    std::fs::create_dir_all(under_debug_dir.parent().unwrap()).unwrap();
    std::fs::rename(&in_dot_debug, &under_debug_dir).unwrap();
    assert_all_named(&options, &library, &id, &addresses);

    // Gone: back to .dynsym.
    std::fs::remove_file(&under_debug_dir).unwrap();
    let named = name(options, &library, addresses["hidden_helper"] + INTO, None);
    assert_eq!(named.function, None);
}

#[test]
fn a_debuglink_to_another_build_is_refused() {
    let dir = TempDir::new().unwrap();
    // Without build ids, only the debuglink's CRC tells the builds apart.
    let library = build(dir.path(), &["-Wl,--build-id=none"]);
    let addresses = nm(&library);
    split_debug_file(dir.path(), true);
    let options = only_debug_dir(dir.path());
    let named = name(
        options.clone(),
        &library,
        addresses["hidden_helper"] + INTO,
        None,
    );
    assert_eq!(named.function.as_deref(), Some("hidden_helper"));

    // Another build's debug file, under the same name.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    build(&other, &["-Wl,--build-id=none", "-DREPLACED"]);
    run(
        &other,
        "objcopy",
        &["--only-keep-debug", LIBRARY, "libsites.so.debug"],
    );
    std::fs::rename(
        other.join("libsites.so.debug"),
        dir.path().join("libsites.so.debug"),
    )
    .unwrap();
    let named = name(options, &library, addresses["hidden_helper"] + INTO, None);
    assert_eq!(named.function, None, "{named}");
}

/// Where Debian's `-dbgsym` packages put a build's debug file.
fn build_id_path(debug_dir: &Path, id: &[u8]) -> PathBuf {
    let hex: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
    debug_dir
        .join(".build-id")
        .join(&hex[..2])
        .join(format!("{}.debug", &hex[2..]))
}

#[test]
fn a_build_id_debug_dir_names_a_stripped_module_and_a_vanished_one() {
    let dir = TempDir::new().unwrap();
    let library = build(dir.path(), &[]);
    let addresses = nm(&library);
    let id = build_id(&library);
    split_debug_file(dir.path(), false);
    let debug_dir = dir.path().join("debug");
    let debug_file = build_id_path(&debug_dir, &id);
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    std::fs::rename(dir.path().join("libsites.so.debug"), &debug_file).unwrap();
    let options = only_debug_dir(&debug_dir);
    assert_all_named(&options, &library, &id, &addresses);

    // The module itself is gone (a container's, say): the recorded build id
    // still finds its debug file.
    std::fs::remove_file(&library).unwrap();
    let named = name(
        options.clone(),
        &library,
        addresses["hidden_helper"] + INTO,
        Some(&id),
    );
    assert_eq!(named.to_string(), "libsites.so hidden_helper+0x5");
    // Without the build id, nothing says which debug file it was.
    let named = name(options, &library, addresses["hidden_helper"] + INTO, None);
    assert_eq!(named.function, None);
}

#[test]
fn a_missing_module_gives_its_name_offset_and_why() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("gone/libsites.so");
    let named = name(
        Options::default(),
        &missing,
        0x1123,
        Some(&[0xab, 0xcd, 0xef]),
    );
    assert_eq!(
        named.to_string(),
        format!(
            "libsites.so+0x1123 (cannot read {}: No such file or directory)",
            missing.display()
        )
    );
}

#[test]
fn a_process_root_is_tried_before_the_plain_path() {
    let dir = TempDir::new().unwrap();
    // The host has one build at the path, the container another.
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let host_library = build(&host, &["-DREPLACED"]);
    let root = dir.path().join("root");
    let in_root = root.join(host.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&in_root).unwrap();
    let container_library = build(&in_root, &[]);
    let addresses = nm(&container_library);
    let id = build_id(&container_library);
    let options = Options {
        root: Some(root),
        debug_dirs: Vec::new(),
    };
    assert_all_named(&options, &host_library, &id, &addresses);

    // Gone from the root: the plain path is read, and its build id shows it
    // is not the build that made the calls.
    std::fs::remove_file(&container_library).unwrap();
    let named = name(options, &host_library, addresses["beta"] + INTO, Some(&id));
    let why = named.why_not.expect("a warning");
    assert!(why.starts_with("build id differs"), "{why}");
}

#[test]
fn a_replaced_module_is_still_named_but_said_to_have_changed() {
    let dir = TempDir::new().unwrap();
    let library = build(dir.path(), &[]);
    let addresses = nm(&library);
    let recorded = build_id(&library);
    let debug_dir = dir.path().join("debug");
    // The build that made the calls is replaced by another at the same path.
    let debug_file = build_id_path(&debug_dir, &recorded);
    std::fs::create_dir_all(debug_file.parent().unwrap()).unwrap();
    run(
        dir.path(),
        "objcopy",
        &["--only-keep-debug", LIBRARY, debug_file.to_str().unwrap()],
    );
    build(dir.path(), &["-DREPLACED"]);
    let now = build_id(&library);
    assert_ne!(recorded, now);

    // With the recorded build's debug file, the name is right.
    let options = only_debug_dir(&debug_dir);
    let named = name(options, &library, addresses["beta"] + INTO, Some(&recorded));
    assert_eq!(named.to_string(), "libsites.so beta+0x5");

    // Without it, the file on disk names it, with a warning.
    std::fs::remove_file(&debug_file).unwrap();
    let options = only_debug_dir(&debug_dir);
    let named = name(options, &library, addresses["beta"] + INTO, Some(&recorded));
    assert!(named.function.is_some(), "{named}");
    let why = named.why_not.expect("a warning");
    assert!(why.starts_with("build id differs"), "{why}");
    let hex = |id: &[u8]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert!(
        why.contains(&hex(&recorded)) && why.contains(&hex(&now)),
        "{why}"
    );
}

#[test]
fn bad_modules_and_addresses_are_reported_not_panicked_on() {
    let dir = TempDir::new().unwrap();
    let library = build(dir.path(), &[]);
    let bytes = std::fs::read(&library).unwrap();
    let truncated = dir.path().join("truncated.so");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let empty = dir.path().join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    let garbage = dir.path().join("garbage.so");
    std::fs::write(&garbage, b"\x7fELF\x02\x01\x01\x00 not really").unwrap();
    let mut symbolizer = Symbolizer::new(only_debug_dir(dir.path()));
    for module in [&truncated, &empty, &garbage, &dir.path().to_path_buf()] {
        for address in [0, 1, 0x1123, u64::MAX] {
            let named = symbolizer.name(&Site {
                module,
                address,
                build_id: Some(b"\x01"),
            });
            assert!(
                named.function.is_some() || named.why_not.is_some(),
                "{}: {named}",
                module.display()
            );
        }
    }
    for (address, why) in [
        (0, "0x0 is not a return address"),
        (u64::MAX, "0xffffffffffffffff is outside the module's code"),
        (0x10, "0x10 is outside the module's code"),
    ] {
        let named = symbolizer.name(&Site {
            module: &library,
            address,
            build_id: None,
        });
        assert_eq!(named.function, None);
        assert_eq!(named.why_not.as_deref(), Some(why));
    }
}

#[test]
fn fsync_in_debians_libc_is_named_fsync() {
    let libc = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
    let exports = run(
        Path::new("/"),
        "nm",
        &["-D", "--defined-only", libc.to_str().unwrap()],
    );
    let fsync = exports
        .lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.next()?;
            let kind = fields.next()?;
            let name = fields.next()?;
            (kind == "T" && name.split('@').next() == Some("fsync"))
                .then(|| u64::from_str_radix(address, 16).unwrap())
        })
        .expect("libc exports fsync");
    let id = build_id(libc);
    let named = name(Options::default(), libc, fsync + INTO, Some(&id));
    assert_eq!(named.to_string(), "libc.so.6 fsync+0x5");
}

/// A debug link is a name in the module's own directory, which a process in
/// a container controls: a FIFO planted there must not make a report wait
/// for a writer, nor a directory be read as a debug file.
#[test]
fn a_debuglink_to_a_fifo_or_a_directory_names_nothing_and_never_waits() {
    let dir = TempDir::new().unwrap();
    let library = build(dir.path(), &["-Wl,--build-id=none"]);
    let addresses = nm(&library);
    split_debug_file(dir.path(), true);
    let debug_file = dir.path().join("libsites.so.debug");
    let options = only_debug_dir(&dir.path().join("no-debug-dir"));
    for plant in ["fifo", "directory"] {
        let _ = std::fs::remove_file(&debug_file);
        let _ = std::fs::remove_dir(&debug_file);
        if plant == "fifo" {
            run(dir.path(), "mkfifo", &["libsites.so.debug"]);
        } else {
            std::fs::create_dir(&debug_file).unwrap();
        }
        let (sender, receiver) = std::sync::mpsc::channel();
        let (options, library) = (options.clone(), library.clone());
        let hidden = addresses["hidden_helper"] + INTO;
        std::thread::spawn(move || {
            let _ = sender.send(name(options, &library, hidden, None));
        });
        let named = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("naming waited on a {plant} named by the debug link"));
        assert_eq!(named.function, None, "{plant}");
    }
}
