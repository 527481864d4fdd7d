//! Issue 13 over HTTP: incidents scoped from the audit log, one notice per affected person
//! through the outbox, the public announcement, signed erasure notices to a recipient's
//! webhook with retries, misuse locks, and service cessation.

use pivault_store::testing::{column, Bind};
use pivault_testkit::app::users;
use pivault_testkit::keys::api_key_all_purposes;
use pivault_testkit::TestApp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

on_both_backends!(
    an_incident_scoped_to_one_key_notifies_exactly_its_subjects_once,
    a_subject_without_contact_data_is_covered_by_the_announcement,
    an_erasure_notice_is_signed_retried_and_recorded,
    a_misuse_report_locks_reads_until_security_releases_them,
    cessation_refuses_collection_and_leaves_only_retained_data,
    two_instances_deliver_each_notice_once,
    a_cross_border_transfer_tells_the_subject_once_per_arrangement,
    people_without_email_or_mobile_get_a_push_or_a_letter,
);

fn key_id(token: &str) -> String {
    token.split('.').nth(1).unwrap().to_string()
}

async fn security_key(app: &TestApp) -> String {
    api_key_all_purposes(&app.vault, "security-team", &["security", "app"]).await
}

/// `DELETE /v1/subjects/{s}?ground=subject_request` with the admin key: status and body.
async fn erase(app: &TestApp, s: &str) -> (u16, Value) {
    json_of(
        app.delete(
            &format!("/v1/subjects/{s}?ground=subject_request"),
            &app.admin_key,
        )
        .await,
    )
    .await
}

async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn open_incident(app: &TestApp, sec: &str, occurred: i64, discovered: i64) -> String {
    let (s, v) = json_of(
        app.post(
            "/v1/incidents",
            sec,
            json!({
                "severity": "relatively_major",
                "what_happened": "An application API key was published in a public code repository.",
                "occurred_at": occurred, "discovered_at": discovered,
                "categories": ["user.name", "user.contact.mobile", "user.contact.email"],
                "systems": ["billing-api"],
                "cause": "A developer committed a configuration file.",
                "possible_impact": "Names and contact details may be used for phishing.",
                "measures_taken": "The key was revoked and the repository purged.",
                "measures_planned": "Secret scanning on every commit.",
                "self_help": "Be wary of messages asking for codes or payments.",
                "remedies": "Contact us for a review of your account.",
            }),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["id"].as_str().unwrap().to_string()
}

/// Everything of the slice's users that is PI in clear and must never leave in a report,
/// announcement or log line: emails and mobiles.
fn contact_values() -> Vec<String> {
    users()
        .iter()
        .flat_map(|u| [u["email"].clone(), u["mobile"].clone()])
        .filter(|v| v.len() > 5)
        .collect()
}

fn assert_no_pi(what: &str, text: &str) {
    for v in contact_values() {
        assert!(!text.contains(&v), "{what} holds a contact value");
    }
}

async fn an_incident_scoped_to_one_key_notifies_exactly_its_subjects_once(app: TestApp) {
    let leaky = api_key_all_purposes(&app.vault, "billing", &["app"]).await;
    let sec = security_key(&app).await;
    let accounts: Vec<String> = users()
        .iter()
        .take(70)
        .map(|u| u["account_id"].clone())
        .collect();
    let mut subjects = Vec::new();
    for a in &accounts {
        subjects.push(app.subject_of(a).await);
    }
    let read = |key: String, s: String| {
        let app = &app;
        async move {
            let r = app
                .get(&format!("/v1/subjects/{s}/fields?purpose=service"), &key)
                .await;
            assert_eq!(r.status().as_u16(), 200);
        }
    };
    // Before the window: the leaky key reads 10 subjects.
    for s in &subjects[0..10] {
        read(leaky.clone(), s.clone()).await;
    }
    app.clock.advance(3_600);
    let from = app.vault.now().unix_timestamp();
    // In the window: the leaky key reads 30 (5 of them twice), the app key 20 others.
    let mut expected = BTreeSet::new();
    for s in subjects[10..40].iter().chain(&subjects[10..15]) {
        read(leaky.clone(), s.clone()).await;
        expected.insert(s.clone());
        app.clock.advance(7);
    }
    for s in &subjects[40..60] {
        read(app.app_key.clone(), s.clone()).await;
    }
    let to = app.vault.now().unix_timestamp();
    app.clock.advance(3_600);
    // After the window: 10 more with the leaky key.
    for s in &subjects[60..70] {
        read(leaky.clone(), s.clone()).await;
    }
    // An independent count from the audit table.
    let like = format!("key={}%", key_id(&leaky));
    let rows = column(
        &app.store,
        "SELECT DISTINCT subject_id FROM audit_log WHERE action = 'fields.read' \
         AND outcome = 'allow' AND at >= $1 AND at <= $2 AND detail LIKE $3",
        &[Bind::Int(from), Bind::Int(to), Bind::Text(like)],
    )
    .await
    .unwrap();
    let from_audit: BTreeSet<String> = rows.into_iter().collect();
    assert_eq!(from_audit, expected, "the audit table's own count");

    let id = open_incident(&app, &sec, from - 60, to + 600).await;
    // Facts that will be published hold no PI; a scope names keys and principals that exist.
    let u0 = &users()[0];
    for text in [
        format!("Leak of {}", u0["mobile"]),
        format!("contact {} for details", u0["email"]),
        format!("ID {}", u0["id_card_number"]),
        format!("tel:{}", u0["mobile"]),
    ] {
        let (s, v) = json_of(
            app.post(
                "/v1/incidents",
                &sec,
                json!({"severity": "major", "what_happened": text, "occurred_at": from - 60, "discovered_at": from}),
            )
            .await,
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (422, Some("text_holds_pi")),
            "{v}"
        );
        assert!(
            !v.to_string().contains(&u0["mobile"]),
            "the value is not echoed"
        );
    }
    for (scope, code) in [
        (
            json!({"from": from, "to": to, "keys": ["0000000000000000"]}),
            "api_key_not_found",
        ),
        (
            json!({"from": from, "to": to, "principals": ["BILLING"]}),
            "principal_malformed",
        ),
    ] {
        let (s, v) = json_of(
            app.post(&format!("/v1/incidents/{id}/scope"), &sec, scope)
                .await,
        )
        .await;
        assert_eq!(v["error"]["code"].as_str(), Some(code), "{s} {v}");
    }
    // The app key may not handle incidents.
    let (s, v) = json_of(app.get(&format!("/v1/incidents/{id}"), &app.app_key).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("role_required"))
    );
    let (s, v) = json_of(
        app.post(
            &format!("/v1/incidents/{id}/scope"),
            &sec,
            json!({"from": from, "to": to, "keys": [key_id(&leaky)]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["affected"], json!(expected.len()));
    assert_eq!(v["by_region"], json!({"cn": expected.len()}));
    // The list, by id.
    let (_, page) = json_of(
        app.get(&format!("/v1/incidents/{id}/subjects?limit=1000"), &sec)
            .await,
    )
    .await;
    let listed: BTreeSet<String> = page["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["subject_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, expected);

    // One of them reads English: their notice is in English.
    let english = subjects[12].clone();
    let (s, v) = json_of(
        app.put(
            &format!("/v1/subjects/{english}/lang"),
            &app.app_key,
            json!({"lang": "en"}),
        )
        .await,
    )
    .await;
    assert_eq!((s, v["lang"].as_str()), (200, Some("en")));
    let (s, v) = json_of(
        app.put(
            &format!("/v1/subjects/{english}/lang"),
            &app.app_key,
            json!({"lang": "fr"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("lang_unknown"))
    );

    let (s, v) = json_of(
        app.post(&format!("/v1/incidents/{id}/notify"), &sec, json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["enqueued"], json!(expected.len()));
    // Again: nothing new (exactly once per subject and incident).
    let (_, v) = json_of(
        app.post(&format!("/v1/incidents/{id}/notify"), &sec, json!({}))
            .await,
    )
    .await;
    assert_eq!(v["enqueued"], json!(0));

    let before = app.mail.messages().len();
    let rep = app.vault.deliver_outbox(10_000).await.unwrap();
    assert_eq!(rep.processed as usize, expected.len(), "{rep:?}");
    assert_eq!(rep.delivered as usize, expected.len(), "{rep:?}");
    let again = app.vault.deliver_outbox(10_000).await.unwrap();
    assert_eq!(again.processed, 0);
    let mails: Vec<_> = app.mail.messages().into_iter().skip(before).collect();
    assert_eq!(
        mails.len(),
        expected.len(),
        "one mail each (every slice user has an email)"
    );
    let ids: BTreeSet<String> = mails.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(ids.len(), expected.len(), "distinct Message-IDs");
    // Each went to the subject's own address, and says what PIPL Art. 57 asks.
    let by_account: BTreeMap<String, String> = users()
        .iter()
        .map(|u| (u["email"].clone(), u["account_id"].clone()))
        .collect();
    let mut reached = BTreeSet::new();
    for m in &mails {
        let account = &by_account[&m.rcpt_to[0]];
        let subject = app.subject_of(account).await;
        let body = m.text_body().unwrap();
        let chinese = body.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        assert_eq!(!chinese, subject == english, "the language on record");
        // The categories are named in that language too.
        let (mobile, email) = if chinese {
            ("手机号码", "电子邮箱")
        } else {
            ("Mobile phone number", "Email address")
        };
        assert!(body.contains(mobile) && body.contains(email), "{body}");
        assert_eq!(body.contains("Mobile phone number"), !chinese, "{body}");
        reached.insert(subject);
        assert!(body.contains("Secret scanning"), "measures planned");
        assert!(body.contains(&id), "the incident reference");
    }
    assert_eq!(reached, expected);

    // The report: counts, deadlines, no PI.
    let r = app
        .get(&format!("/v1/incidents/{id}/report?mark=true"), &sec)
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    assert_no_pi("report", &text);
    let rep: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(rep["affected_total"], json!(expected.len()));
    assert_eq!(rep["notices"]["delivered"], json!(expected.len()));
    assert!(rep["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["regime"] == "gdpr" && d["hours"] == 72));
    let html = app
        .get(
            &format!("/v1/incidents/{id}/report?format=html&lang=en"),
            &sec,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html"));
    assert_no_pi("html report", &html);
    let (s, _) = json_of(
        app.post(&format!("/v1/incidents/{id}/close"), &sec, json!({}))
            .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = json_of(
        app.post(&format!("/v1/incidents/{id}/notify"), &sec, json!({}))
            .await,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("incident_closed"))
    );
    let logs = pivault_testkit::captured_logs().text();
    assert_no_pi("log lines", &logs);
}

async fn a_subject_without_contact_data_is_covered_by_the_announcement(app: TestApp) {
    let sec = security_key(&app).await;
    // A subject with a name only: no email, mobile, device or address.
    let (s, v) = json_of(
        app.post(
            "/v1/subjects",
            &app.app_key,
            json!({"kind": "account", "purpose": "service", "fields": [
                {"category": "user.account.id", "value": "u999001"},
                {"category": "user.name", "value": "林晓"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let lonely = v["id"].as_str().unwrap().to_string();
    let other = app.subject_of(&users()[0]["account_id"]).await;
    let from = app.vault.now().unix_timestamp();
    for s in [&lonely, &other] {
        let r = app
            .get(
                &format!("/v1/subjects/{s}/fields?purpose=service"),
                &app.app_key,
            )
            .await;
        assert_eq!(r.status().as_u16(), 200);
    }
    let to = app.vault.now().unix_timestamp();
    let id = open_incident(&app, &sec, from - 10, to + 10).await;
    let (s, v) = json_of(
        app.post(
            &format!("/v1/incidents/{id}/scope"),
            &sec,
            json!({"from": from, "to": to, "principals": ["test-app"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["affected"], json!(2));
    json_of(
        app.post(&format!("/v1/incidents/{id}/notify"), &sec, json!({}))
            .await,
    )
    .await;
    let rep = app.vault.deliver_outbox(100).await.unwrap();
    assert_eq!((rep.delivered, rep.announced), (1, 1), "{rep:?}");
    let r = app
        .http
        .get(format!("{}/v1/announcements", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "no key needed");
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let a = v["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["reference"] == json!(id))
        .expect("the incident's announcement");
    assert!(a["zh_cn"]["body"]
        .as_str()
        .unwrap()
        .contains("Secret scanning"));
    assert!(
        !text.contains(&lonely) && !text.contains(&other),
        "no subject ids"
    );
    assert!(!text.contains("林晓"), "no names");
    assert_no_pi("announcement", &text);
    let (_, inc) = json_of(app.get(&format!("/v1/incidents/{id}"), &sec).await).await;
    assert_eq!(inc["notices"]["announced"], json!(1));
    // Not yet reported: overdue once the CAC's 4 h (relatively major) have passed since the
    // discovery; reporting ends it.
    assert!(!app.vault.overdue_reports().await.unwrap().contains(&id));
    app.clock.advance(5 * 3_600);
    assert!(app.vault.overdue_reports().await.unwrap().contains(&id));
    let (_, rep) = json_of(app.get(&format!("/v1/incidents/{id}/report"), &sec).await).await;
    let cn = rep["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["regime"] == "cn")
        .expect("the CAC deadline")
        .clone();
    assert_eq!(
        (cn["hours"].as_u64(), cn["overdue"].as_bool()),
        (Some(4), Some(true)),
        "{cn}"
    );
    json_of(
        app.get(&format!("/v1/incidents/{id}/report?mark=true"), &sec)
            .await,
    )
    .await;
    assert!(!app.vault.overdue_reports().await.unwrap().contains(&id));
}

async fn an_erasure_notice_is_signed_retried_and_recorded(app: TestApp) {
    let s = app.subject_of(&users()[3]["account_id"]).await;
    let (st, v) = json_of(
        app.post(
            &format!("/v1/subjects/{s}/disclosures"),
            &app.app_key,
            json!({"action": "share", "purpose": "service", "recipient": "sms-gateway",
                   "categories": ["user.contact.mobile"]}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = erase(&app, &s).await;
    assert_eq!(st, 200, "{v}");
    let request = v["request_id"].as_str().unwrap().to_string();
    // Attempt 1 and 2 fail (500), each retried after its backoff; attempt 3 is delivered.
    for _ in 0..3 {
        app.vault.deliver_outbox(100).await.unwrap();
        app.clock.advance(3_600);
    }
    let all = app.recipient_hook.requests();
    assert_eq!(all.len(), 3, "two failures and the delivery");
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    let ok = &all[2];
    let body: Value = serde_json::from_slice(&ok.raw_body).unwrap();
    assert_eq!(body["request_id"], json!(request));
    assert_eq!(body["subject_id"], json!(s));
    assert_eq!(body["categories"], json!(["user.contact.mobile"]));
    // The signature verifies with the published key.
    let key: Value = app
        .http
        .get(format!("{}/v1/dsr/receipt-key", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pk_b64 = key["public_key"].as_str().unwrap();
    use base64::Engine;
    let pk: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(pk_b64)
        .unwrap()
        .try_into()
        .unwrap();
    let sig_h = ok.header("x-pivault-signature").unwrap();
    let sig: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(sig_h.strip_prefix("ed25519=").unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let ts: i64 = ok.header("x-pivault-timestamp").unwrap().parse().unwrap();
    pivault_crypto::verify_webhook(&pk, ts, &ok.raw_body, &sig).expect("signature verifies");
    let mut tampered = ok.raw_body.clone();
    tampered[5] ^= 1;
    assert!(pivault_crypto::verify_webhook(&pk, ts, &tampered, &sig).is_err());
    // Every attempt is recorded.
    let oid = body["id"].as_str().unwrap();
    assert_eq!(ok.header("idempotency-key"), Some(oid));
    let (st, item) = json_of(app.get(&format!("/v1/outbox/{oid}"), &app.admin_key).await).await;
    assert_eq!(st, 200, "{item}");
    assert_eq!(item["state"], "delivered");
    let outcomes: Vec<&str> = item["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        vec!["webhook_failed", "webhook_failed", "delivered"]
    );
}

async fn a_misuse_report_locks_reads_until_security_releases_them(app: TestApp) {
    let u = &users()[5];
    let s = app.subject_of(&u["account_id"]).await;
    let sec = security_key(&app).await;
    let r = app
        .http
        .post(format!("{}/v1/misuse", app.base))
        .json(&json!({"email": u["email"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v: Value = r.json().await.unwrap();
    let id = v["requests"][0]["id"].as_str().unwrap().to_string();
    let token = v["requests"][0]["token"].as_str().unwrap().to_string();
    let (code, to) = crate::dsr::mailed_code(&app, &id).await;
    assert_eq!(to, u["email"]);
    let r = crate::dsr::verify(&app, &id, &token, &code).await;
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "completed", "{v}");
    // Locked for app keys, with a stable code; not for security.
    let path = format!("/v1/subjects/{s}/fields?purpose=service");
    let (st, v) = json_of(app.get(&path, &app.app_key).await).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (423, Some("subject_locked"))
    );
    // Its data cannot be changed either, and no decision is answered for it.
    let (st, v) = json_of(
        app.put(
            &format!("/v1/subjects/{s}/fields"),
            &app.app_key,
            json!({"purpose": "service", "fields": [{"category": "user.contact.email", "value": "new@example.net"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (423, Some("subject_locked"))
    );
    let (st, v) = json_of(
        app.post(
            "/v1/decisions",
            &app.app_key,
            json!({"action": "use", "purpose": "service", "subject_id": s}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (423, Some("subject_locked"))
    );
    // Nor is it erased while security investigates: the data is the case's evidence.
    let fields_before = app.store.fields(&s).await.unwrap().len();
    let (st, v) = erase(&app, &s).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (423, Some("subject_locked"))
    );
    assert_eq!(app.store.fields(&s).await.unwrap().len(), fields_before);
    let sec_path = format!("/v1/subjects/{s}/fields?purpose=security");
    let (st, v) = json_of(app.get(&sec_path, &sec).await).await;
    assert_eq!(st, 200, "{v}");
    // The case, with the access history (the app key's earlier reads are in it).
    let (_, cases) = json_of(app.get("/v1/security/cases", &sec).await).await;
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subject_id"] == json!(s))
        .expect("a case for the subject")
        .clone();
    let cid = case["id"].as_str().unwrap();
    assert!(!case["history"].as_array().unwrap().is_empty() || case["history"].is_array());
    // An admin cannot release it; security can.
    let (st, _) = json_of(
        app.post(
            &format!("/v1/security/cases/{cid}/release"),
            &app.admin_key,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = json_of(
        app.post(
            &format!("/v1/security/cases/{cid}/release"),
            &sec,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200);
    let (st, _) = json_of(app.get(&path, &app.app_key).await).await;
    assert_eq!(st, 200);
    let (st, v) = json_of(
        app.post(
            &format!("/v1/security/cases/{cid}/release"),
            &sec,
            json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("case_released"))
    );
}

async fn cessation_refuses_collection_and_leaves_only_retained_data(app: TestApp) {
    let (st, v) = json_of(app.post("/v1/cessation", &app.app_key, json!({})).await).await;
    assert_eq!(st, 403, "{v}");
    let now = app.vault.now().unix_timestamp();
    let (st, v) = json_of(
        app.post("/v1/cessation", &app.admin_key, json!({"effective_at": -5}))
            .await,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("cessation_time_invalid"))
    );
    // Effective in a week: collection stops now, everyone is told now, nothing is erased yet.
    let (st, v) = json_of(
        app.post(
            "/v1/cessation",
            &app.admin_key,
            json!({"effective_at": now + 7 * 86_400}),
        )
        .await,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["state"], "running", "{v}");
    assert!(v["active_left"].as_u64().unwrap() >= 400, "{v}");
    // The background run (and serve's minute tick) notify now but erase nothing before the date.
    let op = pivault_core::Principal::operator("test", app.vault.policy());
    let v = serde_json::to_value(app.vault.cessation_resume(&op).await.unwrap()).unwrap();
    assert_eq!(v["state"], "running", "{v}");
    assert!(
        v["active_left"].as_u64().unwrap() >= 400,
        "nothing erased early: {v}"
    );
    // No new consent is taken for a service that is ending; a withdrawal still is.
    let s = app.subject_of(&users()[1]["account_id"]).await;
    let consent = |action: &str| {
        let (app, path) = (&app, format!("/v1/subjects/{s}/consents"));
        let body = json!({"purpose": "marketing", "action": action});
        async move { json_of(app.post(&path, &app.app_key, body).await).await }
    };
    let (st, v) = consent("grant").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("service_ceased"))
    );
    assert_eq!(consent("withdraw").await.0, 201);
    app.clock.advance(7 * 86_400 + 1);
    let v = serde_json::to_value(app.vault.cessation_tick().await.unwrap().unwrap()).unwrap();
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["active_left"], json!(0), "{v}");
    assert_eq!(v["erase_failed"], json!(0), "{v}");
    let (st, v) = json_of(app.post("/v1/cessation", &app.admin_key, json!({})).await).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("cessation_already_started"))
    );
    // Collection is refused.
    let (st, v) = json_of(
        app.post(
            "/v1/subjects",
            &app.app_key,
            json!({"kind": "account", "purpose": "service", "fields": [
                {"category": "user.account.id", "value": "u999002"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("service_ceased"))
    );
    // Only data under a legal retention period is left, restricted.
    let open = column(
        &app.store,
        "SELECT COUNT(*) FROM fields WHERE restricted_until IS NULL",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(open, vec!["0".to_string()], "no unrestricted field is left");
    let cats = column(&app.store, "SELECT DISTINCT category FROM fields", &[])
        .await
        .unwrap();
    for c in &cats {
        let rule = app.vault.policy().category(c).unwrap();
        assert!(
            rule.retention
                .as_ref()
                .is_some_and(|r| r.legal_minimum.is_some()),
            "{c} is kept without a legal minimum"
        );
    }
    // Everyone with contact data was told (through the outbox, before their data went), and
    // the announcement is up.
    let delivered = column(
        &app.store,
        "SELECT COUNT(*) FROM outbox WHERE kind = 'cessation_notice' AND state = 'delivered'",
        &[],
    )
    .await
    .unwrap();
    assert!(delivered[0].parse::<i64>().unwrap() >= 400, "{delivered:?}");
    let mailed = app
        .mail
        .messages()
        .iter()
        .filter(|m| m.text_body().unwrap_or_default().contains("§8.6"))
        .count();
    assert!(mailed >= 400, "{mailed} cessation mails");
    let r = app
        .http
        .get(format!("{}/v1/announcements", app.base))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "cessation"));
}

async fn two_instances_deliver_each_notice_once(app: TestApp) {
    let sec = security_key(&app).await;
    let from = app.vault.now().unix_timestamp();
    let id = open_incident(&app, &sec, from - 60, from).await;
    let (s, v) = json_of(
        app.post(
            &format!("/v1/incidents/{id}/scope"),
            &sec,
            json!({"from": 0, "to": from, "store": true, "categories": ["user.contact.email"]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let affected = v["affected"].as_u64().unwrap();
    assert!(affected >= 300, "{affected}");
    json_of(
        app.post(&format!("/v1/incidents/{id}/notify"), &sec, json!({}))
            .await,
    )
    .await;
    // A second vault (another lease holder) on the same database, same transport.
    let mail2 = pivault_notify::testing::SmtpSink::start().await;
    let other = std::sync::Arc::new(
        pivault_core::Vault::new(
            app.store.clone(),
            pivault_testkit::keys::key_ring_from_file(&app.dir.path().join("master.key")),
            pivault_testkit::data::load_policy(),
            app.clock.clone(),
        )
        .await
        .unwrap()
        .with_code_sender(std::sync::Arc::new(pivault_server::dsr::NotifySender::new(
            pivault_notify::Notifiers::new(
                Some(
                    pivault_notify::SmtpNotifier::new(
                        pivault_notify::SmtpConfig::from_url(&mail2.url()).unwrap(),
                    )
                    .unwrap(),
                ),
                None,
            ),
        ))),
    );
    let before = app.mail.messages().len();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let v = if i % 2 == 0 {
            std::sync::Arc::clone(&app.vault)
        } else {
            std::sync::Arc::clone(&other)
        };
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let r = v.deliver_outbox(40).await.unwrap();
                if r.processed == 0 {
                    return n;
                }
                n += r.delivered;
            }
        }));
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await.unwrap();
    }
    assert_eq!(delivered, affected);
    let mails: Vec<_> = app
        .mail
        .messages()
        .into_iter()
        .skip(before)
        .chain(mail2.messages())
        .collect();
    assert_eq!(
        mails.len() as u64,
        affected,
        "each notice sent once, by one instance"
    );
    // One notice per subject (two accounts of the data set share an address, so count the
    // messages' ids, not the addresses).
    let ids: BTreeSet<String> = mails.iter().filter_map(|m| m.message_id()).collect();
    assert_eq!(ids.len() as u64, affected, "nobody told twice");
    assert!(
        !mail2.messages().is_empty(),
        "the second instance took part"
    );
}

async fn a_cross_border_transfer_tells_the_subject_once_per_arrangement(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| u["guardian_name"].is_empty())
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let r = app
        .post(
            &format!("/v1/subjects/{s}/consents"),
            &app.app_key,
            json!({"purpose": "cross_border_transfer", "action": "grant", "recipient": "overseas-support"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let body = json!({"action": "cross_border_transfer", "purpose": "cross_border_transfer",
        "recipient": "overseas-support", "categories": ["user.name", "user.contact.email"]});
    for _ in 0..2 {
        let (st, v) = json_of(
            app.post(
                &format!("/v1/subjects/{s}/disclosures"),
                &app.app_key,
                body.clone(),
            )
            .await,
        )
        .await;
        assert_eq!(st, 201, "{v}");
    }
    let before = app.mail.messages().len();
    let rep = app.vault.deliver_outbox(100).await.unwrap();
    assert_eq!(
        rep.delivered, 1,
        "one notice for two transfers of one arrangement: {rep:?}"
    );
    let mails: Vec<_> = app.mail.messages().into_iter().skip(before).collect();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_to[0], u["email"]);
    let text = mails[0].text_body().unwrap();
    // It names the foreign recipient, the purpose and the categories in the person's language.
    let chinese = text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    let expected = if chinese {
        ["新加坡区域客服中心", "跨境传输", "姓名"]
    } else {
        [
            "Regional support desk, Singapore",
            "Cross-border transfer",
            "Name",
        ]
    };
    for e in expected {
        assert!(text.contains(e), "names {e}: {text}");
    }
    if chinese {
        assert!(!text.contains("Regional support desk"), "{text}");
    }
}

async fn people_without_email_or_mobile_get_a_push_or_a_letter(app: TestApp) {
    let sec = security_key(&app).await;
    let mut ids = Vec::new();
    // The device id is collected for security (policy §2.2.4), the address for the service.
    for (purpose, fields) in [
        (
            "security",
            json!([
            {"category": "user.account.id", "value": "u999101"},
            {"category": "user.device.id", "value": "0f98fa962c67ee99"}]),
        ),
        (
            "service",
            json!([
            {"category": "user.account.id", "value": "u999102"},
            {"category": "user.name", "value": "周敏"},
            {"category": "user.contact.address", "value": "上海市浦东新区世纪大道 100 号"}]),
        ),
    ] {
        let (s, v) = json_of(
            app.post(
                "/v1/subjects",
                &app.app_key,
                json!({"kind": "account", "purpose": purpose, "fields": fields}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let from = app.vault.now().unix_timestamp();
    for s in &ids {
        let r = app
            .get(
                &format!("/v1/subjects/{s}/fields?purpose=service"),
                &app.app_key,
            )
            .await;
        assert_eq!(r.status().as_u16(), 200);
    }
    let id = open_incident(&app, &sec, from - 10, from).await;
    json_of(
        app.post(
            &format!("/v1/incidents/{id}/scope"),
            &sec,
            json!({"from": from, "to": from, "principals": ["test-app"]}),
        )
        .await,
    )
    .await;
    json_of(
        app.post(&format!("/v1/incidents/{id}/notify"), &sec, json!({}))
            .await,
    )
    .await;
    let rep = app.vault.deliver_outbox(100).await.unwrap();
    assert_eq!((rep.delivered, rep.letters), (1, 1), "{rep:?}");
    let pushes = app.push.requests();
    assert_eq!(pushes.len(), 1);
    assert_eq!(pushes[0].body["to"], "0f98fa962c67ee99");
    let op = pivault_core::Principal::operator("test", app.vault.policy());
    let letters = app.vault.print_letters(&op, 100).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0].address.contains("世纪大道"));
    assert!(letters[0].body.contains(&id));
    let html = pivault_notify::letter_batch_html(
        "letters",
        &letters
            .iter()
            .map(|l| pivault_notify::Letter {
                reference: l.reference.clone(),
                name: l.name.clone(),
                address: l.address.clone(),
                subject: l.subject.clone(),
                body: l.body.clone(),
            })
            .collect::<Vec<_>>(),
    );
    assert!(html.contains("周敏"));
    // Printed once.
    assert!(app.vault.print_letters(&op, 100).await.unwrap().is_empty());
}
