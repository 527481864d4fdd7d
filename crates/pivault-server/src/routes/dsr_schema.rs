//! OpenAPI schemas of the `/v1/dsr` wire types that live in `pivault-core`
//! ([`pivault_core::dsr::DsrInput`], `CorrectionInput`, `CreatedDsr`, `DsrView`, `Rejection`).
//!
//! Core stays free of the OpenAPI dependency, so these are schema-only mirrors named after the
//! core types. `tests/openapi.rs` serializes and deserializes the core types against them, so
//! a field added to core and not here (or the reverse) fails the test.

use serde_json::Value;
use utoipa::ToSchema;

/// `POST /v1/dsr` body: a new request as the requester files it (mirror of
/// [`pivault_core::dsr::DsrInput`]). Exactly one of `email` and `mobile`.
#[derive(ToSchema)]
#[schema(as = DsrInput)]
#[allow(dead_code)]
pub struct DsrInputDoc {
    /// `access`, `copy`, `correction`, `deletion`, `withdrawal`, `cancellation`, `explanation`.
    pub kind: String,
    /// The email the requester claims (a code goes to it).
    pub email: Option<String>,
    /// The mobile the requester claims (a code goes to it by SMS).
    pub mobile: Option<String>,
    /// Deadline jurisdiction; defaults to the policy's `default_jurisdiction`.
    pub jurisdiction: Option<String>,
    /// Deletion: the ground (PIPL Art. 47); defaults to `subject_request`.
    pub ground: Option<String>,
    /// Withdrawal: purposes to withdraw; absent or empty = every consent in force (not `null`).
    #[schema(required = false)]
    pub purposes: Vec<String>,
    /// Correction: the corrected fields (PIPL Art. 46); absent = none (not `null`).
    #[schema(required = false)]
    pub corrections: Vec<CorrectionDoc>,
}

/// One corrected field (mirror of `pivault_core::dsr::CorrectionInput`).
#[derive(ToSchema)]
#[schema(as = CorrectionInput)]
#[allow(dead_code)]
pub struct CorrectionDoc {
    /// Category key.
    pub category: String,
    /// Record; defaults to `profile`.
    pub record: Option<String>,
    /// Field name; defaults to the category key.
    pub name: Option<String>,
    /// The corrected value, typed by the category.
    pub value: Value,
}

/// One filed request: its id and the requester's token, shown once (mirror of
/// `pivault_core::dsr::CreatedDsr`).
#[derive(ToSchema)]
#[schema(as = CreatedDsr)]
#[allow(dead_code)]
pub struct CreatedDsrDoc {
    /// Request id.
    pub id: String,
    /// Bearer token for the requester's calls on this request (`X-Dsr-Token`).
    pub token: String,
    /// State after creation (`identity_unverified`).
    pub state: String,
    /// RFC 3339 due date.
    pub due_at: String,
}

/// A refusal and its reasons (mirror of `pivault_core::dsr::Rejection`).
#[derive(ToSchema)]
#[schema(as = Rejection)]
#[allow(dead_code)]
pub struct RejectionDoc {
    /// Stable rejection code (PIPL Art. 50).
    pub code: String,
    /// Sentence for the requester.
    pub explanation: String,
    /// Rule relied on.
    pub source: String,
}

/// A request as shown to staff (with `subject_id`) or to the requester (without) (mirror of
/// `pivault_core::dsr::DsrView`). Optional fields are absent, not `null`.
#[derive(ToSchema)]
#[schema(as = DsrView)]
#[allow(dead_code)]
pub struct DsrViewDoc {
    /// Request id.
    pub id: String,
    /// Request kind.
    pub kind: String,
    /// PIPL article of the right exercised.
    pub article: String,
    /// State.
    pub state: String,
    /// Subject id (staff views only).
    #[schema(required = false, nullable = false)]
    pub subject_id: Option<String>,
    /// Refusal: code, sentence and rule (Art. 50).
    #[schema(required = false, nullable = false)]
    pub rejection: Option<RejectionDoc>,
    /// The step that failed.
    #[schema(required = false, nullable = false)]
    pub failed_step: Option<String>,
    /// Jurisdiction key.
    pub jurisdiction: String,
    /// RFC 3339.
    pub received_at: String,
    /// RFC 3339: the effective due date (extended when extended).
    pub due_at: String,
    /// Whether an extension with notice applies.
    pub extended: bool,
    /// Open past its due date.
    pub overdue: bool,
    /// The request this one duplicates.
    #[schema(required = false, nullable = false)]
    pub duplicate_of: Option<String>,
    /// Steps committed so far.
    pub steps_done: Vec<String>,
    /// Steps of this kind, in order.
    pub steps: Vec<String>,
    /// Signed receipt (deletion, cancellation).
    #[schema(required = false, nullable = false)]
    pub receipt: Option<Value>,
    /// RFC 3339, when completed.
    #[schema(required = false, nullable = false)]
    pub completed_at: Option<String>,
}
