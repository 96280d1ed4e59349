//! `[[rule]]` tables: which calls, advice, programs and files a rule covers,
//! and what it does to them.

use crate::call::{Advice, Call};
use crate::policy::{Action, CallSet, Globs, Limit, Rule, Scope};

use super::fields::{Errors, Field, Section};
use super::globs::{self, GlobKind};
use super::suggest;

const PLACE: &str = "in [[rule]]";
const KEYS: &[&str] = &[
    "name", "call", "advice", "exe", "path", "caller", "action", "rate", "burst", "scope",
];
const ACTIONS: &[&str] = &["pass", "drop", "limit"];
const SCOPES: &[&str] = &["process", "host"];
/// `burst` when the rule does not say: one call at a time above the rate.
const DEFAULT_BURST: f64 = 1.0;

/// Every rule of `rule`, in order; rules with errors are left out (their
/// errors are in `errors`). `text` turns offsets into `Rule::line`.
pub(super) fn rules(field: &Field, text: &str, errors: &mut Errors) -> Vec<Rule> {
    let mut rules: Vec<Rule> = Vec::new();
    for section in field.sections(PLACE, errors) {
        let line = super::line_column(text, section.start).0;
        let Some((rule, name_at)) = rule(&section, line, errors) else {
            continue;
        };
        // Host-scope budgets are keyed by name, so one name must mean one
        // budget.
        let clash = rules.iter().find(|earlier| {
            earlier.name == rule.name
                && earlier.action != rule.action
                && [earlier.action, rule.action]
                    .iter()
                    .any(|a| matches!(a, Action::Limit(_)))
        });
        if let (Some(earlier), Some(name)) = (clash, &rule.name) {
            errors.at(
                name_at,
                format!(
                    "rule name `{name}` is already used at line {} with a different action; a name identifies a limit in reports and host-wide budgets, so give this rule another name",
                    earlier.line
                ),
            );
            continue;
        }
        rules.push(rule);
    }
    rules
}

/// One rule and the offset of its name, or `None` after reporting errors.
fn rule(section: &Section, line: usize, errors: &mut Errors) -> Option<(Rule, usize)> {
    let before = errors.count();
    section.reject_unknown_keys(KEYS, errors);
    let name_field = section.get("name");
    let name = name_field.as_ref().and_then(|field| name(field, errors));
    let calls = match section.get("call") {
        Some(field) => calls(&field, errors),
        None => {
            errors.at(
                section.start,
                "[[rule]] has no `call`: name the calls it covers, or \"*\" for all",
            );
            None
        }
    };
    let advice = section
        .get("advice")
        .and_then(|field| advice(&field, calls, errors));
    let exe = section
        .get("exe")
        .and_then(|field| glob_field(&field, GlobKind::Exe, errors));
    let path = section.get("path").and_then(|field| {
        if calls.is_some_and(|calls| calls.iter().all(|call| !call.has_file())) {
            errors.at(
                field.key_at,
                "`path` cannot apply to `sync`, which has no file",
            );
        }
        glob_field(&field, GlobKind::Path, errors)
    });
    let caller = section
        .get("caller")
        .and_then(|field| glob_field(&field, GlobKind::Caller, errors));
    let action = action(section, errors);
    if let (Some(Action::Limit(limit)), None, Some(scope)) = (action, &name, section.get("scope")) {
        if limit.scope == Scope::Host {
            errors.at(
                scope.value_at,
                "scope = \"host\" needs a `name`: every process whose policy has a host-scope rule of that name draws from one budget",
            );
        }
    }
    if errors.count() != before {
        return None;
    }
    let name_at = name_field.map_or(section.start, |field| field.value_at);
    let rule = Rule {
        name,
        line,
        calls: calls?,
        advice,
        exe,
        path,
        caller,
        action: action?,
    };
    Some((rule, name_at))
}

fn name(field: &Field, errors: &mut Errors) -> Option<String> {
    let name = field.string(errors)?;
    if name.is_empty() || name.chars().any(char::is_control) {
        errors.at(
            field.value_at,
            "`name` must be non-empty and free of control characters",
        );
        return None;
    }
    Some(name.to_owned())
}

fn calls(field: &Field, errors: &mut Errors) -> Option<CallSet> {
    let names: Vec<&str> = std::iter::once("*")
        .chain(Call::ALL.map(Call::name))
        .collect();
    let before = errors.count();
    let mut calls = CallSet::default();
    for (name, at) in field.strings(errors)? {
        match Call::from_name(name) {
            Some(call) => calls.insert(call),
            None if name == "*" => calls = CallSet::ALL,
            None => errors.at(at, suggest::unknown("call", name, "", &names)),
        }
    }
    (errors.count() == before).then_some(calls)
}

fn advice(field: &Field, calls: Option<CallSet>, errors: &mut Errors) -> Option<Vec<Advice>> {
    let others: Vec<&str> = calls
        .into_iter()
        .flat_map(CallSet::iter)
        .filter(|&call| call != Call::PosixFadvise)
        .map(Call::name)
        .collect();
    if !others.is_empty() {
        errors.at(
            field.key_at,
            format!(
                "`advice` applies only to posix_fadvise, but this rule also covers {}; put those calls in a rule of their own",
                others.join(", ")
            ),
        );
    }
    let names = Advice::ALL.map(Advice::name);
    let before = errors.count();
    let mut advice = Vec::new();
    for (name, at) in field.strings(errors)? {
        match Advice::from_name(name) {
            Some(value) if !advice.contains(&value) => advice.push(value),
            Some(_) => {}
            None => errors.at(at, suggest::unknown("advice", name, "", &names)),
        }
    }
    (errors.count() == before).then_some(advice)
}

fn glob_field(field: &Field, kind: GlobKind, errors: &mut Errors) -> Option<Globs> {
    globs::compile(kind, &field.strings(errors)?, errors)
}

/// `action`, with `rate`, `burst` and `scope`, which only `limit` takes.
fn action(section: &Section, errors: &mut Errors) -> Option<Action> {
    let action_field = section.get("action");
    let action = match &action_field {
        None => {
            errors.at(
                section.start,
                "[[rule]] has no `action`: \"pass\", \"drop\" or \"limit\"",
            );
            None
        }
        Some(field) => field.string(errors).and_then(|name| {
            if !ACTIONS.contains(&name) {
                errors.at(
                    field.value_at,
                    suggest::unknown("action", name, "", ACTIONS),
                );
            }
            ACTIONS.contains(&name).then_some(name)
        }),
    };
    let limit_fields = ["rate", "burst", "scope"].map(|key| section.get(key));
    if matches!(action, Some("pass" | "drop")) {
        for field in limit_fields.iter().flatten() {
            errors.at(
                field.key_at,
                format!("`{}` applies only to action = \"limit\"", field.key),
            );
        }
        return match action {
            Some("drop") => Some(Action::Drop),
            _ => Some(Action::Pass),
        };
    }
    // An unknown action still gets its limit values checked.
    let [rate, burst, scope] = limit_fields;
    let rate = match (rate, &action_field) {
        (Some(field), _) => positive(&field, 0.0, errors),
        (None, Some(action_field)) if action.is_some() => {
            errors.at(
                action_field.value_at,
                "action = \"limit\" needs `rate`, the calls per second allowed through",
            );
            None
        }
        (None, _) => None,
    };
    let burst = match burst {
        Some(field) => positive(&field, 1.0, errors),
        None => Some(DEFAULT_BURST),
    };
    let scope = match scope {
        Some(field) => scope_value(&field, errors),
        None => Some(Scope::Process),
    };
    action?;
    Some(Action::Limit(Limit {
        rate: rate?,
        burst: burst?,
        scope: scope?,
    }))
}

/// A finite number above zero and at least `min`.
fn positive(field: &Field, min: f64, errors: &mut Errors) -> Option<f64> {
    let value = field.number(errors)?;
    if value.is_finite() && value > 0.0 && value >= min {
        return Some(value);
    }
    let wanted = if min > 0.0 {
        format!("a finite number of at least {min}")
    } else {
        "a positive, finite number".to_owned()
    };
    errors.at(
        field.value_at,
        format!("`{}` must be {wanted}, not {value}", field.key),
    );
    None
}

fn scope_value(field: &Field, errors: &mut Errors) -> Option<Scope> {
    match field.string(errors)? {
        "process" => Some(Scope::Process),
        "host" => Some(Scope::Host),
        other => {
            errors.at(field.value_at, suggest::unknown("scope", other, "", SCOPES));
            None
        }
    }
}
