//! The files that hold exited processes' statistics once their stats files
//! are gone, writer and reader side by side: append-only *segments*, each
//! written once by one compaction, and the directory's one *summary*, which
//! segments are merged into (`compaction` says who writes which, and why
//! readers can trust what they read).
//!
//! ```text
//! fadvise-shim retired 1
//! kind segment                      | kind summary
//! absorbed INODE NONCE NAME         | generation N
//! ...                               | merged NAME ...
//! record BYTES
//! <BYTES bytes: one record in the dump format, reason "retired">
//! ...
//! end
//! ```
//!
//! A segment lists the stats files it absorbed (their identities and
//! names), so that a reader that read one of them before it was removed, or
//! a compactor that finds one a crash left behind, does not count it again.
//! The summary holds no identities — the files it covers are gone before it
//! is written — but the names of the segments its last merge took in, which
//! may outlive it for a moment, and a generation that moves with every
//! merge. One record per container, pod and executable, whatever the number
//! of processes: the summary's size follows the host's programs, not its
//! history.
//!
//! Version rule (as for stats files): a reader refuses another major
//! version; a line it does not know before the first record is skipped, so
//! later versions may add lines there.

use std::collections::BTreeMap;

use crate::dump::{parse_dump, write_dump, Dump, Header, NoBudgets, Reason};
use crate::origin::{Origin, OriginRef};

const MAGIC: &str = "fadvise-shim retired";
const MAJOR: u32 = 1;
/// Suffix of a segment's name.
pub const SEGMENT_SUFFIX: &str = ".segment";
/// The directory's summary.
pub const SUMMARY_NAME: &str = "retired.summary";
/// A record bigger than this is not one of ours (a dump is a few hundred
/// KiB at most).
const MAX_RECORD_BYTES: usize = 8 << 20;
/// More than this many records or identities in one file is not ours.
const MAX_ENTRIES: usize = 1 << 20;

/// Which of the two a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Segment,
    Summary,
}

/// A stats file a segment absorbed: its inode, its nonce, its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Absorbed {
    pub inode: u64,
    pub nonce: u64,
    pub name: String,
}

/// A segment or the summary, read or about to be written.
#[derive(Clone, Debug, PartialEq)]
pub struct RetiredFile {
    pub kind: Kind,
    /// The summary's generation (0 for segments).
    pub generation: u64,
    /// The summary: names of the segments (and old aggregates) its last
    /// merge took in.
    pub merged: Vec<String>,
    /// A segment: the stats files it absorbed.
    pub absorbed: Vec<Absorbed>,
    /// One record per aggregation key (`aggregate_key`).
    pub records: Vec<Dump>,
}

impl RetiredFile {
    pub fn new(kind: Kind) -> RetiredFile {
        RetiredFile {
            kind,
            generation: 0,
            merged: Vec::new(),
            absorbed: Vec::new(),
            records: Vec::new(),
        }
    }
}

/// What the records of exited processes are kept apart by: container, pod
/// and executable.
pub fn aggregate_key(origin: &Origin) -> (String, String, String) {
    (
        origin.container_id.clone(),
        origin.pod_uid.clone(),
        origin.exe_name().to_owned(),
    )
}

/// Whether `name` is a segment's or the summary's.
pub fn is_retired_file(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(SEGMENT_SUFFIX) || name == SUMMARY_NAME)
}

/// A name fit to be listed: one directory entry, not a dot file, printable.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains('/')
        && name.len() <= 255
        && name.bytes().all(|byte| byte.is_ascii_graphic())
}

/// One record in the dump format (reason `retired`, with its process count
/// and any absorbed identities).
pub fn render_record(aggregate: &Dump) -> Vec<u8> {
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

/// The file's bytes.
pub fn render(file: &RetiredFile) -> Vec<u8> {
    let mut out = format!("{MAGIC} {MAJOR}\n").into_bytes();
    match file.kind {
        Kind::Segment => {
            out.extend_from_slice(b"kind segment\n");
            for absorbed in &file.absorbed {
                out.extend_from_slice(
                    format!(
                        "absorbed {} {:016x} {}\n",
                        absorbed.inode, absorbed.nonce, absorbed.name
                    )
                    .as_bytes(),
                );
            }
        }
        Kind::Summary => {
            out.extend_from_slice(
                format!("kind summary\ngeneration {}\n", file.generation).as_bytes(),
            );
            for name in &file.merged {
                out.extend_from_slice(format!("merged {name}\n").as_bytes());
            }
        }
    }
    for record in &file.records {
        let text = render_record(record);
        out.extend_from_slice(format!("record {}\n", text.len()).as_bytes());
        out.extend_from_slice(&text);
    }
    out.extend_from_slice(b"end\n");
    out
}

/// Reads only the lines before the first record: kind, generation, merged
/// names, absorbed identities (what a compactor needs, without parsing the
/// records).
pub fn parse_head(bytes: &[u8]) -> Result<RetiredFile, String> {
    parse(bytes, false)
}

/// Reads the whole file. Hostile input: every count is bounded, every name
/// checked; a file cut short (no `end`) is an error.
pub fn parse_file(bytes: &[u8]) -> Result<RetiredFile, String> {
    parse(bytes, true)
}

fn parse(bytes: &[u8], with_records: bool) -> Result<RetiredFile, String> {
    let mut rest = bytes;
    let first = next_line(&mut rest).ok_or("empty")?;
    let version = first
        .strip_prefix(MAGIC)
        .and_then(|version| version.trim().parse::<u32>().ok())
        .ok_or("not a retired-statistics file")?;
    if version != MAJOR {
        return Err(format!(
            "retired-statistics version {version} (this reader knows {MAJOR})"
        ));
    }
    let mut file = RetiredFile::new(Kind::Segment);
    let mut kind = None;
    loop {
        let at_line = rest;
        let line = next_line(&mut rest).ok_or("cut short")?;
        let (word, value) = line.split_once(' ').unwrap_or((&line, ""));
        match word {
            "kind" => {
                kind = Some(match value {
                    "segment" => Kind::Segment,
                    "summary" => Kind::Summary,
                    other => return Err(format!("unknown kind {other:?}")),
                })
            }
            "generation" => {
                file.generation = value.parse().map_err(|_| "bad generation".to_string())?
            }
            "merged" if is_plain_name(value) && file.merged.len() < MAX_ENTRIES => {
                file.merged.push(value.to_owned())
            }
            "absorbed" if file.absorbed.len() < MAX_ENTRIES => {
                file.absorbed.push(parse_absorbed(value)?)
            }
            "merged" | "absorbed" => return Err(format!("bad line {line:?}")),
            "record" | "end" => {
                file.kind = kind.ok_or("no kind")?;
                return if with_records {
                    parse_records(at_line, file)
                } else {
                    Ok(file)
                };
            }
            // Lines a later minor version added.
            _ => {}
        }
    }
}

/// The next line of `rest` (without its newline), `rest` moved past it.
fn next_line(rest: &mut &[u8]) -> Option<String> {
    let end = rest.iter().position(|&byte| byte == b'\n')?;
    let line = String::from_utf8_lossy(&rest[..end]).into_owned();
    *rest = &rest[end + 1..];
    Some(line)
}

/// The records, up to `end`.
fn parse_records(mut rest: &[u8], mut file: RetiredFile) -> Result<RetiredFile, String> {
    loop {
        let line = next_line(&mut rest).ok_or("cut short")?;
        if line == "end" {
            return Ok(file);
        }
        let length: usize = line
            .strip_prefix("record ")
            .and_then(|length| length.parse().ok())
            .ok_or_else(|| format!("bad line {line:?}"))?;
        if length > MAX_RECORD_BYTES || length > rest.len() || file.records.len() >= MAX_ENTRIES {
            return Err(format!("record of {length} bytes: cut short or too large"));
        }
        let (text, after) = rest.split_at(length);
        let record = parse_dump(&String::from_utf8_lossy(text))
            .map_err(|error| format!("record {}: {error}", file.records.len() + 1))?;
        file.records.push(record);
        rest = after;
    }
}

fn parse_absorbed(value: &str) -> Result<Absorbed, String> {
    let bad = || format!("bad absorbed line {value:?}");
    let mut parts = value.splitn(3, ' ');
    let inode = parts
        .next()
        .and_then(|inode| inode.parse().ok())
        .ok_or_else(bad)?;
    let nonce = parts
        .next()
        .and_then(|nonce| u64::from_str_radix(nonce, 16).ok())
        .ok_or_else(bad)?;
    let name = parts
        .next()
        .filter(|name| is_plain_name(name))
        .ok_or_else(bad)?;
    Ok(Absorbed {
        inode,
        nonce,
        name: name.to_owned(),
    })
}

/// Adds `record` to `records`, into the one of its key if there is one.
pub fn fold_record(records: &mut BTreeMap<(String, String, String), Dump>, record: &Dump) {
    let aggregate = records
        .entry(aggregate_key(&record.origin))
        .or_insert_with(|| empty_aggregate(&record.origin));
    aggregate.stats.merge(&record.stats);
    aggregate.processes += record.processes.max(u64::from(record.reason != "retired"));
    aggregate.unix_time = aggregate.unix_time.max(record.unix_time);
}

/// A record of no process yet, for the key of `origin`.
pub fn empty_aggregate(origin: &Origin) -> Dump {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::Call;
    use crate::histogram::index_of;

    fn record(exe: &str, fsyncs: u64) -> Dump {
        let mut record = empty_aggregate(&Origin {
            exe: exe.into(),
            container_id: "c1".into(),
            ..Origin::default()
        });
        record.processes = 2;
        record.stats.call_mut(Call::Fsync).buckets[index_of(5000)] = fsyncs;
        record
    }

    #[test]
    fn a_segment_and_a_summary_read_back_as_written() {
        let mut segment = RetiredFile::new(Kind::Segment);
        segment.absorbed.push(Absorbed {
            inode: 12,
            nonce: 0xabc,
            name: "dd.7.1-2.0000000000000abc.stats".into(),
        });
        segment.records = vec![record("/bin/dd", 5), record("/bin/cp", 7)];
        let bytes = render(&segment);
        let read = parse_file(&bytes).unwrap();
        assert_eq!(read.absorbed, segment.absorbed);
        assert_eq!(read.records.len(), 2);
        assert_eq!(read.records[1].stats.call(Call::Fsync).count(), 7);
        assert_eq!(read.records[1].processes, 2);
        assert_eq!(render(&read), bytes, "written again, byte for byte");
        let head = parse_head(&bytes).unwrap();
        assert_eq!(head.absorbed, segment.absorbed);
        assert!(head.records.is_empty());

        let mut summary = RetiredFile::new(Kind::Summary);
        summary.generation = 9;
        summary.merged = vec!["retired.1.segment".into()];
        summary.records = vec![record("/bin/dd", 50)];
        let read = parse_file(&render(&summary)).unwrap();
        assert_eq!((read.kind, read.generation), (Kind::Summary, 9));
        assert_eq!(read.merged, summary.merged);
        assert_eq!(render(&read), render(&summary));
    }

    #[test]
    fn hostile_files_are_refused_with_a_reason() {
        let mut segment = RetiredFile::new(Kind::Segment);
        segment.records = vec![record("/bin/dd", 5)];
        let bytes = render(&segment);
        for cut in [0, 10, 40, bytes.len() - 4] {
            assert!(parse_file(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_file(b"fadvise-shim retired 2\nkind segment\nend\n")
            .unwrap_err()
            .contains("version 2"));
        assert!(
            parse_file(b"fadvise-shim retired 1\nkind segment\nabsorbed 1 2 ../x\nend\n").is_err()
        );
        assert!(parse_file(b"fadvise-shim retired 1\nkind segment\nrecord 99999999999\n").is_err());
        // A line a later minor version added is skipped.
        let later = b"fadvise-shim retired 1\nkind summary\ngeneration 3\nfuture 1\nend\n";
        assert_eq!(parse_file(later).unwrap().generation, 3);
    }

    #[test]
    fn folding_keeps_one_record_per_key_and_counts_processes() {
        let mut records = BTreeMap::new();
        fold_record(&mut records, &record("/bin/dd", 5));
        fold_record(&mut records, &record("/usr/bin/dd", 6));
        let mut live = record("/bin/dd", 1);
        live.reason = "dead".into();
        live.processes = 0;
        fold_record(&mut records, &live);
        assert_eq!(records.len(), 1);
        let dd = records.values().next().unwrap();
        assert_eq!(dd.processes, 5);
        assert_eq!(dd.stats.call(Call::Fsync).count(), 12);
    }
}
