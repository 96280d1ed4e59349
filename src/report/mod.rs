//! Not written yet.
use crate::Outcome;
pub fn main(_args: crate::cli::ReportArgs) -> Outcome {
    Err(crate::Failure("not implemented yet".into()))
}
