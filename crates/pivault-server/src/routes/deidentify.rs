//! `POST /v1/deidentify`: de-identification (pseudonymization; GB/T 35273-2020 §3.15). Keyed,
//! deterministic tokens that the key holder can reverse; the answer says they are still
//! personal information. Decided as a use of the identifier's category for the purpose, and
//! audited (count, never values). Reversing is CLI-only (`pivault deidentify reverse`).

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, RequestId};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use pivault_core::deidentify::{DEIDENTIFICATION, DEIDENTIFIED_CLASSIFICATION};
use pivault_core::CoreError;
use pivault_domain::identifiers::IdentifierKind;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The de-identification route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deidentify))
}

/// `POST /v1/deidentify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeidentifyBody {
    /// `account_id` | `mobile` | `email` | `id_card`.
    pub kind: String,
    /// Purpose of the use (must cover the identifier's category).
    pub purpose: String,
    /// 1-1,000 identifiers, normalized before they are pseudonymized.
    pub values: Vec<String>,
}

/// `POST /v1/deidentify` answer: tokens in the order of the values.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeidentifyOut {
    /// Always `personal_information`: the key holder can reverse a token.
    pub classification: &'static str,
    /// What was done (de-identification, not anonymization).
    pub operation: &'static str,
    /// `pz1.…` tokens, one per value; equal identifiers give equal tokens.
    pub tokens: Vec<String>,
}

/// De-identifies identifiers: keyed, reversible tokens that are still PI (app role).
#[utoipa::path(post, path = "/deidentify", tag = "subjects",
    request_body = DeidentifyBody,
    responses((status = 200, description = "The tokens", body = DeidentifyOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn deidentify(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<DeidentifyBody>,
) -> Result<Json<DeidentifyOut>, ApiError> {
    let kind = IdentifierKind::parse_name(&body.kind).ok_or_else(|| {
        CoreError::invalid(
            "kind",
            "unknown_identifier_kind",
            "kind is account_id, mobile, email, id_card or guardian_mobile",
        )
    })?;
    let tokens = s
        .vault
        .pseudonymize(&p, kind, &body.purpose, &body.values, rid.as_deref())
        .await?;
    Ok(Json(DeidentifyOut {
        classification: DEIDENTIFIED_CLASSIFICATION,
        operation: DEIDENTIFICATION,
        tokens,
    }))
}
