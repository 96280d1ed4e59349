//! `fadvise-shim doctor` and `fadvise-shim dump` from the outside: real
//! programs (`/bin/dd`, scripts, setuid copies, a Go program, C programs
//! compiled here from `tests/c_doctor/`, one of them static, one built with
//! `musl-gcc`) and live processes, glibc and musl ones, with and without the
//! real `libfadvise_shim.so` preloaded.
//!
//! What the doctor says a program imports is checked against `nm -D`, and
//! the counts `dump` prints against what the C program is known to have
//! called. Every test has its own temporary directory.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{library, ENTRY_POINTS};
use tempfile::TempDir;

/// Above the kernel's largest `pid_max` (2^22): never a live process.
const NO_SUCH_PID: &str = "4194305";

fn cli() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fadvise-shim"));
    command.env("LC_ALL", "C");
    command
}

fn doctor(target: impl AsRef<std::ffi::OsStr>) -> Output {
    cli()
        .arg("doctor")
        .arg(target)
        .output()
        .expect("run fadvise-shim doctor")
}

fn dump(pid: impl ToString) -> Output {
    cli()
        .arg("dump")
        .arg(pid.to_string())
        .output()
        .expect("run fadvise-shim dump")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the command failed with exit 1 and exactly one error line
/// containing each of `wanted`; returns that line.
fn assert_one_line_failure(output: &Output, wanted: &[&str]) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("fadvise-shim: "), "{stderr}");
    for piece in wanted {
        assert!(stderr.contains(piece), "{piece:?} not in {stderr}");
    }
    stderr
}

/// The `verdict:` line of a doctor report, checked to be the last line.
fn verdict(output: &Output) -> String {
    let stdout = text(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("verdict: "),
        "last line is the verdict:\n{stdout}"
    );
    last
}

/// Compiles `tests/c_doctor/NAME.c` into `dir` with extra `flags`.
fn compile(dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    compile_with("cc", dir, name, flags)
}

/// `compile` with `compiler`: `musl-gcc` makes a program whose loader is
/// `/lib/ld-musl-x86_64.so.1`.
fn compile_with(compiler: &str, dir: &Path, name: &str, flags: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/c_doctor/{name}.c"));
    let binary = dir.join(name);
    let output = Command::new(compiler)
        .args(["-O2", "-Wall", "-Wextra"])
        .args(flags)
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap_or_else(|error| panic!("{compiler}: {error} (scripts/setup.sh installs it)"));
    assert!(
        output.status.success(),
        "{compiler} {name}: {}",
        text(&output.stderr)
    );
    binary
}

/// A live process, killed when the test ends however it ends.
struct Live(Child);

impl Live {
    /// Starts `command` and waits for its `ready` line.
    fn start_ready(command: &mut Command) -> Live {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start program");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .expect("read the program's first line");
        let live = Live(child);
        assert_eq!(line, "ready\n", "the program did not get ready");
        live
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn is_alive(&mut self) -> bool {
        self.0.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `fsync_then_wait` after `fsyncs` calls, under the shim when `shim`,
/// with `env` set, dumping into `dumps`.
fn fsync_then_wait(dir: &TempDir, fsyncs: u32, shim: bool, env: &[(&str, &Path)]) -> Live {
    let program = compile(dir.path(), "fsync_then_wait", &[]);
    start_fsync_then_wait(&program, dir, fsyncs, shim, env)
}

/// `fsync_then_wait`, as built in `program`.
fn start_fsync_then_wait(
    program: &Path,
    dir: &TempDir,
    fsyncs: u32,
    shim: bool,
    env: &[(&str, &Path)],
) -> Live {
    let mut command = Command::new(program);
    command
        .arg(dir.path().join("data"))
        .arg(fsyncs.to_string())
        .env_remove("LD_PRELOAD")
        .env_remove("FADVISE_SHIM_POLICY")
        .env("FADVISE_SHIM_DUMP_DIR", dir.path().join("dumps"));
    if shim {
        command.env("LD_PRELOAD", library());
    }
    for (key, value) in env {
        command.env(key, value);
    }
    Live::start_ready(&mut command)
}

/// The cells of the table row of `call` in `output`.
fn table_row(output: &str, call: &str) -> Option<Vec<String>> {
    output
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.first().map(String::as_str) == Some(call))
}

/// The intercepted functions `nm -D` lists as undefined in `program`.
fn nm_imports(program: &Path) -> Vec<String> {
    let output = Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(program)
        .output()
        .expect("nm runs");
    assert!(output.status.success(), "nm: {}", text(&output.stderr));
    let names: Vec<String> = text(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last())
        .map(|symbol| symbol.split('@').next().unwrap_or(symbol).to_string())
        .collect();
    ENTRY_POINTS
        .iter()
        .filter(|entry| names.iter().any(|name| name == *entry))
        .map(|entry| entry.to_string())
        .collect()
}

#[test]
fn dd_is_reachable_and_its_imports_match_nm() {
    let dd = std::fs::canonicalize("/bin/dd").unwrap();
    let output = doctor(&dd);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let expected = nm_imports(&dd);
    assert!(
        expected
            .iter()
            .any(|name| name.starts_with("posix_fadvise")),
        "dd imports posix_fadvise: {expected:?}"
    );
    let verdict = verdict(&output);
    let listed = verdict
        .split_once("(imports: ")
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no imports in {verdict}"));
    let mut listed: Vec<&str> = listed.split(", ").collect();
    let mut expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "{verdict}");
    assert!(
        text(&output.stdout).contains("(glibc)"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn a_name_is_looked_up_in_path() {
    let output = cli()
        .args(["doctor", "dd"])
        .env("PATH", "/nonexistent:/bin")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert!(verdict(&output).starts_with("verdict: the shim can reach /bin/dd ("));
}

#[test]
fn a_static_program_cannot_be_reached() {
    let dir = TempDir::new().unwrap();
    let program = compile(dir.path(), "static_fsync", &["-static"]);
    let output = doctor(&program);
    assert_eq!(output.status.code(), Some(1));
    let verdict = verdict(&output);
    assert!(
        verdict.starts_with("verdict: the shim cannot reach"),
        "{verdict}"
    );
    assert!(verdict.contains("statically linked"), "{verdict}");
}

#[test]
fn a_script_is_judged_by_its_interpreter() {
    let dir = TempDir::new().unwrap();
    let script = dir.path().join("job.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = doctor(&script);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("script, runs under /bin/sh"), "{stdout}");
    assert!(
        verdict(&output).starts_with(&format!("verdict: the shim can reach {}", script.display()))
    );

    // A script run by a static program is as unreachable as the program.
    let program = compile(dir.path(), "static_fsync", &["-static"]);
    std::fs::write(&script, format!("#!{}\n", program.display())).unwrap();
    let output = doctor(&script);
    assert_eq!(output.status.code(), Some(1));
    assert!(verdict(&output).contains("statically linked"));
}

#[test]
fn a_missing_program_is_one_error_line() {
    let output = doctor("no-such-program-fadvise-shim-test");
    assert_one_line_failure(
        &output,
        &["no-such-program-fadvise-shim-test", "no such program"],
    );
    assert!(output.stdout.is_empty());
    let output = doctor("/nonexistent/prog");
    assert_one_line_failure(&output, &["/nonexistent/prog"]);
}

#[test]
fn a_setuid_program_needs_the_system_preload_list() {
    if Path::new("/etc/ld.so.preload").exists() {
        // Which verdict is right depends on what the host lists there.
        return;
    }
    let dir = TempDir::new().unwrap();
    let copy = dir.path().join("dd");
    std::fs::copy("/bin/dd", &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let output = doctor(&copy);
    assert_eq!(output.status.code(), Some(1));
    let verdict = verdict(&output);
    assert!(
        verdict.contains("setuid") && verdict.contains("/etc/ld.so.preload"),
        "{verdict}"
    );
}

#[test]
fn a_musl_program_is_reachable_through_ld_preload() {
    let dir = TempDir::new().unwrap();
    let program = compile_with("musl-gcc", dir.path(), "fsync_then_wait", &[]);
    let output = doctor(&program);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "dynamically linked, loader /lib/ld-musl-x86_64.so.1 (musl: LD_PRELOAD reaches it; \
             musl has no /etc/ld.so.preload)"
        ),
        "{stdout}"
    );
    assert_eq!(
        verdict(&output),
        format!(
            "verdict: the shim can reach {} (imports: fsync)",
            program.display()
        )
    );
    assert_eq!(nm_imports(&program), ["fsync"]);

    // musl ignores LD_PRELOAD in secure-execution mode, and has no
    // /etc/ld.so.preload to fall back on.
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let output = doctor(&program);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        verdict(&output).ends_with(
            "it is setuid: musl ignores LD_PRELOAD when it runs with raised privileges, and \
             has no /etc/ld.so.preload"
        ),
        "{}",
        verdict(&output)
    );
}

#[test]
fn doctor_pid_works_for_a_musl_process() {
    let dir = TempDir::new().unwrap();
    let program = compile_with("musl-gcc", dir.path(), "fsync_then_wait", &[]);
    let mut live = start_fsync_then_wait(&program, &dir, 1, false, &[]);
    assert_one_line_failure(
        &doctor(live.pid().to_string()),
        &[&format!(
            "libfadvise_shim.so is not loaded in process {}",
            live.pid()
        )],
    );
    assert!(live.is_alive());
    drop(live);

    // Without arguments the program only prints its usage and exits 2; a
    // library musl cannot load makes its loader exit 127 first.
    let status = Command::new(&program)
        .env("LD_PRELOAD", library())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    if status.code() != Some(2) {
        eprintln!(
            "SKIPPED the part with the library: it does not load in musl processes here \
             ({status}); issue 22, item 1"
        );
        return;
    }
    let mut live = start_fsync_then_wait(&program, &dir, 5, true, &[]);
    let output = doctor(live.pid().to_string());
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("library: {}", library().display())),
        "{stdout}"
    );
    let row = table_row(&stdout, "fsync").unwrap_or_else(|| panic!("no fsync row:\n{stdout}"));
    assert_eq!(row[1], "5", "{stdout}");
    assert!(live.is_alive(), "the dump signal must not end the process");
}

#[test]
fn a_go_program_cannot_be_reached() {
    // promtool (Debian `prometheus`, installed by scripts/setup.sh) is Go.
    let output = doctor("promtool");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    assert!(
        verdict(&output).contains("Go program"),
        "{}",
        verdict(&output)
    );
}

#[test]
fn doctor_pid_reports_the_shim_settings_and_counts() {
    let dir = TempDir::new().unwrap();
    let dumps = dir.path().join("dumps");
    let mut live = fsync_then_wait(&dir, 7, true, &[]);
    let output = doctor(live.pid().to_string());
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("library: {}", library().display())),
        "{stdout}"
    );
    assert!(stdout.contains("policy: built-in"), "{stdout}");
    assert!(
        stdout.contains(&format!("dump directory: {}", dumps.display())),
        "{stdout}"
    );
    assert!(stdout.contains("dump signal: SIGUSR1"), "{stdout}");
    let row = table_row(&stdout, "fsync").unwrap_or_else(|| panic!("no fsync row:\n{stdout}"));
    assert_eq!(row[1], "7", "{stdout}");
    assert!(live.is_alive(), "the dump signal must not end the process");
}

#[test]
fn doctor_pid_without_the_shim_fails() {
    let dir = TempDir::new().unwrap();
    let mut live = fsync_then_wait(&dir, 1, false, &[]);
    let output = doctor(live.pid().to_string());
    assert_one_line_failure(
        &output,
        &[&format!(
            "libfadvise_shim.so is not loaded in process {}",
            live.pid()
        )],
    );
    assert!(live.is_alive());
}

#[test]
fn dump_prints_the_table_of_a_live_process() {
    let dir = TempDir::new().unwrap();
    let mut live = fsync_then_wait(&dir, 5, true, &[]);
    let pid = live.pid();
    let output = dump(pid);
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        text(&output.stderr)
    );
    let header = stdout.lines().next().unwrap();
    let file = dir
        .path()
        .join("dumps")
        .join(common::dump_name("fsync_then_wait", pid));
    assert!(
        header.starts_with(&format!("fsync_then_wait[{pid}]")),
        "{header}"
    );
    assert!(header.contains(&file.display().to_string()), "{header}");
    let row = table_row(&stdout, "fsync").unwrap_or_else(|| panic!("no fsync row:\n{stdout}"));
    // count, passed, dropped, limited, errors
    assert_eq!(&row[1..6], ["5", "5", "0", "0", "0"], "{stdout}");
    assert!(live.is_alive());

    // A second dump is a fresh one, with the same counts.
    let again = dump(pid);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(table_row(&text(&again.stdout), "fsync").unwrap()[1], "5");
}

#[test]
fn dump_of_a_process_that_made_no_call_says_so() {
    // Such a process writes no dump: `dump` waits its 5 s, then explains.
    let dir = TempDir::new().unwrap();
    let mut live = fsync_then_wait(&dir, 0, true, &[]);
    let output = dump(live.pid());
    assert_one_line_failure(
        &output,
        &[&format!(
            "process {} made no intercepted call yet (no dump written)",
            live.pid()
        )],
    );
    assert!(live.is_alive(), "the dump signal must not end the process");
}

#[test]
fn dump_refuses_a_process_without_the_shim_and_leaves_it_alone() {
    let dir = TempDir::new().unwrap();
    let mut live = fsync_then_wait(&dir, 1, false, &[]);
    let output = dump(live.pid());
    assert_one_line_failure(
        &output,
        &["libfadvise_shim.so is not loaded", "fsync_then_wait"],
    );
    assert!(
        live.is_alive(),
        "no signal may be sent to a process without the shim"
    );
}

#[test]
fn dump_of_a_missing_process_fails() {
    assert_one_line_failure(&dump(NO_SUCH_PID), &[&format!("no process {NO_SUCH_PID}")]);
    assert_one_line_failure(
        &doctor(NO_SUCH_PID),
        &[&format!("no process {NO_SUCH_PID}")],
    );
}

#[test]
fn dump_with_signal_none_fails() {
    let dir = TempDir::new().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[dump]\nsignal = \"none\"\n").unwrap();
    let mut live = fsync_then_wait(&dir, 1, true, &[("FADVISE_SHIM_POLICY", &policy)]);
    let output = dump(live.pid());
    assert_one_line_failure(
        &output,
        &[&format!(
            "process {} has dump signal none; nothing can make it dump",
            live.pid()
        )],
    );
    assert!(live.is_alive());
}

#[test]
fn another_users_process_is_permission_denied() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // Switching to another user needs root.
    }
    let dir = TempDir::new().unwrap();
    let mut live = fsync_then_wait(&dir, 1, false, &[]);
    // A copy of the CLI that user `nobody` can run wherever the build is.
    let cli_copy = dir.path().join("fadvise-shim");
    std::fs::copy(env!("CARGO_BIN_EXE_fadvise-shim"), &cli_copy).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for command in ["dump", "doctor"] {
        let output = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&cli_copy)
            .args([command, &live.pid().to_string()])
            .output()
            .expect("setpriv runs");
        assert_one_line_failure(&output, &["permission denied", &live.pid().to_string()]);
    }
    assert!(live.is_alive());
}
