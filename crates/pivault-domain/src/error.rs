//! The crate's error type, [`DomainError`]: one enum callers can match on and
//! convert from. It never carries PI values: identifier errors hold only a
//! stable code and a fixed reason, policy errors only positions and messages
//! about the policy file.

use crate::identifiers::InvalidValue;
use crate::policy::PolicyErrors;

/// Any failure of the domain layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// An identifier or field value was rejected by its parser.
    #[error("invalid value: {0}")]
    InvalidValue(#[from] InvalidValue),
    /// A policy file failed validation; one diagnostic per line.
    #[error("invalid policy:\n{0}")]
    Policy(#[from] PolicyErrors),
}

impl DomainError {
    /// A stable, machine-readable code: the [`InvalidValue::code`] (e.g.
    /// `mobile_too_short`) or `policy_invalid`.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::InvalidValue(e) => e.code,
            DomainError::Policy(_) => "policy_invalid",
        }
    }
}
