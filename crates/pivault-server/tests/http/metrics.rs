//! Issue 11: `/metrics` (Deliver 5) and defect 5 (one bad ciphertext no longer blocks the
//! whole subject).
//!
//! - An import, reads, lookups, a denied read, a provision, a data subject request (file,
//!   verify, approve, run, download) and a sweep run with the log captured; then every
//!   required metric family is on `/metrics` with sane values, and neither `/metrics` nor the
//!   logs hold a value of the imported slice (names, mobiles, emails, ID numbers, addresses,
//!   account ids); `/metrics` holds no subject id either (route templates, not paths).
//! - Two fields' ciphertexts swapped with SQL: the read answers 200 with the other fields and
//!   lists both as `field_integrity_failed`; each failure is audited and counted; a provision
//!   and the access package of a request do the same; `verify_fields` counts them.
use super::dsr::{as_requester, file, mailed_code, verify};
use pivault_core::import::{import_dir, NoProgress};
use pivault_testkit::app::{users, SLICE_USERS};
use pivault_testkit::TestApp;
use serde_json::{json, Value};

on_both_backends!(
    metrics_count_every_family_and_hold_no_pi,
    a_swapped_ciphertext_fails_only_its_field_everywhere,
);

async fn scrape(app: &TestApp) -> String {
    let r = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    r.text().await.unwrap()
}

/// The value of the series written exactly as `series` (name and labels), if present.
fn value(m: &str, series: &str) -> Option<f64> {
    m.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn must(m: &str, series: &str) -> f64 {
    value(m, series).unwrap_or_else(|| panic!("{series} missing from /metrics:\n{m}"))
}

/// Files an access request by email, verifies it with the mailed code and approves and runs
/// it; returns the request id and token.
async fn access_request(app: &TestApp, email: &str) -> (String, String) {
    let reqs = file(app, json!({ "kind": "access", "email": email })).await;
    assert_eq!(reqs.len(), 1);
    let (id, token) = reqs[0].clone();
    let (code, _) = mailed_code(app, &id).await;
    assert_eq!(verify(app, &id, &token, &code).await.status(), 200);
    let r = app
        .post(
            &format!("/v1/dsr/{id}/approve?run=true"),
            &app.admin_key,
            json!({}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "completed", "{v}");
    (id, token)
}

async fn metrics_count_every_family_and_hold_no_pi(app: TestApp) {
    let logs = pivault_testkit::captured_logs();
    // An import into the served vault: the app's slice and 20 accounts more (the slice's are
    // there already, so they are skipped).
    let tmp = tempfile::tempdir().unwrap();
    let slice = pivault_testkit::write_slice(
        &tmp.path().join("slice"),
        SLICE_USERS + 20,
        &["consent_events.csv", "orders.csv"],
    );
    let rep = import_dir(&app.vault, &slice, &tmp.path().join("rejects"), &NoProgress)
        .await
        .unwrap();
    let users_rep = rep.files.iter().find(|f| f.file == "users.csv").unwrap();
    assert_eq!(
        (users_rep.imported, users_rep.skipped),
        (20, SLICE_USERS as u64)
    );
    let all = pivault_testkit::read_csv(&slice.join("users.csv"));

    // reads and lookups (by account id, then by mobile), old and new accounts
    let mut subjects = Vec::new();
    for u in all
        .iter()
        .take(4)
        .chain(all.iter().skip(SLICE_USERS).take(4))
    {
        let s = app.subject_of(&u["account_id"]).await;
        let r = app
            .post(
                "/v1/lookup",
                &app.app_key,
                json!({"by": "mobile", "value": u["mobile"], "purpose": "service"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let (st, v) = app
            .read(&s, "service", "user.name,user.contact.mobile")
            .await;
        assert_eq!(st, 200, "{v}");
        subjects.push(s);
    }
    // the same subject twice: the second read finds its DEK in the cache
    let (st, _) = app.read(&subjects[0], "service", "user.name").await;
    assert_eq!(st, 200);
    // a read for a purpose the subject did not consent to, or that does not cover the category
    let (st, denied) = app
        .read(&subjects[0], "marketing", "user.government_id.id_card")
        .await;
    assert_eq!(st, 403, "{denied}");
    let deny_reason = denied["error"]["reason"].as_str().unwrap().to_string();

    // a data subject request end to end, and its download
    let u = &all[5];
    let (id, token) = access_request(&app, u["email"].trim()).await;
    let r = as_requester(&app, &format!("/v1/dsr/{id}/result"), &token).await;
    assert_eq!(r.status(), 200);
    subjects.push(app.subject_of(&u["account_id"]).await);
    // the retention sweep (at the test clock: orders paid more than three years ago)
    let swept = app.vault.retention_sweep("test:sweep").await.unwrap();

    let m = scrape(&app).await;
    // requests by route template and status, never by the path sent
    let reads = must(
        &m,
        r#"pivault_http_requests_total{method="GET",route="/v1/subjects/{id}/fields",status="200"}"#,
    );
    assert!(reads >= 9.0, "{reads}");
    assert!(
        must(
            &m,
            r#"pivault_http_requests_total{method="GET",route="/v1/subjects/{id}/fields",status="403"}"#
        ) >= 1.0
    );
    assert!(
        must(
            &m,
            r#"pivault_http_requests_total{method="POST",route="/v1/lookup",status="200"}"#
        ) >= 17.0
    );
    assert!(
        must(
            &m,
            r#"pivault_http_requests_total{method="POST",route="/v1/dsr/{id}/approve",status="200"}"#
        ) >= 1.0
    );
    assert!(
        must(
            &m,
            r#"pivault_http_request_duration_seconds_count{method="GET",route="/v1/subjects/{id}/fields"}"#
        ) >= reads + 1.0
    );
    assert!(m.contains(
        r#"pivault_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/subjects/{id}/fields"}"#
    ) || m.contains(
        r#"pivault_http_request_duration_seconds_bucket{method="GET",route="/v1/subjects/{id}/fields",le="+Inf"}"#
    ), "{m}");
    // decisions by action, outcome and reason code
    assert!(
        must(
            &m,
            r#"pivault_decisions_total{action="use",outcome="allow",reason="allowed"}"#
        ) >= 9.0
    );
    assert!(
        must(
            &m,
            &format!(
                r#"pivault_decisions_total{{action="use",outcome="deny",reason="{deny_reason}"}}"#
            )
        ) >= 1.0
    );
    // the audit group commit: latency and batch sizes
    assert!(must(&m, "pivault_audit_append_seconds_count") >= 10.0);
    assert!(must(&m, "pivault_audit_commit_seconds_count") >= 1.0);
    let batches = must(&m, "pivault_audit_batch_entries_count");
    assert!(batches >= 1.0 && must(&m, "pivault_audit_batch_entries_sum") >= batches);
    // the DEK cache
    assert!(must(&m, r#"pivault_dek_cache_lookups_total{result="hit"}"#) >= 1.0);
    assert!(must(&m, r#"pivault_dek_cache_lookups_total{result="miss"}"#) >= 1.0);
    // the queue by state, read at scrape time; the older gauges keep their names
    assert_eq!(must(&m, r#"pivault_dsr_requests{state="completed"}"#), 1.0);
    assert_eq!(must(&m, r#"pivault_dsr_requests{state="failed"}"#), 0.0);
    // import progress by file, sweep progress
    let slice_n = SLICE_USERS as f64;
    for (result, n) in [
        ("processed", slice_n + 20.0),
        ("imported", 20.0),
        ("skipped", slice_n),
        ("rejected", 0.0),
    ] {
        assert_eq!(
            must(
                &m,
                &format!(r#"pivault_import_rows_total{{file="users.csv",result="{result}"}}"#)
            ),
            n,
            "{result}"
        );
    }
    assert!(
        must(
            &m,
            r#"pivault_import_rows_total{file="orders.csv",result="processed"}"#
        ) > 0.0
    );
    #[allow(clippy::cast_precision_loss)]
    let swept = swept as f64;
    assert!(swept > 0.0);
    assert_eq!(must(&m, "pivault_sweep_rows_total"), swept);

    // no PI in the metrics or the logs; no subject id in the metrics. The logs are those of
    // every test of this binary so far (hundreds of megabytes at TRACE): one pass for all
    // values, not one search per value.
    let mut needles: Vec<(String, &str, &str)> = Vec::new();
    for u in &all {
        for col in [
            "name",
            "mobile",
            "email",
            "id_card_number",
            "address",
            "account_id",
        ] {
            let v = u[col].trim();
            if v.chars().count() < 2 {
                continue;
            }
            assert!(!m.contains(v), "{col} of {} in /metrics", u["account_id"]);
            needles.push((v.to_string(), col, u["account_id"].as_str()));
        }
    }
    let values: Vec<&str> = needles.iter().map(|(v, _, _)| v.as_str()).collect();
    if let Some(i) = logs.find_any(&values) {
        let (_, col, account) = &needles[i];
        panic!("{col} of {account} in the logs");
    }
    for s in &subjects {
        assert!(!m.contains(s.as_str()), "a subject id in /metrics");
    }
    assert!(
        !m.contains(&id) && !m.contains(&token),
        "a request id or token in /metrics"
    );
}

fn integrity_failures(m: &str, door: &str, category: &str) -> f64 {
    value(
        m,
        &format!(
            r#"pivault_field_integrity_failures_total{{door="{door}",category="{category}"}}"#
        ),
    )
    .unwrap_or(0.0)
}

async fn a_swapped_ciphertext_fails_only_its_field_everywhere(app: TestApp) {
    let u = &users()[1];
    let s = app.subject_of(&u["account_id"]).await;
    let (st, before) = app.read(&s, "service", "").await;
    assert_eq!(st, 200);
    assert_eq!(before["failed"], json!([]));
    let released = before["fields"].as_array().unwrap().len();
    let m0 = scrape(&app).await;
    assert_eq!(integrity_failures(&m0, "read", "user.name"), 0.0);
    let v0 = app.vault.verify_fields(&|_, _| {}).await.unwrap();
    assert!(v0.ok() && v0.checked > 1000, "{v0:?}");

    pivault_store::testing::swap_ciphertexts(
        &app.store,
        &s,
        ("profile", "name"),
        ("profile", "mobile"),
    )
    .await
    .unwrap();

    // the read: 200, the fields that open, and the two that do not, by place and code only
    let (st, v) = app.read(&s, "service", "").await;
    assert_eq!(st, 200, "{v}");
    let fields = v["fields"].as_array().unwrap();
    assert_eq!(fields.len(), released - 2);
    let email = fields.iter().find(|f| f["name"] == "email").unwrap();
    assert_eq!(email["value"], u["email"].trim().to_lowercase());
    assert!(fields
        .iter()
        .filter(|f| f["record"] == "profile")
        .all(|f| f["name"] != "name" && f["name"] != "mobile"));
    let mut failed: Vec<(String, String)> = v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["code"], "field_integrity_failed");
            assert_eq!(f["record"], "profile");
            assert!(f.get("value").is_none());
            (
                f["name"].as_str().unwrap().into(),
                f["category"].as_str().unwrap().into(),
            )
        })
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            ("mobile".to_string(), "user.contact.mobile".to_string()),
            ("name".to_string(), "user.name".to_string())
        ]
    );
    // neither value is released under the other's place in the profile (the two ciphertexts
    // were swapped; other records, e.g. an order's delivery contact, may hold the same values)
    assert!(fields
        .iter()
        .filter(|f| f["record"] == "profile")
        .all(
            |f| f["value"] != u["name"].as_str() && !f["value"].to_string().contains(&u["mobile"])
        ));

    // audited, one entry per failed field, without a value
    let recs = app.store.audit_for_subject(&s, 50).await.unwrap();
    let fails: Vec<_> = recs
        .iter()
        .filter(|r| r.action == "field.integrity_failed")
        .collect();
    assert_eq!(fails.len(), 2, "{recs:?}");
    for r in &fails {
        let d = r.detail.clone().unwrap_or_default();
        assert!(d.starts_with("door=read field=profile/"), "{d}");
        assert!(d.ends_with("code=field_integrity_failed"), "{d}");
        assert_eq!(r.outcome, "failed");
        assert!(!d.contains(&u["name"]) && !d.contains(&u["mobile"]));
    }
    // counted
    let m1 = scrape(&app).await;
    assert_eq!(integrity_failures(&m1, "read", "user.name"), 1.0);
    assert_eq!(integrity_failures(&m1, "read", "user.contact.mobile"), 1.0);

    // a provision: 201 with the field that opens, the failed one listed, audited and counted
    let r = app
        .post(
            &format!("/v1/subjects/{s}/disclosures"),
            &app.app_key,
            json!({"action": "disclose", "purpose": "legal_obligation",
                   "recipient": "public-security-bureau",
                   "categories": ["user.name", "user.government_id.id_card"],
                   "exception": {"kind": "criminal_investigation",
                                 "reference": "(2026)京0105刑初123号", "authorized_by": "Officer Li"}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let p: Value = r.json().await.unwrap();
    // the ID number opens; the profile's name does not (names held in other records, e.g. an
    // order's delivery contact, still open)
    let pf = p["fields"].as_array().unwrap();
    assert!(pf
        .iter()
        .any(|f| f["value"] == u["id_card_number"].to_uppercase()));
    assert!(pf
        .iter()
        .all(|f| !(f["record"] == "profile" && f["name"] == "name")));
    assert_eq!(p["failed"][0]["name"], "name");
    assert_eq!(p["failed"][0]["code"], "field_integrity_failed");
    let m2 = scrape(&app).await;
    assert_eq!(integrity_failures(&m2, "provision", "user.name"), 1.0);
    let recs = app.store.audit_for_subject(&s, 50).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "field.integrity_failed"
        && r.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("door=provision field=profile/name"))));

    // the access package of a request: completed, with the failed fields listed
    let (id, token) = access_request(&app, u["email"].trim()).await;
    let r = as_requester(&app, &format!("/v1/dsr/{id}/result"), &token).await;
    assert_eq!(r.status(), 200);
    let raw = r.text().await.unwrap();
    let pkg: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        pkg["failed"].as_array().unwrap().len(),
        2,
        "{}",
        pkg["failed"]
    );
    // the failed entries carry place and code, never a value (the person's name and mobile
    // still appear where other records, e.g. orders, hold them and open)
    assert!(pkg["failed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f.get("value").is_none() && f["record"] == "profile"));
    let m3 = scrape(&app).await;
    assert_eq!(integrity_failures(&m3, "dsr_package", "user.name"), 1.0);
    let r = as_requester(&app, &format!("/v1/dsr/{id}/result?format=csv"), &token).await;
    let csv_text = r.text().await.unwrap();
    assert_eq!(
        csv_text
            .lines()
            .filter(|l| l.starts_with("failed,profile,"))
            .count(),
        2,
        "{csv_text}"
    );

    // the whole-vault check counts exactly the two
    let v1 = app.vault.verify_fields(&|_, _| {}).await.unwrap();
    assert_eq!((v1.failed, v1.checked), (2, v0.checked), "{v1:?}");
    let mut named: Vec<&str> = v1.first_failures.iter().map(|(_, f)| f.as_str()).collect();
    named.sort_unstable();
    assert_eq!(named, vec!["profile/mobile", "profile/name"]);
    assert!(v1.first_failures.iter().all(|(x, _)| *x == s));
}
