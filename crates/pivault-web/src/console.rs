//! The privacy office's console under `/console` (issue 14 item 5): sign-in by API key (role
//! `dpo`, `admin` or `security`), the DSR queue with the days left coloured by urgency and
//! approve or reject (with a PIPL Art. 50 reason), the inquiry queue, incidents and their
//! notice counts, legal holds, the disclosure report with its exceptions, and the audit
//! chain's status. Every action is the API's use case under the key's principal, so it is
//! decided, role-checked and audited exactly as through `/v1`.
//!
//! The console cookie `pv_console` holds the API key itself (`HttpOnly; Secure;
//! SameSite=Strict`, 30 minutes): each request authenticates it again, so a revoked key stops
//! working on every instance within the keys epoch (100 ms), and nothing else is stored.

use crate::pages::{render, set_cookie, Ctx, Page};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use pivault_core::dsr::{DsrView, REJECTION_REASONS};
use pivault_core::{CoreError, DsrFilter, HoldRow, IncidentView, Principal, Vault};
use serde::Deserialize;
use std::sync::Arc;

const CONSOLE_COOKIE: &str = "pv_console";

/// One queued request with its urgency.
pub(crate) struct QueueRow {
    pub(crate) v: DsrView,
    pub(crate) days_left: i64,
    /// `overdue`, `soon` (two days or less) or `ok`.
    pub(crate) urgency: &'static str,
}

#[derive(Template)]
#[template(path = "console_signin.html")]
struct SigninPage {
    p: Page,
}

#[derive(Template)]
#[template(path = "console.html")]
struct ConsolePage {
    p: Page,
    principal: String,
    queue: Option<Vec<QueueRow>>,
    inquiries: Option<Vec<QueueRow>>,
    incidents: Option<Vec<IncidentView>>,
    holds: Option<Vec<HoldRow>>,
    report: Option<pivault_core::provisions::DisclosureReport>,
    reasons: Vec<&'static str>,
}

#[derive(Template)]
#[template(path = "console_audit.html")]
struct AuditPage {
    p: Page,
    report: pivault_core::AuditVerifyReport,
}

#[derive(Template)]
#[template(path = "console_inquiry.html")]
struct InquiryPage {
    p: Page,
    id: String,
    text: String,
}

/// The console's principal: the key in `pv_console`, if it authenticates and holds a console
/// role.
async fn principal(vault: &Vault, headers: &HeaderMap) -> Option<(String, Principal)> {
    let key = crate::pages::cookie_value(headers, CONSOLE_COOKIE)?;
    let p = vault.authenticate(key).await.ok()?;
    ["dpo", "admin", "security"]
        .iter()
        .any(|r| p.has_role(r))
        .then(|| (key.to_string(), p))
}

fn to_signin(ctx: &Ctx) -> Response {
    ctx.with_cookies(Redirect::to("/console/signin").into_response())
}

/// `GET /console/signin`.
pub(crate) async fn signin(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    ctx.ok(render(&SigninPage {
        p: ctx.page("console.signin", "/console/signin"),
    })
    .0)
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

/// `POST /console/signin`: checks the key and its role, then keeps it in `pv_console`.
pub(crate) async fn signin_post(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<KeyForm>,
) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    let key = f.key.trim();
    let ok = key.len() <= 200
        && key
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        && match ctx.vault.authenticate(key).await {
            Ok(p) => ["dpo", "admin", "security"].iter().any(|r| p.has_role(r)),
            Err(_) => false,
        };
    if !ok {
        return ctx.fail_with(
            StatusCode::UNAUTHORIZED,
            "console.bad_key",
            "/console/signin",
        );
    }
    let mut res = ctx.with_cookies(Redirect::to("/console").into_response());
    if let Ok(v) = HeaderValue::from_str(&set_cookie(CONSOLE_COOKIE, key, 30 * 60)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `POST /console/signout`.
pub(crate) async fn signout(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<crate::pages::CsrfOnly>,
) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    let binding = crate::pages::cookie_value(&headers, CONSOLE_COOKIE).unwrap_or_default();
    if !ctx.vault.center_csrf_ok(binding, f.csrf()) {
        return ctx.fail_with(StatusCode::FORBIDDEN, "error.csrf", "/console");
    }
    let mut res = ctx.with_cookies(Redirect::to("/console/signin").into_response());
    if let Ok(v) = HeaderValue::from_str(&set_cookie(CONSOLE_COOKIE, "", 0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn queue_rows(vault: &Vault, views: Vec<DsrView>) -> Vec<QueueRow> {
    let now = vault.now().unix_timestamp();
    views
        .into_iter()
        .map(|v| {
            let due = time::OffsetDateTime::parse(
                &v.due_at,
                &time::format_description::well_known::Rfc3339,
            )
            .map_or(now, time::OffsetDateTime::unix_timestamp);
            let left = due - now;
            let days_left = left.div_euclid(86_400);
            let urgency = if v.overdue || left < 0 {
                "overdue"
            } else if left <= 2 * 86_400 {
                "soon"
            } else {
                "ok"
            };
            QueueRow {
                v,
                days_left,
                urgency,
            }
        })
        .collect()
}

/// The open requests of `kind` (or of every kind but inquiries and sign-ins), oldest due
/// first; `None` when the role may not see them.
async fn open_requests(vault: &Vault, p: &Principal, inquiries: bool) -> Option<Vec<QueueRow>> {
    let mut out = Vec::new();
    for state in ["verified", "in_progress", "failed"] {
        let f = DsrFilter {
            state: Some(state.into()),
            kind: inquiries.then(|| "inquiry".to_string()),
            limit: 200,
            ..DsrFilter::default()
        };
        match vault.dsr_list(p, &f).await {
            Ok(v) => out.extend(
                v.into_iter()
                    .filter(|r| inquiries || (r.kind != "inquiry" && r.kind != "sign_in")),
            ),
            Err(_) => return None,
        }
    }
    out.sort_by(|a, b| a.due_at.cmp(&b.due_at));
    Some(queue_rows(vault, out))
}

/// `GET /console`: the queues and the office's reports.
pub(crate) async fn dashboard(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    axum::extract::Query(d): axum::extract::Query<crate::pages::Done>,
) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    let Some((key, p)) = principal(&ctx.vault, &headers).await else {
        return to_signin(&ctx);
    };
    let v = &ctx.vault;
    let now = v.now().unix_timestamp();
    let mut page = ctx.page("console.title", "/console");
    page.csrf = v.center_csrf(&key);
    page.notice = crate::pages::notice_of(&d);
    page.banner = false;
    let html = render(&ConsolePage {
        p: page,
        principal: p.name.clone(),
        queue: open_requests(v, &p, false).await,
        inquiries: open_requests(v, &p, true).await,
        incidents: v.incidents(&p).await.ok(),
        holds: v.hold_list(&p, true).await.ok(),
        report: v
            .disclosure_report(&p, now - 30 * 86_400, now + 1)
            .await
            .ok(),
        reasons: REJECTION_REASONS.iter().map(|(c, _, _)| *c).collect(),
    });
    ctx.ok(html.0)
}

/// `GET /console/audit`: verifies the audit chain now (a replay: seconds on a large log).
pub(crate) async fn audit(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    let Some((key, _)) = principal(&ctx.vault, &headers).await else {
        return to_signin(&ctx);
    };
    match ctx.vault.verify_audit().await {
        Ok(report) => {
            let mut page = ctx.page("console.audit", "/console/audit");
            page.csrf = ctx.vault.center_csrf(&key);
            page.banner = false;
            ctx.ok(render(&AuditPage { p: page, report }).0)
        }
        Err(e) => ctx.fail(&e, "/console"),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    action: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /console/dsr/{id}`: approve (and run) or reject with a reason; an inquiry is
/// answered (completed) by approving it.
pub(crate) async fn dsr_action(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ActionForm>,
) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    let Some((key, p)) = principal(&ctx.vault, &headers).await else {
        return to_signin(&ctx);
    };
    if !ctx.vault.center_csrf_ok(&key, &f.csrf) {
        return ctx.fail_with(StatusCode::FORBIDDEN, "error.csrf", "/console");
    }
    let v = &ctx.vault;
    let res: Result<DsrView, CoreError> = match f.action.as_str() {
        "approve" => match v.dsr_approve(&p, &id).await {
            Ok(_) => v.dsr_run(&p, &id).await,
            Err(CoreError::Conflict(_)) => v.dsr_run(&p, &id).await,
            Err(e) => Err(e),
        },
        "reject" => {
            v.dsr_reject(&p, &id, f.reason.as_deref().unwrap_or(""))
                .await
        }
        _ => Err(CoreError::invalid(
            "action",
            "invalid_body",
            "approve or reject",
        )),
    };
    match res {
        Ok(_) => ctx.with_cookies(Redirect::to("/console?done=dsr").into_response()),
        Err(e) => ctx.fail(&e, "/console"),
    }
}

/// `GET /console/dsr/{id}/inquiry`: the question or complaint of an inquiry, for the office
/// to answer (policy §XI). Opened through the one access path: decided, narrowed by the staff
/// policy and audited under the key's own principal ([`Vault::center_inquiry_text`]).
pub(crate) async fn inquiry(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let ctx = crate::pages::ctx_or_return!(vault, headers);
    let Some((key, p)) = principal(&ctx.vault, &headers).await else {
        return to_signin(&ctx);
    };
    if id.len() != 36 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return ctx.fail(&CoreError::NotFound("dsr"), "/console");
    }
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match ctx.vault.center_inquiry_text(&p, &id, rid.as_deref()).await {
        Ok(text) => {
            let mut page = ctx.page("console.inquiry", "/console");
            page.csrf = ctx.vault.center_csrf(&key);
            page.banner = false;
            ctx.ok(render(&InquiryPage { p: page, id, text }).0)
        }
        Err(e) => ctx.fail(&e, "/console"),
    }
}
