//! pivault's HTTP front-end: the `/v1` JSON API over [`pivault_core::Vault`].
//!
//! Invariants: every `/v1` route authenticates (401 without a key), except the requester's
//! side of `/v1/dsr` (filing, then the request token from filing; see [`dsr`]); every error is an
//! [`error::ApiError`] with a stable code and no PI; bodies over 1 MiB get 413; a panic in a
//! handler becomes a 500 with a code, never a dropped connection; request ids are set on the
//! way in and returned on the way out (`x-request-id`).

pub mod error;
pub mod extract;
pub mod routes;

/// The `/v1/dsr` routes and the notifier-backed code sender (kept at `pivault_server::dsr`).
pub use routes::dsr;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::Router;
use pivault_core::Vault;
use pivault_domain::Code;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Largest accepted request body: 1 MiB.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The vault.
    pub vault: Arc<Vault>,
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    // The panic payload may hold anything; it is not logged or returned.
    error::ApiError::internal("handler panicked").into_response()
}

/// Refuses a body whose declared length is over the limit before reading it (otherwise a
/// client that declares 100 MB and sends 2 bytes holds the connection until it times out).
async fn reject_oversized(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return error::ApiError::new(Code::BodyTooLarge, "the body is larger than 1 MiB")
            .into_response();
    }
    next.run(req).await
}

/// The full application router.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .nest("/v1", routes::v1())
        .merge(routes::health::routes())
        .route("/metrics", axum::routing::get(routes::dsr::metrics))
        .fallback(|| async { error::ApiError::new(Code::RouteNotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(Code::MethodNotAllowed, "method not allowed on this route")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(reject_oversized))
        .layer(CatchPanicLayer::custom(panic_response))
        // Inside the request-id layers (the id is set), outside everything that answers with
        // an error (handlers, extractors, the size check, the panic catcher).
        .layer(axum::middleware::from_fn(error::log_errors))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            // Path only (ids, no PI); the query string is left out on purpose.
            tracing::info_span!(
                "http",
                method = %req.method(),
                path = %req.uri().path(),
                request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or(""),
            )
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves.
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
