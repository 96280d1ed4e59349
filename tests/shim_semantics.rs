//! A program cannot tell the shim is there: every intercepted call, with
//! good and bad arguments, returns the same value and leaves the same errno
//! with and without it; and a dropped call fails exactly like the real one
//! when its arguments are wrong without asking the kernel, and otherwise
//! succeeds with errno untouched. The probe (`tests/c/probe.c`) prints one
//! line per case: `CLASS NAME ret=R errno=E`.

mod common;

use std::collections::BTreeMap;

use common::{c_program, run, Scratch, Shim, DROP_ALL, TIMEOUT};

/// The probe's output: case name to (class, `ret=R errno=E`).
fn probe(scratch: &Scratch, shim: Shim) -> (String, BTreeMap<String, (String, String)>) {
    let mut command = scratch.command(c_program("probe"), shim);
    command.arg(scratch.path());
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("probe");
    if !matches!(shim, Shim::Policy(_)) {
        assert_eq!(finished.stderr, "", "{shim:?}: something printed on stderr");
    }
    let cases = finished
        .stdout
        .lines()
        .map(|line| {
            let mut words = line.splitn(3, ' ');
            let class = words.next().unwrap_or_default().to_string();
            let name = words.next().unwrap_or_default().to_string();
            let result = words.next().unwrap_or_default().to_string();
            (name, (class, result))
        })
        .collect::<BTreeMap<_, _>>();
    assert!(cases.len() > 80, "probe output cut short:\n{finished}");
    (finished.stdout, cases)
}

#[test]
fn probe_results_are_identical_with_and_without_the_shim() {
    let scratch = Scratch::new();
    let (without, _) = probe(&scratch, Shim::Off);
    let (with_default, _) = probe(&scratch, Shim::Default);
    assert_eq!(with_default, without, "built-in default policy");
    let pass_all = "[[rule]]\ncall = \"*\"\naction = \"pass\"\n";
    let (with_pass_rule, _) = probe(&scratch, Shim::Policy(pass_all));
    assert_eq!(with_pass_rule, without, "policy passing every call");
}

#[test]
fn dropped_calls_fail_only_on_argument_errors() {
    let scratch = Scratch::new();
    let (_, real) = probe(&scratch, Shim::Off);
    let (_, dropped) = probe(&scratch, Shim::Policy(DROP_ALL));
    assert_eq!(
        real.keys().collect::<Vec<_>>(),
        dropped.keys().collect::<Vec<_>>()
    );
    let mut wrong = Vec::new();
    for (name, (class, real_result)) in &real {
        let dropped_result = &dropped[name].1;
        let expected = match class.as_str() {
            // Wrong arguments: the real call's error, even when dropped.
            "E" => {
                assert!(
                    !real_result.starts_with("ret=0 "),
                    "{name}: the kernel accepts it ({real_result}); the probe's class is wrong"
                );
                real_result.as_str()
            }
            // Not intercepted: always the real result.
            "P" => real_result.as_str(),
            "S" => "ret=0 errno=12345",
            other => panic!("{name}: unknown class {other:?}"),
        };
        if dropped_result != expected {
            wrong.push(format!(
                "{name} ({class}): dropped {dropped_result}, expected {expected} (real {real_result})"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "dropped calls that differ:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn passed_successful_calls_leave_errno_alone() {
    let scratch = Scratch::new();
    let (_, real) = probe(&scratch, Shim::Off);
    let (_, passed) = probe(&scratch, Shim::Default);
    let successes: Vec<&String> = real
        .iter()
        .filter(|(_, (_, result))| result == "ret=0 errno=12345")
        .map(|(name, _)| name)
        .collect();
    assert!(
        successes.len() >= 30,
        "too few successful cases: {successes:?}"
    );
    for name in successes {
        assert_eq!(passed[name].1, "ret=0 errno=12345", "{name}: errno changed");
    }
}
