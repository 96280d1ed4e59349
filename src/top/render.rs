//! Rendering `top`'s screen as text: a header line (time, live processes,
//! totals) and one row per group, from `sample::Row`s already sorted.
//!
//! Identity strings (container ids, executable names) come from files any
//! process sharing the directory can write, and executable names from file
//! names anyone can choose: every control character in them (C0, DEL and
//! C1, which a terminal takes for escape sequences) is printed as `?`.

use std::time::{SystemTime, UNIX_EPOCH};

use fadvise_shim_core::text::{clean, Cell};

use super::sample::{live_processes, Row, EXITED};
use crate::cli::TopBy;

/// What the header says besides the rows.
pub struct Header<'a> {
    pub by: TopBy,
    pub sort: &'a str,
    /// Files skipped as unreadable in the last sample.
    pub skipped: usize,
}

/// The lines of the screen. With `size` (rows, columns) the text is cut to
/// fit a terminal of that size; without, every row is printed whole.
pub fn lines(header: &Header, rows: &[Row], size: Option<(usize, usize)>) -> Vec<String> {
    let calls: f64 = rows.iter().map(|row| row.calls_per_second).sum();
    let passed_ns: f64 = rows.iter().map(|row| row.passed_ns_per_second).sum();
    let live = live_processes(rows);
    let plural = if live == 1 { "" } else { "es" };
    let mut top = format!(
        "fadvise-shim top  {}  {live} live process{plural}  {} calls/s  {}/s in passed calls  by {}, sorted by {}",
        clock(),
        rate(calls),
        duration(passed_ns),
        by_name(header.by),
        header.sort,
    );
    if header.skipped > 0 {
        top.push_str(&format!("  ({} unreadable files skipped)", header.skipped));
    }
    let mut lines = vec![top, heading(header.by)];
    lines.extend(rows.iter().map(|row| line(row, header.by)));
    if let Some((height, width)) = size {
        // The last line stays empty: writing it would scroll the screen.
        lines.truncate(height.saturating_sub(1).max(1));
        for line in &mut lines {
            if let Some((cut, _)) = line.char_indices().nth(width) {
                line.truncate(cut);
            }
        }
    }
    lines
}

fn by_name(by: TopBy) -> &'static str {
    match by {
        TopBy::Container => "container",
        TopBy::Exe => "exe",
        TopBy::Process => "process",
        TopBy::Pod => "pod",
    }
}

fn heading(by: TopBy) -> String {
    let group = match by {
        TopBy::Container => "CONTAINER  EXE",
        TopBy::Exe => "EXE",
        TopBy::Process => "EXE[PID]",
        TopBy::Pod => "POD  EXE",
    };
    format!(
        "{:>10} {:>9} {:>8} {:>5}  {:<16} {group}",
        "CALLS/S", "TIME/S", "P99", "LIVE", "BUSIEST"
    )
}

fn line(row: &Row, by: TopBy) -> String {
    let field = |name: &str| {
        row.key
            .iter()
            .find(|(field, _)| *field == name)
            .map(|(_, value)| sanitize(value))
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    let exes = || {
        row.exes
            .iter()
            .map(|exe| sanitize(exe))
            .collect::<Vec<_>>()
            .join(",")
    };
    let group = match by {
        TopBy::Container => format!("{}  {}", field("container_id"), exes()),
        TopBy::Pod => format!("{}  {}", field("pod_uid"), exes()),
        TopBy::Exe => field("exe"),
        TopBy::Process => {
            let pid = field("pid");
            if pid == EXITED {
                format!("{} (exited)", field("exe"))
            } else {
                format!("{}[{pid}]", field("exe"))
            }
        }
    };
    format!(
        "{:>10} {:>9} {:>8} {:>5}  {:<16} {group}",
        rate(row.calls_per_second),
        duration(row.passed_ns_per_second),
        row.p99_ns.map_or("-".into(), |ns| duration(ns as f64)),
        row.live,
        row.busiest.map_or("-", |call| call.name()),
    )
}

/// `text` as `top` shows it: every control character as `?`, uncapped (the
/// terminal's width cuts a line, see `lines`).
pub fn sanitize(text: &str) -> String {
    clean(text, '?', usize::MAX)
}

/// Calls per second: one decimal below 10, whole numbers above.
fn rate(per_second: f64) -> String {
    if per_second < 10.0 {
        format!("{per_second:.1}")
    } else {
        format!("{per_second:.0}")
    }
}

fn duration(ns: f64) -> String {
    String::from_utf8_lossy(Cell::duration(ns.round() as u64).as_bytes()).into_owned()
}

/// The wall-clock time, `HH:MM:SS UTC`.
fn clock() -> String {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let day = seconds % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_no_more_lines_or_columns_than_it_has() {
        let row = |n: u64| Row {
            key: vec![("exe", format!("program-with-a-long-name-{n}"))],
            live: 1,
            exes: vec![],
            calls_per_second: n as f64,
            passed_ns_per_second: 0.0,
            p99_ns: None,
            busiest: None,
        };
        let rows: Vec<Row> = (0..50).map(row).collect();
        let header = Header {
            by: TopBy::Exe,
            sort: "calls/s",
            skipped: 0,
        };
        let fitted = lines(&header, &rows, Some((24, 40)));
        assert_eq!(fitted.len(), 23);
        assert!(fitted.iter().all(|line| line.chars().count() <= 40));
        assert_eq!(lines(&header, &rows, None).len(), 52);
    }
}
