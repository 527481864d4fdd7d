//! `POST /v1/subjects` (create) and `DELETE /v1/subjects/{id}` (erasure).

use super::bad_query;
use super::fields::FieldIn;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth, RequestId};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use pivault_core::values::format_timestamp;
use pivault_core::{ErasureReceipt, FieldInput};
use pivault_domain::erasure::ErasureGround;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The subject routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_subject))
        .routes(routes!(erase_subject))
        .routes(routes!(close_account))
        .routes(routes!(set_lang))
}

/// `PUT /v1/subjects/{id}/lang` body and answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LangBody {
    /// `zh-CN` or `en`: the language of the subject's notices (default `zh-CN`).
    pub lang: String,
}

/// Records the language the subject's notices are written in (app; policy §8.3).
#[utoipa::path(put, path = "/subjects/{id}/lang", tag = "subjects",
    params(("id" = String, Path, description = "Subject id")),
    request_body = LangBody,
    responses((status = 200, description = "The language on record", body = LangBody)),
    security(("bearer" = []), ("api_key" = [])))]
async fn set_lang(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<LangBody>,
) -> Result<Json<LangBody>, ApiError> {
    let lang = s.vault.set_subject_lang(&p, &id, &b.lang).await?;
    Ok(Json(LangBody { lang }))
}

/// `POST /v1/subjects/{id}/close` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClosedOut {
    /// Subject id.
    pub subject_id: String,
    /// When the account was closed, RFC 3339: the start of every `account_closed` retention
    /// clock (policy §7.1, §8.2).
    pub closed_at: String,
}

/// Records that the subject's account was closed (admin or dpo): the `account_closed`
/// retention clocks start; the sweep deletes each such category when its `keep_for` has run.
#[utoipa::path(post, path = "/subjects/{id}/close", tag = "subjects",
    params(("id" = String, Path, description = "Subject id")),
    responses((status = 200, description = "Closed", body = ClosedOut),
        (status = 409, description = "The subject was erased")),
    security(("bearer" = []), ("api_key" = [])))]
async fn close_account(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClosedOut>, ApiError> {
    let at = s.vault.close_account(&p, &id).await?;
    Ok(Json(ClosedOut {
        subject_id: id,
        closed_at: format_timestamp(at),
    }))
}

/// `POST /v1/subjects` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubject {
    /// `account` (default) or `business_contact`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Purpose of collection.
    pub purpose: String,
    /// Initial fields.
    pub fields: Vec<FieldIn>,
}

/// `POST /v1/subjects` answer (201).
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The new subject's id.
    pub id: String,
}

/// Creates a subject with its first fields, collected for `purpose` (decided like a `collect`).
#[utoipa::path(post, path = "/subjects", tag = "subjects",
    request_body = CreateSubject,
    responses(
        (status = 201, description = "The subject was created", body = Created),
        (status = 403, description = "The key may not collect for this purpose, or the decision denied it"),
        (status = 409, description = "The account id exists or was erased"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn create_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<CreateSubject>,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let fields: Vec<FieldInput> = body.fields.into_iter().map(Into::into).collect();
    let kind = body.kind.as_deref().unwrap_or("account");
    let id = s
        .vault
        .create_subject(&p, kind, &body.purpose, &fields, rid.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// `DELETE /v1/subjects/{id}` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EraseQuery {
    /// Ground of the deletion (policy §7.1 / PIPL Art. 47), e.g. `subject_request`.
    #[serde(default)]
    pub ground: Option<String>,
}

/// A category kept after erasure (restricted, for a legal obligation).
#[derive(Debug, Serialize, ToSchema)]
pub struct RetainedOut {
    /// Category key.
    pub category: String,
    /// Fields kept.
    pub fields: u64,
    /// Release date, RFC 3339.
    pub until: String,
    /// Why it is kept.
    pub basis: String,
    /// Policy clause.
    pub clause: String,
}

/// `DELETE /v1/subjects/{id}` answer: the erasure receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureOut {
    /// The subject.
    pub subject_id: String,
    /// When, RFC 3339.
    pub erased_at: String,
    /// The destroyed data key's id.
    pub destroyed_key_id: String,
    /// Fields deleted.
    pub deleted_fields: u64,
    /// Categories deleted.
    pub deleted_categories: Vec<String>,
    /// Blind-index entries removed.
    pub blind_index_entries_removed: u64,
    /// What is kept, until when, why.
    pub retained: Vec<RetainedOut>,
    /// The deletion request that carried it out (`GET /v1/dsr/{id}`).
    pub request_id: String,
    /// The signed deletion receipt (`payload`, `signature`, `public_key`, `algorithm`;
    /// Ed25519, RFC 8032): save it as a file for `pivault dsr verify-receipt`.
    pub receipt: serde_json::Value,
}

impl From<ErasureReceipt> for ErasureOut {
    fn from(r: ErasureReceipt) -> Self {
        Self {
            subject_id: r.subject_id,
            erased_at: format_timestamp(r.erased_at),
            destroyed_key_id: r.destroyed_key_id,
            deleted_fields: r.deleted_fields,
            deleted_categories: r.deleted_categories,
            blind_index_entries_removed: r.blind_index_entries_removed,
            retained: r
                .retained
                .into_iter()
                .map(|c| RetainedOut {
                    category: c.category,
                    fields: c.fields,
                    until: format_timestamp(c.until),
                    basis: c.basis,
                    clause: c.clause,
                })
                .collect(),
            receipt: serde_json::from_str(&r.signed_receipt).unwrap_or_default(),
            request_id: r.request_id,
        }
    }
}

/// Erases a subject (admin): files and runs a deletion request on the privacy office's
/// authority (PIPL Art. 47); answers the request id and the signed receipt.
#[utoipa::path(delete, path = "/subjects/{id}", tag = "subjects",
    params(("id" = String, Path, description = "Subject id"), EraseQuery),
    responses(
        (status = 200, description = "Erased; the receipt", body = ErasureOut),
        (status = 409, description = "Already erased"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn erase_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<EraseQuery>, QueryRejection>,
) -> Result<Json<ErasureOut>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let ground = match q.ground.as_deref() {
        None => ErasureGround::SubjectRequest,
        Some(g) => ErasureGround::parse(g).ok_or_else(|| {
            ApiError::from(pivault_core::CoreError::invalid(
                "ground",
                "unknown_ground",
                "ground is one of PIPL Art. 47 / policy §7.1: subject_request, purpose_achieved, service_ended, retention_expired, consent_withdrawn, unlawful_processing, no_consent, breach_of_agreement",
            ))
        })?,
    };
    let r = s
        .vault
        .erase_subject(&p, &id, ground, rid.as_deref())
        .await?;
    Ok(Json(r.into()))
}
