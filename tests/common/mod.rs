//! Helpers shared by the end-to-end tests: they find the built library and
//! CLI, compile the C programs under `tests/c/` at test time, run programs
//! with or without the shim in a clean environment with a dump directory of
//! their own, and read back what the shim wrote.
//!
//! Every test gets its own `Scratch` directory (dumps, policies, data files),
//! so tests run in parallel without sharing anything, and nothing ever
//! writes to the default dump directory.
// Each test binary includes this module and uses only part of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::{parse_dump, Dump, FILE_SUFFIX};
use fadvise_shim_core::policy::{DUMP_DIR_ENV, POLICY_ENV, STATS_DIR_ENV, SYSTEM_POLICY_PATH};
use fadvise_shim_core::stats::CallStats;
use tempfile::TempDir;

/// Long enough for any of these programs on a loaded 2-core machine; a run
/// that takes longer has hung.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A policy that drops every call.
pub const DROP_ALL: &str = "[[rule]]\ncall = \"*\"\naction = \"drop\"\n";

/// The intercepted entry points, as the library exports them and as `nm -D`
/// names a program's imports.
pub const ENTRY_POINTS: [&str; 10] = [
    "posix_fadvise",
    "posix_fadvise64",
    "readahead",
    "sync_file_range",
    "fsync",
    "fdatasync",
    "syncfs",
    "sync",
    "msync",
    "syscall",
];

/// The command-line tool under test.
pub fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fadvise-shim"))
}
/// Function symbols `file` defines in its dynamic symbol table (read with
/// `nm -D`), without version suffixes, sorted.
pub fn exported_functions(file: &Path) -> std::collections::BTreeSet<String> {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(file)
        .output()
        .expect("nm runs");
    assert!(output.status.success(), "nm {file:?}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut cells = line.split_whitespace().rev();
            let name = cells.next()?;
            let kind = cells.next()?;
            (kind == "T" || kind == "W").then(|| name.split('@').next().unwrap_or(name).to_string())
        })
        .collect()
}

/// The preload library, built next to the CLI by `cargo build --release`.
pub fn library() -> PathBuf {
    let library = cli().with_file_name("libfadvise_shim.so");
    assert!(
        library.is_file(),
        "{} is missing: build it first with `cargo build --release --workspace`",
        library.display()
    );
    library
}

/// The C program `tests/c/NAME.c`, compiled with `cc` on first use. Its
/// file name is NAME, so its dumps are `NAME.<pid>.dump`.
pub fn c_program(name: &str) -> PathBuf {
    compile_c("c", name, name, &[])
}

/// `tests/DIR/NAME.c` compiled into a file named `output` (its dumps are
/// `<output>.<pid>.dump`), with `extra` arguments after the source
/// (libraries, `-shared`…). Binaries are kept under the target directory,
/// keyed by the sources' content and the arguments, so that test binaries
/// share them and an edited source (or header) is compiled again.
pub fn compile_c(dir: &str, name: &str, output: &str, extra: &[&str]) -> PathBuf {
    compile_with("cc", dir, name, output, extra)
}

/// `tests/DIR/NAME.c` built against musl with Debian's `musl-gcc` (package
/// `musl-tools`), as `compile_c` does for glibc; the kernel's headers
/// (`linux/`, `asm/`), which musl-gcc leaves out, are reached through a
/// directory of links, as Alpine's `linux-headers` would give them.
pub fn compile_musl(dir: &str, name: &str, output: &str, extra: &[&str]) -> PathBuf {
    let headers = Path::new(env!("CARGO_TARGET_TMPDIR")).join("musl-kernel-headers");
    for (link, target) in [
        ("linux", "/usr/include/linux"),
        ("asm", "/usr/include/x86_64-linux-gnu/asm"),
        ("asm-generic", "/usr/include/asm-generic"),
    ] {
        let _ = std::fs::create_dir_all(&headers);
        let _ = std::os::unix::fs::symlink(target, headers.join(link));
    }
    let include = format!("-I{}", headers.display());
    let mut arguments = vec![include.as_str()];
    arguments.extend_from_slice(extra);
    compile_with("musl-gcc", dir, name, output, &arguments)
}

/// The C program `tests/c/NAME.c` built against musl.
pub fn musl_program(name: &str) -> PathBuf {
    compile_musl("c", name, name, &[])
}

fn compile_with(compiler: &str, dir: &str, name: &str, output: &str, extra: &[&str]) -> PathBuf {
    static COMPILING: Mutex<()> = Mutex::new(());
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let source = tests.join(dir).join(format!("{name}.c"));
    let text =
        std::fs::read(&source).unwrap_or_else(|error| panic!("{}: {error}", source.display()));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&text, CC_FLAGS, extra, output, compiler).hash(&mut hasher);
    // The shared header every directory includes.
    std::fs::read(tests.join("c/deny.h")).ok().hash(&mut hasher);
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-programs");
    let dir = root.join(format!("{output}-{:016x}", hasher.finish()));
    let binary = dir.join(output);
    // Within one test binary, parallel tests wait for one compilation.
    let _compiling = COMPILING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if binary.is_file() {
        return binary;
    }
    // Other test binaries may compile the same program at the same time:
    // each builds in a directory of its own and renames it into place.
    std::fs::create_dir_all(&root).expect("create C program directory");
    let staging = root.join(format!(".{output}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).expect("create staging directory");
    let compiled = Command::new(compiler)
        .args(CC_FLAGS)
        .arg("-o")
        .arg(staging.join(output))
        .arg(&source)
        .args(extra)
        .output()
        .unwrap_or_else(|error| panic!("{compiler}: {error}"));
    assert!(
        compiled.status.success(),
        "compiling {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&compiled.stderr)
    );
    if std::fs::rename(&staging, &dir).is_err() {
        // Another test binary won the race; its copy is the same program.
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        binary.is_file(),
        "{} missing after compiling",
        binary.display()
    );
    binary
}

const CC_FLAGS: [&str; 5] = ["-O2", "-g", "-Wall", "-Wextra", "-pthread"];

/// `program` with an environment free of the shim: no `LD_PRELOAD`, no
/// inherited `FADVISE_SHIM_*`, and the C locale so tools' messages are
/// predictable.
pub fn clean_command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text == "LD_PRELOAD" || text.starts_with("FADVISE_SHIM_") {
            command.env_remove(&name);
        }
    }
    command.env("LC_ALL", "C");
    command
}

/// How a program is run.
#[derive(Clone, Copy, Debug)]
pub enum Shim<'a> {
    /// Without the library.
    Off,
    /// With the library and no policy at all: the built-in default.
    Default,
    /// With the library and this policy text.
    Policy(&'a str),
}

/// A test's own directory: data files, policy files and the dump directory.
pub struct Scratch {
    dir: TempDir,
    policies: Mutex<u32>,
}

impl Scratch {
    /// A fresh directory under the target directory.
    pub fn new() -> Scratch {
        Scratch::in_dir(Path::new(env!("CARGO_TARGET_TMPDIR")))
            .expect("scratch directory under the target directory")
    }

    /// A fresh directory on a real file system (tmpfs ignores `fadvise`):
    /// under the target directory, else under /var/tmp; `None` if both are
    /// tmpfs.
    pub fn on_real_fs() -> Option<Scratch> {
        [
            Path::new(env!("CARGO_TARGET_TMPDIR")),
            Path::new("/var/tmp"),
        ]
        .into_iter()
        .filter_map(Scratch::in_dir)
        .find(|scratch| !is_tmpfs(scratch.path()))
    }

    fn in_dir(parent: &Path) -> Option<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix("shim-test-")
            .tempdir_in(parent)
            .ok()?;
        std::fs::create_dir(dir.path().join("dumps")).ok()?;
        Some(Scratch {
            dir,
            policies: Mutex::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn dump_dir(&self) -> PathBuf {
        self.dir.path().join("dumps")
    }

    /// The live-statistics directory of the programs this test runs (made
    /// by the shim at their first call).
    pub fn stats_dir(&self) -> PathBuf {
        self.dir.path().join("stats")
    }

    /// Writes `text` to a new policy file and returns its path.
    pub fn policy_file(&self, text: &str) -> PathBuf {
        let mut count = self.policies.lock().unwrap();
        *count += 1;
        let path = self.file(&format!("policy-{count}.toml"));
        std::fs::write(&path, text).expect("write policy");
        path
    }

    /// `program` run as `shim` says, with its dumps going to `dump_dir`.
    pub fn command(&self, program: impl AsRef<OsStr>, shim: Shim) -> Command {
        let mut command = clean_command(program);
        command.env(DUMP_DIR_ENV, self.dump_dir());
        command.env(STATS_DIR_ENV, self.stats_dir());
        match shim {
            Shim::Off => {}
            Shim::Default => {
                assert!(
                    !Path::new(SYSTEM_POLICY_PATH).exists(),
                    "{SYSTEM_POLICY_PATH} exists, so no run here can use the built-in default"
                );
                command.env("LD_PRELOAD", library());
            }
            Shim::Policy(text) => {
                command.env("LD_PRELOAD", library());
                command.env(POLICY_ENV, self.policy_file(text));
            }
        }
        command
    }

    /// Every dump in the dump directory, with its file name. A file that is
    /// there but cannot be read fails the test: dumps appear atomically.
    pub fn dumps(&self) -> Vec<(String, Dump)> {
        let mut dumps = Vec::new();
        for entry in std::fs::read_dir(self.dump_dir()).expect("read dump dir") {
            let name = entry.expect("dump dir entry").file_name();
            let name = name.to_string_lossy().into_owned();
            if name.ends_with(FILE_SUFFIX) {
                dumps.push((name.clone(), self.read_dump(&name)));
            }
        }
        dumps.sort_by(|a, b| a.0.cmp(&b.0));
        dumps
    }

    /// Names of every file in the dump directory (temporary files included).
    pub fn dump_dir_listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dump_dir())
            .expect("read dump dir")
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn read_dump(&self, name: &str) -> Dump {
        let text = std::fs::read_to_string(self.dump_dir().join(name))
            .unwrap_or_else(|error| panic!("reading dump {name}: {error}"));
        parse_dump(&text).unwrap_or_else(|error| panic!("dump {name}: {error}\n{text}"))
    }

    /// The dump file of process `pid`, if there is one.
    pub fn dump_file_of(&self, pid: u32) -> Option<PathBuf> {
        std::fs::read_dir(self.dump_dir())
            .expect("read dump dir")
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let exe = name.split('.').next().unwrap_or_default();
                is_dump_of(&name, exe, pid)
            })
    }

    /// Waits for the dump of process `pid`; returns its text and how long it
    /// took to appear, or `None` after `timeout`.
    pub fn wait_for_dump(&self, pid: u32, timeout: Duration) -> Option<(String, Duration)> {
        let start = Instant::now();
        let path = poll(timeout, || self.dump_file_of(pid))?;
        let text = std::fs::read_to_string(path).expect("read dump");
        Some((text, start.elapsed()))
    }
}

fn is_tmpfs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
    // SAFETY: an all-zero `statfs` is a valid value of this plain C struct.
    let mut info: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `info` a valid,
    // writable `statfs` that outlives the call.
    let result = unsafe { libc::statfs(c_path.as_ptr(), &mut info) };
    assert_eq!(result, 0, "statfs {}", path.display());
    info.f_type == libc::TMPFS_MAGIC
}

/// Calls `probe` every few milliseconds until it returns something or
/// `timeout` passes.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A finished program.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// Fails the test unless the program exited 0.
    pub fn assert_success(&self, what: &str) -> &Finished {
        assert!(self.status.success(), "{what}: {self}");
        self
    }
}

impl std::fmt::Display for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            describe(self.status),
            self.stdout,
            self.stderr
        )
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status:?}"),
    }
}

/// Runs `command` to the end with stdin closed. If it takes longer than
/// `timeout`, its whole process group is killed and the test fails.
pub fn run(command: &mut Command, timeout: Duration) -> Finished {
    let mut running = Running::start(command);
    let status = poll(timeout, || running.child.try_wait().expect("wait"));
    let Some(status) = status else {
        running.kill_group();
        let status = running.child.wait().expect("wait after kill");
        let finished = running.finish(status);
        panic!("{command:?} did not finish within {timeout:?} and was killed\n{finished}");
    };
    running.finish(status)
}

/// A program running in the background, in its own process group, with its
/// stdout delivered line by line and its stderr collected. Dropping it kills
/// the group.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stdout_reader: Option<thread::JoinHandle<()>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl Running {
    pub fn start(command: &mut Command) -> Running {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("starting {command:?}: {error}"));
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stdout_reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().unwrap();
        let collected = Arc::clone(&stderr);
        let stderr_reader = thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                collected.lock().unwrap().extend_from_slice(&buffer[..read]);
            }
        });
        Running {
            child,
            lines,
            stdout: Vec::new(),
            stdout_reader: Some(stdout_reader),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next stdout line that satisfies `wanted`, keeping every
    /// line read; fails the test if none comes within `timeout`.
    pub fn wait_for_line(&mut self, timeout: Duration, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no expected line within {timeout:?}; stdout so far:\n{}\nstderr so far:\n{}",
                    self.stdout.join("\n"),
                    self.stderr_text()
                ),
            }
        }
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Whether the process is still running (not exited, not killed).
    pub fn is_alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: kill() has no memory-safety requirements; the pid is our
        // own child, which has not been waited for, so it is not reused.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "kill({pid}, {signal})");
    }

    /// Waits for the process to exit on its own, up to `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Finished {
        let status = poll(timeout, || self.child.try_wait().expect("wait"));
        let Some(status) = status else {
            self.kill_group();
            let status = self.child.wait().expect("wait after kill");
            let finished = self.finish(status);
            panic!("process did not exit within {timeout:?} and was killed\n{finished}");
        };
        self.finish(status)
    }

    fn kill_group(&self) {
        let group = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: as in `signal`; a negative pid names the process group we
        // created for this child, which lives as long as the child is unwaited.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }

    fn finish(mut self, status: ExitStatus) -> Finished {
        if let Some(reader) = self.stdout_reader.take() {
            reader.join().expect("stdout reader");
        }
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("stderr reader");
        }
        self.stdout.extend(self.lines.try_iter());
        let mut stdout = self.stdout.join("\n");
        if !stdout.is_empty() {
            stdout.push('\n');
        }
        Finished {
            status,
            stdout,
            stderr: self.stderr_text(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.stdout_reader.is_some() {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

/// The cells of the row of `call` in a `cat`-readable call table (a dump,
/// or the table `fadvise-shim run` prints), after the call name.
pub fn table_row(text: &str, call: Call) -> Option<Vec<u64>> {
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&call.name()))
        .map(|cells| {
            cells[1..6]
                .iter()
                .map(|cell| {
                    cell.parse()
                        .unwrap_or_else(|_| panic!("count {cell:?} in {text}"))
                })
                .collect()
        })
}

/// A call's counters as `(count, passed, dropped, limited, errors)`.
pub fn counts(stats: &CallStats) -> (u64, u64, u64, u64, u64) {
    (
        stats.count(),
        stats.passed(),
        stats.dropped,
        stats.limited,
        stats.errors,
    )
}

/// Whether `name` is the dump file name of process `pid` running `exe`:
/// `<exe>.<pid>.<pid namespace>-<start ticks>.dump`.
pub fn is_dump_of(name: &str, exe: &str, pid: u32) -> bool {
    let Some(rest) = name
        .strip_prefix(&format!("{exe}.{pid}."))
        .and_then(|rest| rest.strip_suffix(FILE_SUFFIX))
    else {
        return false;
    };
    rest.split_once('-').is_some_and(|(namespace, start)| {
        namespace.parse::<u64>().is_ok() && start.parse::<u64>().is_ok()
    })
}

/// The dump file name a running process `pid` (running `exe`) writes,
/// from what the kernel says of it.
pub fn dump_name(exe: &str, pid: u32) -> String {
    let namespace = std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("pid namespace");
    let namespace = namespace.to_string_lossy();
    let namespace = namespace
        .strip_prefix("pid:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .expect("pid:[N]");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 1..];
    let start = after.split_whitespace().nth(19).expect("start time");
    format!("{exe}.{pid}.{namespace}-{start}{FILE_SUFFIX}")
}
