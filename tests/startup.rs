//! What the shim costs a process that makes no intercepted call, as the
//! kernel sees it. Most processes on a host are short and never call
//! `posix_fadvise` or `fsync`, and every one of them loads the library: its
//! start-up must stay a handful of system calls — mapping the library,
//! finding the policy, installing the dump signal — and must not set up the
//! heap (`brk`, `getrandom` for hash seeds), parse the policy, or read the
//! clock's calibration files. Timing is left to `scripts/bench.sh`; this
//! counts system calls with `strace`, which does not vary from run to run.

mod common;

use std::collections::BTreeMap;

use common::{library, run, Scratch, Shim, TIMEOUT};

/// System calls the shim may add, with how many of each at most: the
/// loader's open, read, fstat, mmap (four segments and the zeroed data) and
/// mprotect of the library; `fstat` of stderr and `getpid` (noted for later
/// checks); `access` of the system policy, or open/fstat/read/close of the
/// given one (the `fstat` refuses a FIFO, which could block); reading and
/// setting the dump signal's action.
const ALLOWED: [(&str, usize); 9] = [
    ("openat", 2),
    ("read", 3),
    ("close", 2),
    ("newfstatat", 3),
    ("mmap", 6),
    ("mprotect", 1),
    ("access", 1),
    ("getpid", 1),
    ("rt_sigaction", 2),
];

/// How many times `/bin/true` makes each system call under `shim`.
fn syscalls_of_true(scratch: &Scratch, shim: Shim, log_name: &str) -> BTreeMap<String, usize> {
    let log = scratch.file(log_name);
    let mut command = scratch.command("strace", Shim::Off);
    command.arg("-o").arg(&log);
    // `-E` sets the shim up in the traced program only, not in strace.
    match shim {
        Shim::Off => {}
        Shim::Default => {
            command
                .arg("-E")
                .arg(format!("LD_PRELOAD={}", library().display()));
        }
        Shim::Policy(text) => {
            command
                .arg("-E")
                .arg(format!("LD_PRELOAD={}", library().display()));
            let policy = scratch.policy_file(text);
            command
                .arg("-E")
                .arg(format!("FADVISE_SHIM_POLICY={}", policy.display()));
        }
    }
    command.arg("/bin/true");
    run(&mut command, TIMEOUT).assert_success("strace /bin/true");
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(&log).expect("strace log").lines() {
        if let Some((name, _)) = line.split_once('(') {
            *counts.entry(name.trim().to_string()).or_default() += 1;
        }
    }
    counts
}

fn added_by_the_shim(shim: Shim, name: &str) {
    let scratch = Scratch::new();
    let without = syscalls_of_true(&scratch, Shim::Off, "without.strace");
    let with = syscalls_of_true(&scratch, shim, "with.strace");
    let mut added = BTreeMap::new();
    for (call, &count) in &with {
        let before = without.get(call).copied().unwrap_or(0);
        if count > before {
            added.insert(call.clone(), count - before);
        }
    }
    assert!(
        added.get("mmap").is_some_and(|&count| count >= 4),
        "{name}: the library was not loaded? added {added:?}"
    );
    for (call, count) in &added {
        let allowed = ALLOWED
            .iter()
            .find(|(allowed, _)| allowed == call)
            .map_or(0, |&(_, most)| most);
        assert!(
            *count <= allowed,
            "{name}: the shim added {count} × {call} (at most {allowed}) at start-up; all it added: {added:?}"
        );
    }
}

#[test]
fn start_up_with_the_built_in_default_is_a_few_system_calls() {
    added_by_the_shim(Shim::Default, "built-in default");
}

#[test]
fn start_up_with_the_example_policy_reads_it_without_the_heap() {
    let example = include_str!("../policy.example.toml");
    added_by_the_shim(Shim::Policy(example), "policy.example.toml");
}

#[test]
fn start_up_with_a_policy_naming_its_signal_reads_it_without_the_heap() {
    added_by_the_shim(
        Shim::Policy(
            "[dump]\nsignal = \"sigusr2\"\n[[rule]]\ncall = \"fsync\"\naction = \"drop\"\n",
        ),
        "policy with a signal",
    );
}
