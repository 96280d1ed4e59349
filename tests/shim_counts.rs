//! Counts in dumps are exact: many threads calling at once lose nothing, and
//! after fork each process counts only its own calls (with live statistics
//! and without), even when a thread of the parent was inside a hook at the
//! fork and the child leaves with _exit.

mod common;

use std::collections::BTreeMap;

use common::{c_program, counts, run, table_row, Scratch, Shim, DROP_ALL, TIMEOUT};
use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::policy::{ON_EXIT_ENV, STATS_DIR_ENV};

const THREADS: u64 = 8;
const CALLS_PER_THREAD: u64 = 20_000;
const TOTAL: u64 = THREADS * CALLS_PER_THREAD;

/// Runs `threads` at exit-dump time and returns its only dump and its text.
fn threads_dump(scratch: &Scratch, shim: Shim) -> (Dump, String) {
    let mut command = scratch.command(c_program("threads"), shim);
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("small.data"))
        .arg(THREADS.to_string())
        .arg(CALLS_PER_THREAD.to_string());
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("threads");
    assert_eq!(finished.stdout, format!("calls {TOTAL} failed 0\n"));
    if matches!(shim, Shim::Default) {
        assert_eq!(
            finished.stderr, "",
            "the shim printed something with no policy"
        );
    }
    let mut dumps = scratch.dumps();
    assert_eq!(
        dumps.len(),
        1,
        "one dump expected: {:?}",
        scratch.dump_dir_listing()
    );
    let (name, dump) = dumps.pop().unwrap();
    let text = std::fs::read_to_string(scratch.dump_dir().join(name)).unwrap();
    (dump, text)
}

/// No call outside `calls` appears in the dump.
fn assert_only(dump: &Dump, calls: &[Call]) {
    for (call, stats) in dump.stats.made() {
        assert!(
            calls.contains(&call),
            "pid {}: unexpected {call:?}: {stats:?}",
            dump.origin.pid
        );
    }
}

#[test]
fn eight_threads_lose_no_passed_call() {
    let scratch = Scratch::new();
    let (dump, text) = threads_dump(&scratch, Shim::Default);
    let fadvise = dump.stats.call(Call::PosixFadvise);
    assert_eq!(counts(fadvise), (TOTAL, TOTAL, 0, 0, 0), "{text}");
    assert_only(&dump, &[Call::PosixFadvise]);
    assert_eq!(dump.reason, "exit");
    // The table people read says the same, and count = passed + dropped + limited.
    let row = table_row(&text, Call::PosixFadvise).expect("table row");
    assert_eq!(row, vec![TOTAL, TOTAL, 0, 0, 0], "{text}");
}

#[test]
fn eight_threads_lose_no_dropped_call() {
    let scratch = Scratch::new();
    let (dump, text) = threads_dump(&scratch, Shim::Policy(DROP_ALL));
    let fadvise = dump.stats.call(Call::PosixFadvise);
    assert_eq!(counts(fadvise), (TOTAL, 0, TOTAL, 0, 0), "{text}");
    assert_only(&dump, &[Call::PosixFadvise]);
    let row = table_row(&text, Call::PosixFadvise).expect("table row");
    assert_eq!(row, vec![TOTAL, 0, TOTAL, 0, 0], "{text}");
}

const CHILDREN: u32 = 40;

#[test]
fn forked_children_dump_only_their_own_calls() {
    forked_children_dump(false);
}

/// With statistics off, the counts live in the library's private memory,
/// which a forked child clears without reading it (`MADV_DONTNEED`), and
/// each process reads who it is at its dump rather than at its first call.
#[test]
fn forked_children_dump_only_their_own_calls_with_statistics_off() {
    forked_children_dump(true);
}

fn forked_children_dump(statistics_off: bool) {
    let scratch = Scratch::new();
    let mut command = scratch.command(c_program("fork_children"), Shim::Default);
    if statistics_off {
        command.env(STATS_DIR_ENV, "none");
    }
    command
        .env(ON_EXIT_ENV, "1")
        .arg(scratch.file("small.data"))
        .arg(CHILDREN.to_string());
    // `run` kills the whole process group and fails if anything hangs.
    let finished = run(&mut command, TIMEOUT);
    finished.assert_success("fork_children");
    assert_eq!(
        finished.stderr, "",
        "the shim printed something with no policy"
    );

    // Expected posix_fadvise and fdatasync counts per pid, from the program.
    let mut expected: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut parent = 0;
    for line in finished.stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |index: usize| -> u64 { words[index].parse().expect("number") };
        match words[0] {
            "child" => {
                expected.insert(number(1) as u32, (number(2), 0));
            }
            "parent" => {
                parent = number(1) as u32;
                expected.insert(parent, (number(3), number(5)));
            }
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert_eq!(expected.len(), CHILDREN as usize + 2, "{finished}");

    let dumps = scratch.dumps();
    assert_eq!(
        dumps.len(),
        CHILDREN as usize + 2,
        "one dump per process expected; dump dir holds {:?}",
        scratch.dump_dir_listing()
    );
    assert_eq!(scratch.dump_dir_listing().len(), dumps.len(), "stray files");
    let mut wrong = Vec::new();
    for (name, dump) in &dumps {
        let Some(&(fadvise, fdatasync)) = expected.get(&dump.origin.pid) else {
            wrong.push(format!(
                "{name}: pid {} is not one of ours",
                dump.origin.pid
            ));
            continue;
        };
        let actual = (
            dump.stats.call(Call::PosixFadvise).count(),
            dump.stats.call(Call::Fdatasync).count(),
        );
        let others: u64 = dump
            .stats
            .made()
            .filter(|(call, _)| !matches!(call, Call::PosixFadvise | Call::Fdatasync))
            .map(|(_, stats)| stats.count())
            .sum();
        if actual != (fadvise, fdatasync) || others != 0 {
            wrong.push(format!(
                "{name}: posix_fadvise {} fdatasync {} other {others}, expected {fadvise} and {fdatasync}",
                actual.0, actual.1
            ));
        }
        if dump.origin.pid != parent && dump.ppid != parent {
            wrong.push(format!(
                "{name}: ppid {} is not the parent {parent}",
                dump.ppid
            ));
        }
        if dump.reason != "exit" {
            wrong.push(format!("{name}: reason {}", dump.reason));
        }
        // The identity is the dumping process's own, read in full.
        let origin = &dump.origin;
        if origin.start_ticks == 0 || origin.pid_namespace == 0 || origin.hostname.is_empty() {
            wrong.push(format!("{name}: identity not read: {origin:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}\n{finished}", wrong.join("\n"));
}
