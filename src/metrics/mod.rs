//! What the merged statistics say, rendered: the layer that `report`,
//! `serve` and `run` share, so that no command imports another.
//!
//! `load` reads what a command was pointed at (or this user's defaults)
//! through the one reader (`crate::records`) and adds records up; `table`
//! is the call table (`report --format table`, and what `run` prints when
//! its program ends); `callers` names the call sites of merged records
//! (`--by caller`); `prometheus` builds the metric families and their
//! exposition (`report --format prometheus` and `serve`'s `GET /metrics`).

pub mod callers;
pub mod load;
pub mod prometheus;
pub mod table;
