//! Not written yet.
use crate::Outcome;
pub fn main(_args: crate::cli::CheckArgs) -> Outcome {
    Err(crate::Failure("not implemented yet".into()))
}
