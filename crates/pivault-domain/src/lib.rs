//! pivault-domain: the pure domain of the PI vault, with no IO.
//!
//! Owns the identifiers of PI subjects ([`identifiers`]) and the policy model and
//! parser ([`policy`]). Reading files, clocks and randomness are the caller's job.

pub mod identifiers;
pub mod policy;

pub use identifiers::{AccountId, Email, IdCardNumber, IdentifierKind, InvalidValue, Mobile};
