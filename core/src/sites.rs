//! Call sites: which instruction of which loaded object made each call.
//!
//! The preload library records, per call site (the return address into the
//! caller), the site's counters and a coarse latency histogram, and for each
//! loaded object the sites fall in, its path and build id. Readers get them
//! as `Sites`: keyed by call, module and the site's address in the module
//! (an ELF virtual address, what symbol tables hold), so sites of the same
//! library in different processes add up whatever their load addresses.
//!
//! The histogram is coarse (`SITE_BUCKETS` buckets whose bounds are the
//! Prometheus exporter's, `2^k - 1` ns for k = 8, 10, .., 34): a site holds
//! 18 counters instead of the call's 4,608 buckets, so a process's table of
//! 256 sites fits in 48 KiB of sparse shared memory. Calls a process could
//! not give a site (its table full) are its totals minus its sites' sums.

use std::collections::BTreeMap;

use crate::call::Call;
use crate::tally::Tally;
use crate::text::hex_decode;

/// Coarse latency buckets per site: 14 bounds, then everything above.
pub const SITE_BUCKETS: usize = 15;

/// Sites a merge keeps (an aggregate of many processes, a report of many
/// hosts): beyond this, sites' calls count only in the calls' totals.
pub const MAX_MERGED_SITES: usize = 4096;

/// The coarse bucket of a latency: bucket `k` holds `ns <= 2^(8 + 2k) - 1`
/// (and above the previous bound); the last holds the rest. One
/// leading-zero count, for the hot path.
#[inline(always)]
pub const fn coarse_bucket(ns: u64) -> usize {
    let bits = (64 - ns.leading_zeros()) as usize;
    let bucket = bits.saturating_sub(7) / 2;
    if bucket < SITE_BUCKETS - 1 {
        bucket
    } else {
        SITE_BUCKETS - 1
    }
}

/// The upper bound of a coarse bucket in nanoseconds; `None` for the last.
pub const fn coarse_bound_ns(bucket: usize) -> Option<u64> {
    if bucket < SITE_BUCKETS - 1 {
        Some((1u64 << (8 + 2 * bucket)) - 1)
    } else {
        None
    }
}

/// A loaded object, as a reader names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Module {
    /// Its path when the process loaded it (the executable's for the main
    /// program), in the process's own mount namespace.
    pub path: String,
    /// Its GNU build id in hex; empty if it has none.
    pub build_id: String,
}

impl Module {
    /// The file name, for display.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// Where a call came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SiteKey {
    pub call: Call,
    /// `None` when the address lies in no loaded object the process knew
    /// (generated code, or a table of modules that was full).
    pub module: Option<Module>,
    /// The return address: relative to the module's load address (an ELF
    /// virtual address in its file) or, without a module, in the process.
    pub address: u64,
}

/// One site's counts, passed calls by coarse latency bucket.
pub type SiteStats = Tally<[u64; SITE_BUCKETS]>;

impl SiteStats {
    /// The bound of the bucket holding the `quantile` of passed calls
    /// (`None`: above the last bound, or no passed call): "p99 ≤ 16 µs".
    pub fn quantile_bound_ns(&self, quantile: f64) -> Option<u64> {
        let passed = self.passed();
        if passed == 0 {
            return None;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * passed as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (bucket, &count) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                return coarse_bound_ns(bucket);
            }
        }
        None
    }
}

/// Every site of a process, or of many merged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sites {
    pub sites: BTreeMap<SiteKey, SiteStats>,
}

impl Sites {
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// Adds one site's counts; a new site beyond `MAX_MERGED_SITES` is left
    /// out (its calls stay in the totals).
    pub fn add(&mut self, key: SiteKey, stats: &SiteStats) {
        if let Some(mine) = self.sites.get_mut(&key) {
            mine.merge(stats);
        } else if self.sites.len() < MAX_MERGED_SITES && !stats.is_empty() {
            self.sites.insert(key, stats.clone());
        }
    }

    pub fn merge(&mut self, other: &Sites) {
        for (key, stats) in &other.sites {
            self.add(key.clone(), stats);
        }
    }

    /// The sites of one call.
    pub fn of_call(&self, call: Call) -> impl Iterator<Item = (&SiteKey, &SiteStats)> {
        self.sites.iter().filter(move |(key, _)| key.call == call)
    }
}

/// A site as a writer that allocates nothing hands it over: its module by
/// index into the modules it listed first.
pub struct RawSite<'a> {
    pub call: Call,
    pub module: Option<usize>,
    pub address: u64,
    pub stats: &'a SiteStats,
}

/// A module as a writer that allocates nothing hands it over.
pub struct RawModule<'a> {
    /// What its sites' `RawSite::module` says.
    pub index: usize,
    pub path: &'a [u8],
    /// Raw bytes; empty if none.
    pub build_id: &'a [u8],
}

/// Something that lists modules and sites without allocating: the preload
/// library's shared table (inside a signal handler), or a reader's `Sites`.
pub trait SiteSource {
    /// Every module a site refers to.
    fn each_module(&self, visit: &mut dyn FnMut(&RawModule));
    fn each_site(&self, visit: &mut dyn FnMut(&RawSite));
}

impl SiteSource for Sites {
    fn each_module(&self, visit: &mut dyn FnMut(&RawModule)) {
        for (index, module) in self.modules().into_iter().enumerate() {
            visit(&RawModule {
                index,
                path: module.path.as_bytes(),
                build_id: &hex_decode(&module.build_id),
            });
        }
    }

    fn each_site(&self, visit: &mut dyn FnMut(&RawSite)) {
        let modules = self.modules();
        for (key, stats) in &self.sites {
            let module = key
                .module
                .as_ref()
                .and_then(|module| modules.binary_search(&module).ok());
            visit(&RawSite {
                call: key.call,
                module,
                address: key.address,
                stats,
            });
        }
    }
}

impl Sites {
    /// The distinct modules, sorted.
    fn modules(&self) -> Vec<&Module> {
        let mut modules: Vec<&Module> = self
            .sites
            .keys()
            .filter_map(|key| key.module.as_ref())
            .collect();
        modules.sort();
        modules.dedup();
        modules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarse_buckets_meet_the_exporter_bounds() {
        assert_eq!(coarse_bucket(0), 0);
        assert_eq!(coarse_bucket(255), 0);
        assert_eq!(coarse_bucket(256), 1);
        assert_eq!(coarse_bucket(1023), 1);
        assert_eq!(coarse_bucket(1024), 2);
        assert_eq!(coarse_bucket((1 << 34) - 1), 13);
        assert_eq!(coarse_bucket(1 << 34), 14);
        assert_eq!(coarse_bucket(u64::MAX), 14);
        for bucket in 0..SITE_BUCKETS - 1 {
            let bound = coarse_bound_ns(bucket).unwrap();
            assert_eq!(coarse_bucket(bound), bucket);
            assert_eq!(coarse_bucket(bound + 1), bucket + 1);
        }
        assert_eq!(coarse_bound_ns(SITE_BUCKETS - 1), None);
    }

    #[test]
    fn quantile_bounds() {
        let mut stats = SiteStats::default();
        assert_eq!(stats.quantile_bound_ns(0.5), None);
        stats.buckets[coarse_bucket(300)] = 99;
        stats.buckets[coarse_bucket(5_000_000)] = 1;
        assert_eq!(stats.quantile_bound_ns(0.5), Some(1023));
        assert_eq!(stats.quantile_bound_ns(0.99), Some(1023));
        assert_eq!(stats.quantile_bound_ns(1.0), Some((1 << 24) - 1));
    }

    #[test]
    fn merge_adds_by_module_and_address_and_stays_bounded() {
        let module = Module {
            path: "/usr/lib/liba.so".into(),
            build_id: "ab01".into(),
        };
        let key = |address| SiteKey {
            call: Call::Fsync,
            module: Some(module.clone()),
            address,
        };
        let one = SiteStats {
            dropped: 1,
            ..SiteStats::default()
        };
        let mut sites = Sites::default();
        sites.add(key(0x10), &one);
        sites.add(key(0x10), &one);
        sites.add(
            SiteKey {
                module: None,
                ..key(0x10)
            },
            &one,
        );
        assert_eq!(sites.sites[&key(0x10)].dropped, 2);
        assert_eq!(sites.sites.len(), 2);
        for address in 0..MAX_MERGED_SITES as u64 * 2 {
            sites.add(key(0x1000 + address), &one);
        }
        assert_eq!(sites.sites.len(), MAX_MERGED_SITES);
        let mut listed = Vec::new();
        sites.each_module(&mut |module| {
            listed.push((module.index, module.path.to_vec(), module.build_id.to_vec()))
        });
        assert_eq!(
            listed,
            [(0, b"/usr/lib/liba.so".to_vec(), vec![0xab, 0x01])]
        );
    }
}
