//! Not written yet.
use crate::Outcome;
pub fn install(_args: crate::cli::InstallArgs) -> Outcome {
    Err(crate::Failure("not implemented yet".into()))
}
pub fn uninstall(_args: crate::cli::UninstallArgs) -> Outcome {
    Err(crate::Failure("not implemented yet".into()))
}
