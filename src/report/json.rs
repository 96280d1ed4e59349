//! The `json` format: the object the README documents (`calls`, `processes`) plus
//! `per_process`, the same figures for each dump on its own.

use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::stats::{CallStats, Snapshot};
use serde_json::{json, Map, Value};

use crate::cli::GroupBy;
use crate::metrics::callers::callers;
use crate::metrics::load::{host_budgets, merged, merged_by, process_count};

pub fn render(dumps: &[Dump], by: GroupBy) -> Vec<u8> {
    let per_process: Vec<Value> = dumps
        .iter()
        .map(|dump| {
            json!({
                "pid": dump.origin.pid,
                "ppid": dump.ppid,
                "exe": dump.origin.exe,
                "state": dump.reason,
                "processes": dump.processes,
                "container_id": dump.origin.container_id,
                "pod_uid": dump.origin.pod_uid,
                "cgroup": dump.origin.cgroup,
                "policy": dump.policy,
                "signal": dump.signal,
                "calls": calls(&dump.stats),
            })
        })
        .collect();
    let mut report = json!({
        "calls": calls(&merged(dumps)),
        "processes": process_count(dumps),
        "per_process": per_process,
        "host_budgets": host_budgets(dumps)
            .into_iter()
            .map(|budget| {
                let use_ = json!({
                    "rate": budget.rate,
                    "burst": budget.burst,
                    "admitted": budget.admitted,
                    "refused": budget.refused,
                });
                (budget.name, use_)
            })
            .collect::<Map<String, Value>>(),
    });
    if by == GroupBy::Caller {
        let groups: Vec<Value> = callers(dumps)
            .into_iter()
            .map(|caller| {
                let key: Map<String, Value> = caller
                    .key
                    .into_iter()
                    .map(|(field, value)| (field.to_string(), Value::String(value)))
                    .collect();
                json!({ "key": key, "processes": caller.processes, "calls": calls(&caller.calls) })
            })
            .collect();
        report["groups"] = Value::Array(groups);
    } else if by != GroupBy::Call {
        let groups: Vec<Value> = merged_by(dumps, by)
            .into_iter()
            .map(|(key, (processes, snapshot))| {
                let key: Map<String, Value> = key
                    .into_iter()
                    .map(|(field, value)| (field.to_string(), Value::String(value)))
                    .collect();
                json!({ "key": key, "processes": processes, "calls": calls(&snapshot) })
            })
            .collect();
        report["groups"] = Value::Array(groups);
    }
    let mut out = serde_json::to_vec_pretty(&report).expect("a Value always serializes");
    out.push(b'\n');
    out
}

/// Each call made, by name.
fn calls(snapshot: &Snapshot) -> Map<String, Value> {
    snapshot
        .made()
        .map(|(call, stats)| (call.name().to_string(), call_object(stats)))
        .collect()
}

fn call_object(stats: &CallStats) -> Value {
    json!({
        "count": stats.count(),
        "passed": stats.passed(),
        "dropped": stats.dropped,
        "limited": stats.limited,
        "errors": stats.errors,
        "latency_ns": {
            "min": stats.min(),
            "p50": stats.quantile(0.5),
            "p90": stats.quantile(0.9),
            "p99": stats.quantile(0.99),
            "p999": stats.quantile(0.999),
            "max": stats.max(),
        },
    })
}
