//! One module per resource, each with its request and response types (wire types reject
//! unknown fields) and its handlers. The JSON of every response is a `Serialize` struct whose
//! fields are in wire order.

pub mod consents;
pub mod decisions;
pub mod dsr;
pub mod fields;
pub mod health;
pub mod keys;
pub mod lookup;
pub mod policy;
pub mod reports;
pub mod subjects;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::Router;
use pivault_domain::Code;
use serde::Serialize;

/// The `/v1` routes.
pub fn v1() -> Router<AppState> {
    Router::new()
        .merge(subjects::routes())
        .merge(fields::routes())
        .merge(consents::routes())
        .merge(decisions::routes())
        .merge(reports::routes())
        .merge(lookup::routes())
        .merge(policy::routes())
        .merge(dsr::routes())
        .merge(keys::routes())
}

/// A query string that does not parse: 400 `invalid_query`, without serde's message.
pub(crate) fn bad_query(_: QueryRejection) -> ApiError {
    ApiError::new(Code::InvalidQuery, "unknown or malformed query parameter")
}

/// A category withheld from a read or a decision, with its reason code.
#[derive(Debug, Serialize)]
pub struct WithheldOut {
    /// Category key.
    pub category: String,
    /// Reason code (a decision reason of [`Code`]).
    pub reason: &'static str,
}

/// A field that failed authentication when opened (issue 11, defect 5): where it is and the
/// code `field_integrity_failed`, never its value. The other fields are still released.
#[derive(Debug, Serialize)]
pub struct FailedOut {
    /// Record.
    pub record: String,
    /// Field name.
    pub name: String,
    /// Category key.
    pub category: String,
    /// Always `field_integrity_failed`.
    pub code: &'static str,
}

impl FailedOut {
    /// The wire list of failed fields.
    pub fn list(f: &[pivault_core::FailedField]) -> Vec<Self> {
        f.iter()
            .map(|x| Self {
                record: x.record.clone(),
                name: x.name.clone(),
                category: x.category.clone(),
                code: x.code,
            })
            .collect()
    }
}

impl WithheldOut {
    /// The wire list of `(category, reason)` pairs.
    pub fn list(w: &[(String, &'static str)]) -> Vec<Self> {
        w.iter()
            .map(|(category, reason)| Self {
                category: category.clone(),
                reason,
            })
            .collect()
    }
}
