//! Turns a validated `Policy` into what the hot path reads: a flat table of
//! entries indexed by call and advice, each the verdict of core's one
//! evaluator (`fadvise_shim_core::policy::evaluate`) asked once per process
//! image with the executable known and the call's file and calling module
//! "not known here" — so `exe` rules cost nothing per call. An entry the
//! evaluator cannot decide without them says which it depends on (`BY_PATH`,
//! `BY_CALLER`, `BY_PATH_AND_CALLER`); at call time `decide` asks the same
//! evaluator again with those answered (`hooks::intercept` finds them: the
//! path cache, the call site's cached verdict or its module).

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use fadvise_shim_core::call::{Advice, Call};
use fadvise_shim_core::policy::evaluate::{evaluate, Fact, Facts, Verdict};
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
/// Table entry: the verdict depends on the path of the call's file.
pub const BY_PATH: u32 = 3;
/// Table entry: the verdict depends on the calling module.
pub const BY_CALLER: u32 = 4;
/// Table entry: the verdict depends on both.
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

/// A policy ready for this process.
pub struct Compiled {
    pub table: [u32; TABLE_LEN],
    /// The policy's rules, in order, for the entries decided at call time.
    rules: Vec<Rule>,
    /// Each rule's table entry (`PASS` for rules this executable never meets).
    entries: Vec<u32>,
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
    /// The executable: the calling module of calls from the main program.
    /// Empty if unknown (then `exe` and such `caller` rules never match).
    exe: PathBuf,
}

impl Compiled {
    pub fn new(policy: &Policy, source: Option<&CStr>, settings: &Settings) -> Compiled {
        let mut limits = Vec::new();
        let entries = policy
            .rules
            .iter()
            .map(|rule| match rule.action {
                Action::Pass => PASS,
                Action::Drop => DROP,
                // Limiters go to the rules this executable can meet.
                Action::Limit(limit)
                    if limits.len() < MAX_LIMITERS
                        && (rule.exe.is_none() || rule.applies_to_exe(settings.exe())) =>
                {
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
            })
            .collect();
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
        let mut compiled = Compiled {
            stats_dir: stats_dir
                .map(|dir| CString::new(dir.as_os_str().as_bytes()).unwrap_or_default()),
            stats_dir_configured,
            table: [PASS; TABLE_LEN],
            rules: policy.rules.clone(),
            entries,
            limits,
            dump_dir: CString::new(dump_dir.as_os_str().as_bytes()).unwrap_or_default(),
            on_exit: policy.dump.on_exit || settings.on_exit_forced,
            signal: policy.dump.signal,
            signal_name: policy.dump.signal.name(),
            source: source.map_or_else(|| b"built-in".to_vec(), |path| path.to_bytes().to_vec()),
            // Only `exe` and `caller` rules ask for the executable: without
            // one, it is not read (an empty path is never consulted).
            exe: if policy
                .rules
                .iter()
                .any(|rule| rule.exe.is_some() || rule.caller.is_some())
            {
                settings.exe().to_path_buf()
            } else {
                PathBuf::new()
            },
        };
        for call in Call::ALL {
            let advices = Advice::ALL.into_iter().map(Some).chain([None]);
            for advice in advices {
                let raw_advice = advice.map_or(-1, Advice::raw);
                compiled.table[table_index(call, raw_advice)] =
                    compiled.decide(call, raw_advice, Fact::NotKnownHere, Fact::NotKnownHere);
            }
        }
        compiled
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

    /// The entry for a call, with its file's path and its calling module
    /// (as the loader names it: empty for the main program) each known,
    /// none, or not known here. Called with both not known here, this is
    /// the table's entry; with what the table's entry depends on answered,
    /// it is the call's verdict (an entry still undecided, which cannot
    /// happen then, passes: it is neither `DROP` nor `LIMIT`).
    /// Allocation-free: runs inside intercepted calls.
    pub fn decide(
        &self,
        call: Call,
        raw_advice: libc::c_int,
        path: Fact<&Path>,
        caller: Fact<&[u8]>,
    ) -> u32 {
        let advice = (call == Call::PosixFadvise)
            .then(|| Advice::from_raw(raw_advice))
            .flatten();
        let exe =
            Fact::from_option(Some(self.exe.as_path()).filter(|exe| !exe.as_os_str().is_empty()));
        let caller = match caller {
            Fact::Known(b"") => exe,
            Fact::Known(module) => Fact::Known(Path::new(OsStr::from_bytes(module))),
            Fact::None => Fact::None,
            Fact::NotKnownHere => Fact::NotKnownHere,
        };
        let mut facts = Facts { exe, path, caller };
        match evaluate(&self.rules, call, advice, &mut facts) {
            Verdict::Rule(index) => self.entries.get(index).copied().unwrap_or(PASS),
            Verdict::NoRule => PASS,
            Verdict::Depends(unknowns) => match (unknowns.path, unknowns.caller) {
                (true, false) => BY_PATH,
                (false, true) => BY_CALLER,
                // The exe is always known here: never the only unknown.
                _ => BY_PATH_AND_CALLER,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::policy::conformance::{self, Caller, Outcome};

    fn settings(exe: Option<&str>) -> Settings {
        Settings::for_test(exe.unwrap_or_default(), 1000)
    }

    /// The compiled table, then the call-time answers its entry asks for
    /// (the path; the module as the loader names it, "" for the main
    /// program), reach the verdict of every fact known, for every case.
    #[test]
    fn the_table_and_call_time_answers_reach_the_evaluators_verdict() {
        let cases = conformance::cases();
        for policy in conformance::policies() {
            for exe in [Some(conformance::PROGRAM), Some("/usr/bin/other"), None] {
                let compiled = Compiled::new(&policy, None, &settings(exe));
                for case in cases.iter().filter(|case| case.exe == exe) {
                    let path = Fact::from_option(case.path.map(Path::new));
                    let module = match case.caller {
                        Caller::Library(path) => Fact::Known(path.as_bytes()),
                        Caller::MainProgram => Fact::Known(&b""[..]),
                        Caller::Unknown => Fact::None,
                    };
                    let entry = compiled.table[table_index(case.call, case.raw_advice)];
                    let (call, advice) = (case.call, case.raw_advice);
                    let entry = match entry & KIND_MASK {
                        BY_PATH => compiled.decide(call, advice, path, Fact::NotKnownHere),
                        BY_CALLER => compiled.decide(call, advice, Fact::NotKnownHere, module),
                        BY_PATH_AND_CALLER => compiled.decide(call, advice, path, module),
                        _ => entry,
                    };
                    let outcome = match entry & KIND_MASK {
                        PASS => Outcome::Pass,
                        DROP => Outcome::Drop,
                        LIMIT => Outcome::Limit {
                            rate: compiled.limits[(entry >> 8) as usize].rate,
                        },
                        undecided => panic!("{case:?}: still {undecided}"),
                    };
                    assert_eq!(
                        outcome,
                        conformance::expected(&policy, case),
                        "{case:?} under {:?}",
                        policy.rules
                    );
                }
            }
        }
    }
}
