//! `POST /v1/subjects/{id}/consents` (record a consent event) and `GET` (the ledger and the
//! consents in force).

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth, RequestId};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pivault_core::values::{format_timestamp, parse_timestamp};
use pivault_core::{ConsentInput, CoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The consent routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(record_consent, list_consents))
}

/// `POST /v1/subjects/{id}/consents` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {
    /// Purpose id.
    pub purpose: String,
    /// `grant` | `withdraw`.
    pub action: String,
    /// `self` (default) | `guardian`.
    #[serde(default)]
    pub given_by: Option<String>,
    /// Collection method (default `api`).
    #[serde(default)]
    pub method: Option<String>,
    /// Collected as a separate consent (PIPL Art. 29).
    #[serde(default)]
    pub separate: bool,
    /// When the subject acted, RFC 3339 (default: now).
    #[serde(default)]
    pub at: Option<String>,
    /// Caller's idempotency id.
    #[serde(default)]
    pub event_ref: Option<String>,
    /// The recipient the consent names (PIPL Art. 23/39), or `public` (Art. 25).
    #[serde(default)]
    pub recipient: Option<String>,
}

/// `POST /v1/subjects/{id}/consents` answer (201): the recorded event.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedOut {
    /// Idempotency id.
    pub event_ref: String,
    /// Purpose id.
    pub purpose: String,
    /// `grant` | `withdraw`.
    pub action: String,
    /// When, RFC 3339.
    pub at: String,
    /// `self` | `guardian`.
    pub given_by: String,
    /// Separate consent.
    pub separate: bool,
    /// Policy version in force.
    pub policy_version: String,
    /// Named recipient.
    pub recipient: Option<String>,
}

/// One event of the consent ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Ledger sequence number.
    pub seq: i64,
    /// Idempotency id.
    pub event_ref: String,
    /// Purpose id.
    pub purpose: String,
    /// `grant` | `withdraw`.
    pub action: String,
    /// When, RFC 3339.
    pub at: String,
    /// `self` | `guardian`.
    pub given_by: String,
    /// Collection method.
    pub method: String,
    /// Separate consent.
    pub separate: bool,
    /// Policy version in force.
    pub policy_version: String,
    /// Named recipient.
    pub recipient: Option<String>,
}

/// A consent in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActiveOut {
    /// Purpose id (with `@recipient` for a recipient's consent).
    pub purpose: String,
    /// `self` | `guardian`.
    pub given_by: &'static str,
    /// Separate consent.
    pub separate: bool,
    /// Since, RFC 3339.
    pub since: String,
    /// Policy version in force.
    pub policy_version: String,
}

/// `GET /v1/subjects/{id}/consents` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentsOut {
    /// The ledger.
    pub events: Vec<EventOut>,
    /// The consents in force.
    pub active: Vec<ActiveOut>,
}

/// Records a consent event (grant or withdraw) in the subject's ledger.
#[utoipa::path(post, path = "/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, description = "Subject id")),
    request_body = ConsentIn,
    responses(
        (status = 201, description = "The event was recorded", body = RecordedOut),
        (status = 409, description = "The subject was erased, or the `event_ref` was recorded differently"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn record_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ConsentIn>,
) -> Result<(StatusCode, Json<RecordedOut>), ApiError> {
    let at = match body.at.as_deref() {
        None => None,
        Some(t) => Some(
            parse_timestamp(t)
                .map_err(|e| ApiError::from(CoreError::invalid("at", e.code, e.reason)))?,
        ),
    };
    let input = ConsentInput {
        purpose: body.purpose,
        action: body.action,
        given_by: body.given_by.unwrap_or_else(|| "self".into()),
        method: body.method.unwrap_or_else(|| "api".into()),
        separate: body.separate,
        at,
        event_ref: body.event_ref,
        policy_version: None,
        recipient: body.recipient,
    };
    let row = s
        .vault
        .record_consent(&p, &id, &input, rid.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RecordedOut {
            event_ref: row.event_ref,
            purpose: row.purpose,
            action: row.action,
            at: format_timestamp(row.at),
            given_by: row.given_by,
            separate: row.separate,
            policy_version: row.policy_version,
            recipient: row.recipient,
        }),
    ))
}

/// The consent ledger of a subject and the consents in force.
#[utoipa::path(get, path = "/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 200, description = "The ledger and the consents in force", body = ConsentsOut),
        (status = 409, description = "The subject was erased"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn list_consents(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ConsentsOut>, ApiError> {
    let (rows, active) = s.vault.consents(&p, &id).await?;
    Ok(Json(ConsentsOut {
        events: rows
            .into_iter()
            .map(|r| EventOut {
                seq: r.seq,
                event_ref: r.event_ref,
                purpose: r.purpose,
                action: r.action,
                at: format_timestamp(r.at),
                given_by: r.given_by,
                method: r.method,
                separate: r.separate,
                policy_version: r.policy_version,
                recipient: r.recipient,
            })
            .collect(),
        active: active
            .into_iter()
            .map(|(purpose, a)| ActiveOut {
                purpose,
                given_by: a.given_by.as_str(),
                separate: a.separate,
                since: format_timestamp(a.at.unix_timestamp()),
                policy_version: a.policy_version,
            })
            .collect(),
    }))
}
