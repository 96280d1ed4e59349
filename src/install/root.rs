//! An image's root file system, seen from outside it: paths as programs
//! inside the root see them are turned into host paths the way a `chroot`
//! would resolve them, so that an absolute symlink in the image (say
//! `etc -> /var/etc`) never leads a write out of the root onto the host.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::Failure;

/// Symlink hops allowed in one path, as Linux allows (`MAXSYMLINKS`).
const MAX_SYMLINK_HOPS: usize = 40;

pub struct Root {
    dir: PathBuf,
}

impl Root {
    /// The root at `dir`, which must be an existing directory.
    pub fn open(dir: &Path) -> Result<Root, Failure> {
        let dir = dir
            .canonicalize()
            .map_err(|error| Failure(format!("{}: {error}", dir.display())))?;
        if !dir.is_dir() {
            return Err(Failure(format!("{}: not a directory", dir.display())));
        }
        Ok(Root { dir })
    }

    /// The root directory on the host.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The host path of `inside`, an absolute path as seen inside the root.
    /// Symlinks are followed as the kernel would after `chroot`: absolute
    /// targets start again at the root and `..` never climbs above it.
    /// Components that do not exist yet are kept as they are.
    pub fn resolve(&self, inside: &str) -> PathBuf {
        let mut resolved: Vec<OsString> = Vec::new();
        let mut pending: Vec<OsString> = components_reversed(Path::new(inside));
        let mut hops = 0;
        while let Some(name) = pending.pop() {
            if name == ".." {
                resolved.pop();
                continue;
            }
            let candidate = self.host_path(&resolved).join(&name);
            let target = match std::fs::read_link(&candidate) {
                Ok(target) if hops < MAX_SYMLINK_HOPS => target,
                // Not a symlink, missing, or a loop: keep the name as it is.
                _ => {
                    resolved.push(name);
                    continue;
                }
            };
            hops += 1;
            if target.is_absolute() {
                resolved.clear();
            }
            pending.extend(components_reversed(&target));
        }
        self.host_path(&resolved)
    }

    fn host_path(&self, components: &[OsString]) -> PathBuf {
        let mut path = self.dir.clone();
        path.extend(components);
        path
    }
}

/// The normal and `..` components of `path`, last first (a stack to pop).
fn components_reversed(path: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    names.reverse();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path()).unwrap();
        let base = root.dir().to_path_buf();
        std::fs::create_dir_all(base.join("usr/bin")).unwrap();
        std::fs::create_dir_all(base.join("var/etc")).unwrap();
        symlink("usr/bin", base.join("bin")).unwrap();
        symlink("dash", base.join("usr/bin/sh")).unwrap();
        // Absolute, and climbing above `/`: both stay inside the root.
        symlink("/var/etc", base.join("etc")).unwrap();
        symlink("../../../../tmp", base.join("usr/bin/up")).unwrap();
        symlink("loop", base.join("loop")).unwrap();

        assert_eq!(root.resolve("/bin/sh"), base.join("usr/bin/dash"));
        assert_eq!(
            root.resolve("/etc/ld.so.preload"),
            base.join("var/etc/ld.so.preload")
        );
        assert_eq!(root.resolve("/usr/bin/up/x"), base.join("tmp/x"));
        assert_eq!(root.resolve("/new/dir/file"), base.join("new/dir/file"));
        assert_eq!(root.resolve("/loop"), base.join("loop"));
    }
}
