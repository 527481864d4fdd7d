//! `ApiError`: every failure as a stable [`Code`], whose [`Code::status`] is the HTTP status,
//! and a fixed message.
//!
//! Invariants: bodies never carry a PI value or a database/driver message; a 500 body is only
//! `{"error": {"code", "message": "internal error", "request_id"}}`. The cause (an error's
//! `Display`, which is PI-free) travels in the response's extensions as an [`ErrorCause`] and
//! is logged once, with the request id, by [`log_errors`]. A busy store (a PostgreSQL lock or
//! statement timeout) is 503 `storage_busy` with `Retry-After`: nothing was committed and the
//! same request may be sent again.

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pivault_core::{CoreError, StorageFault};
use pivault_domain::Code;
use serde_json::{json, Value};

/// The message of every 500 body.
pub const INTERNAL_MESSAGE: &str = "internal error";

/// An API error, rendered as `{"error": {"code", "message", …}}`.
#[derive(Debug)]
pub struct ApiError {
    /// Stable machine-readable code; its status is the response's.
    pub code: Code,
    /// Fixed human message (never includes input values).
    pub message: String,
    /// Extra structured detail (reason, clause, article, field…), boxed to keep `ApiError`
    /// small (`clippy::result_large_err`).
    pub detail: Option<Box<Value>>,
    /// `Retry-After` in seconds (storage faults). A `u16` keeps `ApiError` small
    /// (`clippy::result_large_err`).
    pub retry_after: Option<u16>,
    /// Why it happened, for the log only (never in the body, no PI).
    pub cause: Option<String>,
}

/// The cause of an error response, in its extensions: logged once by [`log_errors`].
#[derive(Debug, Clone)]
pub struct ErrorCause {
    /// The response's code.
    pub code: Code,
    /// What went wrong (PI-free), if anything beyond the code.
    pub cause: Option<String>,
}

impl ApiError {
    /// An error with `code` and a fixed message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
            retry_after: None,
            cause: None,
        }
    }

    /// A 500 `internal` whose cause is logged (not returned).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(Code::Internal, INTERNAL_MESSAGE).with_cause(cause)
    }

    /// The same error with a cause for the log.
    #[must_use]
    pub fn with_cause(mut self, cause: impl std::fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// The HTTP status: the code's.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 503 for a storage fault: `storage_full`, `storage_unavailable` or `storage_busy`, with
    /// `Retry-After`.
    /// Nothing was committed, so the same request may be retried.
    #[must_use]
    pub fn storage(fault: StorageFault) -> Self {
        let (code, message) = match fault {
            StorageFault::Full => (
                Code::StorageFull,
                "the storage is full; nothing was saved, retry later",
            ),
            StorageFault::Unavailable => (
                Code::StorageUnavailable,
                "the storage is unavailable; nothing was saved, retry later",
            ),
            StorageFault::Busy => (
                Code::StorageBusy,
                "the database is busy; nothing was saved, retry after the time in Retry-After",
            ),
        };
        debug_assert_eq!(code.as_str(), fault.code());
        Self {
            retry_after: Some(fault.retry_after_secs()),
            ..Self::new(code, message)
        }
    }

    /// The error for a code string from core: its [`Code`], or a 500 `internal` (and a
    /// debug assertion) for a string that is not one.
    fn from_core_code(s: &'static str, message: &str, e: &CoreError) -> Self {
        match Code::parse(s) {
            Some(code) if code.is_internal() => Self::new(code, INTERNAL_MESSAGE).with_cause(e),
            Some(code) => Self::new(code, message),
            None => {
                debug_assert!(
                    false,
                    "core returned {s:?}, which is not a pivault_domain::Code"
                );
                Self::internal(format_args!("unknown code {s:?} from core: {e}"))
            }
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        if let Some(fault) = e.storage_fault() {
            // The log line says which fault; the error's own text (sqlx's, no PI) follows.
            return Self::storage(fault).with_cause(format_args!("{}: {e}", fault.describe()));
        }
        match &e {
            CoreError::Unauthenticated => Self::new(
                Code::Unauthenticated,
                "a valid API key is required (Authorization: Bearer <key>)",
            ),
            CoreError::Forbidden { code, message } | CoreError::KeyRejected { code, message } => {
                Self::from_core_code(code, message, &e)
            }
            CoreError::Denied(d) => Self {
                detail: Some(Box::new(json!({
                    "reason": d.code,
                    "article": d.article,
                    "clause": d.clause,
                    "withheld": d.withheld.iter().map(|(c, r)| json!({"category": c, "reason": r})).collect::<Vec<_>>(),
                }))),
                ..Self::new(Code::DecisionDenied, d.explanation.clone())
            },
            CoreError::NotFound(what) => Self::new(
                match *what {
                    "subject" => Code::SubjectNotFound,
                    "dsr" => Code::DsrNotFound,
                    "api_key" => Code::ApiKeyNotFound,
                    "hold" => Code::HoldNotFound,
                    "incident" => Code::IncidentNotFound,
                    "lock" => Code::LockNotFound,
                    "outbox_item" => Code::OutboxItemNotFound,
                    "policy_version" => Code::PolicyVersionNotFound,
                    "audit_entry" => Code::AuditEntryNotFound,
                    "audit_checkpoint" => Code::AuditCheckpointNotFound,
                    _ => Code::NotFound,
                },
                format!("{what} not found"),
            ),
            CoreError::Invalid {
                field,
                code,
                reason,
            } => {
                let mut err = Self::from_core_code(code, reason, &e);
                if !err.code.is_internal() {
                    err.detail = Some(Box::new(json!({ "field": field })));
                }
                err
            }
            CoreError::RateLimited { retry_after } => Self {
                retry_after: Some(u16::try_from(*retry_after).unwrap_or(u16::MAX)),
                ..Self::new(
                    Code::DsrRateLimited,
                    "too many requests from this address or for this identity; retry after the time in Retry-After",
                )
            },
            CoreError::Conflict(code) => {
                Self::from_core_code(code, "the request conflicts with the current state", &e)
            }
            CoreError::Store(_)
            | CoreError::Crypto(_)
            | CoreError::Audit(_)
            | CoreError::Io(_)
            | CoreError::KeyRefused { .. } => Self::internal(&e),
            CoreError::Storage { fault, .. } => Self::storage(*fault).with_cause(&e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = if self.code.is_internal() {
            // Completed with the request id by `log_errors`.
            json!({ "code": self.code, "message": INTERNAL_MESSAGE })
        } else {
            let mut body = json!({ "code": self.code, "message": self.message });
            if let (Some(extra), Value::Object(b)) = (self.detail, &mut body) {
                if let Value::Object(extra) = *extra {
                    b.extend(extra);
                }
            }
            body
        };
        let mut resp = (status, Json(json!({ "error": body }))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp.extensions_mut().insert(ErrorCause {
            code: self.code,
            cause: self.cause,
        });
        resp
    }
}

/// The one place errors are logged: a response carrying an [`ErrorCause`] with a 5xx status
/// is logged once with the request id (`error`, `warn` for `storage_busy`), and a 500 body is
/// rewritten to `{"error": {"code", "message": "internal error", "request_id"}}`. Runs inside
/// the layer that sets `x-request-id`.
pub async fn log_errors(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut resp = next.run(req).await;
    let Some(ErrorCause { code, cause }) = resp.extensions_mut().remove::<ErrorCause>() else {
        return json_or_passthrough(resp);
    };
    let status = resp.status();
    if !status.is_server_error() {
        return resp;
    }
    let cause = cause.as_deref().unwrap_or("");
    if code == Code::StorageBusy {
        tracing::warn!(request_id, code = code.as_str(), cause, "request failed");
    } else {
        tracing::error!(request_id, code = code.as_str(), cause, "request failed");
    }
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        let body = json!({ "error": {
            "code": code, "message": INTERNAL_MESSAGE, "request_id": request_id,
        }});
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Response::from_parts(parts, axum::body::Body::from(body.to_string()));
    }
    resp
}

/// The code of an error answered by something other than an [`ApiError`] (an axum or
/// tower rejection, or hyper's own answer to an unparsable request): chosen by status.
#[must_use]
pub fn code_for_status(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::BadRequest,
        401 => Code::Unauthenticated,
        404 => Code::RouteNotFound,
        405 => Code::MethodNotAllowed,
        413 => Code::BodyTooLarge,
        414 => Code::UriTooLong,
        415 => Code::UnsupportedMediaType,
        422 => Code::InvalidBody,
        431 => Code::HeadersTooLarge,
        503 => Code::StorageUnavailable,
        _ => Code::Internal,
    }
}

/// The safety net under "every error is JSON": a 4xx/5xx that did not come from an
/// [`ApiError`] (no [`ErrorCause`]) and is not already JSON is replaced by the JSON error of
/// [`code_for_status`], with the same status. Its original body (which may quote input) is
/// dropped; the replacement is logged at debug level (a route that should use an `Api*`
/// extractor).
fn json_or_passthrough(resp: Response) -> Response {
    let status = resp.status();
    // JSON errors are the API's own; HTML ones are the privacy center's error pages (stable
    // message keys, no PI), which a browser must get as pages.
    let is_json_or_page = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_json_or_page {
        return resp;
    }
    let code = code_for_status(status);
    tracing::debug!(
        status = status.as_u16(),
        code = code.as_str(),
        "non-JSON error replaced"
    );
    let mut out = ApiError::new(code, code.description()).into_response();
    *out.status_mut() = status;
    out.extensions_mut().remove::<ErrorCause>();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_the_codes() {
        let e = ApiError::from(CoreError::Conflict("already_erased"));
        assert_eq!(
            (e.status(), e.code),
            (StatusCode::CONFLICT, Code::AlreadyErased)
        );
        let e = ApiError::from(CoreError::invalid("value", "mobile_too_short", "short"));
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.detail.as_deref(), Some(&json!({ "field": "value" })));
    }

    #[test]
    fn broken_invariants_from_core_are_500_with_their_code_and_a_cause() {
        for c in ["fault_injected", "dsr_state_corrupt", "rng_unavailable"] {
            let e = ApiError::from(CoreError::Conflict(c));
            assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR, "{c}");
            assert_eq!(e.code.as_str(), c);
            assert_eq!(e.message, INTERNAL_MESSAGE);
            assert!(e.cause.as_deref().is_some_and(|m| m.contains(c)));
        }
        let e = ApiError::from(CoreError::invalid(
            "stored field",
            "plaintext_malformed",
            "x",
        ));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.detail.is_none());
    }

    #[test]
    fn audit_log_errors_have_their_codes() {
        for (e, status, code) in [
            (
                CoreError::Conflict("entry_not_in_checkpoint"),
                409,
                Code::EntryNotInCheckpoint,
            ),
            (
                CoreError::NotFound("audit_entry"),
                404,
                Code::AuditEntryNotFound,
            ),
            (
                CoreError::NotFound("audit_checkpoint"),
                404,
                Code::AuditCheckpointNotFound,
            ),
            (
                CoreError::invalid("from", "checkpoint_order", "x"),
                422,
                Code::CheckpointOrder,
            ),
            (
                CoreError::Conflict("audit_tree_incomplete"),
                500,
                Code::AuditTreeIncomplete,
            ),
        ] {
            let e = ApiError::from(e);
            assert_eq!((e.status().as_u16(), e.code), (status, code));
        }
    }

    #[test]
    fn storage_faults_are_503_with_retry_after() {
        for f in [
            StorageFault::Full,
            StorageFault::Unavailable,
            StorageFault::Busy,
        ] {
            let e = ApiError::storage(f);
            assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.code.as_str(), f.code());
            assert_eq!(e.retry_after, Some(f.retry_after_secs()));
        }
    }
}
