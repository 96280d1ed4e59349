//! The one evaluator of the policy: the first rule, in order, that matches
//! a call decides it; none: pass. The preload library, the supervisor and
//! the in-kernel filter compiler all decide through `evaluate`, so a policy
//! means the same wherever it is applied.
//!
//! A rule may ask about the call and its advice (always known, part of the
//! call) and about three facts that each context answers in its own way,
//! lazily, through `Context`: the executable (`exe`), the path of the call's
//! file (`path`) and the calling module (`caller`: the shared object or
//! program holding the code that made the call). Each answer is one of:
//!
//! - `Fact::Known`: the value, matched against the rule's globs;
//! - `Fact::None`: the call has no such thing — `sync` has no file, a file
//!   has no path the kernel can give (an anonymous mapping, a socket), the
//!   calling module or the executable cannot be found. A rule that asks
//!   about a fact that is none **does not match**; this is the only meaning
//!   of "none", in every context;
//! - `Fact::NotKnownHere`: the context cannot tell now (the library's table
//!   is compiled before any call is made; a seccomp filter sees neither
//!   files nor modules). The evaluation does not guess: a rule that may
//!   match only depending on such a fact makes the verdict `Depends` on it,
//!   unless a rule before it decides for sure.
//!
//! Evaluation allocates nothing and never panics (the library runs it in
//! signal handlers); a fact is asked for only when a rule still in the
//! running needs it, in the order exe, path, caller.

use std::path::Path;

use super::Rule;
use crate::call::{Advice, Call};

/// One context's answer to one question a rule may ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fact<T> {
    Known(T),
    /// The call has no such thing: a rule that asks about it does not match.
    None,
    /// The context cannot tell now: a rule that asks about it may match.
    NotKnownHere,
}

impl<T> Fact<T> {
    /// `Known` for `Some`, `None` for `None`.
    pub fn from_option(value: Option<T>) -> Fact<T> {
        value.map_or(Fact::None, Fact::Known)
    }
}

/// The facts a verdict depends on when it could not be decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Unknowns {
    pub exe: bool,
    pub path: bool,
    pub caller: bool,
}

/// What the policy says of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The rule at this index of `Policy::rules` decides.
    Rule(usize),
    /// No rule matches: the call passes.
    NoRule,
    /// Which rule decides turns on facts this context cannot tell now.
    Depends(Unknowns),
}

/// Answers a rule's questions about one call, each asked at most as often
/// as a rule needs it (a context that finds a fact slowly keeps it).
pub trait Context {
    /// The executable's full path.
    fn exe(&mut self) -> Fact<&Path>;
    /// The path of the call's file. Not asked for calls without a file.
    fn path(&mut self) -> Fact<&Path>;
    /// The calling module's path (for the main program, the executable's).
    fn caller(&mut self) -> Fact<&Path>;
}

/// A context whose facts are already at hand.
#[derive(Clone, Copy, Debug)]
pub struct Facts<'a> {
    pub exe: Fact<&'a Path>,
    pub path: Fact<&'a Path>,
    pub caller: Fact<&'a Path>,
}

impl Facts<'_> {
    /// Nothing known: what a seccomp filter can tell.
    pub fn nothing() -> Facts<'static> {
        Facts {
            exe: Fact::NotKnownHere,
            path: Fact::NotKnownHere,
            caller: Fact::NotKnownHere,
        }
    }
}

impl Context for Facts<'_> {
    fn exe(&mut self) -> Fact<&Path> {
        self.exe
    }

    fn path(&mut self) -> Fact<&Path> {
        self.path
    }

    fn caller(&mut self) -> Fact<&Path> {
        self.caller
    }
}

/// The verdict of `rules` on `call` with `advice` (`None` for calls
/// without one and for invalid values), asking `context` what they need.
pub fn evaluate(
    rules: &[Rule],
    call: Call,
    advice: Option<Advice>,
    context: &mut impl Context,
) -> Verdict {
    let mut depends = Unknowns::default();
    for (index, rule) in rules.iter().enumerate() {
        if !rule.covers(call, advice) {
            continue;
        }
        let Some(unknowns) = rule_matches(rule, call, context) else {
            continue;
        };
        if unknowns == Unknowns::default() {
            return if depends == Unknowns::default() {
                Verdict::Rule(index)
            } else {
                Verdict::Depends(depends)
            };
        }
        depends.exe |= unknowns.exe;
        depends.path |= unknowns.path;
        depends.caller |= unknowns.caller;
    }
    if depends == Unknowns::default() {
        Verdict::NoRule
    } else {
        Verdict::Depends(depends)
    }
}

/// Whether a rule that covers the call matches: `None` if it does not,
/// else the facts its match still depends on (none: it matches). A fact
/// is not asked for once a known one has ruled the rule out.
fn rule_matches(rule: &Rule, call: Call, context: &mut impl Context) -> Option<Unknowns> {
    let mut unknowns = Unknowns::default();
    if let Some(globs) = &rule.exe {
        unknowns.exe = holds(context.exe(), |exe| globs.matches_exe(exe))?;
    }
    if let Some(globs) = &rule.path {
        // A call without a file has no path, whatever the context says.
        let path = if call.has_file() {
            context.path()
        } else {
            Fact::None
        };
        unknowns.path = holds(path, |path| globs.matches_path(path))?;
    }
    if let Some(globs) = &rule.caller {
        unknowns.caller = holds(context.caller(), |module| globs.matches_caller(module))?;
    }
    Some(unknowns)
}

/// One condition: `None` if it fails, else whether it is still unknown.
fn holds(fact: Fact<&Path>, matches: impl FnOnce(&Path) -> bool) -> Option<bool> {
    match fact {
        Fact::Known(value) => matches(value).then_some(false),
        Fact::None => None,
        Fact::NotKnownHere => Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::parse_policy;

    fn facts<'a>(exe: Fact<&'a str>, path: Fact<&'a str>, caller: Fact<&'a str>) -> Facts<'a> {
        let as_path = |fact: Fact<&'a str>| match fact {
            Fact::Known(text) => Fact::Known(Path::new(text)),
            Fact::None => Fact::None,
            Fact::NotKnownHere => Fact::NotKnownHere,
        };
        Facts {
            exe: as_path(exe),
            path: as_path(path),
            caller: as_path(caller),
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_unknowns_are_not_guessed() {
        let policy = parse_policy(
            "[[rule]]\ncall = \"fsync\"\nexe = [\"db\"]\naction = \"pass\"\n\
             [[rule]]\ncall = \"fsync\"\npath = [\"/log/**\"]\naction = \"drop\"\n\
             [[rule]]\ncall = \"*\"\ncaller = [\"libglog*\"]\naction = \"drop\"\n\
             [[rule]]\ncall = \"*\"\naction = \"pass\"\n",
        )
        .unwrap();
        let rules = &policy.rules;
        let known = facts(
            Fact::Known("/bin/db"),
            Fact::Known("/log/x"),
            Fact::Known("/lib/libglog.so"),
        );
        assert_eq!(
            evaluate(rules, Call::Fsync, None, &mut { known }),
            Verdict::Rule(0)
        );
        let app = facts(Fact::Known("/bin/app"), Fact::Known("/log/x"), Fact::None);
        assert_eq!(
            evaluate(rules, Call::Fsync, None, &mut { app }),
            Verdict::Rule(1)
        );
        // `sync` has no file, whatever the context says; its caller is
        // none (unknown module): neither rule matches.
        assert_eq!(
            evaluate(rules, Call::Sync, None, &mut { app }),
            Verdict::Rule(3)
        );
        // Compiled with the exe known: fsync depends on path and caller.
        let compiled = facts(
            Fact::Known("/bin/app"),
            Fact::NotKnownHere,
            Fact::NotKnownHere,
        );
        assert_eq!(
            evaluate(rules, Call::Fsync, None, &mut { compiled }),
            Verdict::Depends(Unknowns {
                exe: false,
                path: true,
                caller: true
            })
        );
        // The filter knows nothing: every fsync depends on all three.
        let mut nothing = Facts::nothing();
        assert_eq!(
            evaluate(rules, Call::Fsync, None, &mut nothing),
            Verdict::Depends(Unknowns {
                exe: true,
                path: true,
                caller: true
            })
        );
        // A rule ruled out by a known fact asks nothing more.
        struct Counting(usize);
        impl Context for Counting {
            fn exe(&mut self) -> Fact<&Path> {
                Fact::Known(Path::new("/bin/db"))
            }
            fn path(&mut self) -> Fact<&Path> {
                self.0 += 1;
                Fact::None
            }
            fn caller(&mut self) -> Fact<&Path> {
                self.0 += 1;
                Fact::None
            }
        }
        let mut counting = Counting(0);
        assert_eq!(
            evaluate(rules, Call::Fsync, None, &mut counting),
            Verdict::Rule(0)
        );
        assert_eq!(counting.0, 0);
        assert_eq!(
            evaluate(&[], Call::Sync, None, &mut nothing),
            Verdict::NoRule
        );
    }
}
