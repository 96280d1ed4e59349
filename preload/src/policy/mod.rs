//! The policy in this process: the settings from the environment, the
//! compiled decision table, the slots that hold the policy in force, the
//! verdicts of `path` rules cached per descriptor, the rate limiters and
//! host budgets, and loading and reloading the file.
//!
//! Imports only go down, in this order: `settings`, `limiter` and `budget`
//! (which know nothing of each other), `compile`, `active`, `path_cache`,
//! `limits`, `load`.

pub mod active;
pub mod budget;
pub mod compile;
pub mod limiter;
pub mod limits;
pub mod load;
pub mod path_cache;
pub mod settings;
