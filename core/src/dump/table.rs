//! The call table: one row per call with its counts and latency
//! quantiles, aligned in columns. A dump's top half prints it for people;
//! `report` prints the same table (with another first column) for many
//! dumps, so both read alike. Allocation-free, like the rest of the writer.

use crate::stats::CallStats;
use crate::text::{put_cell, Cell, Sink};

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
