//! The install manifest, `ROOT/usr/lib/fadvise-shim/install-manifest`: what
//! `install` put into a root, so that `uninstall` takes out exactly that and
//! nothing else. A small line-based text file that a person can read:
//!
//! ```text
//! dir /usr/lib/fadvise-shim
//! file /usr/lib/fadvise-shim/libfadvise_shim.so fnv1a64:8c1f0a3b2d4e5f60
//! preload-line /usr/lib/fadvise-shim/libfadvise_shim.so
//! preload-file created
//! ```
//!
//! Directories and files are listed only when install created them; each
//! file carries a hash of what install wrote, so uninstall can tell a file
//! someone changed since (kept) from one that is still ours (removed).

use std::fmt::Write as _;

/// Where the manifest lives inside the root.
pub const MANIFEST_PATH: &str = "/usr/lib/fadvise-shim/install-manifest";

const HEADER: &str = "# Written by `fadvise-shim install`. `fadvise-shim uninstall` takes out\n\
                      # exactly what is listed here. Paths are as seen inside the root.\n";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Directories install created, parents first.
    pub dirs: Vec<String>,
    pub files: Vec<InstalledFile>,
    pub preload: Option<PreloadEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledFile {
    pub path: String,
    /// `content_hash` of what install wrote.
    pub hash: String,
}

/// The line install added to `/etc/ld.so.preload`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreloadEntry {
    pub line: String,
    /// Whether install created the file (so uninstall removes it once empty).
    pub created_file: bool,
}

impl Manifest {
    pub fn render(&self) -> String {
        let mut text = String::from(HEADER);
        for dir in &self.dirs {
            let _ = writeln!(text, "dir {dir}");
        }
        for file in &self.files {
            let _ = writeln!(text, "file {} {}", file.path, file.hash);
        }
        if let Some(preload) = &self.preload {
            let _ = writeln!(text, "preload-line {}", preload.line);
            let created = if preload.created_file {
                "created"
            } else {
                "existed"
            };
            let _ = writeln!(text, "preload-file {created}");
        }
        text
    }

    /// Reads a manifest; errors say which line is wrong.
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let mut manifest = Manifest::default();
        let mut preload_line = None;
        let mut created_file = None;
        for (index, line) in text.lines().enumerate() {
            let bad = || format!("line {}: cannot read {line:?}", index + 1);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line.split_once(' ').ok_or_else(bad)?;
            match key {
                "dir" => manifest.dirs.push(value.to_owned()),
                "file" => {
                    let (path, hash) = value.rsplit_once(' ').ok_or_else(bad)?;
                    manifest.files.push(InstalledFile {
                        path: path.to_owned(),
                        hash: hash.to_owned(),
                    });
                }
                "preload-line" => preload_line = Some(value.to_owned()),
                "preload-file" => {
                    created_file = Some(match value {
                        "created" => true,
                        "existed" => false,
                        _ => return Err(bad()),
                    })
                }
                _ => return Err(bad()),
            }
        }
        manifest.preload = match (preload_line, created_file) {
            (Some(line), Some(created_file)) => Some(PreloadEntry { line, created_file }),
            (None, None) => None,
            _ => return Err("preload-line and preload-file come together".into()),
        };
        Ok(manifest)
    }

    /// The entry for the file at `path`, if install created it.
    pub fn file(&self, path: &str) -> Option<&InstalledFile> {
        self.files.iter().find(|file| file.path == path)
    }

    /// Records that install wrote `bytes` to `path`, which it created.
    pub fn record_file(&mut self, path: &str, bytes: &[u8]) {
        let hash = content_hash(bytes);
        match self.files.iter_mut().find(|file| file.path == path) {
            Some(file) => file.hash = hash,
            None => self.files.push(InstalledFile {
                path: path.to_owned(),
                hash,
            }),
        }
    }
}

/// A 64-bit FNV-1a hash: enough to notice that someone edited a file, and
/// stable across versions of this tool (unlike std's `DefaultHasher`).
pub fn content_hash(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("fnv1a64:{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut manifest = Manifest {
            dirs: vec!["/usr/lib/fadvise-shim".into(), "/etc/fadvise-shim".into()],
            preload: Some(PreloadEntry {
                line: "/usr/lib/fadvise-shim/libfadvise_shim.so".into(),
                created_file: true,
            }),
            ..Manifest::default()
        };
        manifest.record_file("/etc/fadvise-shim/policy.toml", b"[dump]\n");
        manifest.record_file("/etc/fadvise-shim/policy.toml", b"");
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(Manifest::parse(&manifest.render()), Ok(manifest));
        assert_eq!(Manifest::parse(HEADER), Ok(Manifest::default()));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(Manifest::parse("dir\n").is_err());
        assert!(Manifest::parse("preload-file maybe\npreload-line /x.so\n").is_err());
        assert!(Manifest::parse("preload-line /x.so\n").is_err());
        assert!(Manifest::parse("wipe /\n").is_err());
    }

    #[test]
    fn hash_is_fnv1a() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(content_hash(b""), "fnv1a64:cbf29ce484222325");
        assert_eq!(content_hash(b"a"), "fnv1a64:af63dc4c8601ec8c");
    }
}
