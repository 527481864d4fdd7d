//! `GET /healthz` (the process is up) and `GET /readyz` (writes are being stored).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// The health routes (outside `/v1`, no key).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
}

/// `GET /readyz` answer.
#[derive(Debug, Serialize)]
pub struct Ready {
    /// Always `ready` (otherwise a 503 error).
    pub status: &'static str,
}

/// `GET /readyz`: 200 `{"status": "ready"}` while writes are being stored; 503 with
/// `storage_full` / `storage_unavailable` (and `Retry-After`) from a storage fault until a write
/// succeeds again. While not ready, the check itself tries a small write (at most once a
/// second), so readiness comes back when the storage does, with or without traffic.
/// (`/healthz` only says the process is up.)
async fn readyz(State(state): State<AppState>) -> Response {
    match state.vault.write_readiness().await {
        Ok(()) => Json(Ready { status: "ready" }).into_response(),
        Err(fault) => ApiError::storage(fault).into_response(),
    }
}
