//! `fadvise-shim run --supervise` from the outside: a statically linked C
//! program (`tests/c_supervise/calls.c`, `gcc -static`) and a Go program
//! (`tests/go_supervise/`, `CGO_ENABLED=0`), which no preload library can
//! reach, make known numbers of calls under the seccomp supervisor.
//!
//! The proof is the programs' own view: what each argument error returned,
//! and how many of the file's pages `mincore` finds resident after their
//! `posix_fadvise(DONTNEED)`s (a passed one evicts them, a dropped one does
//! not), on a real file system. Counts are read back from the printed table
//! and from `report --format json` on the dump directory. Also: `caller`
//! rules see the module holding the system call instruction; threads,
//! forks and exec are followed; exit status and signals are passed on; a
//! supervisor killed with SIGKILL leaves its program running to the end,
//! its calls working (its keeper takes over) or failing with ENOSYS (keeper
//! killed too), never hanging; `doctor` on those programs and on a process
//! with an io_uring ring.

mod common;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::{
    clean_command, cli, compile_c, poll, run, table_row, Finished, Running, Scratch, TIMEOUT,
};
use fadvise_shim_core::call::Call;
use serde_json::Value;

/// Rounds of the four calls each program makes.
const ROUNDS: u64 = 10;
/// The data file's size: 256 pages of 4 KiB.
const DATA_BYTES: usize = 1 << 20;

fn static_program() -> PathBuf {
    compile_c("c_supervise", "calls", "calls", &["-static"])
}

/// The Go program, built offline on first use; `None` (with a message) only
/// when `go` is not installed.
fn go_program() -> Option<PathBuf> {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("SKIPPED: `go` is not installed (scripts/setup.sh installs golang-go)");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go_supervise");
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for name in ["main.go", "go.mod"] {
        std::fs::read(source.join(name)).unwrap().hash(&mut hasher);
    }
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-programs");
    let binary = root.join(format!("calls-go-{:016x}", hasher.finish()));
    if binary.is_file() {
        return Some(binary);
    }
    std::fs::create_dir_all(&root).unwrap();
    let staging = root.join(format!(".calls-go-{}", std::process::id()));
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&staging)
        .arg(".")
        .current_dir(&source)
        .env("CGO_ENABLED", "0")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOCACHE", root.join("cache"))
        .env("GOPATH", root.join("gopath"))
        .output()
        .expect("go build runs");
    assert!(
        built.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    std::fs::rename(&staging, &binary).unwrap();
    Some(binary)
}

/// A scratch directory on a real file system with a 1 MiB data file,
/// written and synced here (outside any supervisor), so its pages are clean.
fn scratch_with_data() -> (Scratch, PathBuf) {
    let scratch = Scratch::on_real_fs().expect("a directory that is not tmpfs");
    let data = scratch.file("data");
    let bytes: Vec<u8> = (0..DATA_BYTES).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&data, bytes).unwrap();
    std::fs::File::open(&data).unwrap().sync_all().unwrap();
    (scratch, data)
}

/// `fadvise-shim run --supervise [OPTIONS] -- PROGRAM ARGS` with the
/// scratch dump directory.
fn supervised(scratch: &Scratch, options: &[&str], program: &Path, args: &[&str]) -> Command {
    let mut command = clean_command(cli());
    command
        .args(["run", "--supervise", "--dump-dir"])
        .arg(scratch.dump_dir())
        .args(options)
        .arg("--")
        .arg(program)
        .args(args);
    command
}

fn policy_option(scratch: &Scratch, text: &str) -> String {
    format!("--policy={}", scratch.policy_file(text).display())
}

/// `report --format json` on the dump directory.
fn json_report(scratch: &Scratch) -> Value {
    let output = clean_command(cli())
        .args(["report", "--format", "json"])
        .arg(scratch.dump_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A call's `(count, passed, dropped, limited, errors)` in a JSON report.
fn json_counts(report: &Value, call: Call) -> (u64, u64, u64, u64, u64) {
    let calls = &report["calls"][call.name()];
    let field = |name: &str| calls[name].as_u64().unwrap_or(0);
    (
        field("count"),
        field("passed"),
        field("dropped"),
        field("limited"),
        field("errors"),
    )
}

/// Checks the counts of the four calls in the printed table and the JSON
/// report: `(count, passed, dropped, limited, errors)` for each.
fn assert_counts(finished: &Finished, scratch: &Scratch, expected: &[(Call, [u64; 5])]) {
    let report = json_report(scratch);
    for (call, counts) in expected {
        let row = table_row(&finished.stderr, *call)
            .unwrap_or_else(|| panic!("no {} row in:\n{finished}", call.name()));
        assert_eq!(row, counts, "{} in the table:\n{finished}", call.name());
        let [count, passed, dropped, limited, errors] = *counts;
        assert_eq!(
            json_counts(&report, *call),
            (count, passed, dropped, limited, errors),
            "{} in {report}",
            call.name()
        );
    }
}

/// The lines a `loop` run prints: the argument errors kept, and residency.
fn assert_loop_output(finished: &Finished, resident: usize) {
    let out = &finished.stdout;
    // calls.c prints the return value too; the Go program only the errno.
    for (what, errno) in [
        ("fsync(-1)", "EBADF"),
        ("bad advice", "EINVAL"),
        ("bad flags", "EINVAL"),
        ("misaligned msync", "EINVAL"),
    ] {
        let kept = [format!("{what} -1 {errno}"), format!("{what} {errno}")];
        assert!(
            out.lines().any(|line| kept.iter().any(|kept| line == kept)),
            "{what} must still fail with {errno}:\n{finished}"
        );
    }
    let pages = DATA_BYTES / 4096;
    assert!(
        out.contains(&format!("resident {resident} of {pages}")),
        "expected {resident} of {pages} pages resident:\n{finished}"
    );
}

/// Counts of a `loop` run where every call met `verdict`: 0 passed, 1
/// dropped, 2 limited. Each call is made once more with bad arguments;
/// passed, that is an error, except for `msync`, which continues in the
/// caller, so its result is not seen.
fn all_calls(verdict: usize) -> Vec<(Call, [u64; 5])> {
    let counts = |error_seen: bool| {
        let count = ROUNDS + 1;
        let mut counts = [count, 0, 0, 0, 0];
        counts[1 + verdict] = count;
        if verdict == 0 && error_seen {
            counts[4] = 1;
        }
        counts
    };
    vec![
        (Call::PosixFadvise, counts(true)),
        (Call::Fsync, counts(true)),
        (Call::SyncFileRange, counts(true)),
        (Call::Msync, counts(false)),
    ]
}

fn loop_args(data: &Path) -> Vec<String> {
    vec![
        "loop".into(),
        data.display().to_string(),
        ROUNDS.to_string(),
    ]
}

fn run_loop(program: &Path, policy: Option<&str>, options: &[&str]) -> (Scratch, Finished) {
    let (scratch, data) = scratch_with_data();
    let mut all: Vec<String> = options.iter().map(|option| option.to_string()).collect();
    if let Some(policy) = policy {
        all.push(policy_option(&scratch, policy));
    }
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let args = loop_args(&data);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let finished = run(&mut supervised(&scratch, &all, program, &args), TIMEOUT);
    finished.assert_success("supervised loop");
    (scratch, finished)
}

const DROP_ALL: &str = "[[rule]]\ncall = \"*\"\naction = \"drop\"\n";
/// Three `posix_fadvise` and three `fsync` pass (each rule has its own
/// budget), the rest of them are over the limit; the others pass.
const LIMIT: &str =
    "[[rule]]\ncall = \"posix_fadvise\"\naction = \"limit\"\nrate = 0.001\nburst = 3\n\
                     [[rule]]\ncall = \"fsync\"\naction = \"limit\"\nrate = 0.001\nburst = 3\n";

/// The counts of a `loop` run under `LIMIT`.
fn limited_calls() -> Vec<(Call, [u64; 5])> {
    let limited = [ROUNDS + 1, 3, 0, ROUNDS - 2, 0];
    vec![
        (Call::PosixFadvise, limited),
        (Call::Fsync, limited),
        (Call::SyncFileRange, [ROUNDS + 1, ROUNDS + 1, 0, 0, 1]),
        (Call::Msync, [ROUNDS + 1, ROUNDS + 1, 0, 0, 0]),
    ]
}

#[test]
fn a_static_program_is_observed() {
    let (scratch, finished) = run_loop(&static_program(), None, &[]);
    assert_loop_output(&finished, 0);
    assert_counts(&finished, &scratch, &all_calls(0));
}

#[test]
fn a_static_program_is_dropped() {
    let (scratch, finished) = run_loop(&static_program(), Some(DROP_ALL), &[]);
    assert_loop_output(&finished, DATA_BYTES / 4096);
    assert_counts(&finished, &scratch, &all_calls(1));
}

#[test]
fn a_static_program_is_limited() {
    let (scratch, finished) = run_loop(&static_program(), Some(LIMIT), &[]);
    // Three DONTNEEDs passed: the pages are gone.
    assert_loop_output(&finished, 0);
    assert_counts(&finished, &scratch, &limited_calls());
}

#[test]
fn a_go_program_is_observed_dropped_and_limited() {
    let Some(program) = go_program() else { return };
    let (scratch, finished) = run_loop(&program, None, &[]);
    assert_loop_output(&finished, 0);
    assert_counts(&finished, &scratch, &all_calls(0));
    // The Go runtime makes calls from several threads: one process.
    assert_eq!(json_report(&scratch)["processes"], 1);
    let (scratch, finished) = run_loop(&program, Some(DROP_ALL), &[]);
    assert_loop_output(&finished, DATA_BYTES / 4096);
    assert_counts(&finished, &scratch, &all_calls(1));
    let (scratch, finished) = run_loop(&program, Some(LIMIT), &[]);
    assert_loop_output(&finished, 0);
    assert_counts(&finished, &scratch, &limited_calls());
}

#[test]
fn in_kernel_drops_keep_argument_errors_and_are_not_counted() {
    let (_scratch, finished) = run_loop(&static_program(), Some(DROP_ALL), &["--drop-in-kernel"]);
    assert_loop_output(&finished, DATA_BYTES / 4096);
    assert!(
        finished.stderr.contains("made no intercepted call"),
        "{finished}"
    );
    assert!(
        finished.stderr.contains(
            "fadvise-shim: dropped in the kernel and not counted: posix_fadvise, readahead, \
             sync_file_range, fsync, fdatasync, syncfs, sync, msync"
        ),
        "{finished}"
    );

    // Only DONTNEED is dropped in the kernel; the rest is still counted,
    // and the exe rule keeps fsync with the supervisor.
    let policy = "[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\naction = \"drop\"\n\
                  [[rule]]\ncall = \"fsync\"\nexe = [\"calls\"]\naction = \"drop\"\n";
    let (scratch, finished) = run_loop(&static_program(), Some(policy), &["--drop-in-kernel"]);
    assert_loop_output(&finished, DATA_BYTES / 4096);
    assert!(
        finished
            .stderr
            .contains("dropped in the kernel and not counted: posix_fadvise(dontneed)\n"),
        "{finished}"
    );
    assert_counts(
        &finished,
        &scratch,
        &[
            // Only the bad advice reached the supervisor.
            (Call::PosixFadvise, [1, 1, 0, 0, 1]),
            (Call::Fsync, [ROUNDS + 1, 0, ROUNDS + 1, 0, 0]),
            (Call::Msync, [ROUNDS + 1, ROUNDS + 1, 0, 0, 0]),
        ],
    );
}

/// Runs the static program under a `posix_fadvise(dontneed)` drop rule
/// for calling module `module`, in the supervisor and with
/// `--drop-in-kernel`: nothing is dropped in the kernel (a filter sees no
/// module), `resident` pages stay, and `posix_fadvise` counts `counts`.
fn run_caller_rule(module: &str, resident: usize, counts: [u64; 5]) {
    let policy = format!(
        "[[rule]]\ncall = \"posix_fadvise\"\nadvice = \"dontneed\"\ncaller = [\"{module}\"]\n\
         action = \"drop\"\n"
    );
    for options in [&[][..], &["--drop-in-kernel"][..]] {
        let (scratch, finished) = run_loop(&static_program(), Some(&policy), options);
        assert_loop_output(&finished, resident);
        assert!(
            !finished.stderr.contains("dropped in the kernel"),
            "{finished}"
        );
        assert_counts(&finished, &scratch, &[(Call::PosixFadvise, counts)]);
    }
}

/// Under the supervisor a call's caller is the module holding its system
/// call instruction: a static program's own executable. A rule for some
/// other library leaves its calls alone: every DONTNEED passed, the pages
/// are gone.
#[test]
fn a_caller_rule_for_another_module_leaves_a_static_programs_calls_alone() {
    run_caller_rule("libnothing*", 0, [ROUNDS + 1, ROUNDS + 1, 0, 0, 1]);
}

/// A rule naming the program's own module (its executable's file name)
/// drops its DONTNEEDs, in the supervisor also under `--drop-in-kernel`;
/// the bad advice is not `dontneed`: it passes, and fails.
#[test]
fn a_caller_rule_for_the_programs_own_module_drops_its_calls() {
    run_caller_rule("calls", DATA_BYTES / 4096, [ROUNDS + 1, 1, ROUNDS, 0, 1]);
}

#[test]
fn exe_and_path_rules_see_the_callers_program_and_files() {
    let (scratch, data) = scratch_with_data();
    let dir = data.parent().unwrap().display().to_string();
    let args = loop_args(&data);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run_with = |policy: &str| {
        let _ = std::fs::remove_dir_all(scratch.dump_dir());
        std::fs::create_dir(scratch.dump_dir()).unwrap();
        let option = policy_option(&scratch, policy);
        let finished = run(
            &mut supervised(&scratch, &[&option], &static_program(), &args),
            TIMEOUT,
        );
        finished.assert_success("supervised loop");
        finished
    };
    // `path` from /proc/PID/fd for posix_fadvise, /proc/PID/maps for msync;
    // the rule for another directory matches neither.
    let finished = run_with(&format!(
        "[[rule]]\ncall = \"posix_fadvise\"\npath = [\"/nowhere/**\"]\naction = \"pass\"\n\
         [[rule]]\ncall = [\"posix_fadvise\", \"msync\"]\npath = [\"{dir}/*\"]\naction = \"drop\"\n"
    ));
    assert_loop_output(&finished, DATA_BYTES / 4096);
    let report = json_report(&scratch);
    assert_eq!(
        json_counts(&report, Call::Msync),
        (ROUNDS + 1, 0, ROUNDS + 1, 0, 0),
        "{report}"
    );
    assert_eq!(
        json_counts(&report, Call::Fsync),
        (ROUNDS + 1, ROUNDS + 1, 0, 0, 1),
        "{report}"
    );
    // `exe` from /proc/PID/exe: the program's name matches, another does not.
    let finished = run_with(
        "[[rule]]\ncall = \"*\"\nexe = [\"postgres\"]\naction = \"pass\"\n\
         [[rule]]\ncall = \"posix_fadvise\"\nexe = [\"calls\"]\naction = \"drop\"\n",
    );
    assert_loop_output(&finished, DATA_BYTES / 4096);
    let report = json_report(&scratch);
    assert_eq!(
        json_counts(&report, Call::PosixFadvise),
        (ROUNDS + 1, 0, ROUNDS + 1, 0, 0),
        "{report}"
    );
    assert_eq!(
        json_counts(&report, Call::Msync),
        (ROUNDS + 1, ROUNDS + 1, 0, 0, 0),
        "{report}"
    );
}

#[test]
fn threads_are_counted_in_their_process() {
    let (scratch, data) = scratch_with_data();
    let args = ["threads", &data.display().to_string(), "25", "4"];
    let finished = run(
        &mut supervised(&scratch, &[], &static_program(), &args),
        TIMEOUT,
    );
    finished.assert_success("threads");
    let report = json_report(&scratch);
    assert_eq!(report["processes"], 1, "{report}");
    for call in [
        Call::PosixFadvise,
        Call::Fsync,
        Call::SyncFileRange,
        Call::Msync,
    ] {
        assert_eq!(json_counts(&report, call), (100, 100, 0, 0, 0), "{report}");
    }
}

#[test]
fn forked_children_each_have_their_dump() {
    let (scratch, data) = scratch_with_data();
    let args = ["fork", &data.display().to_string(), "10", "3"];
    let finished = run(
        &mut supervised(&scratch, &[], &static_program(), &args),
        TIMEOUT,
    );
    finished.assert_success("fork");
    let pids: Vec<u32> = finished
        .stdout
        .lines()
        .filter_map(|line| line.strip_prefix("pid ")?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 4, "{finished}");
    let dumps: BTreeMap<String, _> = scratch.dumps().into_iter().collect();
    assert_eq!(dumps.len(), 4, "{dumps:?}");
    for pid in pids {
        let dump = dumps
            .iter()
            .find(|(name, _)| common::is_dump_of(name, "calls", pid))
            .map(|(_, dump)| dump)
            .unwrap_or_else(|| panic!("no dump of {pid}: {dumps:?}"));
        assert_eq!(dump.reason, "exit");
        for call in [
            Call::PosixFadvise,
            Call::Fsync,
            Call::SyncFileRange,
            Call::Msync,
        ] {
            assert_eq!(common::counts(dump.stats.call(call)), (10, 10, 0, 0, 0));
        }
    }
}

#[test]
fn exec_and_shell_children_stay_supervised() {
    let (scratch, data) = scratch_with_data();
    let program = static_program();
    let script = format!(
        "{p} loop {d} 2 && exec {p} loop {d} 3",
        p = program.display(),
        d = data.display()
    );
    let finished = run(
        &mut supervised(&scratch, &[], Path::new("/bin/sh"), &["-c", &script]),
        TIMEOUT,
    );
    finished.assert_success("sh -c");
    // The shell's child, and the shell itself once it has exec'd the
    // program; each made its rounds plus one misaligned msync.
    let report = json_report(&scratch);
    assert_eq!(report["processes"], 2, "{report}");
    // One process is the other's parent: the shell, counted as the
    // program it exec'd.
    let processes = report["per_process"].as_array().unwrap();
    let field = |index: usize, name: &str| processes[index][name].as_u64();
    assert!(
        field(0, "ppid") == field(1, "pid") || field(1, "ppid") == field(0, "pid"),
        "{report}"
    );
    for process in processes {
        assert!(
            process["exe"].as_str().unwrap().ends_with("/calls"),
            "{report}"
        );
    }
    assert_eq!(
        json_counts(&report, Call::Msync),
        (2 + 1 + 3 + 1, 2 + 1 + 3 + 1, 0, 0, 0),
        "{report}"
    );
}

#[test]
fn exit_status_signals_and_dump_on_sigusr1() {
    let (scratch, data) = scratch_with_data();
    let args = ["wait", &data.display().to_string(), "3"];
    let mut running = Running::start(&mut supervised(&scratch, &[], &static_program(), &args));
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    running.signal(libc::SIGUSR1);
    let dump = poll(TIMEOUT, || scratch.dumps().into_iter().next()).expect("a dump on SIGUSR1");
    assert_eq!(dump.1.reason, "signal");
    assert_eq!(
        common::counts(dump.1.stats.call(Call::Fsync)),
        (3, 3, 0, 0, 0)
    );
    // SIGUSR2 goes on to the program, which exits 7.
    running.signal(libc::SIGUSR2);
    let finished = running.wait(TIMEOUT);
    assert_eq!(finished.status.code(), Some(7), "{finished}");
    assert!(finished.stdout.contains("got SIGUSR2"), "{finished}");

    // SIGTERM kills the program; run exits 128 + 15.
    let mut running = Running::start(&mut supervised(&scratch, &[], &static_program(), &args));
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    running.signal(libc::SIGTERM);
    let finished = running.wait(TIMEOUT);
    assert_eq!(
        finished.status.code(),
        Some(128 + libc::SIGTERM),
        "{finished}"
    );
}

/// Runs `calls slow` (40 fsyncs, 20 ms apart) under the supervisor, stops
/// the supervisor while the program waits in an fsync (as the kernel shows
/// in `/proc/PID/syscall`), SIGKILLs it (and its keeper too if
/// `kill_keeper`), and returns the program's fsync results, once it has
/// finished: it holds the stdout pipe, so `wait` returns only then.
fn fsyncs_after_killing_the_supervisor(kill_keeper: bool) -> (Vec<String>, Finished) {
    let (scratch, data) = scratch_with_data();
    let args = ["slow", &data.display().to_string(), "40"];
    let mut running = Running::start(&mut supervised(&scratch, &[], &static_program(), &args));
    running.wait_for_line(TIMEOUT, |line| line == "fsync 0");
    let supervisor = running.pid();
    let children: Vec<u32> =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children"))
            .unwrap()
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect();
    let is_ours = |pid: &u32| std::fs::read_link(format!("/proc/{pid}/exe")).unwrap() == cli();
    let (keepers, programs): (Vec<u32>, Vec<u32>) = children.into_iter().partition(is_ours);
    assert_eq!(
        (keepers.len(), programs.len()),
        (1, 1),
        "{keepers:?} {programs:?}"
    );
    let program = programs[0];
    running.signal(libc::SIGSTOP);
    let waiting = poll(TIMEOUT, || {
        let syscall = std::fs::read_to_string(format!("/proc/{program}/syscall")).ok()?;
        (syscall.split_whitespace().next()? == libc::SYS_fsync.to_string()).then_some(())
    });
    assert!(waiting.is_some(), "the program never waited in fsync");
    if kill_keeper {
        // SAFETY: kill() has no memory-safety requirements; the keeper is
        // a child of the stopped supervisor, so its pid is not reused.
        unsafe { libc::kill(keepers[0] as libc::pid_t, libc::SIGKILL) };
    }
    running.signal(libc::SIGKILL);
    let finished = running.wait(Duration::from_secs(10));
    let results: Vec<String> = finished
        .stdout
        .lines()
        .filter(|line| line.starts_with("fsync "))
        .map(str::to_owned)
        .collect();
    assert_eq!(results.len(), 40, "{finished}");
    (results, finished)
}

#[test]
fn a_killed_supervisor_leaves_the_program_running_with_working_calls() {
    // The keeper answers the waiting call and every later one: they pass.
    let (results, finished) = fsyncs_after_killing_the_supervisor(false);
    assert!(results.iter().all(|line| line == "fsync 0"), "{finished}");
}

#[test]
fn without_its_keeper_a_killed_supervisor_leaves_enosys_not_a_hang() {
    // With the listener closed, the kernel answers the waiting call and
    // every later one with ENOSYS, at once.
    let (results, finished) = fsyncs_after_killing_the_supervisor(true);
    let answered = results.iter().take_while(|line| *line == "fsync 0").count();
    assert!(answered >= 1, "{finished}");
    assert!(
        results[answered..].iter().all(|line| line == "fsync 38"),
        "{finished}"
    );
}

#[test]
fn a_refused_filter_is_one_error_line() {
    // A supervised supervisor cannot add a second listener: EBUSY.
    let scratch = Scratch::new();
    let mut inner = vec![
        "run".to_string(),
        "--supervise".to_string(),
        "--".to_string(),
    ];
    inner.push("/bin/true".into());
    let inner: Vec<&str> = inner.iter().map(String::as_str).collect();
    let finished = run(&mut supervised(&scratch, &[], &cli(), &inner), TIMEOUT);
    assert_eq!(finished.status.code(), Some(1), "{finished}");
    let errors: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|line| line.contains("seccomp"))
        .collect();
    assert_eq!(errors.len(), 1, "{finished}");
    assert!(
        errors[0].starts_with("fadvise-shim: the kernel refused the seccomp filter"),
        "{finished}"
    );
}

fn doctor(target: impl AsRef<std::ffi::OsStr>) -> Finished {
    let mut command = clean_command(cli());
    command.arg("doctor").arg(target);
    run(&mut command, TIMEOUT)
}

#[test]
fn doctor_says_the_supervisor_reaches_static_and_go_programs() {
    let mut programs = vec![static_program()];
    programs.extend(go_program());
    for program in programs {
        let finished = doctor(&program);
        assert_eq!(finished.status.code(), Some(1), "{finished}");
        assert!(
            finished
                .stdout
                .contains("`fadvise-shim run --supervise` reaches it"),
            "{finished}"
        );
        let verdict = finished.stdout.lines().last().unwrap_or_default();
        assert!(verdict.contains("statically linked"), "{finished}");
    }
}

#[test]
fn doctor_pid_reports_an_io_uring_instance() {
    if !Path::new("/usr/include/liburing.h").exists() {
        eprintln!("SKIPPED: liburing.h is missing (scripts/setup.sh installs liburing-dev)");
        return;
    }
    let program = compile_c("c_supervise", "uring", "uring", &["-luring"]);
    let mut running = Running::start(&mut clean_command(&program));
    running.wait_for_line(TIMEOUT, |line| line == "ready");
    let finished = doctor(running.pid().to_string());
    assert!(
        finished.stdout.contains("io_uring: 1 instance open (fd 3)"),
        "{finished}"
    );
    assert!(finished.stdout.contains("IORING_OP_FSYNC"), "{finished}");
    // Without the library, doctor still fails as before, in one line.
    assert_eq!(finished.status.code(), Some(1), "{finished}");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");
}
