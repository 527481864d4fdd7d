//! pivault's HTTP front-end: the `/v1` JSON API over [`pivault_core::Vault`].
//!
//! Invariants: every `/v1` route authenticates (401 without a key), except the requester's
//! side of `/v1/dsr` (filing, then the request token from filing; see [`dsr`]); every error is an
//! [`error::ApiError`] with a stable code and no PI; bodies over 1 MiB get 413; a panic in a
//! handler becomes a 500 with a code, never a dropped connection; request ids are set on the
//! way in and returned on the way out (`x-request-id`), and every log line written while a
//! request is served carries it (the `http` span's `request_id` field). [`serve_with`] serves
//! plain HTTP or TLS and drains on shutdown. Every route is described in the OpenAPI document
//! served at `GET /openapi.json` ([`openapi`]).

pub mod delivery;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod serve;
pub mod transport;

pub use serve::{load_tls, serve_with, Drained, ServeOptions};

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

/// Longest accepted request target (path and query): 8 KiB. Longer is 414 `uri_too_long`
/// (hyper itself answers targets over 65,534 bytes; see [`transport`]).
pub const MAX_URI_BYTES: usize = 8 << 10;

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The vault.
    pub vault: Arc<Vault>,
}

impl axum::extract::FromRef<AppState> for Arc<Vault> {
    fn from_ref(s: &AppState) -> Self {
        Arc::clone(&s.vault)
    }
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
    let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI_BYTES {
        return error::ApiError::new(
            Code::UriTooLong,
            "the request target (path and query) is longer than 8 KiB",
        )
        .into_response();
    }
    next.run(req).await
}

/// How long a request's body may go without a byte arriving once its headers have (a client
/// that declares a length and stalls would otherwise hold its connection and task for good).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Drops an incoming `x-request-id`, so that `SetRequestIdLayer` always makes the server's
/// own (a UUID v4). A request id is logged with every line of its request and stored in every
/// audit entry it writes, where erasure cannot reach: a client's value could be PI (a mobile
/// number or an account id sent as a request id), and even a UUID can carry one in its digits.
async fn drop_client_request_id(
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    req.headers_mut().remove("x-request-id");
    next.run(req).await
}

/// The full application router.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let http_metrics = Arc::new(metrics::HttpMetrics::default());
    let (routes, _) = openapi::api().split_for_parts();
    routes
        // The privacy center's HTML pages (`/`, `/me`, …): not JSON API routes, so not in
        // the OpenAPI document; inside every layer below (request ids, tracing, metrics,
        // error logging, panic catching, body limits).
        .merge(pivault_web::routes::<AppState>())
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
        // Outside the error rewriting and the panic catcher: counts the status the client got,
        // under the route template (routing has run: `MatchedPath` is set).
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&http_metrics),
            metrics::track,
        ))
        .layer(axum::Extension(http_metrics))
        .layer(TraceLayer::new_for_http()
            // One access line per request at INFO (status, latency), inside the span that
            // carries the request id; a request's other lines carry it too.
            .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO))
            .make_span_with(|req: &axum::http::Request<_>| {
            // The route template and the method label, never the path or query the client
            // sent: a path can hold ids, or PI typed where an id goes (`/v1/subjects/<mobile>`).
            tracing::info_span!(
                "http",
                method = metrics::method_label(req.method()),
                route = %metrics::route_label(req),
                request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or(""),
            )
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Outside SetRequestId, so a client's id is gone before it could be kept; the body
        // timeout outermost, around everything that reads a body.
        .layer(axum::middleware::from_fn(drop_client_request_id))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(BODY_READ_TIMEOUT))
        .with_state(state)
}

/// Serves `router` on `listener` over plain HTTP until `shutdown` resolves, then drains
/// (see [`serve_with`], default [`ServeOptions`]: 30 s).
///
/// # Errors
/// I/O errors from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, ServeOptions::default(), shutdown)
        .await
        .map(|_| ())
}
