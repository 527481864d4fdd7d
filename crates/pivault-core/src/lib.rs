//! pivault use cases. Each one is: check (a pure decision) + encrypted write + audit append,
//! in ONE store transaction — if the audit append fails, the change fails.
//!
//! Invariants:
//! - PI values exist in clear only in memory, between `open` and the response; never in logs,
//!   errors, audit rows or the database.
//! - Every read names a purpose and is decided by `pivault_domain::decision::decide`; the
//!   decision (allow or deny) is audited before any value is returned.
//! - A subject's fields are sealed under its DEK (scope `primary`); erasure destroys that DEK
//!   (crypto-shredding) and its blind-index entries. Categories under a legal retention period
//!   are re-sealed under a separate `restricted` DEK and readable only for a legal obligation.
//! - A vault opens only with the database's master key ([`keycheck`]): a wrong or missing key
//!   is refused before anything is written. The audit chain is keyed with a key derived from
//!   it, and [`audit_verify`] checks the chain, its head and the chain against the contents.

mod access;
pub mod anon_export;
pub mod api_keys;
pub mod audit_verify;
pub mod center;
pub mod cessation;
pub mod consents;
pub mod decisions;
pub mod deidentify;
pub mod dsr;
pub mod erasure;
pub mod error;
pub mod fault;
pub mod field_verify;
pub mod holds;
pub mod import;
pub mod incidents;
pub mod key_rotation;
pub mod keycheck;
pub mod lifecycle;
pub mod messages;
pub mod metrics;
pub mod misuse;
pub mod outbox;
pub mod policy_changes;
pub mod ports;
pub mod provisions;
pub mod reads;
pub mod retention;
mod services;
pub mod subjects;
pub mod transparency;
pub mod values;
mod vault;

pub use anon_export::{AnonExportReport, KRefusal};
pub use api_keys::{ApiKeyInfo, Expiry, NewApiKey};
pub use audit_verify::AuditVerifyReport;
pub use center::{CenterSession, CookieChoice, CookieMethod};
pub use cessation::CessationStatus;
pub use consents::ConsentInput;
pub use erasure::{ErasureReceipt, RetainedCategory};
pub use error::{CoreError, Denial};
pub use field_verify::FieldVerifyReport;
pub use holds::HoldInput;
pub use incidents::{Announcement, IncidentInput, IncidentScope, IncidentView, NotifyOutcome};
pub use key_rotation::{KeyGenInfo, KeyJobProgress, KeyStatus};
pub use lifecycle::NotReady;
pub use metrics::{Door, Metrics};
pub use outbox::{DeliveryReport, OutboxView, PrintLetter};
pub use pivault_store::{
    AnonOrderRow, AnonWeblogRow, CheckpointRow, DsrFilter, HoldRow, StorageFault,
};
pub use policy_changes::{ChangeImpact, OutdatedConsent};
pub use reads::{LookupResult, ReadResult};
pub use retention::{ActiveHolds, RetentionLine, SweepOptions, SweepProgress, SweepReport};
pub use services::principals::{Principal, ROLE_ADMIN, ROLE_APP, ROLE_OPERATOR, STAFF_ROLES};
pub use values::{FailedField, FieldInput, FieldOutput, FIELD_INTEGRITY_FAILED};
pub use vault::{ReceiptKey, Vault};
