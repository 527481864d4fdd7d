//! The handlers and their templates.

use crate::i18n::{Lang, Tr};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use pivault_core::center::{
    new_visitor_id, valid_visitor_id, AccessEntry, CenterCategory, CenterConsent, CenterFiling,
    CookieChoice, CookieMethod, COOKIE_CATEGORIES, SESSION_SECONDS,
};
use pivault_core::center::{ConsentRow, DisclosureRow};
use pivault_core::dsr::{DsrView, ResultFormat};
use pivault_core::{CenterSession, CoreError, Vault};
use pivault_domain::dsr::DsrKind;
use pivault_domain::policy::localized;
use serde::Deserialize;
use std::sync::Arc;

const SESSION_COOKIE: &str = "pv_session";
const SIGNIN_COOKIE: &str = "pv_signin";
const VISITOR_COOKIE: &str = "pv_visitor";
const LANG_COOKIE: &str = "pv_lang";

/// What every page knows about the request.
pub(crate) struct Ctx {
    pub(crate) vault: Arc<Vault>,
    pub(crate) lang: Lang,
    visitor: String,
    new_visitor: bool,
    session_token: Option<String>,
    session: Option<CenterSession>,
    cookie: Option<CookieChoice>,
    set_cookies: Vec<String>,
}

pub(crate) fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` with the attributes of every pivault cookie.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64) -> String {
    format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; Secure; SameSite=Strict")
}

impl Ctx {
    /// Reads the cookies and headers; makes a visitor id when there is none; applies a GPC
    /// signal to a visitor with no choice; loads the session when its cookie is valid.
    pub(crate) async fn load(vault: Arc<Vault>, headers: &HeaderMap) -> Result<Self, Response> {
        let lang = cookie_value(headers, LANG_COOKIE)
            .and_then(Lang::parse)
            .unwrap_or_else(|| {
                Lang::negotiate(
                    headers
                        .get(header::ACCEPT_LANGUAGE)
                        .and_then(|v| v.to_str().ok()),
                )
            });
        let mut set_cookies = Vec::new();
        let (visitor, new_visitor) = match cookie_value(headers, VISITOR_COOKIE) {
            Some(v) if valid_visitor_id(v) => (v.to_string(), false),
            _ => {
                let v = new_visitor_id().map_err(|e| error_page(&Tr { lang }, &e))?;
                set_cookies.push(set_cookie(VISITOR_COOKIE, &v, 365 * 86_400));
                (v, true)
            }
        };
        let mut session_token = None;
        let mut session = None;
        if let Some(tok) = cookie_value(headers, SESSION_COOKIE) {
            match vault.center_session(tok).await {
                Ok(s) => {
                    session = Some(s);
                    session_token = Some(tok.to_string());
                }
                Err(CoreError::Unauthenticated) => {
                    set_cookies.push(set_cookie(SESSION_COOKIE, "", 0));
                }
                Err(e) => return Err(error_page(&Tr { lang }, &e)),
            }
        }
        // A guardian's browser is the guardian's: its cookie choices stay with its visitor id.
        let subject = session
            .as_ref()
            .filter(|s| !s.erased && !s.guardian)
            .map(|s| s.subject_id.as_str());
        let gpc = headers
            .get("sec-gpc")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "1");
        let cookie = if gpc {
            vault
                .cookie_record(&visitor, subject, CookieMethod::Gpc, &[])
                .await
        } else if new_visitor && subject.is_none() {
            Ok(None)
        } else {
            vault.cookie_choice(&visitor, subject).await
        }
        .map_err(|e| error_page(&Tr { lang }, &e))?;
        Ok(Self {
            vault,
            lang,
            visitor,
            new_visitor,
            session_token,
            session,
            cookie,
            set_cookies,
        })
    }

    fn tr(&self) -> Tr {
        Tr { lang: self.lang }
    }

    /// The CSRF binding: the session token when signed in, else the visitor id.
    fn binding(&self) -> &str {
        self.session_token.as_deref().unwrap_or(&self.visitor)
    }

    pub(crate) fn page(&self, title_key: &'static str, back: &str) -> Page {
        Page {
            tr: self.tr(),
            title_key,
            csrf: self.vault.center_csrf(self.binding()),
            signed_in: self.session.is_some(),
            guardian: self.session.as_ref().is_some_and(|s| s.guardian),
            banner: self.cookie.is_none(),
            back: back.to_string(),
            policy_version: self.vault.policy().version().to_string(),
            notice: None,
        }
    }

    /// Checks the form's CSRF token: `None` when it is right, else the page explaining it.
    pub(crate) fn csrf_refusal(&self, token: &str) -> Option<Response> {
        // A new visitor has no binding the form could have been made for.
        if self.new_visitor && self.session.is_none()
            || !self.vault.center_csrf_ok(self.binding(), token)
        {
            return Some(self.fail_with(StatusCode::FORBIDDEN, "error.csrf", "/"));
        }
        None
    }

    pub(crate) fn with_cookies(&self, mut res: Response) -> Response {
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        res
    }

    pub(crate) fn ok(&self, html: String) -> Response {
        self.with_cookies(axum::response::Html(html).into_response())
    }

    /// An error page with `status` and the message `key`.
    pub(crate) fn fail_with(
        &self,
        status: StatusCode,
        key: &'static str,
        again: &'static str,
    ) -> Response {
        self.with_cookies(
            (
                status,
                render(&ErrorPage {
                    p: self.page("error.title", again),
                    message: key,
                    again,
                }),
            )
                .into_response(),
        )
    }

    pub(crate) fn fail(&self, e: &CoreError, again: &'static str) -> Response {
        if matches!(e, CoreError::Unauthenticated) {
            return self.with_cookies(Redirect::to("/signin").into_response());
        }
        let (status, message) = classify(e);
        let mut res = self.fail_with(status, message, again);
        if let CoreError::RateLimited { retry_after } = e {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        res
    }
}

/// The status and message key of an error; never its text (which may name a field).
fn classify(e: &CoreError) -> (StatusCode, &'static str) {
    if e.storage_fault().is_some() {
        return (StatusCode::SERVICE_UNAVAILABLE, "error.unavailable");
    }
    match e {
        CoreError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "error.rate"),
        CoreError::Invalid { code, .. } if code.starts_with("code_") => {
            (StatusCode::UNPROCESSABLE_ENTITY, "error.code")
        }
        CoreError::Forbidden {
            code: "dsr_token_invalid",
            ..
        } => (StatusCode::UNPROCESSABLE_ENTITY, "error.code"),
        CoreError::Conflict("subject_locked") => (StatusCode::LOCKED, "error.locked"),
        CoreError::Invalid {
            code: "guardian_for_adult",
            ..
        } => (StatusCode::UNPROCESSABLE_ENTITY, "error.guardian_adult"),
        CoreError::Forbidden {
            code: "guardian_session",
            ..
        } => (StatusCode::FORBIDDEN, "error.guardian_session"),
        CoreError::Forbidden {
            code: "guardian_consent_required",
            ..
        } => (StatusCode::FORBIDDEN, "error.guardian_required"),
        CoreError::Forbidden { .. } => (StatusCode::FORBIDDEN, "error.forbidden"),
        CoreError::NotFound(_) => (StatusCode::NOT_FOUND, "error.notfound"),
        CoreError::Denied(_) => (StatusCode::FORBIDDEN, "error.denied"),
        CoreError::Invalid { .. } | CoreError::Conflict(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "error.input")
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "error.unavailable"),
    }
}

/// An error page before the context exists.
fn error_page(tr: &Tr, e: &CoreError) -> Response {
    let (status, message) = classify(e);
    let p = Page {
        tr: *tr,
        title_key: "error.title",
        csrf: String::new(),
        signed_in: false,
        guardian: false,
        banner: false,
        back: "/".into(),
        policy_version: String::new(),
        notice: None,
    };
    (
        status,
        render(&ErrorPage {
            p,
            message,
            again: "/",
        }),
    )
        .into_response()
}

pub(crate) fn render<T: Template>(t: &T) -> axum::response::Html<String> {
    // A template that fails to render is a bug; the page says so without detail.
    axum::response::Html(t.render().unwrap_or_else(|_| {
        tracing::error!("a privacy-center template failed to render");
        "<!DOCTYPE html><html lang=\"en\"><title>Error</title><main><h1>Error</h1></main></html>"
            .into()
    }))
}

/// The parts of every page.
pub(crate) struct Page {
    pub(crate) tr: Tr,
    pub(crate) title_key: &'static str,
    pub(crate) csrf: String,
    pub(crate) signed_in: bool,
    /// A minor's guardian is signed in (policy §IX): the navigation offers the consents only.
    pub(crate) guardian: bool,
    pub(crate) banner: bool,
    pub(crate) back: String,
    pub(crate) policy_version: String,
    pub(crate) notice: Option<&'static str>,
}

impl Page {
    /// The string of `key`.
    pub(crate) fn t<'a>(&self, key: &'a str) -> &'a str {
        self.tr.t(key)
    }

    /// The string of `prefix.key` (a kind, state, basis, …); the key itself when missing.
    pub(crate) fn tk(&self, prefix: &str, key: &str) -> String {
        let k = format!("{prefix}.{key}");
        let s = self.tr.t(&k);
        if s == k {
            key.to_string()
        } else {
            s.to_string()
        }
    }

    /// The description `prefix.key.desc`.
    pub(crate) fn tkd(&self, prefix: &str, key: &str) -> String {
        self.tk(prefix, &format!("{key}.desc"))
    }

    /// A time (UTC, to the minute) from unix seconds: `2026-12-04 19:05 UTC`.
    pub(crate) fn date(&self, at: impl Secs) -> String {
        human_time(&Vault::center_time(at.secs()))
    }

    /// An RFC 3339 time of the API (`2026-12-04T19:05:31Z`) as [`Page::date`] shows it.
    pub(crate) fn when(&self, rfc3339: &str) -> String {
        human_time(rfc3339)
    }
}

/// `2026-12-04T19:05:31Z` → `2026-12-04 19:05 UTC`; anything else unchanged.
fn human_time(rfc3339: &str) -> String {
    let b = rfc3339.as_bytes();
    if b.len() >= 20 && b[10] == b'T' && rfc3339.ends_with('Z') && rfc3339.is_ascii() {
        format!("{} {} UTC", &rfc3339[..10], &rfc3339[11..16])
    } else {
        rfc3339.to_string()
    }
}

/// Unix seconds, however many references deep a template holds them.
pub(crate) trait Secs {
    fn secs(&self) -> i64;
}
impl Secs for i64 {
    fn secs(&self) -> i64 {
        *self
    }
}
impl<T: Secs + ?Sized> Secs for &T {
    fn secs(&self) -> i64 {
        (**self).secs()
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    p: Page,
    message: &'static str,
    again: &'static str,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    p: Page,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    p: Page,
    code_step: bool,
    /// The guardian's sign-in form (policy §IX).
    guardian: bool,
}

struct CookieRow {
    key: &'static str,
    on: bool,
    fixed: bool,
}

#[derive(Template)]
#[template(path = "cookies.html")]
struct CookiesPage {
    p: Page,
    choice: Option<CookieChoice>,
    cats: Vec<CookieRow>,
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    p: Page,
    cats: Vec<CenterCategory>,
    reconsent: bool,
}

#[derive(Template)]
#[template(path = "consents.html")]
struct ConsentsPage {
    p: Page,
    guardian: bool,
    consents: Vec<CenterConsent>,
    history: Vec<ConsentRow>,
    reconsent: bool,
}

#[derive(Template)]
#[template(path = "recipients.html")]
struct RecipientsPage {
    p: Page,
    rows: Vec<DisclosureRow>,
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    p: Page,
    rows: Vec<AccessEntry>,
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    p: Page,
    rows: Vec<DsrView>,
    kinds: Vec<&'static str>,
    erased: bool,
}

struct PolicyPurpose {
    name: String,
    basis: &'static str,
    separate: bool,
    clause: String,
    categories: String,
}

struct PolicyCategory {
    name: String,
    sensitive: bool,
    clause: String,
    keep_for_days: Option<u32>,
}

struct PolicyRecipient {
    name: String,
    region: String,
    entrusted: bool,
    clause: String,
}

struct PolicyChangeView {
    summary: String,
    material: bool,
    scope: String,
}

/// The changes between two versions the visitor picked (`/policy?from=&to=`).
struct PolicyDiffView {
    from: String,
    to: String,
    /// `(version, change)`, oldest first.
    changes: Vec<(String, PolicyChangeView)>,
    /// The pair was not valid (unknown version, or `from` is not older).
    invalid: bool,
}

struct PolicyVersionView {
    version: String,
    published: String,
    changes: Vec<PolicyChangeView>,
    has_text: bool,
}

#[derive(Template)]
#[template(path = "policy.html")]
struct PolicyPage {
    p: Page,
    versions: Vec<PolicyVersionView>,
    diff: Option<PolicyDiffView>,
    text: Option<String>,
    title: String,
    region: String,
    purposes: Vec<PolicyPurpose>,
    categories: Vec<PolicyCategory>,
    recipients: Vec<PolicyRecipient>,
}

struct AnnouncementRow {
    title: String,
    body: String,
    published: String,
}

#[derive(Template)]
#[template(path = "announcements.html")]
struct AnnouncementsPage {
    p: Page,
    rows: Vec<AnnouncementRow>,
}

/// Every form's hidden token.
#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

impl CsrfOnly {
    /// The submitted token.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// The notice to show after a redirect (`?done=`): fixed keys only.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct Done {
    #[serde(default)]
    done: Option<String>,
}

pub(crate) fn notice_of(d: &Done) -> Option<&'static str> {
    match d.done.as_deref() {
        Some("consent") => Some("consents.done"),
        Some("request") => Some("requests.filed"),
        Some("cookies") => Some("cookies.saved"),
        Some("signout") => Some("signin.signed_out"),
        Some("dsr") => Some("console.done"),
        _ => None,
    }
}

macro_rules! ctx {
    ($vault:expr, $headers:expr) => {
        match Ctx::load($vault, &$headers).await {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
}

pub(crate) use ctx as ctx_or_return;

/// The signed-in subject, or a redirect to sign-in; a session whose subject was erased since
/// goes to its requests (the receipt is all it may still see); a guardian's session goes to
/// the consents (all it may see, policy §IX).
macro_rules! session {
    ($ctx:expr) => {
        match $ctx.session.clone() {
            Some(s) if s.guardian => {
                return $ctx.with_cookies(Redirect::to("/me/consents").into_response())
            }
            Some(s) if !s.erased => s,
            Some(_) => return $ctx.with_cookies(Redirect::to("/me/requests").into_response()),
            None => return $ctx.with_cookies(Redirect::to("/signin").into_response()),
        }
    };
}

/// As `session!`, also for a session whose subject was erased.
macro_rules! session_any {
    ($ctx:expr) => {
        match $ctx.session.clone() {
            Some(s) if s.guardian => {
                return $ctx.with_cookies(Redirect::to("/me/consents").into_response())
            }
            Some(s) => s,
            None => return $ctx.with_cookies(Redirect::to("/signin").into_response()),
        }
    };
}

/// As `session!`, also for a minor's guardian: the consents pages.
macro_rules! session_or_guardian {
    ($ctx:expr) => {
        match $ctx.session.clone() {
            Some(s) if s.guardian && !s.erased => s,
            _ => session!($ctx),
        }
    };
}

/// `GET /`.
pub(crate) async fn home(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(d): Query<Done>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let mut p = ctx.page("home.title", "/");
    p.notice = notice_of(&d);
    ctx.ok(render(&HomePage { p }).0)
}

/// `GET /static/center.css`.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../static/center.css"),
    )
        .into_response()
}

/// `GET /.well-known/gpc.json` (Global Privacy Control, §3.5 of the GPC specification): this
/// site honours the signal.
pub(crate) async fn gpc_json() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        r#"{"gpc":true,"lastUpdate":"2026-12-04"}"#,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct LangQuery {
    to: String,
    #[serde(default)]
    back: Option<String>,
}

/// A local path to go back to: starts with one `/`, no scheme, host or control characters.
fn local_path(p: Option<&str>) -> &str {
    match p {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && p.len() <= 200
                && p.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            p
        }
        _ => "/",
    }
}

/// `GET /lang?to=en&back=/me`: the language switch (sets `pv_lang`, goes back).
pub(crate) async fn switch_lang(Query(q): Query<LangQuery>) -> Response {
    let Some(lang) = Lang::parse(&q.to) else {
        return Redirect::to("/").into_response();
    };
    let mut res = Redirect::to(local_path(q.back.as_deref())).into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(LANG_COOKIE, lang.tag(), 365 * 86_400)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct DiffQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

fn change_view(c: &pivault_domain::policy::PolicyChange) -> PolicyChangeView {
    PolicyChangeView {
        summary: c.summary.clone(),
        material: c.material,
        scope: c
            .purposes
            .iter()
            .chain(c.categories.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// `GET /policy[?from=V&to=W]`: the policy in force, as enforced, its version history, and
/// the changes between two versions (public; policy §X: "publish the latest version").
pub(crate) async fn policy(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(q): Query<DiffQuery>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let pol = ctx.vault.policy();
    let diff = match (q.from, q.to) {
        (Some(from), Some(to)) if from.len() <= 32 && to.len() <= 32 => {
            let (changes, invalid) = match pol.diff(&from, &to) {
                Ok(cs) => (
                    cs.into_iter()
                        .map(|(v, c)| (v.version.clone(), change_view(c)))
                        .collect(),
                    false,
                ),
                Err(_) => (Vec::new(), true),
            };
            Some(PolicyDiffView {
                from,
                to,
                changes,
                invalid,
            })
        }
        (Some(_), _) | (_, Some(_)) => Some(PolicyDiffView {
            from: String::new(),
            to: String::new(),
            changes: Vec::new(),
            invalid: true,
        }),
        _ => None,
    };
    let versions = pol
        .versions()
        .iter()
        .rev()
        .map(|v| PolicyVersionView {
            version: v.version.clone(),
            published: v.published.to_string(),
            changes: v.changes.iter().map(change_view).collect(),
            has_text: v.text_path.is_some(),
        })
        .collect();
    let text = pol
        .policy_version(pol.version())
        .and_then(|v| v.text.clone());
    let zh = ctx.lang == Lang::ZhCn;
    let page = PolicyPage {
        p: ctx.page("policy.title", "/policy"),
        versions,
        diff,
        text,
        title: localized(pol.title(), pol.title_zh(), zh).to_string(),
        region: pol.storage_region().to_string(),
        purposes: pol
            .purposes()
            .iter()
            .map(|u| PolicyPurpose {
                name: localized(&u.name, u.name_zh.as_deref(), zh).to_string(),
                basis: u.legal_basis.as_str(),
                separate: u.separate_consent,
                clause: u.clause.clone(),
                categories: u.categories.join(", "),
            })
            .collect(),
        categories: pol
            .categories()
            .iter()
            .map(|c| PolicyCategory {
                name: localized(&c.name, c.name_zh.as_deref(), zh).to_string(),
                sensitive: c.is_sensitive(),
                clause: c.clause.clone(),
                keep_for_days: c.retention.as_ref().map(|r| r.keep_for.days()),
            })
            .collect(),
        recipients: pol
            .recipients()
            .iter()
            .map(|r| PolicyRecipient {
                name: localized(&r.name, r.name_zh.as_deref(), zh).to_string(),
                region: r.region.clone(),
                entrusted: r.entrusted,
                clause: r.clause.clone(),
            })
            .collect(),
    };
    ctx.ok(render(&page).0)
}

/// `GET /announcements` (public; policy §8.3, §8.6).
pub(crate) async fn announcements(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = ctx!(vault, headers);
    let rows = match ctx.vault.announcements().await {
        Ok(r) => r,
        Err(e) => return ctx.fail(&e, "/"),
    };
    let rows = rows
        .into_iter()
        .map(|a| {
            let t = match ctx.lang {
                Lang::En => a.en,
                Lang::ZhCn => a.zh_cn,
            };
            AnnouncementRow {
                title: t.title,
                body: t.body,
                published: human_time(&Vault::center_time(a.published_at)),
            }
        })
        .collect();
    ctx.ok(render(&AnnouncementsPage {
        p: ctx.page("ann.title", "/announcements"),
        rows,
    })
    .0)
}

/// `GET /cookies`: the settings page.
pub(crate) async fn cookies(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(d): Query<Done>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let mut p = ctx.page("cookies.title", "/cookies");
    p.notice = notice_of(&d);
    let cats = COOKIE_CATEGORIES
        .iter()
        .map(|c| CookieRow {
            key: c,
            on: *c == "necessary"
                || ctx
                    .cookie
                    .as_ref()
                    .is_some_and(|x| x.categories.iter().any(|(k, g)| k == c && *g)),
            fixed: *c == "necessary",
        })
        .collect();
    ctx.ok(render(&CookiesPage {
        p,
        choice: ctx.cookie.clone(),
        cats,
    })
    .0)
}

#[derive(Debug, Deserialize)]
pub(crate) struct CookieForm {
    #[serde(default)]
    csrf: String,
    method: String,
    #[serde(default)]
    back: Option<String>,
    #[serde(default)]
    preferences: Option<String>,
    #[serde(default)]
    analytics: Option<String>,
    #[serde(default)]
    third_party: Option<String>,
}

/// `POST /cookies`: a banner button or the settings form.
pub(crate) async fn cookies_post(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<CookieForm>,
) -> Response {
    let ctx = ctx!(vault, headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    let method = match f.method.as_str() {
        "accept_all" => CookieMethod::AcceptAll,
        "reject_all" => CookieMethod::RejectAll,
        "save" => CookieMethod::Save,
        "dismiss" => CookieMethod::Dismiss,
        _ => {
            return ctx.fail(
                &CoreError::invalid("method", "invalid_body", "unknown method"),
                "/cookies",
            )
        }
    };
    let mut granted = Vec::new();
    for (name, v) in [
        ("preferences", &f.preferences),
        ("analytics", &f.analytics),
        ("third_party", &f.third_party),
    ] {
        if v.as_deref() == Some("on") {
            granted.push(name);
        }
    }
    let subject = ctx
        .session
        .as_ref()
        .filter(|s| !s.guardian)
        .map(|s| s.subject_id.as_str());
    if let Err(e) = ctx
        .vault
        .cookie_record(&ctx.visitor, subject, method, &granted)
        .await
    {
        return ctx.fail(&e, "/cookies");
    }
    let back = local_path(f.back.as_deref());
    let to = if back == "/cookies" {
        "/cookies?done=cookies"
    } else {
        back
    };
    ctx.with_cookies(Redirect::to(to).into_response())
}

/// `GET /signin`.
pub(crate) async fn signin(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = ctx!(vault, headers);
    if ctx.session.is_some() {
        return ctx.with_cookies(Redirect::to("/me").into_response());
    }
    ctx.ok(render(&SigninPage {
        p: ctx.page("signin.title", "/signin"),
        code_step: false,
        guardian: false,
    })
    .0)
}

/// `GET /signin/guardian`: a parent's or guardian's sign-in, for a child under 14 (policy
/// §IX; PIPL Art. 31).
pub(crate) async fn guardian_signin(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
) -> Response {
    let ctx = ctx!(vault, headers);
    if ctx.session.is_some() {
        return ctx.with_cookies(Redirect::to("/me/consents").into_response());
    }
    ctx.ok(render(&SigninPage {
        p: ctx.page("signin.guardian.title", "/signin/guardian"),
        code_step: false,
        guardian: true,
    })
    .0)
}

#[derive(Debug, Deserialize)]
pub(crate) struct SigninForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    mobile: String,
}

/// `POST /signin`: files the `sign_in` request; the code goes out through the outbox. The
/// pending request id and token are kept in `pv_signin` for the code step.
pub(crate) async fn signin_post(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    Form(f): Form<SigninForm>,
) -> Response {
    signin_submit(vault, &headers, &ext, &f, false).await
}

/// `POST /signin/guardian`: files a guardian's `sign_in` request by the guardian's mobile;
/// then the same code step as a subject's.
pub(crate) async fn guardian_signin_post(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
    Form(f): Form<SigninForm>,
) -> Response {
    signin_submit(vault, &headers, &ext, &f, true).await
}

/// Both sign-in forms: CSRF, the filing (the peer address, set by the server's accept loop,
/// is absent in-process), then the code step.
async fn signin_submit(
    vault: Arc<Vault>,
    headers: &HeaderMap,
    ext: &axum::http::Extensions,
    f: &SigninForm,
    guardian: bool,
) -> Response {
    let peer = ext
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let ctx = ctx!(vault, *headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    let created = if guardian {
        ctx.vault
            .center_guardian_signin_start(f.mobile.trim(), peer)
            .await
    } else {
        let email = Some(f.email.trim()).filter(|s| !s.is_empty());
        let mobile = Some(f.mobile.trim()).filter(|s| !s.is_empty());
        ctx.vault.center_signin_start(email, mobile, peer).await
    };
    match created {
        Ok(c) => code_step(&ctx, &c, guardian),
        Err(e) => ctx.fail(
            &e,
            if guardian {
                "/signin/guardian"
            } else {
                "/signin"
            },
        ),
    }
}

/// The code form, with the pending request id and token kept in `pv_signin`.
fn code_step(ctx: &Ctx, created: &pivault_core::dsr::CreatedDsr, guardian: bool) -> Response {
    let mut res = ctx.ok(render(&SigninPage {
        p: ctx.page(
            "signin.code.title",
            if guardian {
                "/signin/guardian"
            } else {
                "/signin"
            },
        ),
        code_step: true,
        guardian,
    })
    .0);
    if let Ok(v) = HeaderValue::from_str(&set_cookie(
        SIGNIN_COOKIE,
        &format!("{}.{}", created.id, created.token),
        600,
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// `POST /signin/verify`: checks the code, opens the session.
pub(crate) async fn signin_verify(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<CodeForm>,
) -> Response {
    let ctx = ctx!(vault, headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    let Some((id, token)) = cookie_value(&headers, SIGNIN_COOKIE).and_then(|v| v.split_once('.'))
    else {
        return ctx.with_cookies(Redirect::to("/signin").into_response());
    };
    match ctx
        .vault
        .center_signin_verify(id, token, f.code.trim(), Some(&ctx.visitor))
        .await
    {
        Ok((session, _)) => {
            let mut res = ctx.with_cookies(Redirect::to("/me").into_response());
            for c in [
                set_cookie(SESSION_COOKIE, &session, SESSION_SECONDS),
                set_cookie(SIGNIN_COOKIE, "", 0),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    res.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            res
        }
        Err(e) => ctx.fail(&e, "/signin"),
    }
}

/// `POST /signout`.
pub(crate) async fn signout(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let ctx = ctx!(vault, headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    if let Some(t) = &ctx.session_token {
        if let Err(e) = ctx.vault.center_signout(t).await {
            return ctx.fail(&e, "/");
        }
    }
    let mut res = ctx.with_cookies(Redirect::to("/?done=signout").into_response());
    if let Ok(v) = HeaderValue::from_str(&set_cookie(SESSION_COOKIE, "", 0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `GET /me`: what is held, by category.
pub(crate) async fn me(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session!(ctx);
    let outdated = match ctx.vault.outdated_consents(&s.subject_id).await {
        Ok(o) => o,
        Err(e) => return ctx.fail(&e, "/me"),
    };
    match ctx.vault.center_overview(&s, ctx.lang.notice()).await {
        Ok(cats) => ctx.ok(render(&MePage {
            p: ctx.page("me.title", "/me"),
            cats,
            reconsent: !outdated.is_empty(),
        })
        .0),
        Err(e) => ctx.fail(&e, "/me"),
    }
}

/// `GET /me/consents`.
pub(crate) async fn consents(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(d): Query<Done>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session_or_guardian!(ctx);
    match ctx.vault.center_consents(&s, ctx.lang.notice()).await {
        Ok((consents, mut history)) => {
            history.sort_by_key(|r| std::cmp::Reverse((r.at, r.seq)));
            let mut p = ctx.page("consents.title", "/me/consents");
            p.notice = notice_of(&d);
            let reconsent = consents.iter().any(|c| c.outdated.is_some());
            ctx.ok(render(&ConsentsPage {
                p,
                guardian: s.guardian,
                consents,
                history,
                reconsent,
            })
            .0)
        }
        Err(e) => ctx.fail(&e, "/me"),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConsentForm {
    #[serde(default)]
    csrf: String,
    purpose: String,
    action: String,
}

/// `POST /me/consents`: grant or withdraw one consent.
pub(crate) async fn consents_post(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<ConsentForm>,
) -> Response {
    let ctx = ctx!(vault, headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    let s = session_or_guardian!(ctx);
    let grant = match f.action.as_str() {
        "grant" => true,
        "withdraw" => false,
        _ => {
            return ctx.fail(
                &CoreError::invalid("action", "unknown_action", "grant or withdraw"),
                "/me/consents",
            )
        }
    };
    let rid = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match ctx
        .vault
        .center_set_consent(&s, &f.purpose, grant, rid.as_deref())
        .await
    {
        Ok(_) => ctx.with_cookies(Redirect::to("/me/consents?done=consent").into_response()),
        Err(e) => ctx.fail(&e, "/me/consents"),
    }
}

/// `GET /me/recipients`: the disclosure ledger.
pub(crate) async fn recipients(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session!(ctx);
    match ctx.vault.center_disclosures(&s).await {
        Ok(rows) => ctx.ok(render(&RecipientsPage {
            p: ctx.page("recipients.title", "/me/recipients"),
            rows,
        })
        .0),
        Err(e) => ctx.fail(&e, "/me"),
    }
}

/// `GET /me/access`: who accessed the data, from the audit log.
pub(crate) async fn access(State(vault): State<Arc<Vault>>, headers: HeaderMap) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session!(ctx);
    match ctx.vault.center_access_history(&s, 200).await {
        Ok(rows) => ctx.ok(render(&AccessPage {
            p: ctx.page("access.title", "/me/access"),
            rows,
        })
        .0),
        Err(e) => ctx.fail(&e, "/me"),
    }
}

/// `GET /me/access/{seq}/proof`: the inclusion proof of one access-history entry, as the JSON
/// bundle `pivault-verify inclusion FILE --key KEY` checks (issue 15), downloaded as a file.
pub(crate) async fn access_proof(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    axum::extract::Path(seq): axum::extract::Path<i64>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session!(ctx);
    match ctx.vault.center_access_proof(&s, seq).await {
        Ok(bundle) => {
            let body = serde_json::to_string_pretty(&bundle).unwrap_or_default();
            (
                [
                    (
                        axum::http::header::CONTENT_TYPE,
                        "application/json".to_string(),
                    ),
                    (
                        axum::http::header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"pivault-audit-{seq}.json\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => ctx.fail(&e, "/me/access"),
    }
}

/// The kinds the request form offers (corrections need the field-by-field form of the API).
const FILE_KINDS: [&str; 6] = [
    "access",
    "copy",
    "explanation",
    "withdrawal",
    "deletion",
    "cancellation",
];

/// `GET /me/requests`.
pub(crate) async fn requests(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Query(d): Query<Done>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session_any!(ctx);
    match ctx.vault.center_requests(&s).await {
        Ok(rows) => {
            let mut p = ctx.page("requests.title", "/me/requests");
            p.notice = notice_of(&d);
            ctx.ok(render(&RequestsPage {
                p,
                rows,
                kinds: FILE_KINDS.to_vec(),
                erased: s.erased,
            })
            .0)
        }
        Err(e) => ctx.fail(&e, "/me"),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct RequestForm {
    #[serde(default)]
    csrf: String,
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// `POST /me/requests`: files a request, an inquiry or a misuse report.
pub(crate) async fn requests_post(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Form(f): Form<RequestForm>,
) -> Response {
    let ctx = ctx!(vault, headers);
    if let Some(r) = ctx.csrf_refusal(&f.csrf) {
        return r;
    }
    let s = session!(ctx);
    let kind: DsrKind = match f.kind.parse() {
        Ok(k) => k,
        Err(_) => {
            return ctx.fail(
                &CoreError::invalid("kind", "dsr_kind_unknown", "unknown kind"),
                "/me/requests",
            )
        }
    };
    let mut filing = CenterFiling {
        text: f.text,
        ..CenterFiling::default()
    };
    if kind == DsrKind::Withdrawal {
        // Withdraw every consent in force (single consents: the consents page).
        match ctx.vault.center_consents(&s, ctx.lang.notice()).await {
            Ok((c, _)) => {
                filing.purposes = c
                    .into_iter()
                    .filter(|c| c.granted)
                    .map(|c| c.purpose)
                    .collect();
            }
            Err(e) => return ctx.fail(&e, "/me/requests"),
        }
    }
    match ctx.vault.center_file(&s, kind, &filing).await {
        Ok(_) => ctx.with_cookies(Redirect::to("/me/requests?done=request").into_response()),
        Err(e) => ctx.fail(&e, "/me/requests"),
    }
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ResultQuery {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /me/requests/{id}/result`: the package, explanation or signed receipt, as a download.
pub(crate) async fn request_result(
    State(vault): State<Arc<Vault>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ResultQuery>,
) -> Response {
    let ctx = ctx!(vault, headers);
    let s = session_any!(ctx);
    let format = match q.format.as_deref() {
        None | Some("json") => ResultFormat::Json,
        Some("csv") => ResultFormat::Csv,
        Some(_) => {
            return ctx.fail(
                &CoreError::invalid("format", "invalid_query", "json or csv"),
                "/me/requests",
            )
        }
    };
    if uuid_like(&id).is_none() {
        return ctx.fail(&CoreError::NotFound("dsr"), "/me/requests");
    }
    match ctx.vault.center_result(&s, &id, format).await {
        Ok((bytes, content_type)) => {
            let ext = if content_type.starts_with("text/csv") {
                "csv"
            } else {
                "json"
            };
            let disposition = format!("attachment; filename=\"pivault-{id}.{ext}\"");
            let mut res = ctx.with_cookies((StatusCode::OK, bytes).into_response());
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(content_type) {
                h.insert(header::CONTENT_TYPE, v);
            }
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            res
        }
        Err(e) => ctx.fail(&e, "/me/requests"),
    }
}

/// A request id is a UUID (36 characters of hex and dashes).
fn uuid_like(s: &str) -> Option<&str> {
    (s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::human_time;

    #[test]
    fn api_times_show_to_the_minute_in_utc() {
        assert_eq!(human_time("2026-12-04T19:05:31Z"), "2026-12-04 19:05 UTC");
        assert_eq!(
            human_time("2026-12-04T19:05:31.250Z"),
            "2026-12-04 19:05 UTC"
        );
        // Not an API time: shown as it is.
        assert_eq!(human_time("-"), "-");
        assert_eq!(human_time("2026-12-04"), "2026-12-04");
        assert_eq!(
            human_time("２０２６-12-04T19:05:31Z"),
            "２０２６-12-04T19:05:31Z"
        );
    }
}
