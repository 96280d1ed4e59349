//! The shim never touches the program's heap (issue 12), proved from
//! outside: `alloc_spy.so`, preloaded after the shim, interposes the
//! program's allocator and reports every call made while a frame of the
//! shim is on the stack — directly or through a libc function. A process
//! that makes every kind of call, under policies with every kind of rule,
//! through reloads, dumps, threads and `fork`, must give it nothing to
//! report; a deliberately careless library named like the shim must.
//!
//! And the crash that started it: signal handlers calling `fsync` and
//! `fdatasync` at 2 kHz while the main thread allocates, with the built-in
//! default, with a policy file (so the first call, in a handler, compiles
//! it), while the policy file is replaced every 100–200 ms, and with
//! jemalloc and tcmalloc as the program's allocator: no crash, no hang, no
//! heap error, and counts exact.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{compile_c, run, Scratch, Shim, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::ON_EXIT_ENV;

fn spy() -> PathBuf {
    compile_c(
        "c_heap",
        "alloc_spy",
        "alloc_spy.so",
        &["-shared", "-fPIC", "-static-libgcc", "-ldl"],
    )
}

/// The policy of the spy test: every kind of rule. `rate` varies so that
/// each rewrite is a new policy.
fn every_rule_policy(scratch: &Scratch, rate: u32) -> String {
    format!(
        "[limits]\ndir = \"{budgets}\"\n\n\
         [[rule]]\nname = \"data-dontneed\"\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\n\
         path = [\"/nowhere/**\", \"**/every-call.data\"]\naction = \"drop\"\n\n\
         [[rule]]\ncall = \"sync\"\nexe = [\"every_call\"]\naction = \"drop\"\n\n\
         [[rule]]\nname = \"fsync-host-{rate}\"\ncall = \"fsync\"\naction = \"limit\"\n\
         rate = {rate}\nburst = 5\nscope = \"host\"\n\n\
         [[rule]]\ncall = [\"fdatasync\", \"msync\"]\npath = \"**/every-call.data\"\n\
         action = \"limit\"\nrate = {rate}\nburst = 3\n",
        budgets = scratch.file("budgets").display(),
    )
}

/// Runs `every_call` under the shim and the spy; returns its stderr.
fn spied_every_call(scratch: &Scratch, shim: Shim, rewrites: Option<(&Path, &Path)>) -> String {
    let program = compile_c("c_heap", "every_call", "every_call", &[]);
    let mut command = scratch.command(&program, shim);
    let preload = format!("{}:{}", common::library().display(), spy().display());
    command
        .env("LD_PRELOAD", preload)
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("every-call.data"));
    if let Some((first, second)) = rewrites {
        command
            .arg(scratch.file("policy.toml"))
            .arg(first)
            .arg(second);
        command.env("FADVISE_SHIM_POLICY", scratch.file("policy.toml"));
    }
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("every_call under the spy");
    assert!(finished.stdout.contains("done"), "{finished}");
    finished.stderr
}

/// The spy's closing lines: one per process that exited through `exit`.
fn spy_totals(stderr: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("alloc-spy: ")?;
            let (calls, rest) = rest.split_once(" calls, ")?;
            let from_shim = rest.strip_suffix(" from the shim")?;
            Some((calls.parse().ok()?, from_shim.parse().ok()?))
        })
        .collect()
}

fn assert_no_allocation_from_the_shim(stderr: &str) {
    let findings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("alloc-spy: ") && line.contains(" from libfadvise_shim.so"))
        .collect();
    assert!(
        findings.is_empty(),
        "the shim called the program's allocator:\n{stderr}"
    );
    let totals = spy_totals(stderr);
    // The parent and the forked child each report at exit.
    assert_eq!(totals.len(), 2, "{stderr}");
    for (calls, from_shim) in totals {
        assert_eq!(from_shim, 0, "{stderr}");
        // The spy saw the program's own allocations (stdio, pthread), so
        // it was really in the allocation path.
        assert!(calls > 0, "{stderr}");
    }
}

#[test]
fn no_allocation_with_the_built_in_default() {
    let scratch = Scratch::new();
    let stderr = spied_every_call(&scratch, Shim::Default, None);
    assert_no_allocation_from_the_shim(&stderr);
    assert!(!scratch.dumps().is_empty(), "dumps were written");
}

#[test]
fn no_allocation_with_every_kind_of_rule_reloaded_twice() {
    let scratch = Scratch::new();
    let first = scratch.policy_file(&every_rule_policy(&scratch, 2));
    let second = scratch.policy_file(&every_rule_policy(&scratch, 3));
    let initial = every_rule_policy(&scratch, 1);
    std::fs::write(scratch.file("policy.toml"), initial).unwrap();
    let stderr = spied_every_call(&scratch, Shim::Default, Some((&first, &second)));
    assert_no_allocation_from_the_shim(&stderr);
    let dumps = scratch.dumps();
    assert!(
        dumps
            .iter()
            .any(|(_, dump)| dump.policy.ends_with("policy.toml")),
        "the policy was in force: {:?}",
        dumps.iter().map(|(name, _)| name).collect::<Vec<_>>()
    );
    assert!(
        dumps
            .iter()
            .any(|(_, dump)| dump.stats.call(Call::Fsync).limited > 0),
        "the host limit acted"
    );
    // Both rewrites were put in force: the last dump's host budget has the
    // second rewrite's rate.
    assert!(
        dumps
            .iter()
            .any(|(_, dump)| dump.budgets.iter().any(|budget| budget.rate == 3.0)),
        "the second rewrite was loaded"
    );
    assert!(
        dumps
            .iter()
            .any(|(_, dump)| dump.stats.call(Call::PosixFadvise).dropped > 0),
        "the path rule acted"
    );
}

/// The spy itself works: a library named like the shim that allocates in
/// its `fsync`, directly and through `strdup`, is reported for both.
#[test]
fn the_spy_reports_a_careless_shim() {
    let scratch = Scratch::new();
    let dir = scratch.file("fake");
    std::fs::create_dir(&dir).unwrap();
    let fake = compile_c(
        "c_heap",
        "fake_shim",
        "libfadvise_shim.so",
        &["-shared", "-fPIC", "-ldl"],
    );
    let program = compile_c("c_heap", "every_call", "every_call", &[]);
    let mut command = common::clean_command(&program);
    command
        .env(
            "LD_PRELOAD",
            format!("{}:{}", fake.display(), spy().display()),
        )
        .arg(scratch.file("every-call.data"));
    // Without the real shim nothing catches the program's SIGUSR1.
    // SAFETY: only async-signal-safe work between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            libc::signal(libc::SIGUSR1, libc::SIG_IGN);
            Ok(())
        });
    }
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("every_call under the fake shim");
    let findings = finished
        .stderr
        .lines()
        .filter(|line| line.contains(" from libfadvise_shim.so"))
        .count();
    assert!(findings >= 2, "{finished}");
    assert!(
        finished.stderr.contains("alloc-spy: malloc size 0x28"),
        "{finished}"
    );
}

/// How many runs each stress arm makes, two at a time.
const STRESS_RUNS: usize = 20;
const STRESS_MS: u32 = 500;

enum Arm<'a> {
    Default,
    Policy(&'a str),
    Replaced,
    Allocator(&'a str),
}

/// One stress run: the program must finish, print its count, and the shim's
/// dump at exit must hold exactly that many fsync + fdatasync calls.
fn stress_once(arm: &Arm, run_index: usize) -> Result<(), String> {
    let scratch = Scratch::new();
    let program = compile_c("c_heap", "handler_stress", "handler_stress", &[]);
    let mut milliseconds = STRESS_MS;
    let mut command = match arm {
        Arm::Default => scratch.command(&program, Shim::Default),
        Arm::Policy(text) => scratch.command(&program, Shim::Policy(text)),
        Arm::Replaced => {
            milliseconds = 1300;
            let policy = scratch.file("replaced.toml");
            std::fs::write(&policy, common::DROP_ALL.replace("drop", "pass")).unwrap();
            let mut command = scratch.command(&program, Shim::Default);
            command.env("FADVISE_SHIM_POLICY", &policy);
            command
        }
        Arm::Allocator(library) => {
            let mut command = scratch.command(&program, Shim::Default);
            command.env(
                "LD_PRELOAD",
                format!("{}:{library}", common::library().display()),
            );
            command
        }
    };
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("synced"))
        .arg(milliseconds.to_string());
    let stop = AtomicBool::new(false);
    let finished = std::thread::scope(|scope| {
        if let Arm::Replaced = arm {
            let policy = scratch.file("replaced.toml");
            let stop = &stop;
            scope.spawn(move || {
                let mut version = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    version += 1;
                    let text = format!(
                        "# version {version}\n[[rule]]\ncall = \"syncfs\"\naction = \"limit\"\nrate = {}\n",
                        100 + version
                    );
                    let temporary = policy.with_extension("new");
                    std::fs::write(&temporary, text).unwrap();
                    std::fs::rename(&temporary, &policy).unwrap();
                    std::thread::sleep(Duration::from_millis(100 + u64::from(version % 5) * 25));
                }
            });
        }
        let finished = run(&mut command, TIMEOUT);
        stop.store(true, Ordering::Relaxed);
        finished
    });
    let context = || format!("run {run_index}: {finished}");
    if !finished.status.success() || finished.stderr.contains("malloc") {
        return Err(context());
    }
    let made: u64 = finished
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("handler calls "))
        .and_then(|count| count.parse().ok())
        .ok_or_else(context)?;
    let dumps = scratch.dumps();
    let [(_, dump)] = &dumps[..] else {
        return Err(format!("{} dumps; {}", dumps.len(), context()));
    };
    let counted = dump.stats.call(Call::Fsync).count() + dump.stats.call(Call::Fdatasync).count();
    if made == 0 || counted != made {
        return Err(format!(
            "handler made {made} calls, shim counted {counted}; {}",
            context()
        ));
    }
    Ok(())
}

fn stress(arm: Arm) {
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let arm = &arm;
                scope.spawn(move || {
                    (worker..STRESS_RUNS)
                        .step_by(2)
                        .filter_map(|index| stress_once(arm, index).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {STRESS_RUNS} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn handlers_calling_fsync_during_malloc_with_the_built_in_default() {
    stress(Arm::Default);
}

#[test]
fn handlers_calling_fsync_during_malloc_with_a_policy_file() {
    stress(Arm::Policy(
        "[[rule]]\ncall = \"syncfs\"\naction = \"drop\"\n[[rule]]\ncall = \"fsync\"\npath = \"/nowhere/**\"\naction = \"drop\"\n",
    ));
}

#[test]
fn handlers_calling_fsync_while_the_policy_file_is_replaced() {
    stress(Arm::Replaced);
}

fn system_library(name: &str) -> Option<String> {
    let path = Path::new("/usr/lib/x86_64-linux-gnu").join(name);
    if path.is_file() {
        return Some(path.display().to_string());
    }
    eprintln!(
        "skipped: {} is not installed (scripts/setup.sh installs it)",
        path.display()
    );
    None
}

#[test]
fn handlers_calling_fsync_with_jemalloc_as_the_allocator() {
    if let Some(library) = system_library("libjemalloc.so.2") {
        stress(Arm::Allocator(&library));
    }
}

#[test]
fn handlers_calling_fsync_with_tcmalloc_as_the_allocator() {
    if let Some(library) = system_library("libtcmalloc_minimal.so.4") {
        stress(Arm::Allocator(&library));
    }
}
