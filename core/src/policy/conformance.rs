//! One generated table of policies and calls that every context of the
//! evaluator checks itself against: the preload library (its compiled
//! table plus call-time answers), the supervisor's decider and the
//! in-kernel filter compiler each run every case through their own path
//! and must reach `expected`, the verdict with every fact known.
//!
//! Policies are made of rules drawn from every combination of call (with
//! and without advice), `exe`, `path` and `caller` that match or do not,
//! and each action, in many orders; cases are calls with an executable,
//! a file and a calling module that match, do not, or are none. Only
//! tests use it; it lives here so that all three crates read one table.

use super::evaluate::{evaluate, Fact, Facts, Verdict};
use super::{parse_policy, Action, Policy};
use crate::call::{Advice, Call};

/// The executable of a case whose `exe` matches the table's rules.
pub const PROGRAM: &str = "/opt/app/bin/calls";
/// A shared library that `caller = ["libglog*"]` matches.
pub const LIBRARY: &str = "/usr/lib/libglog.so.0";

/// Where a case's call comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A shared library with this path.
    Library(&'static str),
    /// The main program (the executable is the calling module).
    MainProgram,
    /// A module nobody can name (anonymous code, a lookup that failed).
    Unknown,
}

/// One call and what its context can know.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub call: Call,
    /// The raw advice (for `posix_fadvise`; -1 for other calls).
    pub raw_advice: i32,
    pub exe: Option<&'static str>,
    /// `None`: the file has no path (or the call has no file).
    pub path: Option<&'static str>,
    pub caller: Caller,
}

impl Case {
    pub fn advice(&self) -> Option<Advice> {
        (self.call == Call::PosixFadvise)
            .then(|| Advice::from_raw(self.raw_advice))
            .flatten()
    }

    /// The calling module's path: the executable's for the main program.
    pub fn caller_path(&self) -> Option<&'static str> {
        match self.caller {
            Caller::Library(path) => Some(path),
            Caller::MainProgram => self.exe,
            Caller::Unknown => None,
        }
    }

    /// Every fact known (a missing one is none).
    pub fn facts(&self) -> Facts<'static> {
        let fact = |value: Option<&'static str>| Fact::from_option(value.map(std::path::Path::new));
        Facts {
            exe: fact(self.exe),
            path: fact(self.path),
            caller: fact(self.caller_path()),
        }
    }
}

/// What a call meets, told apart across contexts: a limit by its rule's
/// rate (the table gives every rule of a policy its own).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    Pass,
    Drop,
    Limit { rate: f64 },
}

/// The verdict with every fact known.
pub fn expected(policy: &Policy, case: &Case) -> Outcome {
    let mut facts = case.facts();
    match evaluate(&policy.rules, case.call, case.advice(), &mut facts) {
        Verdict::Rule(index) => outcome_of(policy, index),
        Verdict::NoRule => Outcome::Pass,
        // Every fact is known or none: nothing is left to depend on.
        Verdict::Depends(_) => unreachable!("a context that knows everything decides"),
    }
}

/// What rule `index` of `policy` does.
pub fn outcome_of(policy: &Policy, index: usize) -> Outcome {
    match policy.rules[index].action {
        Action::Pass => Outcome::Pass,
        Action::Drop => Outcome::Drop,
        Action::Limit(limit) => Outcome::Limit { rate: limit.rate },
    }
}

/// One rule's text, from its choices; `rate` tells limits apart.
fn rule_text(choice: usize, rate: usize) -> String {
    const CALLS: [&str; 5] = [
        "call = \"posix_fadvise\"\nadvice = \"dontneed\"",
        "call = \"posix_fadvise\"",
        "call = \"fsync\"",
        "call = \"sync\"",
        "call = \"*\"",
    ];
    const EXES: [&str; 3] = ["", "exe = [\"calls\"]", "exe = [\"postgres\"]"];
    const PATHS: [&str; 3] = ["", "path = [\"/data/**\"]", "path = [\"/var/log/**\"]"];
    const CALLERS: [&str; 3] = ["", "caller = [\"libglog*\"]", "caller = [\"calls\"]"];
    let mut rest = choice;
    let mut pick = |options: &[&'static str]| {
        let picked = options[rest % options.len()];
        rest /= options.len();
        picked
    };
    let call = pick(&CALLS);
    let exe = pick(&EXES);
    // `path` on `sync` alone is refused when read; on `*` it stays.
    let path = Some(pick(&PATHS)).filter(|_| !call.ends_with("\"sync\""));
    let path = path.unwrap_or_default();
    let caller = pick(&CALLERS);
    let action = match pick(&["pass", "drop", "limit"]) {
        "limit" => format!("action = \"limit\"\nrate = {rate}\nburst = 1"),
        action => format!("action = \"{action}\""),
    };
    let lines = [call, exe, path, caller, action.as_str()];
    let body: Vec<&str> = lines.into_iter().filter(|line| !line.is_empty()).collect();
    format!("[[rule]]\n{}\n", body.join("\n"))
}

/// Distinct single rules.
const RULE_CHOICES: usize = 5 * 3 * 3 * 3 * 3;

/// The policies: every single rule alone, then policies of two to four
/// rules in pseudo-random (but fixed) orders.
pub fn policies() -> Vec<Policy> {
    let mut texts: Vec<String> = (0..RULE_CHOICES)
        .map(|choice| rule_text(choice, 1))
        .collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state as usize
    };
    for _ in 0..600 {
        let rules = 2 + next() % 3;
        texts.push(
            (0..rules)
                .map(|rate| rule_text(next() % RULE_CHOICES, rate + 1))
                .collect(),
        );
    }
    texts
        .iter()
        .map(|text| parse_policy(text).unwrap_or_else(|errors| panic!("{text}: {errors:?}")))
        .collect()
}

/// The calls: each kind of call and advice, from a program that matches or
/// not (or none), on a file that matches or not (or has no path), from a
/// library, the main program or an unknown module.
pub fn cases() -> Vec<Case> {
    let calls = [
        (Call::PosixFadvise, libc::POSIX_FADV_DONTNEED),
        (Call::PosixFadvise, libc::POSIX_FADV_WILLNEED),
        (Call::PosixFadvise, 99),
        (Call::Fsync, -1),
        (Call::Sync, -1),
        (Call::Msync, -1),
    ];
    let mut cases = Vec::new();
    for (call, raw_advice) in calls {
        for exe in [Some(PROGRAM), Some("/usr/bin/other"), None] {
            for path in [Some("/data/file"), Some("/srv/file"), None] {
                let path = path.filter(|_| call.has_file());
                for caller in [
                    Caller::Library(LIBRARY),
                    Caller::MainProgram,
                    Caller::Unknown,
                ] {
                    cases.push(Case {
                        call,
                        raw_advice,
                        exe,
                        path,
                        caller,
                    });
                }
            }
        }
    }
    cases
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The evaluator against the plainest reading of the policy: every
    /// fact known, each rule a conjunction, the first true one decides; and
    /// an undecided verdict is one the missing facts could change.
    #[test]
    fn it_agrees_with_a_plain_first_match_on_the_conformance_table() {
        let cases = cases();
        for (policy, case) in policies()
            .iter()
            .flat_map(|policy| cases.iter().map(move |case| (policy, case)))
        {
            let plain = policy
                .rules
                .iter()
                .position(|rule| {
                    let asks = |globs: &Option<crate::policy::Globs>,
                                fact: Fact<&Path>,
                                matches: &dyn Fn(&crate::policy::Globs, &Path) -> bool| {
                        match (globs, fact) {
                            (None, _) => true,
                            (Some(globs), Fact::Known(value)) => matches(globs, value),
                            (Some(_), _) => false,
                        }
                    };
                    let facts = case.facts();
                    let path = if case.call.has_file() {
                        facts.path
                    } else {
                        Fact::None
                    };
                    rule.covers(case.call, case.advice())
                        && asks(&rule.exe, facts.exe, &|g, v| g.matches_exe(v))
                        && asks(&rule.path, path, &|g, v| g.matches_path(v))
                        && asks(&rule.caller, facts.caller, &|g, v| g.matches_caller(v))
                })
                .map_or(Verdict::NoRule, Verdict::Rule);
            let mut known = case.facts();
            assert_eq!(
                evaluate(&policy.rules, case.call, case.advice(), &mut known),
                plain,
                "{case:?} under {:?}",
                policy.rules
            );
            // With the path and the caller not known, a decided verdict
            // is the known one; an undecided one names a fact that matters.
            let mut partial = Facts {
                path: Fact::NotKnownHere,
                caller: Fact::NotKnownHere,
                ..case.facts()
            };
            match evaluate(&policy.rules, case.call, case.advice(), &mut partial) {
                Verdict::Depends(unknowns) => {
                    assert!(
                        !unknowns.exe && (unknowns.path || unknowns.caller),
                        "{case:?}"
                    )
                }
                decided => assert_eq!(decided, plain, "{case:?}"),
            }
        }
    }
}
