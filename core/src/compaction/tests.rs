//! The compaction algorithm against a directory in memory that can be made
//! to fail at any step, as a `SIGKILL` would stop a compactor there: after
//! every failure, and after the recovery that follows, a reader counts
//! every call exactly once.

use super::*;
use crate::call::Call;
use crate::histogram::index_of;
use crate::origin::OriginRef;
use crate::retired::render_record;
use crate::stats_file::{bucket_word, decode, mark_complete, write_header, FILE_WORDS};
use std::sync::atomic::{AtomicU64, Ordering};

struct File {
    inode: u64,
    bytes: Vec<u8>,
    alive: bool,
}

#[derive(Default)]
struct FakeDir {
    files: BTreeMap<String, File>,
    exit_log: Vec<String>,
    next_inode: u64,
    next_stem: u64,
    full_scan_due: bool,
    /// Changes (replace, remove) left before the compactor "dies": every
    /// later change fails.
    changes_left: Option<usize>,
    warnings: Vec<String>,
}

impl FakeDir {
    /// A stats file of `exe` with `fsyncs` calls; its name ends with its
    /// nonce, as real ones do.
    fn add_stats(&mut self, exe: &str, fsyncs: u64, alive: bool) -> String {
        let words: Vec<AtomicU64> = (0..FILE_WORDS).map(|_| AtomicU64::new(0)).collect();
        let origin = OriginRef {
            exe: exe.as_bytes(),
            container_id: b"c1",
            ..OriginRef::default()
        };
        self.next_inode += 1;
        let nonce = 0x1000 + self.next_inode;
        write_header(&words, &origin, nonce, 1);
        words[bucket_word(Call::Fsync, index_of(5000))].store(fsyncs, Ordering::Relaxed);
        mark_complete(&words);
        let bytes = words
            .iter()
            .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
            .collect();
        let name = format!("{exe}.{}.1-2.{nonce:016x}.stats", self.next_inode)
            .trim_start_matches('/')
            .replace('/', "_");
        self.files.insert(
            name.clone(),
            File {
                inode: self.next_inode,
                bytes,
                alive,
            },
        );
        name
    }

    /// A process exits: its file is dead, its name logged.
    fn exit(&mut self, name: &str) {
        self.files.get_mut(name).unwrap().alive = false;
        self.exit_log.push(name.to_owned());
    }

    fn may_change(&mut self) -> bool {
        match &mut self.changes_left {
            Some(0) => false,
            Some(left) => {
                *left -= 1;
                true
            }
            None => true,
        }
    }

    /// What a reader counts, by the protocol of `stats_dir`: the summary,
    /// the unmerged segments, and the stats files none of them absorbed.
    fn fsyncs_seen(&mut self) -> u64 {
        let summary = read_summary(self).unwrap();
        let names = self.list();
        let (records, absorbed) = unmerged_records(self, &summary, &names);
        assert_eq!(summary_generation(self), summary.generation);
        let mut total: u64 = summary
            .records
            .iter()
            .chain(&records)
            .map(|record| record.stats.call(Call::Fsync).passed())
            .sum();
        for (_, file) in self
            .files
            .iter()
            .filter(|(name, _)| name.ends_with(".stats"))
        {
            let live = decode(&file.bytes).unwrap();
            if !absorbed.contains(&(file.inode, live.nonce)) {
                total += live.stats.call(Call::Fsync).passed();
            }
        }
        total
    }

    fn count(&self, suffix: &str) -> usize {
        self.files
            .keys()
            .filter(|name| name.ends_with(suffix))
            .count()
    }
}

impl StatsDirectory for FakeDir {
    fn lock_compaction(&mut self) -> bool {
        true
    }
    fn list(&mut self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
    fn take_exit_log(&mut self) -> Vec<String> {
        if self.may_change() {
            std::mem::take(&mut self.exit_log)
        } else {
            Vec::new()
        }
    }
    fn finish_exit_log(&mut self) {}
    fn log_exits(&mut self, names: &[String]) {
        if self.may_change() {
            self.exit_log.extend_from_slice(names);
        }
    }
    fn full_scan_due(&mut self, _seconds: u64) -> bool {
        std::mem::take(&mut self.full_scan_due)
    }
    fn open_dead(&mut self, name: &str) -> Option<DeadFile> {
        let file = self.files.get(name).filter(|file| !file.alive)?;
        Some(DeadFile {
            name: name.into(),
            inode: file.inode,
            bytes: file.bytes.clone(),
        })
    }
    fn read(&mut self, name: &str) -> Option<Vec<u8>> {
        self.files.get(name).map(|file| file.bytes.clone())
    }
    fn replace(&mut self, name: &str, bytes: &[u8]) -> bool {
        if !self.may_change() {
            return false;
        }
        self.next_inode += 1;
        let inode = self.next_inode;
        self.files.insert(
            name.into(),
            File {
                inode,
                bytes: bytes.to_vec(),
                alive: false,
            },
        );
        true
    }
    fn remove(&mut self, name: &str) {
        if self.may_change() {
            self.files.remove(name);
        }
    }
    fn unique_stem(&mut self) -> String {
        self.next_stem += 1;
        format!("{:08}", self.next_stem)
    }
    fn warn(&mut self, name: &str, problem: &str) {
        self.warnings.push(format!("{name}: {problem}"));
    }
}

const FROM_THE_LOG: Budget = Budget {
    folds: 64,
    scope: Scope::ExitLog,
};
const EVERYTHING: Budget = Budget {
    folds: usize::MAX,
    scope: Scope::Everything,
};

#[test]
fn logged_exits_fold_into_one_segment_and_live_files_stay() {
    let mut dir = FakeDir::default();
    let a = dir.add_stats("/bin/dd", 5, true);
    let b = dir.add_stats("/bin/dd", 7, true);
    let c = dir.add_stats("/bin/dd", 11, true);
    dir.exit(&a);
    dir.exit(&b);
    assert_eq!(dir.fsyncs_seen(), 23);
    let done = compact(&mut dir, FROM_THE_LOG);
    assert_eq!(done.folded, 2);
    assert_eq!(dir.fsyncs_seen(), 23);
    assert_eq!(dir.count(".stats"), 1);
    assert_eq!(dir.count(SEGMENT_SUFFIX), 1);
    // A file the log does not name is left for a full scan.
    dir.files.get_mut(&c).unwrap().alive = false;
    assert_eq!(compact(&mut dir, FROM_THE_LOG).folded, 0);
    dir.full_scan_due = true;
    assert_eq!(compact(&mut dir, FROM_THE_LOG).folded, 1);
    assert_eq!(dir.fsyncs_seen(), 23);
    assert_eq!(dir.count(".stats"), 0);
    assert!(dir.warnings.is_empty(), "{:?}", dir.warnings);
}

#[test]
fn a_logged_process_still_exiting_is_logged_again() {
    let mut dir = FakeDir::default();
    let a = dir.add_stats("/bin/a", 1, true);
    dir.exit_log.push(a.clone());
    assert_eq!(compact(&mut dir, FROM_THE_LOG).folded, 0);
    assert_eq!(dir.exit_log, std::slice::from_ref(&a));
    dir.exit(&a);
    assert_eq!(compact(&mut dir, FROM_THE_LOG).folded, 1);
    assert_eq!(dir.fsyncs_seen(), 1);
}

#[test]
fn segments_merge_into_one_summary_of_one_record_per_program() {
    let mut dir = FakeDir::default();
    for round in 0..(3 * MERGE_AT) as u64 {
        let exe = if round % 2 == 0 { "/bin/a" } else { "/bin/b" };
        let name = dir.add_stats(exe, round, true);
        dir.exit(&name);
        compact(&mut dir, FROM_THE_LOG);
        assert!(dir.count(SEGMENT_SUFFIX) < MERGE_AT);
    }
    let expected: u64 = (0..(3 * MERGE_AT) as u64).sum();
    assert_eq!(dir.fsyncs_seen(), expected);
    let summary = read_summary(&mut dir).unwrap();
    assert_eq!(summary.generation, 3);
    assert_eq!(summary.records.len(), 2);
    let processes: u64 = summary.records.iter().map(|record| record.processes).sum();
    assert_eq!(processes, 3 * MERGE_AT as u64);
    // A reader's compaction merges whatever is left.
    compact(&mut dir, EVERYTHING);
    assert_eq!(dir.fsyncs_seen(), expected);
}

#[test]
fn a_compactor_killed_at_any_step_loses_and_doubles_nothing() {
    // Every number of changes a compactor may make before it dies, over a
    // directory that is about to merge, with leftovers of earlier deaths.
    for changes in 0..40 {
        let mut dir = FakeDir::default();
        let mut expected = 0;
        for round in 0..(MERGE_AT as u64 + 3) {
            let name = dir.add_stats("/bin/p", round + 1, true);
            expected += round + 1;
            dir.exit(&name);
            if round == MERGE_AT as u64 - 1 {
                dir.changes_left = Some(changes);
            }
            compact(&mut dir, FROM_THE_LOG);
            assert_eq!(
                dir.fsyncs_seen(),
                expected,
                "{changes} changes, round {round}"
            );
            dir.changes_left = None;
        }
        // Whatever the log lost, a full scan finds.
        dir.full_scan_due = true;
        compact(&mut dir, FROM_THE_LOG);
        compact(&mut dir, EVERYTHING);
        assert_eq!(dir.fsyncs_seen(), expected, "{changes} changes, recovered");
        assert_eq!(dir.count(".stats"), 0, "{changes} changes");
        assert!(dir.count(SEGMENT_SUFFIX) <= 1, "{changes} changes");
    }
}

#[test]
fn old_aggregates_are_read_and_merged_without_loss() {
    let mut dir = FakeDir::default();
    // What an earlier version left: an aggregate that absorbed one file
    // whose compactor died before removing it, and that file.
    let leftover = dir.add_stats("/bin/old", 4, false);
    let nonce = nonce_of_name(&leftover).unwrap();
    let inode = dir.files[&leftover].inode;
    let mut aggregate = crate::retired::empty_aggregate(&crate::origin::Origin {
        exe: "/bin/old".into(),
        container_id: "c1".into(),
        ..Default::default()
    });
    aggregate.processes = 3;
    aggregate.stats.call_mut(Call::Fsync).buckets[index_of(5000)] = 10;
    aggregate.absorbed = vec![(inode, nonce, 1)];
    dir.replace("old.0123456789abcdef.retired", &render_record(&aggregate));
    let fresh = dir.add_stats("/bin/old", 2, false);
    dir.exit(&fresh);
    assert_eq!(dir.fsyncs_seen(), 12);
    compact(&mut dir, EVERYTHING);
    assert_eq!(dir.fsyncs_seen(), 12);
    assert_eq!(dir.count(RETIRED_SUFFIX), 0);
    assert_eq!(dir.count(".stats"), 0);
    let summary = read_summary(&mut dir).unwrap();
    assert_eq!(summary.records.len(), 1);
    assert_eq!(summary.records[0].processes, 4);
}
