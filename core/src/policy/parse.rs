//! Placeholder: the TOML parser is being written.
use super::Policy;
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError { pub line: usize, pub column: usize, pub message: String }
pub fn parse_policy(_text: &str) -> Result<Policy, Vec<PolicyError>> { Ok(Policy::default()) }
pub fn parse_policy_bytes(bytes: &[u8]) -> Result<Policy, Vec<PolicyError>> {
    parse_policy(std::str::from_utf8(bytes).unwrap_or(""))
}
