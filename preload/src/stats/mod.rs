//! This process's statistics: per call, counters and a latency histogram,
//! updated with one relaxed atomic add per event.

pub mod counters;
