//! Per-process accounting: every supervised process (thread group) has its
//! own statistics, budgets and pidfd (readable when it exits, which is when
//! its dump is written).
//!
//! A notification names a thread (its id in our pid namespace); its thread
//! group comes from `/proc/TID/status` once and is cached. A cached thread
//! of another thread group is checked against `/proc/TGID/task/TID` on each
//! use, so a thread id reused by another process is noticed; a process's
//! entries are dropped when it exits.

use std::collections::hash_map::{Entry, HashMap};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use fadvise_shim_core::call::Call;
use fadvise_shim_core::histogram::index_of;
use fadvise_shim_core::stats::Snapshot;

use super::modules::Modules;
use super::perform::pidfd_open;

pub struct Process {
    pub tgid: u32,
    pub ppid: u32,
    /// What it runs now (it may have exec'd since it was first seen).
    pub exe: PathBuf,
    pub pidfd: OwnedFd,
    /// With the pid, what names its dump (`core::origin::write_file_stem`).
    pub pid_namespace: u64,
    pub start_ticks: u64,
    pub stats: Snapshot,
    /// GCRA state of each `limit` rule.
    pub budgets: Vec<AtomicU64>,
    /// Its file-backed mappings, for `caller` rules.
    pub modules: Modules,
}

impl Process {
    pub fn record_passed(&mut self, call: Call, latency_ns: u64, failed: bool) {
        let stats = self.stats.call_mut(call);
        stats.buckets[index_of(latency_ns)] += 1;
        stats.errors += u64::from(failed);
    }

    pub fn record_dropped(&mut self, call: Call) {
        self.stats.call_mut(call).dropped += 1;
    }

    pub fn record_limited(&mut self, call: Call) {
        self.stats.call_mut(call).limited += 1;
    }

    /// Reads the executable again: a process may exec another program
    /// (whose modules are then others).
    pub fn refresh_exe(&mut self) {
        if let Ok(exe) = executable(self.tgid) {
            if exe != self.exe {
                self.modules.forget();
            }
            self.exe = exe;
        }
    }
}

pub struct Processes {
    by_tgid: HashMap<u32, Process>,
    tgid_of_thread: HashMap<u32, u32>,
    budget_count: usize,
}

impl Processes {
    pub fn new(budget_count: usize) -> Processes {
        Processes {
            by_tgid: HashMap::new(),
            tgid_of_thread: HashMap::new(),
            budget_count,
        }
    }

    /// The process of thread `tid`, first seen now or before.
    pub fn of_thread(&mut self, tid: u32) -> io::Result<&mut Process> {
        let cached =
            self.tgid_of_thread.get(&tid).copied().filter(|&tgid| {
                tgid == tid || Path::new(&format!("/proc/{tgid}/task/{tid}")).exists()
            });
        let tgid = match cached {
            Some(tgid) => tgid,
            None => {
                let tgid = thread_group(tid)?;
                self.tgid_of_thread.insert(tid, tgid);
                tgid
            }
        };
        Ok(match self.by_tgid.entry(tgid) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(Process {
                tgid,
                ppid: parent(tgid).unwrap_or(0),
                exe: executable(tgid)?,
                pidfd: pidfd_open(tgid)?,
                pid_namespace: crate::procfs::pid_namespace(tgid).unwrap_or(0),
                start_ticks: crate::procfs::start_ticks(tgid).unwrap_or(0),
                stats: Snapshot::default(),
                budgets: (0..self.budget_count).map(|_| AtomicU64::new(0)).collect(),
                modules: Modules::default(),
            }),
        })
    }

    /// Every process's pidfd, to poll for exits.
    pub fn pidfds(&self) -> Vec<(u32, RawFd)> {
        self.by_tgid
            .values()
            .map(|process| (process.tgid, process.pidfd.as_raw_fd()))
            .collect()
    }

    /// Forgets a process that exited, returning it for its last dump.
    pub fn remove(&mut self, tgid: u32) -> Option<Process> {
        self.tgid_of_thread.retain(|_, group| *group != tgid);
        self.by_tgid.remove(&tgid)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Process> {
        self.by_tgid.values()
    }

    pub fn tgids(&self) -> Vec<u32> {
        self.by_tgid.keys().copied().collect()
    }
}

/// `/proc/PID/exe`, without the ` (deleted)` of a replaced file.
fn executable(pid: u32) -> io::Result<PathBuf> {
    let link = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let bytes = link.as_os_str().as_bytes();
    let bytes = bytes.strip_suffix(b" (deleted)").unwrap_or(bytes);
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// A `/proc/PID/status` number such as `Tgid:` or `PPid:`.
fn status_field(pid: u32, key: &str) -> io::Result<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {key} for {pid}")))
}

fn thread_group(tid: u32) -> io::Result<u32> {
    status_field(tid, "Tgid:")
}

fn parent(pid: u32) -> io::Result<u32> {
    status_field(pid, "PPid:")
}
