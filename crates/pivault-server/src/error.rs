//! `ApiError`: every failure mapped explicitly to (status, stable code, fixed message).
//!
//! Invariants: bodies never carry a PI value or a database/driver message; 5xx bodies carry
//! only a code and the request id, and the cause is logged (without PI) under that id.
//! A busy store (a PostgreSQL lock or statement timeout) is 503
//! `storage_busy` with `Retry-After`: nothing was committed and the same request may be sent
//! again.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pivault_core::CoreError;
use pivault_store::StorageFault;
use serde_json::{json, Value};

/// An API error, rendered as `{"error": {"code", "message", …}}`.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Fixed human message (never includes input values).
    pub message: String,
    /// Extra structured detail (reason, clause, article, field…).
    pub detail: Option<Value>,
    /// `Retry-After` in seconds (storage faults). A `u16` keeps `ApiError` small
    /// (`clippy::result_large_err`).
    pub retry_after: Option<u16>,
}

impl ApiError {
    /// A plain error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
            retry_after: None,
        }
    }

    /// 503 for a storage fault: `storage_full`, `storage_unavailable` or `storage_busy`, with
    /// `Retry-After`.
    /// Nothing was committed, so the same request may be retried.
    #[must_use]
    pub fn storage(fault: StorageFault) -> Self {
        Self {
            retry_after: Some(fault.retry_after_secs()),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                fault.code(),
                match fault {
                    StorageFault::Full => "the storage is full; nothing was saved, retry later",
                    StorageFault::Unavailable => {
                        "the storage is unavailable; nothing was saved, retry later"
                    }
                    StorageFault::Busy => {
                        "the database is busy; nothing was saved, retry after the time in Retry-After"
                    }
                },
            )
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        if let Some(fault) = e.storage_fault() {
            // The message says which fault; the error's own text (sqlx's, no PI) follows.
            match fault {
                StorageFault::Full => tracing::error!(error = %e, "disk full: write refused"),
                StorageFault::Unavailable => {
                    tracing::error!(error = %e, "storage unavailable: write refused");
                }
                StorageFault::Busy => tracing::warn!(error = %e, "storage busy: request refused"),
            }
            return Self::storage(fault);
        }
        match e {
            CoreError::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "a valid API key is required (Authorization: Bearer <key>)",
            ),
            CoreError::Forbidden { code, message } => {
                Self::new(StatusCode::FORBIDDEN, code, message)
            }
            CoreError::Denied(d) => Self {
                status: StatusCode::FORBIDDEN,
                code: "decision_denied",
                message: d.explanation.clone(),
                detail: Some(json!({
                    "reason": d.code,
                    "article": d.article,
                    "clause": d.clause,
                    "withheld": d.withheld.iter().map(|(c, r)| json!({"category": c, "reason": r})).collect::<Vec<_>>(),
                })),
                retry_after: None,
            },
            CoreError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                match what {
                    "subject" => "subject_not_found",
                    "dsr" => "dsr_not_found",
                    _ => "not_found",
                },
                format!("{what} not found"),
            ),
            CoreError::Invalid {
                field,
                code,
                reason,
            } => Self {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                message: reason.to_string(),
                detail: Some(json!({ "field": field })),
                retry_after: None,
            },
            CoreError::Conflict(code) => Self::new(
                StatusCode::CONFLICT,
                code,
                "the request conflicts with the current state",
            ),
            CoreError::Store(err) => {
                tracing::error!(error = %err, "store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
            CoreError::Crypto(err) => {
                tracing::error!(error = %err, "crypto failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
            CoreError::Audit(err) => {
                tracing::error!(error = %err, "audit append failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
            CoreError::Storage { fault, .. } => Self::storage(fault),
            CoreError::Io(err) => {
                tracing::error!(error = %err, "io failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
            CoreError::KeyRefused { code, .. } => {
                tracing::error!(code, "master key refused");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let (Some(Value::Object(extra)), Value::Object(b)) = (self.detail, &mut body) {
            for (k, v) in extra {
                b.insert(k, v);
            }
        }
        let mut resp = (self.status, Json(json!({ "error": body }))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
