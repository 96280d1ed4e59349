//! Turns a validated `Policy` into what the hot path reads: a flat table of
//! verdicts indexed by call and advice, decided once per process image (so
//! `exe` rules cost nothing per call), plus the ordered rules that still
//! depend on the file (`path` rules) or on the calling object (`caller`
//! rules), which only the calls they concern consult. A verdict that
//! depends on the caller alone is decided once per call site and cached
//! there (`hooks::intercept`).

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fadvise_shim_core::call::{Advice, Call};
use fadvise_shim_core::policy::{
    default_dump_dir, default_stats_dir, Action, DumpSignal, Policy, Rule, Scope, StatsDir,
    DEFAULT_LIMITS_DIR,
};

use super::limiter::{self, MAX_LIMITERS};
use super::settings::Settings;

/// Table entry: the call goes to the kernel.
pub const PASS: u32 = 0;
/// Table entry: the call is answered without the kernel.
pub const DROP: u32 = 1;
/// Table entry: limiter `entry >> 8` decides.
pub const LIMIT: u32 = 2;
/// Table entry: a `path` rule may match; consult `Compiled::rules`.
pub const BY_PATH: u32 = 3;
/// Table entry: a `caller` rule may match, and no `path` rule decides first.
pub const BY_CALLER: u32 = 4;
/// Table entry: both `path` and `caller` rules may decide.
pub const BY_PATH_AND_CALLER: u32 = 5;
pub const KIND_MASK: u32 = 0xff;

/// Advice slots per call: the six advice values, then "none or invalid".
const ADVICE_SLOTS: usize = Advice::ALL.len() + 1;
pub const TABLE_LEN: usize = Call::COUNT * ADVICE_SLOTS;

/// The table index for a call and its raw advice (ignored except for
/// `posix_fadvise`).
#[inline(always)]
pub fn table_index(call: Call, raw_advice: libc::c_int) -> usize {
    let advice = match call {
        Call::PosixFadvise => Advice::from_raw(raw_advice),
        _ => None,
    };
    let slot = advice.map_or(ADVICE_SLOTS - 1, Advice::index);
    call.index() * ADVICE_SLOTS + slot
}

/// A `limit` rule as its limiter sees it.
#[derive(Clone, PartialEq)]
pub struct LimitConfig {
    pub rate: f64,
    pub burst: f64,
    /// For `scope = "host"`: where the shared budget lives.
    pub host: Option<HostBudget>,
}

/// The shared budget file of a host-scope rule.
#[derive(Clone, PartialEq)]
pub struct HostBudget {
    pub name: String,
    pub dir: CString,
    /// `<name>.<euid>.budget`, the name made safe as a file name.
    pub file: CString,
}

impl HostBudget {
    fn new(name: &str, dir: &Path, euid: u32) -> HostBudget {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let file = format!("{}.{euid}.budget", safe.trim_start_matches('.'));
        HostBudget {
            name: name.to_owned(),
            dir: CString::new(dir.as_os_str().as_bytes()).unwrap_or_default(),
            file: CString::new(file).unwrap_or_default(),
        }
    }
}

/// A rule that applies to this executable, with its table entry.
struct CompiledRule {
    rule: Rule,
    entry: u32,
}

/// A policy ready for this process.
pub struct Compiled {
    pub table: [u32; TABLE_LEN],
    /// Consulted only for entries marked `BY_PATH`.
    rules: Vec<CompiledRule>,
    /// Each limiter's rule, by index.
    pub limits: Vec<LimitConfig>,
    pub dump_dir: CString,
    /// Where the live statistics go; `None`: private memory only.
    pub stats_dir: Option<CString>,
    /// Whether the policy or the environment named the stats directory (a
    /// failure to use it is then worth a stderr line).
    pub stats_dir_configured: bool,
    pub on_exit: bool,
    pub signal: DumpSignal,
    /// NUL-free name of the signal for dump headers.
    pub signal_name: String,
    /// The policy file, or `built-in`.
    pub source: Vec<u8>,
    /// The executable: the calling object of calls from the main program.
    exe: std::path::PathBuf,
}

impl Compiled {
    pub fn new(policy: &Policy, source: Option<&CStr>, settings: &Settings) -> Compiled {
        let mut limits = Vec::new();
        let mut rules = Vec::new();
        for rule in policy
            .rules
            .iter()
            .filter(|rule| rule.applies_to_exe(&settings.exe))
        {
            let entry = match rule.action {
                Action::Pass => PASS,
                Action::Drop => DROP,
                Action::Limit(limit) if limits.len() < MAX_LIMITERS => {
                    let host = (limit.scope == Scope::Host).then(|| {
                        let dir = policy
                            .limits
                            .dir
                            .as_deref()
                            .unwrap_or(Path::new(DEFAULT_LIMITS_DIR));
                        HostBudget::new(
                            rule.name.as_deref().unwrap_or("unnamed"),
                            dir,
                            settings.euid,
                        )
                    });
                    limits.push(LimitConfig {
                        rate: limit.rate,
                        burst: limit.burst,
                        host,
                    });
                    LIMIT | ((limits.len() as u32 - 1) << 8)
                }
                Action::Limit(_) => PASS,
            };
            rules.push(CompiledRule {
                rule: rule.clone(),
                entry,
            });
        }
        let mut table = [PASS; TABLE_LEN];
        for call in Call::ALL {
            let advices = Advice::ALL.into_iter().map(Some).chain([None]);
            for advice in advices {
                let raw_advice = advice.map_or(-1, Advice::raw);
                table[table_index(call, raw_advice)] = table_entry(&rules, call, advice);
            }
        }
        let dump_dir = settings
            .dump_dir_override
            .clone()
            .or_else(|| policy.dump.dir.clone())
            .unwrap_or_else(|| default_dump_dir(settings.euid));
        let (stats_dir, stats_dir_configured) = match settings
            .stats_dir_override
            .clone()
            .or_else(|| policy.stats.dir.clone())
        {
            Some(StatsDir::None) => (None, true),
            Some(StatsDir::Path(dir)) => (Some(dir), true),
            None => (
                Some(default_stats_dir(
                    settings.euid,
                    settings.runtime_dir.as_deref(),
                )),
                false,
            ),
        };
        Compiled {
            stats_dir: stats_dir
                .map(|dir| CString::new(dir.as_os_str().as_bytes()).unwrap_or_default()),
            stats_dir_configured,
            table,
            rules,
            limits,
            dump_dir: CString::new(dump_dir.as_os_str().as_bytes()).unwrap_or_default(),
            on_exit: policy.dump.on_exit || settings.on_exit_forced,
            signal: policy.dump.signal,
            signal_name: policy.dump.signal.name(),
            source: source.map_or_else(|| b"built-in".to_vec(), |path| path.to_bytes().to_vec()),
            exe: settings.exe.clone(),
        }
    }

    /// Applies this policy's limits to the limiters (their budgets refill);
    /// a host budget unchanged from `previous` stays mapped.
    pub fn configure_limiters(&self, previous: Option<&Compiled>) {
        for (index, limit) in self.limits.iter().enumerate() {
            let unchanged = previous.and_then(|previous| previous.limits.get(index)) == Some(limit);
            limiter::configure(
                index,
                limit.rate,
                limit.burst,
                limit.host.is_some(),
                unchanged,
            );
        }
    }

    /// The entry for a call whose table entry is `BY_PATH`: the first rule
    /// that covers it and whose `path` (if any) matches `path` (`None`
    /// when the call's file has no known path: then no path rule matches).
    pub fn entry_by_path(&self, call: Call, raw_advice: libc::c_int, path: Option<&Path>) -> u32 {
        self.entry_by_context(call, raw_advice, path, None)
    }

    /// The entry for a call whose verdict depends on its file, its caller,
    /// or both: the first rule that covers it whose `path` matches `path`
    /// and whose `caller` matches `caller` (the calling object's path as
    /// the loader has it; empty for the main program). An unknown file or
    /// caller matches no rule that asks about it.
    pub fn entry_by_context(
        &self,
        call: Call,
        raw_advice: libc::c_int,
        path: Option<&Path>,
        caller: Option<&[u8]>,
    ) -> u32 {
        let advice = (call == Call::PosixFadvise)
            .then(|| Advice::from_raw(raw_advice))
            .flatten();
        let caller = caller.map(|caller| match caller {
            b"" => self.exe.as_path(),
            named => Path::new(std::ffi::OsStr::from_bytes(named)),
        });
        for rule in self.rules.iter().filter(|rule| rule.covers(call, advice)) {
            let path_matches = match (&rule.rule.path, path) {
                (None, _) => true,
                (Some(globs), Some(path)) => globs.matches_path(path),
                (Some(_), None) => false,
            };
            let caller_matches = match (&rule.rule.caller, caller) {
                (None, _) => true,
                (Some(globs), Some(caller)) => globs.matches_caller(caller),
                (Some(_), None) => false,
            };
            if path_matches && caller_matches {
                return rule.entry;
            }
        }
        PASS
    }
}

/// A call's table entry: the first covering rule's if it asks nothing
/// about the call's file or caller; else which of the two the rules up to
/// the first that asks nothing depend on.
fn table_entry(rules: &[CompiledRule], call: Call, advice: Option<Advice>) -> u32 {
    let (mut by_path, mut by_caller) = (false, false);
    for rule in rules.iter().filter(|rule| rule.covers(call, advice)) {
        by_path |= rule.rule.path.is_some();
        by_caller |= rule.rule.caller.is_some();
        if rule.rule.path.is_none() && rule.rule.caller.is_none() {
            if !by_path && !by_caller {
                return rule.entry;
            }
            break;
        }
    }
    match (by_path, by_caller) {
        (false, false) => PASS,
        (true, false) => BY_PATH,
        (false, true) => BY_CALLER,
        (true, true) => BY_PATH_AND_CALLER,
    }
}

impl CompiledRule {
    /// Whether the rule can decide this call; a `path` rule never decides a
    /// call without a file (`sync`).
    fn covers(&self, call: Call, advice: Option<Advice>) -> bool {
        self.rule.covers(call, advice) && (self.rule.path.is_none() || call.has_file())
    }
}
