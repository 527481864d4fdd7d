//! pivault-domain: the pure domain of the PI vault, with no IO.
//!
//! Owns the identifiers of PI subjects ([`identifiers`]: parse, don't validate),
//! the policy model and parser ([`policy`]: categories, purposes, legal bases,
//! retention), the consent ledger fold ([`consent`]), the purpose decision
//! ([`decision`]: a pure function of policy, subject facts, request and time),
//! data subject requests ([`dsr`]: kinds, states, steps, deadlines), the
//! grounds of an erasure ([`erasure`]), the audit record model ([`audit`]),
//! the [`clock`], the crate error ([`DomainError`]) and the service's error
//! vocabulary ([`Code`]), and Unicode hygiene of typed input ([`text`]: NFKC, invisible
//! characters), web logs ([`weblog`]: parse nginx `combined` lines, link a line to its
//! account, anonymize it) and anonymization of kept records ([`anonymize`]: orders,
//! k-anonymity), and the texts sent to people ([`notice`]: security incident notices and
//! announcements, cessation, cross-border and misuse-lock notices, one-time codes, in
//! Chinese or English). Reading files, clocks and
//! randomness are the caller's job; nothing here does IO or panics on input.

pub mod anonymize;
pub mod audit;
pub mod clock;
pub mod code;
pub mod consent;
pub mod decision;
pub mod dsr;
pub mod erasure;
pub mod error;
pub mod identifiers;
pub mod incident;
pub mod notice;
pub mod policy;
pub mod text;
pub mod weblog;

pub use code::Code;
pub use consent::ConsentMethod;
pub use dsr::DsrStep;
pub use erasure::ErasureGround;
pub use error::DomainError;
pub use identifiers::{AccountId, Email, IdCardNumber, IdentifierKind, InvalidValue, Mobile};
pub use incident::{IncidentPolicy, Severity};
pub use policy::{
    AnonymizationRule, AnonymizedSet, Category, Diagnostic, EndAction, LegalBasis, Policy,
    PolicyErrors, Purpose, PurposeId, Recipient, RecipientKind, Retention, RetentionClock,
    RetentionPeriod, Sensitivity, ValueType,
};

#[cfg(test)]
mod testutil;
