//! The dump file: its writer (run by the preload library, possibly inside a
//! signal handler) and its reader (run by reports), side by side so the two
//! cannot drift apart.
//!
//! A dump is text. The top is for people (`cat` it): a few `key value` lines
//! about the process and a table of every call made. The bottom is for
//! `fadvise-shim report`: one `stats` line and one `buckets` line per call,
//! holding the exact counters, then `end`. A reader refuses a file without
//! `end` or with another histogram layout rather than misreport it.
//!
//! The writer never allocates: it walks a `Snapshot` and writes to a `Sink`.
//!
//! By role: `write` (the writer, signal-handler safe), `parse` (the
//! reader), `table` (the call table both dumps and reports print). Every
//! item is re-exported here: users name `dump::write_dump`, never the file
//! it is in.

mod parse;
mod table;
#[cfg(test)]
mod tests;
mod write;

pub use parse::{parse_dump, Budget, Dump, DumpError};
pub use table::{write_table_heading, write_table_row, TABLE_COLUMNS};
pub use write::{write_dump, write_dump_with_sites, BudgetUse, Budgets, Header, NoBudgets, Reason};

/// The first line's start, which says the format and its version.
const MAGIC: &str = "# fadvise-shim dump 1";
/// The last line: a file without it was cut short.
const END: &str = "end";

/// File-name suffix of dumps: `<exe>.<pid>.dump`.
pub const FILE_SUFFIX: &str = ".dump";
