//! Who this process is, as its stats file and dumps say: read once per
//! process image (again in a forked child) from `/proc/self` and `uname`,
//! into fixed buffers, with plain system calls — at its first call when it
//! makes a stats file, else at its first dump. Published with a flag, so a
//! dump written from a signal handler reads a complete record or the bare
//! minimum (what its file name needs), never half one.
//!
//! The nonce, which tells this process image from any other with the same
//! pid and start time (an `exec`), is made once per image — at the first
//! call, or by the first dump or stats file that needs it, whichever comes
//! first — so the stats file and every dump carry the same one.

use std::cell::UnsafeCell;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use fadvise_shim_core::identity::placement_from_cgroup_file;
use fadvise_shim_core::origin::OriginRef;

use crate::policy::settings;
use crate::sys::fork::store_if_changed;
use crate::sys::io::read_small_file;

const CGROUP_BYTES: usize = 1024;
const ID_BYTES: usize = 64;
const HOSTNAME_BYTES: usize = 65;

struct Record {
    pid: u32,
    outer_pid: u32,
    pid_namespace: u64,
    start_ticks: u64,
    cgroup: [u8; CGROUP_BYTES],
    cgroup_len: usize,
    container_id: [u8; ID_BYTES],
    container_id_len: usize,
    pod_uid: [u8; ID_BYTES],
    pod_uid_len: usize,
    hostname: [u8; HOSTNAME_BYTES],
    hostname_len: usize,
}

struct Slot(UnsafeCell<Record>);

// SAFETY: the record is written only by the thread that cleared `READY`
// and claimed `WRITING`, and read only while `READY` is set.
unsafe impl Sync for Slot {}

static RECORD: Slot = Slot(UnsafeCell::new(Record {
    pid: 0,
    outer_pid: 0,
    pid_namespace: 0,
    start_ticks: 0,
    cgroup: [0; CGROUP_BYTES],
    cgroup_len: 0,
    container_id: [0; ID_BYTES],
    container_id_len: 0,
    pod_uid: [0; ID_BYTES],
    pod_uid_len: 0,
    hostname: [0; HOSTNAME_BYTES],
    hostname_len: 0,
}));
static READY: AtomicBool = AtomicBool::new(false);
static WRITING: AtomicBool = AtomicBool::new(false);
/// This image's nonce (0: not made yet) and the pid it was made by: a child
/// made without `fork`'s handlers (a raw `clone`) must not take it as its own.
static NONCE: AtomicU64 = AtomicU64::new(0);
static NONCE_PID: AtomicU32 = AtomicU32::new(0);

/// This process image's nonce, made on first use (async-signal-safe: one
/// `getrandom` and atomics; a racing thread's value loses to the first).
pub fn nonce() -> u64 {
    let pid = crate::sys::process::pid() as u32;
    if NONCE_PID.load(Ordering::Acquire) != pid {
        NONCE.store(0, Ordering::Relaxed);
    }
    let made = NONCE.load(Ordering::Acquire);
    if made != 0 {
        return made;
    }
    let fresh = random_nonce();
    let nonce = match NONCE.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(first) => first,
    };
    NONCE_PID.store(pid, Ordering::Release);
    nonce
}

fn random_nonce() -> u64 {
    let mut bytes = [0u8; 8];
    // GRND_NONBLOCK never waits for entropy.
    let got = crate::sys::process::random_bytes(&mut bytes, libc::GRND_NONBLOCK);
    let mut nonce = u64::from_ne_bytes(bytes);
    if got != 8 {
        // No getrandom: time and address still make two processes differ.
        nonce =
            crate::sys::clock::monotonic_ns() ^ (std::ptr::addr_of!(nonce) as u64).rotate_left(32);
    }
    nonce.max(1)
}

/// Reads this process's identity; one thread at a time (the first call's).
pub fn gather() {
    if WRITING.swap(true, Ordering::Acquire) {
        return;
    }
    READY.store(false, Ordering::Release);
    // SAFETY: we hold `WRITING` and `READY` is clear: no one reads it.
    let record = unsafe { &mut *RECORD.0.get() };
    record.pid = crate::sys::process::pid() as u32;
    record.outer_pid = outer_pid().unwrap_or(0);
    record.pid_namespace = pid_namespace().unwrap_or(0);
    record.start_ticks = start_ticks().unwrap_or(0);
    record.cgroup_len = 0;
    record.container_id_len = 0;
    record.pod_uid_len = 0;
    let mut text = [0u8; 8192];
    if let Some(text) = read_small_file(c"/proc/self/cgroup", &mut text) {
        let placement = placement_from_cgroup_file(&String::from_utf8_lossy(text));
        record.cgroup_len = copy(&mut record.cgroup, placement.cgroup.as_bytes());
        if let Some(id) = &placement.container_id {
            record.container_id_len = copy(&mut record.container_id, id.as_bytes());
        }
        if let Some(uid) = &placement.pod_uid {
            record.pod_uid_len = copy(&mut record.pod_uid, uid.as_bytes());
        }
    }
    record.hostname_len = hostname(&mut record.hostname);
    nonce();
    READY.store(true, Ordering::Release);
    WRITING.store(false, Ordering::Release);
}

/// Reads this process's identity unless it has been read: for a dump of a
/// process that has no stats file (which would have read it at the first
/// call). From a handler that interrupted a `gather`, it leaves the bare
/// minimum, as `with_origin` says.
pub fn gather_unless_ready() {
    if !READY.load(Ordering::Acquire) {
        gather();
    }
}

/// A forked child is another process: it reads its own at its first call
/// (or its first dump).
pub fn after_fork_in_child() {
    store_if_changed!(READY, false);
    store_if_changed!(WRITING, false);
    store_if_changed!(NONCE, 0);
}

/// This process's identity (only pid and executable before `gather`).
pub fn with_origin<R>(use_origin: impl FnOnce(&OriginRef) -> R) -> R {
    let exe = settings::get().map_or(&b""[..], |settings| settings.exe().as_os_str().as_bytes());
    let (uid, pid) = (
        crate::sys::process::euid(),
        crate::sys::process::pid() as u32,
    );
    let mut origin = OriginRef {
        exe,
        pid,
        uid,
        nonce: nonce(),
        ..OriginRef::default()
    };
    // SAFETY: `READY` is set only once the record is complete, and cleared
    // before anyone writes it again.
    let record = READY
        .load(Ordering::Acquire)
        .then(|| unsafe { &*RECORD.0.get() })
        .filter(|record| record.pid == pid);
    if record.is_none() {
        // Not read yet (a dump racing the first call): what names files,
        // at least, must be right.
        origin.pid_namespace = pid_namespace().unwrap_or(0);
        origin.start_ticks = start_ticks().unwrap_or(0);
    }
    if let Some(record) = record {
        origin.outer_pid = record.outer_pid;
        origin.pid_namespace = record.pid_namespace;
        origin.start_ticks = record.start_ticks;
        origin.cgroup = &record.cgroup[..record.cgroup_len];
        origin.container_id = &record.container_id[..record.container_id_len];
        origin.pod_uid = &record.pod_uid[..record.pod_uid_len];
        origin.hostname = &record.hostname[..record.hostname_len];
    }
    use_origin(&origin)
}

fn copy(into: &mut [u8], from: &[u8]) -> usize {
    let length = from.len().min(into.len());
    into[..length].copy_from_slice(&from[..length]);
    length
}

fn parse_number(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

/// The first `NSpid` entry of `/proc/self/status`: the pid in the pid
/// namespace of this `/proc` (the host's, when it is the host's).
fn outer_pid() -> Option<u32> {
    let mut buffer = [0u8; 8192];
    let status = read_small_file(c"/proc/self/status", &mut buffer)?;
    let line = status
        .split(|&byte| byte == b'\n')
        .find_map(|line| line.strip_prefix(b"NSpid:"))?;
    let first = line
        .split(|&byte| byte == b'\t' || byte == b' ')
        .find(|word| !word.is_empty())?;
    parse_number(first).and_then(|pid| u32::try_from(pid).ok())
}

/// The inode of this process's pid namespace: `pid:[4026531836]`.
fn pid_namespace() -> Option<u64> {
    let mut target = [0u8; 64];
    let length = crate::sys::io::read_link(c"/proc/self/ns/pid", &mut target);
    let target = target.get(..usize::try_from(length).ok()?)?;
    let inside = target.strip_prefix(b"pid:[")?.strip_suffix(b"]")?;
    parse_number(inside)
}

/// Field 22 of `/proc/self/stat`: start time in clock ticks since boot.
fn start_ticks() -> Option<u64> {
    let mut buffer = [0u8; 2048];
    let stat = read_small_file(c"/proc/self/stat", &mut buffer)?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its last ')'.
    let close = stat.iter().rposition(|&byte| byte == b')')?;
    let field = stat[close + 1..]
        .split(|&byte| byte == b' ')
        .filter(|word| !word.is_empty())
        .nth(19)?;
    parse_number(field)
}

fn hostname(into: &mut [u8]) -> usize {
    let Some(names) = crate::sys::process::uname() else {
        return 0;
    };
    let name = names
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8);
    let mut length = 0;
    for (slot, byte) in into.iter_mut().zip(name) {
        *slot = byte;
        length += 1;
    }
    length
}
