//! Reading a stats directory: every live process's stats file, the files of
//! dead processes not yet retired, and the retained aggregates — each as a
//! `Dump`-shaped record, so every report format and `serve` use them alike.
//!
//! Before reading, dead processes' files are retired (compaction, see
//! `fadvise_shim_core::compaction`); then the summary is read, the stats
//! files, the segments, and the summary's generation again, so that a file
//! retired in between is counted once (its segment lists it as absorbed)
//! and never missed, and the read is made again if a merge moved the
//! summary meanwhile.
//!
//! Every file is hostile input: a symlink, a non-regular file, a file of
//! another user, or one cut short or corrupted is skipped with one warning
//! naming it. Identity comes from the kernel where it can: the holder of a
//! live file's lock, as `F_GETLK` names it in our pid namespace, is looked up
//! in `/proc` (executable, cgroup, container, pod), overriding what the
//! process wrote about itself.

mod directory;

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::compaction::{self, FileId, StatsDirectory};
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::identity::placement_from_cgroup_file;
use fadvise_shim_core::retired::{Kind, RetiredFile, SUMMARY_NAME};
use fadvise_shim_core::stats_file::{self, FILE_BYTES, FILE_SUFFIX, IDENTITY_BYTE, LIVENESS_BYTE};

pub use directory::Directory;

/// Dead files retired per round of compaction, and rounds per read (what is
/// left is read as dead files, and retired by the next read).
const FOLDS_PER_ROUND: usize = 256;
const MAX_ROUNDS: usize = 100;

/// A file larger than this is not a stats file or aggregate of ours.
const MAX_FILE_BYTES: u64 = 64 << 20;

/// A stats file read, held compactly (only its non-zero buckets) until the
/// aggregates say whether it is counted: a record's full histograms are
/// ~300 KiB, and a host may have thousands of live processes.
struct Held {
    id: FileId,
    origin: fadvise_shim_core::origin::Origin,
    live: bool,
    created: u64,
    counters: [[u64; 3]; Call::COUNT],
    buckets: Vec<(u8, u16, u64)>,
    sites: fadvise_shim_core::sites::Sites,
}

impl Held {
    fn new(id: FileId, live: stats_file::LiveStats, holder: Option<Option<u32>>) -> Held {
        let mut counters = [[0; 3]; Call::COUNT];
        let mut buckets = Vec::new();
        for (index, stats) in live.stats.calls.iter().enumerate() {
            counters[index] = [stats.dropped, stats.limited, stats.errors];
            buckets.extend(
                stats
                    .buckets
                    .iter()
                    .enumerate()
                    .filter(|(_, &count)| count != 0)
                    .map(|(bucket, &count)| (index as u8, bucket as u16, count)),
            );
        }
        let sites = live.stats.sites;
        let mut origin = live.origin;
        // The header's nonce is the file's: what the origin text says is
        // only what the process wrote.
        origin.nonce = live.nonce;
        if let Some(Some(pid)) = holder {
            from_the_kernel(pid, &mut origin);
        }
        Held {
            id,
            origin,
            live: holder.is_some(),
            created: live.created,
            counters,
            buckets,
            sites,
        }
    }

    fn into_record(self) -> Dump {
        let mut record = Dump {
            origin: self.origin,
            reason: if self.live { "live" } else { "dead" }.into(),
            unix_time: self.created,
            ..Dump::default()
        };
        for (stats, [dropped, limited, errors]) in record.stats.calls.iter_mut().zip(self.counters)
        {
            (stats.dropped, stats.limited, stats.errors) = (dropped, limited, errors);
        }
        for (call, bucket, count) in self.buckets {
            record.stats.calls[usize::from(call)].buckets[usize::from(bucket)] = count;
        }
        record.stats.sites = self.sites;
        record
    }
}

/// Reads `dir` (after retiring what is dead, if `compact`), handing each
/// record to `visit` as it is ready, so that a caller that adds them up holds
/// only its sums; returns the warnings.
pub fn read_each(dir: &Path, compact: bool, visit: &mut dyn FnMut(Dump)) -> Vec<String> {
    let mut warnings = Vec::new();
    if compact {
        // In rounds: a round holds the lock of every file it folds until it
        // removes them, so it must stay well inside the descriptor limit.
        for _ in 0..MAX_ROUNDS {
            let Some(mut directory) = Directory::open(dir, &mut warnings) else {
                break;
            };
            let budget = compaction::Budget {
                folds: FOLDS_PER_ROUND,
                scope: compaction::Scope::Everything,
            };
            if compaction::compact(&mut directory, budget).folded < FOLDS_PER_ROUND {
                break;
            }
        }
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut attempt_warnings = Vec::new();
        let read = read_once(dir, &mut attempt_warnings);
        // A merge moved the summary's generation while this read was under
        // way: what it read of the segments may not match the summary.
        if read.consistent || attempt == MAX_READS {
            if !read.consistent {
                attempt_warnings.push(format!(
                    "{}: retired statistics kept changing while being read ({MAX_READS} \
                     tries); processes retired meanwhile may be counted twice",
                    dir.display()
                ));
            }
            warnings.extend(attempt_warnings);
            read.records.into_iter().for_each(&mut *visit);
            for held in read.stats_files {
                if !read.absorbed.contains(&held.id) {
                    visit(held.into_record());
                }
            }
            return warnings;
        }
    }
}

/// Reads of a directory before giving up on a consistent one (a merge
/// happens once every `MERGE_AT` drains, so a second read almost always
/// is).
const MAX_READS: usize = 5;

/// What one read of a directory found.
struct OneRead {
    records: Vec<Dump>,
    stats_files: Vec<Held>,
    absorbed: BTreeSet<FileId>,
    consistent: bool,
}

/// The summary first, the stats files next, the segments last, and the
/// summary's generation again (the order `compaction` explains).
fn read_once(dir: &Path, warnings: &mut Vec<String>) -> OneRead {
    let mut directory_warnings = Vec::new();
    let Some(mut directory) = Directory::open(dir, &mut directory_warnings) else {
        return OneRead {
            records: Vec::new(),
            stats_files: Vec::new(),
            absorbed: BTreeSet::new(),
            consistent: true,
        };
    };
    let summary = match compaction::read_summary(&mut directory) {
        Ok(summary) => summary,
        Err(problem) => {
            warnings.push(format!(
                "{}: {problem}; the processes it holds are not counted",
                dir.join(SUMMARY_NAME).display()
            ));
            RetiredFile::new(Kind::Summary)
        }
    };
    let mut stats_files = Vec::new();
    for name in directory
        .list()
        .iter()
        .filter(|name| name.ends_with(FILE_SUFFIX))
    {
        let path = dir.join(name);
        match read_stats_file(&path) {
            Ok(Some(record)) => stats_files.push(record),
            Ok(None) => {}
            // Retired (and removed) since the listing: a segment has it.
            Err(_) if std::fs::symlink_metadata(&path).is_err() => {}
            Err(problem) => warnings.push(format!("{}: {problem}; skipped", path.display())),
        }
    }
    // Listed again: a compactor may have written a segment (and removed
    // the files it holds) since the first listing.
    let names = directory.list();
    let (mut records, absorbed) = compaction::unmerged_records(&mut directory, &summary, &names);
    let consistent = compaction::summary_generation(&mut directory) == summary.generation;
    drop(directory);
    warnings.extend(directory_warnings);
    let mut all = summary.records;
    all.append(&mut records);
    OneRead {
        records: all,
        stats_files,
        absorbed,
        consistent,
    }
}

/// Opens a file for reading without following a symlink, refusing anything
/// but a regular file of ours (or root's) of a sane size.
fn open_regular(path: &Path) -> Result<File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => "a symlink".to_string(),
            _ => error.to_string(),
        })?;
    let meta = file.metadata().map_err(|error| error.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid && meta.uid() != 0 && euid != 0 {
        return Err(format!("belongs to user {}, not to us", meta.uid()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{} bytes: too large", meta.len()));
    }
    Ok(file)
}

/// The first `length` bytes of a sparse file, reading only its data (a
/// process's stats file is ~300 KiB, of which it wrote a few pages): holes
/// stay zero without being copied.
fn read_sparse(file: &File, length: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut bytes = vec![0u8; length];
    let fd = file.as_raw_fd();
    let mut offset = 0i64;
    while (offset as usize) < length {
        // SAFETY: plain lseek calls on a valid descriptor.
        let data = unsafe { libc::lseek(fd, offset, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: no more data; EINVAL: no hole support, read it all.
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                file.read_exact_at(&mut bytes, 0)?;
            }
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let end = if hole < 0 {
            length
        } else {
            (hole as usize).min(length)
        };
        let start = (data as usize).min(end);
        file.read_exact_at(&mut bytes[start..end], start as u64)?;
        offset = end as i64;
    }
    Ok(bytes)
}

/// A stats file, held; `None` for one still being created.
fn read_stats_file(path: &Path) -> Result<Option<Held>, String> {
    let file = open_regular(path)?;
    let meta = file.metadata().map_err(|error| error.to_string())?;
    let bytes = read_sparse(&file, meta.len().min(FILE_BYTES as u64 * 2) as usize)
        .map_err(|error| error.to_string())?;
    let inode = meta.ino();
    let live = match stats_file::decode(&bytes) {
        Ok(live) => live,
        Err(error) if stats_file::is_incomplete(&error) => return Ok(None),
        Err(error) => return Err(error.0),
    };
    let holder = lock_holder(&file);
    Ok(Some(Held::new((inode, live.nonce), live, holder)))
}

/// Takes (or, with `probe`, asks about) a write lock on one byte; with
/// `probe`, the answer is whether someone holds it, and `fcntl` fills in who.
pub fn lock_byte(file: &File, command: libc::c_int, byte: i64, probe: bool) -> bool {
    lock_query(file, command, byte)
        .is_some_and(|range| !probe || range.l_type != libc::F_UNLCK as libc::c_short)
}

fn lock_query(file: &File, command: libc::c_int, byte: i64) -> Option<libc::flock> {
    // SAFETY: `flock` is plain data; all-zero (l_pid 0, as OFD locks need)
    // is valid.
    let mut range: libc::flock = unsafe { std::mem::zeroed() };
    range.l_type = libc::F_WRLCK as libc::c_short;
    range.l_whence = libc::SEEK_SET as libc::c_short;
    range.l_start = byte;
    range.l_len = 1;
    // SAFETY: a valid descriptor and lock description.
    (unsafe { libc::fcntl(file.as_raw_fd(), command, &mut range) } == 0).then_some(range)
}

/// Whether the file's writer is alive (it holds its liveness lock):
/// `Some(Some(pid))` with its pid as our pid namespace sees it, `Some(None)`
/// when that is not visible here, `None` when the writer is dead.
pub fn lock_holder(file: &File) -> Option<Option<u32>> {
    if !lock_byte(file, libc::F_OFD_GETLK, LIVENESS_BYTE, true) {
        return None;
    }
    let identity = lock_query(file, libc::F_GETLK, IDENTITY_BYTE)
        .filter(|range| range.l_type != libc::F_UNLCK as libc::c_short);
    Some(identity.and_then(|range| u32::try_from(range.l_pid).ok().filter(|&pid| pid > 0)))
}

/// Replaces what a live process wrote about itself with what the kernel
/// says of the lock's holder.
fn from_the_kernel(pid: u32, origin: &mut fadvise_shim_core::origin::Origin) {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if let Ok(exe) = std::fs::read_link(proc.join("exe")) {
        let exe = exe.to_string_lossy();
        origin.exe = exe.strip_suffix(" (deleted)").unwrap_or(&exe).to_string();
    }
    if let Ok(text) = std::fs::read_to_string(proc.join("cgroup")) {
        let placement = placement_from_cgroup_file(&text);
        origin.cgroup = placement.cgroup;
        origin.container_id = placement.container_id.unwrap_or_default();
        origin.pod_uid = placement.pod_uid.unwrap_or_default();
    }
    origin.outer_pid = pid;
}

/// One stats file named on the command line, as a record (`None` while it
/// is being created).
pub fn read_one(path: &Path) -> Result<Option<Dump>, crate::Failure> {
    read_stats_file(path)
        .map(|found| found.map(Held::into_record))
        .map_err(|problem| crate::Failure(format!("{}: {problem}", path.display())))
}
