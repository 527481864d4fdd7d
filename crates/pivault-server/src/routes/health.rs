//! `GET /healthz` (the process is up) and `GET /readyz` (writes are being stored).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pivault_core::NotReady;
use pivault_domain::Code;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The health routes (outside `/v1`, no key).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// `GET /healthz`: liveness, the text `ok` while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", content_type = "text/plain", body = String)),
    security(()))]
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready` (otherwise a 503 error).
    pub status: &'static str,
}

/// `GET /readyz`: 200 `{"status": "ready"}` when the instance can serve: the database answers,
/// its schema has every migration of this build, the loaded master key is the database's, and
/// writes are being stored (see [`pivault_core::Vault::readiness`]). Otherwise a 503 error:
/// `storage_unavailable` (database unreachable), `storage_full` / `storage_busy` (a storage
/// fault, until a write succeeds again; while not ready the check itself tries a small write at
/// most once a second), `migrations_pending`, `master_key_not_loaded`; each with
/// `Retry-After`. `/healthz` only says the process is up.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "The instance can serve", body = Ready),
        (status = 503, description = "Not ready: `storage_unavailable`, `storage_full`, `storage_busy`, `migrations_pending` or `master_key_not_loaded`; retry after `Retry-After`"),
    ),
    security(()))]
async fn readyz(State(state): State<AppState>) -> Response {
    match state.vault.readiness().await {
        Ok(()) => Json(Ready { status: "ready" }).into_response(),
        Err(NotReady::Storage(fault)) => ApiError::storage(fault).into_response(),
        Err(NotReady::MigrationsPending(v)) => {
            let mut e = ApiError::new(
                Code::MigrationsPending,
                format!(
                    "not ready: the database lacks {} migration(s) of this build (first {}); run \
                     `pivault migrate`",
                    v.len(),
                    v.first().copied().unwrap_or_default()
                ),
            );
            e.retry_after = Some(5);
            e.into_response()
        }
        Err(NotReady::KeyNotLoaded) => {
            let mut e = ApiError::new(
                Code::MasterKeyNotLoaded,
                "not ready: the loaded master key is not the one this database records",
            );
            e.retry_after = Some(5);
            e.into_response()
        }
    }
}
