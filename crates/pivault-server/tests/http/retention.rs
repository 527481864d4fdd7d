//! Issue 12: the retention lifecycle over the imported slice (its `access.log` lines and
//! orders), on a fixed clock moved forward: web logs anonymized after six months, orders kept
//! through an erasure for three years and anonymized after, legal holds, dry runs, the
//! k-anonymity gate of exports, and the retention report. Both backends.

use std::collections::HashMap;

use pivault_core::{CoreError, SweepOptions, SweepReport};
use pivault_domain::weblog::{anonymize, parse_combined};
use pivault_testkit::app::{orders, users, weblog_lines};
use pivault_testkit::TestApp;
use serde_json::{json, Value};

on_both_backends!(
    web_logs_past_six_months_are_anonymized_and_their_ips_and_accounts_leave_the_database,
    orders_survive_an_erasure_for_three_years_then_are_anonymized,
    a_legal_hold_stops_the_sweep_and_the_erasure_until_released,
    a_category_hold_keeps_every_record_of_it,
    an_anonymized_export_below_k_is_refused_with_a_stable_code,
    the_retention_report_counts_held_due_and_on_hold,
    deidentification_is_keyed_reversible_by_the_key_holder_and_reported_as_pi,
    a_closed_account_loses_its_account_data_after_thirty_days,
);

const DAY: i64 = 86_400;
const WEBLOG: &str = "user.behavior.web_log";

async fn sweep(app: &TestApp, dry_run: bool) -> SweepReport {
    let opts = SweepOptions {
        dry_run,
        batch: 97, // not a divisor of anything: batches end mid-subject
        actor: "test:sweep".into(),
        limit: None,
        pause_ms: 0,
    };
    app.vault.sweep(&opts, &|_| {}).await.unwrap()
}

fn acted(r: &SweepReport, cat: &str, action: &str) -> u64 {
    r.acted
        .get(cat)
        .and_then(|m| m.get(action))
        .copied()
        .unwrap_or(0)
}

/// Audit rows with `action`, as (subject, detail).
async fn audited(app: &TestApp, action: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = app.store.audit_page(after, 5_000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.record.seq;
        out.extend(
            page.into_iter()
                .filter(|r| r.record.action == action)
                .map(|r| (r.record.subject_id, r.record.detail.unwrap_or_default())),
        );
    }
    out
}

async fn weblog_records(app: &TestApp) -> i64 {
    let lines = app
        .vault
        .retention_report(&admin(app), 30 * DAY)
        .await
        .unwrap();
    lines
        .iter()
        .find(|l| l.category == WEBLOG)
        .map_or(0, |l| l.records)
}

fn admin(app: &TestApp) -> pivault_core::Principal {
    pivault_core::Principal::operator("test", app.vault.policy())
}

pub async fn web_logs_past_six_months_are_anonymized_and_their_ips_and_accounts_leave_the_database(
    app: TestApp,
) {
    let lines = weblog_lines();
    let n = lines.len();
    assert!(n > 1_000, "the slice holds the accounts' web-log lines");
    assert_eq!(weblog_records(&app).await, n as i64);

    // Not yet due: the lines are from the month before the test clock.
    let r = sweep(&app, false).await;
    assert_eq!(acted(&r, WEBLOG, "anonymize"), 0);

    // Six months and a month later, a dry run lists every line and changes nothing.
    app.clock.advance(214 * DAY);
    let head = app.store.audit_head().await.unwrap();
    let dry = sweep(&app, true).await;
    assert!(dry.dry_run);
    assert_eq!(acted(&dry, WEBLOG, "anonymize"), n as u64);
    assert_eq!(
        app.store.audit_head().await.unwrap(),
        head,
        "a dry run writes no audit entry"
    );
    assert_eq!(weblog_records(&app).await, n as i64);
    assert_eq!(app.store.anon_counts().await.unwrap().0, 0);

    let r = sweep(&app, false).await;
    assert_eq!(acted(&r, WEBLOG, "anonymize"), n as u64);
    assert_eq!(weblog_records(&app).await, 0);

    // Exactly the transformation: /24, browser family and major, no PI in the path, the hour.
    let mut want: HashMap<String, usize> = HashMap::new();
    for l in &lines {
        let a = anonymize(&parse_combined(l).unwrap());
        *want
            .entry(format!(
                "{}|{}|{}|{}|{}|{}|{}|{:?}",
                a.hour, a.client_net, a.method, a.path, a.status, a.bytes, a.ua_family, a.ua_major
            ))
            .or_default() += 1;
    }
    let mut got: HashMap<String, usize> = HashMap::new();
    let mut after = 0;
    loop {
        let page = app.store.anon_weblog_page(after, 5_000).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        after = *last;
        for (_, a) in page {
            assert_eq!(a.hour % 3_600, 0);
            assert!(a.client_net.ends_with(".0/24") || a.client_net.ends_with("::/48"));
            *got.entry(format!(
                "{}|{}|{}|{}|{}|{}|{}|{:?}",
                a.hour,
                a.client_net,
                a.method,
                a.path,
                a.status,
                a.bytes,
                a.ua_family,
                a.ua_major.map(|m| u32::try_from(m).unwrap())
            ))
            .or_default() += 1;
        }
    }
    assert_eq!(got, want);

    // A grep of the database finds none of the lines' IP addresses, account ids, or the PI
    // people typed into the search box.
    let bytes = app.db_bytes().await;
    let text = String::from_utf8_lossy(&bytes);
    // Every run of digits and dots, and every run of letters and digits, in the whole file:
    // an address or an account id stored anywhere would be one of them.
    let numeric: std::collections::HashSet<&str> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .collect();
    let words: std::collections::HashSet<&str> =
        text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for l in &lines {
        let mut parts = l.split(' ');
        let ip = parts.next().unwrap();
        let account = parts.nth(1).unwrap();
        // An address ending in .0 is its own /24 network's name and is not counted.
        assert!(
            ip.ends_with(".0") || !numeric.contains(ip),
            "an original IP address is still stored"
        );
        assert!(
            !words.contains(account),
            "an account id is still stored in clear"
        );
        if let Some(q) = l.split("/search?q=").nth(1) {
            let q = q.split(' ').next().unwrap();
            // PI people typed (a mobile, an email, an ID number), not the encoded 云服务器.
            if !q.contains('%')
                && (q.contains('@') || q.bytes().filter(u8::is_ascii_digit).count() >= 11)
            {
                assert!(!text.contains(q), "a searched identifier is still stored");
            }
        }
    }

    // One audit entry per line, never with a value.
    let audit = audited(&app, "retention.anonymize").await;
    let weblog_audit: Vec<_> = audit
        .iter()
        .filter(|(_, d)| d.starts_with("record=weblog:"))
        .collect();
    assert_eq!(weblog_audit.len(), n);
}

pub async fn orders_survive_an_erasure_for_three_years_then_are_anonymized(app: TestApp) {
    let os = orders();
    let u = users()
        .into_iter()
        .find(|u| {
            os.iter()
                .filter(|o| o["account_id"] == u["account_id"])
                .filter(|o| o["paid_at"].as_str() > "2025-06-01")
                .count()
                >= 1
        })
        .unwrap();
    let mine: Vec<_> = os
        .iter()
        .filter(|o| o["account_id"] == u["account_id"] && o["paid_at"].as_str() > "2023-12-01")
        .collect();
    let s = app.subject_of(&u["account_id"]).await;
    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=subject_request"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    let kept = app.store.fields(&s).await.unwrap();
    let kept_orders: std::collections::BTreeSet<_> = kept
        .iter()
        .filter(|f| f.record.starts_with("order:"))
        .map(|f| f.record.clone())
        .collect();
    assert_eq!(
        kept_orders.len(),
        mine.len(),
        "every order younger than 3 years is kept"
    );
    assert!(kept.iter().all(|f| f.restricted_until.is_some()));

    // A sweep now leaves them (it may act on other subjects' older orders).
    sweep(&app, false).await;
    assert_eq!(app.store.fields(&s).await.unwrap().len(), kept.len());

    // A year later the oldest of them may be due; four years later all are gone.
    let before = app.store.anon_counts().await.unwrap().1;
    app.clock.advance(4 * 366 * DAY);
    let r = sweep(&app, false).await;
    assert!(app.store.fields(&s).await.unwrap().is_empty());
    assert!(acted(&r, "user.transaction.order", "anonymize") >= mine.len() as u64);
    let after = app.store.anon_counts().await.unwrap().1;
    assert!(after - before >= mine.len() as i64);
    // Their anonymized rows keep amount, product and month, and nothing links them to anyone.
    let mut rows = Vec::new();
    let mut a = 0;
    loop {
        let page = app.store.anon_orders_page(a, 5_000).await.unwrap();
        let Some((last, _)) = page.last() else { break };
        a = *last;
        rows.extend(page.into_iter().map(|(_, r)| r));
    }
    for o in &mine {
        assert!(
            rows.iter().any(|r| r.amount == o["amount_cny"]
                && r.product == o["product"]
                && r.month == o["paid_at"][..7]),
            "an erased subject's order is kept anonymized"
        );
    }
    let audit = audited(&app, "retention.anonymize").await;
    for o in &mine {
        let rec = format!("record=order:{} ", o["order_id"]);
        assert_eq!(
            audit.iter().filter(|(_, d)| d.starts_with(&rec)).count(),
            1,
            "each order's anonymization is audited once"
        );
    }
}

pub async fn a_legal_hold_stops_the_sweep_and_the_erasure_until_released(app: TestApp) {
    let os = orders();
    let u = users()
        .into_iter()
        .find(|u| os.iter().any(|o| o["account_id"] == u["account_id"]))
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let before = app.store.fields(&s).await.unwrap();

    // Only admin or dpo may set a hold.
    let body = json!({"subject_id": s, "reason": "litigation 2026 civil case", "reference": "CASE-2026/114"});
    let r = app.post("/v1/holds", &app.app_key, body.clone()).await;
    assert_eq!(r.status(), 403);
    let r = app.post("/v1/holds", &app.admin_key, body).await;
    assert_eq!(r.status(), 201);
    let hold: Value = r.json().await.unwrap();
    let id = hold["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/v1/holds",
            &app.admin_key,
            json!({"reason": "x", "reference": "R1"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "hold_target_invalid");
    // The reference goes into the audit log, which erasure never reaches: a mobile or ID
    // number there is refused, and the error does not echo it.
    let grouped = format!(
        "CASE_{}_{}_{}",
        &u["mobile"][..3],
        &u["mobile"][3..7],
        &u["mobile"][7..]
    );
    for reference in [
        u["mobile"].as_str(),
        u["id_card_number"].as_str(),
        grouped.as_str(),
    ] {
        let r = app
            .post(
                "/v1/holds",
                &app.admin_key,
                json!({"subject_id": s, "reason": "case", "reference": format!("CASE-{reference}")}),
            )
            .await;
        assert_eq!(r.status(), 422);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("text_holds_pi") && !text.contains(reference),
            "{text}"
        );
    }

    // An erasure goes through but deletes nothing the hold covers.
    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=subject_request"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    let receipt: Value = r.json().await.unwrap();
    assert!(receipt["retained"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["basis"]
            .as_str()
            .unwrap()
            .starts_with("legal hold CASE-2026/114: kept until the hold is released")));
    let held = app.store.fields(&s).await.unwrap();
    assert_eq!(
        held.len(),
        before.len(),
        "a hold keeps every field of the subject"
    );
    // Kept for the hold, but erased: the account id is on the suppression list all the same.
    crate::decisions::assert_account_id_refused(&app, &u["account_id"]).await;

    // Years later the sweep still leaves them, and says why.
    app.clock.advance(5 * 366 * DAY);
    let r = sweep(&app, false).await;
    assert_eq!(app.store.fields(&s).await.unwrap().len(), before.len());
    assert!(r
        .held
        .values()
        .any(|m| m.contains_key("legal_hold:subject")));

    // Released: the next sweep acts.
    let r = app
        .post(
            &format!("/v1/holds/{id}/release"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post(
            &format!("/v1/holds/{id}/release"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 409);
    // A dry run forecasts exactly what the real sweep then does (records kept after the
    // erasure included), and changes nothing.
    let dry = sweep(&app, true).await;
    assert_eq!(app.store.fields(&s).await.unwrap().len(), before.len());
    let real = sweep(&app, false).await;
    assert_eq!(dry.acted, real.acted);
    assert!(app.store.fields(&s).await.unwrap().is_empty());

    let set = audited(&app, "hold.set").await;
    assert_eq!(set.len(), 1);
    assert!(set[0].1.contains(&id) && !set[0].1.contains("litigation"));
    assert_eq!(audited(&app, "hold.release").await.len(), 1);
}

pub async fn a_category_hold_keeps_every_record_of_it(app: TestApp) {
    let n = weblog_lines().len() as i64;
    let r = app
        .post(
            "/v1/holds",
            &app.admin_key,
            json!({"category": WEBLOG, "reason": "regulator inquiry", "reference": "CAC-2026-7"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    app.clock.advance(214 * DAY);
    let r = sweep(&app, false).await;
    assert_eq!(acted(&r, WEBLOG, "anonymize"), 0);
    assert_eq!(
        r.held
            .get(WEBLOG)
            .and_then(|m| m.get("legal_hold:category"))
            .copied(),
        Some(n as u64)
    );
    assert_eq!(weblog_records(&app).await, n);
    let r = app.get("/v1/holds", &app.admin_key).await;
    let list: Value = r.json().await.unwrap();
    let id = list["holds"][0]["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/v1/holds/{id}/release"),
        &app.admin_key,
        json!({}),
    )
    .await;
    let r = sweep(&app, false).await;
    assert_eq!(acted(&r, WEBLOG, "anonymize"), n as u64);
}

pub async fn an_anonymized_export_below_k_is_refused_with_a_stable_code(app: TestApp) {
    app.clock.advance(214 * DAY);
    sweep(&app, false).await;
    // Web logs: /24 networks are nearly unique per person, so k over the policy's
    // quasi-identifiers is below 5 and the export is refused.
    let k = app
        .vault
        .anon_k(pivault_domain::policy::AnonymizedSet::Weblog)
        .await
        .unwrap();
    assert!(k.k < 5, "k = {}", k.k);
    let mut out = Vec::new();
    let e = app
        .vault
        .export_anonymized(
            pivault_domain::policy::AnonymizedSet::Weblog,
            false,
            "test",
            &mut out,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, CoreError::Conflict("k_anonymity_too_low")),
        "{e:?}"
    );
    assert!(out.is_empty(), "a refused export writes nothing");
    // With suppression the small classes are left out and what is written reaches k_min.
    let rep = app
        .vault
        .export_anonymized(
            pivault_domain::policy::AnonymizedSet::Weblog,
            true,
            "test",
            &mut out,
        )
        .await
        .unwrap();
    assert!(rep.rows == 0 || rep.k_written >= 5, "{rep:?}");
    assert_eq!(rep.rows + rep.suppressed, weblog_lines().len());
    let csv = String::from_utf8(out).unwrap();
    assert_eq!(csv.lines().count(), rep.rows + 1);
}

pub async fn the_retention_report_counts_held_due_and_on_hold(app: TestApp) {
    let n = weblog_lines().len() as i64;
    let r = app.get("/v1/reports/retention", &app.app_key).await;
    assert_eq!(r.status(), 403);
    let r = app.get("/v1/reports/retention", &app.admin_key).await;
    assert_eq!(r.status(), 200);
    let rep: Value = r.json().await.unwrap();
    let line = |rep: &Value, c: &str| {
        rep["categories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["category"] == c)
            .unwrap()
            .clone()
    };
    let w = line(&rep, WEBLOG);
    assert_eq!(w["records"], n);
    assert_eq!(w["keep_for_days"], 183);
    assert_eq!(w["end"], "anonymize");
    assert_eq!(w["due_next_30_days"], 0);
    assert!(w["oldest"].as_str().unwrap().starts_with("2026-1"));
    // 160 days on, every line falls due within 30 days.
    app.clock.advance(180 * DAY);
    let rep: Value = app
        .get("/v1/reports/retention", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(line(&rep, WEBLOG)["due_next_30_days"], n);
    // The same counts reach /metrics.
    let m = app.get("/metrics", "").await.text().await.unwrap();
    assert!(
        m.contains(&format!(
            "pivault_retention_items{{category=\"{WEBLOG}\",state=\"held\"}} {n}"
        )),
        "metrics lack the retention gauge"
    );
}

pub async fn deidentification_is_keyed_reversible_by_the_key_holder_and_reported_as_pi(
    app: TestApp,
) {
    let u = users()
        .into_iter()
        .find(|u| u["mobile"].len() == 11)
        .unwrap();
    let m = u["mobile"].clone();
    let spaced = format!("{} {} {}", &m[..3], &m[3..7], &m[7..]);
    let r = app
        .post(
            "/v1/deidentify",
            &app.app_key,
            json!({"kind": "mobile", "purpose": "service", "values": [m, spaced]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["classification"], "personal_information");
    assert!(out["operation"]
        .as_str()
        .unwrap()
        .contains("not anonymization"));
    let t = out["tokens"].as_array().unwrap();
    assert_eq!(t[0], t[1], "one mobile, one token, however it is written");
    let token = t[0].as_str().unwrap();
    assert!(token.starts_with("pz1.") && !token.contains(&m[3..]));
    // A purpose that may not use the category is denied, as a lookup would be.
    let r = app
        .post(
            "/v1/deidentify",
            &app.app_key,
            json!({"kind": "id_card", "purpose": "marketing", "values": [u["id_card_number"]]}),
        )
        .await;
    assert_eq!(r.status(), 403);
    // Only the key holder reverses it; an app key cannot.
    let op = admin(&app);
    let back = app
        .vault
        .reidentify(
            &op,
            pivault_domain::identifiers::IdentifierKind::Mobile,
            &[token.to_string()],
        )
        .await
        .unwrap();
    assert!(back[0].ends_with(&m[1..]));
    let not_op = pivault_core::Principal {
        name: "x".into(),
        roles: vec!["dpo".into(), "admin".into()],
        purposes: vec![],
        key_id: None,
    };
    assert!(app
        .vault
        .reidentify(
            &not_op,
            pivault_domain::identifiers::IdentifierKind::Mobile,
            &[token.to_string()]
        )
        .await
        .is_err());
    // Audited with counts, never values.
    let a = audited(&app, "deidentify").await;
    assert_eq!(a.len(), 2, "the allowed call and the denied one");
    assert!(a.iter().any(|(_, d)| d.contains("count=2")));
    assert!(a.iter().all(|(_, d)| !d.contains(&m[3..])));
    assert_eq!(audited(&app, "deidentify.reverse").await.len(), 1);
}

pub async fn a_closed_account_loses_its_account_data_after_thirty_days(app: TestApp) {
    let u = &users()[3];
    let s = app.subject_of(&u["account_id"]).await;
    let r = app
        .post(&format!("/v1/subjects/{s}/close"), &app.app_key, json!({}))
        .await;
    assert_eq!(r.status(), 403);
    let r = app
        .post(
            &format!("/v1/subjects/{s}/close"),
            &app.admin_key,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let has = |fields: &[pivault_store::FieldRow], c: &str| fields.iter().any(|f| f.category == c);
    app.clock.advance(29 * DAY);
    sweep(&app, false).await;
    assert!(has(
        &app.store.fields(&s).await.unwrap(),
        "user.contact.mobile"
    ));
    app.clock.advance(2 * DAY);
    let r = sweep(&app, false).await;
    let left = app.store.fields(&s).await.unwrap();
    for c in ["user.contact.mobile", "user.name", "user.account.id"] {
        assert!(!has(&left, c), "{c} is kept past account_closed + 30 days");
    }
    assert!(acted(&r, "user.contact.mobile", "delete") >= 1);
    // Orders keep their own clock (three years from the transaction).
    let recent = orders()
        .iter()
        .any(|o| o["account_id"] == u["account_id"] && o["paid_at"].as_str() > "2024-01-01");
    assert_eq!(left.iter().any(|f| f.record.starts_with("order:")), recent);
}
