//! Helpers for the install tests: roots to install into — small fake ones
//! built from the host's own glibc files or from hand-made ELF headers, a
//! musl root (musl's loader and a static busybox, no glibc file), and a real
//! Debian root made once by `debootstrap` and cached as a tarball —
//! a way to run programs inside a root (`chroot` with its own /proc, in a
//! private mount namespace so nothing leaks to the host), and snapshots of a
//! whole tree to prove that something changed nothing.
// Each test uses only part of this module.
#![allow(dead_code)]

pub mod docker;

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hasher};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

pub const LIBRARY_INSIDE: &str = "/usr/lib/fadvise-shim/libfadvise_shim.so";

pub use crate::common::{cli, library};

/// A finished command, with its output as text.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(command: &mut Command) -> Run {
        let output: Output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn success(self, what: &str) -> Run {
        assert_eq!(self.code, Some(0), "{what} failed:\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `fadvise-shim ARGS...`, without any shim settings from the environment.
pub fn fadvise_shim(args: &[&str]) -> Command {
    let mut command = Command::new(cli());
    command
        .args(args)
        .env_remove("LD_PRELOAD")
        .env("LC_ALL", "C");
    command
}

/// What is in a tree: for every entry (but those under `skip`), its type,
/// mode, owner and content (hash of a file, target of a symlink); with
/// `times`, also its inode and modification time, so that a file rewritten
/// with the same bytes counts as a change.
pub fn snapshot(root: &Path, skip: &[&str], times: bool) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let inside = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if skip.iter().any(|skipped| inside == *skipped) {
                continue;
            }
            let metadata = std::fs::symlink_metadata(&path).unwrap();
            let content = if metadata.is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if metadata.is_file() {
                let mut hasher = DefaultHasher::new();
                hasher.write(&std::fs::read(&path).unwrap());
                format!("file {:016x}", hasher.finish())
            } else {
                if metadata.is_dir() {
                    pending.push(path.clone());
                }
                "other".into()
            };
            let mut line = format!(
                "{content} mode {:o} owner {}:{}",
                metadata.permissions().mode(),
                metadata.uid(),
                metadata.gid()
            );
            if times {
                line += &format!(
                    " ino {} mtime {}.{:09}",
                    metadata.ino(),
                    metadata.mtime(),
                    metadata.mtime_nsec()
                );
            }
            entries.insert(inside, line);
        }
    }
    entries
}

/// Fails with the entries that differ.
pub fn assert_same_tree(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    what: &str,
) {
    let mut differences = Vec::new();
    for key in before
        .keys()
        .chain(after.keys().filter(|key| !before.contains_key(*key)))
    {
        if before.get(key) != after.get(key) {
            differences.push(format!(
                "{key}: {:?} -> {:?}",
                before.get(key),
                after.get(key)
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{what}:\n{}",
        differences.join("\n")
    );
}

/// A fresh directory under the target directory.
pub fn scratch() -> TempDir {
    tempfile::Builder::new()
        .prefix("install-test-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

/// The host's glibc loader, as `PT_INTERP` names it.
pub fn host_loader() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "/lib/ld-linux-aarch64.so.1"
    } else {
        "/lib64/ld-linux-x86-64.so.2"
    }
}

/// A tiny root that the library would load in: the host's `/bin/sh`, its
/// loader, and the libraries the shim needs, copied from the host (a Debian
/// bookworm machine), laid out as Debian does with merged /usr.
pub fn fake_glibc_root() -> TempDir {
    let root = scratch();
    let triplet = format!("{}-linux-gnu", std::env::consts::ARCH);
    let lib = format!("usr/lib/{triplet}");
    for dir in ["usr/bin", lib.as_str(), "usr/lib64", "etc"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        std::os::unix::fs::symlink(target, root.path().join(link)).unwrap();
    }
    let loader = host_loader().trim_start_matches('/');
    let copies = [
        ("/bin/sh".to_string(), "usr/bin/sh".to_string()),
        (host_loader().to_string(), format!("usr/{loader}")),
        (
            format!("/lib/{triplet}/libc.so.6"),
            format!("{lib}/libc.so.6"),
        ),
        (
            format!("/lib/{triplet}/libgcc_s.so.1"),
            format!("{lib}/libgcc_s.so.1"),
        ),
    ];
    for (from, to) in copies {
        let to = root.path().join(to);
        std::fs::copy(&from, &to).unwrap_or_else(|error| panic!("copy {from}: {error}"));
    }
    root
}

/// musl's loader (also its libc) as an x86_64 Alpine image has it.
pub const MUSL_LOADER: &str = "/lib/ld-musl-x86_64.so.1";

/// A musl root as small as Alpine's idea of one: musl's `libc.so` (Debian's
/// `musl` package) as `/lib/ld-musl-x86_64.so.1`, a static busybox as
/// `/bin/sh`, and empty `/etc`, `/tmp`, `/proc`; no glibc file.
pub fn musl_root() -> TempDir {
    let root = scratch();
    for dir in ["bin", "lib", "etc", "tmp", "proc"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    let copies = [
        ("/usr/lib/x86_64-linux-musl/libc.so", MUSL_LOADER),
        ("/bin/busybox", "/bin/sh"),
    ];
    for (from, to) in copies {
        std::fs::copy(from, root.path().join(to.trim_start_matches('/'))).unwrap_or_else(|error| {
            panic!("copy {from} (scripts/setup.sh installs musl-tools, busybox-static): {error}")
        });
    }
    root
}

/// A directory holding a copy of the CLI and, beside it as
/// `libfadvise_shim.so` (where install looks for the library), a stand-in
/// built from `install_support/stand_in.c` with `cc` and `flags`: a library
/// with exactly the loading needs a test wants, whatever the real one has.
pub fn cli_with_stand_in_library(flags: &[&str]) -> TempDir {
    let dir = scratch();
    std::fs::copy(cli(), dir.path().join("fadvise-shim")).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/install_support/stand_in.c");
    Run::of(
        Command::new("cc")
            .args(["-O2", "-Wall", "-shared", "-fPIC", "-o"])
            .arg(dir.path().join("libfadvise_shim.so"))
            .arg(&source)
            .args(flags),
    )
    .success("compiling stand_in.c");
    dir
}

/// ELF machine numbers (`e_machine`).
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// The ELF machine of this host.
pub fn host_machine() -> u16 {
    if cfg!(target_arch = "aarch64") {
        EM_AARCH64
    } else {
        EM_X86_64
    }
}

/// A minimal little-endian 64-bit ELF executable for `machine`: a header
/// and, given a loader path, one `PT_INTERP` program header naming it. It
/// cannot run; it only has to look like another system's `/bin/sh`.
pub fn tiny_elf(machine: u16, interpreter: Option<&str>) -> Vec<u8> {
    const HEADER_SIZE: u16 = 64;
    const PROGRAM_HEADER_SIZE: u16 = 56;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\x7fELF");
    bytes.extend_from_slice(&[2, 1, 1, 0]); // 64-bit, little-endian, version 1, System V
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    bytes.extend_from_slice(&machine.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes()); // e_version
    bytes.extend_from_slice(&0u64.to_le_bytes()); // e_entry
    let program_headers = u16::from(interpreter.is_some());
    let phoff = if program_headers == 1 {
        u64::from(HEADER_SIZE)
    } else {
        0
    };
    bytes.extend_from_slice(&phoff.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    bytes.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    bytes.extend_from_slice(&HEADER_SIZE.to_le_bytes());
    bytes.extend_from_slice(&PROGRAM_HEADER_SIZE.to_le_bytes());
    bytes.extend_from_slice(&program_headers.to_le_bytes());
    bytes.extend_from_slice(&[0; 6]); // e_shentsize, e_shnum, e_shstrndx
    if let Some(interpreter) = interpreter {
        let offset = u64::from(HEADER_SIZE + PROGRAM_HEADER_SIZE);
        let size = interpreter.len() as u64 + 1;
        bytes.extend_from_slice(&3u32.to_le_bytes()); // PT_INTERP
        bytes.extend_from_slice(&4u32.to_le_bytes()); // PF_R
        for field in [offset, offset, offset, size, size, 1] {
            bytes.extend_from_slice(&field.to_le_bytes());
        }
        bytes.extend_from_slice(interpreter.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// A root whose `/bin/sh` is `program`, plus these empty files.
pub fn fake_root(program: Option<Vec<u8>>, files: &[&str]) -> TempDir {
    let root = scratch();
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    if let Some(program) = program {
        std::fs::write(root.path().join("bin/sh"), program).unwrap();
    }
    for file in files {
        let path = root.path().join(file.trim_start_matches('/'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }
    root
}

/// A fresh copy of a minimal Debian bookworm root, or why there can be none
/// here. Made with `debootstrap --variant=minbase` once, then kept as
/// `target/debootstrap-cache/bookworm-minbase.tar`.
pub fn debian_root() -> Result<TempDir, String> {
    let tarball = debian_tarball()?;
    let root = scratch();
    Run::of(
        Command::new("tar")
            .arg("-C")
            .arg(root.path())
            .args(["--numeric-owner", "-xpf"])
            .arg(&tarball),
    )
    .success("unpacking the cached Debian root");
    Ok(root)
}

/// The cached tarball of a minimal Debian bookworm root (made once), or why
/// there can be none here: what `docker import` makes an image of, too.
pub fn debian_tarball() -> Result<PathBuf, String> {
    static TARBALL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TARBALL.get_or_init(cached_debootstrap).clone()
}

fn cached_debootstrap() -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("debootstrap, chroot and mount need root".into());
    }
    let usable = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    if !usable("debootstrap", &["--version"]) {
        return Err("debootstrap is not installed (scripts/setup.sh installs it)".into());
    }
    if !usable("unshare", &["--mount", "true"]) {
        return Err("cannot make a mount namespace here (unshare --mount failed)".into());
    }
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../debootstrap-cache");
    let tarball = cache.join("bookworm-minbase.tar");
    if tarball.is_file() {
        return Ok(tarball);
    }
    std::fs::create_dir_all(&cache).unwrap();
    let work = tempfile::Builder::new()
        .prefix("debootstrap-")
        .tempdir_in(&cache)
        .unwrap();
    let root = work.path().join("root");
    let mirror = debian_mirror();
    eprintln!("debootstrap: making a bookworm minbase root from {mirror}, once (about a minute)");
    let run = Run::of(
        Command::new("debootstrap")
            .args(["--variant=minbase", "bookworm"])
            .arg(&root)
            .arg(&mirror),
    );
    assert_eq!(
        run.code,
        Some(0),
        "debootstrap from {mirror} failed (Debian's mirror should be reachable):\n{run}"
    );
    let partial = work.path().join("root.tar");
    Run::of(
        Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["--numeric-owner", "-cf"])
            .arg(&partial)
            .arg("."),
    )
    .success("packing the Debian root");
    // Renamed into place whole: a concurrent run sees no tarball or all of it.
    std::fs::rename(&partial, &tarball).unwrap();
    Ok(tarball)
}

/// The Debian mirror this machine's apt uses for bookworm.
fn debian_mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "sources") {
                texts.push(std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
    }
    // deb822 stanzas: `URIs:` of one with the plain `bookworm` suite.
    for stanza in texts.iter().flat_map(|text| text.split("\n\n")) {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(name).map(str::trim))
        };
        let plain_bookworm = field("Suites:")
            .is_some_and(|suites| suites.split_whitespace().any(|suite| suite == "bookworm"));
        if let (true, Some(uri)) = (plain_bookworm, field("URIs:")) {
            return uri.split_whitespace().next().unwrap().to_string();
        }
    }
    // One-line style: `deb URI bookworm main`.
    let list = std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    for line in list.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let ["deb", .., uri, "bookworm", _] = words.as_slice() {
            return uri.to_string();
        }
    }
    "http://deb.debian.org/debian".into()
}

/// `chroot ROOT ARGS...` with /proc mounted inside, in a private mount
/// namespace: the mount vanishes with the command, nothing leaks.
pub fn in_chroot(root: &Path, args: &[&str]) -> Command {
    chroot_command(root, None, args)
}

/// `in_chroot`, as the user and group `uid:gid`.
pub fn in_chroot_as(root: &Path, user: &str, args: &[&str]) -> Command {
    chroot_command(root, Some(user), args)
}

fn chroot_command(root: &Path, user: Option<&str>, args: &[&str]) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t proc proc "$2/proc" && user="$1" && shift && exec chroot ${user:+--userspec="$user"} "$@""#)
        .arg("sh")
        .arg(user.unwrap_or_default())
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("LC_ALL", "C");
    command
}

/// Compiles `install_support/probe.c` into `destination` with `compiler`
/// (`cc`, or `musl-gcc` for a musl root).
pub fn compile_probe_with(compiler: &str, destination: &Path) {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/install_support/probe.c");
    Run::of(
        Command::new(compiler)
            .args(["-O2", "-Wall", "-o"])
            .arg(destination)
            .arg(&source),
    )
    .success("compiling probe.c");
}
