//! `--by caller`: the calls of every merged record by call site, each site
//! named `module function+offset` by the symbolizer, and per call an
//! `other` group for what no site holds (a process whose site table was
//! full, or a writer that records none).
//!
//! A site's latency is its coarse histogram (`fadvise_shim_core::sites`):
//! its quantiles are the upper bounds of the exporter's buckets (`2^k - 1`
//! ns), shown and written as such. Modules of a live process are read
//! through `/proc/PID/root`, so a library inside a container is found even
//! where the host has no such file.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::{highest_value_at, index_of, BUCKETS};
use fadvise_shim_core::sites::{coarse_bound_ns, coarse_bucket, SiteKey, SiteStats, SITE_BUCKETS};
use fadvise_shim_core::stats::{CallStats, Snapshot};
use fadvise_shim_core::text::hex_decode;

use super::load::merged;
use crate::symbolize::{Options, Site, Symbolizer};

/// One caller's calls, by call.
pub struct Caller {
    /// `liba.so liba_work+0x1a`, or `other`.
    pub label: String,
    /// What identifies it in JSON: `caller`, and for a site `module`,
    /// `build_id`, `address` (in the module), `function` when named.
    pub key: Vec<(&'static str, String)>,
    /// Records (processes, or aggregates of them) the caller appears in.
    pub processes: u64,
    pub calls: Snapshot,
}

/// Every caller of the merged records: sites by label (in call order, most
/// calls first), then the `other` group if it holds any call.
pub fn callers(dumps: &[Dump]) -> Vec<Caller> {
    let mut sites: BTreeMap<SiteKey, (SiteStats, u64, Option<PathBuf>)> = BTreeMap::new();
    for dump in dumps {
        let root = (dump.reason == "live" && dump.origin.outer_pid != 0)
            .then(|| PathBuf::from(format!("/proc/{}/root", dump.origin.outer_pid)));
        for (key, stats) in &dump.stats.sites.sites {
            let (total, processes, seen_root) = sites.entry(key.clone()).or_default();
            total.merge(stats);
            *processes += dump.processes;
            if seen_root.is_none() {
                seen_root.clone_from(&root);
            }
        }
    }
    let mut symbolizers: HashMap<Option<PathBuf>, Symbolizer> = HashMap::new();
    let mut by_label: BTreeMap<String, Caller> = BTreeMap::new();
    let mut attributed = Snapshot::default();
    for (key, (stats, processes, root)) in &sites {
        let (label, identity) = name(key, root, &mut symbolizers);
        let caller = by_label.entry(label.clone()).or_insert_with(|| Caller {
            label,
            key: identity,
            processes: 0,
            calls: Snapshot::default(),
        });
        caller.processes = caller.processes.max(*processes);
        let as_call = as_call_stats(stats);
        caller.calls.call_mut(key.call).merge(&as_call);
        attributed.call_mut(key.call).merge(&as_call);
    }
    let mut rows: Vec<Caller> = by_label.into_values().collect();
    rows.sort_by_key(|caller| {
        let first = caller
            .calls
            .made()
            .next()
            .map(|(call, stats)| (call, stats.count()));
        first.map(|(call, count)| (call, u64::MAX - count))
    });
    let other = unattributed(&merged(dumps), &attributed);
    if !other.is_empty() {
        rows.push(Caller {
            label: "other".into(),
            key: vec![("caller", "other".into())],
            processes: dumps.iter().map(|dump| dump.processes).sum(),
            calls: other,
        });
    }
    rows
}

/// The label and JSON identity of a site.
fn name(
    key: &SiteKey,
    root: &Option<PathBuf>,
    symbolizers: &mut HashMap<Option<PathBuf>, Symbolizer>,
) -> (String, Vec<(&'static str, String)>) {
    let Some(module) = &key.module else {
        let label = format!("unknown module {:#x}", key.address);
        return (
            label.clone(),
            vec![
                ("caller", label),
                ("address", format!("{:#x}", key.address)),
            ],
        );
    };
    let symbolizer = symbolizers.entry(root.clone()).or_insert_with(|| {
        Symbolizer::new(Options {
            root: root.clone(),
            ..Options::default()
        })
    });
    let build_id = hex_decode(&module.build_id);
    let named = symbolizer.name(&Site {
        module: Path::new(&module.path),
        address: key.address,
        build_id: (!build_id.is_empty()).then_some(&build_id[..]),
    });
    let label = named.to_string();
    let mut identity = vec![
        ("caller", label.clone()),
        ("module", module.path.clone()),
        ("build_id", module.build_id.clone()),
        ("address", format!("{:#x}", key.address)),
    ];
    if let Some(function) = named.function {
        identity.push(("function", function));
    }
    (label, identity)
}

/// A site's counts as a call's: each coarse bucket's calls at its upper
/// bound (an HDR bucket's top, exactly), the open last one at its floor, so
/// the table's and JSON's quantiles read as "at most".
fn as_call_stats(site: &SiteStats) -> CallStats {
    let mut stats = CallStats {
        dropped: site.dropped,
        limited: site.limited,
        errors: site.errors,
        buckets: vec![0; BUCKETS],
    };
    for (bucket, &count) in site.buckets.iter().enumerate() {
        let value = coarse_bound_ns(bucket)
            .or_else(|| coarse_bound_ns(bucket - 1).map(|bound| bound + 1))
            .unwrap_or(0);
        let index = index_of(value).min(BUCKETS - 1);
        stats.buckets[index] = stats.buckets[index].saturating_add(count);
    }
    stats
}

/// Each call's totals minus what its sites hold, in the sites' coarse
/// buckets (so what is left is the calls no site holds).
fn unattributed(total: &Snapshot, attributed: &Snapshot) -> Snapshot {
    let mut other = Snapshot::default();
    for call in Call::ALL {
        let (all, sites) = (total.call(call), attributed.call(call));
        let coarse = as_coarse(all);
        let mut left = SiteStats {
            dropped: all.dropped.saturating_sub(sites.dropped),
            limited: all.limited.saturating_sub(sites.limited),
            errors: all.errors.saturating_sub(sites.errors),
            buckets: [0; SITE_BUCKETS],
        };
        let in_sites = as_coarse(sites);
        for (bucket, count) in left.buckets.iter_mut().enumerate() {
            *count = coarse[bucket].saturating_sub(in_sites[bucket]);
        }
        left.errors = left.errors.min(left.passed());
        *other.call_mut(call) = as_call_stats(&left);
    }
    other
}

/// A call's HDR histogram in the coarse buckets (exact: every coarse bound
/// is an HDR bucket's top), as `as_call_stats` placed a site's too.
fn as_coarse(stats: &CallStats) -> [u64; SITE_BUCKETS] {
    let mut coarse = [0u64; SITE_BUCKETS];
    for (index, &count) in stats.buckets.iter().enumerate() {
        let bucket = coarse_bucket(highest_value_at(index));
        coarse[bucket] = coarse[bucket].saturating_add(count);
    }
    coarse
}

#[cfg(test)]
mod tests {
    use super::*;
    use fadvise_shim_core::sites::Module;

    fn site(address: u64, dropped: u64, passed_at_ns: &[u64]) -> (SiteKey, SiteStats) {
        let mut stats = SiteStats {
            dropped,
            ..SiteStats::default()
        };
        for &ns in passed_at_ns {
            stats.buckets[coarse_bucket(ns)] += 1;
        }
        let key = SiteKey {
            call: Call::Fsync,
            module: Some(Module {
                path: "/nonexistent/liba.so".into(),
                build_id: String::new(),
            }),
            address,
        };
        (key, stats)
    }

    #[test]
    fn sites_and_the_rest_add_up_to_the_totals() {
        let mut dump = Dump::default();
        let fsync = dump.stats.call_mut(Call::Fsync);
        for ns in [300, 300, 5_000, 2_000_000] {
            fsync.buckets[index_of(ns)] += 1;
        }
        fsync.dropped = 3;
        let (key, stats) = site(0x1010, 2, &[300, 5_000]);
        dump.stats.sites.add(key, &stats);
        let rows = callers(&[dump]);
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].label.starts_with("liba.so+0x1010 ("),
            "{}",
            rows[0].label
        );
        let first = rows[0].calls.call(Call::Fsync);
        assert_eq!((first.passed(), first.dropped), (2, 2));
        assert_eq!(first.quantile(1.0), 16383);
        assert_eq!(rows[1].label, "other");
        let other = rows[1].calls.call(Call::Fsync);
        assert_eq!((other.passed(), other.dropped), (2, 1));
        assert_eq!(other.quantile(1.0), (1 << 22) - 1);
    }
}
