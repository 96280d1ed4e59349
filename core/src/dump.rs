//! The dump file: its writer (run by the preload library, possibly inside a
//! signal handler) and its reader (run by reports), side by side so the two
//! cannot drift apart.
//!
//! A dump is text. The top is for people (`cat` it): a few `key value` lines
//! about the process and a table of every call made. The bottom is for
//! `fadvise-shim report`: one `stats` line and one `buckets` line per call,
//! holding the exact counters, then `end`. A reader refuses a file without
//! `end` or with another histogram layout rather than misreport it.
//!
//! The writer never allocates: it walks a `Snapshot` and writes to a `Sink`.

use std::collections::BTreeMap;
use std::fmt;

use crate::call::Call;
use crate::histogram::{BUCKETS, HIGHEST_VALUE, SIGNIFICANT_DIGITS};
use crate::origin::{read_origin_line, write_origin, Origin, OriginRef};
use crate::sites::{Module, SiteKey, SiteSource, SiteStats};
use crate::stats::{CallStats, Snapshot};
use crate::text::{
    put_cell, put_decimal, put_hex, put_hex_bytes, put_sanitized, put_u64, Cell, Sink,
};

const MAGIC: &str = "# fadvise-shim dump 1";
const END: &str = "end";

/// File-name suffix of dumps: `<exe>.<pid>.dump`.
pub const FILE_SUFFIX: &str = ".dump";

/// Why a dump was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Signal,
    Exit,
    /// A retained aggregate of dead processes.
    Retired,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Signal => "signal",
            Reason::Exit => "exit",
            Reason::Retired => "retired",
        }
    }
}

/// What a dump says about its process, as the writer is given it.
pub struct Header<'a> {
    /// Who made the calls (executable, pids, container…).
    pub origin: OriginRef<'a>,
    pub ppid: u32,
    /// Policy file in force, or `built-in`.
    pub policy: &'a [u8],
    /// Dump signal name, e.g. `SIGUSR1`, or `none`.
    pub signal: &'a str,
    pub reason: Reason,
    /// Wall-clock time of the dump, seconds since the epoch.
    pub unix_time: u64,
    /// The host-scope budgets the process draws from.
    pub budgets: &'a dyn Budgets,
    /// How many processes' calls the file holds: 1 for a dump, more for a
    /// retained aggregate of dead processes.
    pub processes: u64,
    /// For an aggregate: the stats files (inode, nonce) it has absorbed, with
    /// when (Unix seconds), kept while they may still be on disk or in a
    /// reader's hands, which must then not count them again.
    pub absorbed: &'a [(u64, u64, u64)],
    /// The stats directory that holds this process's stats file, as (device,
    /// inode) of the directory the process opened: written only while that
    /// file holds every count the dump holds, so that a reader of the
    /// directory counts the process from it and not twice (a bind mount
    /// keeps both numbers, so the host knows a container's directory).
    pub stats_dir: Option<(u64, u64)>,
}

/// A host-scope budget as a dump reports it: shared by every process that
/// has the rule, so its counts are the host's, not the process's.
#[derive(Clone, Debug, PartialEq)]
pub struct BudgetUse<'a> {
    pub name: &'a [u8],
    pub rate: f64,
    pub burst: f64,
    pub admitted: u64,
    pub refused: u64,
}

/// Something that can list budgets without allocating (the preload library
/// reads them from shared memory inside a signal handler).
pub trait Budgets {
    fn each(&self, visit: &mut dyn FnMut(&BudgetUse));
}

impl<const N: usize> Budgets for [BudgetUse<'_>; N] {
    fn each(&self, visit: &mut dyn FnMut(&BudgetUse)) {
        self.iter().for_each(visit);
    }
}

/// For processes without host budgets.
pub struct NoBudgets;

impl Budgets for NoBudgets {
    fn each(&self, _visit: &mut dyn FnMut(&BudgetUse)) {}
}

/// A host-scope budget as read back from a dump.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub name: String,
    pub rate: f64,
    pub burst: f64,
    pub admitted: u64,
    pub refused: u64,
}

/// Column headings of the call table, shared by dumps and reports.
pub const TABLE_COLUMNS: [&str; 11] = [
    "call", "count", "passed", "dropped", "limited", "errors", "p50", "p90", "p99", "p99.9", "max",
];
const TABLE_WIDTHS: [usize; 11] = [16, 10, 10, 10, 10, 8, 9, 9, 9, 9, 9];

/// Writes the heading of the call table; `label` replaces `call` (for
/// reports grouped by executable or process) and `label_width` widens it.
pub fn write_table_heading(sink: &mut impl Sink, label: &str, label_width: usize) {
    for (column, (name, width)) in TABLE_COLUMNS.iter().zip(TABLE_WIDTHS).enumerate() {
        if column == 0 {
            put_cell(
                sink,
                &Cell::text(label.as_bytes()),
                label_width.max(width),
                true,
            );
        } else {
            sink.put(b" ");
            put_cell(sink, &Cell::text(name.as_bytes()), width, false);
        }
    }
    sink.put(b"\n");
}

/// Writes one row of the call table.
pub fn write_table_row(sink: &mut impl Sink, label: &[u8], label_width: usize, stats: &CallStats) {
    let cells = [
        Cell::number(stats.count()),
        Cell::number(stats.passed()),
        Cell::number(stats.dropped),
        Cell::number(stats.limited),
        Cell::number(stats.errors),
        Cell::duration(stats.quantile(0.5)),
        Cell::duration(stats.quantile(0.9)),
        Cell::duration(stats.quantile(0.99)),
        Cell::duration(stats.quantile(0.999)),
        Cell::duration(stats.max()),
    ];
    put_cell(
        sink,
        &Cell::text(label),
        label_width.max(TABLE_WIDTHS[0]),
        true,
    );
    for (cell, width) in cells.iter().zip(&TABLE_WIDTHS[1..]) {
        sink.put(b" ");
        put_cell(sink, cell, *width, false);
    }
    sink.put(b"\n");
}

/// Writes a whole dump of `snapshot`, its sites included.
pub fn write_dump(sink: &mut impl Sink, header: &Header, snapshot: &Snapshot) {
    write_dump_with_sites(sink, header, snapshot, &snapshot.sites);
}

/// Writes a whole dump of `snapshot` with the sites of `sites` (the preload
/// library's, listed from shared memory without allocating).
pub fn write_dump_with_sites(
    sink: &mut impl Sink,
    header: &Header,
    snapshot: &Snapshot,
    sites: &dyn SiteSource,
) {
    sink.put_str(MAGIC);
    sink.put(b" -- read it with cat, merge dumps with `fadvise-shim report`\n");
    write_origin(sink, &header.origin);
    put_field(sink, b"ppid", |sink| put_u64(sink, header.ppid.into()));
    put_field(sink, b"policy", |sink| put_sanitized(sink, header.policy));
    put_field(sink, b"signal", |sink| sink.put_str(header.signal));
    put_field(sink, b"reason", |sink| sink.put_str(header.reason.name()));
    put_field(sink, b"time", |sink| put_u64(sink, header.unix_time));
    if header.processes != 1 {
        put_field(sink, b"processes", |sink| put_u64(sink, header.processes));
    }
    for &(inode, nonce, at) in header.absorbed {
        put_field(sink, b"absorbed", |sink| {
            put_u64(sink, inode);
            sink.put(b":");
            put_u64(sink, nonce);
            sink.put(b":");
            put_u64(sink, at);
        });
    }
    if let Some((device, inode)) = header.stats_dir {
        put_field(sink, b"stats_dir", |sink| {
            put_u64(sink, device);
            sink.put(b":");
            put_u64(sink, inode);
        });
    }
    header.budgets.each(&mut |budget| {
        sink.put(b"budget rate=");
        put_decimal(sink, budget.rate);
        sink.put(b" burst=");
        put_decimal(sink, budget.burst);
        sink.put(b" admitted=");
        put_u64(sink, budget.admitted);
        sink.put(b" refused=");
        put_u64(sink, budget.refused);
        sink.put(b" name=");
        put_sanitized(sink, budget.name);
        sink.put(b"\n");
    });
    sink.put(b"\n");
    write_table_heading(sink, "call", 0);
    for (call, stats) in snapshot.made() {
        write_table_row(sink, call.name().as_bytes(), 0, stats);
    }
    sink.put(b"\n");
    put_field(sink, b"layout", |sink| {
        sink.put(b"hdr ");
        put_u64(sink, HIGHEST_VALUE);
        sink.put(b" ");
        put_u64(sink, SIGNIFICANT_DIGITS.into());
    });
    for (call, stats) in snapshot.made() {
        sink.put(b"stats ");
        sink.put_str(call.name());
        for (key, value) in [
            (&b" dropped="[..], stats.dropped),
            (b" limited=", stats.limited),
            (b" errors=", stats.errors),
        ] {
            sink.put(key);
            put_u64(sink, value);
        }
        sink.put(b"\nbuckets ");
        sink.put_str(call.name());
        for (index, &count) in stats.buckets.iter().enumerate() {
            if count != 0 {
                sink.put(b" ");
                put_u64(sink, index as u64);
                sink.put(b":");
                put_u64(sink, count);
            }
        }
        sink.put(b"\n");
    }
    write_sites(sink, sites);
    sink.put_str(END);
    sink.put(b"\n");
}

/// `module INDEX build_id=HEX path=PATH` for every module, then `site CALL
/// MODULE 0xADDRESS dropped=N limited=N errors=N buckets=I:C,…` for every
/// site (`MODULE` is `-` for none).
fn write_sites(sink: &mut impl Sink, sites: &dyn SiteSource) {
    let mut sink = SinkRef(sink);
    sites.each_module(&mut |module| {
        sink.put(b"module ");
        put_u64(&mut sink, module.index as u64);
        sink.put(b" build_id=");
        put_hex_bytes(&mut sink, module.build_id);
        sink.put(b" path=");
        put_sanitized(&mut sink, module.path);
        sink.put(b"\n");
    });
    sites.each_site(&mut |site| {
        sink.put(b"site ");
        sink.put_str(site.call.name());
        sink.put(b" ");
        match site.module {
            Some(index) => put_u64(&mut sink, index as u64),
            None => sink.put(b"-"),
        }
        sink.put(b" 0x");
        put_hex(&mut sink, site.address, 1);
        for (key, value) in [
            (&b" dropped="[..], site.stats.dropped),
            (b" limited=", site.stats.limited),
            (b" errors=", site.stats.errors),
        ] {
            sink.put(key);
            put_u64(&mut sink, value);
        }
        sink.put(b" buckets=");
        let mut first = true;
        for (index, &count) in site.stats.buckets.iter().enumerate() {
            if count != 0 {
                if !first {
                    sink.put(b",");
                }
                first = false;
                put_u64(&mut sink, index as u64);
                sink.put(b":");
                put_u64(&mut sink, count);
            }
        }
        sink.put(b"\n");
    });
}

/// A `Sink` borrowed by the closures above (one `&mut` for both visitors).
struct SinkRef<'a, S: Sink>(&'a mut S);

impl<S: Sink> Sink for SinkRef<'_, S> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.put(bytes);
    }
}

fn put_field<S: Sink>(sink: &mut S, key: &[u8], value: impl FnOnce(&mut S)) {
    sink.put(key);
    sink.put(b" ");
    value(sink);
    sink.put(b"\n");
}

/// A dump as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Dump {
    pub origin: Origin,
    pub ppid: u32,
    pub policy: String,
    pub signal: String,
    pub reason: String,
    pub unix_time: u64,
    /// Host-scope budgets the process drew from.
    pub budgets: Vec<Budget>,
    /// Processes whose calls the file holds (1 for a dump).
    pub processes: u64,
    /// Stats files an aggregate absorbed: (inode, nonce, when).
    pub absorbed: Vec<(u64, u64, u64)>,
    /// (device, inode) of the stats directory whose stats file holds every
    /// count of this dump (see `Header::stats_dir`).
    pub stats_dir: Option<(u64, u64)>,
    /// Header lines this reader does not know, kept for newer writers.
    pub extra: BTreeMap<String, String>,
    pub stats: Snapshot,
}

impl Default for Dump {
    fn default() -> Self {
        Dump {
            origin: Origin::default(),
            ppid: 0,
            policy: String::new(),
            signal: String::new(),
            reason: String::new(),
            unix_time: 0,
            budgets: Vec::new(),
            processes: 1,
            absorbed: Vec::new(),
            stats_dir: None,
            extra: BTreeMap::new(),
            stats: Snapshot::default(),
        }
    }
}

impl Dump {
    /// The executable's file name.
    pub fn exe_name(&self) -> &str {
        self.origin.exe_name()
    }
}

/// Why a dump could not be read, with the 1-based line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DumpError {}

/// Reads a dump written by `write_dump`.
pub fn parse_dump(text: &str) -> Result<Dump, DumpError> {
    let mut lines = text.lines().enumerate().map(|(n, line)| (n + 1, line));
    let error = |line: usize, message: String| DumpError { line, message };
    match lines.next() {
        Some((_, first)) if first.starts_with(MAGIC) => {}
        _ => return Err(error(1, "not a fadvise-shim dump (version 1)".into())),
    }
    let mut dump = Dump::default();
    let mut layout_seen = false;
    let mut seen_stats = [false; Call::COUNT];
    let mut modules: BTreeMap<usize, Module> = BTreeMap::new();
    for (number, line) in lines.by_ref() {
        if line == END {
            if !layout_seen {
                return Err(error(number, "no histogram layout line".into()));
            }
            name_main_program(&mut dump);
            check_totals(&dump.stats).map_err(|message| error(number, message))?;
            return Ok(dump);
        }
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        let number_error = |what: &str| error(number, format!("bad {what}: {rest:?}"));
        if let Some(read) = read_origin_line(&mut dump.origin, key, rest) {
            read.map_err(|message| error(number, message))?;
            continue;
        }
        match key {
            "" => {}
            "ppid" => dump.ppid = rest.parse().map_err(|_| number_error("ppid"))?,
            "time" => dump.unix_time = rest.parse().map_err(|_| number_error("time"))?,
            "processes" => dump.processes = rest.parse().map_err(|_| number_error("processes"))?,
            "absorbed" => dump
                .absorbed
                .push(parse_absorbed(rest).ok_or_else(|| number_error("absorbed"))?),
            "stats_dir" => {
                let pair = rest
                    .split_once(':')
                    .and_then(|(device, inode)| Some((device.parse().ok()?, inode.parse().ok()?)));
                dump.stats_dir = Some(pair.ok_or_else(|| number_error("stats_dir"))?);
            }
            "policy" => dump.policy = rest.to_string(),
            "signal" => dump.signal = rest.to_string(),
            "reason" => dump.reason = rest.to_string(),
            "module" => {
                let (index, module) = parse_module(rest).ok_or_else(|| number_error("module"))?;
                if modules.len() >= MAX_MODULES || modules.insert(index, module).is_some() {
                    return Err(number_error("module (a duplicate or too many)"));
                }
            }
            "site" => {
                let (key, stats) =
                    parse_site(rest, &modules).ok_or_else(|| number_error("site"))?;
                dump.stats.sites.add(key, &stats);
            }
            "budget" => dump
                .budgets
                .push(parse_budget(rest).ok_or_else(|| number_error("budget"))?),
            "layout" => {
                let expected = format!("hdr {HIGHEST_VALUE} {SIGNIFICANT_DIGITS}");
                if rest != expected {
                    return Err(error(
                        number,
                        format!("histogram layout {rest:?} is not {expected:?}"),
                    ));
                }
                layout_seen = true;
            }
            "stats" | "buckets" => {
                let mut words = rest.split(' ');
                let name = words.next().unwrap_or("");
                let call = Call::from_name(name)
                    .ok_or_else(|| error(number, format!("unknown call {name:?}")))?;
                let stats = dump.stats.call_mut(call);
                if key == "stats" {
                    if std::mem::replace(&mut seen_stats[call.index()], true) {
                        return Err(error(number, format!("{name} appears twice")));
                    }
                    parse_stats(words, stats).map_err(|message| error(number, message))?;
                } else {
                    parse_buckets(words, stats).map_err(|message| error(number, message))?;
                }
            }
            _ if key.starts_with(|c: char| c.is_ascii_lowercase()) && !line.contains("  ") => {
                dump.extra.insert(key.to_string(), rest.to_string());
            }
            // The human-readable table and anything else: not needed.
            _ => {}
        }
    }
    Err(error(
        text.lines().count(),
        "dump is cut short (no `end` line)".into(),
    ))
}

/// Refuses counts no process can have written: totals past `u64` (which
/// merging could not add up) and more failed calls than passed ones (the
/// writer reads `errors` before the histogram, so it never writes that).
fn check_totals(stats: &Snapshot) -> Result<(), String> {
    for (call, stats) in Call::ALL.iter().zip(&stats.calls) {
        let passed = stats
            .buckets
            .iter()
            .try_fold(0u64, |total, &count| total.checked_add(count));
        let count = passed
            .and_then(|passed| passed.checked_add(stats.dropped))
            .and_then(|count| count.checked_add(stats.limited));
        match (passed, count) {
            (Some(passed), Some(_)) if stats.errors <= passed => {}
            (Some(passed), Some(_)) => {
                return Err(format!(
                    "{}: {} errors but only {passed} passed calls",
                    call.name(),
                    stats.errors
                ))
            }
            _ => return Err(format!("{}: counts overflow", call.name())),
        }
    }
    Ok(())
}

/// Modules a dump may list (a writer lists at most its sites' modules).
const MAX_MODULES: usize = 65536;

/// The main program's module is written with an empty path: it is the
/// executable's. Keys are rebuilt because the path is part of them.
fn name_main_program(dump: &mut Dump) {
    let unnamed = |key: &SiteKey| key.module.as_ref().is_some_and(|m| m.path.is_empty());
    if !dump.stats.sites.sites.keys().any(unnamed) {
        return;
    }
    let sites = std::mem::take(&mut dump.stats.sites.sites);
    for (mut key, stats) in sites {
        if let Some(module) = key.module.as_mut().filter(|m| m.path.is_empty()) {
            module.path = dump.origin.exe.clone();
        }
        dump.stats.sites.add(key, &stats);
    }
}

/// `INDEX build_id=HEX path=PATH`.
fn parse_module(text: &str) -> Option<(usize, Module)> {
    let (index, rest) = text.split_once(" build_id=")?;
    let (build_id, path) = rest.split_once(" path=")?;
    let hex = build_id.len() % 2 == 0 && build_id.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| {
        Some((
            index.parse().ok()?,
            Module {
                path: path.to_owned(),
                build_id: build_id.to_ascii_lowercase(),
            },
        ))
    })?
}

/// `CALL MODULE 0xADDRESS dropped=N limited=N errors=N buckets=I:C,…`.
fn parse_site(text: &str, modules: &BTreeMap<usize, Module>) -> Option<(SiteKey, SiteStats)> {
    let mut fields = text.split(' ');
    let call = Call::from_name(fields.next()?)?;
    let module = match fields.next()? {
        "-" => None,
        index => Some(modules.get(&index.parse().ok()?)?.clone()),
    };
    let address = u64::from_str_radix(fields.next()?.strip_prefix("0x")?, 16).ok()?;
    let mut stats = SiteStats::default();
    for (name, value) in [
        ("dropped", &mut stats.dropped),
        ("limited", &mut stats.limited),
        ("errors", &mut stats.errors),
    ] {
        *value = fields
            .next()?
            .strip_prefix(name)?
            .strip_prefix('=')?
            .parse()
            .ok()?;
    }
    let buckets = fields.next()?.strip_prefix("buckets=")?;
    for pair in buckets.split(',').filter(|pair| !pair.is_empty()) {
        let (index, count) = pair.split_once(':')?;
        let index: usize = index.parse().ok()?;
        *stats.buckets.get_mut(index)? = count.parse().ok()?;
    }
    let valid = fields.next().is_none() && stats.errors <= stats.passed();
    valid.then_some((
        SiteKey {
            call,
            module,
            address,
        },
        stats,
    ))
}

/// `INODE:NONCE:WHEN`.
fn parse_absorbed(text: &str) -> Option<(u64, u64, u64)> {
    let mut fields = text.split(':').map(|field| field.parse::<u64>().ok());
    let absorbed = (fields.next()??, fields.next()??, fields.next()??);
    fields.next().is_none().then_some(absorbed)
}

/// `rate=R burst=B admitted=N refused=M name=NAME` (the name runs to the
/// end of the line and may hold spaces).
fn parse_budget(text: &str) -> Option<Budget> {
    let (numbers, name) = text.split_once(" name=")?;
    let mut fields = numbers.split(' ').map(|field| field.split_once('='));
    let mut next = |key: &str| match fields.next() {
        Some(Some((found, value))) if found == key => Some(value),
        _ => None,
    };
    Some(Budget {
        rate: next("rate")?.parse().ok()?,
        burst: next("burst")?.parse().ok()?,
        admitted: next("admitted")?.parse().ok()?,
        refused: next("refused")?.parse().ok()?,
        name: name.to_string(),
    })
}

fn parse_stats<'a>(
    words: impl Iterator<Item = &'a str>,
    stats: &mut CallStats,
) -> Result<(), String> {
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, found {word:?}"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("bad number in {word:?}"))?;
        match key {
            "dropped" => stats.dropped = value,
            "limited" => stats.limited = value,
            "errors" => stats.errors = value,
            _ => {}
        }
    }
    Ok(())
}

fn parse_buckets<'a>(
    words: impl Iterator<Item = &'a str>,
    stats: &mut CallStats,
) -> Result<(), String> {
    for word in words.filter(|word| !word.is_empty()) {
        let parsed = word.split_once(':').and_then(|(index, count)| {
            Some((index.parse::<usize>().ok()?, count.parse::<u64>().ok()?))
        });
        match parsed {
            Some((index, count)) if index < BUCKETS => {
                stats.buckets[index] = stats.buckets[index]
                    .checked_add(count)
                    .ok_or_else(|| format!("count overflows in {word:?}"))?;
            }
            _ => return Err(format!("bad bucket {word:?}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::index_of;

    fn sample() -> Snapshot {
        let mut snapshot = Snapshot::default();
        let fadvise = snapshot.call_mut(Call::PosixFadvise);
        fadvise.buckets[index_of(380)] = 900;
        fadvise.buckets[index_of(2_500_000)] = 3;
        fadvise.dropped = 1000;
        fadvise.errors = 2;
        snapshot.call_mut(Call::Fsync).limited = 7;
        let mut site = SiteStats {
            dropped: 400,
            errors: 1,
            ..SiteStats::default()
        };
        site.buckets[crate::sites::coarse_bucket(380)] = 500;
        let module = Module {
            path: "/usr/lib/x86_64-linux-gnu/libglog.so.1".into(),
            build_id: "a1b2c3".into(),
        };
        let key = |address| SiteKey {
            call: Call::PosixFadvise,
            module: Some(module.clone()),
            address,
        };
        snapshot.sites.add(key(0x1a3), &site);
        snapshot.sites.add(key(0x2f0), &site);
        let unknown = SiteKey {
            module: None,
            ..key(0x7f00_1234)
        };
        snapshot.sites.add(unknown, &site);
        snapshot
    }

    fn written(snapshot: &Snapshot, exe: &[u8]) -> String {
        let header = Header {
            origin: OriginRef {
                pid: 4242,
                nonce: 77,
                exe,
                ..OriginRef::default()
            },
            ppid: 1,
            policy: b"built-in",
            signal: "SIGUSR1",
            reason: Reason::Signal,
            unix_time: 1_764_000_000,
            budgets: &[BudgetUse {
                name: b"fsync storm",
                rate: 300.0,
                burst: 30.5,
                admitted: 630,
                refused: 12,
            }],
            processes: 1,
            absorbed: &[],
            stats_dir: Some((2049, 131)),
        };
        let mut out = Vec::new();
        write_dump(&mut out, &header, snapshot);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sites_of_the_main_program_are_named_by_its_executable() {
        let mut snapshot = Snapshot::default();
        snapshot.call_mut(Call::Fsync).dropped = 2;
        let mut text = written(&snapshot, b"/usr/bin/dd");
        let end = text.rfind("end\n").unwrap();
        text.insert_str(
            end,
            "module 0 build_id= path=\nsite fsync 0 0x10 dropped=2 limited=0 errors=0 buckets=\n",
        );
        let dump = parse_dump(&text).unwrap();
        let (key, stats) = dump.stats.sites.sites.iter().next().unwrap();
        assert_eq!(key.module.as_ref().unwrap().path, "/usr/bin/dd");
        assert_eq!((key.address, stats.dropped), (0x10, 2));
    }

    #[test]
    fn bad_site_lines_are_refused() {
        let good = written(&sample(), b"/usr/bin/dd");
        for (bad, line) in [
            (
                "site fsync 9 0x10 dropped=0 limited=0 errors=0 buckets=",
                "site",
            ),
            (
                "site nosuch 0 0x10 dropped=0 limited=0 errors=0 buckets=",
                "site",
            ),
            (
                "site fsync 0 10 dropped=0 limited=0 errors=0 buckets=",
                "site",
            ),
            (
                "site fsync 0 0x10 dropped=0 limited=0 errors=1 buckets=",
                "site",
            ),
            (
                "site fsync 0 0x10 dropped=0 limited=0 errors=0 buckets=15:1",
                "site",
            ),
            (
                "site fsync 0 0x10 dropped=x limited=0 errors=0 buckets=",
                "site",
            ),
            (
                "site fsync 0 0x10 dropped=0 limited=0 errors=0 buckets= extra",
                "site",
            ),
            ("module 0 build_id=a1b2c3 path=/again", "module"),
            ("module 1 build_id=xyz path=/x", "module"),
        ] {
            let end = good.rfind("end\n").unwrap();
            let mut text = good.clone();
            text.insert_str(end, &format!("{bad}\n"));
            let error = parse_dump(&text).unwrap_err();
            assert!(error.message.contains(line), "{bad}: {error}");
        }
    }

    #[test]
    fn round_trip_keeps_every_count() {
        let snapshot = sample();
        let text = written(&snapshot, b"/usr/bin/dd");
        let dump = parse_dump(&text).unwrap();
        assert_eq!(dump.stats, snapshot);
        let budget = Budget {
            name: "fsync storm".into(),
            rate: 300.0,
            burst: 30.5,
            admitted: 630,
            refused: 12,
        };
        assert_eq!(dump.budgets, vec![budget]);
        assert_eq!((dump.origin.nonce, dump.stats_dir), (77, Some((2049, 131))));
        assert_eq!(
            (dump.origin.pid, dump.exe_name(), dump.signal.as_str()),
            (4242, "dd", "SIGUSR1")
        );
        assert!(text.contains("posix_fadvise"), "{text}");
        assert!(!text.contains("readahead"), "only calls made are listed");
    }

    #[test]
    fn table_is_readable() {
        let text = written(&sample(), b"/bin/x");
        let row = text
            .lines()
            .find(|l| l.starts_with("posix_fadvise "))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            &cells[..6],
            &["posix_fadvise", "1903", "903", "1000", "0", "2"]
        );
        assert_eq!(cells[6], "381ns");
        assert_eq!(cells[10], "2.51ms");
    }

    #[test]
    fn hostile_exe_cannot_forge_lines() {
        let text = written(&sample(), b"/tmp/x\nstats fsync dropped=99\n");
        let dump = parse_dump(&text).unwrap();
        assert_eq!(dump.stats.call(Call::Fsync).dropped, 0);
    }

    #[test]
    fn truncated_or_foreign_files_are_refused() {
        let text = written(&sample(), b"/bin/x");
        let cut = &text[..text.len() - 4];
        assert!(parse_dump(cut).unwrap_err().message.contains("cut short"));
        assert!(parse_dump("hello\n").is_err());
        assert!(parse_dump(&text.replace(" 2\n", " 3\n")).is_err());
        assert!(parse_dump(&text.replace("dropped=1000", "dropped=x")).is_err());
        assert!(parse_dump(&text.replace("stats_dir 2049:131", "stats_dir 2049")).is_err());
        let old = parse_dump(
            &text
                .replace("nonce 77\n", "")
                .replace("stats_dir 2049:131\n", ""),
        );
        let old = old.unwrap();
        assert_eq!((old.origin.identity(), old.stats_dir), (None, None));
    }
}
