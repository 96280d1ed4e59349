//! The policy's verdict on one intercepted call, from the supervisor's
//! side: core's one evaluator (`fadvise_shim_core::policy::evaluate`), its
//! questions answered from the kernel's record of the calling process,
//! each looked up only when a rule still in the running asks it — `exe`
//! from `/proc/PID/exe`, `path` from `/proc/PID/fd/N` (or `/proc/PID/maps`
//! for `msync`'s mapping), `caller` as the module holding the system call
//! instruction (`modules.rs`). Every question gets an answer here (a value
//! or none), so every call is decided.
//!
//! Rate limits use `core::gcra`. Every `limit` rule has its own budget in
//! each supervised process; `scope = "host"` is treated as `process` here
//! (the supervisor does not map the library's shared budgets).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use fadvise_shim_core::gcra;
use fadvise_shim_core::policy::evaluate::{self, Context, Fact};
use fadvise_shim_core::policy::{Action, Policy};

use super::request::Request;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Drop,
    /// Limited by budget number N of the process.
    Limit(usize),
}

pub struct Decider {
    policy: Policy,
    /// Per rule: its budget number, for `limit` rules.
    budget_of_rule: Vec<Option<usize>>,
    /// Per budget: GCRA (interval, tolerance) in ns.
    budgets: Vec<(u64, u64)>,
}

impl Decider {
    pub fn new(policy: Policy) -> Decider {
        let mut budgets = Vec::new();
        let budget_of_rule = policy
            .rules
            .iter()
            .map(|rule| match rule.action {
                Action::Limit(limit) => {
                    budgets.push(gcra::parameters(limit.rate, limit.burst));
                    Some(budgets.len() - 1)
                }
                _ => None,
            })
            .collect();
        Decider {
            policy,
            budget_of_rule,
            budgets,
        }
    }

    /// How many budgets each process needs.
    pub fn budget_count(&self) -> usize {
        self.budgets.len()
    }

    /// The verdict for `request` made by a process running `exe` (empty:
    /// unknown); `path` finds the call's file and `caller` its calling
    /// module, when a rule asks.
    pub fn decide(
        &self,
        request: &Request,
        exe: &Path,
        path: impl FnOnce() -> Option<PathBuf>,
        caller: impl FnOnce() -> Option<PathBuf>,
    ) -> Verdict {
        let mut answers = Answers {
            exe,
            path: Lazy::new(path),
            caller: Lazy::new(caller),
        };
        match evaluate::evaluate(
            &self.policy.rules,
            request.call,
            request.advice,
            &mut answers,
        ) {
            evaluate::Verdict::Rule(index) => match self.policy.rules[index].action {
                Action::Pass => Verdict::Pass,
                Action::Drop => Verdict::Drop,
                Action::Limit(_) => Verdict::Limit(self.budget_of_rule[index].unwrap_or(0)),
            },
            // Nothing is "not known here" in the supervisor: it cannot
            // depend, but were it to, the call would pass.
            evaluate::Verdict::NoRule | evaluate::Verdict::Depends(_) => Verdict::Pass,
        }
    }

    /// Whether a call at `now_ns` fits budget `budget`, whose state is
    /// `next`; if so it is counted against it.
    pub fn admit(&self, budget: usize, next: &AtomicU64, now_ns: u64) -> bool {
        let Some(&(interval, tolerance)) = self.budgets.get(budget) else {
            return true;
        };
        gcra::conforms(next, interval, tolerance, now_ns)
    }
}

/// What the supervisor answers about one call.
struct Answers<'a, P, C> {
    exe: &'a Path,
    path: Lazy<P>,
    caller: Lazy<C>,
}

impl<P, C> Context for Answers<'_, P, C>
where
    P: FnOnce() -> Option<PathBuf>,
    C: FnOnce() -> Option<PathBuf>,
{
    fn exe(&mut self) -> Fact<&Path> {
        Fact::from_option(Some(self.exe).filter(|exe| !exe.as_os_str().is_empty()))
    }

    fn path(&mut self) -> Fact<&Path> {
        Fact::from_option(self.path.get())
    }

    fn caller(&mut self) -> Fact<&Path> {
        Fact::from_option(self.caller.get())
    }
}

/// A path looked up at most once, and only if asked for.
struct Lazy<F> {
    find: Option<F>,
    found: Option<PathBuf>,
}

impl<F: FnOnce() -> Option<PathBuf>> Lazy<F> {
    fn new(find: F) -> Lazy<F> {
        Lazy {
            find: Some(find),
            found: None,
        }
    }

    fn get(&mut self) -> Option<&Path> {
        if let Some(find) = self.find.take() {
            self.found = find();
        }
        self.found.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::call::Call;
    use fadvise_shim_core::policy::conformance::{self, Outcome};
    use fadvise_shim_core::policy::parse_policy;

    fn fadvise(advice: i32) -> Request {
        Request::new(libc::SYS_fadvise64 as u32, [3, 0, 0, advice as u64, 0, 0]).unwrap()
    }

    fn nowhere() -> Option<PathBuf> {
        None
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let policy = parse_policy(
            "[[rule]]\ncall = \"posix_fadvise\"\nexe = [\"*db*\"]\naction = \"pass\"\n\
             [[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\npath = [\"/var/log/**\"]\naction = \"drop\"\n\
             [[rule]]\ncall = \"*\"\naction = \"limit\"\nrate = 1\nburst = 1\n",
        )
        .unwrap();
        let decider = Decider::new(policy);
        let dontneed = fadvise(libc::POSIX_FADV_DONTNEED);
        let log = || Some(PathBuf::from("/var/log/x"));
        assert_eq!(
            decider.decide(&dontneed, Path::new("/bin/mydb"), log, nowhere),
            Verdict::Pass
        );
        assert_eq!(
            decider.decide(&dontneed, Path::new("/bin/app"), log, nowhere),
            Verdict::Drop
        );
        let elsewhere = || Some(PathBuf::from("/data/x"));
        assert_eq!(
            decider.decide(&dontneed, Path::new("/bin/app"), elsewhere, nowhere),
            Verdict::Limit(0)
        );
        let willneed = fadvise(libc::POSIX_FADV_WILLNEED);
        let never = || -> Option<PathBuf> { panic!("no path or caller rule covers this call") };
        assert_eq!(
            decider.decide(&willneed, Path::new("/bin/app"), never, never),
            Verdict::Limit(0)
        );
        assert_eq!(decider.budget_count(), 1);
    }

    /// The request a case's call makes as a system call on fd 3 (or a
    /// mapping, for msync).
    fn request_of(case: &conformance::Case) -> Request {
        let number = case.call.syscall_number() as u32;
        let args = match case.call {
            Call::PosixFadvise => [3, 0, 0, case.raw_advice as u64, 0, 0],
            Call::Msync => [0x10000, 4096, libc::MS_SYNC as u64, 0, 0, 0],
            _ => [3, 0, 0, 0, 0, 0],
        };
        Request::new(number, args).unwrap()
    }

    /// Every case of the conformance table, its facts found the
    /// supervisor's way, reaches the verdict of every fact known.
    #[test]
    fn the_supervisor_reaches_the_evaluators_verdict() {
        let cases = conformance::cases();
        for policy in conformance::policies() {
            let decider = Decider::new(policy.clone());
            let limits: Vec<f64> = policy
                .rules
                .iter()
                .filter_map(|rule| match rule.action {
                    Action::Limit(limit) => Some(limit.rate),
                    _ => None,
                })
                .collect();
            for case in &cases {
                let exe = PathBuf::from(case.exe.unwrap_or_default());
                let path = || case.path.map(PathBuf::from);
                let caller = || case.caller_path().map(PathBuf::from);
                let outcome = match decider.decide(&request_of(case), &exe, path, caller) {
                    Verdict::Pass => Outcome::Pass,
                    Verdict::Drop => Outcome::Drop,
                    Verdict::Limit(budget) => Outcome::Limit {
                        rate: limits[budget],
                    },
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
