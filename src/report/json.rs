//! The `json` format: PRODUCT.md's object (`calls`, `processes`) plus
//! `per_process`, the same figures for each dump on its own.

use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::stats::{CallStats, Snapshot};
use serde_json::{json, Map, Value};

use super::load::{host_budgets, merged};

pub fn render(dumps: &[Dump]) -> Vec<u8> {
    let per_process: Vec<Value> = dumps
        .iter()
        .map(|dump| {
            json!({
                "pid": dump.pid,
                "ppid": dump.ppid,
                "exe": dump.exe,
                "policy": dump.policy,
                "signal": dump.signal,
                "calls": calls(&dump.stats),
            })
        })
        .collect();
    let report = json!({
        "calls": calls(&merged(dumps)),
        "processes": dumps.len(),
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
