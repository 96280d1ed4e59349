//! A real database server under the shim with the built-in default policy:
//! PostgreSQL uses SIGUSR1 itself (latches, interrupts between its
//! processes) and forks its workers without exec. `initdb`, the server and
//! `pgbench` must run as without the shim, the server must keep answering
//! after every one of its processes gets SIGUSR1, and those processes that
//! made calls must each dump their own.
//!
//! Needs root (to run the server as `postgres`) and Debian's PostgreSQL;
//! skips with a message otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::{DUMP_DIR_ENV, STATS_DIR_ENV};

/// `initdb` of the newest PostgreSQL installed, if any.
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
    let output = Command::new("id").args(["-u", "postgres"]).output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Runs `program` as the `postgres` user, under the shim.
fn as_postgres(library: &Path, dumps: &Path, program: &Path, args: &[&str]) -> Output {
    common::clean_command("setpriv")
        .args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
        .arg(program)
        .args(args)
        .env("LD_PRELOAD", library)
        .env(DUMP_DIR_ENV, dumps)
        .env(STATS_DIR_ENV, dumps.parent().unwrap().join("stats"))
        .env("PGHOST", dumps.parent().unwrap().join("socket"))
        .output()
        .expect("setpriv runs")
}

fn assert_ran(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn postgresql_runs_and_its_processes_dump_on_sigusr1() {
    let (Some(bin), Some(uid), true) = (
        postgres_bin(),
        postgres_uid(),
        unsafe { libc::geteuid() } == 0,
    ) else {
        eprintln!("SKIPPED: needs root and Debian's postgresql (initdb and a postgres user)");
        return;
    };
    let scratch = tempfile::Builder::new()
        .prefix("fadvise-pg-")
        .tempdir_in("/tmp")
        .unwrap();
    let root = scratch.path();
    let (data, socket, dumps) = (root.join("data"), root.join("socket"), root.join("dumps"));
    let stats = root.join("stats");
    // The library where the postgres user can read it.
    let library = root.join("libfadvise_shim.so");
    std::fs::copy(common::library(), &library).unwrap();
    for dir in [&data, &socket, &dumps, &stats] {
        std::fs::create_dir(dir).unwrap();
        std::os::unix::fs::chown(dir, Some(uid), None).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();

    let run =
        |program: &str, args: &[&str]| as_postgres(&library, &dumps, &bin.join(program), args);
    let data_arg = data.to_str().unwrap();
    assert_ran(&run("initdb", &["-D", data_arg, "--no-sync"]), "initdb");
    let port = (40_000 + std::process::id() % 20_000).to_string();
    let options = format!("-c listen_addresses='' -k {} -p {port}", socket.display());
    assert_ran(
        &run(
            "pg_ctl",
            &[
                "-D",
                data_arg,
                "-o",
                &options,
                "-l",
                &format!("{data_arg}/log"),
                "-w",
                "start",
            ],
        ),
        "pg_ctl start",
    );
    let stop = || run("pg_ctl", &["-D", data_arg, "-m", "fast", "-w", "stop"]);

    let pgbench = Path::new("/usr/bin/pgbench");
    let bench = |args: &[&str]| {
        as_postgres(
            &library,
            &dumps,
            pgbench,
            &[&["-p", &port][..], args].concat(),
        )
    };
    let init = bench(&["-i", "-q", "postgres"]);
    let load = bench(&["-c", "4", "-t", "300", "postgres"]);
    // The server's own count of its WAL syncs (fdatasync by default), which
    // the short-lived backends that committed made and no signal dumped.
    let wal_syncs = as_postgres(
        &library,
        &dumps,
        &bin.join("psql"),
        &[
            "-p",
            &port,
            "-tAc",
            "select wal_sync from pg_stat_wal",
            "postgres",
        ],
    );
    // A checkpoint makes the checkpointer (a long-lived worker) sync files,
    // so at least it has calls to dump whatever else is running.
    let psql = bin.join("psql");
    let checkpoint = as_postgres(
        &library,
        &dumps,
        &psql,
        &["-p", &port, "-c", "checkpoint", "postgres"],
    );

    // SIGUSR1 to the postmaster and every process it forked.
    let postmaster: i32 = std::fs::read_to_string(data.join("postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let children = Command::new("pgrep")
        .args(["-P", &postmaster.to_string()])
        .output()
        .unwrap();
    let mut pids = vec![postmaster];
    pids.extend(
        String::from_utf8_lossy(&children.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse::<i32>().ok()),
    );
    for &pid in &pids {
        // SAFETY: kill has no memory-safety requirement.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    }
    let dump_of = |pid: i32| {
        std::fs::read_dir(&dumps)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                let name = path.file_name().unwrap().to_string_lossy();
                common::is_dump_of(&name, "postgres", pid as u32)
            })
    };
    common::poll(Duration::from_secs(5), || {
        pids.iter().any(|&pid| dump_of(pid).is_some()).then_some(())
    });
    // Workers that are still writing get a moment more.
    std::thread::sleep(Duration::from_millis(300));
    let query = as_postgres(
        &library,
        &dumps,
        &psql,
        &[
            "-p",
            &port,
            "-tAc",
            "select count(*) from pgbench_accounts",
            "postgres",
        ],
    );
    let stopped = stop();

    assert_ran(&init, "pgbench -i");
    assert_ran(&checkpoint, "checkpoint");
    assert_ran(&load, "pgbench");
    assert!(
        String::from_utf8_lossy(&load.stdout).contains("number of failed transactions: 0"),
        "{load:?}"
    );
    assert_ran(&query, "psql after SIGUSR1 to every server process");
    assert_eq!(String::from_utf8_lossy(&query.stdout).trim(), "100000");
    assert_ran(&stopped, "pg_ctl stop");

    // Every process's live statistics, dead or alive, from the stats
    // directory alone: at least every WAL sync the server counted.
    assert_ran(&wal_syncs, "pg_stat_wal");
    let wal_syncs: u64 = String::from_utf8_lossy(&wal_syncs.stdout)
        .trim()
        .parse()
        .expect("wal_sync");
    let report = common::clean_command(common::cli())
        .args(["report", "--format", "json"])
        .arg(&stats)
        .output()
        .unwrap();
    assert_ran(&report, "report on the stats directory");
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    let counted = ["fsync", "fdatasync"]
        .iter()
        .map(|call| json["calls"][call]["count"].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert!(
        wal_syncs >= 300 && counted >= wal_syncs,
        "pg_stat_wal.wal_sync {wal_syncs}, counted {counted}: {json}"
    );

    let dumped: Vec<(i32, fadvise_shim_core::dump::Dump)> = pids
        .iter()
        .filter_map(|&pid| {
            let file = dump_of(pid)?;
            let text = std::fs::read_to_string(file).unwrap();
            Some((pid, fadvise_shim_core::dump::parse_dump(&text).unwrap()))
        })
        .collect();
    // The checkpointer, the WAL writer and the backends make sync calls;
    // every dump is the process's own.
    assert!(
        dumped.len() >= 2,
        "dumps of {} of {} server processes",
        dumped.len(),
        pids.len()
    );
    for (pid, dump) in &dumped {
        assert_eq!(dump.origin.pid as i32, *pid);
        assert_eq!(dump.reason, "signal");
    }
    let syncs: u64 = dumped
        .iter()
        .map(|(_, dump)| {
            dump.stats.call(Call::Fsync).count() + dump.stats.call(Call::Fdatasync).count()
        })
        .sum();
    assert!(syncs > 0, "the server's processes made sync calls");
}
