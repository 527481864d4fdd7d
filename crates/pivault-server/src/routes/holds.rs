//! `/v1/holds`: legal holds for `admin` and `dpo` (issue 12). A hold on a subject or a
//! category stops the retention sweep and erasures from deleting what it covers until it is
//! released (PIPL Art. 47 para. 2); it never stops the subject from seeing the data. Each
//! change is audited in its transaction (the hold id, target and reference; never the reason).

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use pivault_core::values::format_timestamp;
use pivault_core::{HoldInput, HoldRow};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `/v1/holds` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(release))
}

/// A legal hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldOut {
    /// Hold id (`hold_` + 32 hex characters).
    pub id: String,
    /// The subject held (`null` for a category hold).
    pub subject_id: Option<String>,
    /// The category held (`null` for a subject hold).
    pub category: Option<String>,
    /// Why.
    pub reason: String,
    /// Case, order or ticket number.
    pub reference: String,
    /// Who set it.
    pub set_by: String,
    /// When, RFC 3339.
    pub set_at: String,
    /// Who released it (`null`: active).
    pub released_by: Option<String>,
    /// When, RFC 3339 (`null`: active).
    pub released_at: Option<String>,
}

impl From<HoldRow> for HoldOut {
    fn from(h: HoldRow) -> Self {
        Self {
            id: h.id,
            subject_id: h.subject_id,
            category: h.category,
            reason: h.reason,
            reference: h.reference,
            set_by: h.set_by,
            set_at: format_timestamp(h.set_at),
            released_by: h.released_by,
            released_at: h.released_at.map(format_timestamp),
        }
    }
}

/// `GET /v1/holds` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldListOut {
    /// The holds.
    pub holds: Vec<HoldOut>,
}

/// `GET /v1/holds` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HoldQuery {
    /// Include released holds (default false).
    #[serde(default)]
    pub all: Option<bool>,
}

/// `POST /v1/holds` body: exactly one of `subject_id` and `category`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// The subject to hold.
    #[serde(default)]
    pub subject_id: Option<String>,
    /// The category to hold (every subject's).
    #[serde(default)]
    pub category: Option<String>,
    /// Why: 1-500 characters, no control characters.
    pub reason: String,
    /// Case, order or ticket number: 1-64 of `A-Z a-z 0-9 _ . : / -`.
    pub reference: String,
}

/// Legal holds (admin, dpo): active ones, or all with `all=true`.
#[utoipa::path(get, path = "/holds", tag = "holds",
    params(HoldQuery),
    responses((status = 200, description = "The holds", body = HoldListOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<HoldQuery>, QueryRejection>,
) -> Result<Json<HoldListOut>, ApiError> {
    let Query(q) = q.map_err(super::bad_query)?;
    let holds = s.vault.hold_list(&p, !q.all.unwrap_or(false)).await?;
    Ok(Json(HoldListOut {
        holds: holds.into_iter().map(Into::into).collect(),
    }))
}

/// Sets a legal hold (admin, dpo).
#[utoipa::path(post, path = "/holds", tag = "holds",
    request_body = HoldBody,
    responses((status = 201, description = "The hold", body = HoldOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(body): ApiJson<HoldBody>,
) -> Result<(StatusCode, Json<HoldOut>), ApiError> {
    let h = s
        .vault
        .hold_set(
            &p,
            HoldInput {
                subject_id: body.subject_id,
                category: body.category,
                reason: body.reason,
                reference: body.reference,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(h.into())))
}

/// Releases a legal hold (admin, dpo); the next sweep acts on what it held.
#[utoipa::path(post, path = "/holds/{id}/release", tag = "holds",
    params(("id" = String, Path, description = "Hold id")),
    responses((status = 200, description = "The hold, released", body = HoldOut),
        (status = 409, description = "Already released")),
    security(("bearer" = []), ("api_key" = [])))]
async fn release(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HoldOut>, ApiError> {
    Ok(Json(s.vault.hold_release(&p, &id).await?.into()))
}
