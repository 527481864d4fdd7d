//! `POST /v1/lookup`: exact lookup by an identifier through the blind indexes.

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, RequestId};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The lookup route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(lookup))
}

/// `POST /v1/lookup` body. The value travels in the body, never in a URL (URLs end up in logs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// `account_id` | `mobile` | `email` | `id_card`.
    pub by: String,
    /// The identifier as the caller has it; normalized before matching.
    pub value: String,
    /// Purpose of the lookup.
    pub purpose: String,
}

/// `POST /v1/lookup` answer: every match (identifiers are not unique) and the count.
#[derive(Debug, Serialize, ToSchema)]
pub struct LookupOut {
    /// Matches.
    pub count: usize,
    /// Subject ids.
    pub subjects: Vec<String>,
}

/// Finds the subjects holding an identifier (blind index); answers ids only.
#[utoipa::path(post, path = "/lookup", tag = "subjects",
    request_body = Lookup,
    responses(
        (status = 200, description = "Every match", body = LookupOut),
        (status = 403, description = "The key may not act for this purpose, or the decision denied it"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn lookup(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<Lookup>,
) -> Result<Json<LookupOut>, ApiError> {
    let r = s
        .vault
        .lookup(&p, &body.by, &body.value, &body.purpose, rid.as_deref())
        .await?;
    Ok(Json(LookupOut {
        count: r.count,
        subjects: r.subjects,
    }))
}
