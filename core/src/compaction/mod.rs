//! Retiring exited processes' stats files: the one algorithm, run by an
//! exiting process (inside the preload library) and by every reader
//! (report, top, serve), over a `StatsDirectory` each of them implements
//! with its own system calls.
//!
//! The work an exit does is constant, whatever the host's history: it
//! appends its stats file's name to the directory's exit log (`.exits`, one
//! `O_APPEND` write). Whoever finds the log long enough, and the compaction
//! lock free, drains it: the dead files it names are folded into one new,
//! immutable *segment* (`retired`), which lists their identities; the
//! segment's rename into place is the commit, and only then are the files
//! removed. Once there are `MERGE_AT` segments, they are merged into the
//! directory's one *summary*. Nothing grows with the number of processes
//! seen: a segment holds one drain's files, the summary one record per
//! container, pod and executable. A process killed before it could log its
//! exit is found by a full scan, done at most every `FULL_SCAN_SECONDS` by a
//! compactor and by every reader.
//!
//! Nothing is lost or counted twice, whatever is killed where:
//!
//! - one compactor at a time (a lock; a busy lock means someone else is at
//!   it, and the caller goes on without waiting);
//! - a file a segment lists but that is still there (its compactor died
//!   after the commit) is removed by the next compactor, not folded again,
//!   and skipped by readers;
//! - a merge removes such leftovers of the segments it takes, commits the
//!   summary (a new generation, naming the segments taken), then removes the
//!   segments; the next compactor removes any it left. Readers skip a
//!   segment the summary names.
//!
//! Readers take the summary's generation, read the stats files, then the
//! segments, and read again if the generation moved meanwhile (a merge
//! happened): a stats file removed between their reading it and reading the
//! segments is then in a segment they read, and skipped (`ReadPlan`).
//!
//! Directories written by earlier versions hold one aggregate per
//! executable (`*.retired`, the dump format, with `absorbed` lines): they
//! are read like segments and merged into the summary like them.

use std::collections::{BTreeMap, BTreeSet};

use crate::dump::{parse_dump, Dump, FILE_SUFFIX};
use crate::retired::{
    aggregate_key, empty_aggregate, fold_record, is_retired_file, parse_file, parse_head,
    render as render_file, Absorbed, Kind, RetiredFile, SEGMENT_SUFFIX, SUMMARY_NAME,
};
use crate::stats_file::{decode_adding, is_incomplete, nonce_of};

/// File-name suffix of the aggregates earlier versions kept.
pub const RETIRED_SUFFIX: &str = ".retired";
/// The exit log: names of stats files whose processes have exited.
pub const EXIT_LOG: &str = ".exits";
/// The exit log while a drain deals with its names.
pub const DRAINING_LOG: &str = ".exits.draining";
/// A log this long is drained by the exit that makes it so (4 to 15
/// names, by the length of the executables' names): the dead files waiting
/// stay few — exits go on while a drain or a reader holds the lock — and a
/// drain's listing of the directory is shared by that many exits.
pub const DRAIN_AT_BYTES: u64 = 512;
/// What a drain reads of the log at most (a larger one is not ours).
pub const MAX_LOG_BYTES: usize = 64 << 10;
/// Segments merged into the summary once there are this many.
pub const MERGE_AT: usize = 8;
/// How often a compactor looks at every stats file, for processes that
/// died without logging their exit (`SIGKILL`, a crash).
pub const FULL_SCAN_SECONDS: u64 = 10;

/// A stats file's identity: its inode (the kernel's) and its nonce (the
/// file's).
pub type FileId = (u64, u64);

/// A stats file opened by a compactor, which holds its lock: its writer is
/// dead, and no other compactor can take it.
pub struct DeadFile {
    pub name: String,
    pub inode: u64,
    pub bytes: Vec<u8>,
}

/// What a compactor needs of a stats directory.
pub trait StatsDirectory {
    /// Takes the directory's compaction lock without waiting; false if
    /// another compactor holds it.
    fn lock_compaction(&mut self) -> bool;
    /// Names of the stats files, segments, summary and old aggregates (dot
    /// files excluded), in any order.
    fn list(&mut self) -> Vec<String>;
    /// The names in the exit log, taking the log away: renamed aside and
    /// read — or, if a log set aside is still there (its drain was
    /// killed), that one. A name appended to a log after it was read is
    /// lost to it, and found by the next full scan.
    fn take_exit_log(&mut self) -> Vec<String>;
    /// Removes the log set aside by `take_exit_log`, once its names are
    /// dealt with.
    fn finish_exit_log(&mut self);
    /// Appends names to the exit log.
    fn log_exits(&mut self, names: &[String]);
    /// Whether no full scan was done for `seconds`; if so, one is counted
    /// as done now.
    fn full_scan_due(&mut self, seconds: u64) -> bool;
    /// Opens a stats file and takes its lock, if its writer is dead: its
    /// contents and inode. `None` if it is alive, gone or unreadable.
    fn open_dead(&mut self, name: &str) -> Option<DeadFile>;
    /// The contents of a segment, summary or old aggregate, if it exists.
    fn read(&mut self, name: &str) -> Option<Vec<u8>>;
    /// Replaces (or creates) a file, atomically.
    fn replace(&mut self, name: &str, bytes: &[u8]) -> bool;
    fn remove(&mut self, name: &str);
    /// Something unique to this compaction (time and pid), for naming its
    /// segment.
    fn unique_stem(&mut self) -> String;
    /// A file this compactor cannot use: one line, naming it.
    fn warn(&mut self, name: &str, problem: &str);
    /// Takes back the bytes of a dead file once they are decoded, for the
    /// next `open_dead` to reuse (a stats file is ~400 KiB).
    fn recycle(&mut self, _bytes: Vec<u8>) {}
}

/// Which stats files a compaction looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Those the exit log names (and all, if a full scan is due).
    ExitLog,
    /// All of them: what readers do.
    Everything,
}

/// How much one compaction may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Dead files folded at most.
    pub folds: usize,
    pub scope: Scope,
}

/// How much a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub folded: usize,
    pub removed_incomplete: usize,
    /// Segments and old aggregates merged into the summary.
    pub merged: usize,
}

/// The stats-file names an exit log holds (one a line; anything else, a
/// line too long or a name with a slash, is skipped: the log is as
/// writable as the directory).
pub fn names_in_log(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&byte| byte == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter(|name| {
            name.len() <= 255
                && !name.starts_with('.')
                && !name.contains('/')
                && name.ends_with(crate::stats_file::FILE_SUFFIX)
        })
        .map(str::to_owned)
        .collect()
}

/// The nonce a stats file's name ends with (`<stem>.<nonce>.stats`).
pub fn nonce_of_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(crate::stats_file::FILE_SUFFIX)?;
    let (_, nonce) = stem.rsplit_once('.')?;
    (nonce.len() == 16)
        .then(|| u64::from_str_radix(nonce, 16).ok())
        .flatten()
}

/// What the retired files of a directory say, as one compaction or read
/// found them.
struct Retired {
    summary: Option<RetiredFile>,
    /// Segments and old aggregates not yet merged.
    unmerged: Vec<String>,
    /// Nonces of the stats files they absorbed.
    absorbed: BTreeSet<u64>,
}

fn read_retired(dir: &mut impl StatsDirectory, names: &[String]) -> Option<Retired> {
    let summary = if names.iter().any(|name| name == SUMMARY_NAME) {
        let bytes = dir.read(SUMMARY_NAME)?;
        match parse_head(&bytes) {
            Ok(summary) if summary.kind == Kind::Summary => Some(summary),
            Ok(_) => {
                dir.warn(SUMMARY_NAME, "not a summary");
                return None;
            }
            Err(problem) => {
                dir.warn(SUMMARY_NAME, &problem);
                return None;
            }
        }
    } else {
        None
    };
    let merged: BTreeSet<&String> = summary.iter().flat_map(|summary| &summary.merged).collect();
    let mut retired = Retired {
        unmerged: Vec::new(),
        absorbed: BTreeSet::new(),
        summary: None,
    };
    for name in names {
        if merged.contains(name) {
            // The last merge took it in and died before removing it.
            dir.remove(name);
            continue;
        }
        if name.ends_with(SEGMENT_SUFFIX) {
            let Some(bytes) = dir.read(name) else {
                continue;
            };
            match parse_head(&bytes) {
                Ok(segment) => retired
                    .absorbed
                    .extend(segment.absorbed.iter().map(|absorbed| absorbed.nonce)),
                Err(problem) => {
                    dir.warn(name, &problem);
                    continue;
                }
            }
            retired.unmerged.push(name.clone());
        } else if name.ends_with(RETIRED_SUFFIX) {
            let Some((_, identities)) = read_unmerged(dir, name) else {
                continue;
            };
            retired
                .absorbed
                .extend(identities.iter().map(|&(_, nonce, _)| nonce));
            retired.unmerged.push(name.clone());
        }
    }
    retired.summary = summary;
    Some(retired)
}

/// Identities (inode, nonce, time or 0) of the stats files a segment or an
/// old aggregate absorbed, as `Dump::absorbed` holds them.
type Identities = Vec<(u64, u64, u64)>;

/// A segment or an old aggregate, read whole: its records, and the
/// identities of the stats files it absorbed; `None`, with a warning, if
/// it cannot be read.
fn read_unmerged(dir: &mut impl StatsDirectory, name: &str) -> Option<(Vec<Dump>, Identities)> {
    let bytes = dir.read(name)?;
    if name.ends_with(SEGMENT_SUFFIX) {
        match parse_file(&bytes) {
            Ok(segment) => {
                let identities = segment
                    .absorbed
                    .iter()
                    .map(|absorbed| (absorbed.inode, absorbed.nonce, 0))
                    .collect();
                Some((segment.records, identities))
            }
            Err(problem) => {
                dir.warn(name, &problem);
                None
            }
        }
    } else {
        match parse_dump(&String::from_utf8_lossy(&bytes)) {
            Ok(mut aggregate) => {
                let identities = std::mem::take(&mut aggregate.absorbed);
                Some((vec![aggregate], identities))
            }
            Err(error) => {
                dir.warn(name, &error.to_string());
                None
            }
        }
    }
}

/// Retires dead stats files into a new segment, within `budget`, and merges
/// the segments into the summary once there are enough.
pub fn compact(dir: &mut impl StatsDirectory, budget: Budget) -> Compacted {
    let mut done = Compacted::default();
    if !dir.lock_compaction() {
        return done;
    }
    let names = dir.list();
    // A summary that cannot be read is left alone: retiring more into
    // segments is safe, merging into it is not.
    let Some(mut retired) = read_retired(dir, &names) else {
        return done;
    };
    let stats_files: BTreeSet<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|name| name.ends_with(crate::stats_file::FILE_SUFFIX))
        .collect();
    let logged = dir.take_exit_log();
    // Every file is looked at by readers, by the drain that will merge (so
    // at least once every `MERGE_AT` drains), and every
    // `FULL_SCAN_SECONDS`: processes killed before they could log their
    // exit are found that way.
    let everything = budget.scope == Scope::Everything
        || retired.unmerged.len() + 1 >= MERGE_AT
        || dir.full_scan_due(FULL_SCAN_SECONDS);
    let candidates: Vec<&str> = if everything {
        stats_files.iter().copied().collect()
    } else {
        let mut seen = BTreeSet::new();
        logged
            .iter()
            .map(String::as_str)
            .filter(|name| stats_files.contains(name) && seen.insert(*name))
            .collect()
    };
    let logged: BTreeSet<&str> = logged.iter().map(String::as_str).collect();
    let mut segment = RetiredFile::new(Kind::Segment);
    let mut records = BTreeMap::new();
    let mut log_again = Vec::new();
    for (index, &name) in candidates.iter().enumerate() {
        if done.folded >= budget.folds {
            log_again.extend(
                candidates[index..]
                    .iter()
                    .filter(|name| logged.contains(*name))
                    .map(|name| name.to_string()),
            );
            break;
        }
        let Some(file) = dir.open_dead(name) else {
            // Still exiting (its lock goes with its last thread).
            if logged.contains(name) {
                log_again.push(name.to_owned());
            }
            continue;
        };
        if retired.absorbed.contains(&nonce_of(&file.bytes)) {
            // A segment has it; its compactor died before removing it.
            dir.recycle(file.bytes);
            dir.remove(name);
            continue;
        }
        // Its counts go straight into its program's record.
        let mut key = None;
        let decoded = decode_adding(&file.bytes, |origin| {
            let entry = records
                .entry(aggregate_key(origin))
                .or_insert_with(|| empty_aggregate(origin));
            key = Some(aggregate_key(origin));
            &mut entry.stats
        });
        dir.recycle(file.bytes);
        let head = match decoded {
            Ok(head) => head,
            Err(error) if is_incomplete(&error) => {
                // Its writer died while creating it: nothing was counted.
                dir.remove(name);
                done.removed_incomplete += 1;
                continue;
            }
            Err(error) => {
                dir.warn(name, &error.0);
                continue;
            }
        };
        if let Some(record) = key.and_then(|key| records.get_mut(&key)) {
            record.processes += 1;
            record.unix_time = record.unix_time.max(head.created);
        }
        segment.absorbed.push(Absorbed {
            inode: file.inode,
            nonce: head.nonce,
            name: name.to_owned(),
        });
        done.folded += 1;
    }
    if !log_again.is_empty() {
        dir.log_exits(&log_again);
    }
    // The names taken are all retired, logged again or gone.
    dir.finish_exit_log();
    if done.folded > 0 {
        segment.records = records.into_values().collect();
        let name = format!("retired.{}{SEGMENT_SUFFIX}", dir.unique_stem());
        if dir.replace(&name, &render_file(&segment)) {
            for absorbed in &segment.absorbed {
                dir.remove(&absorbed.name);
            }
            retired.unmerged.push(name);
        }
    }
    let enough = retired.unmerged.len() >= MERGE_AT
        || (budget.scope == Scope::Everything && retired.unmerged.len() > 1);
    if enough {
        done.merged = merge(dir, &retired, &stats_files);
    }
    done
}

/// Merges the unmerged segments and old aggregates into the summary: their
/// leftover stats files removed, the summary committed, then they are
/// removed. The number merged.
fn merge(dir: &mut impl StatsDirectory, retired: &Retired, stats_files: &BTreeSet<&str>) -> usize {
    let mut summary = match &retired.summary {
        Some(_) => match dir.read(SUMMARY_NAME).map(|bytes| parse_file(&bytes)) {
            Some(Ok(summary)) => summary,
            Some(Err(problem)) => {
                dir.warn(SUMMARY_NAME, &problem);
                return 0;
            }
            None => return 0,
        },
        None => RetiredFile::new(Kind::Summary),
    };
    let mut records = BTreeMap::new();
    for record in &summary.records {
        fold_record(&mut records, record);
    }
    let mut merged = Vec::new();
    for name in &retired.unmerged {
        let Some((file_records, identities)) = read_unmerged(dir, name) else {
            continue;
        };
        // Stats files it absorbed that are still here (their compactor was
        // killed before removing them) go before the summary has them.
        let absorbed: BTreeSet<u64> = identities.iter().map(|&(_, nonce, _)| nonce).collect();
        for name in stats_files {
            if nonce_of_name(name).is_some_and(|nonce| absorbed.contains(&nonce)) {
                dir.remove(name);
            }
        }
        for record in &file_records {
            fold_record(&mut records, record);
        }
        merged.push(name.clone());
    }
    if merged.is_empty() {
        return 0;
    }
    summary.generation += 1;
    summary.records = records.into_values().collect();
    summary.merged = merged;
    if !dir.replace(SUMMARY_NAME, &render_file(&summary)) {
        return 0;
    }
    for name in &summary.merged {
        dir.remove(name);
    }
    summary.merged.len()
}

/// The summary as a reader takes it first: its generation and records (an
/// empty one if there is none yet).
pub fn read_summary(dir: &mut impl StatsDirectory) -> Result<RetiredFile, String> {
    match dir.read(SUMMARY_NAME) {
        None => Ok(RetiredFile::new(Kind::Summary)),
        Some(bytes) => parse_file(&bytes).and_then(|summary| match summary.kind {
            Kind::Summary => Ok(summary),
            Kind::Segment => Err("not a summary".into()),
        }),
    }
}

/// The summary's generation now (0 if there is none or it cannot be read):
/// a reader that finds it moved since `read_summary` reads again.
pub fn summary_generation(dir: &mut impl StatsDirectory) -> u64 {
    dir.read(SUMMARY_NAME)
        .and_then(|bytes| parse_head(&bytes).ok())
        .map_or(0, |summary| summary.generation)
}

/// What the segments and old aggregates among `names` add to `summary`:
/// their records (the first of each carrying the identities its file
/// absorbed, so that dumps of those processes are recognised), and the
/// identities of the stats files they absorbed. Those the summary names as
/// merged are skipped: it has their counts.
pub fn unmerged_records(
    dir: &mut impl StatsDirectory,
    summary: &RetiredFile,
    names: &[String],
) -> (Vec<Dump>, BTreeSet<FileId>) {
    let merged: BTreeSet<&String> = summary.merged.iter().collect();
    let mut records = Vec::new();
    let mut absorbed = BTreeSet::new();
    for name in names {
        if !name.ends_with(SEGMENT_SUFFIX) && !name.ends_with(RETIRED_SUFFIX) {
            continue;
        }
        let Some((mut file_records, identities)) = read_unmerged(dir, name) else {
            continue;
        };
        absorbed.extend(identities.iter().map(|&(inode, nonce, _)| (inode, nonce)));
        // Identities count even for a segment merged meanwhile: the stats
        // files it absorbed may have been read before they went.
        if merged.contains(name) {
            continue;
        }
        if let Some(first) = file_records.first_mut() {
            first.absorbed = identities;
        }
        records.append(&mut file_records);
    }
    (records, absorbed)
}

/// Whether a file name is one a reader takes: a dump, a stats file, a
/// segment, the summary or an old aggregate (never a dot file, which is a
/// writer's temporary).
pub fn is_statistics_file(name: &str) -> bool {
    !name.starts_with('.')
        && (name.ends_with(FILE_SUFFIX)
            || name.ends_with(crate::stats_file::FILE_SUFFIX)
            || name.ends_with(RETIRED_SUFFIX)
            || is_retired_file(name))
}

#[cfg(test)]
mod tests;
