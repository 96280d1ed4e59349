//! Helpers for the policy tests (`tests/policy_*.rs`): they compile the C
//! programs under `tests/c_policy/`, which make intercepted calls under a
//! seccomp filter that answers EPERM to those syscalls, and read the lines
//! those programs print back as the kernel's verdict on each call.
// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::path::PathBuf;

/// The errno value the C programs set before each call: a call that leaves
/// errno alone prints it.
const SENTINEL: i64 = 12345;
const EPERM: i64 = 1;

/// The C program `tests/c_policy/NAME.c`, compiled on first use.
pub fn policy_program(name: &str) -> PathBuf {
    crate::common::compile_c("c_policy", name, name, &["-Werror"])
}

/// Who answered a call, as the seccomp filter shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The call reached the kernel (and the filter refused it with EPERM).
    Kernel,
    /// The shim answered it without the kernel: success, errno untouched.
    Shim,
}

/// One `STEP CALL ret=R errno=E` line of a C program, read as a verdict.
#[derive(Debug, PartialEq, Eq)]
pub struct CallLine {
    pub step: String,
    pub call: String,
    pub verdict: Verdict,
}

/// Reads every line of `stdout` as a `CallLine`; fails the test on a line
/// that is neither verdict (a wrong errno, a garbled result).
pub fn call_lines(stdout: &str) -> Vec<CallLine> {
    stdout
        .lines()
        .map(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            let [step, call, ret, errno] = cells[..] else {
                panic!("unexpected line {line:?} in:\n{stdout}");
            };
            let number = |cell: &str, key: &str| -> i64 {
                cell.strip_prefix(key)
                    .and_then(|value| value.parse().ok())
                    .unwrap_or_else(|| panic!("no {key} in {line:?}"))
            };
            let (ret, errno) = (number(ret, "ret="), number(errno, "errno="));
            // posix_fadvise returns its error and leaves errno alone; the
            // other calls return -1 and set errno.
            let fadvise = call == "posix_fadvise";
            let verdict = match (ret, errno) {
                (0, SENTINEL) => Verdict::Shim,
                (EPERM, SENTINEL) if fadvise => Verdict::Kernel,
                (-1, EPERM) if !fadvise => Verdict::Kernel,
                _ => panic!("{line:?} is neither the kernel's EPERM nor the shim's success"),
            };
            CallLine {
                step: step.to_string(),
                call: call.to_string(),
                verdict,
            }
        })
        .collect()
}

/// A policy that applies `action` to every call of processes whose
/// executable matches `exe_glob`.
pub fn exe_policy(exe_glob: &str, action: &str) -> String {
    format!("[[rule]]\ncall = \"*\"\nexe = [{exe_glob:?}]\naction = {action:?}\n")
}
