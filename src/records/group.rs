//! The groups reports and `top` add records up by (`--by`).

use fadvise_shim_core::dump::Dump;

use crate::cli::GroupBy;

/// What defines a group of `--by`: identity fields and their values.
pub type GroupKey = Vec<(&'static str, String)>;

/// The group a record belongs to.
pub fn group_key(dump: &Dump, by: GroupBy) -> GroupKey {
    let origin = &dump.origin;
    match by {
        GroupBy::Call => vec![],
        GroupBy::Exe => vec![("exe", dump.exe_name().to_string())],
        GroupBy::Process => vec![
            ("exe", dump.exe_name().to_string()),
            ("pid", origin.pid.to_string()),
        ],
        GroupBy::Container => vec![("container_id", origin.container_id.clone())],
        GroupBy::Pod => vec![("pod_uid", origin.pod_uid.clone())],
        // Callers are within records, not records: see `metrics::callers`.
        GroupBy::Caller => vec![],
    }
}
