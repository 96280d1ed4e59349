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
mod postgres_support;

use std::process::Command;
use std::time::Duration;

use fadvise_shim_core::call::Call;
use postgres_support::{assert_ran, Cluster};

#[test]
fn postgresql_runs_and_its_processes_dump_on_sigusr1() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let dumps = cluster.dumps.clone();
    let init = cluster.pgbench(&["-i", "-q"]);
    let load = cluster.pgbench(&["-c", "4", "-t", "300"]);
    // The server's own count of its WAL syncs (fdatasync by default), which
    // the short-lived backends that committed made and no signal dumped.
    let wal_syncs = cluster.psql("select wal_sync from pg_stat_wal");
    // A checkpoint makes the checkpointer (a long-lived worker) sync files,
    // so at least it has calls to dump whatever else is running.
    let checkpoint = cluster.psql("checkpoint");

    // SIGUSR1 to the postmaster and every process it forked.
    let postmaster = cluster.postmaster();
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
    let query = cluster.psql("select count(*) from pgbench_accounts");
    let stopped = cluster.stop();

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
        .arg(&cluster.stats)
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
