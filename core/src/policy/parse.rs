//! The policy file parser: TOML text in, a validated `Policy` or every
//! error out, each with the 1-based line and column of the key or value at
//! fault (`policy.example.toml` shows every key).
//!
//! An empty file is the built-in default policy. Only a TOML syntax error
//! stops the parse early; every other problem is collected, so that one run
//! of `fadvise-shim check` lists them all.

mod fields;
mod globs;
mod quick;
mod rule;
mod signal;
mod suggest;

pub use quick::quick_dump_signal;

use std::fmt;
use std::path::PathBuf;

use toml_edit::ImDocument;

use super::{DumpConfig, LimitsConfig, Policy, StatsConfig, StatsDir};
use fields::{Errors, Section};

/// One problem in a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Parses and validates a policy's bytes, which must be UTF-8.
pub fn parse_policy_bytes(bytes: &[u8]) -> Result<Policy, Vec<PolicyError>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_policy(text),
        Err(error) => {
            let valid = &bytes[..error.valid_up_to()];
            // The prefix is valid UTF-8 by definition of `valid_up_to`.
            let valid = std::str::from_utf8(valid).unwrap_or_default();
            let (line, column) = line_column(valid, valid.len());
            let byte = bytes[error.valid_up_to()];
            Err(vec![PolicyError {
                line,
                column,
                message: format!("invalid UTF-8 (byte 0x{byte:02x}): a policy must be UTF-8 text"),
            }])
        }
    }
}

/// Parses and validates a policy; errors are sorted by position.
pub fn parse_policy(text: &str) -> Result<Policy, Vec<PolicyError>> {
    let document = match ImDocument::parse(text) {
        Ok(document) => document,
        Err(error) => {
            let offset = error.span().map_or(0, |span| span.start);
            let message = error.message().trim().replace('\n', "; ");
            return Err(vec![position(
                text,
                offset,
                format!("TOML syntax: {message}"),
            )]);
        }
    };
    let mut errors = Errors::default();
    let root = Section::new(document.as_table(), 0, "at the top level");
    let policy = policy(&root, text, &mut errors);
    if errors.0.is_empty() {
        return Ok(policy);
    }
    let mut errors: Vec<PolicyError> = errors
        .0
        .into_iter()
        .map(|(offset, message)| position(text, offset, message))
        .collect();
    errors.sort_by_key(|error| (error.line, error.column));
    errors.dedup();
    Err(errors)
}

fn policy(root: &Section, text: &str, errors: &mut Errors) -> Policy {
    root.reject_unknown_keys(&["dump", "limits", "stats", "rule"], errors);
    let dump = root
        .get("dump")
        .and_then(|field| field.section("in [dump]", errors))
        .map(|section| dump(&section, errors))
        .unwrap_or_default();
    let limits = root
        .get("limits")
        .and_then(|field| field.section("in [limits]", errors))
        .map(|section| limits(&section, errors))
        .unwrap_or_default();
    let stats = root
        .get("stats")
        .and_then(|field| field.section("in [stats]", errors))
        .map(|section| stats(&section, errors))
        .unwrap_or_default();
    let rules = root
        .get("rule")
        .map(|field| rule::rules(&field, text, errors))
        .unwrap_or_default();
    Policy {
        dump,
        limits,
        stats,
        rules,
    }
}

/// `[stats]`: `dir` is an absolute path, or `"none"` for private memory.
fn stats(section: &Section, errors: &mut Errors) -> StatsConfig {
    section.reject_unknown_keys(&["dir"], errors);
    let dir = section.get("dir").and_then(|field| {
        let text = field.string(errors)?;
        if text == "none" {
            return Some(StatsDir::None);
        }
        let dir = PathBuf::from(text);
        if !dir.is_absolute() {
            errors.at(
                field.value_at,
                format!("`dir` must be an absolute path or \"none\", not {dir:?}"),
            );
            return None;
        }
        Some(StatsDir::Path(dir))
    });
    StatsConfig { dir }
}

fn dump(section: &Section, errors: &mut Errors) -> DumpConfig {
    section.reject_unknown_keys(&["dir", "signal", "on_exit"], errors);
    let defaults = DumpConfig::default();
    let signal = section.get("signal").and_then(|field| {
        let text = field.string(errors)?;
        signal::parse_signal(text)
            .map_err(|message| errors.at(field.value_at, message))
            .ok()
    });
    DumpConfig {
        dir: directory(section, errors),
        signal: signal.unwrap_or(defaults.signal),
        on_exit: section
            .get("on_exit")
            .and_then(|field| field.boolean(errors))
            .unwrap_or(defaults.on_exit),
    }
}

fn limits(section: &Section, errors: &mut Errors) -> LimitsConfig {
    section.reject_unknown_keys(&["dir"], errors);
    LimitsConfig {
        dir: directory(section, errors),
    }
}

/// `dir` of `[dump]` or `[limits]`, which must be absolute: the policy is
/// read by processes with every possible working directory.
fn directory(section: &Section, errors: &mut Errors) -> Option<PathBuf> {
    let field = section.get("dir")?;
    let dir = PathBuf::from(field.string(errors)?);
    if !dir.is_absolute() {
        errors.at(
            field.value_at,
            format!("`dir` must be an absolute path, not {dir:?}"),
        );
        return None;
    }
    Some(dir)
}

fn position(text: &str, offset: usize, message: String) -> PolicyError {
    let (line, column) = line_column(text, offset);
    PolicyError {
        line,
        column,
        message,
    }
}

/// The 1-based line and character column of a byte offset (clamped to the
/// text and to a character boundary).
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use proptest::prelude::*;

    use super::*;
    use crate::call::{Advice, Call};
    use crate::policy::{Action, CallSet, DumpSignal, Limit, Scope};

    const FULL: &str = r#"
[dump]
dir = "/var/tmp/dumps"
signal = "SIGRTMIN+2"
on_exit = true

[limits]
dir = "/dev/shm/budgets"

[[rule]]
name = "old-glog"
call = ["posix_fadvise"]
advice = ["dontneed", "noreuse"]
exe = ["*falcon*", "/opt/*/bin/db"]
path = ["/var/log/**", "**/*.log.INFO.*"]
action = "drop"

[[rule]]
name = "fsync-budget"
call = "fsync"
action = "limit"
rate = 100
burst = 20.5
scope = "host"

[[rule]]
call = "*"
action = "limit"
rate = 0.5

rule = 1
"#;

    fn errors(text: &str) -> Vec<PolicyError> {
        parse_policy(text).expect_err("policy should be refused")
    }

    fn only_error(text: &str) -> PolicyError {
        let mut errors = errors(text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        errors.remove(0)
    }

    #[test]
    fn empty_text_is_the_built_in_default() {
        for text in ["", "\n\n", "# nothing here\n"] {
            let policy = parse_policy(text).unwrap();
            assert_eq!(policy.dump, DumpConfig::default());
            assert_eq!(policy.limits, LimitsConfig::default());
            assert_eq!(policy.stats, StatsConfig::default());
            assert!(policy.rules.is_empty());
        }
    }

    #[test]
    fn builds_the_model_of_a_full_policy() {
        // `rule = 1` sits inside the last [[rule]], so it is an unknown key
        // there; take it out to get the valid policy.
        let text = FULL.replace("rule = 1\n", "");
        let policy = parse_policy(&text).unwrap();
        assert_eq!(
            policy.dump.dir.as_deref(),
            Some(Path::new("/var/tmp/dumps"))
        );
        assert_eq!(policy.dump.signal, DumpSignal::RtMin(2));
        assert!(policy.dump.on_exit);
        assert_eq!(
            policy.limits.dir.as_deref(),
            Some(Path::new("/dev/shm/budgets"))
        );

        let [glog, fsync, all] = &policy.rules[..] else {
            panic!("three rules expected: {:?}", policy.rules);
        };
        assert_eq!(glog.name.as_deref(), Some("old-glog"));
        assert_eq!(glog.line, 10);
        assert_eq!(glog.calls.iter().collect::<Vec<_>>(), [Call::PosixFadvise]);
        assert_eq!(glog.advice, Some(vec![Advice::Dontneed, Advice::Noreuse]));
        assert!(glog.covers(Call::PosixFadvise, Some(Advice::Dontneed)));
        assert!(!glog.covers(Call::PosixFadvise, Some(Advice::Willneed)));
        assert!(!glog.covers(Call::Fsync, None));
        assert_eq!(glog.action, Action::Drop);
        assert!(glog.applies_to_exe(Path::new("/usr/local/bin/falcon")));
        assert!(glog.applies_to_exe(Path::new("/opt/acme/bin/db")));
        assert!(!glog.applies_to_exe(Path::new("/usr/bin/falco/n")));
        let path = glog.path.as_ref().unwrap();
        assert!(path.matches_path(Path::new("/var/log/app/x")));
        assert!(path.matches_path(Path::new(
            "/tmp/falcon.host.root.log.INFO.20240101-120000.42"
        )));
        assert!(!path.matches_path(Path::new("/tmp/falcon.INFO")));

        assert_eq!(fsync.name.as_deref(), Some("fsync-budget"));
        assert_eq!(fsync.line, 18);
        assert_eq!(fsync.label(), "rule \"fsync-budget\"");
        assert_eq!(fsync.advice, None);
        assert_eq!(
            fsync.action,
            Action::Limit(Limit {
                rate: 100.0,
                burst: 20.5,
                scope: Scope::Host
            })
        );
        assert!(fsync.applies_to_exe(Path::new("/bin/anything")));

        assert_eq!(all.calls, CallSet::ALL);
        assert_eq!(
            all.action,
            Action::Limit(Limit {
                rate: 0.5,
                burst: 1.0,
                scope: Scope::Process
            })
        );
    }

    #[test]
    fn inline_tables_mean_the_same() {
        let text = r#"dump = { signal = "usr2" }
rule = [{ call = "sync", action = "drop" }, { call = ["msync"], action = "pass" }]"#;
        let policy = parse_policy(text).unwrap();
        assert_eq!(policy.dump.signal, DumpSignal::Usr2);
        assert_eq!(policy.rules.len(), 2);
        assert_eq!(
            policy.rules[1].calls.iter().collect::<Vec<_>>(),
            [Call::Msync]
        );
        assert_eq!(policy.rules[1].line, 2);
    }

    #[test]
    fn reports_every_error_at_its_key_or_value() {
        let text = "[dump]\nsignal = \"SIGTERM\"\ndir = \"tmp\"\n\n[[rule]]\nacton = \"drop\"\ncall = \"fsink\"\n";
        let errors = errors(text);
        let found: Vec<_> = errors.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(
            found,
            [(2, 10), (3, 7), (5, 1), (6, 1), (7, 8)],
            "{errors:#?}"
        );
        assert!(errors[0].message.contains("would break programs"));
        assert!(errors[1].message.contains("absolute"));
        assert!(errors[2].message.contains("no `action`"));
        assert_eq!(
            errors[3].message,
            "unknown key `acton` in [[rule]]; did you mean `action`?"
        );
        assert_eq!(
            errors[4].message,
            "unknown call `fsink`; did you mean `fsync`?"
        );
    }

    #[test]
    fn refuses_inconsistent_rules() {
        let advice = only_error("[[rule]]\ncall = [\"posix_fadvise\", \"fsync\"]\nadvice = \"dontneed\"\naction = \"drop\"\n");
        assert_eq!((advice.line, advice.column), (3, 1));
        assert!(advice.message.contains("also covers fsync"), "{advice}");

        let sync_path =
            only_error("[[rule]]\ncall = \"sync\"\npath = \"/x/**\"\naction = \"drop\"\n");
        assert_eq!(sync_path.line, 3);

        let no_rate = only_error("[[rule]]\ncall = \"fsync\"\naction = \"limit\"\n");
        assert_eq!((no_rate.line, no_rate.column), (3, 10));
        assert!(no_rate.message.contains("needs `rate`"));

        let stray =
            errors("[[rule]]\ncall = \"fsync\"\naction = \"drop\"\nrate = 5\nscope = \"host\"\n");
        assert_eq!(stray.iter().map(|e| e.line).collect::<Vec<_>>(), [4, 5]);

        for bad in ["0", "-1", "nan", "inf", "-inf", "\"5\""] {
            let error = only_error(&format!(
                "[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = {bad}\n"
            ));
            assert_eq!((error.line, error.column), (4, 8), "{bad}: {error}");
        }
        let burst =
            only_error("[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\nburst = 0.5\n");
        assert!(burst.message.contains("at least 1"), "{burst}");

        let same_name = only_error("[[rule]]\nname = \"a\"\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\n[[rule]]\nname = \"a\"\ncall = \"sync\"\naction = \"limit\"\nrate = 6\n");
        assert_eq!((same_name.line, same_name.column), (7, 8));
        assert!(same_name.message.contains("line 1"), "{same_name}");
        // The same name with the same limit is one shared budget: fine.
        let shared = "[[rule]]\nname = \"a\"\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\n[[rule]]\nname = \"a\"\ncall = \"sync\"\naction = \"limit\"\nrate = 5\n";
        assert!(parse_policy(shared).is_ok());

        let empty = only_error("[[rule]]\ncall = []\naction = \"drop\"\n");
        assert_eq!((empty.line, empty.column), (2, 8));
        assert!(empty.message.contains("empty array"));
    }

    #[test]
    fn points_at_syntax_errors_and_bad_bytes() {
        let syntax = only_error("[dump]\nsignal = \"SIGUSR1\n");
        assert_eq!(syntax.line, 2, "{syntax}");
        assert!(syntax.message.starts_with("TOML syntax:"), "{syntax}");

        let bytes = parse_policy_bytes(b"[dump]\non_exit = tr\xffue\n").unwrap_err();
        assert_eq!((bytes[0].line, bytes[0].column), (2, 13));
        assert!(bytes[0].message.contains("0xff"));

        let wide = only_error("# é\n[[rule]]\nname = \"é\"\ncall = \"é\"\naction = \"drop\"");
        assert_eq!((wide.line, wide.column), (4, 8), "{wide}");
    }

    #[test]
    fn stats_dir_is_absolute_or_none() {
        let none = parse_policy("[stats]\ndir = \"none\"\n").unwrap();
        assert_eq!(none.stats.dir, Some(StatsDir::None));
        let path = parse_policy("[stats]\ndir = \"/dev/shm/x\"\n").unwrap();
        assert_eq!(path.stats.dir, Some(StatsDir::Path("/dev/shm/x".into())));
        let relative = only_error("[stats]\ndir = \"shm\"\n");
        assert_eq!((relative.line, relative.column), (2, 7));
        let unknown = only_error("[stats]\ndirectory = \"/x\"\n");
        assert!(unknown.message.contains("did you mean `dir`"), "{unknown}");
    }

    #[test]
    fn host_scope_needs_a_name() {
        let error = only_error(
            "[[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 5\nscope = \"host\"\n",
        );
        assert_eq!((error.line, error.column), (5, 9), "{error}");
        assert!(error.message.contains("needs a `name`"), "{error}");
    }

    #[test]
    fn type_errors_name_the_expected_type() {
        let errors = errors(FULL);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 31);
        assert!(errors[0].message.contains("unknown key `rule` in [[rule]]"));

        let dump = only_error("dump = 3\n");
        assert_eq!(dump.message, "`dump` must be a table, not an integer");
        let rule = only_error("[rule]\ncall = \"fsync\"\n");
        assert!(rule.message.contains("write [[rule]]"), "{rule}");
        let on_exit = only_error("[dump]\non_exit = \"yes\"\n");
        assert_eq!((on_exit.line, on_exit.column), (2, 11));
        let dotted = only_error("[dump]\nsignal.x = 1\n");
        assert_eq!((dotted.line, dotted.column), (2, 1), "{dotted}");
    }

    /// A valid policy, and fragments that mutations splice into it.
    const SEED: &str = "[dump]\nsignal = \"SIGRTMIN+1\"\n[[rule]]\ncall = [\"posix_fadvise\"]\nadvice = \"dontneed\"\npath = [\"/var/log/**\", \"**/*.log\"]\naction = \"limit\"\nrate = 2.5\n";
    const FRAGMENTS: &[&str] = &[
        "[[rule]]",
        "[dump]",
        "[limits]",
        "=",
        "\"",
        "'",
        "[",
        "]",
        "{",
        "}",
        ",",
        "\n",
        "#",
        "call",
        "action",
        "rate",
        "burst",
        "scope",
        "exe",
        "path",
        "advice",
        "signal",
        "dir",
        "\"*\"",
        "\"limit\"",
        "\"host\"",
        "nan",
        "-inf",
        "1e308",
        "0",
        "-1",
        "\"SIGRTMIN+999\"",
        "\"SIGKILL\"",
        "\"[\"",
        "\"**\"",
        "\"{a,\"",
        "\"\\u0000\"",
        "é",
        "\u{feff}",
        "\r\n",
    ];

    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, usize),
        Delete(usize, usize),
        Byte(usize, u8),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), 0..FRAGMENTS.len()).prop_map(|(at, f)| Edit::Insert(at, f)),
            (any::<usize>(), 1..8usize).prop_map(|(at, n)| Edit::Delete(at, n)),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
        ]
    }

    fn apply(edits: &[Edit]) -> Vec<u8> {
        let mut bytes = SEED.as_bytes().to_vec();
        for edit in edits {
            let len = bytes.len();
            match *edit {
                Edit::Insert(at, f) => {
                    let at = at % (len + 1);
                    bytes.splice(at..at, FRAGMENTS[f].bytes());
                }
                Edit::Delete(at, n) if len > 0 => {
                    let at = at % len;
                    bytes.drain(at..(at + n).min(len));
                }
                Edit::Delete(..) => {}
                Edit::Byte(at, b) if len > 0 => bytes[at % len] = b,
                Edit::Byte(..) => {}
            }
        }
        bytes
    }

    /// Errors always exist when refused, and point inside the text.
    fn check_outcome(bytes: &[u8]) {
        if let Err(errors) = parse_policy_bytes(bytes) {
            assert!(!errors.is_empty());
            let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
            for error in errors {
                assert!(error.line >= 1 && error.line <= lines, "{error}");
                assert!(error.column >= 1, "{error}");
                assert!(!error.message.is_empty());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_outcome(&bytes);
        }

        #[test]
        fn never_panics_on_toml_like_text(text in "[\\[\\]a-z_=\"'{},.\n #*+0-9-]{0,200}") {
            check_outcome(text.as_bytes());
        }

        #[test]
        fn never_panics_on_mutated_policies(edits in proptest::collection::vec(edit(), 1..12)) {
            check_outcome(&apply(&edits));
        }
    }
}
