//! `fadvise-shim doctor PROGRAM`: whether `LD_PRELOAD=libfadvise_shim.so`
//! can reach a program, from its file alone (nothing is executed).
//!
//! The checks follow what stops a preload library, most fundamental first:
//! not a program (a `#!` script is judged by its interpreter), another
//! architecture, no loader (static), a loader that is neither glibc's nor
//! musl's (the one library loads under both), a Go runtime that makes system
//! calls itself, and secure execution (setuid, setgid, file capabilities),
//! where glibc applies only `/etc/ld.so.preload` and musl, which has no such
//! file, nothing.
//! Then it lists which intercepted functions the program and the libraries
//! it needs import: a call that is never imported is never seen. A program
//! for this machine that the library cannot reach (static, Go, another C
//! library) is reached by `run --supervise`, and the report says so.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fadvise_shim_core::call::Call;

use crate::elf::{self, ElfFacts, Loader};
use crate::library::LIBRARY_NAME;
use crate::{output, Failure, Outcome};

/// Interpreters of interpreters: a chain longer than this is a loop.
const MAX_SCRIPT_DEPTH: usize = 4;
const SYSTEM_PRELOAD_LIST: &str = "/etc/ld.so.preload";

/// What `doctor` concludes about a program.
enum Verdict {
    /// Reachable; the intercepted functions it imports (maybe none).
    Reachable(Vec<&'static str>),
    Unreachable(String),
}

pub fn main(target: &str) -> Outcome {
    let program = resolve(target)?;
    let mut report = Vec::new();
    let verdict = examine(&program, &mut report, 0)?;
    let name = program.display();
    let (line, code) = match verdict {
        Verdict::Reachable(imports) if imports.is_empty() => (
            format!("the shim can reach {name}, but it imports none of the intercepted calls"),
            ExitCode::SUCCESS,
        ),
        Verdict::Reachable(imports) => (
            format!(
                "the shim can reach {name} (imports: {})",
                imports.join(", ")
            ),
            ExitCode::SUCCESS,
        ),
        Verdict::Unreachable(reason) => (
            format!("the shim cannot reach {name}: {reason}"),
            ExitCode::FAILURE,
        ),
    };
    report.extend(super::squatted_directories());
    report.push(format!("verdict: {line}"));
    output::print(format!("{}\n", report.join("\n")).as_bytes())?;
    Ok(code)
}

/// A path, or a name looked up in `PATH` as a shell would.
fn resolve(target: &str) -> Result<PathBuf, Failure> {
    if target.contains('/') {
        let path = PathBuf::from(target);
        return match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => Err(Failure(format!("{target} is a directory"))),
            Ok(_) => Ok(path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                Err(Failure(format!("{target}: no such program")))
            }
            Err(error) => Err(Failure(format!("{target}: {error}"))),
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(target))
        .find(|path| {
            std::fs::metadata(path).is_ok_and(|metadata| {
                metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
            })
        })
        .ok_or_else(|| Failure(format!("{target}: no such program (not found in PATH)")))
}

fn examine(program: &Path, report: &mut Vec<String>, depth: usize) -> Result<Verdict, Failure> {
    let name = program.display();
    let bytes = std::fs::read(program).map_err(|error| Failure(format!("{name}: {error}")))?;
    if !elf::is_elf(&bytes) {
        let Some(interpreter) = script_interpreter(&bytes)? else {
            return Ok(Verdict::Unreachable(
                "not a program: neither an ELF file nor a #! script".into(),
            ));
        };
        report.push(format!(
            "{name}: script, runs under {}",
            interpreter.display()
        ));
        if depth >= MAX_SCRIPT_DEPTH {
            return Ok(Verdict::Unreachable(
                "too many nested #! interpreters".into(),
            ));
        }
        return examine(&interpreter, report, depth + 1);
    }
    let facts = elf::read_facts(&bytes).map_err(|error| Failure(format!("{name}: {error}")))?;
    if let Some(reason) = unreachable_elf(&facts) {
        report.push(format!("{name}: ELF, {}", architecture_name(&facts)));
        if !supervisor_reaches(&facts) {
            return Ok(Verdict::Unreachable(reason));
        }
        report.push(format!(
            "{name}: `fadvise-shim run --supervise` reaches it: its seccomp filter sees the \
             system calls themselves, whether libc, the Go runtime or an inline `syscall` \
             instruction makes them; {LIBRARY_NAME} sees only calls that go through the \
             dynamic loader's symbols"
        ));
        return Ok(Verdict::Unreachable(format!(
            "{reason} (run it with `fadvise-shim run --supervise`)"
        )));
    }
    let interpreter = facts.interpreter.as_deref().unwrap_or_default();
    let loader = Loader::of(interpreter);
    let libc = if loader == Loader::Musl {
        "musl: LD_PRELOAD reaches it; musl has no /etc/ld.so.preload"
    } else {
        "glibc"
    };
    report.push(format!(
        "{name}: ELF, {}, dynamically linked, loader {interpreter} ({libc})",
        architecture_name(&facts)
    ));
    let imports = intercepted_imports(program, &facts, loader, report);
    if let Some(kind) = secure_execution_kind(program) {
        if loader == Loader::Musl {
            return Ok(Verdict::Unreachable(format!(
                "it {kind}: musl ignores LD_PRELOAD when it runs with raised privileges, and \
                 has no {SYSTEM_PRELOAD_LIST}"
            )));
        }
        report.push(format!(
            "{name} {kind}: LD_PRELOAD is ignored when it runs with raised privileges; \
             only {SYSTEM_PRELOAD_LIST} reaches it"
        ));
        if !system_preload_lists_library() {
            return Ok(Verdict::Unreachable(format!(
                "it {kind}, and {SYSTEM_PRELOAD_LIST} does not list {LIBRARY_NAME}"
            )));
        }
        report.push(format!("{SYSTEM_PRELOAD_LIST} lists {LIBRARY_NAME}"));
    }
    Ok(Verdict::Reachable(imports))
}

/// Why an ELF program cannot load the library at all, if it cannot.
fn unreachable_elf(facts: &ElfFacts) -> Option<String> {
    let host = elf::host_architecture();
    if host != Some(facts.architecture) {
        return Some(format!(
            "it is built for {}, {LIBRARY_NAME} for {}",
            architecture_name(facts),
            std::env::consts::ARCH
        ));
    }
    let Some(interpreter) = &facts.interpreter else {
        if facts.is_go {
            return Some(
                "statically linked Go program: it makes its system calls itself, and there \
                 is no loader to preload a library"
                    .into(),
            );
        }
        return Some("statically linked: there is no loader to preload a library".into());
    };
    if Loader::of(interpreter) == Loader::Unknown {
        return Some(format!(
            "it uses the loader {interpreter}, neither glibc's nor musl's; {LIBRARY_NAME} \
             loads under those two"
        ));
    }
    facts
        .is_go
        .then(|| "Go program: its page-cache calls bypass libc; the shim cannot see them".into())
}

/// Whether the seccomp supervisor can reach a program the library cannot:
/// its filter matches x86_64 system calls, so the program must be one for
/// this (x86_64) machine.
fn supervisor_reaches(facts: &ElfFacts) -> bool {
    cfg!(target_arch = "x86_64") && elf::host_architecture() == Some(facts.architecture)
}

/// `x86_64`, `aarch64`, `i386`...
fn architecture_name(facts: &ElfFacts) -> String {
    format!("{:?}", facts.architecture).to_lowercase()
}

/// The interpreter of a `#!` script; `#!/usr/bin/env NAME` means NAME in
/// `PATH`.
fn script_interpreter(bytes: &[u8]) -> Result<Option<PathBuf>, Failure> {
    let Some(rest) = bytes.strip_prefix(b"#!") else {
        return Ok(None);
    };
    let line = rest.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let Some(interpreter) = words.next() else {
        return Ok(None);
    };
    if Path::new(interpreter)
        .file_name()
        .is_some_and(|name| name == "env")
    {
        // `env -S` and other options come before the program's name.
        if let Some(program) = words.find(|word| !word.starts_with('-')) {
            return resolve(program).map(Some);
        }
    }
    resolve(interpreter).map(Some)
}

/// The intercepted functions imported by the program and by the libraries
/// it needs (one level deep), reported per file, in table order.
fn intercepted_imports(
    program: &Path,
    facts: &ElfFacts,
    loader: Loader,
    report: &mut Vec<String>,
) -> Vec<&'static str> {
    let mut all = intercepted(facts);
    note_imports(report, program, &all);
    let search = library_search_path(program, facts, loader);
    for needed in &facts.needed {
        // The C library defines these functions itself, and its internal
        // calls do not go through the PLT, so they cannot be interposed
        // anyway (musl's `libc.so` is its loader).
        if needed.starts_with("libc.so") || needed.starts_with("ld-linux") {
            continue;
        }
        match find_library(needed, &search, facts) {
            Some((path, library)) => {
                let imports = intercepted(&library);
                note_imports(report, &path, &imports);
                all.extend(imports);
            }
            None => report.push(format!("{needed}: not found, not examined")),
        }
    }
    all.sort_by_key(|name| entry_points().iter().position(|entry| entry == name));
    all.dedup();
    all
}

fn note_imports(report: &mut Vec<String>, file: &Path, imports: &[&str]) {
    if !imports.is_empty() {
        report.push(format!("{} imports {}", file.display(), imports.join(", ")));
    }
}

/// Every function name the library intercepts.
fn entry_points() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Call::ALL.iter().map(|call| call.name()).collect();
    let fadvise = names
        .iter()
        .position(|&name| name == "posix_fadvise")
        .unwrap_or(0);
    names.insert(fadvise + 1, "posix_fadvise64");
    names.push("syscall");
    names
}

fn intercepted(facts: &ElfFacts) -> Vec<&'static str> {
    entry_points()
        .into_iter()
        .filter(|name| facts.imports.contains(*name))
        .collect()
}

/// Where the loader looks for a needed library: `DT_RUNPATH` (or
/// `DT_RPATH`) with `$ORIGIN` expanded, then glibc's `/etc/ld.so.conf.d`
/// and defaults, or musl's `/etc/ld-musl-ARCH.path` (else its defaults).
fn library_search_path(program: &Path, facts: &ElfFacts, loader: Loader) -> Vec<PathBuf> {
    let origin = program
        .parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned();
    let mut dirs: Vec<PathBuf> = facts
        .search_path
        .iter()
        .map(|dir| {
            PathBuf::from(
                dir.replace("${ORIGIN}", &origin)
                    .replace("$ORIGIN", &origin),
            )
        })
        .collect();
    if loader == Loader::Musl {
        let interpreter = facts.interpreter.as_deref().unwrap_or_default();
        let path_file = std::fs::read_to_string(elf::musl_path_file(interpreter));
        dirs.extend(
            elf::musl_search_path(&path_file.unwrap_or_default())
                .into_iter()
                .map(PathBuf::from),
        );
        return dirs;
    }
    if let Ok(entries) = std::fs::read_dir("/etc/ld.so.conf.d") {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .collect();
        files.sort();
        for file in files
            .iter()
            .filter(|file| file.extension().is_some_and(|ext| ext == "conf"))
        {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            dirs.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| line.starts_with('/'))
                    .map(PathBuf::from),
            );
        }
    }
    dirs.extend(["/lib64", "/usr/lib64", "/lib", "/usr/lib"].map(PathBuf::from));
    dirs
}

/// The first library named `needed` in `search` built for the program's
/// architecture (the loader skips the others too).
fn find_library(
    needed: &str,
    search: &[PathBuf],
    program: &ElfFacts,
) -> Option<(PathBuf, ElfFacts)> {
    let candidates: Vec<PathBuf> = if needed.contains('/') {
        vec![PathBuf::from(needed)]
    } else {
        search.iter().map(|dir| dir.join(needed)).collect()
    };
    candidates.into_iter().find_map(|path| {
        let facts = elf::read_facts(&std::fs::read(&path).ok()?).ok()?;
        (facts.architecture == program.architecture).then_some((path, facts))
    })
}

/// `is setuid`, `is setgid` or `has file capabilities` when the program has them.
fn secure_execution_kind(program: &Path) -> Option<&'static str> {
    let mode = std::fs::metadata(program).ok()?.permissions().mode();
    if mode & 0o4000 != 0 {
        Some("is setuid")
    } else if mode & 0o2000 != 0 && mode & 0o010 != 0 {
        // Set-group-id without group execute is mandatory locking, not setgid.
        Some("is setgid")
    } else if has_file_capabilities(program) {
        Some("has file capabilities")
    } else {
        None
    }
}

fn has_file_capabilities(program: &Path) -> bool {
    let Ok(path) = CString::new(program.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and outlive the call; a null
    // buffer of size 0 asks only for the attribute's size.
    let size = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    size > 0
}

/// Whether `/etc/ld.so.preload` names the library (entries are separated by
/// white space or colons).
fn system_preload_lists_library() -> bool {
    std::fs::read_to_string(SYSTEM_PRELOAD_LIST).is_ok_and(|text| {
        text.split(|c: char| c.is_whitespace() || c == ':')
            .any(|entry| {
                Path::new(entry)
                    .file_name()
                    .is_some_and(|name| name == LIBRARY_NAME)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_cover_every_call_and_its_aliases() {
        let names = entry_points();
        assert_eq!(names.len(), Call::COUNT + 2);
        assert!(names.contains(&"posix_fadvise64") && names.contains(&"syscall"));
        assert!(names.contains(&"msync") && names.contains(&"sync_file_range"));
    }

    #[test]
    fn env_scripts_name_their_interpreter_in_path() {
        let sh = script_interpreter(b"#!/usr/bin/env -S sh -e\necho\n")
            .unwrap()
            .unwrap();
        assert_eq!(sh.file_name().unwrap(), "sh");
        assert_eq!(script_interpreter(b"echo hi\n").unwrap(), None);
    }
}
