//! A private PostgreSQL cluster under the shim, for the tests that run a
//! real database server (`daemon_postgres.rs`, `callers_real.rs`): Debian's
//! newest installed PostgreSQL, run as the `postgres` user with the shim's
//! built-in default policy, listening only on a Unix socket in the cluster's
//! own directory, with its dumps and live statistics there too.
//!
//! Needs root (to run the server as `postgres`); `Cluster::start` says why
//! not and gives `None` otherwise, so that tests skip.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use fadvise_shim_core::policy::{DUMP_DIR_ENV, STATS_DIR_ENV};

use crate::common;

/// A running cluster; stopped (fast) when dropped if `stop` was not called,
/// so that a failing test leaves no server behind.
pub struct Cluster {
    scratch: tempfile::TempDir,
    /// The PostgreSQL version's `bin` directory.
    pub bin: PathBuf,
    pub data: PathBuf,
    pub dumps: PathBuf,
    pub stats: PathBuf,
    pub port: String,
    stopped: bool,
}

/// `bin` of the newest PostgreSQL installed with `initdb`, if any.
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn postgres_uid() -> Option<u32> {
    let output = std::process::Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

pub fn assert_ran(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    /// A new cluster (`initdb --no-sync`), started; `None` with a message
    /// when this is not root or PostgreSQL is missing.
    pub fn start() -> Option<Cluster> {
        // SAFETY: geteuid has no memory-safety requirement.
        let (Some(bin), Some(uid), true) = (
            postgres_bin(),
            postgres_uid(),
            unsafe { libc::geteuid() } == 0,
        ) else {
            eprintln!("SKIPPED: needs root and Debian's postgresql (initdb and a postgres user)");
            return None;
        };
        let scratch = tempfile::Builder::new()
            .prefix("fadvise-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = scratch.path().to_owned();
        let mut cluster = Cluster {
            bin,
            data: root.join("data"),
            dumps: root.join("dumps"),
            stats: root.join("stats"),
            port: (40_000 + std::process::id() % 20_000).to_string(),
            stopped: true,
            scratch,
        };
        // The library where the postgres user can read it.
        std::fs::copy(common::library(), cluster.library()).unwrap();
        for dir in [
            &cluster.data,
            &cluster.socket(),
            &cluster.dumps,
            &cluster.stats,
        ] {
            std::fs::create_dir(dir).unwrap();
            std::os::unix::fs::chown(dir, Some(uid), None).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();

        let data = cluster.data.to_str().unwrap();
        assert_ran(
            &cluster.run(&cluster.bin.join("initdb"), &["-D", data, "--no-sync"]),
            "initdb",
        );
        let options = format!(
            "-c listen_addresses='' -k {} -p {}",
            cluster.socket().display(),
            cluster.port
        );
        let log = format!("{data}/log");
        let started = cluster.run(
            &cluster.bin.join("pg_ctl"),
            &["-D", data, "-o", &options, "-l", &log, "-w", "start"],
        );
        cluster.stopped = false;
        assert_ran(&started, "pg_ctl start");
        Some(cluster)
    }

    fn library(&self) -> PathBuf {
        self.scratch.path().join("libfadvise_shim.so")
    }

    fn socket(&self) -> PathBuf {
        self.scratch.path().join("socket")
    }

    /// Runs `program` as the `postgres` user, under the shim.
    pub fn run(&self, program: &Path, args: &[&str]) -> Output {
        common::clean_command("setpriv")
            .args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
            .arg(program)
            .args(args)
            .env("LD_PRELOAD", self.library())
            .env(DUMP_DIR_ENV, &self.dumps)
            .env(STATS_DIR_ENV, &self.stats)
            .env("PGHOST", self.socket())
            .output()
            .expect("setpriv runs")
    }

    /// `pgbench` on the cluster's `postgres` database.
    pub fn pgbench(&self, args: &[&str]) -> Output {
        let port = ["-p", &self.port];
        self.run(
            Path::new("/usr/bin/pgbench"),
            &[&port[..], args, &["postgres"]].concat(),
        )
    }

    /// `psql -tAc sql`: the answer's bare values.
    pub fn psql(&self, sql: &str) -> Output {
        self.run(
            &self.bin.join("psql"),
            &["-p", &self.port, "-tAc", sql, "postgres"],
        )
    }

    /// The postmaster's process id.
    pub fn postmaster(&self) -> i32 {
        std::fs::read_to_string(self.data.join("postmaster.pid"))
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// `pg_ctl stop -m fast`.
    pub fn stop(&mut self) -> Output {
        self.stopped = true;
        let data = self.data.to_str().unwrap();
        self.run(
            &self.bin.join("pg_ctl"),
            &["-D", data, "-m", "fast", "-w", "stop"],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.stopped {
            self.stop();
        }
    }
}
