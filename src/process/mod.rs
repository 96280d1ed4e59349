//! What the shim in a live process uses, learned from outside through
//! `/proc/PID`: whether `libfadvise_shim.so` is mapped, whether the process
//! runs in secure-execution mode (the `FADVISE_SHIM_*` variables are then
//! ignored), and so which policy file, dump signal and dump directory apply.
//!
//! Also which of its descriptors are io_uring instances: requests submitted
//! through a ring reach the kernel without a system call of their own.
//!
//! Shared by `fadvise-shim dump` and `fadvise-shim doctor PID`, as is the
//! dump request (`dump`). The rules
//! mirror the preload library's start-up: `FADVISE_SHIM_POLICY`, else the
//! system policy if it exists, else the built-in default; the dump directory
//! from `FADVISE_SHIM_DUMP_DIR`, else the policy, else the per-user default.
//! Paths are what the process sees; files are read through
//! `/proc/PID/root` so that a process in a container is read correctly.

pub mod dump;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fadvise_shim_core::policy::{
    default_dump_dir, parse_policy, DumpSignal, Policy, DUMP_DIR_ENV, POLICY_ENV,
    SYSTEM_POLICY_PATH,
};

use crate::library::LIBRARY_NAME;
use crate::Failure;

/// `AT_SECURE` in the auxiliary vector (`<elf.h>`).
const AT_SECURE: u64 = 23;

/// A live process and the shim settings in force in it.
pub struct ShimProcess {
    pub pid: u32,
    /// The process's own pid in its pid namespace: the one its dump names.
    pub inner_pid: u32,
    /// The executable, as `/proc/PID/exe` names it (without ` (deleted)`).
    pub exe: PathBuf,
    /// The mapped `libfadvise_shim.so`, if any.
    pub library: Option<PathBuf>,
    /// Secure-execution mode: `FADVISE_SHIM_*` variables are ignored.
    pub secure: bool,
    /// Where the policy comes from.
    pub policy_source: PolicySource,
    /// Why the policy file could not be used, if it could not.
    pub policy_problem: Option<String>,
    pub dump_signal: DumpSignal,
    /// The dump directory as the process sees it.
    pub dump_dir: PathBuf,
    /// How the dump directory was chosen, for reports.
    pub dump_dir_origin: &'static str,
    /// Whether `LD_PRELOAD` in the process's environment names the library.
    pub preload_env_names_library: bool,
}

/// Where a process's policy comes from.
pub enum PolicySource {
    /// `FADVISE_SHIM_POLICY`.
    Env(PathBuf),
    /// The system policy file.
    System,
    BuiltIn,
}

impl PolicySource {
    /// The policy as a dump's `policy` header names it.
    pub fn describe(&self) -> String {
        match self {
            PolicySource::Env(path) => format!("{} (from {POLICY_ENV})", path.display()),
            PolicySource::System => SYSTEM_POLICY_PATH.to_string(),
            PolicySource::BuiltIn => "built-in".to_string(),
        }
    }
}

impl ShimProcess {
    /// Learns the shim settings of process `pid`.
    pub fn inspect(pid: u32) -> Result<ShimProcess, Failure> {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        if !proc_dir.exists() {
            return Err(Failure(format!("no process {pid}")));
        }
        let read = |name: &str| read_proc_file(pid, name);
        let status = String::from_utf8_lossy(&read("status")?).into_owned();
        let exe = executable(pid)?;
        let library = mapped_library(&read("maps")?);
        let environ = read("environ")?;
        // The shim picks the per-user default dump directory by effective
        // user id (the second `Uid:` field).
        let euid = status_ids(&status, "Uid:")
            .and_then(|ids| ids.get(1).copied())
            .unwrap_or(0);
        let secure = match read("auxv") {
            Ok(auxv) => auxv_secure(&auxv),
            Err(_) => ids_differ(&status),
        };
        let env = |key: &str| {
            if secure {
                None
            } else {
                env_value(&environ, key)
            }
        };
        let preload_env_names_library = env_value(&environ, "LD_PRELOAD").is_some_and(|list| {
            list.split([' ', ':'])
                .any(|entry| Path::new(entry).file_name() == Some(OsStr::new(LIBRARY_NAME)))
        });
        let cwd = std::fs::read_link(proc_dir.join("cwd")).unwrap_or_else(|_| "/".into());
        let in_process = |path: &str| cwd.join(path);

        let policy_source = match env(POLICY_ENV).filter(|path| !path.is_empty()) {
            Some(path) => PolicySource::Env(in_process(&path)),
            None if seen_from(pid, Path::new(SYSTEM_POLICY_PATH)).exists() => PolicySource::System,
            None => PolicySource::BuiltIn,
        };
        let (policy, policy_problem) = match load_policy(pid, &policy_source) {
            Ok(policy) => (policy, None),
            Err(problem) => (Policy::default(), Some(problem)),
        };
        let (dump_dir, dump_dir_origin) = match env(DUMP_DIR_ENV).filter(|dir| !dir.is_empty()) {
            Some(dir) => (in_process(&dir), "from FADVISE_SHIM_DUMP_DIR"),
            None => match policy.dump.dir.clone() {
                Some(dir) => (dir, "from the policy"),
                None => (default_dump_dir(euid), "default for the user"),
            },
        };
        Ok(ShimProcess {
            pid,
            inner_pid: status_ids(&status, "NSpid:")
                .and_then(|ids| ids.last().copied())
                .unwrap_or(pid),
            exe,
            library,
            secure,
            policy_source,
            policy_problem,
            dump_signal: policy.dump.signal,
            dump_dir,
            dump_dir_origin,
            preload_env_names_library,
        })
    }

    /// `exe[pid]`, as reports name a process.
    pub fn label(&self) -> String {
        format!("{}[{}]", self.exe_name(), self.pid)
    }

    /// The executable's file name: dumps are named after it.
    pub fn exe_name(&self) -> String {
        self.exe
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.exe.display().to_string())
    }

    /// Where this tool finds a path of the process's file system.
    pub fn seen_from_here(&self, path: &Path) -> PathBuf {
        seen_from(self.pid, path)
    }

    /// Fails unless `libfadvise_shim.so` is mapped, with a hint when
    /// `LD_PRELOAD` names it but secure-execution mode kept it out.
    pub fn require_library(&self) -> Result<&Path, Failure> {
        if let Some(library) = &self.library {
            return Ok(library);
        }
        let hint = if self.preload_env_names_library && self.secure {
            ": LD_PRELOAD names it, but the process runs in secure-execution mode \
             (setuid, setgid or capabilities), where only /etc/ld.so.preload applies"
        } else if self.preload_env_names_library {
            ": LD_PRELOAD names it, but the loader did not load it (wrong path or \
             architecture, or a static program?)"
        } else {
            ""
        };
        Err(Failure(format!(
            "{LIBRARY_NAME} is not loaded in process {} ({}){hint}",
            self.pid,
            self.exe.display()
        )))
    }
}

/// The descriptors of process `pid` that are io_uring instances (their
/// `/proc/PID/fd/N` link reads `anon_inode:[io_uring]`), in fd order. A
/// process whose fds cannot be listed (another user's) has none we know of.
pub fn io_uring_fds(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut fds: Vec<u32> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            (target.as_os_str() == "anon_inode:[io_uring]")
                .then(|| entry.file_name().to_str()?.parse().ok())
                .flatten()
        })
        .collect();
    fds.sort_unstable();
    fds
}

/// Reads `/proc/PID/NAME`, telling a vanished process from a forbidden one.
fn read_proc_file(pid: u32, name: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(format!("/proc/{pid}/{name}")).map_err(|error| proc_error(pid, name, &error))
}

fn proc_error(pid: u32, name: &str, error: &io::Error) -> Failure {
    match error.kind() {
        io::ErrorKind::NotFound => Failure(format!("no process {pid}")),
        io::ErrorKind::PermissionDenied => Failure(format!(
            "permission denied reading /proc/{pid}/{name}: process {pid} belongs to another user \
             (run as that user or as root)"
        )),
        _ => Failure(format!("cannot read /proc/{pid}/{name}: {error}")),
    }
}

fn executable(pid: u32) -> Result<PathBuf, Failure> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map_err(|error| proc_error(pid, "exe", &error))?;
    let bytes = link.as_os_str().as_bytes();
    let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

/// The path of the mapped `libfadvise_shim.so` in `/proc/PID/maps`.
fn mapped_library(maps: &[u8]) -> Option<PathBuf> {
    maps.split(|&byte| byte == b'\n').find_map(|line| {
        // address perms offset dev inode path: the path is the sixth field
        // and may contain spaces.
        let path = line
            .splitn(6, |&byte| byte == b' ')
            .nth(5)?
            .trim_ascii_start();
        let path = Path::new(OsStr::from_bytes(path));
        (path.file_name() == Some(OsStr::new(LIBRARY_NAME))).then(|| path.to_path_buf())
    })
}

/// A variable of a NUL-separated `environ` block.
fn env_value(environ: &[u8], key: &str) -> Option<String> {
    environ.split(|&byte| byte == 0).find_map(|entry| {
        let value = entry.strip_prefix(key.as_bytes())?.strip_prefix(b"=")?;
        Some(String::from_utf8_lossy(value).into_owned())
    })
}

/// `AT_SECURE` from a native-width auxiliary vector.
fn auxv_secure(auxv: &[u8]) -> bool {
    const WORD: usize = std::mem::size_of::<usize>();
    auxv.chunks_exact(2 * WORD)
        .map(|pair| {
            let word = |at: usize| {
                let mut bytes = [0u8; WORD];
                bytes.copy_from_slice(&pair[at..at + WORD]);
                usize::from_ne_bytes(bytes) as u64
            };
            (word(0), word(WORD))
        })
        .find(|&(key, _)| key == AT_SECURE)
        .is_some_and(|(_, value)| value != 0)
}

/// Secure execution guessed from ids, when `auxv` cannot be read: real and
/// effective user or group ids differ.
fn ids_differ(status: &str) -> bool {
    ["Uid:", "Gid:"]
        .iter()
        .any(|key| status_ids(status, key).is_some_and(|ids| ids.len() >= 2 && ids[0] != ids[1]))
}

/// The numbers of a `/proc/PID/status` line such as `Uid:` or `NSpid:`.
fn status_ids(status: &str, key: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|line| line.strip_prefix(key))?;
    line.split_whitespace().map(|id| id.parse().ok()).collect()
}

/// A path of process `pid`'s file system, through its root when this tool
/// may look there (a process in a container has its own).
fn seen_from(pid: u32, path: &Path) -> PathBuf {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    match (path.strip_prefix("/"), std::fs::read_dir(&root)) {
        (Ok(relative), Ok(_)) => root.join(relative),
        _ => path.to_path_buf(),
    }
}

fn load_policy(pid: u32, source: &PolicySource) -> Result<Policy, String> {
    let path = match source {
        PolicySource::Env(path) => path.as_path(),
        PolicySource::System => Path::new(SYSTEM_POLICY_PATH),
        PolicySource::BuiltIn => return Ok(Policy::default()),
    };
    let text = std::fs::read_to_string(seen_from(pid, path))
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    parse_policy(&text).map_err(|errors| match errors.first() {
        Some(first) => format!(
            "{}:{}:{}: {}",
            path.display(),
            first.line,
            first.column,
            first.message
        ),
        None => format!("{} is not a valid policy", path.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_with_spaces_in_paths_are_read_whole() {
        let maps = b"7f00-7f01 r--p 00000000 08:01 42    /usr/lib/libc.so.6\n\
                     7f02-7f03 r-xp 00001000 08:01 43    /opt/my dir/libfadvise_shim.so\n";
        assert_eq!(
            mapped_library(maps),
            Some(PathBuf::from("/opt/my dir/libfadvise_shim.so"))
        );
        assert_eq!(mapped_library(b"7f00-7f01 r--p 0 0:0 0 [heap]\n"), None);
    }

    #[test]
    fn environment_values_need_the_whole_key() {
        let environ = b"FADVISE_SHIM_POLICYX=no\0FADVISE_SHIM_POLICY=/p.toml\0";
        assert_eq!(env_value(environ, POLICY_ENV).as_deref(), Some("/p.toml"));
        assert_eq!(env_value(environ, "HOME"), None);
    }

    #[test]
    fn secure_mode_is_read_from_auxv_and_ids() {
        let pairs = |secure: usize| -> Vec<u8> {
            [6usize, 4096, 23, secure, 0, 0]
                .iter()
                .flat_map(|word| word.to_ne_bytes())
                .collect()
        };
        assert!(auxv_secure(&pairs(1)));
        assert!(!auxv_secure(&pairs(0)));
        assert!(ids_differ("Uid:\t1000\t0\t0\t0\nGid:\t5\t5\t5\t5\n"));
        assert!(!ids_differ("Uid:\t1000\t1000\t1000\t1000\n"));
        assert_eq!(status_ids("NSpid:\t900\t7\n", "NSpid:"), Some(vec![900, 7]));
    }
}
