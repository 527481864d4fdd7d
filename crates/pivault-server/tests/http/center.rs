//! Issue 14 over HTTP: the privacy center's pages on subjects of the imported data set —
//! sign-in by a code caught by the SMTP sink, the data overview without values, consents
//! withdrawn from the page exactly as through the API, the access history from the audit log,
//! a deletion filed from the page and its signed receipt, the cookie ledger with server-side
//! GPC and dismissal, CSRF, security headers and cookie attributes, and a guardian acting for
//! a minor (policy §IX).
use pivault_testkit::app::{latest_consent, users};
use pivault_testkit::TestApp;
use serde_json::{json, Value};
use std::collections::HashMap;

on_both_backends!(
    a_subject_signs_in_sees_their_data_without_values_and_who_read_it,
    a_consent_withdrawn_on_the_page_flips_the_decision_like_the_api,
    a_deletion_filed_on_the_page_is_queued_and_its_receipt_downloads,
    the_cookie_ledger_honours_gpc_only_without_a_choice_and_dismiss_never_overrides,
    forms_need_their_csrf_token_and_every_page_sends_the_security_headers,
    the_console_works_the_queue_under_the_keys_own_role_and_escapes_what_it_shows,
    a_guardian_signs_in_with_their_own_code_and_consents_for_the_minor_only,
);

/// A cookie-keeping client that does not follow redirects.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
    gpc: bool,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            gpc: false,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
                assert!(v.contains(attr), "{v} lacks {attr}");
            }
            let (kv, _) = v.split_once(';').unwrap();
            let (k, val) = kv.split_once('=').unwrap();
            if val.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), val.to_string());
            }
        }
    }

    async fn get(&mut self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let mut rq = self
            .http
            .get(format!("{}{path}", self.app.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", "en");
        if self.gpc {
            rq = rq.header("sec-gpc", "1");
        }
        let r = rq.send().await.unwrap();
        self.keep(&r);
        let st = r.status().as_u16();
        let h = r.headers().clone();
        (st, r.text().await.unwrap(), h)
    }

    /// Posts a form; returns status, `Location` (if any) and body.
    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.app.base))
            .header("cookie", self.cookie_header())
            .header("accept-language", "en")
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&r);
        let st = r.status().as_u16();
        let loc = r
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (st, loc, r.text().await.unwrap())
    }

    /// The CSRF token of the page at `path`.
    async fn csrf(&mut self, path: &str) -> String {
        let (st, html, _) = self.get(path).await;
        assert_eq!(st, 200, "{html}");
        csrf_of(&html)
    }

    /// Signs in as the holder of `email`; returns the subject id.
    async fn sign_in(&mut self, email: &str) -> String {
        let csrf = self.csrf("/signin").await;
        let (st, _, html) = self
            .post("/signin", &[("csrf", &csrf), ("email", email)])
            .await;
        assert_eq!(st, 200, "{html}");
        assert!(html.contains("name=\"code\""), "{html}");
        assert!(!html.contains(email), "the page echoes the email");
        let pending = self.cookies["pv_signin"].clone();
        let (id, _) = pending.split_once('.').unwrap();
        let (code, _) = crate::dsr::mailed_code(self.app, id).await;
        let csrf = csrf_of(&html);
        let (st, loc, body) = self
            .post("/signin/verify", &[("csrf", &csrf), ("code", &code)])
            .await;
        assert_eq!((st, loc.as_str()), (303, "/me"), "{body}");
        assert!(self.cookies.contains_key("pv_session"));
        assert!(!self.cookies.contains_key("pv_signin"));
        self.app
            .store
            .dsr(id)
            .await
            .unwrap()
            .unwrap()
            .subject_id
            .unwrap()
    }
}

/// The first column of `sql`'s rows, as text (an independent look at the tables).
async fn col(store: &pivault_store::Store, sql: &str) -> Vec<String> {
    pivault_store::testing::column(store, sql, &[])
        .await
        .unwrap()
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

fn adult_with(purpose_granted: Option<&str>) -> HashMap<String, String> {
    users()
        .into_iter()
        .find(|u| {
            !u["email"].is_empty()
                && u["guardian_name"].is_empty()
                && u["birth_date"].as_str() < "2000-01-01"
                && purpose_granted
                    .is_none_or(|p| latest_consent(&u["account_id"], p).as_deref() == Some("grant"))
        })
        .unwrap()
}

async fn a_subject_signs_in_sees_their_data_without_values_and_who_read_it(app: TestApp) {
    let u = adult_with(None);
    let mut b = Browser::new(&app);
    let subject = b.sign_in(&u["email"]).await;
    assert_eq!(subject, app.subject_of(&u["account_id"]).await);

    // An application reads the subject's contact data for the service.
    let (st, v) = app.read(&subject, "service", "").await;
    assert_eq!(st, 200, "{v}");

    let (st, html, _) = b.get("/me").await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("<table id=\"categories\""), "{html}");
    assert!(html.contains("user.contact.email"), "{html}");
    // Field names and counts, never a value.
    for k in [
        "name",
        "mobile",
        "email",
        "id_card_number",
        "address",
        "device_id",
    ] {
        if !u[k].is_empty() {
            assert!(!html.contains(&u[k]), "the overview shows the {k} value");
        }
    }
    let (st, html, _) = b.get("/me/access").await;
    assert_eq!(st, 200);
    assert!(html.contains("test-app"), "{html}");
    assert!(html.contains("fields.read"), "{html}");
    assert!(html.contains(">service<"), "{html}");

    // Each entry downloads with its inclusion proof (issue 15), which checks offline against
    // the published key; another subject's entry is not found.
    let seq: i64 = col(
        &app.store,
        &format!(
            "SELECT CAST(MAX(seq) AS TEXT) FROM audit_log WHERE subject_id = '{subject}' \
             AND action = 'fields.read'"
        ),
    )
    .await[0]
        .parse()
        .unwrap();
    assert!(html.contains(&format!("/me/access/{seq}/proof")), "{html}");
    let (st, json, h) = b.get(&format!("/me/access/{seq}/proof")).await;
    assert_eq!(st, 200, "{json}");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let bundle = pivault_verify::InclusionBundle::from_json(&json).unwrap();
    let key: serde_json::Value = reqwest::get(format!("{}/v1/audit/key", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verifier = pivault_verify::NoteVerifier::parse(key["key"].as_str().unwrap()).unwrap();
    let ok = bundle.verify(&verifier).unwrap();
    let entry = ok.entry.unwrap();
    assert_eq!((entry.seq, entry.action.as_str()), (seq, "fields.read"));
    assert_eq!(entry.subject_id.as_deref(), Some(subject.as_str()));
    let other: i64 = col(
        &app.store,
        &format!(
            "SELECT CAST(MIN(seq) AS TEXT) FROM audit_log WHERE subject_id <> '{subject}' \
             AND subject_id IS NOT NULL"
        ),
    )
    .await[0]
        .parse()
        .unwrap();
    let (st, _, _) = b.get(&format!("/me/access/{other}/proof")).await;
    assert_eq!(st, 404);

    // Sign-in and the page visits are audited; the sign-in is not in the office's queue.
    let audit = col(
        &app.store,
        &format!(
            "SELECT action FROM audit_log WHERE subject_id = '{subject}' AND action LIKE 'center.%'"
        ),
    )
    .await;
    assert_eq!(audit, vec!["center.signin".to_string()]);

    // A used code opens no second session; sign-out ends this one.
    let csrf = b.csrf("/me").await;
    let (st, loc, _) = b.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!((st, loc.as_str()), (303, "/?done=signout"));
    let (st, _, h) = b.get("/me").await;
    assert_eq!(st, 303);
    assert_eq!(h["location"], "/signin");
}

async fn a_consent_withdrawn_on_the_page_flips_the_decision_like_the_api(app: TestApp) {
    let u = adult_with(Some("marketing"));
    let mut b = Browser::new(&app);
    let subject = b.sign_in(&u["email"]).await;
    let decide = |s: String| {
        let app = &app;
        async move {
            let r = app
                .post(
                    "/v1/decisions",
                    &app.app_key,
                    json!({"subject_id": s, "purpose": "marketing", "action": "use", "categories": ["user.name"]}),
                )
                .await;
            r.json::<Value>().await.unwrap()
        }
    };
    let before = decide(subject.clone()).await;
    assert_eq!(before["allowed"], true, "{before}");

    let (st, html, _) = b.get("/me/consents").await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"withdraw-marketing\""), "{html}");
    let csrf = csrf_of(&html);
    let (st, loc, _) = b
        .post(
            "/me/consents",
            &[
                ("csrf", &csrf),
                ("purpose", "marketing"),
                ("action", "withdraw"),
            ],
        )
        .await;
    assert_eq!((st, loc.as_str()), (303, "/me/consents?done=consent"));
    let after = decide(subject.clone()).await;
    assert_eq!(after["allowed"], false, "{after}");
    assert_eq!(after["reason"], "consent_withdrawn", "{after}");
    let (_, html, _) = b.get("/me/consents").await;
    assert!(html.contains("id=\"grant-marketing\""), "{html}");

    // The same ledger row and audit shape as an API withdrawal of another subject.
    let other = adult_with_other(&u["account_id"]).await;
    let other_s = app.subject_of(&other).await;
    let r = app
        .post(
            &format!("/v1/subjects/{other_s}/consents"),
            &app.app_key,
            json!({"purpose": "marketing", "action": "withdraw", "method": "web"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let shape = |s: &str| {
        format!(
            "SELECT c.action || '|' || c.given_by || '|' || c.method || '|' || c.policy_version || '|' || a.action || '|' || a.outcome || '|' || COALESCE(a.purpose, '') || '|' || COALESCE(a.detail, '') \
             FROM consent_events c JOIN audit_log a ON a.subject_id = c.subject_id AND a.action = 'consent.withdraw' \
             WHERE c.subject_id = '{s}' AND c.action = 'withdraw' AND c.purpose = 'marketing' AND c.method = 'web' ORDER BY c.seq DESC LIMIT 1"
        )
    };
    let page = col(&app.store, &shape(&subject)).await;
    let api = col(&app.store, &shape(&other_s)).await;
    assert_eq!(page.len(), 1);
    assert_eq!(page, api);
}

async fn adult_with_other(not: &str) -> String {
    users()
        .into_iter()
        .find(|u| {
            u["account_id"] != not
                && u["guardian_name"].is_empty()
                && u["birth_date"].as_str() < "2000-01-01"
                && latest_consent(&u["account_id"], "marketing").as_deref() == Some("grant")
        })
        .unwrap()["account_id"]
        .clone()
}

async fn a_deletion_filed_on_the_page_is_queued_and_its_receipt_downloads(app: TestApp) {
    let u = adult_with(None);
    let mut b = Browser::new(&app);
    let subject = b.sign_in(&u["email"]).await;
    let csrf = b.csrf("/me/requests").await;
    let (st, loc, _) = b
        .post("/me/requests", &[("csrf", &csrf), ("kind", "deletion")])
        .await;
    assert_eq!((st, loc.as_str()), (303, "/me/requests?done=request"));
    let (_, html, _) = b.get("/me/requests").await;
    assert!(html.contains("data-kind=\"deletion\""), "{html}");
    let list: Value = app
        .get(
            &format!("/v1/dsr?subject_id={subject}&kind=deletion"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let req = &list["requests"][0];
    assert_eq!(req["state"], "verified", "{list}");
    let id = req["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/v1/dsr/{id}/approve?run=true"),
            &app.admin_key,
            json!({}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "completed", "{v}");
    // Erased: the session shows nothing but the requests and the receipt.
    let (st, _, h) = b.get("/me").await;
    assert_eq!((st, h["location"].to_str().unwrap()), (303, "/me/requests"));
    let (st, _, h) = b.get("/me/consents").await;
    assert_eq!((st, h["location"].to_str().unwrap()), (303, "/me/requests"));
    let (st, html, _) = b.get("/me/requests").await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"erased-notice\""), "{html}");
    assert!(!html.contains("id=\"file-request\""), "{html}");
    assert!(
        html.contains(&format!(
            "href=\"/me/requests/{id}/result\" class=\"receipt\""
        )),
        "{html}"
    );
    let (st, page_receipt, h) = b.get(&format!("/me/requests/{id}/result")).await;
    assert_eq!(st, 200, "{page_receipt}");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    // Filing again is refused: the subject is gone.
    let csrf = csrf_of(&html);
    let (st, loc, _) = b
        .post("/me/requests", &[("csrf", &csrf), ("kind", "access")])
        .await;
    assert_eq!((st, loc.as_str()), (303, "/me/requests"));

    // Another subject downloads an access package from the page.
    let u2 = adult_with_other(&u["account_id"]).await;
    let u2 = users().into_iter().find(|x| x["account_id"] == u2).unwrap();
    let mut b2 = Browser::new(&app);
    b2.sign_in(&u2["email"]).await;
    let csrf = b2.csrf("/me/requests").await;
    b2.post("/me/requests", &[("csrf", &csrf), ("kind", "access")])
        .await;
    let s2 = app.subject_of(&u2["account_id"]).await;
    let list: Value = app
        .get(
            &format!("/v1/dsr?subject_id={s2}&kind=access"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let id2 = list["requests"][0]["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            &format!("/v1/dsr/{id2}/approve?run=true"),
            &app.admin_key,
            json!({}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "completed", "{v}");
    let (st, body, h) = b2.get(&format!("/me/requests/{id2}/result")).await;
    assert_eq!(st, 200, "{body}");
    assert!(h["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let pkg: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(pkg["format"], "pivault.access-package/1");
    assert_eq!(pkg["subject_id"], s2.as_str());
    // Someone else's request is not found.
    let (st, _, _) = b2.get(&format!("/me/requests/{id}/result")).await;
    assert_eq!(st, 404);
    // The deletion's signed receipt verifies under the published key.
    let r = app
        .get(&format!("/v1/dsr/{id}/result"), &app.admin_key)
        .await;
    assert_eq!(r.status(), 200);
    let receipt = r.text().await.unwrap();
    // A signed receipt has one form: asking for CSV is refused, not answered with JSON.
    let r = app
        .get(&format!("/v1/dsr/{id}/result?format=csv"), &app.admin_key)
        .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "format_unsupported");
    let key: Value = reqwest::get(format!("{}/v1/dsr/receipt-key", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    use base64::Engine as _;
    let pk: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(key["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(
        pivault_core::dsr::verify_receipt_json(&receipt, &pk),
        Ok(())
    );
    // The page's download is the same signed receipt.
    assert_eq!(page_receipt, receipt);
    assert!(!page_receipt.contains(&u["email"]));
}

async fn the_cookie_ledger_honours_gpc_only_without_a_choice_and_dismiss_never_overrides(
    app: TestApp,
) {
    // A first request with GPC and no earlier choice: refusal recorded server-side.
    let mut b = Browser::new(&app);
    b.gpc = true;
    let (st, html, _) = b.get("/").await;
    assert_eq!(st, 200);
    assert!(!html.contains("id=\"cookie-banner\""), "{html}");
    let (_, html, _) = b.get("/cookies").await;
    assert!(html.contains("Global Privacy Control signal"), "{html}");
    let visitor = b.cookies["pv_visitor"].clone();
    let rows = col(
        &app.store,
        &format!("SELECT category || '=' || granted || '/' || method FROM cookie_choices WHERE visitor_id = '{visitor}' ORDER BY seq"),
    )
    .await;
    assert_eq!(
        rows,
        [
            "necessary=1/gpc",
            "preferences=0/gpc",
            "analytics=0/gpc",
            "third_party=0/gpc"
        ]
    );
    // An explicit choice wins, and a later GPC request does not override it.
    let csrf = csrf_of(&html);
    let (st, _, _) = b
        .post(
            "/cookies",
            &[
                ("csrf", &csrf),
                ("method", "accept_all"),
                ("back", "/cookies"),
            ],
        )
        .await;
    assert_eq!(st, 303);
    let (_, html, _) = b.get("/cookies").await;
    assert!(html.contains("How it was made: Accept all"), "{html}");
    let n: Vec<String> = col(
        &app.store,
        &format!("SELECT method FROM cookie_choices WHERE visitor_id = '{visitor}'"),
    )
    .await;
    assert_eq!(n.len(), 8);

    // Without GPC the banner shows; dismissing records the default once, and never changes a
    // saved choice.
    let mut c = Browser::new(&app);
    let (_, html, _) = c.get("/").await;
    assert!(html.contains("id=\"cookie-banner\""), "{html}");
    let (_, html, _) = c.get("/").await;
    let csrf = csrf_of(&html);
    c.post(
        "/cookies",
        &[
            ("csrf", &csrf),
            ("method", "save"),
            ("analytics", "on"),
            ("back", "/"),
        ],
    )
    .await;
    let (_, html, _) = c.get("/").await;
    assert!(!html.contains("id=\"cookie-banner\""));
    c.post(
        "/cookies",
        &[("csrf", &csrf), ("method", "dismiss"), ("back", "/")],
    )
    .await;
    let (_, html, _) = c.get("/cookies").await;
    assert!(
        html.contains("How it was made: Saved in settings"),
        "{html}"
    );
    assert!(
        html.contains("id=\"cat-analytics\" name=\"analytics\" value=\"on\" checked"),
        "{html}"
    );
    let gpc: Value = reqwest::get(format!("{}/.well-known/gpc.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(gpc["gpc"], true);
}

async fn forms_need_their_csrf_token_and_every_page_sends_the_security_headers(app: TestApp) {
    let mut b = Browser::new(&app);
    for path in ["/", "/policy", "/announcements", "/cookies", "/signin"] {
        let (st, html, h) = b.get(path).await;
        assert_eq!(st, 200, "{path}");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'self'"));
        assert!(!html.contains("<script"), "{path} has a script");
        assert!(!html.contains("style=\""), "{path} has an inline style");
    }
    // Missing or foreign token: refused before anything happens.
    let (st, _, _) = b
        .post("/signin", &[("csrf", "0"), ("email", "a@example.com")])
        .await;
    assert_eq!(st, 403);
    let mut other = Browser::new(&app);
    let foreign = other.csrf("/signin").await;
    let (st, _, _) = b
        .post("/signin", &[("csrf", &foreign), ("email", "a@example.com")])
        .await;
    assert_eq!(st, 403);
    assert!(app.mail.messages().is_empty());
    // A form missing a field is refused before the handler: still an HTML page.
    let csrf = b.csrf("/cookies").await;
    let (st, _, body) = b.post("/cookies", &[("csrf", &csrf)]).await;
    assert_eq!(st, 422, "{body}");
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(!body.contains("invalid_body"), "{body}");
    // Language: Accept-Language, then the switch's cookie.
    let r = reqwest::Client::new()
        .get(format!("{}/", app.base))
        .header("accept-language", "zh-CN,zh;q=0.9")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">"));
    assert!(html.contains("个人信息保护中心"));
    let (st, _, h) = b.get("/lang?to=zh-CN&back=/policy").await;
    assert_eq!((st, h["location"].to_str().unwrap()), (303, "/policy"));
    let (_, html, _) = b.get("/policy").await;
    assert!(html.contains("<html lang=\"zh-CN\">"));
    // An off-site `back` goes home.
    let (_, _, h) = b.get("/lang?to=en&back=//evil.example/").await;
    assert_eq!(h["location"], "/");
}

async fn the_console_works_the_queue_under_the_keys_own_role_and_escapes_what_it_shows(
    app: TestApp,
) {
    let dpo =
        pivault_testkit::keys::api_key_all_purposes(&app.vault, "dpo-desk", &["dpo", "security"])
            .await;
    // A subject files a deletion and a question on the page.
    let u = adult_with(None);
    let mut subject = Browser::new(&app);
    let s = subject.sign_in(&u["email"]).await;
    let csrf = subject.csrf("/me/requests").await;
    subject
        .post("/me/requests", &[("csrf", &csrf), ("kind", "explanation")])
        .await;
    subject
        .post(
            "/me/requests",
            &[
                ("csrf", &csrf),
                ("kind", "inquiry"),
                ("text", "Why do you keep my orders for three years?"),
            ],
        )
        .await;
    // An incident whose text holds markup.
    let r = app
        .post(
            "/v1/incidents",
            &dpo,
            json!({"severity": "major", "what_happened": "<script>alert(1)</script>\"><img src=x onerror=alert(1)>",
                   "occurred_at": 1_700_000_000, "discovered_at": 1_700_000_100}),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let mut office = Browser::new(&app);
    let (st, _, h) = office.get("/console").await;
    assert_eq!(
        (st, h["location"].to_str().unwrap()),
        (303, "/console/signin")
    );
    // An application key has no console role.
    let csrf = office.csrf("/console/signin").await;
    let (st, _, _) = office
        .post("/console/signin", &[("csrf", &csrf), ("key", &app.app_key)])
        .await;
    assert_eq!(st, 401);
    let (st, loc, _) = office
        .post("/console/signin", &[("csrf", &csrf), ("key", &dpo)])
        .await;
    assert_eq!((st, loc.as_str()), (303, "/console"));
    let (st, html, _) = office.get("/console").await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("dpo-desk"));
    assert!(!html.contains("<script>alert"), "markup rendered raw");
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{html}"
    );
    let list: Value = app
        .get(
            &format!("/v1/dsr?subject_id={s}&kind=explanation"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let id = list["requests"][0]["id"].as_str().unwrap().to_string();
    assert!(
        html.contains(&format!("<tr id=\"dsr-{id}\" class=\"urgency-ok\"")),
        "{html}"
    );
    assert!(html.contains("id=\"inquiry-queue\""), "{html}");
    // Approve from the console: the same use case, audited under the key's principal.
    let csrf = csrf_of(&html);
    let (st, loc, _) = office
        .post(
            &format!("/console/dsr/{id}"),
            &[("csrf", &csrf), ("action", "approve")],
        )
        .await;
    assert_eq!((st, loc.as_str()), (303, "/console?done=dsr"));
    let v: Value = app
        .get(&format!("/v1/dsr/{id}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "completed", "{v}");
    let actors = col(
        &app.store,
        &format!("SELECT actor FROM audit_log WHERE detail LIKE '%{id}%' AND actor = 'dpo-desk'"),
    )
    .await;
    assert!(!actors.is_empty());
    // Reject the inquiry with a reason; a wrong token is refused first.
    let iq: Value = app
        .get(
            &format!("/v1/dsr?subject_id={s}&kind=inquiry"),
            &app.admin_key,
        )
        .await
        .json()
        .await
        .unwrap();
    let iq = iq["requests"][0]["id"].as_str().unwrap().to_string();
    // The office reads the question through the one access path: decided for
    // legal_obligation, allowed in clear for a dpo by the staff policy, audited first.
    let (_, html, _) = office.get("/console").await;
    assert!(
        html.contains(&format!("href=\"/console/dsr/{iq}/inquiry\"")),
        "{html}"
    );
    let (st, html, _) = office.get(&format!("/console/dsr/{iq}/inquiry")).await;
    assert_eq!(st, 200, "{html}");
    assert!(
        html.contains("<div class=\"pre\" id=\"inquiry-text\">Why do you keep my orders for three years?</div>"),
        "{html}"
    );
    let read = col(
        &app.store,
        &format!(
            "SELECT actor || '|' || outcome || '|' || purpose || '|' || categories FROM audit_log \
             WHERE action = 'dsr.inquiry_read' AND subject_id = '{s}'"
        ),
    )
    .await;
    assert_eq!(
        read,
        ["dpo-desk|allow|legal_obligation|user.support.ticket"]
    );
    // A security-only key: the staff policy gives it nothing of a ticket; refused, audited.
    let sec =
        pivault_testkit::keys::api_key_all_purposes(&app.vault, "sec-desk", &["security"]).await;
    let mut sec_office = Browser::new(&app);
    let c = sec_office.csrf("/console/signin").await;
    sec_office
        .post("/console/signin", &[("csrf", &c), ("key", &sec)])
        .await;
    let (st, html, _) = sec_office.get(&format!("/console/dsr/{iq}/inquiry")).await;
    assert_eq!(st, 403, "{html}");
    assert!(!html.contains("three years"), "{html}");
    let denied = col(
        &app.store,
        "SELECT outcome FROM audit_log WHERE action = 'dsr.inquiry_read' AND actor = 'sec-desk'",
    )
    .await;
    assert_eq!(denied, ["deny"]);
    // Its role may not work the queue: a 403 page, not a 503.
    let c = sec_office.csrf("/console").await;
    let (st, _, body) = sec_office
        .post(
            &format!("/console/dsr/{iq}"),
            &[("csrf", &c), ("action", "approve")],
        )
        .await;
    assert_eq!(st, 403, "{body}");
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    let (st, _, _) = office
        .post(
            &format!("/console/dsr/{iq}"),
            &[
                ("csrf", "x"),
                ("action", "reject"),
                ("reason", "manifestly_unfounded"),
            ],
        )
        .await;
    assert_eq!(st, 403);
    let (st, _, _) = office
        .post(
            &format!("/console/dsr/{iq}"),
            &[
                ("csrf", &csrf),
                ("action", "reject"),
                ("reason", "manifestly_unfounded"),
            ],
        )
        .await;
    assert_eq!(st, 303);
    let v: Value = app
        .get(&format!("/v1/dsr/{iq}"), &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["state"], "rejected", "{v}");
    // The inquiry text is sealed: not in the database in clear.
    if app.backend == pivault_testkit::Backend::Sqlite {
        let db = app.db_bytes().await;
        assert!(!db.windows(20).any(|w| w == b"Why do you keep my o"));
    }
    let (st, html, _) = office.get("/console/audit").await;
    assert_eq!(st, 200);
    assert!(html.contains("id=\"audit-status\""), "{html}");
    // The subject reports misuse: the lock (policy §8.7) holds on the question too.
    let csrf = subject.csrf("/me/requests").await;
    let (st, _, _) = subject
        .post(
            "/me/requests",
            &[("csrf", &csrf), ("kind", "misuse_report")],
        )
        .await;
    assert_eq!(st, 303);
    // (The desk's key also holds `security`, which the lock lets through; a dpo-only key not.)
    let dpo_only =
        pivault_testkit::keys::api_key_all_purposes(&app.vault, "dpo-only", &["dpo"]).await;
    let mut office2 = Browser::new(&app);
    let c = office2.csrf("/console/signin").await;
    office2
        .post("/console/signin", &[("csrf", &c), ("key", &dpo_only)])
        .await;
    let (st, html, _) = office2.get(&format!("/console/dsr/{iq}/inquiry")).await;
    assert_eq!(st, 423, "{html}");
    assert!(!html.contains("three years"), "{html}");
    let locked = col(
        &app.store,
        "SELECT reason FROM audit_log WHERE action = 'dsr.inquiry_read' AND actor = 'dpo-only' AND outcome = 'deny'",
    )
    .await;
    assert_eq!(locked, ["subject_locked"]);
}

/// A minor of the data set (under 14 at the test clock) with a guardian's mobile on record.
fn minor_with_guardian() -> HashMap<String, String> {
    users()
        .into_iter()
        .find(|u| !u["guardian_mobile"].is_empty() && u["birth_date"].as_str() > "2013-06-01")
        .unwrap()
}

async fn a_guardian_signs_in_with_their_own_code_and_consents_for_the_minor_only(app: TestApp) {
    let u = minor_with_guardian();
    let minor = app.subject_of(&u["account_id"]).await;
    let mut b = Browser::new(&app);
    // The guardian's browser chose its cookies before signing in: the choice stays theirs.
    let csrf = b.csrf("/").await;
    b.post("/cookies", &[("csrf", &csrf), ("method", "accept_all")])
        .await;

    // The child's own mobile is not the guardian's: the guardian form finds nobody by it, and
    // the usual form finds nobody by the guardian's number (no code goes out for either).
    for (path, number) in [
        ("/signin/guardian", u["mobile"].as_str()),
        ("/signin", u["guardian_mobile"].as_str()),
    ] {
        let csrf = b.csrf(path).await;
        let (st, _, html) = b.post(path, &[("csrf", &csrf), ("mobile", number)]).await;
        assert_eq!(st, 200, "{html}");
        let (id, _) = b.cookies["pv_signin"].split_once('.').unwrap();
        let row = app.store.dsr(id).await.unwrap().unwrap();
        assert_eq!(row.subject_id, None, "{path} matched an account");
    }

    // The guardian's own number: the code is texted to it, not to the child.
    let csrf = b.csrf("/signin/guardian").await;
    let (st, _, html) = b
        .post(
            "/signin/guardian",
            &[("csrf", &csrf), ("mobile", &u["guardian_mobile"])],
        )
        .await;
    assert_eq!(st, 200, "{html}");
    assert!(
        !html.contains(&u["guardian_mobile"]),
        "the page echoes the number"
    );
    let (id, _) = b.cookies["pv_signin"].split_once('.').unwrap();
    let id = id.to_string();
    let code = crate::dsr::texted_code(&app, &id).await;
    let to: Vec<String> = app
        .sms
        .requests()
        .iter()
        .filter(|m| m.body["text"].as_str().unwrap_or("").contains(&id))
        .map(|m| m.body["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(to, [format!("+86{}", u["guardian_mobile"])]);
    let (st, loc, body) = b
        .post(
            "/signin/verify",
            &[("csrf", &csrf_of(&html)), ("code", &code)],
        )
        .await;
    assert_eq!((st, loc.as_str()), (303, "/me"), "{body}");

    // The session reaches the child's consents, nothing else.
    for path in ["/me", "/me/requests", "/me/access", "/me/recipients"] {
        let (st, _, h) = b.get(path).await;
        assert_eq!(
            (st, h["location"].to_str().unwrap()),
            (303, "/me/consents"),
            "{path}"
        );
    }
    let (st, html, _) = b.get("/me/consents").await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("id=\"guardian-notice\""), "{html}");
    assert!(
        !html.contains("href=\"/me/access\""),
        "the guardian's nav offers more"
    );
    let (st, _, _) = b
        .post(
            "/me/requests",
            &[("csrf", &csrf_of(&html)), ("kind", "deletion")],
        )
        .await;
    assert_eq!(st, 303);
    let filed = col(
        &app.store,
        &format!(
            "SELECT kind FROM dsr_requests WHERE subject_id = '{minor}' AND kind <> 'sign_in'"
        ),
    )
    .await;
    assert!(filed.is_empty(), "a guardian's session filed {filed:?}");

    // A consent the guardian gives is the child's, given by the guardian, and the decision
    // that needed it flips (PIPL Art. 31).
    let decide = || async {
        let r = app
            .post(
                "/v1/decisions",
                &app.app_key,
                json!({"subject_id": minor, "purpose": "marketing", "action": "use", "categories": ["user.name"]}),
            )
            .await;
        r.json::<Value>().await.unwrap()
    };
    let (_, html, _) = b.get("/me/consents").await;
    let csrf = csrf_of(&html);
    let granted_before = html.contains("id=\"withdraw-marketing\"");
    if granted_before {
        let (st, _, _) = b
            .post(
                "/me/consents",
                &[
                    ("csrf", &csrf),
                    ("purpose", "marketing"),
                    ("action", "withdraw"),
                ],
            )
            .await;
        assert_eq!(st, 303);
    }
    let before = decide().await;
    assert_eq!(before["allowed"], false, "{before}");
    let (st, loc, _) = b
        .post(
            "/me/consents",
            &[
                ("csrf", &csrf),
                ("purpose", "marketing"),
                ("action", "grant"),
            ],
        )
        .await;
    assert_eq!((st, loc.as_str()), (303, "/me/consents?done=consent"));
    let after = decide().await;
    assert_eq!(after["allowed"], true, "{after}");
    let ledger = col(
        &app.store,
        &format!(
            "SELECT c.action || '|' || c.given_by || '|' || c.method || '|' || a.actor \
             FROM consent_events c JOIN audit_log a ON a.subject_id = c.subject_id AND a.action = 'consent.grant' \
             WHERE c.subject_id = '{minor}' AND c.purpose = 'marketing' AND c.method = 'web' AND c.action = 'grant' \
             ORDER BY a.seq DESC LIMIT 1"
        ),
    )
    .await;
    assert_eq!(ledger, ["grant|guardian|web|center:guardian"]);
    let audit = col(
        &app.store,
        &format!("SELECT actor || '|' || detail FROM audit_log WHERE subject_id = '{minor}' AND action = 'center.signin'"),
    )
    .await;
    assert_eq!(audit, [format!("center:guardian|request={id} as=guardian")]);
    let linked = col(
        &app.store,
        &format!("SELECT category FROM cookie_choices WHERE subject_id = '{minor}'"),
    )
    .await;
    assert!(
        linked.is_empty(),
        "the guardian's cookie choice was linked to the child"
    );

    // The child signs in themselves: a grant of their own would count for nothing (PIPL
    // Art. 31), so the page refuses it and says why; withdrawing stays theirs.
    let mut child = Browser::new(&app);
    let csrf = child.csrf("/signin").await;
    let (_, _, html) = child
        .post("/signin", &[("csrf", &csrf), ("mobile", &u["mobile"])])
        .await;
    let (cid, _) = child.cookies["pv_signin"].split_once('.').unwrap();
    let code = crate::dsr::texted_code(&app, cid).await;
    let (st, _, _) = child
        .post(
            "/signin/verify",
            &[("csrf", &csrf_of(&html)), ("code", &code)],
        )
        .await;
    assert_eq!(st, 303);
    let csrf = child.csrf("/me/consents").await;
    let (st, _, body) = child
        .post(
            "/me/consents",
            &[
                ("csrf", &csrf),
                ("purpose", "personalised_ads"),
                ("action", "grant"),
            ],
        )
        .await;
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("through a parent or guardian"), "{body}");
    let (st, loc, _) = child
        .post(
            "/me/consents",
            &[
                ("csrf", &csrf),
                ("purpose", "marketing"),
                ("action", "withdraw"),
            ],
        )
        .await;
    assert_eq!((st, loc.as_str()), (303, "/me/consents?done=consent"));

    // A minute before the child's 14th birthday the code goes out; verified two minutes
    // later, it opens nothing: the child is 14 and manages their own consents.
    let born = time::Date::parse(
        &u["birth_date"],
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    let fourteen = born.replace_year(born.year() + 14).unwrap();
    app.clock
        .set(fourteen.midnight().assume_utc() - time::Duration::minutes(1));
    let mut g = Browser::new(&app);
    let csrf = g.csrf("/signin/guardian").await;
    let (_, _, html) = g
        .post(
            "/signin/guardian",
            &[("csrf", &csrf), ("mobile", &u["guardian_mobile"])],
        )
        .await;
    let (gid, _) = g.cookies["pv_signin"].split_once('.').unwrap();
    let code = crate::dsr::texted_code(&app, gid).await;
    app.clock.advance(120);
    let (st, _, body) = g
        .post(
            "/signin/verify",
            &[("csrf", &csrf_of(&html)), ("code", &code)],
        )
        .await;
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("14 or older"), "{body}");
    assert!(!g.cookies.contains_key("pv_session"));
    // From then on the guardian's number matches nobody: no code is texted at all.
    let csrf = g.csrf("/signin/guardian").await;
    let (st, _, _) = g
        .post(
            "/signin/guardian",
            &[("csrf", &csrf), ("mobile", &u["guardian_mobile"])],
        )
        .await;
    assert_eq!(st, 200);
    let (late, _) = g.cookies["pv_signin"].split_once('.').unwrap();
    let row = app.store.dsr(late).await.unwrap().unwrap();
    assert_eq!(row.subject_id, None);

    // The child is erased: the guardian's session ends with the account.
    app.clock.set(pivault_testkit::TEST_NOW);
    let (st, _, _) = b.get("/me/consents").await;
    assert_eq!(st, 200);
    let r = app
        .delete(&format!("/v1/subjects/{minor}"), &app.admin_key)
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let (st, _, h) = b.get("/me/consents").await;
    assert_eq!((st, h["location"].to_str().unwrap()), (303, "/signin"));
    assert!(!b.cookies.contains_key("pv_session"));
}
