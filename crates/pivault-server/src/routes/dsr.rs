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
use crate::extract::{ApiJson, Auth};
use crate::AppState;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use pivault_core::dsr::{CodeSender, CreatedDsr, DsrInput, DsrView, ResultFormat, SendFuture};
use pivault_core::values::parse_timestamp;
use pivault_core::DsrFilter;
use pivault_domain::Code;
use serde::{Deserialize, Serialize};

/// The `/v1/dsr` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dsr", post(create).get(list))
        .route("/dsr/receipt-key", get(receipt_key))
        .route("/dsr/{id}", get(show))
        .route("/dsr/{id}/verify", post(verify))
        .route("/dsr/{id}/code", post(resend))
        .route("/dsr/{id}/result", get(result))
        .route("/dsr/{id}/approve", post(approve))
        .route("/dsr/{id}/reject", post(reject))
        .route("/dsr/{id}/run", post(run))
        .route("/dsr/{id}/extend", post(extend))
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
#[derive(Debug, Serialize)]
pub struct CreatedOut {
    /// The requests, with their tokens (shown once).
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
#[derive(Debug, Deserialize)]
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
    /// Page size, 1..=1000 (default 100).
    pub limit: Option<i64>,
}

/// `GET /v1/dsr` answer: the queue, oldest due first.
#[derive(Debug, Serialize)]
pub struct ListOut {
    /// Requests in the page.
    pub count: usize,
    /// The requests.
    pub requests: Vec<DsrView>,
}

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
    let f = DsrFilter {
        state: q.state,
        kind: q.kind,
        subject_id: q.subject_id,
        due_before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    let requests = s.vault.dsr_list(&p, &f).await?;
    Ok(Json(ListOut {
        count: requests.len(),
        requests,
    }))
}

/// `GET /v1/dsr/receipt-key` answer: the key that signs deletion receipts.
#[derive(Debug, Serialize)]
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

async fn show(
    State(s): State<AppState>,
    Path(id): Path<String>,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The 6-digit code.
    pub code: String,
}

async fn verify(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyBody>,
) -> Result<Json<DsrView>, ApiError> {
    let t = require_token(&headers)?;
    Ok(Json(s.vault.dsr_verify(&id, t, &body.code).await?))
}

async fn resend(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<DsrView>), ApiError> {
    let t = require_token(&headers)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(s.vault.dsr_resend(&id, t).await?),
    ))
}

/// `GET /v1/dsr/{id}/result` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

async fn result(
    State(s): State<AppState>,
    Path(id): Path<String>,
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
    let (bytes, ctype) = match caller(&mut parts, &s).await? {
        Caller::Staff(p) => s.vault.dsr_result_staff(&p, &id, format).await?,
        Caller::Requester(t) => s.vault.dsr_result(&id, &t, format).await?,
    };
    Ok((
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /v1/dsr/{id}/approve` query.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ApproveQuery {
    /// Run the request right after approving it.
    #[serde(default)]
    pub run: bool,
}

async fn approve(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// A code from the rejection reasons (PIPL Art. 50).
    pub reason: String,
}

async fn reject(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<DsrView>, ApiError> {
    Ok(Json(s.vault.dsr_reject(&p, &id, &body.reason).await?))
}

async fn run(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<DsrView>, ApiError> {
    Ok(Json(s.vault.dsr_run(&p, &id).await?))
}

async fn extend(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Json<DsrView>, ApiError> {
    Ok(Json(s.vault.dsr_extend(&p, &id).await?))
}

/// [`CodeSender`] over `pivault-notify`: email by SMTP, SMS by webhook (policy §7.2).
#[derive(Debug)]
pub struct NotifySender(pub pivault_notify::Notifiers);

impl CodeSender for NotifySender {
    fn send<'a>(
        &'a self,
        channel: pivault_core::dsr::Channel,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            let to = match channel {
                pivault_core::dsr::Channel::Email => pivault_notify::Recipient::Email(to.into()),
                pivault_core::dsr::Channel::Sms => pivault_notify::Recipient::Mobile(to.into()),
            };
            let msg = pivault_notify::Message {
                to,
                subject: subject.into(),
                body: body.into(),
            };
            self.0.send(&msg).await.map_err(|e| e.code())
        })
    }
}
