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
