//! `fadvise-shim run`: the program runs under the shim with the exit dump
//! on, the merged table lands on stderr with the same counts the kernel saw
//! (strace), and the exit status is the program's.

mod common;

use common::{clean_command, cli, run, table_row, Scratch, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::policy::DUMP_DIR_ENV;

/// dd's arguments for 2,000 blocks of 64 KiB written with `oflag=nocache`,
/// which calls posix_fadvise(DONTNEED) every 128 KiB.
fn dd_nocache(output: &std::path::Path) -> Vec<String> {
    vec![
        "if=/dev/zero".into(),
        format!("of={}", output.display()),
        "bs=64k".into(),
        "count=2000".into(),
        "oflag=nocache".into(),
    ]
}

/// `fadvise-shim run --dump-dir DUMPS -- ARGS…`, with the dump directory
/// also in the environment so nothing can reach the default one.
fn shim_run(scratch: &Scratch, program: &[&str]) -> common::Finished {
    let mut command = clean_command(cli());
    command
        .env(DUMP_DIR_ENV, scratch.dump_dir())
        .arg("run")
        .arg("--dump-dir")
        .arg(scratch.dump_dir())
        .arg("--")
        .args(program);
    run(&mut command, TIMEOUT)
}

#[test]
fn run_reports_every_posix_fadvise_of_dd_nocache() {
    let Some(scratch) = Scratch::on_real_fs() else {
        eprintln!("skipped: no real (non-tmpfs) file system for dd oflag=nocache");
        return;
    };
    // What the kernel sees, first.
    let log = scratch.file("dd.strace");
    let mut strace = clean_command("strace");
    strace
        .args(["-f", "-e", "trace=fadvise64", "-o"])
        .arg(&log)
        .arg("dd")
        .args(dd_nocache(&scratch.file("traced.data")));
    run(&mut strace, TIMEOUT).assert_success("strace dd");
    let log = std::fs::read_to_string(log).unwrap();
    let real = log
        .lines()
        .filter(|line| line.contains("fadvise64("))
        .count() as u64;
    assert!(
        (900..=1100).contains(&real),
        "dd made {real} fadvise64 calls:\n{log}"
    );

    let dd = dd_nocache(&scratch.file("shimmed.data"));
    let mut program = vec!["dd"];
    program.extend(dd.iter().map(String::as_str));
    let finished = shim_run(&scratch, &program);
    finished.assert_success("fadvise-shim run dd");
    let row = table_row(&finished.stderr, Call::PosixFadvise)
        .unwrap_or_else(|| panic!("no posix_fadvise row\n{finished}"));
    assert_eq!(
        row,
        vec![real, real, 0, 0, 0],
        "count passed dropped limited errors\n{finished}"
    );
    assert!(
        finished.stderr.contains("records out"),
        "dd's own stderr is kept\n{finished}"
    );
}

#[test]
fn run_exits_with_the_program_status() {
    let scratch = Scratch::new();
    let finished = shim_run(&scratch, &["sh", "-c", "exit 3"]);
    assert_eq!(finished.status.code(), Some(3), "{finished}");
}

#[test]
fn run_of_a_missing_program_fails_with_one_line() {
    let scratch = Scratch::new();
    let missing = scratch.file("no-such-program");
    let finished = shim_run(&scratch, &[missing.to_str().unwrap()]);
    assert!(!finished.status.success(), "{finished}");
    assert_eq!(finished.stderr.lines().count(), 1, "{finished}");
    assert!(finished.stderr.starts_with("fadvise-shim: "), "{finished}");
    assert!(finished.stderr.contains("no-such-program"), "{finished}");
}
