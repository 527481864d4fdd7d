//! `GET /v1/reports/disclosures`: admin counts of disclosures over a window.
//! `GET /v1/reports/retention`: per category, what is held, the oldest item, what falls due in
//! the next 30 days and what legal holds keep (admin, dpo; policy §4.2, §8.2).

use super::bad_query;
use crate::error::ApiError;
use crate::extract::Auth;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use pivault_core::values::{format_timestamp, parse_timestamp};
use pivault_core::CoreError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The report routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(disclosure_report))
        .routes(routes!(retention_report))
}

/// `GET /v1/reports/disclosures` query: RFC 3339 bounds, both optional.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Window start (inclusive).
    #[serde(default)]
    pub from: Option<String>,
    /// Window end (exclusive).
    #[serde(default)]
    pub to: Option<String>,
}

/// `GET /v1/reports/disclosures` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportOut {
    /// Window start, RFC 3339.
    pub from: String,
    /// Window end, RFC 3339 (`null`: open).
    pub to: Option<String>,
    /// Entries in the window.
    pub total: usize,
    /// Entries relying on a §5.4 exception.
    pub under_exception: usize,
    /// Distinct subjects concerned.
    pub subjects: usize,
    /// Per action.
    pub by_action: BTreeMap<String, usize>,
    /// Per recipient.
    pub by_recipient: BTreeMap<String, usize>,
    /// Per exception kind.
    pub by_exception: BTreeMap<String, usize>,
    /// Per legal basis.
    pub by_legal_basis: BTreeMap<String, usize>,
}

/// Counts of disclosures in a window (admin).
#[utoipa::path(get, path = "/reports/disclosures", tag = "reports",
    params(ReportQuery),
    responses((status = 200, description = "The counts", body = ReportOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn disclosure_report(
    State(s): State<AppState>,
    Auth(p): Auth,
    q: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Json<ReportOut>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let bound = |v: Option<&str>, field: &'static str, default: i64| -> Result<i64, ApiError> {
        v.map_or(Ok(default), |t| {
            parse_timestamp(t).map_err(|e| CoreError::invalid(field, e.code, e.reason).into())
        })
    };
    let from = bound(q.from.as_deref(), "from", 0)?;
    let to = bound(q.to.as_deref(), "to", i64::MAX)?;
    if from > to {
        // An empty window is a mistake, not a report of zero.
        return Err(super::invalid_parameter("to", "to is before from"));
    }
    let r = s.vault.disclosure_report(&p, from, to).await?;
    Ok(Json(ReportOut {
        from: format_timestamp(r.from),
        to: (r.to != i64::MAX).then(|| format_timestamp(r.to)),
        total: r.total,
        under_exception: r.under_exception,
        subjects: r.subjects,
        by_action: r.by_action,
        by_recipient: r.by_recipient,
        by_exception: r.by_exception,
        by_legal_basis: r.by_legal_basis,
    }))
}

/// One category of the retention report.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionLineOut {
    /// Category key.
    pub category: String,
    /// `keep_for` in days (`null`: no rule; kept until erasure).
    pub keep_for_days: Option<u32>,
    /// `legal_minimum` in days.
    pub legal_minimum_days: Option<u32>,
    /// The event that starts the clock.
    pub clock: Option<&'static str>,
    /// `delete` or `anonymize`.
    pub end: Option<&'static str>,
    /// Records under a per-record clock (orders, web-log lines, tickets) held now.
    pub records: i64,
    /// Fields kept after an erasure for a legal minimum or a hold.
    pub restricted_fields: i64,
    /// The oldest record's clock start, RFC 3339.
    pub oldest: Option<String>,
    /// Records and restricted fields that fall due within the next 30 days.
    pub due_next_30_days: i64,
    /// Records and fields kept by a legal hold.
    pub on_hold: i64,
}

/// `GET /v1/reports/retention` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionReportOut {
    /// When the report was made, RFC 3339.
    pub at: String,
    /// One line per category of the policy, in policy order.
    pub categories: Vec<RetentionLineOut>,
}

/// Retention per category (admin, dpo): held, oldest, due in 30 days, on hold.
#[utoipa::path(get, path = "/reports/retention", tag = "reports",
    responses((status = 200, description = "The report", body = RetentionReportOut)),
    security(("bearer" = []), ("api_key" = [])))]
async fn retention_report(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<RetentionReportOut>, ApiError> {
    let lines = s.vault.retention_report(&p, 30 * 86_400).await?;
    Ok(Json(RetentionReportOut {
        at: format_timestamp(s.vault.now().unix_timestamp()),
        categories: lines
            .into_iter()
            .map(|l| RetentionLineOut {
                category: l.category,
                keep_for_days: l.keep_for_days,
                legal_minimum_days: l.legal_minimum_days,
                clock: l.clock,
                end: l.end,
                records: l.records,
                restricted_fields: l.restricted_fields,
                oldest: l.oldest_event_at.map(format_timestamp),
                due_next_30_days: l.due_in_window,
                on_hold: l.on_hold,
            })
            .collect(),
    }))
}
