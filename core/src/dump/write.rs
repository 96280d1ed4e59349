//! The dump writer, run by the preload library inside a signal handler or
//! at exit: it walks a `Snapshot`, the process's budgets and its call
//! sites through visitor traits, and writes to a `Sink`, never allocating
//! and never panicking.

use super::table::{write_table_heading, write_table_row};
use super::{END, MAGIC};
use crate::histogram::{HIGHEST_VALUE, SIGNIFICANT_DIGITS};
use crate::origin::{write_origin, OriginRef};
use crate::sites::SiteSource;
use crate::stats::Snapshot;
use crate::text::{put_decimal, put_hex, put_hex_bytes, put_sanitized, put_u64, Sink};

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
