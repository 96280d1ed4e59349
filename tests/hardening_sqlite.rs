//! `sqlite3` under a policy that drops `fsync` and `fdatasync` (issue 6):
//! 2,000 single-row transactions, each normally synced to disk. Under the
//! shim the kernel sees no sync at all (`strace`), the shim accounts for
//! every one sqlite made, the run is faster (both times are printed; a ratio
//! is not asserted on a shared machine), and after a normal exit the
//! database passes `PRAGMA integrity_check` with every row.

mod common;
mod hardening;

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{clean_command, Scratch, Shim};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::ON_EXIT_ENV;

const ROWS: usize = 2_000;
const DROP_SYNCS: &str = "[[rule]]\ncall = [\"fsync\", \"fdatasync\"]\naction = \"drop\"\n";

fn script(scratch: &Scratch) -> std::path::PathBuf {
    let mut text = String::from("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);\n");
    for row in 0..ROWS {
        text.push_str(&format!("INSERT INTO t(v) VALUES('row {row}');\n"));
    }
    let path = scratch.file("inserts.sql");
    std::fs::write(&path, text).unwrap();
    path
}

/// `sqlite3 DB < script` as `shim` says; returns how long it took.
fn insert(scratch: &Scratch, database: &str, shim: Shim, script: &Path) -> Duration {
    let mut command = scratch.command("sqlite3", shim);
    command
        .arg(scratch.file(database))
        .env(ON_EXIT_ENV, "1")
        .stdin(File::open(script).unwrap());
    let started = Instant::now();
    let output = command.output().expect("sqlite3 runs");
    let took = started.elapsed();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "sqlite3: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

fn syncs_in_kernel(scratch: &Scratch, database: &str, shim: Shim, script: &Path) -> usize {
    let mut command = scratch.command("sqlite3", shim);
    command
        .arg(scratch.file(database))
        .arg(format!(".read {}", script.display()));
    let (finished, lines) = hardening::traced(
        scratch,
        &format!("{database}.log"),
        "fsync,fdatasync",
        &mut command,
    );
    finished.assert_success("sqlite3 under strace");
    lines.len()
}

#[test]
fn sqlite_with_syncs_dropped_is_faster_and_intact() {
    if Command::new("sqlite3")
        .arg("-version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("SKIPPED: sqlite3 is not installed");
        return;
    }
    let Some(scratch) = Scratch::on_real_fs() else {
        eprintln!("SKIPPED: no real file system, where fsync costs something");
        return;
    };
    let script = script(&scratch);
    let kernel_syncs = syncs_in_kernel(&scratch, "plain-traced.db", Shim::Off, &script);
    assert!(
        kernel_syncs >= ROWS,
        "sqlite3 synced only {kernel_syncs} times"
    );
    assert_eq!(
        syncs_in_kernel(
            &scratch,
            "shim-traced.db",
            Shim::Policy(DROP_SYNCS),
            &script
        ),
        0
    );
    std::fs::remove_dir_all(scratch.dump_dir()).unwrap();
    std::fs::create_dir(scratch.dump_dir()).unwrap();

    let plain = insert(&scratch, "plain.db", Shim::Off, &script);
    let shimmed = insert(&scratch, "shim.db", Shim::Policy(DROP_SYNCS), &script);
    eprintln!("{ROWS} transactions: {plain:?} without the shim, {shimmed:?} with syncs dropped");

    let dumps = scratch.dumps();
    assert_eq!(dumps.len(), 1, "{:?}", scratch.dump_dir_listing());
    let stats = &dumps[0].1.stats;
    let dropped = stats.call(Call::Fsync).dropped + stats.call(Call::Fdatasync).dropped;
    assert_eq!(
        dropped as usize, kernel_syncs,
        "every sync sqlite made was dropped"
    );
    assert_eq!(
        stats.call(Call::Fsync).passed() + stats.call(Call::Fdatasync).passed(),
        0
    );

    let check = clean_command("sqlite3")
        .arg(scratch.file("shim.db"))
        .arg("PRAGMA integrity_check; SELECT count(*) FROM t;")
        .output()
        .expect("sqlite3 runs");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout),
        format!("ok\n{ROWS}\n")
    );
}
