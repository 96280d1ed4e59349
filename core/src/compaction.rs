//! Retiring dead processes' stats files: the one algorithm, run by an
//! exiting process (inside the preload library, a bounded amount) and by
//! every reader (report, top, serve), over a `StatsDirectory` each of them
//! implements with its own system calls.
//!
//! A dead process's file (one whose lock nobody holds) is folded into the
//! retained aggregate of its container and executable, `<exe>.<key>.retired`
//! (the dump format, with `processes` and `absorbed` lines), and removed, so
//! the directory stays bounded. Nothing is lost or counted twice, whatever
//! crashes where:
//!
//! - one compactor at a time (a lock on the directory; a busy lock means
//!   someone else is at it, and the caller goes on without waiting);
//! - the aggregate is replaced by rename: the new version, holding the dead
//!   file's counts and its identity (inode, nonce) in `absorbed`, is the
//!   commit; only then is the file removed;
//! - a file whose identity an aggregate lists is not counted again, by
//!   readers or compactors, until it is gone; identities of files that are
//!   gone are dropped at the next compaction.
//!
//! Readers keep counts monotonic by opening the stats files first and reading
//! the aggregates after: a file removed in between is then in the aggregate
//! they read.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};

use crate::dump::{parse_dump, write_dump, Dump, Header, NoBudgets, Reason, FILE_SUFFIX};
use crate::origin::{Origin, OriginRef};
use crate::stats_file::{decode, is_incomplete, LiveStats};

/// How long an aggregate lists a file it absorbed after the file is gone.
pub const KEEP_ABSORBED_SECONDS: u64 = 60;

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// File-name suffix of retained aggregates.
pub const RETIRED_SUFFIX: &str = ".retired";

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
    /// Names of the entries ending in `.stats` and `.retired` (dot files
    /// excluded), in directory order.
    fn list(&mut self) -> Vec<String>;
    /// Opens a stats file and takes its lock, if its writer is dead: its
    /// contents and inode. `None` if it is alive, gone or unreadable.
    fn open_dead(&mut self, name: &str) -> Option<DeadFile>;
    /// The inode of an entry, without opening it for good.
    fn inode(&mut self, name: &str) -> Option<u64>;
    /// The contents of a retained aggregate, if it exists.
    fn read(&mut self, name: &str) -> Option<Vec<u8>>;
    /// Replaces (or creates) a retained aggregate, atomically.
    fn replace(&mut self, name: &str, bytes: &[u8]) -> bool;
    fn remove(&mut self, name: &str);
    /// A file this compactor cannot use: one line, naming it.
    fn warn(&mut self, name: &str, problem: &str);
}

/// How much a compaction did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compacted {
    pub folded: usize,
    pub removed_incomplete: usize,
}

/// The aggregate key of a process: container, pod and executable.
pub fn retired_name(origin: &Origin) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&origin.container_id, &origin.pod_uid, origin.exe_name()).hash(&mut hasher);
    let exe: String = origin
        .exe_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{exe}.{:016x}{RETIRED_SUFFIX}", hasher.finish())
}

/// How much one compaction may do.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Dead files folded at most.
    pub folds: usize,
    /// Stats files looked at at most (an exiting process must not pay for
    /// a thousand live neighbours).
    pub looks: usize,
    /// Where in the listing to start looking (so that bounded compactions
    /// do not all look at the same files).
    pub start: usize,
}

impl Budget {
    /// No bound: what readers use.
    pub const ALL: Budget = Budget {
        folds: usize::MAX,
        looks: usize::MAX,
        start: 0,
    };
}

/// Folds dead stats files into their aggregates, within `budget`.
pub fn compact(dir: &mut impl StatsDirectory, budget: Budget) -> Compacted {
    let mut done = Compacted::default();
    if !dir.lock_compaction() {
        return done;
    }
    let names = dir.list();
    let now = unix_seconds();
    let mut aggregates: BTreeMap<String, Dump> = BTreeMap::new();
    let mut touched: BTreeSet<String> = BTreeSet::new();
    let mut absorbed_files: Vec<String> = Vec::new();
    // Files that an aggregate already holds but that are still here (a
    // compactor died between the rename and the removal): remove them.
    let mut already: BTreeSet<FileId> = BTreeSet::new();
    for name in names.iter().filter(|name| name.ends_with(RETIRED_SUFFIX)) {
        if let Some(aggregate) = read_aggregate(dir, name) {
            already.extend(
                aggregate
                    .absorbed
                    .iter()
                    .map(|&(inode, nonce, _)| (inode, nonce)),
            );
            aggregates.insert(name.clone(), aggregate);
        }
    }
    let stats_files: Vec<&String> = names
        .iter()
        .filter(|name| name.ends_with(crate::stats_file::FILE_SUFFIX))
        .collect();
    let start = if stats_files.is_empty() {
        0
    } else {
        budget.start % stats_files.len()
    };
    let rotated = stats_files[start..].iter().chain(&stats_files[..start]);
    for name in rotated.take(budget.looks) {
        if done.folded >= budget.folds {
            break;
        }
        let Some(file) = dir.open_dead(name) else {
            continue;
        };
        let live: LiveStats = match decode(&file.bytes) {
            Ok(live) => live,
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
        let id = (file.inode, live.nonce);
        if already.contains(&id) {
            dir.remove(name);
            continue;
        }
        let key = retired_name(&live.origin);
        touched.insert(key.clone());
        let aggregate = aggregates
            .entry(key)
            .or_insert_with(|| empty_aggregate(&live.origin));
        aggregate.stats.merge(&live.stats);
        aggregate.processes += 1;
        aggregate.absorbed.push((id.0, id.1, now));
        aggregate.unix_time = aggregate.unix_time.max(live.created);
        absorbed_files.push((*name).clone());
        done.folded += 1;
    }
    // Identities worth keeping: those of files still in the directory (an
    // inode reused by a new file is harmless: its nonce differs), and for a
    // while those of files just removed, which a reader may have read just
    // before: it must still find them listed, or count them twice.
    let present_inodes: BTreeSet<u64> = names
        .iter()
        .filter(|name| name.ends_with(crate::stats_file::FILE_SUFFIX))
        .filter_map(|name| dir.inode(name))
        .collect();
    let mut committed = true;
    for (name, aggregate) in &mut aggregates {
        let before = aggregate.absorbed.len();
        aggregate.absorbed.retain(|(inode, _, at)| {
            present_inodes.contains(inode) || now.saturating_sub(*at) < KEEP_ABSORBED_SECONDS
        });
        let changed = aggregate.absorbed.len() != before || touched.contains(name);
        if changed && !dir.replace(name, &render(aggregate)) {
            committed = false;
        }
    }
    if committed {
        for name in &absorbed_files {
            dir.remove(name);
        }
    }
    done
}

fn read_aggregate(dir: &mut impl StatsDirectory, name: &str) -> Option<Dump> {
    let bytes = dir.read(name)?;
    match parse_dump(&String::from_utf8_lossy(&bytes)) {
        Ok(dump) => Some(dump),
        Err(error) => {
            dir.warn(name, &error.to_string());
            None
        }
    }
}

fn empty_aggregate(origin: &Origin) -> Dump {
    Dump {
        origin: Origin {
            exe: origin.exe.clone(),
            container_id: origin.container_id.clone(),
            pod_uid: origin.pod_uid.clone(),
            cgroup: origin.cgroup.clone(),
            hostname: origin.hostname.clone(),
            ..Origin::default()
        },
        reason: "retired".into(),
        processes: 0,
        ..Dump::default()
    }
}

/// An aggregate in the dump format.
pub fn render(aggregate: &Dump) -> Vec<u8> {
    let origin = &aggregate.origin;
    let header = Header {
        origin: OriginRef {
            exe: origin.exe.as_bytes(),
            cgroup: origin.cgroup.as_bytes(),
            container_id: origin.container_id.as_bytes(),
            pod_uid: origin.pod_uid.as_bytes(),
            hostname: origin.hostname.as_bytes(),
            ..OriginRef::default()
        },
        ppid: 0,
        policy: b"",
        signal: "none",
        reason: Reason::Retired,
        unix_time: aggregate.unix_time,
        budgets: &NoBudgets,
        processes: aggregate.processes,
        absorbed: &aggregate.absorbed,
        stats_dir: None,
    };
    let mut out = Vec::new();
    write_dump(&mut out, &header, &aggregate.stats);
    out
}

/// Whether a file name is one a reader takes: a dump, a stats file or an
/// aggregate (never a dot file, which is a writer's temporary).
pub fn is_statistics_file(name: &str) -> bool {
    !name.starts_with('.')
        && (name.ends_with(FILE_SUFFIX)
            || name.ends_with(crate::stats_file::FILE_SUFFIX)
            || name.ends_with(RETIRED_SUFFIX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Call;
    use crate::histogram::index_of;
    use crate::stats_file::{bucket_word, mark_complete, write_header, FILE_WORDS};
    use std::sync::atomic::{AtomicU64, Ordering};

    struct File {
        inode: u64,
        bytes: Vec<u8>,
        alive: bool,
    }

    #[derive(Default)]
    struct FakeDir {
        files: BTreeMap<String, File>,
        next_inode: u64,
        /// Simulates a compactor that dies after its rename, before removing.
        removals_fail: bool,
    }

    impl FakeDir {
        fn add_stats(&mut self, name: &str, exe: &[u8], fsyncs: u64, alive: bool) {
            let words: Vec<AtomicU64> = (0..FILE_WORDS).map(|_| AtomicU64::new(0)).collect();
            let origin = OriginRef {
                exe,
                container_id: b"c1",
                ..OriginRef::default()
            };
            self.next_inode += 1;
            write_header(&words, &origin, 1000 + self.next_inode, 1);
            words[bucket_word(Call::Fsync, index_of(5000))].store(fsyncs, Ordering::Relaxed);
            mark_complete(&words);
            let bytes = words
                .iter()
                .flat_map(|word| word.load(Ordering::Relaxed).to_le_bytes())
                .collect();
            let inode = self.next_inode;
            self.files.insert(
                name.into(),
                File {
                    inode,
                    bytes,
                    alive,
                },
            );
        }

        /// What a reader counts: aggregates, plus stats files not absorbed.
        fn fsyncs_seen(&self) -> u64 {
            let mut absorbed = BTreeSet::new();
            let mut total = 0;
            for file in self
                .files
                .iter()
                .filter(|(name, _)| name.ends_with(RETIRED_SUFFIX))
            {
                let dump = parse_dump(std::str::from_utf8(&file.1.bytes).unwrap()).unwrap();
                absorbed.extend(
                    dump.absorbed
                        .iter()
                        .map(|&(inode, nonce, _)| (inode, nonce)),
                );
                total += dump.stats.call(Call::Fsync).passed();
            }
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
    }

    impl StatsDirectory for FakeDir {
        fn lock_compaction(&mut self) -> bool {
            true
        }
        fn list(&mut self) -> Vec<String> {
            self.files.keys().cloned().collect()
        }
        fn open_dead(&mut self, name: &str) -> Option<DeadFile> {
            let file = self.files.get(name).filter(|file| !file.alive)?;
            Some(DeadFile {
                name: name.into(),
                inode: file.inode,
                bytes: file.bytes.clone(),
            })
        }
        fn inode(&mut self, name: &str) -> Option<u64> {
            self.files.get(name).map(|file| file.inode)
        }
        fn read(&mut self, name: &str) -> Option<Vec<u8>> {
            self.files.get(name).map(|file| file.bytes.clone())
        }
        fn replace(&mut self, name: &str, bytes: &[u8]) -> bool {
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
            if !self.removals_fail {
                self.files.remove(name);
            }
        }
        fn warn(&mut self, name: &str, problem: &str) {
            panic!("{name}: {problem}");
        }
    }

    #[test]
    fn dead_files_fold_into_one_aggregate_and_live_ones_stay() {
        let mut dir = FakeDir::default();
        dir.add_stats("dd.1.a.stats", b"/bin/dd", 5, false);
        dir.add_stats("dd.2.b.stats", b"/bin/dd", 7, false);
        dir.add_stats("dd.3.c.stats", b"/bin/dd", 11, true);
        assert_eq!(dir.fsyncs_seen(), 23);
        let done = compact(&mut dir, Budget::ALL);
        assert_eq!(done.folded, 2);
        assert_eq!(dir.fsyncs_seen(), 23);
        let names: Vec<&String> = dir.files.keys().collect();
        assert_eq!(names.len(), 2, "{names:?}");
        let aggregate = dir
            .files
            .iter()
            .find(|(name, _)| name.ends_with(RETIRED_SUFFIX))
            .map(|(_, file)| parse_dump(std::str::from_utf8(&file.bytes).unwrap()).unwrap())
            .unwrap();
        assert_eq!(aggregate.processes, 2);
        assert_eq!(aggregate.origin.container_id, "c1");
        // Listed until a later compaction sees that they are gone.
        assert_eq!(aggregate.absorbed.len(), 2);
        // The live one dies; the next compaction adds it to the same file.
        dir.files.get_mut("dd.3.c.stats").unwrap().alive = false;
        compact(&mut dir, Budget::ALL);
        assert_eq!(dir.fsyncs_seen(), 23);
        assert_eq!(dir.files.len(), 1);
        let aggregate = dir.files.values().next().unwrap();
        let aggregate = parse_dump(std::str::from_utf8(&aggregate.bytes).unwrap()).unwrap();
        assert_eq!(aggregate.processes, 3);
        // Files removed stay listed a while: readers may have read them.
        assert_eq!(aggregate.absorbed.len(), 3);
    }

    #[test]
    fn a_compactor_dying_before_it_removes_counts_nothing_twice() {
        let mut dir = FakeDir::default();
        dir.add_stats("a.1.x.stats", b"/bin/a", 3, false);
        dir.removals_fail = true;
        compact(&mut dir, Budget::ALL);
        assert_eq!(dir.files.len(), 2, "folded, but not removed");
        assert_eq!(dir.fsyncs_seen(), 3, "readers skip the absorbed file");
        dir.removals_fail = false;
        compact(&mut dir, Budget::ALL);
        assert_eq!(dir.fsyncs_seen(), 3);
        assert_eq!(dir.files.len(), 1);
    }

    #[test]
    fn limits_the_work_and_names_aggregates_by_container_and_exe() {
        let mut dir = FakeDir::default();
        for index in 0..10 {
            dir.add_stats(&format!("p.{index}.stats"), b"/usr/bin/p", 1, false);
        }
        assert_eq!(
            compact(
                &mut dir,
                Budget {
                    folds: 4,
                    looks: 100,
                    start: 3
                }
            )
            .folded,
            4
        );
        assert_eq!(dir.fsyncs_seen(), 10);
        assert_eq!(compact(&mut dir, Budget::ALL).folded, 6);
        assert_eq!(dir.fsyncs_seen(), 10);
        let origin = Origin {
            exe: "/x/y z".into(),
            ..Origin::default()
        };
        assert!(retired_name(&origin).starts_with("y_z."));
    }
}
