//! Command-line syntax: every command, its options, and its `--help` text
//! with an example. What the arguments mean is in each command's module.

use std::path::PathBuf;
use std::sync::LazyLock;

use clap::{Args, Parser, Subcommand, ValueEnum};
use fadvise_shim_core::stats_file;

/// `--version`: the program's, and the stats file layouts it reads and
/// writes (a reader and the library of another build may meet on a node).
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let (major, minor) = stats_file::LAYOUT;
    format!(
        "{}\nstats file layouts: reads {}, writes {major}.{minor}",
        env!("CARGO_PKG_VERSION"),
        stats_file::layouts_read()
    )
});

#[derive(Parser)]
#[command(
    name = "fadvise-shim",
    version = VERSION.as_str(),
    about = "Observe, drop and rate-limit page-cache calls (posix_fadvise, fsync, sync_file_range, ...) in unmodified programs",
    after_help = "Example:\n  fadvise-shim run -- dd if=/dev/zero of=out bs=64k count=2000 oflag=nocache"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a program and all its children under the shim, then print the merged table
    #[command(
        after_help = "Examples:\n  fadvise-shim run --policy drop.toml -- dd if=/dev/zero of=out bs=64k count=2000 oflag=nocache\n  fadvise-shim run --supervise -- ./static-or-go-program\n\nExits with the program's status."
    )]
    Run(RunArgs),
    /// Merge dump files (or directories of them) into one report
    #[command(
        after_help = "Examples:\n  fadvise-shim report /tmp/fadvise-shim\n  fadvise-shim report --format prometheus --output /var/lib/node_exporter/fadvise.prom /tmp/fadvise-shim"
    )]
    Report(ReportArgs),
    /// Serve the statistics to Prometheus: GET /metrics
    #[command(
        after_help = "Example:\n  fadvise-shim serve --listen 0.0.0.0:9808 /var/run/fadvise-shim/stats\n\nPrints `listening on http://ADDR/metrics` once bound; port 0 picks a free port."
    )]
    Serve(ServeArgs),
    /// A live view of calls per second and time spent, per container, program or process
    #[command(
        after_help = "Examples:\n  fadvise-shim top --by exe --sort time\n  fadvise-shim top --once /dev/shm/fadvise-shim/stats-1000\n\nKeys: q quits (so does Ctrl-C). --once prints one plain table, for scripts."
    )]
    Top(TopArgs),
    /// Validate a policy file: errors as FILE:LINE:COL, or a summary
    #[command(
        after_help = "Example:\n  fadvise-shim check /etc/fadvise-shim/policy.toml\n\nExit status: 0 valid, 1 invalid."
    )]
    Check(CheckArgs),
    /// Make a running process dump now and print its table
    #[command(after_help = "Example:\n  fadvise-shim dump 1234")]
    Dump(DumpArgs),
    /// Say whether the shim can reach a program, or is loaded in a process
    #[command(
        after_help = "Examples:\n  fadvise-shim doctor /usr/bin/postgres\n  fadvise-shim doctor 1234"
    )]
    Doctor(DoctorArgs),
    /// Install library, CLI and policy into an image's root file system
    #[command(
        after_help = "Example:\n  fadvise-shim install --root /build/rootfs --preload global"
    )]
    Install(InstallArgs),
    /// Take out exactly what `install` put into an image's root
    #[command(after_help = "Example:\n  fadvise-shim uninstall --root /build/rootfs")]
    Uninstall(UninstallArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// Policy file (default: $FADVISE_SHIM_POLICY, /etc/fadvise-shim/policy.toml, built-in)
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Directory for the dumps (default: a fresh temporary directory)
    #[arg(long, value_name = "DIR")]
    pub dump_dir: Option<PathBuf>,
    /// Reach static, Go and raw-syscall programs: a seccomp filter sends the calls to this process
    #[arg(long)]
    pub supervise: bool,
    /// With --supervise: drops that need no process, file or calling module are made by the filter itself, uncounted
    #[arg(long, requires = "supervise")]
    pub drop_in_kernel: bool,
    /// The program and its arguments
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Hgrm,
    Hlog,
    Prometheus,
    Svg,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    Call,
    Exe,
    Process,
    Container,
    Pod,
    /// The calling module and function: call sites
    Caller,
}

#[derive(Args)]
pub struct ReportArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Rows of the table (and JSON `groups`): per call, or per executable, process, container or pod, and call
    #[arg(long, value_enum, default_value = "call")]
    pub by: GroupBy,
    /// Write to FILE atomically (temporary file + rename) instead of stdout
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Dump files, stats files, or directories holding them (default: this user's stats and dump directories)
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address and port to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9808")]
    pub listen: String,
    /// Directories of statistics and dumps, each with its per-pod
    /// subdirectories (default: this user's dump directory)
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

/// What one row of `top` stands for.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopBy {
    Container,
    Exe,
    Process,
    Pod,
}

/// What `top` sorts its rows by, highest first.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TopSort {
    /// Calls per second
    Calls,
    /// Time per second spent in passed calls
    Time,
    /// 99th percentile latency over the interval
    P99,
}

#[derive(Args)]
pub struct TopArgs {
    #[arg(long, value_enum, default_value = "container")]
    pub by: TopBy,
    #[arg(long, value_enum, default_value = "calls")]
    pub sort: TopSort,
    /// Seconds between samples (0.1 to 3600)
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_interval)]
    pub interval: f64,
    /// Print one plain table after two samples an interval apart, and exit
    #[arg(long)]
    pub once: bool,
    /// Stats directories (default: this user's)
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

fn parse_interval(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.1..=3600.0).contains(&seconds) => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds from 0.1 to 3600"
        )),
    }
}

#[derive(Args)]
pub struct CheckArgs {
    /// The policy file
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Args)]
pub struct DumpArgs {
    /// The process
    #[arg(value_name = "PID")]
    pub pid: u32,
}

#[derive(Args)]
pub struct DoctorArgs {
    /// A process id, or a program (a path, or a name looked up in PATH)
    #[arg(value_name = "PID|PROGRAM")]
    pub target: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PreloadMode {
    /// Add the library to ROOT/etc/ld.so.preload: every process gets it
    Global,
    /// Print the ENV lines for a Dockerfile instead
    Env,
}

#[derive(Args)]
pub struct InstallArgs {
    /// The image's root file system
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
    #[arg(long, value_enum)]
    pub preload: Option<PreloadMode>,
    /// Policy to install (checked first); default: the commented example
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Args)]
pub struct UninstallArgs {
    /// The image's root file system
    #[arg(long, value_name = "DIR")]
    pub root: PathBuf,
}
