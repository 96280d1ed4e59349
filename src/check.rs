//! `fadvise-shim check FILE`: validates a policy file. Every error is printed
//! as `FILE:LINE:COL: message` on stderr (exit 1); a valid policy gets a
//! short summary of what it will do on stdout (exit 0).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::{
    parse_policy_bytes, Action, CallSet, Policy, Rule, Scope, DEFAULT_LIMITS_DIR,
};

use crate::cli::CheckArgs;
use crate::{output, Failure, Outcome};

pub fn main(args: CheckArgs) -> Outcome {
    let file = args.file.display();
    let bytes = std::fs::read(&args.file).map_err(|error| Failure(format!("{file}: {error}")))?;
    match parse_policy_bytes(&bytes) {
        Ok(policy) => {
            output::print(summary(&policy).as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            let mut report = String::new();
            for error in errors {
                let _ = writeln!(report, "{file}:{error}");
            }
            // Nothing useful is left to do if stderr is gone.
            let _ = std::io::stderr().lock().write_all(report.as_bytes());
            Ok(ExitCode::from(1))
        }
    }
}

/// What the policy will do, in the order the shim applies it.
fn summary(policy: &Policy) -> String {
    let dump = &policy.dump;
    let dir = match &dump.dir {
        Some(dir) => dir.display().to_string(),
        None => "default (/tmp/fadvise-shim for root, /tmp/fadvise-shim-UID for others)".into(),
    };
    let mut text = format!(
        "valid policy\ndump: signal {}, dir {dir}, at exit: {}\n",
        dump.signal.name(),
        if dump.on_exit { "yes" } else { "no" },
    );
    let host_budgets = policy
        .rules
        .iter()
        .any(|rule| matches!(rule.action, Action::Limit(limit) if limit.scope == Scope::Host));
    if host_budgets {
        let dir = policy
            .limits
            .dir
            .as_ref()
            .map_or(DEFAULT_LIMITS_DIR.into(), |dir| dir.display().to_string());
        let _ = writeln!(text, "host-wide limits kept in {dir}");
    }
    text.push_str("rules (the first that matches decides):\n");
    for (index, rule) in policy.rules.iter().enumerate() {
        let _ = writeln!(text, "  {}. {}", index + 1, describe(rule));
    }
    text.push_str("  no match: pass\n");
    text
}

/// `old-glog: drop posix_fadvise(dontneed) in exe *falcon* for paths /var/log/**`
fn describe(rule: &Rule) -> String {
    let label = match &rule.name {
        Some(name) => name.clone(),
        None => format!("line {}", rule.line),
    };
    let action = match rule.action {
        Action::Pass => "pass".to_owned(),
        Action::Drop => "drop".to_owned(),
        Action::Limit(_) => "limit".to_owned(),
    };
    let mut text = format!("{label}: {action} {}", calls(rule));
    if let Some(exe) = &rule.exe {
        let _ = write!(text, " in exe {}", exe.patterns.join(", "));
    }
    if let Some(path) = &rule.path {
        let _ = write!(text, " for paths {}", path.patterns.join(", "));
    }
    if let Some(caller) = &rule.caller {
        let _ = write!(text, " called from {}", caller.patterns.join(", "));
    }
    if let Action::Limit(limit) = rule.action {
        let scope = match limit.scope {
            Scope::Process => "per process",
            Scope::Host => "shared by every process on the host",
        };
        let _ = write!(
            text,
            " to {} calls/s, burst {}, {scope}",
            limit.rate, limit.burst
        );
    }
    text
}

/// `every call`, or `posix_fadvise(dontneed), fsync`.
fn calls(rule: &Rule) -> String {
    if rule.calls == CallSet::ALL {
        return "every call".into();
    }
    let names: Vec<String> = rule
        .calls
        .iter()
        .map(|call| match (&rule.advice, call) {
            (Some(advice), Call::PosixFadvise) => {
                let advice: Vec<&str> = advice.iter().map(|advice| advice.name()).collect();
                format!("posix_fadvise({})", advice.join(", "))
            }
            _ => call.name().to_owned(),
        })
        .collect();
    names.join(", ")
}
