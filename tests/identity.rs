//! One process, counted once (issue 21, item 1), from outside: `dd
//! oflag=nocache` makes 100 `posix_fadvise` calls under the library with
//! `[dump] on_exit = true`, so it leaves both a stats file and a dump; every
//! way a user may point the readers at them — one directory for both, the
//! stats and the dump directories named together (in either order), a dump
//! copied into two directories, a stats file named beside its directory, a
//! stats file already retired into its aggregate — `report` and `serve`
//! count 100 calls of 1 process.

mod common;
// Only its `Serve` is used here.
#[allow(dead_code)]
mod serve_support;

use std::path::Path;
use std::process::Command;

use common::{clean_command, cli, library, run, Scratch, TIMEOUT};
use fadvise_shim_core::policy::{DUMP_DIR_ENV, POLICY_ENV, STATS_DIR_ENV};
use serde_json::Value;

const ON_EXIT: &str = "[dump]\non_exit = true\n";

/// Runs `dd` writing 100 blocks with `oflag=nocache` (one `DONTNEED` each)
/// under the library, its stats file in `stats` (`none`: private memory)
/// and its exit dump in `dumps`.
fn dd(scratch: &Scratch, stats: &Path, dumps: &Path) {
    let mut command: Command = clean_command("dd");
    command
        .env("LD_PRELOAD", library())
        .env(POLICY_ENV, scratch.policy_file(ON_EXIT))
        .env(STATS_DIR_ENV, stats)
        .env(DUMP_DIR_ENV, dumps)
        .arg("if=/dev/zero")
        .arg(format!("of={}", scratch.file("out").display()))
        .args(["bs=128k", "count=100", "oflag=nocache"]);
    run(&mut command, TIMEOUT).assert_success("dd");
}

/// `report --format json PATHS`: (calls of posix_fadvise, processes).
fn report(paths: &[&Path]) -> (u64, u64) {
    let output = clean_command(cli())
        .args(["report", "--format", "json"])
        .args(paths)
        .output()
        .expect("report runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "report failed: {stdout}{stderr}");
    let json: Value = serde_json::from_str(&stdout).expect("json");
    let calls = json["calls"]["posix_fadvise"]["count"]
        .as_u64()
        .unwrap_or(0);
    (calls, json["processes"].as_u64().unwrap())
}

fn only_file(dir: &Path, suffix: &str) -> std::path::PathBuf {
    let found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

fn real_fs() -> Option<Scratch> {
    let scratch = Scratch::on_real_fs();
    if scratch.is_none() {
        eprintln!("skipped: no real file system for dd's fadvise");
    }
    scratch
}

#[test]
fn one_directory_for_stats_and_dumps_counts_the_process_once() {
    let Some(scratch) = real_fs() else { return };
    let shared = scratch.file("shared");
    dd(&scratch, &shared, &shared);
    let stats_file = only_file(&shared, ".stats");
    let dump = only_file(&shared, ".dump");
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(
        text.contains("\nnonce ") && text.contains("\nstats_dir "),
        "{text}"
    );
    // Named file by file (before a read of the directory retires the dead
    // stats file), then the directory, alone and with the dump.
    assert_eq!(report(&[&dump, &stats_file]), (100, 1));
    assert_eq!(report(&[&shared]), (100, 1));
    let table = clean_command(cli())
        .arg("report")
        .arg(&shared)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("1 process merged, 100 calls"), "{table}");
    assert_eq!(report(&[&shared, &dump]), (100, 1));
}

#[test]
fn the_stats_and_dump_directories_named_together_count_the_process_once() {
    let Some(scratch) = real_fs() else { return };
    let (stats, dumps) = (scratch.stats_dir(), scratch.dump_dir());
    dd(&scratch, &stats, &dumps);
    assert_eq!(report(&[&stats, &dumps]), (100, 1));
    assert_eq!(report(&[&dumps, &stats]), (100, 1));
    // Each alone holds the whole process.
    assert_eq!(report(&[&dumps]), (100, 1));
    assert_eq!(report(&[&stats]), (100, 1));
}

#[test]
fn a_dump_of_a_retired_stats_file_is_not_added_again() {
    let Some(scratch) = real_fs() else { return };
    let (stats, dumps) = (scratch.stats_dir(), scratch.dump_dir());
    dd(&scratch, &stats, &dumps);
    // Reading the stats directory retires the dead file into its aggregate.
    assert_eq!(report(&[&stats]), (100, 1));
    assert_eq!(
        std::fs::read_dir(&stats)
            .unwrap()
            .filter(|entry| {
                let name = entry.as_ref().unwrap().file_name();
                name.to_string_lossy().ends_with(".stats")
            })
            .count(),
        0,
        "the dead file was retired"
    );
    assert_eq!(report(&[&dumps, &stats]), (100, 1));
    // Forget the segment's list of absorbed files (merged into the summary,
    // they are forgotten): the dump's `stats_dir` still tells.
    let aggregate = only_file(&stats, ".segment");
    let text = std::fs::read_to_string(&aggregate).unwrap();
    let forgotten: String = text
        .lines()
        .filter(|line| !line.starts_with("absorbed "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(forgotten, text);
    std::fs::write(&aggregate, forgotten).unwrap();
    assert_eq!(report(&[&dumps, &stats]), (100, 1));
}

#[test]
fn a_dump_copied_into_two_directories_counts_once() {
    let Some(scratch) = real_fs() else { return };
    let dumps = scratch.dump_dir();
    dd(&scratch, Path::new("none"), &dumps);
    let dump = only_file(&dumps, ".dump");
    let text = std::fs::read_to_string(&dump).unwrap();
    assert!(!text.contains("\nstats_dir "), "no stats file: {text}");
    let copy = scratch.file("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(&dump, copy.join(dump.file_name().unwrap())).unwrap();
    assert_eq!(report(&[&dumps, &copy]), (100, 1));
    // An old dump (no nonce) cannot be told from another process's.
    std::fs::write(
        copy.join("old.dump"),
        text.lines()
            .filter(|line| !line.starts_with("nonce "))
            .map(|line| format!("{line}\n"))
            .collect::<String>(),
    )
    .unwrap();
    assert_eq!(report(&[&dumps, &copy]), (200, 2));
}

#[test]
fn a_stats_file_named_beside_its_directory_counts_once() {
    let Some(scratch) = real_fs() else { return };
    let stats = scratch.stats_dir();
    dd(&scratch, &stats, &scratch.dump_dir());
    let file = only_file(&stats, ".stats");
    // Copied elsewhere, the same file is still the same process.
    let copy = scratch.file("copy.stats");
    std::fs::copy(&file, &copy).unwrap();
    assert_eq!(report(&[&file, &copy]), (100, 1));
    assert_eq!(report(&[&file, &stats]), (100, 1));
    assert_eq!(report(&[&copy, &stats]), (100, 1));
}

#[test]
fn serve_exports_one_process_of_100_calls_from_a_shared_directory() {
    let Some(scratch) = real_fs() else { return };
    let shared = scratch.file("shared");
    dd(&scratch, &shared, &shared);
    let serve = serve_support::Serve::start("127.0.0.1:0", &shared);
    let text = serve.metrics(None).body;
    let sum = |series: &str| -> u64 {
        text.lines()
            .filter(|line| line.starts_with(series))
            .map(|line| line.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        sum("fadvise_shim_calls_total{call=\"posix_fadvise\""),
        100,
        "{text}"
    );
    assert_eq!(sum("fadvise_shim_processes_seen_total"), 1, "{text}");
}
