//! The call table: the dump's own table, merged, with rows per call, per
//! executable and call, or per process and call. It is `report`'s `table`
//! format and, by call, what `run` prints when its program ends.

use fadvise_shim_core::dump::{write_table_heading, write_table_row, Dump};
use fadvise_shim_core::stats::{CallStats, Snapshot};

use fadvise_shim_core::call::Call;

use super::callers::callers;
use super::load::{host_budgets, merged, merged_by, process_count, GroupKey};
use crate::cli::GroupBy;

/// The whole table, opening with `N processes merged, M calls`.
pub fn render(dumps: &[Dump], by: GroupBy) -> Vec<u8> {
    let total = merged(dumps);
    let calls: u64 = total.calls.iter().map(|stats| stats.count()).sum();
    let processes = process_count(dumps);
    let plural = if processes == 1 { "" } else { "es" };
    let mut out = format!("{processes} process{plural} merged, {calls} calls\n").into_bytes();
    let groups: Vec<(String, Snapshot)> = match by {
        GroupBy::Call => vec![(String::new(), total)],
        GroupBy::Caller => return with_callers(out, dumps),
        _ => merged_by(dumps, by)
            .into_iter()
            .map(|(key, (_, snapshot))| (prefix(&key, by), snapshot))
            .collect(),
    };
    let rows: Vec<(String, &CallStats)> = groups
        .iter()
        .flat_map(|(prefix, snapshot)| {
            snapshot
                .made()
                .map(move |(call, stats)| (format!("{prefix}{}", call.name()), stats))
        })
        .collect();
    let label_width = rows
        .iter()
        .map(|(label, ..)| label.chars().count())
        .max()
        .unwrap_or(0);
    let heading = match by {
        GroupBy::Call => "call",
        GroupBy::Exe => "exe/call",
        GroupBy::Process => "exe[pid]/call",
        GroupBy::Container => "container/call",
        GroupBy::Pod => "pod/call",
        GroupBy::Caller => unreachable!("rendered by with_callers"),
    };
    write_table_heading(&mut out, heading, label_width);
    for (label, stats) in &rows {
        write_table_row(&mut out, label.as_bytes(), label_width, stats);
    }
    for budget in host_budgets(dumps) {
        let line = format!(
            "host budget {:?}: {}/s, burst {}: {} calls admitted, {} refused, by every process that shares it\n",
            budget.name, budget.rate, budget.burst, budget.admitted, budget.refused
        );
        out.extend_from_slice(line.as_bytes());
    }
    out
}

/// The table by call site: per call, its sites with the most calls first,
/// then `other`; latencies are the sites' coarse bucket bounds.
fn with_callers(mut out: Vec<u8>, dumps: &[Dump]) -> Vec<u8> {
    let callers = callers(dumps);
    let mut rows: Vec<(Call, bool, u64, String, &CallStats)> = callers
        .iter()
        .flat_map(|caller| {
            caller.calls.made().map(move |(call, stats)| {
                let other = caller.label == "other";
                let label = format!("{} {}", call.name(), caller.label);
                (call, other, u64::MAX - stats.count(), label, stats)
            })
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1, a.2, &a.3).cmp(&(b.0, b.1, b.2, &b.3)));
    let label_width = rows
        .iter()
        .map(|row| row.3.chars().count())
        .max()
        .unwrap_or(0);
    write_table_heading(&mut out, "call caller", label_width);
    for (.., label, stats) in &rows {
        write_table_row(&mut out, label.as_bytes(), label_width, stats);
    }
    out.extend_from_slice(
        b"(caller latencies are bucket bounds: p99 1.02us means at most 1,023 ns)\n",
    );
    out
}

/// A group's label in front of each call name: `dd/`, `dd[42]/`, the
/// container id (`-` for none).
fn prefix(key: &GroupKey, by: GroupBy) -> String {
    let value = |name: &str| {
        key.iter()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| {
                if value.is_empty() {
                    "-"
                } else {
                    value.as_str()
                }
            })
            .unwrap_or("-")
            .to_string()
    };
    match by {
        GroupBy::Process => format!("{}[{}]/", value("exe"), value("pid")),
        // As `docker ps` shows them; JSON has them whole.
        GroupBy::Container => format!(
            "{}/",
            value("container_id").chars().take(12).collect::<String>()
        ),
        _ => key
            .first()
            .map(|(field, _)| format!("{}/", value(field)))
            .unwrap_or_default(),
    }
}
