//! One module per resource, each with its request and response types (wire types reject
//! unknown fields) and its handlers. The JSON of every response is a `Serialize` struct whose
//! fields are in wire order.

pub mod audit;
pub mod consents;
pub mod decisions;
pub mod deidentify;
pub mod dsr;
pub mod dsr_schema;
pub mod fields;
pub mod health;
pub mod holds;
pub mod incidents;
pub mod keys;
pub mod lookup;
pub mod policy;
pub mod reports;
pub mod security;
pub mod subjects;

use crate::error::ApiError;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use pivault_domain::Code;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

/// The `/v1` routes, each documented in the OpenAPI description ([`crate::openapi`]).
///
/// Every route is added with `routes!(handler, …)` on an `OpenApiRouter` (never a plain
/// axum route), so the router and the document come from this one list;
/// `tests/openapi.rs` checks that no route bypasses it. A new resource (e.g. `/v1/keys`) is a
/// module here with its own `routes()` merged below.
pub fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(subjects::routes())
        .merge(fields::routes())
        .merge(consents::routes())
        .merge(decisions::routes())
        .merge(reports::routes())
        .merge(lookup::routes())
        .merge(policy::routes())
        .merge(dsr::routes())
        .merge(keys::routes())
        .merge(holds::routes())
        .merge(deidentify::routes())
        .merge(incidents::routes())
        .merge(security::routes())
        .merge(audit::routes())
}

/// A query string that does not parse: 400 `invalid_query`, without serde's message.
pub(crate) fn bad_query(_: QueryRejection) -> ApiError {
    ApiError::new(Code::InvalidQuery, "unknown or malformed query parameter")
}

/// A query parameter that parses but is out of range, empty or contradicts another: 422
/// `invalid_parameter` naming the parameter (never its value). Bad input is refused, never
/// clamped or replaced by a default.
pub(crate) fn invalid_parameter(field: &'static str, message: &'static str) -> ApiError {
    let mut e = ApiError::new(Code::InvalidParameter, message);
    e.detail = Some(Box::new(serde_json::json!({ "field": field })));
    e
}

/// A category withheld from a read or a decision, with its reason code.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithheldOut {
    /// Category key.
    pub category: String,
    /// Reason code (a decision reason of [`Code`]).
    pub reason: &'static str,
}

/// A field that failed authentication when opened (issue 11, defect 5): where it is and the
/// code `field_integrity_failed`, never its value. The other fields are still released.
#[derive(Debug, Serialize, ToSchema)]
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
