//! Who made the calls: the identity a process records about itself in its
//! stats file and its dumps, and that retained aggregates keep per container
//! and executable. Written and read as `key value` lines (the writer never
//! allocates; the reader treats every value as hostile: control bytes are
//! replaced, lengths capped, numbers checked).
//!
//! What a process says about itself is only what it says: a reader that can
//! ask the kernel (the holder of a live file's lock, seen in `/proc`) or that
//! knows where a file lies (a pod's own directory) trusts that instead.

use crate::text::{clean, put_sanitized, put_u64, Sink};

/// Longest value kept for a text field; more is cut.
pub const MAX_VALUE_BYTES: usize = 4096;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Full path of the executable.
    pub exe: String,
    /// The pid as the process sees it.
    pub pid: u32,
    /// The pid in the outermost pid namespace its `/proc` shows (`NSpid`),
    /// the host's when `/proc` is the host's; 0 when unknown.
    pub outer_pid: u32,
    /// Inode of the process's pid namespace (`/proc/self/ns/pid`).
    pub pid_namespace: u64,
    /// Start time in clock ticks since boot (`/proc/self/stat`, field 22):
    /// with the pid, it tells a process from a later one with the same pid.
    pub start_ticks: u64,
    /// A random number made once per process image (a forked child and an
    /// `exec` make a new one): it tells a program from the one it `exec`s,
    /// with the same pid and start time. 0 when unknown (old dumps,
    /// aggregates of many processes).
    pub nonce: u64,
    pub uid: u32,
    /// The cgroup path shown for the process.
    pub cgroup: String,
    pub container_id: String,
    pub pod_uid: String,
    pub hostname: String,
}

/// What tells one process image from every other, whatever record of it
/// (stats file, dumps) is read, from whichever directory: two records with
/// the same identity are the same calls, counted once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identity {
    pub pid_namespace: u64,
    pub pid: u32,
    pub start_ticks: u64,
    pub nonce: u64,
}

impl Origin {
    /// The executable's file name.
    pub fn exe_name(&self) -> &str {
        self.exe.rsplit('/').next().unwrap_or(&self.exe)
    }

    /// The process's identity; `None` without a nonce (a record from before
    /// nonces were written, or one of many processes), which cannot be told
    /// from another image with the same pid and start time.
    pub fn identity(&self) -> Option<Identity> {
        (self.nonce != 0).then_some(Identity {
            pid_namespace: self.pid_namespace,
            pid: self.pid,
            start_ticks: self.start_ticks,
            nonce: self.nonce,
        })
    }
}

/// What the writer is given: borrowed bytes, so that the preload library can
/// fill it from stack buffers.
#[derive(Clone, Copy, Default)]
pub struct OriginRef<'a> {
    pub exe: &'a [u8],
    pub pid: u32,
    pub outer_pid: u32,
    pub pid_namespace: u64,
    pub start_ticks: u64,
    /// 0 when unknown: then no `nonce` line is written.
    pub nonce: u64,
    pub uid: u32,
    pub cgroup: &'a [u8],
    pub container_id: &'a [u8],
    pub pod_uid: &'a [u8],
    pub hostname: &'a [u8],
}

/// The stem of this process's dump and stats file names:
/// `<exe>.<pid>.<pid namespace>-<start ticks>`, unique across pid namespaces
/// (two containers' pid 1) and pid reuse (another start time). Written to a
/// sink, so that the preload library builds it on the stack.
pub fn write_file_stem(sink: &mut impl Sink, exe_name: &[u8], origin: &OriginRef) {
    sink.put(&exe_name[..exe_name.len().min(100)]);
    sink.put(b".");
    put_u64(sink, u64::from(origin.pid));
    sink.put(b".");
    put_u64(sink, origin.pid_namespace);
    sink.put(b"-");
    put_u64(sink, origin.start_ticks);
}

/// The keys, in the order they are written.
const TEXT_KEYS: [&str; 5] = ["exe", "cgroup", "container_id", "pod_uid", "hostname"];
const NUMBER_KEYS: [&str; 5] = ["pid", "outer_pid", "pid_namespace", "start_ticks", "uid"];

/// Writes the origin as `key value` lines (empty text fields are left out).
pub fn write_origin(sink: &mut impl Sink, origin: &OriginRef) {
    let numbers = [
        u64::from(origin.pid),
        u64::from(origin.outer_pid),
        origin.pid_namespace,
        origin.start_ticks,
        u64::from(origin.uid),
    ];
    for (key, value) in NUMBER_KEYS.iter().zip(numbers) {
        sink.put_str(key);
        sink.put(b" ");
        put_u64(sink, value);
        sink.put(b"\n");
    }
    if origin.nonce != 0 {
        sink.put(b"nonce ");
        put_u64(sink, origin.nonce);
        sink.put(b"\n");
    }
    let texts = [
        origin.exe,
        origin.cgroup,
        origin.container_id,
        origin.pod_uid,
        origin.hostname,
    ];
    for (key, value) in TEXT_KEYS.iter().zip(texts) {
        if value.is_empty() {
            continue;
        }
        sink.put_str(key);
        sink.put(b" ");
        put_sanitized(sink, &value[..value.len().min(MAX_VALUE_BYTES)]);
        sink.put(b"\n");
    }
}

/// Takes one `key value` line into `origin` if the key is an origin key.
/// `Some(Err)` for an origin key with a bad value; `None` for other keys.
pub fn read_origin_line(origin: &mut Origin, key: &str, value: &str) -> Option<Result<(), String>> {
    let number = |field: &mut u64| -> Result<(), String> {
        *field = value.parse().map_err(|_| format!("bad {key}: {value:?}"))?;
        Ok(())
    };
    let small = |field: &mut u32| -> Result<(), String> {
        *field = value.parse().map_err(|_| format!("bad {key}: {value:?}"))?;
        Ok(())
    };
    let text = |field: &mut String| {
        *field = clean(value, '?', MAX_VALUE_BYTES);
        Ok(())
    };
    Some(match key {
        "pid" => small(&mut origin.pid),
        "outer_pid" => small(&mut origin.outer_pid),
        "pid_namespace" => number(&mut origin.pid_namespace),
        "start_ticks" => number(&mut origin.start_ticks),
        "nonce" => number(&mut origin.nonce),
        "uid" => small(&mut origin.uid),
        "exe" => text(&mut origin.exe),
        "cgroup" => text(&mut origin.cgroup),
        "container_id" => text(&mut origin.container_id),
        "pod_uid" => text(&mut origin.pod_uid),
        "hostname" => text(&mut origin.hostname),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_forged_lines() {
        let origin = OriginRef {
            exe: b"/usr/bin/dd",
            pid: 1,
            outer_pid: 4242,
            pid_namespace: 4026532288,
            start_ticks: 123456,
            nonce: 0xfeed_beef,
            uid: 0,
            cgroup: b"/docker/abc\ncontainer_id forged",
            container_id: b"",
            pod_uid: b"",
            hostname: b"web-1",
        };
        let mut out = Vec::new();
        write_origin(&mut out, &origin);
        let text = String::from_utf8(out).unwrap();
        let mut read = Origin::default();
        for line in text.lines() {
            let (key, value) = line.split_once(' ').unwrap();
            read_origin_line(&mut read, key, value).unwrap().unwrap();
        }
        assert_eq!(read.exe_name(), "dd");
        assert_eq!((read.pid, read.outer_pid), (1, 4242));
        assert_eq!(read.start_ticks, 123456);
        assert_eq!(read.identity().unwrap().nonce, 0xfeed_beef);
        assert_eq!(read.cgroup, "/docker/abc?container_id forged");
        assert_eq!(read.container_id, "");
        assert_eq!(read.hostname, "web-1");
        assert!(read_origin_line(&mut read, "pid", "-1").unwrap().is_err());
        assert!(read_origin_line(&mut read, "other", "x").is_none());
    }
}
