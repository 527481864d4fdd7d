//! The privacy center (issue 14): server-rendered HTML for PI subjects at `/`, over the same
//! use cases as the JSON API (`pivault_core::center`). It works without JavaScript: every
//! action is a form `POST` answered with a redirect (post/redirect/get).
//!
//! Invariants:
//! - **One door.** Pages call `Vault` use cases only: sign-in is a DSR `sign_in` request
//!   verified by one-time code; consent changes are `record_consent`; filings join the DSR
//!   queue; downloads are the request's result. No page opens a sealed value.
//! - **Cookies** (`pv_session`, `pv_signin`, `pv_visitor`, `pv_lang`) are `HttpOnly; Secure;
//!   SameSite=Strict; Path=/`. None holds PI: a session token, a pending sign-in's request id
//!   and token, a random visitor id, a language tag.
//! - **Every form** carries a CSRF token bound to the session (or, signed out, the visitor id),
//!   checked in constant time before anything else.
//! - **Headers** on every response: `Content-Security-Policy: default-src 'self';
//!   frame-ancestors 'none'; form-action 'self'` (no inline script or style),
//!   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `X-Content-Type-Options:
//!   nosniff`, and `Cache-Control: no-store` (pages can show a person's data).
//! - **No PI in URLs**: identities travel in form bodies only; paths hold request ids.
//! - **Global Privacy Control** (`Sec-GPC: 1`) on a visitor with no earlier choice records a
//!   refusal of every non-essential cookie category, server-side, method `gpc`; it never
//!   overrides an explicit choice. `/.well-known/gpc.json` declares support.

mod console;
pub mod i18n;
mod pages;

use axum::extract::FromRef;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use pivault_core::Vault;
use std::sync::Arc;

pub use i18n::{Lang, Tr};

/// The `Content-Security-Policy` of every page: nothing from elsewhere, no inline script or
/// style, no framing, forms post only here.
pub const CSP: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The privacy center's routes, for a state from which the vault can be taken. HTML pages,
/// the stylesheet and `/.well-known/gpc.json`; not part of the `/v1` JSON API or its OpenAPI
/// document.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Vault>: FromRef<S>,
{
    Router::new()
        .route("/", get(pages::home))
        .route("/static/center.css", get(pages::stylesheet))
        .route("/.well-known/gpc.json", get(pages::gpc_json))
        .route("/lang", get(pages::switch_lang))
        .route("/policy", get(pages::policy))
        .route("/announcements", get(pages::announcements))
        .route("/cookies", get(pages::cookies).post(pages::cookies_post))
        .route("/signin", get(pages::signin).post(pages::signin_post))
        .route(
            "/signin/guardian",
            get(pages::guardian_signin).post(pages::guardian_signin_post),
        )
        .route("/signin/verify", post(pages::signin_verify))
        .route("/signout", post(pages::signout))
        .route("/me", get(pages::me))
        .route(
            "/me/consents",
            get(pages::consents).post(pages::consents_post),
        )
        .route("/me/recipients", get(pages::recipients))
        .route("/me/access", get(pages::access))
        .route("/me/access/{seq}/proof", get(pages::access_proof))
        .route(
            "/me/requests",
            get(pages::requests).post(pages::requests_post),
        )
        .route("/me/requests/{id}/result", get(pages::request_result))
        .route("/console", get(console::dashboard))
        .route(
            "/console/signin",
            get(console::signin).post(console::signin_post),
        )
        .route("/console/signout", post(console::signout))
        .route("/console/audit", get(console::audit))
        .route("/console/dsr/{id}", post(console::dsr_action))
        .route("/console/dsr/{id}/inquiry", get(console::inquiry))
        .layer(axum::middleware::map_response(security_headers))
}

/// The page for an error answered before a handler ran (a form the extractor refused: a
/// missing field, a wrong content type): HTML in both languages, never the API's JSON.
const EXTRACTOR_ERROR_PAGE: &str = "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<title>出错了 · Something went wrong</title><link rel=\"stylesheet\" href=\"/static/center.css\"></head>\
<body><main id=\"main\"><h1>出错了 · Something went wrong</h1>\
<p role=\"alert\">请检查您输入的内容。<span lang=\"en\">Please check what you entered.</span></p>\
<p><a href=\"/\">返回首页 <span lang=\"en\">Back to the start</span></a></p></main></body></html>";

/// Adds the security headers of every page (see the crate docs); turns an error answered
/// before a handler ran (not HTML) into an HTML page with the same status.
async fn security_headers(mut res: Response) -> Response {
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if res.status().is_client_error() && !html {
        let status = res.status();
        res = (status, axum::response::Html(EXTRACTOR_ERROR_PAGE)).into_response();
    }
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
