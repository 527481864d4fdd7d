//! `/v1/dsr`: data subject requests (PIPL Art. 44–50; policy §VII, §XI).
//!
//! Two audiences:
//! - the **requester** (the provider's privacy center, or any HTTP client, acting for the
//!   person; pivault serves no page for it): files a request
//!   without an API key, then proves identity with the one-time code and reads the status and
//!   result with the request token returned at filing, sent as `X-Dsr-Token`;
//! - the **privacy office** (API key with the `admin` or `dpo` role): lists the queue
//!   (`?due_before=` for overdue and near-due requests), approves, rejects with a reason,
//!   runs, resumes and extends requests.

use super::bad_query;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, Auth};
use crate::AppState;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use pivault_core::dsr::{CreatedDsr, DsrInput, DsrView, ResultFormat};
use pivault_core::values::parse_timestamp;
use pivault_core::DsrFilter;
use pivault_domain::Code;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use super::dsr_schema::{CorrectionDoc, CreatedDsrDoc, DsrInputDoc, DsrViewDoc, RejectionDoc};

/// The `/v1/dsr` routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(receipt_key))
        .routes(routes!(show))
        .routes(routes!(verify))
        .routes(routes!(resend))
        .routes(routes!(result))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(run))
        .routes(routes!(extend))
}

/// The requester's token, from `X-Dsr-Token`.
fn dsr_token(h: &HeaderMap) -> Option<&str> {
    h.get("x-dsr-token")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn require_token(h: &HeaderMap) -> Result<&str, ApiError> {
    dsr_token(h).ok_or_else(|| {
        ApiError::new(
            Code::DsrTokenRequired,
            "send the request token returned at filing as X-Dsr-Token",
        )
    })
}

/// `POST /v1/dsr` answer (202): one request per account under the identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedOut {
    /// The requests, with their tokens (shown once).
    #[schema(value_type = Vec<CreatedDsrDoc>)]
    pub requests: Vec<CreatedDsr>,
    /// What to do next.
    pub next: &'static str,
}

/// The TCP peer's address, when the server was started with connect info
/// ([`crate::serve`]); the keyless intake is rate-limited per address. A proxy in front makes
/// every client one address: put the limit there, or raise `[dsr]
/// intake_per_address_per_minute`.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// Files a data subject request (no key: the requester acts for themselves). A code goes to
/// each matching account's address; an identity that matches nobody gets the same answer.
#[utoipa::path(post, path = "/dsr", tag = "dsr",
    request_body = DsrInputDoc,
    responses((status = 202, description = "Filed; verify with the code", body = CreatedOut),
        (status = 429, description = "Too many filings from this address or naming this identity; retry after `Retry-After` seconds")),
    security(()))]
async fn create(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<DsrInput>,
) -> Result<(StatusCode, Json<CreatedOut>), ApiError> {
    let requests = s.vault.dsr_create_from(&body, client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(CreatedOut {
            requests,
            next: "enter the code sent to each account's address at POST /v1/dsr/{id}/verify",
        }),
    ))
}

/// `GET /v1/dsr` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this state.
    pub state: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this subject.
    pub subject_id: Option<String>,
    /// Open requests due before this RFC 3339 instant (overdue and near-due queue).
    pub due_before: Option<String>,
    /// Page size, 1..=1000 (default 100); anything else is 422 `invalid_parameter`.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// `GET /v1/dsr` answer: the queue, oldest due first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut {
    /// Requests in the page.
    pub count: usize,
    /// The requests.
    #[schema(value_type = Vec<DsrViewDoc>)]
    pub requests: Vec<DsrView>,
}

/// The queue (admin, dpo), oldest due first.
#[utoipa::path(get, path = "/dsr", tag = "dsr",
    params(ListQuery),
    responses((status = 200, description = "The page of the queue", body = ListOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListOut>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let due_before = q
        .due_before
        .as_deref()
        .map(|d| {
            parse_timestamp(d).map_err(|_| {
                ApiError::new(
                    Code::DueBeforeMalformed,
                    "due_before is an RFC 3339 instant, e.g. 2026-12-01T00:00:00Z",
                )
            })
        })
        .transpose()?;
    if let Some(st) = &q.state {
        st.parse::<pivault_domain::dsr::DsrState>()
            .map_err(|_| ApiError::new(Code::DsrStateUnknown, "unknown state"))?;
    }
    // An unknown kind would match nothing and answer an empty queue.
    if let Some(k) = &q.kind {
        k.parse::<pivault_domain::dsr::DsrKind>()
            .map_err(|_| ApiError::new(Code::DsrKindUnknown, "unknown kind"))?;
    }
    // Refused, never clamped: `limit=-5` once answered one row.
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(_) => {
            return Err(super::invalid_parameter(
                "limit",
                "limit is a page size from 1 to 1000",
            ))
        }
    };
    let f = DsrFilter {
        state: q.state,
        kind: q.kind,
        subject_id: q.subject_id,
        due_before,
        limit,
    };
    let requests = s.vault.dsr_list(&p, &f).await?;
    Ok(Json(ListOut {
        count: requests.len(),
        requests,
    }))
}

/// `GET /v1/dsr/receipt-key` answer: the key that signs deletion receipts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptKeyOut {
    /// `Ed25519`.
    pub algorithm: &'static str,
    /// Key id.
    pub key_id: String,
    /// The public key, base64.
    pub public_key: String,
    /// What the signature covers.
    pub rule: &'static str,
}

/// The public key that signs deletion receipts (no key needed).
#[utoipa::path(get, path = "/dsr/receipt-key", tag = "dsr",
    responses((status = 200, description = "The key", body = ReceiptKeyOut)),
    security(()))]
async fn receipt_key(State(s): State<AppState>) -> Json<ReceiptKeyOut> {
    let key = s.vault.receipt_key();
    Json(ReceiptKeyOut {
        algorithm: "Ed25519",
        key_id: key.key_id,
        public_key: base64::engine::general_purpose::STANDARD.encode(key.public_key),
        rule: "RFC 8032; the signature covers the UTF-8 bytes of the receipt's `payload` string",
    })
}

/// Staff (API key) or requester (`X-Dsr-Token`).
enum Caller {
    Staff(pivault_core::Principal),
    Requester(String),
}

async fn caller(parts: &mut Parts, s: &AppState) -> Result<Caller, ApiError> {
    if let Some(t) = dsr_token(&parts.headers) {
        return Ok(Caller::Requester(t.to_string()));
    }
    let Auth(p) = Auth::from_request_parts(parts, s).await?;
    Ok(Caller::Staff(p))
}

/// A request: to staff (admin, dpo) with its subject, to the requester by token without.
#[utoipa::path(get, path = "/dsr/{id}", tag = "dsr",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, description = "The request", body = DsrViewDoc)),
    security(("bearer" = []), ("api_key" = []), ("dsr_token" = [])))]
async fn show(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    req: axum::extract::Request,
) -> Result<Json<DsrView>, ApiError> {
    let (mut parts, _) = req.into_parts();
    let v = match caller(&mut parts, &s).await? {
        Caller::Staff(p) => s.vault.dsr_show(&p, &id).await?,
        Caller::Requester(t) => s.vault.dsr_status(&id, &t).await?,
    };
    Ok(Json(v))
}

/// `POST /v1/dsr/{id}/verify` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The 6-digit code.
    pub code: String,
}

/// Proves the requester's identity with the one-time code.
#[utoipa::path(post, path = "/dsr/{id}/verify", tag = "dsr",
    params(("id" = String, Path, description = "Request id")),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Verified", body = DsrViewDoc),
        (status = 409, description = "The request is not waiting for a code"),
    ),
    security(("dsr_token" = [])))]
async fn verify(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<DsrView>, ApiError> {
    let t = require_token(&headers)?;
    Ok(Json(s.vault.dsr_verify(&id, t, &body.code).await?))
}

/// Sends a new one-time code.
#[utoipa::path(post, path = "/dsr/{id}/code", tag = "dsr",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 202, description = "A new code was sent", body = DsrViewDoc),
        (status = 409, description = "No more codes, or the request is not waiting for one"),
    ),
    security(("dsr_token" = [])))]
async fn resend(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<DsrView>), ApiError> {
    let t = require_token(&headers)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(s.vault.dsr_resend(&id, t).await?),
    ))
}

/// `GET /v1/dsr/{id}/result` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ResultQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// The result of a completed request: the package (access, copy) or the receipt. An access
/// package as JSON also holds `audit_proofs`: the inclusion proof of each entry of its
/// `access_history` (the newest 50), checked offline with `pivault-verify` and the key of
/// `GET /v1/audit/key`.
#[utoipa::path(get, path = "/dsr/{id}/result", tag = "dsr",
    params(("id" = String, Path, description = "Request id"), ResultQuery),
    responses(
        (status = 200, description = "The result, as JSON or CSV",
            content((Object = "application/json"), (String = "text/csv"))),
        (status = 409, description = "No result (yet, or any more)"),
    ),
    security(("bearer" = []), ("api_key" = []), ("dsr_token" = [])))]
async fn result(
    State(s): State<AppState>,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<ResultQuery>, axum::extract::rejection::QueryRejection>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let format = match q.format.as_deref() {
        None | Some("json") => ResultFormat::Json,
        Some("csv") => ResultFormat::Csv,
        Some(_) => {
            return Err(ApiError::new(
                Code::FormatUnsupported,
                "format is json or csv",
            ))
        }
    };
    let (mut parts, _) = req.into_parts();
    let (mut bytes, ctype) = match caller(&mut parts, &s).await? {
        Caller::Staff(p) => s.vault.dsr_result_staff(&p, &id, format).await?,
        Caller::Requester(t) => s.vault.dsr_result(&id, &t, format).await?,
    };
    if format == ResultFormat::Json {
        bytes = with_audit_proofs(&s.vault, bytes).await?;
    }
    Ok((
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// An access package (JSON) with `audit_proofs`: the inclusion proof of each entry of its
/// `access_history` (the newest [`super::audit::MAX_PACKAGE_PROOFS`]), so the subject can check
/// offline, with `GET /v1/audit/key` and `pivault-verify`, that the accesses they are shown are
/// the ones the log holds. Other results (copies, explanations, receipts) are returned as they
/// are.
async fn with_audit_proofs(
    vault: &pivault_core::Vault,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, ApiError> {
    let Ok(serde_json::Value::Object(mut pkg)) = serde_json::from_slice(&bytes) else {
        return Ok(bytes);
    };
    let is_access = pkg.get("format").and_then(serde_json::Value::as_str)
        == Some("pivault.access-package/1")
        && pkg.get("kind").and_then(serde_json::Value::as_str) == Some("access");
    if !is_access {
        return Ok(bytes);
    }
    let history = pkg
        .get("access_history")
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let proofs = super::audit::package_proofs(vault, &history).await?;
    pkg.insert(
        "audit_proofs".into(),
        serde_json::to_value(proofs)
            .map_err(|_| pivault_core::CoreError::Conflict("package_encoding"))?,
    );
    Ok(serde_json::to_vec(&pkg)
        .map_err(|_| pivault_core::CoreError::Conflict("package_encoding"))?)
}

/// `POST /v1/dsr/{id}/approve` query.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ApproveQuery {
    /// Run the request right after approving it.
    #[serde(default)]
    pub run: bool,
}

/// Approves a verified request (admin, dpo); `?run=true` runs it too.
#[utoipa::path(post, path = "/dsr/{id}/approve", tag = "dsr",
    params(("id" = String, Path, description = "Request id"), ApproveQuery),
    responses(
        (status = 200, description = "Approved (and run)", body = DsrViewDoc),
        (status = 409, description = "The request is not verified, or is closed"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn approve(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    q: Result<Query<ApproveQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DsrView>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let v = s.vault.dsr_approve(&p, &id).await?;
    if q.run {
        return Ok(Json(s.vault.dsr_run(&p, &id).await?));
    }
    Ok(Json(v))
}

/// `POST /v1/dsr/{id}/reject` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// A code from the rejection reasons (PIPL Art. 50).
    pub reason: String,
}

/// Rejects a request with a PIPL Art. 50 reason (admin, dpo).
#[utoipa::path(post, path = "/dsr/{id}/reject", tag = "dsr",
    params(("id" = String, Path, description = "Request id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "Rejected", body = DsrViewDoc),
        (status = 409, description = "The request can no longer be rejected"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn reject(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<DsrView>, ApiError> {
    Ok(Json(s.vault.dsr_reject(&p, &id, &body.reason).await?))
}

/// Runs (or resumes) an approved request (admin, dpo).
#[utoipa::path(post, path = "/dsr/{id}/run", tag = "dsr",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "The request after its run", body = DsrViewDoc),
        (status = 409, description = "The request is not approved, or is closed"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn run(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DsrView>, ApiError> {
    Ok(Json(s.vault.dsr_run(&p, &id).await?))
}

/// Extends a request's deadline where its jurisdiction allows (admin, dpo).
#[utoipa::path(post, path = "/dsr/{id}/extend", tag = "dsr",
    params(("id" = String, Path, description = "Request id")),
    responses(
        (status = 200, description = "Extended", body = DsrViewDoc),
        (status = 409, description = "No extension possible"),
    ),
    security(("bearer" = []), ("api_key" = [])))]
async fn extend(
    State(s): State<AppState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DsrView>, ApiError> {
    Ok(Json(s.vault.dsr_extend(&p, &id).await?))
}

pub use crate::delivery::NotifySender;
