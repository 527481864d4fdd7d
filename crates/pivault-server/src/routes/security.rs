//! Misuse reports and security cases (policy §8.7), the outbox (every message pivault sends)
//! and service cessation (§8.6).
//!
//! - `POST /v1/misuse` (no key): a PI subject reports suspected misuse. It is a data subject
//!   request of kind `misuse_report`, verified like any other (`POST /v1/dsr/{id}/verify` with
//!   the one-time code); on verification the subject's PI is locked at once.
//! - `/v1/security/cases` (security): the cases, each with the access history; release.
//! - `/v1/outbox` (admin, dpo, security): counts and one message's attempts; no address or text.
//! - `/v1/cessation` (admin, dpo to start; office roles to read).

use super::dsr::{ClientAddr, CreatedOut};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use pivault_core::dsr::DsrInput;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The misuse, security-case, outbox and cessation routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(misuse))
        .routes(routes!(cases))
        .routes(routes!(case))
        .routes(routes!(release))
        .routes(routes!(outbox_totals))
        .routes(routes!(outbox_item))
        .routes(routes!(cessation_status, cessation_start))
}

/// `POST /v1/misuse` body: the identity the reporter claims (a code goes to it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MisuseBody {
    /// The account's email.
    #[serde(default)]
    pub email: Option<String>,
    /// The account's mobile (the code goes by SMS).
    #[serde(default)]
    pub mobile: Option<String>,
    /// Deadline jurisdiction; defaults to the policy's.
    #[serde(default)]
    pub jurisdiction: Option<String>,
}

/// `GET /v1/security/cases` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CasesQuery {
    /// Include released cases (default false).
    #[serde(default)]
    pub all: Option<bool>,
}

/// `POST /v1/cessation` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CessationBody {
    /// When the service ends, unix seconds (default: now).
    #[serde(default)]
    pub effective_at: Option<i64>,
}

fn json_of<T: serde::Serialize>(v: &T) -> Json<Value> {
    Json(serde_json::to_value(v).unwrap_or(Value::Null))
}

/// Reports suspected misuse of one's account (no key; policy §8.7). Verify with the code at
/// `POST /v1/dsr/{id}/verify`: the subject's PI is then locked until security releases it.
#[utoipa::path(post, path = "/misuse", tag = "security",
    request_body = MisuseBody,
    responses((status = 202, description = "Filed; verify with the code", body = CreatedOut),
        (status = 429, description = "Too many filings; retry after `Retry-After` seconds")),
    security(()))]
async fn misuse(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(b): ApiJson<MisuseBody>,
) -> Result<(StatusCode, Json<CreatedOut>), ApiError> {
    let input = DsrInput {
        kind: "misuse_report".into(),
        email: b.email,
        mobile: b.mobile,
        jurisdiction: b.jurisdiction,
        ground: None,
        purposes: Vec::new(),
        corrections: Vec::new(),
    };
    let requests = s.vault.dsr_create_from(&input, client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CreatedOut {
            requests,
            next: "enter the code sent to the account's address at POST /v1/dsr/{id}/verify: the account's data is then locked",
        }),
    ))
}

/// Security cases, newest first (security).
#[utoipa::path(get, path = "/security/cases", tag = "security",
    params(CasesQuery),
    responses((status = 200, description = "The cases", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn cases(
    State(s): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<CasesQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(super::bad_query)?;
    let all = s.vault.security_cases(&p, !q.all.unwrap_or(false)).await?;
    Ok(Json(serde_json::json!({ "cases": all })))
}

/// One security case with the subject's access history (security).
#[utoipa::path(get, path = "/security/cases/{id}", tag = "security",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, description = "The case", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn case(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.security_case(&p, &id).await?))
}

/// Releases a case and unlocks its subject (security).
#[utoipa::path(post, path = "/security/cases/{id}/release", tag = "security",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, description = "The released case", body = Value),
        (status = 404, description = "No case with this id (`lock_not_found`)"),
        (status = 409, description = "The case was already released (`case_released`)")),
    security(("bearer" = []), ("api_key" = [])))]
async fn release(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.release_case(&p, &id).await?))
}

/// Outbox messages counted by state (admin, dpo, security).
#[utoipa::path(get, path = "/outbox", tag = "security",
    responses((status = 200, description = "Counts by state", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn outbox_totals(State(s): State<AppState>, Auth(p): Auth) -> Result<Json<Value>, ApiError> {
    let c = s.vault.outbox_totals(&p).await?;
    Ok(Json(serde_json::json!({
        "pending": c.pending, "delivered": c.delivered, "letter": c.letter,
        "announced": c.announced, "failed": c.failed,
    })))
}

/// One outbox message and every delivery attempt: no address, no text (admin, dpo,
/// security).
#[utoipa::path(get, path = "/outbox/{id}", tag = "security",
    params(("id" = String, Path, description = "Outbox id")),
    responses((status = 200, description = "The message", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn outbox_item(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.outbox_item(&p, &id).await?))
}

/// Where a service cessation stands (admin, dpo, security).
#[utoipa::path(get, path = "/cessation", tag = "security",
    responses((status = 200, description = "The cessation's progress", body = Value)),
    security(("bearer" = []), ("api_key" = [])))]
async fn cessation_status(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<Value>, ApiError> {
    Ok(json_of(&s.vault.cessation_status(&p).await?))
}

/// Starts a service cessation (admin, dpo; policy §8.6): collection stops when this answers
/// (`state: running`). Notifying everyone and, from `effective_at`, deleting PI except what the
/// law or a hold keeps continue in the background (and every minute in `serve`, so a crash
/// only delays them); follow them at `GET /v1/cessation`.
#[utoipa::path(post, path = "/cessation", tag = "security",
    request_body = CessationBody,
    responses((status = 200, description = "The cessation's progress", body = Value),
        (status = 409, description = "A cessation was already started (`cessation_already_started`)")),
    security(("bearer" = []), ("api_key" = [])))]
async fn cessation_start(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiJson(b): ApiJson<CessationBody>,
) -> Result<Json<Value>, ApiError> {
    let st = s.vault.cessation_begin(&p, b.effective_at).await?;
    let vault = std::sync::Arc::clone(&s.vault);
    tokio::spawn(async move {
        if let Err(e) = vault.cessation_tick().await {
            tracing::warn!(error = %e, "cessation: continuing in the background failed; serve retries every minute");
        }
    });
    Ok(json_of(&st))
}
