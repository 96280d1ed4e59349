//! The policy model: what a policy file says, after validation.
//!
//! `parse` turns TOML text into a `Policy` or a list of errors with line and
//! column; `evaluate` is what a policy means for one call, the one
//! evaluator that the preload library (its per-process table, then call
//! time), the supervisor and the in-kernel filter compiler all use; and
//! `fadvise-shim check` prints its summary. The format is shown, key by key,
//! in `policy.example.toml`.

#[doc(hidden)]
pub mod conformance;
pub mod evaluate;
mod glob;
mod parse;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::call::{Advice, Call};

pub use glob::{Glob, GlobError};
pub use parse::{parse_policy, parse_policy_bytes, quick_dump_signal, PolicyError};

/// Where the policy comes from when `FADVISE_SHIM_POLICY` is not set.
pub const SYSTEM_POLICY_PATH: &str = match std::str::from_utf8(SYSTEM_POLICY_FILE.to_bytes()) {
    Ok(path) => path,
    Err(_) => panic!("the system policy path is UTF-8"),
};
/// The same, NUL-terminated, for the preload library's libc calls.
pub const SYSTEM_POLICY_FILE: &std::ffi::CStr = c"/etc/fadvise-shim/policy.toml";
/// Environment variable naming the policy file.
pub const POLICY_ENV: &str = "FADVISE_SHIM_POLICY";
/// Environment variable overriding `[dump] dir`.
pub const DUMP_DIR_ENV: &str = "FADVISE_SHIM_DUMP_DIR";
/// Environment variable forcing `[dump] on_exit` (set by `fadvise-shim run`).
pub const ON_EXIT_ENV: &str = "FADVISE_SHIM_ON_EXIT";
/// Default directory of host-scope rate-limit budgets.
pub const DEFAULT_LIMITS_DIR: &str = "/dev/shm/fadvise-shim";
/// Environment variable overriding `[stats] dir` (`none`: private memory).
pub const STATS_DIR_ENV: &str = "FADVISE_SHIM_STATS_DIR";

/// Root's default live-statistics directory: under `/run`, where only root
/// can create anything, so no other user can make it first (the Debian
/// package and `install` create it at boot, through
/// `deploy/tmpfiles.d/fadvise-shim.conf`).
pub const ROOT_STATS_DIR: &str = "/run/fadvise-shim";
/// The environment variable naming a user's own runtime directory (made by
/// the login manager, owned by the user, mode 0700).
pub const RUNTIME_DIR_ENV: &str = "XDG_RUNTIME_DIR";

/// The live-statistics directory used when neither the policy nor the
/// environment names one, for user `uid` whose `$XDG_RUNTIME_DIR` is
/// `runtime_dir`: root's `ROOT_STATS_DIR`; another user's runtime directory
/// where there is one (an absolute path); else a directory per user inside
/// the shared (sticky) `/dev/shm/fadvise-shim`, which another user could
/// make first — the library and the readers check who owns it and say so.
pub fn default_stats_dir(uid: u32, runtime_dir: Option<&Path>) -> PathBuf {
    match runtime_dir {
        _ if uid == 0 => PathBuf::from(ROOT_STATS_DIR),
        Some(dir) if dir.is_absolute() => dir.join("fadvise-shim"),
        _ => PathBuf::from(format!("{DEFAULT_LIMITS_DIR}/stats-{uid}")),
    }
}

/// The dump directory used when neither the policy nor the environment
/// names one: one per user, so that users never share (or fight over) it.
pub fn default_dump_dir(uid: u32) -> PathBuf {
    if uid == 0 {
        PathBuf::from("/tmp/fadvise-shim")
    } else {
        PathBuf::from(format!("/tmp/fadvise-shim-{uid}"))
    }
}

/// A validated policy.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub dump: DumpConfig,
    pub limits: LimitsConfig,
    pub stats: StatsConfig,
    /// Tried in order; the first that matches decides. No match: pass.
    pub rules: Vec<Rule>,
}

/// `[dump]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpConfig {
    /// `dir`; `None` means `default_dump_dir`.
    pub dir: Option<PathBuf>,
    pub signal: DumpSignal,
    pub on_exit: bool,
}

impl Default for DumpConfig {
    fn default() -> Self {
        DumpConfig {
            dir: None,
            signal: DumpSignal::Usr1,
            on_exit: false,
        }
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `dir` for host-scope budgets; `None` means `DEFAULT_LIMITS_DIR`.
    pub dir: Option<PathBuf>,
}

/// `[stats]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsConfig {
    /// `dir`; `None` means `default_stats_dir`.
    pub dir: Option<StatsDir>,
}

/// Where a process keeps its live statistics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsDir {
    /// `"none"`: in private memory only (dumps still work).
    None,
    Path(PathBuf),
}

/// The signal that makes a process dump, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DumpSignal {
    None,
    Usr1,
    Usr2,
    /// `SIGRTMIN+n`; resolved at run time, since libc reserves some.
    RtMin(u8),
}

impl DumpSignal {
    /// The signal number in this process, or `None` for `none` (or an
    /// `SIGRTMIN+n` past `SIGRTMAX`).
    pub fn number(self) -> Option<libc::c_int> {
        match self {
            DumpSignal::None => None,
            DumpSignal::Usr1 => Some(libc::SIGUSR1),
            DumpSignal::Usr2 => Some(libc::SIGUSR2),
            DumpSignal::RtMin(offset) => {
                let number = libc::SIGRTMIN() + libc::c_int::from(offset);
                (number <= libc::SIGRTMAX()).then_some(number)
            }
        }
    }

    /// The name as written in a policy: `SIGUSR1`, `SIGRTMIN+3`, `none`.
    pub fn name(self) -> String {
        match self {
            DumpSignal::None => "none".into(),
            DumpSignal::Usr1 => "SIGUSR1".into(),
            DumpSignal::Usr2 => "SIGUSR2".into(),
            DumpSignal::RtMin(0) => "SIGRTMIN".into(),
            DumpSignal::RtMin(offset) => format!("SIGRTMIN+{offset}"),
        }
    }
}

/// One `[[rule]]`.
#[derive(Clone, Debug)]
pub struct Rule {
    /// `name`, shown in reports; host-scope budgets are keyed by it.
    pub name: Option<String>,
    /// Line of the `[[rule]]` header, for messages and summaries.
    pub line: usize,
    /// `call`: bit `Call::index()` set for each call the rule covers.
    pub calls: CallSet,
    /// `advice` (posix_fadvise only); `None` matches every advice,
    /// including invalid values.
    pub advice: Option<Vec<Advice>>,
    /// `exe`: globs on the executable's path.
    pub exe: Option<Globs>,
    /// `path`: globs on the path of the call's file.
    pub path: Option<Globs>,
    /// `caller`: globs on the path (or file name) of the loaded object that
    /// made the call: the executable or a shared library.
    pub caller: Option<Globs>,
    pub action: Action,
}

impl Rule {
    /// Whether the rule covers this call and advice (`advice` is `None` for
    /// calls without one, and for invalid advice values). Ignores `exe`,
    /// `path` and `caller`, which `evaluate` asks its context about.
    pub fn covers(&self, call: Call, advice: Option<Advice>) -> bool {
        if !self.calls.contains(call) {
            return false;
        }
        match (&self.advice, advice) {
            (None, _) => true,
            (Some(wanted), Some(advice)) => wanted.contains(&advice),
            (Some(_), None) => false,
        }
    }

    /// Whether the rule applies in a process running `exe` (full path).
    pub fn applies_to_exe(&self, exe: &Path) -> bool {
        self.exe.as_ref().is_none_or(|globs| globs.matches_exe(exe))
    }

    /// A short name for messages: `name`, or `rule at line N`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("rule {name:?}"),
            None => format!("rule at line {}", self.line),
        }
    }
}

/// A set of calls, one bit per `Call::index()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallSet(pub u8);

impl CallSet {
    pub const ALL: CallSet = CallSet(((1u16 << Call::COUNT) - 1) as u8);

    pub fn contains(self, call: Call) -> bool {
        self.0 & (1 << call.index()) != 0
    }

    pub fn insert(&mut self, call: Call) {
        self.0 |= 1 << call.index();
    }

    pub fn iter(self) -> impl Iterator<Item = Call> {
        Call::ALL
            .into_iter()
            .filter(move |&call| self.contains(call))
    }
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Pass,
    Drop,
    Limit(Limit),
}

/// `action = "limit"`: `rate` calls per second pass, `burst` at once above it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
    pub scope: Scope,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Process,
    Host,
}

/// Validated globs with the patterns they came from.
#[derive(Clone, Debug)]
pub struct Globs {
    pub patterns: Vec<String>,
    globs: Vec<Glob>,
}

impl Globs {
    /// Globs from patterns already compiled, in the same order.
    pub fn new(patterns: Vec<String>, globs: Vec<Glob>) -> Globs {
        Globs { patterns, globs }
    }

    /// Whether an executable's full path, or its file name for patterns
    /// without a `/`, matches.
    pub fn matches_exe(&self, exe: &Path) -> bool {
        let name = exe.file_name().map(OsStrExt::as_bytes);
        self.globs
            .iter()
            .zip(&self.patterns)
            .any(|(glob, pattern)| {
                glob.is_match(exe.as_os_str().as_bytes())
                    || (!pattern.contains('/') && name.is_some_and(|name| glob.is_match(name)))
            })
    }

    /// Whether the calling object's path, or its file name for patterns
    /// without a `/`, matches (as `exe` matches an executable).
    pub fn matches_caller(&self, module: &Path) -> bool {
        self.matches_exe(module)
    }

    /// Whether a file's path matches.
    pub fn matches_path(&self, path: &Path) -> bool {
        let path = path.as_os_str().as_bytes();
        self.globs.iter().any(|glob| glob.is_match(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_stats_directories_are_where_no_other_user_can_make_them_first() {
        let runtime = Some(Path::new("/run/user/1000"));
        assert_eq!(
            default_stats_dir(0, runtime),
            Path::new("/run/fadvise-shim")
        );
        assert_eq!(
            default_stats_dir(1000, runtime),
            Path::new("/run/user/1000/fadvise-shim")
        );
        // No runtime directory (or a relative one): the shared place, which
        // the library and readers check.
        for runtime in [None, Some(Path::new("run/user/1000"))] {
            assert_eq!(
                default_stats_dir(1000, runtime),
                Path::new("/dev/shm/fadvise-shim/stats-1000")
            );
        }
    }
}
