//! A record as the exporter sees it (`serve`, and `report --format
//! prometheus`): labels and counts, its sites added up per calling module.

use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::sites::{Module, SiteKey};
use fadvise_shim_core::stats::Snapshot;

/// The statistics of one process, or of several with the same identity
/// folded together (dead processes' retained aggregate).
#[derive(Clone, Debug, Default)]
pub struct ProcessStats {
    /// The executable's file name.
    pub exe: String,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
    /// Whether this is a process running now (a live stats file).
    pub live: bool,
    /// How many processes these counts come from.
    pub processes: u64,
    pub stats: Snapshot,
}

/// What a dump, a stats file or an aggregate says, as a `ProcessStats`.
pub fn from_dump(dump: &Dump) -> ProcessStats {
    let known = |value: &str| (!value.is_empty()).then(|| value.to_string());
    ProcessStats {
        exe: dump.exe_name().to_string(),
        container_id: known(&dump.origin.container_id),
        pod_uid: known(&dump.origin.pod_uid),
        live: dump.reason == "live",
        processes: dump.processes,
        stats: by_module(&dump.stats),
    }
}

/// `stats` with its sites added up per call and calling module (by file
/// name): what the exporter serves of them, and all a group keeps, so its
/// memory does not grow with the number of sites.
fn by_module(stats: &Snapshot) -> Snapshot {
    let mut collapsed = Snapshot {
        calls: stats.calls.clone(),
        sites: Default::default(),
    };
    for (key, site) in &stats.sites.sites {
        let Some(module) = &key.module else { continue };
        let key = SiteKey {
            call: key.call,
            module: Some(Module {
                path: module.file_name().to_owned(),
                build_id: String::new(),
            }),
            address: 0,
        };
        collapsed.sites.add(key, site);
    }
    collapsed
}
