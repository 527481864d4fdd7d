//! `PUT /v1/subjects/{id}/fields` (insert or replace) and `GET /v1/subjects/{id}/fields`
//! (decided read).

use super::{bad_query, FailedOut, WithheldOut};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth, RequestId};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use pivault_core::values::format_timestamp;
use pivault_core::{FieldInput, FieldOutput, ReadResult};
use pivault_domain::Code;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The field routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_fields, read_fields))
}

/// One field on the wire.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldIn {
    /// Category key.
    pub category: String,
    /// Field name (default: the category key).
    #[serde(default)]
    pub name: Option<String>,
    /// Record (default `profile`).
    #[serde(default)]
    pub record: Option<String>,
    /// Value, typed by the category: a string, number (or decimal string), boolean, date
    /// string, or base64 for binary. Kept as sent (unparsed JSON) so that a number keeps
    /// every digit (an amount is an exact decimal, never an `f64`).
    #[schema(value_type = Value)]
    pub value: Box<pivault_core::values::RawValue>,
}

impl From<FieldIn> for FieldInput {
    fn from(f: FieldIn) -> Self {
        Self {
            category: f.category,
            name: f.name,
            record: f.record,
            value: f.value,
        }
    }
}

/// One released field.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldOut {
    /// Record.
    pub record: String,
    /// Field name.
    pub name: String,
    /// Category key.
    pub category: String,
    /// Value type (`text`, `number`, …).
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// The value (a number is a JSON string holding the exact decimal).
    pub value: Value,
    /// For a field kept under retention: its release date, RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_until: Option<String>,
}

impl FieldOut {
    /// A released field; `restricted_until` only on reads (not on provisions).
    pub fn of(f: &FieldOutput, with_restriction: bool) -> Self {
        Self {
            record: f.record.clone(),
            name: f.name.clone(),
            category: f.category.clone(),
            ty: f.value.type_name(),
            value: f.value.to_json(),
            restricted_until: f
                .restricted_until
                .filter(|_| with_restriction)
                .map(format_timestamp),
        }
    }
}

/// `PUT /v1/subjects/{id}/fields` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutFields {
    /// Purpose of collection.
    pub purpose: String,
    /// Fields to insert or replace.
    pub fields: Vec<FieldIn>,
}

/// `PUT /v1/subjects/{id}/fields` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Written {
    /// Fields written.
    pub written: usize,
}

/// Inserts or replaces fields of a subject, collected for `purpose`.
#[utoipa::path(put, path = "/subjects/{id}/fields", tag = "fields",
    params(("id" = String, Path, description = "Subject id")),
    request_body = PutFields,
    responses(
        (status = 200, description = "The fields were written", body = Written),
        (status = 403, description = "The key may not collect for this purpose, or the decision denied it"),
        (status = 409, description = "The subject was erased"),
        (status = 423, description = "A misuse report locked the subject (`subject_locked`, policy §8.7)"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn put_fields(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PutFields>,
) -> Result<Json<Written>, ApiError> {
    let fields: Vec<FieldInput> = body.fields.into_iter().map(Into::into).collect();
    let written = s
        .vault
        .put_fields(&p, &id, &body.purpose, &fields, rid.as_deref())
        .await?;
    Ok(Json(Written { written }))
}

/// `GET /v1/subjects/{id}/fields` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Purpose of the read (required).
    pub purpose: Option<String>,
    /// Comma-separated category keys (default: all the purpose allows).
    #[serde(default)]
    pub categories: Option<String>,
}

/// The decision behind an allowed read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadDecision {
    /// Always `true` (a denial is a 403).
    pub allowed: bool,
    /// Legal basis applied.
    pub legal_basis: &'static str,
    /// PIPL article.
    pub article: &'static str,
    /// Policy clause.
    pub clause: String,
    /// Why.
    pub explanation: String,
    /// Whether the subject is a minor.
    pub minor: bool,
}

/// `GET /v1/subjects/{id}/fields` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadOut {
    /// The subject.
    pub subject_id: String,
    /// The purpose of the read.
    pub purpose: String,
    /// Policy version decided under.
    pub policy_version: String,
    /// The decision.
    pub decision: ReadDecision,
    /// Released fields.
    pub fields: Vec<FieldOut>,
    /// Fields that failed authentication (`field_integrity_failed`; audited, counted, never a
    /// value). Empty when every field opened.
    pub failed: Vec<FailedOut>,
    /// Withheld categories with their reasons.
    pub withheld: Vec<WithheldOut>,
}

impl From<ReadResult> for ReadOut {
    fn from(r: ReadResult) -> Self {
        Self {
            fields: r.fields.iter().map(|f| FieldOut::of(f, true)).collect(),
            failed: FailedOut::list(&r.failed),
            withheld: WithheldOut::list(&r.withheld),
            decision: ReadDecision {
                allowed: true,
                legal_basis: r.legal_basis,
                article: r.article,
                clause: r.clause,
                explanation: r.explanation,
                minor: r.minor,
            },
            subject_id: r.subject_id,
            purpose: r.purpose,
            policy_version: r.policy_version,
        }
    }
}

/// The decided read: the fields `purpose` may use, opened after the audit entry commits.
#[utoipa::path(get, path = "/subjects/{id}/fields", tag = "fields",
    params(
        ("id" = String, Path, description = "Subject id"),
        ("purpose" = String, Query, description = "Purpose of the read (required; 400 `purpose_required` without it)"),
        ("categories" = Option<String>, Query, description = "Comma-separated category keys (default: all the purpose allows); an empty entry is 422 `invalid_parameter`"),
    ),
    responses(
        (status = 200, description = "The decision and the released fields", body = ReadOut),
        (status = 403, description = "The decision denied the read (`reason`, `article`, `clause`)"),
        (status = 409, description = "The subject was erased"),
        (status = 423, description = "A misuse report locked the subject (`subject_locked`): only the security role may read until it is released (policy §8.7)"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn read_fields(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<ReadOut>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let purpose = q.purpose.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError::new(
            Code::PurposeRequired,
            "every read names a purpose (?purpose=…)",
        )
    })?;
    // An empty entry (`categories=`, `a,,b`, a trailing comma) is refused, not dropped: an
    // empty list would silently widen the read to every category the purpose allows.
    let cats: Vec<String> = match q.categories.as_deref() {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|c| {
                let c = c.trim();
                (!c.is_empty()).then(|| c.to_string()).ok_or_else(|| {
                    super::invalid_parameter(
                        "categories",
                        "categories is a comma-separated list of category keys, without empty entries",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let r = s
        .vault
        .read_fields(&p, &id, &purpose, &cats, rid.as_deref())
        .await?;
    Ok(Json(r.into()))
}
