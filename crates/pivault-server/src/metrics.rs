//! The Prometheus exporter: `GET /metrics` (text format 0.0.4) with the HTTP families counted
//! here and the vault's own ([`pivault_core::Metrics`]), plus gauges read from the store at
//! scrape time (requests per state, overdue and near-due requests per jurisdiction).
//!
//! **No PI in a label.** The `route` label is the route *template* axum matched
//! ([`MatchedPath`], e.g. `/v1/subjects/{id}/fields`), never the path the client sent: paths
//! carry subject and request ids. A request that matched no route is `unmatched`; a method
//! outside the standard ones is `other`. Every other label is a code enum (see
//! [`pivault_core::metrics`]). `/metrics` itself needs no key: it holds counts only.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Instant;

/// Labels of `pivault_http_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// Labels of `pivault_http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to about 16 s (×2).
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// The HTTP families: requests by method, route template and status; latency by method and
/// route template. One per router (shared by its requests through a layer).
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        }
    }
}

impl HttpMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "pivault_http_requests",
            "HTTP requests by method, route template and status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "pivault_http_request_duration",
            "HTTP request latency by method and route template",
            Unit::Seconds,
            self.latency.clone(),
        );
    }
}

/// The method as a label: the standard ones by name, anything else `other` (a client can
/// send any token as a method).
pub(crate) fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The route template the request matched (`/v1/subjects/{id}/fields`), or `unmatched`;
/// never the path the client sent (it can hold ids, or PI typed into a path).
pub(crate) fn route_label<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// Middleware: counts each request and its latency under its route template and final
/// status (after error rewriting and panic catching).
pub async fn track(State(m): State<Arc<HttpMetrics>>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    let route = route_label(&req);
    let started = Instant::now();
    let res = next.run(req).await;
    let took = started.elapsed().as_secs_f64();
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: res.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { method, route })
        .observe(took);
    res
}

/// Labels of the scrape-time DSR gauges per jurisdiction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JurisdictionLabels {
    jurisdiction: String,
}

/// Labels of `pivault_dsr_requests`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// `GET /metrics`: Prometheus text exposition (format 0.0.4). Families: `pivault_http_*`
/// (this module), the vault's (`pivault_decisions_total`, `pivault_audit_*`,
/// `pivault_dek_cache_lookups_total`, `pivault_import_rows_total`, `pivault_sweep_rows_total`,
/// `pivault_field_integrity_failures_total`), and read from the store at scrape time:
/// `pivault_dsr_requests{state}`, `pivault_dsr_overdue{jurisdiction}`,
/// `pivault_dsr_near_due{jurisdiction}`. Counts only — no ids, no PI.
///
/// # Errors
/// A store failure reading the gauges (503 for a storage fault, else 500).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition (version 0.0.4)",
        content_type = "text/plain", body = String)),
    security(()))]
pub async fn metrics(
    State(s): State<AppState>,
    Extension(http): Extension<Arc<HttpMetrics>>,
) -> Result<Response, crate::error::ApiError> {
    let due = s.vault.dsr_due_counts().await?;
    let states = s.vault.dsr_queue_by_state().await?;
    let mut r = Registry::default();
    http.register(&mut r);
    s.vault.metrics().register(&mut r);
    let by_state = Family::<StateLabels, Gauge>::default();
    for (state, n) in states {
        by_state.get_or_create(&StateLabels { state }).set(n);
    }
    r.register(
        "pivault_dsr_requests",
        "Data subject requests by state",
        by_state,
    );
    let overdue = Family::<JurisdictionLabels, Gauge>::default();
    let near = Family::<JurisdictionLabels, Gauge>::default();
    for c in &due {
        let l = JurisdictionLabels {
            jurisdiction: c.jurisdiction.clone(),
        };
        overdue.get_or_create(&l).set(c.overdue);
        near.get_or_create(&l).set(c.near_due);
    }
    r.register(
        "pivault_dsr_overdue",
        "Open data subject requests past their due date",
        overdue,
    );
    r.register(
        "pivault_dsr_near_due",
        "Open data subject requests due within the near-due window",
        near,
    );
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &r)
        .map_err(|_| crate::error::ApiError::internal("metrics encoding failed"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        )],
        out,
    )
        .into_response())
}
