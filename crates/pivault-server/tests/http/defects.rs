//! Issue 11, "defects found by a new user" 1, 2, 3, 6, 8 and 10: regression cases on the
//! imported slice, on both backends.
use pivault_core::import::{import_dir, NoProgress};
use pivault_testkit::app::{latest_consent, users};
use pivault_testkit::keys::api_key_all_purposes;
use pivault_testkit::TestApp;
use serde_json::{json, Value};
use std::time::Duration;

on_both_backends!(
    lookup_is_decided_before_the_index_is_probed_and_per_subject,
    admin_is_not_every_role_and_reads_only_what_the_staff_policy_allows,
    amounts_are_exact_decimals_end_to_end,
    identical_unverified_requests_are_folded_and_floods_get_429,
    unverified_requests_expire_and_are_never_overdue,
    implausible_consents_are_refused_over_http_and_in_the_importer,
    a_ticket_without_created_at_is_kept_with_a_warning,
);

async fn lookup(app: &TestApp, key: &str, by: &str, value: &str, purpose: &str) -> (u16, Value) {
    let r = app
        .post(
            "/v1/lookup",
            key,
            json!({"by": by, "value": value, "purpose": purpose}),
        )
        .await;
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn audit(app: &TestApp) -> Vec<pivault_domain::audit::AuditRecord> {
    app.store
        .audit_page(0, 1_000_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect()
}

/// Defect 1: `marketing` does not declare ID numbers, so a lookup by `id_card` for it is a
/// 403 before the index is probed — the same answer for a held and an unknown number.
pub async fn lookup_is_decided_before_the_index_is_probed_and_per_subject(app: TestApp) {
    let u = &users()[0];
    let held = u["id_card_number"].clone();
    let unknown = "11010519491231002X"; // valid check digit, not in the slice
    let (s, v) = lookup(&app, &app.app_key, "id_card", &held, "service").await;
    assert_eq!((s, v["count"].as_u64()), (200, Some(1)), "{v}");
    let before = audit(&app).await.len();
    let (s1, v1) = lookup(&app, &app.app_key, "id_card", &held, "marketing").await;
    let (s2, v2) = lookup(&app, &app.app_key, "id_card", unknown, "marketing").await;
    assert_eq!((s1, s2), (403, 403));
    assert_eq!(v1["error"]["code"], "decision_denied");
    assert_eq!(v1["error"]["reason"], "not_necessary_for_purpose");
    assert_eq!(v1, v2, "a denied lookup is no oracle");
    assert!(!v1.to_string().contains(held.as_str()));
    // both denials audited, with no subject (the index was never probed)
    let new = audit(&app).await.split_off(before);
    let denials: Vec<_> = new
        .iter()
        .filter(|r| r.action == "subject.lookup" && r.outcome == "deny")
        .collect();
    assert_eq!(denials.len(), 2, "{new:?}");
    assert!(denials.iter().all(|r| r.subject_id.is_none()
        && r.reason.as_deref() == Some("not_necessary_for_purpose")
        && r.categories == "user.government_id.id_card"));

    // Per subject: marketing (consent) finds only subjects whose marketing consent is in force.
    let granted = users()
        .into_iter()
        .find(|u| latest_consent(&u["account_id"], "marketing").as_deref() == Some("grant"))
        .unwrap();
    let without = users()
        .into_iter()
        .find(|u| latest_consent(&u["account_id"], "marketing").as_deref() != Some("grant"))
        .unwrap();
    let (s, v) = lookup(
        &app,
        &app.app_key,
        "mobile",
        &granted["mobile"],
        "marketing",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["count"].as_u64().unwrap() >= 1, "{v}");
    let (s, v) = lookup(
        &app,
        &app.app_key,
        "mobile",
        &without["mobile"],
        "marketing",
    )
    .await;
    assert_eq!(s, 200);
    let sid = app.subject_of(&without["account_id"]).await;
    assert!(
        !v["subjects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == sid.as_str()),
        "a subject without marketing consent is not found for marketing: {v}"
    );
    let last = audit(&app).await;
    assert!(last.iter().any(|r| r.action == "subject.lookup"
        && r.subject_id.as_deref() == Some(sid.as_str())
        && r.outcome == "deny"));
}

/// Defect 2: `admin` does not imply `app`; with `app` its reads pass the staff policy's admin
/// rules (masked contact data for `service`, nothing else).
pub async fn admin_is_not_every_role_and_reads_only_what_the_staff_policy_allows(app: TestApp) {
    let s = app.subject_of(&users()[0]["account_id"]).await;
    let path = format!("/v1/subjects/{s}/fields?purpose=service");
    let r = app.get(&path, &app.admin_key).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "role_required");
    let (s2, _) = lookup(
        &app,
        &app.admin_key,
        "account_id",
        &users()[0]["account_id"],
        "service",
    )
    .await;
    assert_eq!(s2, 403);

    let app_admin = api_key_all_purposes(&app.vault, "office-reader", &["app", "admin"]).await;
    let r = app.get(&path, &app_admin).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let fields = v["fields"].as_array().unwrap();
    assert!(!fields.is_empty());
    for f in fields {
        let c = f["category"].as_str().unwrap();
        assert!(
            c.starts_with("user.contact.") || c == "user.name" || c.starts_with("user.account."),
            "{c}"
        );
    }
    let mobile = fields
        .iter()
        .find(|f| f["category"] == "user.contact.mobile")
        .unwrap();
    assert_ne!(mobile["value"], users()[0]["mobile"].as_str(), "masked");
    let withheld = v["withheld"].to_string();
    assert!(
        withheld.contains("user.government_id.id_card")
            && withheld.contains("staff_not_authorized")
    );
    let r = app
        .get(
            &format!("/v1/subjects/{s}/fields?purpose=legal_obligation"),
            &app_admin,
        )
        .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "staff_not_authorized");
    // admin still administers: the disclosure report
    let r = app.get("/v1/reports/disclosures", &app.admin_key).await;
    assert_eq!(r.status(), 200);
}

/// Defect 3: amounts never pass through f64; they are served as exact decimal strings.
pub async fn amounts_are_exact_decimals_end_to_end(app: TestApp) {
    let s = app.subject_of(&users()[1]["account_id"]).await;
    let body = r#"{"purpose": "service", "fields": [
        {"category": "user.transaction.amount", "record": "order:x1", "name": "amount_cny", "value": 9007199254740993.01},
        {"category": "user.transaction.amount", "record": "order:x2", "name": "amount_cny", "value": 123456789012345678901234567890},
        {"category": "user.transaction.amount", "record": "order:x3", "name": "amount_cny", "value": "0.000000000000000001"}
    ]}"#;
    let r = app
        .http
        .put(format!("{}/v1/subjects/{s}/fields", app.base))
        .bearer_auth(&app.app_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (status, v) = app.read(&s, "service", "user.transaction.amount").await;
    assert_eq!(status, 200);
    let got = |rec: &str| {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["record"] == rec)
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(got("order:x1"), json!("9007199254740993.01"));
    assert_eq!(got("order:x2"), json!("123456789012345678901234567890"));
    assert_eq!(got("order:x3"), json!("0.000000000000000001"));
    // imported amounts are strings too, digit for digit as in orders.csv
    let o = pivault_testkit::app::orders()
        .into_iter()
        .find(|o| o["account_id"] == users()[1]["account_id"])
        .unwrap();
    assert_eq!(
        got(&format!("order:{}", o["order_id"])),
        json!(o["amount_cny"])
    );
    // an exponent or a number for a text category is refused with a code
    let r = app
        .put(
            &format!("/v1/subjects/{s}/fields"),
            &app.app_key,
            json!({"purpose": "service", "fields": [{"category": "user.name", "value": 12}]}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "value_wrong_type"
    );
}

async fn file_raw(app: &TestApp, body: Value) -> reqwest::Response {
    app.http
        .post(format!("{}/v1/dsr", app.base))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn dsr_rows(app: &TestApp) -> Vec<pivault_store::DsrRow> {
    app.store
        .dsr_list(&pivault_core::DsrFilter {
            limit: 10_000,
            ..pivault_core::DsrFilter::default()
        })
        .await
        .unwrap()
}

/// Defect 6: identical unverified filings fold into one request, codes stop at the send
/// limit, and floods get 429 with `Retry-After` per identity and per address.
pub async fn identical_unverified_requests_are_folded_and_floods_get_429(app: TestApp) {
    let u = &users()[2];
    let body = json!({"kind": "access", "email": u["email"]});
    let before_rows = dsr_rows(&app).await.len();
    let mut ids = Vec::new();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let r = file_raw(&app, body.clone()).await;
        assert_eq!(r.status(), 202);
        let v: Value = r.json().await.unwrap();
        for x in v["requests"].as_array().unwrap() {
            assert_eq!(x["state"], "identity_unverified");
            ids.push(x["id"].as_str().unwrap().to_string());
            tokens.push(x["token"].as_str().unwrap().to_string());
        }
    }
    let accounts = dsr_rows(&app).await.len() - before_rows;
    assert!(accounts >= 1);
    assert_eq!(ids.len(), 5 * accounts, "same answer shape every time");
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), accounts, "folded: no new rows");
    // only the latest token works
    let id = &ids[ids.len() - 1];
    let latest = &tokens[tokens.len() - 1];
    let status = |t: &str| {
        let t = t.to_string();
        let url = format!("{}/v1/dsr/{id}", app.base);
        let c = app.http.clone();
        async move {
            c.get(url)
                .header("x-dsr-token", t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status(latest).await, 200);
    assert_eq!(status(&tokens[0]).await, 403);
    // the 6th filing of the hour for this identity: 429, stable code, Retry-After
    let r = file_raw(&app, body.clone()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "dsr_rate_limited");
    assert!(!v.to_string().contains(u["email"].as_str()));
    // 5 filings, 5 sends at most per request: every mail for it carries its id
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = app
        .mail
        .messages()
        .iter()
        .filter(|m| {
            m.text_body()
                .unwrap_or_default()
                .contains(&format!("Request: {id}"))
        })
        .count();
    assert!((1..=5).contains(&mails), "{mails}");
    assert_eq!(dsr_rows(&app).await.len() - before_rows, accounts);
    // per address: 10 a minute from one client address, whatever the identity (loopback,
    // i.e. a local proxy, is not limited by address: the tests above came from 127.0.0.1)
    let client: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let mut limited = 0;
    for i in 0..12 {
        let input = pivault_core::dsr::DsrInput {
            kind: "access".into(),
            email: Some(format!("nobody{i}@example.invalid")),
            ..pivault_core::dsr::DsrInput::default()
        };
        match app.vault.dsr_create_from(&input, Some(client)).await {
            Ok(_) => {}
            Err(pivault_core::CoreError::RateLimited { retry_after }) => {
                assert!((1..=60).contains(&retry_after));
                limited += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(limited, 2);
    let other: std::net::IpAddr = "203.0.113.8".parse().unwrap();
    let input = pivault_core::dsr::DsrInput {
        kind: "access".into(),
        email: Some("someone@example.invalid".into()),
        ..pivault_core::dsr::DsrInput::default()
    };
    assert!(app.vault.dsr_create_from(&input, Some(other)).await.is_ok());
}

/// Defect 6: a request never verified expires (audited) and never counts as overdue.
pub async fn unverified_requests_expire_and_are_never_overdue(app: TestApp) {
    let u = &users()[3];
    let r = file_raw(&app, json!({"kind": "access", "email": u["email"]})).await;
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    let id = v["requests"][0]["id"].as_str().unwrap().to_string();
    let token = v["requests"][0]["token"].as_str().unwrap().to_string();
    // far past its due date but unverified: not overdue anywhere
    app.clock.advance(11 * 86_400);
    let counts = app.vault.dsr_due_counts().await.unwrap();
    assert!(counts.iter().all(|c| c.overdue == 0), "{counts:?}");
    let now = pivault_core::values::format_timestamp(app.vault.now().unix_timestamp());
    let r = app
        .get(&format!("/v1/dsr?due_before={now}"), &app.admin_key)
        .await;
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["count"], 0, "{list}");
    let r = app.get(&format!("/v1/dsr/{id}"), &app.admin_key).await;
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["overdue"], false);
    // the due scan expires it, audited
    app.vault.dsr_due_scan().await.unwrap();
    let r = app
        .http
        .get(format!("{}/v1/dsr/{id}", app.base))
        .header("x-dsr-token", &token)
        .send()
        .await
        .unwrap();
    let view: Value = r.json().await.unwrap();
    assert_eq!(view["state"], "expired");
    assert!(
        audit(&app)
            .await
            .iter()
            .any(|r| r.action == "dsr.expired"
                && r.detail.as_deref().is_some_and(|d| d.contains(&id)))
    );
    let r = app
        .http
        .post(format!("{}/v1/dsr/{id}/verify", app.base))
        .header("x-dsr-token", &token)
        .json(&json!({"code": "123456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "dsr_expired"
    );
    // a new filing starts a new request (the expired one is not folded into)
    let r = file_raw(&app, json!({"kind": "access", "email": u["email"]})).await;
    let v: Value = r.json().await.unwrap();
    assert_ne!(v["requests"][0]["id"], json!(id));
}

/// Defect 8: a consent in the year 1, far ahead of the clock, or by a guardian for an adult is
/// refused with a stable code, over HTTP and in the importer (with line numbers).
pub async fn implausible_consents_are_refused_over_http_and_in_the_importer(app: TestApp) {
    let adult = &users()[0];
    let s = app.subject_of(&adult["account_id"]).await;
    let post = |body: Value| {
        let path = format!("/v1/subjects/{s}/consents");
        let app = &app;
        async move { app.post(&path, &app.app_key, body).await }
    };
    for (at, code) in [
        ("0001-01-01T00:00:00Z", "consent_time_implausible"),
        ("1965-01-01T00:00:00Z", "consent_time_implausible"),
        ("2027-06-01T00:00:00Z", "consent_time_in_future"),
    ] {
        let r = post(json!({"purpose": "marketing", "action": "grant", "method": "web", "at": at}))
            .await;
        assert_eq!(r.status(), 422, "{at}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{at}");
        assert_eq!(v["error"]["field"], "at");
    }
    let r = post(
        json!({"purpose": "marketing", "action": "grant", "method": "web", "given_by": "guardian"}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "guardian_for_adult");
    let r = post(json!({"purpose": "marketing", "action": "grant", "method": "web"})).await;
    assert!(r.status().is_success(), "{}", r.status());
    // a minor's guardian may consent
    if let Some(minor) = users()
        .into_iter()
        .find(|u| !u["guardian_name"].is_empty() && u["birth_date"].as_str() > "2013-12-01")
    {
        let m = app.subject_of(&minor["account_id"]).await;
        let r = app
            .post(
                &format!("/v1/subjects/{m}/consents"),
                &app.app_key,
                json!({"purpose": "marketing", "action": "grant", "method": "web", "given_by": "guardian"}),
            )
            .await;
        assert!(r.status().is_success(), "{}", r.status());
    }

    // the importer: each bad row rejected with its line number, the good one kept
    let dir = tempfile::tempdir().unwrap();
    let acc = &adult["account_id"];
    std::fs::write(
        dir.path().join("consent_events.csv"),
        format!(
            "event_id,account_id,purpose,action,at,policy_version,method,given_by\n\
             d11a,{acc},marketing,grant,0001-01-01T00:00:00Z,2023-06-01,web,self\n\
             d11b,{acc},marketing,grant,2030-01-01T00:00:00Z,2023-06-01,web,self\n\
             d11c,{acc},marketing,grant,2024-01-01T00:00:00Z,2023-06-01,web,guardian\n\
             d11d,{acc},marketing,grant,2024-01-01T00:00:00Z,2023-06-01,web,self\n"
        ),
    )
    .unwrap();
    let rejects = dir.path().join("rejects");
    let rep = import_dir(&app.vault, dir.path(), &rejects, &NoProgress)
        .await
        .unwrap();
    assert_eq!((rep.files[0].imported, rep.files[0].rejected), (1, 3));
    let text = std::fs::read_to_string(rejects.join("consent_events.csv.rejects.csv")).unwrap();
    assert!(text.contains("2,at,consent_time_implausible"), "{text}");
    assert!(text.contains("3,at,consent_time_in_future"), "{text}");
    assert!(text.contains("4,given_by,guardian_for_adult"), "{text}");
}

/// Defect 10: a ticket without `created_at` is kept and the gap recorded with its line; the
/// summary names the rejects folder only when there is something in it.
pub async fn a_ticket_without_created_at_is_kept_with_a_warning(app: TestApp) {
    let acc = &users()[4]["account_id"];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tickets.jsonl"),
        format!(
            "{{\"ticket_id\": \"d10a\", \"account_id\": \"{acc}\", \"created_at\": \"2025-01-02T03:04:05Z\", \"text\": \"hello\"}}\n\
             {{\"ticket_id\": \"d10b\", \"account_id\": \"{acc}\", \"text\": \"no time\"}}\n"
        ),
    )
    .unwrap();
    let rejects = dir.path().join("rejects");
    let rep = import_dir(&app.vault, dir.path(), &rejects, &NoProgress)
        .await
        .unwrap();
    let f = &rep.files[0];
    assert_eq!((f.imported, f.rejected, f.warnings), (2, 0, 1));
    assert!(!rejects.join("tickets.jsonl.rejects.csv").exists());
    let w = std::fs::read_to_string(rejects.join("tickets.jsonl.warnings.csv")).unwrap();
    assert!(w.contains("2,created_at,field_missing"), "{w}");
    assert!(
        rep.rejects_note()
            .starts_with("no rejects; 1 missing optional field"),
        "{}",
        rep.rejects_note()
    );
    let s = app.subject_of(acc).await;
    let (status, v) = app.read(&s, "maintenance", "user.support.ticket").await;
    assert_eq!(status, 200);
    assert!(v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["record"] == "ticket:d10b" && x["name"] == "text"));
    // a clean run announces no rejects folder
    let again = import_dir(&app.vault, dir.path(), &rejects, &NoProgress)
        .await
        .unwrap();
    assert_eq!(again.files[0].skipped, 2);
    assert_eq!(again.rejects_note(), "no rejects");
}
