//! `ApiError`: every failure mapped explicitly to (status, stable code, fixed message).
//!
//! Invariants: bodies never carry a PI value or a database/driver message; 5xx bodies carry
//! only a code and the request id, and the cause is logged (without PI) under that id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pivault_core::CoreError;
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
}

impl ApiError {
    /// A plain error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            detail: None,
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
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
        (self.status, Json(json!({ "error": body }))).into_response()
    }
}
