//! `/v1` wire types and handlers. Wire types reject unknown fields.

use crate::error::ApiError;
use crate::extract::{ApiJson, Auth, RequestId};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use pivault_core::decisions::{DecisionInput, DecisionOutput, ExceptionInput};
use pivault_core::values::{format_timestamp, parse_timestamp};
use pivault_core::{ConsentInput, FieldInput};
use serde::Deserialize;
use serde_json::{json, Value};

/// The `/v1` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subjects", post(create_subject))
        .route("/subjects/{id}", axum::routing::delete(erase_subject))
        .route("/subjects/{id}/fields", put(put_fields).get(read_fields))
        .route(
            "/subjects/{id}/consents",
            post(record_consent).get(list_consents),
        )
        .route(
            "/subjects/{id}/disclosures",
            post(provide).get(list_disclosures),
        )
        .route("/decisions", post(decisions))
        .route("/reports/disclosures", get(disclosure_report))
        .route("/lookup", post(lookup))
        .route("/policy", get(policy))
}

/// One field on the wire.
#[derive(Debug, Deserialize)]
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
    /// Value, typed by the category.
    pub value: Value,
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

/// `POST /v1/subjects` body.
#[derive(Debug, Deserialize)]
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

async fn create_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<CreateSubject>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let fields: Vec<FieldInput> = body.fields.into_iter().map(Into::into).collect();
    let kind = body.kind.as_deref().unwrap_or("account");
    let id = s
        .vault
        .create_subject(&p, kind, &body.purpose, &fields, rid.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// `PUT /v1/subjects/{id}/fields` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutFields {
    /// Purpose of collection.
    pub purpose: String,
    /// Fields to insert or replace.
    pub fields: Vec<FieldIn>,
}

async fn put_fields(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PutFields>,
) -> Result<Json<Value>, ApiError> {
    let fields: Vec<FieldInput> = body.fields.into_iter().map(Into::into).collect();
    let n = s
        .vault
        .put_fields(&p, &id, &body.purpose, &fields, rid.as_deref())
        .await?;
    Ok(Json(json!({ "written": n })))
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

pub(crate) fn bad_query(_: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "unknown or malformed query parameter",
    )
}

async fn read_fields(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    q: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let purpose = q.purpose.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "purpose_required",
            "every read names a purpose (?purpose=…)",
        )
    })?;
    let cats: Vec<String> = q
        .categories
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let r = s
        .vault
        .read_fields(&p, &id, &purpose, &cats, rid.as_deref())
        .await?;
    Ok(Json(json!({
        "subject_id": r.subject_id,
        "purpose": r.purpose,
        "policy_version": r.policy_version,
        "decision": {
            "allowed": true,
            "legal_basis": r.legal_basis,
            "article": r.article,
            "clause": r.clause,
            "explanation": r.explanation,
            "minor": r.minor,
        },
        "fields": r.fields.iter().map(|f| {
            let mut o = json!({
                "record": f.record, "name": f.name, "category": f.category,
                "type": f.value.type_name(), "value": f.value.to_json(),
            });
            if let (Some(u), Value::Object(m)) = (f.restricted_until, &mut o) {
                m.insert("restricted_until".into(), json!(format_timestamp(u)));
            }
            o
        }).collect::<Vec<_>>(),
        "withheld": r.withheld.iter().map(|(c, why)| json!({"category": c, "reason": why})).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/lookup` body. The value travels in the body, never in a URL (URLs end up in logs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// `account_id` | `mobile` | `email` | `id_card`.
    pub by: String,
    /// The identifier as the caller has it; normalized before matching.
    pub value: String,
    /// Purpose of the lookup.
    pub purpose: String,
}

async fn lookup(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<Lookup>,
) -> Result<Json<Value>, ApiError> {
    let r = s
        .vault
        .lookup(&p, &body.by, &body.value, &body.purpose, rid.as_deref())
        .await?;
    Ok(Json(json!({ "count": r.count, "subjects": r.subjects })))
}

/// `POST /v1/subjects/{id}/consents` body.
#[derive(Debug, Deserialize)]
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

async fn record_consent(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConsentIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let at = match body.at.as_deref() {
        None => None,
        Some(t) => Some(parse_timestamp(t).map_err(|e| {
            ApiError::from(pivault_core::CoreError::invalid("at", e.code, e.reason))
        })?),
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
        Json(json!({
            "event_ref": row.event_ref, "purpose": row.purpose, "action": row.action,
            "at": format_timestamp(row.at), "given_by": row.given_by, "separate": row.separate,
            "policy_version": row.policy_version, "recipient": row.recipient,
        })),
    ))
}

async fn list_consents(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (rows, active) = s.vault.consents(&p, &id).await?;
    Ok(Json(json!({
        "events": rows.iter().map(|r| json!({
            "seq": r.seq, "event_ref": r.event_ref, "purpose": r.purpose, "action": r.action,
            "at": format_timestamp(r.at), "given_by": r.given_by, "method": r.method,
            "separate": r.separate, "policy_version": r.policy_version, "recipient": r.recipient,
        })).collect::<Vec<_>>(),
        "active": active.iter().map(|(purpose, a)| json!({
            "purpose": purpose, "given_by": a.given_by.as_str(), "separate": a.separate,
            "since": format_timestamp(a.at.unix_timestamp()), "policy_version": a.policy_version,
        })).collect::<Vec<_>>(),
    })))
}

/// `DELETE /v1/subjects/{id}` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseQuery {
    /// Ground of the deletion (policy §7.1 / PIPL Art. 47), e.g. `subject_request`.
    #[serde(default)]
    pub ground: Option<String>,
}

async fn erase_subject(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    q: Result<Query<EraseQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let ground = q.ground.unwrap_or_else(|| "subject_request".into());
    let r = s
        .vault
        .erase_subject(&p, &id, &ground, rid.as_deref())
        .await?;
    Ok(Json(json!({
        "subject_id": r.subject_id,
        "erased_at": format_timestamp(r.erased_at),
        "destroyed_key_id": r.destroyed_key_id,
        "deleted_fields": r.deleted_fields,
        "deleted_categories": r.deleted_categories,
        "blind_index_entries_removed": r.blind_index_entries_removed,
        "retained": r.retained.iter().map(|c| json!({
            "category": c.category, "fields": c.fields, "until": format_timestamp(c.until),
            "basis": c.basis, "clause": c.clause,
        })).collect::<Vec<_>>(),
    })))
}

async fn policy(State(s): State<AppState>, Auth(_): Auth) -> Json<Value> {
    let p = s.vault.policy();
    Json(json!({
        "id": p.id(), "version": p.version(), "hash": p.hash(), "storage_region": p.storage_region(),
        "purposes": p.purposes().iter().map(|x| json!({
            "id": x.id, "name": x.name, "clause": x.clause, "legal_basis": x.legal_basis.as_str(),
            "article": x.legal_basis.pipl_article(), "categories": x.categories, "separate_consent": x.separate_consent,
        })).collect::<Vec<_>>(),
        "categories": p.categories().iter().map(|c| json!({
            "key": c.key, "name": c.name, "sensitivity": c.sensitivity.as_str(), "value_type": c.value_type.as_str(),
        })).collect::<Vec<_>>(),
    }))
}

/// A claimed exception on the wire.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionIn {
    /// One of the six kinds of policy §5.4.
    pub kind: String,
    /// Case number or document reference.
    #[serde(default)]
    pub reference: String,
    /// Authorizing officer.
    #[serde(default)]
    pub authorized_by: String,
}

/// `POST /v1/decisions` body (and, without `subject_id`, `POST /v1/subjects/{id}/disclosures`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    /// `collect|use|share|transfer|disclose|cross_border_transfer`.
    pub action: String,
    /// Purpose id.
    pub purpose: String,
    /// Subject id (decision API only).
    #[serde(default)]
    pub subject_id: Option<String>,
    /// Category keys (default: all the purpose allows).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Recipient id.
    #[serde(default)]
    pub recipient: Option<String>,
    /// Destination region.
    #[serde(default)]
    pub region: Option<String>,
    /// Claimed §5.4 exception.
    #[serde(default)]
    pub exception: Option<ExceptionIn>,
}

impl DecisionIn {
    fn into_input(self, subject_id: String) -> DecisionInput {
        DecisionInput {
            action: self.action,
            purpose: self.purpose,
            subject_id,
            categories: self.categories,
            recipient: self.recipient,
            region: self.region,
            exception: self.exception.map(|e| ExceptionInput {
                kind: e.kind,
                reference: e.reference,
                authorized_by: e.authorized_by,
            }),
        }
    }
}

fn decision_json(d: &DecisionOutput) -> Value {
    json!({
        "subject_id": d.subject_id,
        "action": d.action,
        "allowed": d.allowed,
        "reason": d.reason,
        "legal_basis": d.legal_basis,
        "article": d.article,
        "clause": d.clause,
        "explanation": d.explanation,
        "allowed_categories": d.allowed_categories,
        "withheld": d.withheld.iter().map(|(c, r)| json!({"category": c, "reason": r})).collect::<Vec<_>>(),
        "obligations": d.obligations,
        "combined_as_pi": d.combined_as_pi,
        "recipient": d.recipient,
        "exception": d.exception,
        "cross_border": d.cross_border,
        "minor": d.minor,
        "policy_version": d.policy_version,
    })
}

async fn decisions(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<DecisionIn>,
) -> Result<Json<Value>, ApiError> {
    let subject = body
        .subject_id
        .clone()
        .filter(|x| !x.is_empty())
        .ok_or_else(|| {
            ApiError::from(pivault_core::CoreError::invalid(
                "subject_id",
                "subject_required",
                "a decision names the subject",
            ))
        })?;
    let d = s
        .vault
        .decide_for(&p, &body.into_input(subject), rid.as_deref())
        .await?;
    Ok(Json(decision_json(&d)))
}

async fn provide(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DecisionIn>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.subject_id.as_deref().is_some_and(|x| x != id) {
        return Err(pivault_core::CoreError::invalid(
            "subject_id",
            "subject_mismatch",
            "subject_id differs from the path",
        )
        .into());
    }
    let (d, fields, disclosure) = s
        .vault
        .provide(&p, &body.into_input(id), rid.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "disclosure_id": disclosure,
            "decision": decision_json(&d),
            "fields": fields.iter().map(|f| json!({
                "record": f.record, "name": f.name, "category": f.category,
                "type": f.value.type_name(), "value": f.value.to_json(),
            })).collect::<Vec<_>>(),
        })),
    ))
}

async fn list_disclosures(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let rows = s.vault.disclosures_of(&p, &id).await?;
    Ok(Json(json!({
        "subject_id": id,
        "count": rows.len(),
        "disclosures": rows.iter().map(|d| json!({
            "id": d.id, "action": d.action, "recipient": d.recipient, "purpose": d.purpose,
            "categories": d.categories.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(),
            "legal_basis": d.legal_basis, "exception": d.exception, "reference": d.reference,
            "authorized_by": d.authorized_by, "region": d.region, "at": format_timestamp(d.at), "actor": d.actor,
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/reports/disclosures` query: RFC 3339 bounds, both optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Window start (inclusive).
    #[serde(default)]
    pub from: Option<String>,
    /// Window end (exclusive).
    #[serde(default)]
    pub to: Option<String>,
}

async fn disclosure_report(
    State(s): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let bound = |v: Option<&str>, field: &'static str, default: i64| -> Result<i64, ApiError> {
        v.map_or(Ok(default), |t| {
            parse_timestamp(t)
                .map_err(|e| pivault_core::CoreError::invalid(field, e.code, e.reason).into())
        })
    };
    let from = bound(q.from.as_deref(), "from", 0)?;
    let to = bound(q.to.as_deref(), "to", i64::MAX)?;
    let r = s.vault.disclosure_report(&p, from, to).await?;
    Ok(Json(json!({
        "from": format_timestamp(r.from),
        "to": if r.to == i64::MAX { Value::Null } else { json!(format_timestamp(r.to)) },
        "total": r.total,
        "under_exception": r.under_exception,
        "subjects": r.subjects,
        "by_action": r.by_action,
        "by_recipient": r.by_recipient,
        "by_exception": r.by_exception,
        "by_legal_basis": r.by_legal_basis,
    })))
}
