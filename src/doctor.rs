//! Not written yet.
use crate::Outcome;
pub fn main(_args: crate::cli::DoctorArgs) -> Outcome {
    Err(crate::Failure("not implemented yet".into()))
}
