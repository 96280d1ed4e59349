//! `fadvise-shim install --root DIR` and `fadvise-shim uninstall --root DIR`:
//! put the library, the CLI and a policy into an image's root file system
//! (optionally enabling the library for every process through
//! `/etc/ld.so.preload`), and take out exactly that again.
//!
//! Nothing is written before the root is known to load the library
//! (`loader`), with glibc or with musl. musl has no `/etc/ld.so.preload`:
//! in a musl root `--preload global` says so and prints the `ENV
//! LD_PRELOAD=...` line instead of editing a file its loader never reads.
//! Every file is written atomically and only when its content changes, so a second install touches nothing. What install created is
//! recorded in a manifest (`manifest`), and uninstall removes only that:
//! files that were already there (say, from the Debian package) stay, and so
//! does a file someone changed since install wrote it, such as an edited
//! policy. Root's default stats directory is made here too, by root, with
//! the tmpfiles.d entry that makes it again at every boot, so that no other
//! user can make it first; uninstall leaves it while it holds statistics.
//! Progress goes to stderr; stdout carries only the `ENV` lines of
//! `--preload env`, ready for a Dockerfile.

mod files;
mod loader;
mod manifest;
mod preload_list;
mod root;

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use fadvise_shim_core::policy::{parse_policy_bytes, ROOT_STATS_DIR, SYSTEM_POLICY_PATH};

use crate::cli::{InstallArgs, PreloadMode, UninstallArgs};
use crate::{elf, output, Failure, Outcome};
use files::{write_if_changed, Written};
use loader::Libc;
use manifest::{content_hash, InstalledFile, Manifest, PreloadEntry, MANIFEST_PATH};
use root::Root;

/// Where the library goes, as seen inside the root.
const LIBRARY_PATH: &str = "/usr/lib/fadvise-shim/libfadvise_shim.so";
const CLI_PATH: &str = "/usr/bin/fadvise-shim";
const PRELOAD_PATH: &str = "/etc/ld.so.preload";
/// Installed when no policy is given, so that install works from anywhere.
const EXAMPLE_POLICY: &str = include_str!("../../policy.example.toml");
/// Makes `ROOT_STATS_DIR` at every boot on systemd hosts (the Debian package
/// ships the same file).
const TMPFILES_PATH: &str = "/usr/lib/tmpfiles.d/fadvise-shim.conf";
const TMPFILES_ENTRY: &str = include_str!("../../deploy/tmpfiles.d/fadvise-shim.conf");

pub fn install(args: InstallArgs) -> Outcome {
    let root = Root::open(&args.root)?;
    let library = read(&crate::library::locate_library()?)?;
    let cli = read(&std::env::current_exe()?)?;
    let given_policy = match &args.policy {
        Some(path) => Some(checked_policy(path)?),
        None => None,
    };
    let accepted = loader::check(&root, &library)?;
    note(format!(
        "installing into {}: {}",
        root.dir().display(),
        accepted.description
    ));
    if accepted.libc == Libc::Musl && needs_a_loader(&cli) {
        note(format!(
            "warning: this {CLI_PATH} needs glibc's loader and will not run in a musl root; \
             the README's `cargo build --release` links it statically"
        ));
    }

    let manifest_path = root.resolve(MANIFEST_PATH);
    let before = read_manifest(&manifest_path)?;
    let mut manifest = before.clone().unwrap_or_default();
    put_file(&root, LIBRARY_PATH, &library, 0o755, &mut manifest)?;
    put_file(&root, CLI_PATH, &cli, 0o755, &mut manifest)?;
    match given_policy {
        Some(policy) => put_file(&root, SYSTEM_POLICY_PATH, &policy, 0o644, &mut manifest)?,
        None => keep_or_put_example_policy(&root, &mut manifest)?,
    }
    put_file(
        &root,
        TMPFILES_PATH,
        TMPFILES_ENTRY.as_bytes(),
        0o644,
        &mut manifest,
    )?;
    make_stats_dir(&root, &mut manifest)?;
    let musl_global = args.preload == Some(PreloadMode::Global) && accepted.libc == Libc::Musl;
    let preload_edit = match args.preload {
        Some(PreloadMode::Global) if !musl_global => plan_preload_line(&root, &mut manifest)?,
        _ => None,
    };
    // The manifest is written before the line goes into ld.so.preload, so
    // that whatever install did, uninstall knows about it.
    if before.as_ref() != Some(&manifest) && manifest != Manifest::default() {
        write_if_changed(&manifest_path, manifest.render().as_bytes(), 0o644)
            .map_err(|error| Failure(format!("{}: {error}", manifest_path.display())))?;
    }
    if let Some((path, text, mode)) = preload_edit {
        write_if_changed(&path, &text, mode)
            .map_err(|error| Failure(format!("{}: {error}", path.display())))?;
        note(format!(
            "added {LIBRARY_PATH} to {PRELOAD_PATH}, as its first line: every program started \
             in this root now runs under the shim"
        ));
    }
    if musl_global {
        note(format!(
            "musl has no {PRELOAD_PATH} (its loader reads only LD_PRELOAD): add this line to \
             the Dockerfile instead, after the install step:"
        ));
        print_env_line()?;
    } else if args.preload == Some(PreloadMode::Env) {
        note("add this line to the Dockerfile, after the install step:".into());
        print_env_line()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The Dockerfile line that preloads the library, on stdout. Dockerfile ENV
/// expands ${VAR:+word}: an LD_PRELOAD that the base image already sets is
/// kept, behind ours.
fn print_env_line() -> Result<(), Failure> {
    output::print(
        format!("ENV LD_PRELOAD=\"{LIBRARY_PATH}${{LD_PRELOAD:+:$LD_PRELOAD}}\"\n").as_bytes(),
    )?;
    Ok(())
}

/// Whether the ELF file in `bytes` names a loader (`PT_INTERP`).
fn needs_a_loader(bytes: &[u8]) -> bool {
    elf::read_facts(bytes).is_ok_and(|facts| facts.interpreter.is_some())
}

pub fn uninstall(args: UninstallArgs) -> Outcome {
    let root = Root::open(&args.root)?;
    let manifest_path = root.resolve(MANIFEST_PATH);
    let Some(manifest) = read_manifest(&manifest_path)? else {
        note(format!(
            "nothing to uninstall: {} has no {MANIFEST_PATH}",
            root.dir().display()
        ));
        return Ok(ExitCode::SUCCESS);
    };
    // The line first: from then on no new process loads the library.
    if let Some(preload) = &manifest.preload {
        take_out_preload_line(&root, preload)?;
    }
    for file in manifest.files.iter().rev() {
        remove_if_unchanged(&root, file)?;
    }
    remove(&manifest_path)?;
    for dir in manifest.dirs.iter().rev() {
        match std::fs::remove_dir(root.resolve(dir)) {
            Ok(()) => note(format!("removed {dir}/")),
            Err(error) if error.kind() == ErrorKind::NotFound => {}
            Err(_) if dir == ROOT_STATS_DIR => note(format!(
                "kept {dir}/: it holds statistics (`fadvise-shim report {dir}`); \
                 it is gone at the next boot"
            )),
            Err(_) => note(format!("kept {dir}/: not empty")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The bytes of a policy file, refused (every error as `FILE:LINE:COL:
/// message`) unless the shim would accept it.
fn checked_policy(path: &Path) -> Result<Vec<u8>, Failure> {
    let bytes = read(path)?;
    if let Err(errors) = parse_policy_bytes(&bytes) {
        for error in errors {
            eprintln!("{}:{error}", path.display());
        }
        return Err(Failure(format!(
            "{}: not a valid policy; nothing installed",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Without `--policy`, a policy already in the root is the user's choice
/// and stays; otherwise the commented example goes in.
fn keep_or_put_example_policy(root: &Root, manifest: &mut Manifest) -> Result<(), Failure> {
    let path = root.resolve(SYSTEM_POLICY_PATH);
    match std::fs::read(&path) {
        Ok(existing) if existing == EXAMPLE_POLICY.as_bytes() => {
            note(format!(
                "{SYSTEM_POLICY_PATH} is already the example policy"
            ));
        }
        Ok(existing) => {
            note(format!(
                "kept the existing {SYSTEM_POLICY_PATH} (give --policy FILE to replace it)"
            ));
            if let Err(errors) = parse_policy_bytes(&existing) {
                note(format!(
                    "warning: {SYSTEM_POLICY_PATH}:{}: the shim will not accept this policy",
                    errors[0]
                ));
            }
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            put_file(
                root,
                SYSTEM_POLICY_PATH,
                EXAMPLE_POLICY.as_bytes(),
                0o644,
                manifest,
            )?;
        }
        Err(error) => return Err(Failure(format!("{}: {error}", path.display()))),
    }
    Ok(())
}

/// Writes `bytes` to `inside` (creating its directories) and records what
/// install created in the manifest.
fn put_file(
    root: &Root,
    inside: &str,
    bytes: &[u8],
    mode: u32,
    manifest: &mut Manifest,
) -> Result<(), Failure> {
    create_parents(root, inside, manifest)?;
    let path = root.resolve(inside);
    let written = write_if_changed(&path, bytes, mode)
        .map_err(|error| Failure(format!("{}: {error}", path.display())))?;
    let ours = manifest.file(inside).is_some();
    match written {
        Written::Unchanged => note(format!("{inside} is up to date")),
        Written::Created => note(format!("created {inside}")),
        Written::Replaced if ours => note(format!("updated {inside}")),
        Written::Replaced => note(format!(
            "replaced {inside}; it was there before install, so uninstall will leave it"
        )),
    }
    if written == Written::Created || (written == Written::Replaced && ours) {
        manifest.record_file(inside, bytes);
    }
    Ok(())
}

/// Makes root's default stats directory (mode 0755, owned by root, as the
/// tmpfiles.d entry says) unless it is there; one that belongs to another
/// user is named, since processes will refuse it.
fn make_stats_dir(root: &Root, manifest: &mut Manifest) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    create_dirs(root, Path::new(ROOT_STATS_DIR), manifest)?;
    let path = root.resolve(ROOT_STATS_DIR);
    let metadata = std::fs::metadata(&path)
        .map_err(|error| Failure(format!("{}: {error}", path.display())))?;
    if metadata.uid() != 0 {
        note(format!(
            "warning: {ROOT_STATS_DIR} belongs to uid {}, not root: processes running as root \
             will keep their statistics private; remove it and install again",
            metadata.uid()
        ));
    }
    Ok(())
}

/// Creates the missing directories above `inside`, recording each.
fn create_parents(root: &Root, inside: &str, manifest: &mut Manifest) -> Result<(), Failure> {
    match Path::new(inside).parent() {
        Some(parent) => create_dirs(root, parent, manifest),
        None => Ok(()),
    }
}

/// Creates `dir` and the missing directories above it, recording each.
fn create_dirs(root: &Root, dir: &Path, manifest: &mut Manifest) -> Result<(), Failure> {
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    for dir in ancestors.into_iter().filter(|dir| *dir != Path::new("/")) {
        let dir = dir.to_string_lossy().into_owned();
        let path = root.resolve(&dir);
        if path.is_dir() {
            continue;
        }
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .map_err(|error| Failure(format!("{}: {error}", path.display())))?;
        note(format!("created {dir}/"));
        if !manifest.dirs.contains(&dir) {
            manifest.dirs.push(dir);
        }
    }
    Ok(())
}

/// The new content of `/etc/ld.so.preload` with our line in front, and its
/// mode; `None` if it already lists the library. Records the line.
fn plan_preload_line(
    root: &Root,
    manifest: &mut Manifest,
) -> Result<Option<(PathBuf, Vec<u8>, u32)>, Failure> {
    create_parents(root, PRELOAD_PATH, manifest)?;
    let path = root.resolve(PRELOAD_PATH);
    let failure = |error: std::io::Error| Failure(format!("{}: {error}", path.display()));
    let (existing, mode) = match std::fs::metadata(&path) {
        Ok(metadata) => (
            Some(std::fs::read(&path).map_err(failure)?),
            metadata.permissions().mode() & 0o7777,
        ),
        Err(error) if error.kind() == ErrorKind::NotFound => (None, 0o644),
        Err(error) => return Err(failure(error)),
    };
    let Some(text) = preload_list::add(existing.as_deref().unwrap_or_default(), LIBRARY_PATH)
    else {
        note(format!("{PRELOAD_PATH} already lists {LIBRARY_PATH}"));
        return Ok(None);
    };
    manifest.preload = Some(PreloadEntry {
        line: LIBRARY_PATH.to_owned(),
        created_file: existing.is_none(),
    });
    Ok(Some((path, text, mode)))
}

fn take_out_preload_line(root: &Root, preload: &PreloadEntry) -> Result<(), Failure> {
    let path = root.resolve(PRELOAD_PATH);
    let failure = |error: std::io::Error| Failure(format!("{}: {error}", path.display()));
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == ErrorKind::NotFound => {
            note(format!("{PRELOAD_PATH} is already gone"));
            return Ok(());
        }
        Err(error) => return Err(failure(error)),
    };
    let Some(edited) = preload_list::remove(&text, &preload.line) else {
        note(format!(
            "{PRELOAD_PATH} no longer has the line {}",
            preload.line
        ));
        return Ok(());
    };
    if edited.is_empty() && preload.created_file {
        remove(&path)?;
        note(format!("removed {PRELOAD_PATH}, which install had created"));
    } else {
        let mode = std::fs::metadata(&path)
            .map_err(failure)?
            .permissions()
            .mode()
            & 0o7777;
        write_if_changed(&path, &edited, mode).map_err(failure)?;
        note(format!("took {} out of {PRELOAD_PATH}", preload.line));
    }
    Ok(())
}

fn remove_if_unchanged(root: &Root, file: &InstalledFile) -> Result<(), Failure> {
    let path = root.resolve(&file.path);
    match std::fs::read(&path) {
        Ok(bytes) if content_hash(&bytes) == file.hash => {
            remove(&path)?;
            note(format!("removed {}", file.path));
        }
        Ok(_) => note(format!("kept {}: it changed since install", file.path)),
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Err(Failure(format!("{}: {error}", path.display()))),
    }
    Ok(())
}

fn read_manifest(path: &Path) -> Result<Option<Manifest>, Failure> {
    match std::fs::read_to_string(path) {
        Ok(text) => Manifest::parse(&text)
            .map(Some)
            .map_err(|error| Failure(format!("{}: {error}", path.display()))),
        Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Failure(format!("{}: {error}", path.display()))),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|error| Failure(format!("{}: {error}", path.display())))
}

fn remove(path: &Path) -> Result<(), Failure> {
    std::fs::remove_file(path)
        .and_then(|()| files::sync_directory(path))
        .map_err(|error| Failure(format!("{}: {error}", path.display())))
}

fn note(message: String) {
    eprintln!("{message}");
}
