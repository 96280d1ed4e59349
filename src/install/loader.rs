//! Would `libfadvise_shim.so` load in this root? Checked before anything is
//! written, from the files alone: the root's own programs say which loader
//! and architecture it uses (`PT_INTERP` and the ELF machine of `/bin/sh`),
//! and the root's libraries must provide what the library needs. In a glibc
//! root that is each `DT_NEEDED` file and every symbol version (`GLIBC_2.34`,
//! ...) it needs from them. In a musl root (`/lib/ld-musl-ARCH.so.1`, which
//! is the loader and libc in one) the loader stands in for `libc.so.6` and
//! its siblings and ignores versions, so what counts is that each other
//! `DT_NEEDED` file is on musl's search path and that every non-weak symbol
//! the library imports is exported there. A library that cannot load makes
//! the loader complain in every process it is preloaded into, so install
//! refuses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use object::Architecture;

use super::root::Root;
use crate::elf::{self, ElfFacts};
use crate::library::LIBRARY_NAME;
use crate::Failure;

/// Programs nearly every image has, to learn the root's loader from.
const REFERENCE_PROGRAMS: [&str; 2] = ["/bin/sh", "/usr/bin/env"];

/// The C library of a root the library would load in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    Glibc,
    /// musl: no `/etc/ld.so.preload`, only `LD_PRELOAD`.
    Musl,
}

/// A root the library would load in.
pub struct Accepted {
    /// One line about the root: machine, loader, libc.
    pub description: String,
    pub libc: Libc,
}

/// Checks that the library in `library` would load in `root`.
pub fn check(root: &Root, library: &[u8]) -> Result<Accepted, Failure> {
    let refuse = |reason: String| {
        Failure(format!(
            "cannot install into {}: {reason}",
            root.dir().display()
        ))
    };
    let library = elf::read_facts(library)
        .ok()
        .ok_or_else(|| refuse(format!("{LIBRARY_NAME} is not ELF")))?;
    let Some((program_path, program)) = reference_program(root) else {
        if let Some(musl) = musl_loader(root) {
            return check_musl(root, &musl, &library).map_err(refuse);
        }
        return Err(refuse(format!(
            "no loader: neither {} is a program there (is it an image's root file system?)",
            REFERENCE_PROGRAMS.join(" nor ")
        )));
    };
    if (program.architecture, program.bits) != (library.architecture, library.bits) {
        return Err(refuse(format!(
            "foreign architecture: {program_path} is {}, {LIBRARY_NAME} is {}",
            describe_machine(&program),
            describe_machine(&library)
        )));
    }
    let loader = match &program.interpreter {
        Some(interpreter) if file_name(interpreter).starts_with("ld-musl-") => {
            return check_musl(root, interpreter, &library).map_err(refuse)
        }
        Some(interpreter) if !root.resolve(interpreter).exists() => {
            return Err(refuse(format!(
                "no loader: {interpreter}, the loader of {program_path}, is missing"
            )))
        }
        Some(interpreter) => interpreter.clone(),
        // A static /bin/sh (busybox) says nothing; the libraries decide.
        None => match musl_loader(root) {
            Some(musl) => return check_musl(root, &musl, &library).map_err(refuse),
            None => format!("none for {program_path} (static)"),
        },
    };
    let mut provided = Vec::new();
    for name in &library.needed {
        let Some((path, info)) = find_library(root, name, &library) else {
            return Err(refuse(format!(
                "no {name} in the library directories, and {LIBRARY_NAME} needs it{}",
                if name.starts_with("libc.so") || name.starts_with("ld-linux") {
                    " (not a glibc root)"
                } else {
                    ""
                }
            )));
        };
        provided.push((name.clone(), path, info));
    }
    for (file, versions) in &library.version_needs {
        let Some((_, path, info)) = provided.iter().find(|(name, _, _)| name == file) else {
            continue;
        };
        let missing = missing_versions(versions, &info.version_definitions);
        if let Some(first) = missing.first() {
            let newest = newest_version(&info.version_definitions, version_family(first))
                .map_or(String::new(), |newest| format!(" (it has up to {newest})"));
            return Err(refuse(format!(
                "{} is too old: {LIBRARY_NAME} needs {}{newest}",
                path.display(),
                missing.join(", ")
            )));
        }
    }
    let libc = provided
        .iter()
        .find(|(name, _, _)| name.starts_with("libc.so"))
        .and_then(|(_, _, info)| newest_version(&info.version_definitions, "GLIBC"))
        .unwrap_or("no libc");
    Ok(Accepted {
        description: format!(
            "{} root, loader {loader}, {libc}",
            describe_machine(&program)
        ),
        libc: Libc::Glibc,
    })
}

/// Would the library load under the musl loader at `loader` (a path inside
/// the root)? The reason for refusing if not.
fn check_musl(root: &Root, loader: &str, library: &ElfFacts) -> Result<Accepted, String> {
    let libc = std::fs::read(root.resolve(loader))
        .ok()
        .and_then(|bytes| elf::read_facts(&bytes).ok())
        .ok_or_else(|| format!("musl root, but its loader {loader} is missing or not ELF"))?;
    if (libc.architecture, libc.bits) != (library.architecture, library.bits) {
        return Err(format!(
            "foreign architecture: {loader} is {}, {LIBRARY_NAME} is {}",
            describe_machine(&libc),
            describe_machine(library)
        ));
    }
    let path_file = std::fs::read_to_string(root.resolve(&elf::musl_path_file(loader)));
    let search = elf::musl_search_path(&path_file.unwrap_or_default());
    let mut exported: BTreeSet<&str> = libc.exports.iter().map(String::as_str).collect();
    let mut found = Vec::new();
    for name in library.needed.iter().filter(|name| !musl_provides(name)) {
        let Some(facts) = search.iter().find_map(|directory| {
            let bytes = std::fs::read(root.resolve(&format!("{directory}/{name}"))).ok()?;
            let facts = elf::read_facts(&bytes).ok()?;
            ((facts.architecture, facts.bits) == (library.architecture, library.bits))
                .then_some(facts)
        }) else {
            return Err(format!(
                "musl root ({loader}): {LIBRARY_NAME} needs {name}, which musl's loader does \
                 not provide and is not in {}",
                search.join(":")
            ));
        };
        found.push(facts);
    }
    exported.extend(
        found
            .iter()
            .flat_map(|facts| facts.exports.iter().map(String::as_str)),
    );
    let missing: Vec<&str> = library
        .required_imports
        .iter()
        .map(String::as_str)
        .filter(|name| !exported.contains(name))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "musl root ({loader}): {LIBRARY_NAME} needs {}, which musl does not export \
             (a library built for glibc only)",
            missing.join(", ")
        ));
    }
    Ok(Accepted {
        description: format!("{} root, loader {loader} (musl)", describe_machine(&libc)),
        libc: Libc::Musl,
    })
}

/// Whether musl's loader answers a `DT_NEEDED` of `name` with itself: it
/// maps `libc`, `libpthread`, `librt`, `libm`, `libdl`, `libutil` and
/// `libxnet` (any `.so` suffix) to its own libc (`ldso/dynlink.c`).
fn musl_provides(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("lib") else {
        return false;
    };
    ["c", "pthread", "rt", "m", "dl", "util", "xnet"]
        .iter()
        .any(|reserved| {
            rest.strip_prefix(reserved)
                .is_some_and(|tail| tail.starts_with('.'))
        })
}

/// The first reference program that is an ELF file, with its path inside.
fn reference_program(root: &Root) -> Option<(&'static str, ElfFacts)> {
    REFERENCE_PROGRAMS.into_iter().find_map(|path| {
        let bytes = std::fs::read(root.resolve(path)).ok()?;
        Some((path, elf::read_facts(&bytes).ok()?))
    })
}

/// A musl loader (`/lib/ld-musl-ARCH.so.1`) in the root, as seen inside.
fn musl_loader(root: &Root) -> Option<String> {
    let entries = std::fs::read_dir(root.resolve("/lib")).ok()?;
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .find(|name| name.starts_with("ld-musl-"))
        .map(|name| format!("/lib/{name}"))
}

/// `name` in the root's system library directories, built for the same
/// machine as `like` (a 32-bit `/lib` on a multilib root does not count).
fn find_library(root: &Root, name: &str, like: &ElfFacts) -> Option<(PathBuf, ElfFacts)> {
    let mut directories = Vec::new();
    if let Some(triplet) = multiarch_triplet(like.architecture) {
        directories.push(format!("/lib/{triplet}"));
        directories.push(format!("/usr/lib/{triplet}"));
    }
    directories.extend(["/lib64", "/usr/lib64", "/lib", "/usr/lib"].map(String::from));
    directories.iter().find_map(|directory| {
        let path = root.resolve(&format!("{directory}/{name}"));
        let info = elf::read_facts(&std::fs::read(&path).ok()?).ok()?;
        let same_machine = (info.architecture, info.bits) == (like.architecture, like.bits);
        same_machine.then_some((path, info))
    })
}

/// Debian's multiarch directory name for an architecture.
fn multiarch_triplet(architecture: Architecture) -> Option<&'static str> {
    match architecture {
        Architecture::X86_64 => Some("x86_64-linux-gnu"),
        Architecture::Aarch64 => Some("aarch64-linux-gnu"),
        Architecture::I386 => Some("i386-linux-gnu"),
        Architecture::Arm => Some("arm-linux-gnueabihf"),
        Architecture::PowerPc64 => Some("powerpc64le-linux-gnu"),
        Architecture::S390x => Some("s390x-linux-gnu"),
        Architecture::Riscv64 => Some("riscv64-linux-gnu"),
        _ => None,
    }
}

fn describe_machine(info: &ElfFacts) -> String {
    format!("{:?} ({}-bit)", info.architecture, info.bits).to_lowercase()
}

fn file_name(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The needed versions that are not defined, in the order needed.
fn missing_versions(needed: &[String], defined: &[String]) -> Vec<String> {
    needed
        .iter()
        .filter(|version| !defined.contains(version))
        .cloned()
        .collect()
}

/// `GLIBC` for `GLIBC_2.34`.
fn version_family(version: &str) -> &str {
    version.split('_').next().unwrap_or(version)
}

/// The highest `FAMILY_x.y.z` in `defined`, comparing numbers, not text.
fn newest_version<'a>(defined: &'a [String], family: &str) -> Option<&'a str> {
    defined
        .iter()
        .filter_map(|version| {
            let number = version.strip_prefix(family)?.strip_prefix('_')?;
            let parts: Option<Vec<u32>> = number.split('.').map(|part| part.parse().ok()).collect();
            Some((parts?, version.as_str()))
        })
        .max()
        .map(|(_, version)| version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn versions_compare_as_numbers() {
        let defined = names(&["GLIBC_2.2.5", "GLIBC_2.9", "GLIBC_2.36", "GLIBC_PRIVATE"]);
        assert_eq!(newest_version(&defined, "GLIBC"), Some("GLIBC_2.36"));
        assert_eq!(newest_version(&defined, "GCC"), None);
        assert_eq!(version_family("GLIBC_2.34"), "GLIBC");
    }

    #[test]
    fn musl_answers_libc_and_its_siblings_itself() {
        for name in [
            "libc.so.6",
            "libc.so",
            "libpthread.so.0",
            "libm.so.6",
            "libdl.so.2",
        ] {
            assert!(musl_provides(name), "{name}");
        }
        for name in [
            "ld-linux-x86-64.so.2",
            "libgcc_s.so.1",
            "libcrypt.so.1",
            "libmagic.so",
        ] {
            assert!(!musl_provides(name), "{name}");
        }
    }

    #[test]
    fn an_older_glibc_lacks_versions() {
        let needed = names(&["GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.33"]);
        let old = names(&["GLIBC_2.2.5", "GLIBC_2.28", "GLIBC_2.31"]);
        assert_eq!(
            missing_versions(&needed, &old),
            names(&["GLIBC_2.34", "GLIBC_2.33"])
        );
        let new = names(&["GLIBC_2.2.5", "GLIBC_2.33", "GLIBC_2.34", "GLIBC_2.36"]);
        assert!(missing_versions(&needed, &new).is_empty());
    }
}
