//! The policy's verdict on one intercepted call, from the supervisor's
//! side: rules in order, the first that covers the call (and advice),
//! applies to the caller's executable (`/proc/PID/exe`) and, for `path`
//! rules, matches the call's file (`/proc/PID/fd/N` or `/proc/PID/maps`,
//! looked up only when such a rule is reached) decides; none: pass.
//!
//! Rate limits use `core::gcra`. Every `limit` rule has its own budget in
//! each supervised process; `scope = "host"` is treated as `process` here
//! (the supervisor does not map the library's shared budgets).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use fadvise_shim_core::gcra;
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

    /// The verdict for `request` made by a process running `exe`;
    /// `path` finds the call's file when a `path` rule needs it.
    pub fn decide(
        &self,
        request: &Request,
        exe: &Path,
        path: impl FnOnce() -> Option<PathBuf>,
    ) -> Verdict {
        let mut path = Lazy::new(path);
        for (index, rule) in self.policy.rules.iter().enumerate() {
            if !rule.covers(request.call, request.advice) || !rule.applies_to_exe(exe) {
                continue;
            }
            if let Some(globs) = &rule.path {
                let matches = request.call.has_file()
                    && path.get().is_some_and(|path| globs.matches_path(path));
                if !matches {
                    continue;
                }
            }
            return match rule.action {
                Action::Pass => Verdict::Pass,
                Action::Drop => Verdict::Drop,
                Action::Limit(_) => Verdict::Limit(self.budget_of_rule[index].unwrap_or(0)),
            };
        }
        Verdict::Pass
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
    use fadvise_shim_core::policy::parse_policy;

    fn fadvise(advice: i32) -> Request {
        Request::new(libc::SYS_fadvise64 as u32, [3, 0, 0, advice as u64, 0, 0]).unwrap()
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
            decider.decide(&dontneed, Path::new("/bin/mydb"), log),
            Verdict::Pass
        );
        assert_eq!(
            decider.decide(&dontneed, Path::new("/bin/app"), log),
            Verdict::Drop
        );
        let elsewhere = || Some(PathBuf::from("/data/x"));
        assert_eq!(
            decider.decide(&dontneed, Path::new("/bin/app"), elsewhere),
            Verdict::Limit(0)
        );
        let willneed = fadvise(libc::POSIX_FADV_WILLNEED);
        let never = || -> Option<PathBuf> { panic!("no path rule covers this call") };
        assert_eq!(
            decider.decide(&willneed, Path::new("/bin/app"), never),
            Verdict::Limit(0)
        );
        assert_eq!(decider.budget_count(), 1);
    }
}
