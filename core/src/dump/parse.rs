//! The dump reader, run by reports: it turns a dump's text back into a
//! `Dump`, refusing a file that is cut short, holds another histogram
//! layout, or holds counts no writer can have written, rather than
//! misreport it.

use std::collections::BTreeMap;
use std::fmt;

use super::{END, MAGIC};
use crate::call::Call;
use crate::histogram::{BUCKETS, HIGHEST_VALUE, SIGNIFICANT_DIGITS};
use crate::origin::{read_origin_line, Origin};
use crate::sites::{Module, SiteKey, SiteStats};
use crate::stats::{CallStats, Snapshot};

/// A host-scope budget as read back from a dump.
#[derive(Clone, Debug, PartialEq)]
pub struct Budget {
    pub name: String,
    pub rate: f64,
    pub burst: f64,
    pub admitted: u64,
    pub refused: u64,
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
            dump.stats
                .check_totals()
                .map_err(|message| error(number, message))?;
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
