//! `/v1/incidents` (security, dpo): open, scope, notify, report and close security incidents
//! (policy §8.3, §8.4; PIPL Art. 57). `GET /v1/announcements` (no key): the public
//! announcements that replace individual notice where it is impracticable (§8.3) and announce
//! a cessation (§8.6). No route here returns a PI value: subjects are listed by id.

use super::bad_query;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pivault_core::{IncidentInput, IncidentScope};
use pivault_domain::notice::Lang;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The incident and announcement routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, open))
        .routes(routes!(show))
        .routes(routes!(scope))
        .routes(routes!(notify))
        .routes(routes!(report))
        .routes(routes!(close))
        .routes(routes!(subjects))
        .routes(routes!(announcements))
}

/// `POST /v1/incidents` body (PIPL Art. 57 contents; free text holds no PI).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    /// `especially_major`, `major`, `relatively_major` or `general`.
    pub severity: String,
    /// What happened (1–4,000 characters).
    pub what_happened: String,
    /// When it happened, unix seconds.
    pub occurred_at: i64,
    /// When it was discovered, unix seconds (deadlines run from here).
    pub discovered_at: i64,
    /// Category keys affected.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Systems affected.
    #[serde(default)]
    pub systems: Vec<String>,
    /// The cause.
    #[serde(default)]
    pub cause: String,
    /// The possible impact on the people affected.
    #[serde(default)]
    pub possible_impact: String,
    /// Measures taken.
    #[serde(default)]
    pub measures_taken: String,
    /// Measures planned.
    #[serde(default)]
    pub measures_planned: String,
    /// What people can do themselves.
    #[serde(default)]
    pub self_help: String,
    /// Remedies offered.
    #[serde(default)]
    pub remedies: String,
}

/// `POST /v1/incidents/{id}/scope` body: a window and what was compromised.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    /// Window start, unix seconds (inclusive).
    pub from: i64,
    /// Window end, unix seconds (inclusive).
    pub to: i64,
    /// Compromised API key ids (16 hex digits).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Compromised principals.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Only these categories count.
    #[serde(default)]
    pub categories: Vec<String>,
    /// The store itself was exposed: every holder of the categories is affected.
    #[serde(default)]
    pub store: bool,
}

/// `GET /v1/incidents/{id}/report` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default) or `html` (printable).
    #[serde(default)]
    pub format: Option<String>,
    /// `zh-CN` (default) or `en`, for `html`.
    #[serde(default)]
    pub lang: Option<String>,
    /// Record this as the report to the regulator (first time: `reported_at`).
    #[serde(default)]
    pub mark: Option<bool>,
}

/// `GET /v1/incidents/{id}/subjects` query: keyset paging by subject id.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubjectsQuery {
    /// Subjects after this id.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (1–10,000; default 1,000).
    #[serde(default)]
    pub limit: Option<i64>,
}

/// One affected subject: id, affected categories, region. Never a value.
#[derive(Debug, Serialize, ToSchema)]
pub struct AffectedOut {
    /// Subject id.
    pub subject_id: String,
    /// Affected category keys.
    pub categories: Vec<String>,
    /// Region on record.
    pub region: String,
}

/// `GET /v1/incidents/{id}/subjects` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct AffectedListOut {
    /// The page.
    pub subjects: Vec<AffectedOut>,
    /// Pass as `after` for the next page (`null`: last page).
    pub next: Option<String>,
}

fn json_of<T: Serialize>(v: &T) -> Json<Value> {
    Json(serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Incidents, newest first (security, dpo).
#[utoipa::path(get, path = "/incidents", tag = "incidents",
    responses((status = 200, description = "The incidents", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn list(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let all = s.vault.incidents(&p).await?;
    Ok(Json(serde_json::json!({ "incidents": all })))
}

/// Opens an incident (security, dpo).
#[utoipa::path(post, path = "/incidents", tag = "incidents",
    request_body = IncidentBody,
    responses((status = 201, description = "The incident", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn open(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<IncidentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let input = IncidentInput {
        severity: b.severity,
        what_happened: b.what_happened,
        occurred_at: b.occurred_at,
        discovered_at: b.discovered_at,
        categories: b.categories,
        systems: b.systems,
        cause: b.cause,
        possible_impact: b.possible_impact,
        measures_taken: b.measures_taken,
        measures_planned: b.measures_planned,
        self_help: b.self_help,
        remedies: b.remedies,
    };
    let v = s.vault.open_incident(&p, &input).await?;
    Ok((StatusCode::CREATED, json_of(&v)))
}

/// One incident with its counts (security, dpo).
#[utoipa::path(get, path = "/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses((status = 200, description = "The incident", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn show(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.incident(&p, &id).await?))
}

/// Computes the affected subjects from the audit log (and the store) (security, dpo).
#[utoipa::path(post, path = "/incidents/{id}/scope", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    request_body = ScopeBody,
    responses((status = 200, description = "The scoped incident", body = Value),
        (status = 404, description = "No such incident or API key (`incident_not_found`, `api_key_not_found`)"),
        (status = 409, description = "The incident was notified or closed (`incident_state_invalid`, `incident_closed`)")),
    security(("bearer" = []), ("api_key" = [])))]
async fn scope(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<ScopeBody>,
) -> Result<Json<Value>, ApiError> {
    let scope = IncidentScope {
        from: b.from,
        to: b.to,
        keys: b.keys,
        principals: b.principals,
        categories: b.categories,
        store: b.store,
    };
    Ok(json_of(&s.vault.scope_incident(&p, &id, &scope).await?))
}

/// Queues one notice per affected subject, or publishes the announcement (security, dpo).
#[utoipa::path(post, path = "/incidents/{id}/notify", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses((status = 200, description = "What was queued", body = Value),
        (status = 409, description = "The incident is not scoped yet, or closed (`incident_state_invalid`, `incident_closed`)")),
    security(("bearer" = []), ("api_key" = [])))]
async fn notify(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.notify_incident(&p, &id).await?))
}

/// The regulator report, JSON or printable HTML (security, dpo; policy §8.4).
#[utoipa::path(get, path = "/incidents/{id}/report", tag = "incidents",
    params(("id" = String, Path, description = "Incident id"), ReportQuery),
    responses((status = 200, description = "The report", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn report(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => return Err(super::invalid_parameter("format", "format is json or html")),
    };
    let lang = match q.lang.as_deref() {
        None => Lang::ZhCn,
        Some(l) => {
            Lang::parse(l).ok_or_else(|| super::invalid_parameter("lang", "lang is zh-CN or en"))?
        }
    };
    let r = s
        .vault
        .report_incident(&p, &id, q.mark.unwrap_or(false))
        .await?;
    if html {
        let body = pivault_domain::incident::render_report_html(&r, lang);
        Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response())
    } else {
        Ok(json_of(&r).into_response())
    }
}

/// Closes an incident (security, dpo).
#[utoipa::path(post, path = "/incidents/{id}/close", tag = "incidents",
    params(("id" = String, Path, description = "Incident id")),
    responses((status = 200, description = "The closed incident", body = Value),
        (status = 409, description = "Already closed (`incident_closed`)")),
    security(("bearer" = []), ("api_key" = [])))]
async fn close(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.close_incident(&p, &id).await?))
}

/// The affected subjects by id, with categories and region (security, dpo).
#[utoipa::path(get, path = "/incidents/{id}/subjects", tag = "incidents",
    params(("id" = String, Path, description = "Incident id"), SubjectsQuery),
    responses((status = 200, description = "A page of subjects", body = AffectedListOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn subjects(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<SubjectsQuery>, QueryRejection>,
) -> Result<Json<AffectedListOut>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = q.limit.unwrap_or(1_000);
    if !(1..=10_000).contains(&limit) {
        return Err(super::invalid_parameter("limit", "limit is 1 to 10,000"));
    }
    let rows = s
        .vault
        .incident_subjects(&p, &id, q.after.as_deref().unwrap_or(""), limit)
        .await?;
    let next = (i64::try_from(rows.len()).unwrap_or(0) == limit)
        .then(|| rows.last().map(|r| r.subject_id.clone()))
        .flatten();
    Ok(Json(AffectedListOut {
        subjects: rows
            .into_iter()
            .map(|r| AffectedOut {
                subject_id: r.subject_id,
                categories: r
                    .categories
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                region: r.region,
            })
            .collect(),
        next,
    }))
}

/// Public announcements (no key): incidents where individual notice was impracticable, and
/// service cessation. The same contents as the notices, no per-person data.
#[utoipa::path(get, path = "/announcements", tag = "incidents",
    responses((status = 200, description = "The announcements", body = Value)))]
async fn announcements(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = s.vault.announcements().await?;
    Ok(Json(serde_json::json!({ "announcements": all })))
}
