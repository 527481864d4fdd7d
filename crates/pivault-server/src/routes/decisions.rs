//! `POST /v1/decisions` (ask without acting), `POST /v1/subjects/{id}/disclosures` (act on an
//! outbound decision) and `GET /v1/subjects/{id}/disclosures` (the disclosure ledger).

use super::fields::FieldOut;
use super::WithheldOut;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth, RequestId};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use pivault_core::decisions::{DecisionInput, DecisionOutput, ExceptionInput};
use pivault_core::values::format_timestamp;
use pivault_core::CoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The decision and disclosure routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(decisions))
        .routes(routes!(provide, list_disclosures))
}

/// A claimed exception on the wire.
#[derive(Debug, Deserialize, ToSchema)]
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
#[derive(Debug, Deserialize, ToSchema)]
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

/// A decision on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionOut {
    /// The subject.
    pub subject_id: String,
    /// The action decided.
    pub action: &'static str,
    /// Allowed or not.
    pub allowed: bool,
    /// Reason code.
    pub reason: &'static str,
    /// Legal basis applied.
    pub legal_basis: Option<&'static str>,
    /// PIPL article.
    pub article: &'static str,
    /// Policy clause.
    pub clause: String,
    /// Why.
    pub explanation: String,
    /// Categories released.
    pub allowed_categories: Vec<String>,
    /// Categories withheld with their reasons.
    pub withheld: Vec<WithheldOut>,
    /// Obligations attached.
    pub obligations: Vec<String>,
    /// Categories that together identify a person.
    pub combined_as_pi: Vec<String>,
    /// Recipient.
    pub recipient: Option<String>,
    /// §5.4 exception relied on.
    pub exception: Option<&'static str>,
    /// A cross-border transfer.
    pub cross_border: bool,
    /// The subject is a minor.
    pub minor: bool,
    /// Policy version decided under.
    pub policy_version: String,
}

impl From<DecisionOutput> for DecisionOut {
    fn from(d: DecisionOutput) -> Self {
        Self {
            withheld: WithheldOut::list(&d.withheld),
            subject_id: d.subject_id,
            action: d.action,
            allowed: d.allowed,
            reason: d.reason,
            legal_basis: d.legal_basis,
            article: d.article,
            clause: d.clause,
            explanation: d.explanation,
            allowed_categories: d.allowed_categories,
            obligations: d.obligations,
            combined_as_pi: d.combined_as_pi,
            recipient: d.recipient,
            exception: d.exception,
            cross_border: d.cross_border,
            minor: d.minor,
            policy_version: d.policy_version,
        }
    }
}

/// Asks for a decision without acting on it (audited; nothing is released).
#[utoipa::path(post, path = "/decisions", tag = "decisions",
    request_body = DecisionIn,
    responses(
        (status = 200, description = "The decision, allowed or not", body = DecisionOut),
        (status = 403, description = "The key may not act for this purpose"),
        (status = 404, description = "No such subject"),
        (status = 409, description = "The subject was erased"),
        (status = 423, description = "A misuse report locked the subject (`subject_locked`, policy §8.7)"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn decisions(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiJson(body): ApiJson<DecisionIn>,
) -> Result<Json<DecisionOut>, ApiError> {
    let subject = body
        .subject_id
        .clone()
        .filter(|x| !x.is_empty())
        .ok_or_else(|| {
            ApiError::from(CoreError::invalid(
                "subject_id",
                "subject_required",
                "a decision names the subject",
            ))
        })?;
    let d = s
        .vault
        .decide_for(&p, &body.into_input(subject), rid.as_deref())
        .await?;
    Ok(Json(d.into()))
}

/// `POST /v1/subjects/{id}/disclosures` answer (201).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidedOut {
    /// The disclosure ledger entry.
    pub disclosure_id: String,
    /// The decision.
    pub decision: DecisionOut,
    /// The released fields.
    pub fields: Vec<FieldOut>,
    /// Fields that failed authentication (`field_integrity_failed`; audited, counted, never a
    /// value). Empty when every field opened.
    pub failed: Vec<super::FailedOut>,
}

/// Acts on an outbound decision: decides, records the disclosure and releases the fields.
#[utoipa::path(post, path = "/subjects/{id}/disclosures", tag = "decisions",
    params(("id" = String, Path, description = "Subject id")),
    request_body = DecisionIn,
    responses(
        (status = 201, description = "The disclosure was recorded; the released fields", body = ProvidedOut),
        (status = 403, description = "The decision denied the disclosure (`reason`, `article`, `clause`)"),
        (status = 409, description = "The subject was erased"),
        (status = 423, description = "A misuse report locked the subject (`subject_locked`, policy §8.7)"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn provide(
    State(s): State<AppState>,
    Auth(p): Auth,
    RequestId(rid): RequestId,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionIn>,
) -> Result<(StatusCode, Json<ProvidedOut>), ApiError> {
    if body.subject_id.as_deref().is_some_and(|x| x != id) {
        return Err(CoreError::invalid(
            "subject_id",
            "subject_mismatch",
            "subject_id differs from the path",
        )
        .into());
    }
    let out = s
        .vault
        .provide(&p, &body.into_input(id), rid.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ProvidedOut {
            disclosure_id: out.disclosure_id,
            decision: out.decision.into(),
            fields: out.fields.iter().map(|f| FieldOut::of(f, false)).collect(),
            failed: super::FailedOut::list(&out.failed),
        }),
    ))
}

/// One entry of the disclosure ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureOut {
    /// Entry id.
    pub id: String,
    /// Outbound action.
    pub action: String,
    /// Recipient.
    pub recipient: Option<String>,
    /// Purpose id.
    pub purpose: String,
    /// Categories disclosed.
    pub categories: Vec<String>,
    /// Legal basis.
    pub legal_basis: String,
    /// §5.4 exception relied on.
    pub exception: Option<String>,
    /// The exception's reference.
    pub reference: Option<String>,
    /// The exception's authorizing officer.
    pub authorized_by: Option<String>,
    /// Destination region.
    pub region: Option<String>,
    /// When, RFC 3339.
    pub at: String,
    /// Who.
    pub actor: String,
}

/// `GET /v1/subjects/{id}/disclosures` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosuresOut {
    /// The subject.
    pub subject_id: String,
    /// Entries.
    pub count: usize,
    /// The ledger.
    pub disclosures: Vec<DisclosureOut>,
}

/// The disclosure ledger of a subject.
#[utoipa::path(get, path = "/subjects/{id}/disclosures", tag = "decisions",
    params(("id" = String, Path, description = "Subject id")),
    responses(
        (status = 200, description = "The ledger", body = DisclosuresOut),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn list_disclosures(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DisclosuresOut>, ApiError> {
    let rows = s.vault.disclosures_of(&p, &id).await?;
    Ok(Json(DisclosuresOut {
        subject_id: id,
        count: rows.len(),
        disclosures: rows
            .into_iter()
            .map(|d| DisclosureOut {
                categories: d
                    .categories
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                id: d.id,
                action: d.action,
                recipient: d.recipient,
                purpose: d.purpose,
                legal_basis: d.legal_basis,
                exception: d.exception,
                reference: d.reference,
                authorized_by: d.authorized_by,
                region: d.region,
                at: format_timestamp(d.at),
                actor: d.actor,
            })
            .collect(),
    }))
}
