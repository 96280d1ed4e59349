//! The exported entry points and what each does: `exports` gives every
//! intercepted function its C signature and return convention; `intercept`
//! asks the policy, times or answers the call, and records it. The top
//! layer, with the start-up code: nothing below imports it.

pub mod descriptors;
pub mod exports;
pub mod intercept;
