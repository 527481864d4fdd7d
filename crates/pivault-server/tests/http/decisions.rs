//! Issue 4 over HTTP: the decision API, recipients, exceptions, the disclosure ledger,
//! cross-border transfer, the combination rule — on subjects from the imported data set.
use pivault_testkit::app::{latest_consent, users};
use pivault_testkit::TestApp;
use serde_json::{json, Value};

on_both_backends!(
    decision_api_explains_allows_and_denials_with_basis_clause_and_article,
    sharing_goes_only_to_declared_recipients_and_only_their_categories,
    another_handler_needs_a_separate_consent_naming_it,
    disclosure_needs_consent_or_a_documented_exception_and_is_flagged_and_counted,
    the_ledger_lists_who_received_which_categories_and_why,
    cross_border_transfer_needs_a_consent_naming_recipient_and_purpose,
    business_data_never_leaves_the_region_its_customer_chose,
    a_section_5_4_exception_does_not_open_a_cross_border_transfer,
    non_personal_data_alone_is_not_pi_but_combined_with_an_identifier_it_is,
    an_account_id_belongs_to_one_subject_and_erased_accounts_are_not_imported_again,
    consents_and_erasures_take_closed_lists_and_keys_record_consents_only_for_their_purposes,
    a_declared_oversized_body_is_refused_before_it_is_read,
    a_support_agent_reads_contact_data_masked_for_service_but_never_id_numbers,
    a_key_with_app_and_support_never_gets_clear_contact_data_through_any_door,
    an_erased_account_id_is_refused_by_post_subjects_as_by_the_importer,
    delete_subject_runs_the_deletion_steps_with_a_signed_receipt_and_recipient_notices,
);

async fn decide(app: &TestApp, body: Value) -> Value {
    let r = app.post("/v1/decisions", &app.app_key, body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn adult(app: &TestApp, pred: impl Fn(&str) -> bool) -> String {
    let u = users()
        .into_iter()
        .find(|u| u["guardian_name"].is_empty() && pred(&u["account_id"]))
        .unwrap();
    app.subject_of(&u["account_id"]).await
}

async fn consent(app: &TestApp, s: &str, body: Value) {
    let r = app
        .post(&format!("/v1/subjects/{s}/consents"), &app.app_key, body)
        .await;
    assert_eq!(r.status(), 201);
}

async fn decision_api_explains_allows_and_denials_with_basis_clause_and_article(app: TestApp) {
    let s = adult(&app, |a| latest_consent(a, "marketing").is_none()).await;
    let d = decide(&app, json!({"action": "use", "purpose": "service", "subject_id": s, "categories": ["user.contact.mobile"]})).await;
    assert_eq!(d["allowed"], true);
    assert_eq!(d["legal_basis"], "contract");
    assert_eq!(d["article"], "PIPL Art. 13(2)");
    assert_eq!(d["clause"], "§2.2.1");
    assert_eq!(d["allowed_categories"], json!(["user.contact.mobile"]));
    let d = decide(
        &app,
        json!({"action": "use", "purpose": "marketing", "subject_id": s}),
    )
    .await;
    assert_eq!(d["allowed"], false);
    assert_eq!(d["reason"], "consent_missing");
    assert!(d["explanation"].as_str().unwrap().contains("PIPL Art. 14"));
    // every decision is audited, allow and deny
    let recs = app.store.audit_for_subject(&s, 10).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "decision.use"
        && r.outcome == "deny"
        && r.reason.as_deref() == Some("consent_missing")));
    assert!(recs
        .iter()
        .any(|r| r.action == "decision.use" && r.outcome == "allow"));
    // bad input: unknown action / category / exception kind
    for (body, code) in [
        (
            json!({"action": "sell", "purpose": "service", "subject_id": s}),
            "unknown_action",
        ),
        (
            json!({"action": "use", "purpose": "service", "subject_id": s, "categories": ["user.dna"]}),
            "unknown_category",
        ),
        (
            json!({"action": "disclose", "purpose": "legal_obligation", "subject_id": s, "exception": {"kind": "curiosity"}}),
            "unknown_exception",
        ),
    ] {
        let r = app.post("/v1/decisions", &app.app_key, body).await;
        assert_eq!(r.status(), 422);
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], code);
    }
}

async fn sharing_goes_only_to_declared_recipients_and_only_their_categories(app: TestApp) {
    let s = adult(&app, |_| true).await;
    let d = decide(&app, json!({"action": "share", "purpose": "service", "subject_id": s, "recipient": "data-broker"})).await;
    assert_eq!(
        (d["allowed"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("undeclared_recipient"))
    );
    assert_eq!(d["article"], "PIPL Art. 23");
    let d = decide(
        &app,
        json!({"action": "share", "purpose": "service", "subject_id": s}),
    )
    .await;
    assert_eq!(d["reason"], "recipient_required");
    let d = decide(&app, json!({"action": "share", "purpose": "marketing", "subject_id": s, "recipient": "sms-gateway"})).await;
    assert_eq!(d["reason"], "recipient_purpose_not_declared");
    // an entrusted party (PIPL Art. 21) gets its declared categories, no separate consent
    let d = decide(
        &app,
        json!({"action": "share", "purpose": "service", "subject_id": s, "recipient": "sms-gateway",
               "categories": ["user.contact.mobile", "user.contact.email"]}),
    )
    .await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["article"], "PIPL Art. 21");
    assert_eq!(d["allowed_categories"], json!(["user.contact.mobile"]));
    assert_eq!(
        d["withheld"][0],
        json!({"category": "user.contact.email", "reason": "not_declared_for_recipient"})
    );
    assert_eq!(d["obligations"], json!(["record_disclosure"]));
}

async fn another_handler_needs_a_separate_consent_naming_it(app: TestApp) {
    // the data set's share_with_partners consents name no recipient: not enough (PIPL Art. 23)
    let s = adult(&app, |a| {
        latest_consent(a, "share_with_partners").as_deref() == Some("grant")
    })
    .await;
    let body = json!({"action": "share", "purpose": "share_with_partners", "subject_id": s, "recipient": "cloud-partner"});
    let d = decide(&app, body.clone()).await;
    assert_eq!(
        (d["allowed"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("recipient_consent_missing"))
    );
    consent(
        &app,
        &s,
        json!({"purpose": "share_with_partners", "action": "grant", "recipient": "cloud-partner"}),
    )
    .await;
    let d = decide(&app, body.clone()).await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["legal_basis"], "consent");
    assert_eq!(
        d["obligations"],
        json!(["record_disclosure", "notify_subject"])
    );
    consent(&app, &s, json!({"purpose": "share_with_partners", "action": "withdraw", "recipient": "cloud-partner"})).await;
    let d = decide(&app, body).await;
    assert_eq!(d["reason"], "consent_withdrawn");
}

async fn disclosure_needs_consent_or_a_documented_exception_and_is_flagged_and_counted(
    app: TestApp,
) {
    let s = adult(&app, |_| true).await;
    let path = format!("/v1/subjects/{s}/disclosures");
    let base = json!({"action": "disclose", "purpose": "legal_obligation", "recipient": "public-security-bureau",
                      "categories": ["user.name", "user.government_id.id_card"]});
    let r = app.post(&path, &app.app_key, base.clone()).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "disclosure_consent_missing");
    assert_eq!(v["error"]["article"], "PIPL Art. 25");

    let mut incomplete = base.clone();
    incomplete["exception"] =
        json!({"kind": "criminal_investigation", "reference": "", "authorized_by": "Officer Li"});
    let r = app.post(&path, &app.app_key, incomplete).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["reason"],
        "exception_incomplete"
    );

    let mut with_exception = base.clone();
    with_exception["exception"] = json!({"kind": "criminal_investigation", "reference": "(2026)京0105刑初123号", "authorized_by": "Officer Li"});
    let r = app.post(&path, &app.app_key, with_exception).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["decision"]["exception"], "criminal_investigation");
    assert_eq!(v["decision"]["legal_basis"], "legal_obligation");
    assert_eq!(v["decision"]["clause"], "§5.4.3");
    // no notice to the subject while an investigation is confidential (PIPL Art. 18)
    assert_eq!(v["decision"]["obligations"], json!(["record_disclosure"]));
    assert_eq!(v["fields"].as_array().unwrap().len(), 2);

    // recorded in the ledger, flagged in the audit log, counted in the report
    let list: Value = app.get(&path, &app.app_key).await.json().await.unwrap();
    assert_eq!(list["count"], 1);
    let e = &list["disclosures"][0];
    assert_eq!(
        (e["exception"].as_str(), e["reference"].as_str()),
        (
            Some("criminal_investigation"),
            Some("(2026)京0105刑初123号")
        )
    );
    assert_eq!(
        e["categories"],
        json!(["user.government_id.id_card", "user.name"])
    );
    let recs = app.store.audit_for_subject(&s, 5).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "disclosure.disclose"
        && r.detail
            .as_deref()
            .unwrap_or("")
            .contains("EXCEPTION=criminal_investigation")));
    let r = app.get("/v1/reports/disclosures", &app.app_key).await;
    assert_eq!(r.status(), 403, "the report is for the privacy office");
    let rep: Value = app
        .get("/v1/reports/disclosures", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rep["total"], 1);
    assert_eq!(rep["under_exception"], 1);
    assert_eq!(rep["by_exception"]["criminal_investigation"], 1);
}

async fn the_ledger_lists_who_received_which_categories_and_why(app: TestApp) {
    let s = adult(&app, |_| true).await;
    let path = format!("/v1/subjects/{s}/disclosures");
    let r = app
        .post(&path, &app.app_key, json!({"action": "share", "purpose": "service", "recipient": "sms-gateway", "categories": ["user.contact.mobile"]}))
        .await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["fields"][0]["category"], "user.contact.mobile");
    consent(
        &app,
        &s,
        json!({"purpose": "share_with_partners", "action": "grant", "recipient": "cloud-partner"}),
    )
    .await;
    let r = app
        .post(&path, &app.app_key, json!({"action": "share", "purpose": "share_with_partners", "recipient": "cloud-partner"}))
        .await;
    assert_eq!(r.status(), 201);
    // a denied provision is not in the ledger
    let r = app
        .post(
            &path,
            &app.app_key,
            json!({"action": "share", "purpose": "service", "recipient": "nobody"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    let list: Value = app.get(&path, &app.app_key).await.json().await.unwrap();
    assert_eq!(list["count"], 2);
    let recipients: Vec<&str> = list["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    assert!(recipients.contains(&"sms-gateway") && recipients.contains(&"cloud-partner"));
    let partner = list["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["recipient"] == "cloud-partner")
        .unwrap();
    assert_eq!(partner["legal_basis"], "consent");
    assert_eq!(
        partner["categories"],
        json!(["user.contact.email", "user.contact.mobile", "user.name"])
    );
}

async fn cross_border_transfer_needs_a_consent_naming_recipient_and_purpose(app: TestApp) {
    // the data set's cross_border_transfer consents name no recipient: not enough (PIPL Art. 39)
    let s = adult(&app, |a| {
        latest_consent(a, "cross_border_transfer").as_deref() == Some("grant")
    })
    .await;
    let body = json!({"action": "cross_border_transfer", "purpose": "cross_border_transfer", "subject_id": s, "recipient": "overseas-support"});
    let d = decide(&app, body.clone()).await;
    assert_eq!(
        (d["allowed"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("cross_border_consent_missing"))
    );
    assert_eq!(d["article"], "PIPL Art. 39");
    consent(&app, &s, json!({"purpose": "cross_border_transfer", "action": "grant", "recipient": "overseas-support"})).await;
    let d = decide(&app, body).await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["cross_border"], true);
    assert_eq!(d["article"], "PIPL Art. 39");
    assert!(d["obligations"]
        .as_array()
        .unwrap()
        .contains(&json!("notify_subject")));
    // data is stored and used in the pinned region only (§4.1)
    let d = decide(
        &app,
        json!({"action": "use", "purpose": "service", "subject_id": s, "region": "us"}),
    )
    .await;
    assert_eq!(d["reason"], "outside_storage_region");
    let d = decide(&app, json!({"action": "cross_border_transfer", "purpose": "cross_border_transfer", "subject_id": s, "recipient": "cloud-partner"})).await;
    assert_eq!(d["reason"], "recipient_purpose_not_declared");
    let d = decide(&app, json!({"action": "cross_border_transfer", "purpose": "service", "subject_id": s, "recipient": "sms-gateway"})).await;
    assert_eq!(d["reason"], "not_cross_border");
}

async fn business_data_never_leaves_the_region_its_customer_chose(app: TestApp) {
    let s = adult(&app, |_| true).await;
    consent(&app, &s, json!({"purpose": "cross_border_transfer", "action": "grant", "recipient": "overseas-support"})).await;
    let d = decide(
        &app,
        json!({"action": "cross_border_transfer", "purpose": "cross_border_transfer", "subject_id": s,
               "recipient": "overseas-support", "categories": ["customer.business_data", "user.name"]}),
    )
    .await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["allowed_categories"], json!(["user.name"]));
    assert_eq!(
        d["withheld"][0],
        json!({"category": "customer.business_data", "reason": "business_data_region_locked"})
    );
    let d = decide(
        &app,
        json!({"action": "cross_border_transfer", "purpose": "cross_border_transfer", "subject_id": s,
               "recipient": "overseas-support", "categories": ["customer.business_data"]}),
    )
    .await;
    assert_eq!(
        (d["allowed"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("business_data_region_locked"))
    );
    assert_eq!(d["clause"], "§6.3");
}

async fn a_section_5_4_exception_does_not_open_a_cross_border_transfer(app: TestApp) {
    let s = adult(&app, |_| true).await;
    let d = decide(
        &app,
        json!({"action": "disclose", "purpose": "legal_obligation", "subject_id": s, "region": "us",
               "categories": ["user.name"],
               "exception": {"kind": "national_security", "reference": "ref-1", "authorized_by": "Officer Wang"}}),
    )
    .await;
    assert_eq!(
        (d["allowed"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("cross_border_consent_missing"))
    );
}

async fn non_personal_data_alone_is_not_pi_but_combined_with_an_identifier_it_is(app: TestApp) {
    let s = adult(&app, |a| latest_consent(a, "marketing").is_none()).await;
    let d = decide(&app, json!({"action": "use", "purpose": "marketing", "subject_id": s, "categories": ["user.device.model", "user.device.os"]})).await;
    assert_eq!(d["allowed"], true, "{d}");
    assert_eq!(d["reason"], "not_personal_information");
    assert_eq!(d["clause"], "§2.1.3");
    assert!(d["legal_basis"].is_null());
    let d = decide(&app, json!({"action": "use", "purpose": "marketing", "subject_id": s, "categories": ["user.device.model", "user.contact.mobile"]})).await;
    assert_eq!(
        (d["allowed"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("consent_missing"))
    );
    let d = decide(&app, json!({"action": "use", "purpose": "maintenance", "subject_id": s, "categories": ["user.device.model", "user.account.id"]})).await;
    assert_eq!(d["allowed"], true);
    assert_eq!(d["combined_as_pi"], json!(["user.device.model"]));
    assert!(d["explanation"].as_str().unwrap().contains("§2.1.3"));
}

async fn an_account_id_belongs_to_one_subject_and_erased_accounts_are_not_imported_again(
    app: TestApp,
) {
    let us = users();
    let a = app.subject_of(&us[0]["account_id"]).await;
    let r = app
        .put(&format!("/v1/subjects/{a}/fields"), &app.app_key, json!({"purpose": "service", "fields": [{"category": "user.account.id", "value": us[1]["account_id"]}]}))
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "account_exists"
    );

    assert_eq!(
        app.delete(
            &format!("/v1/subjects/{a}?ground=subject_request"),
            &app.admin_key
        )
        .await
        .status(),
        200
    );
    let rep = pivault_core::import::import_dir(
        &app.vault,
        pivault_testkit::app::slice_dir(),
        &app.dir.path().join("rejects"),
        &pivault_core::import::NoProgress,
    )
    .await
    .unwrap();
    let users_rep = rep.files.iter().find(|f| f.file == "users.csv").unwrap();
    assert_eq!(
        (users_rep.imported, users_rep.rejected),
        (0, 1),
        "{users_rep:?}"
    );
    let rejects =
        std::fs::read_to_string(app.dir.path().join("rejects/users.csv.rejects.csv")).unwrap();
    assert!(rejects.contains(",account_id,account_erased,"), "{rejects}");
    let v: Value = app
        .post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": "account_id", "value": us[0]["account_id"], "purpose": "service"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["count"], 0);
}

async fn consents_and_erasures_take_closed_lists_and_keys_record_consents_only_for_their_purposes(
    app: TestApp,
) {
    let s = adult(&app, |_| true).await;
    let billing = app
        .vault
        .create_api_key("test", "billing", &["app".into()], &["service".into()])
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/v1/subjects/{s}/consents"),
            &billing,
            json!({"purpose": "biometric_login", "action": "grant"}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "purpose_not_permitted"
    );
    let r = app
        .post(
            &format!("/v1/subjects/{s}/consents"),
            &app.app_key,
            json!({"purpose": "marketing", "action": "grant", "method": "18765195768"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let t = r.text().await.unwrap();
    assert!(
        t.contains("unknown_method") && !t.contains("18765195768"),
        "{t}"
    );
    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=13800138000"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unknown_ground"
    );
}

async fn a_declared_oversized_body_is_refused_before_it_is_read(app: TestApp) {
    let s = adult(&app, |_| true).await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let head = format!(
        "PUT /v1/subjects/{s}/fields HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 99999999\r\n\r\n{{}}",
        app.app_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered at once")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.starts_with("HTTP/1.1 413") && text.contains("body_too_large"),
        "{text}"
    );
}

async fn a_support_agent_reads_contact_data_masked_for_service_but_never_id_numbers(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| u["mobile"].len() == 11 && u["guardian_name"].is_empty())
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let agent = app
        .vault
        .create_api_key(
            "test",
            "agent-007",
            &["app".into(), "support".into()],
            &["service".into(), "marketing".into()],
        )
        .await
        .unwrap();
    let r = app
        .get(
            &format!(
                "/v1/subjects/{s}/fields?purpose=service&categories=user.contact.mobile,user.name"
            ),
            &agent,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let mobile = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "user.contact.mobile")
        .unwrap();
    let shown = mobile["value"].as_str().unwrap();
    assert!(
        shown.contains('*') && !shown.contains(&u["mobile"][3..7]),
        "masked: {shown}"
    );
    assert!(shown.ends_with(&u["mobile"][7..]));
    let r = app
        .get(
            &format!(
                "/v1/subjects/{s}/fields?purpose=service&categories=user.government_id.id_card"
            ),
            &agent,
        )
        .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "staff_not_authorized");
    assert_eq!(v["error"]["article"], "PIPL Art. 51(3)");
    // the whole service view: ID number and bank card withheld, contact masked
    let v: Value = app
        .get(&format!("/v1/subjects/{s}/fields?purpose=service"), &agent)
        .await
        .json()
        .await
        .unwrap();
    let withheld: Vec<&str> = v["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["reason"] == "staff_not_authorized")
        .map(|w| w["category"].as_str().unwrap())
        .collect();
    assert!(withheld.contains(&"user.government_id.id_card"), "{v}");
    assert!(v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["category"] != "user.government_id.id_card"));
    let recs = app.store.audit_for_subject(&s, 5).await.unwrap();
    assert!(recs
        .iter()
        .any(|r| r.actor == "agent-007" && r.reason.as_deref() == Some("staff_not_authorized")));
}

/// Every door that releases PI narrows by the staff policy: a key holding both `app` and
/// `support` gets contact data masked or withheld from reads, the decision API, provisions and
/// disclosures, and DSR packages (staff results need `dpo`/`admin`).
async fn a_key_with_app_and_support_never_gets_clear_contact_data_through_any_door(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| u["mobile"].len() == 11 && u["guardian_name"].is_empty())
        .unwrap();
    let mobile = u["mobile"].clone();
    let s = app.subject_of(&u["account_id"]).await;
    let agent = app
        .vault
        .create_api_key(
            "test",
            "agent-both",
            &["app".into(), "support".into()],
            &["service".into(), "legal_obligation".into()],
        )
        .await
        .unwrap();
    let clear = |v: &Value| v.to_string().contains(&mobile[3..7]);
    // door 1: reads
    let r = app
        .get(
            &format!("/v1/subjects/{s}/fields?purpose=service&categories=user.contact.mobile"),
            &agent,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(!clear(&v), "read released the mobile in clear: {v}");
    // door 2: the decision API tells the caller to mask
    let r = app
        .post(
            "/v1/decisions",
            &agent,
            json!({"action": "use", "purpose": "service", "subject_id": s, "categories": ["user.contact.mobile"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["obligations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "mask:user.contact.mobile")
            || v["allowed"] == false,
        "{v}"
    );
    // door 3: provisions and disclosures (a documented §5.4 exception)
    let r = app
        .post(
            &format!("/v1/subjects/{s}/disclosures"),
            &agent,
            json!({"action": "disclose", "purpose": "legal_obligation", "recipient": "public-security-bureau",
                   "categories": ["user.name", "user.contact.mobile"],
                   "exception": {"kind": "criminal_investigation", "reference": "(2026)京0105刑初123号", "authorized_by": "Officer Li"}}),
        )
        .await;
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert!(!clear(&v), "a provision released the mobile in clear: {v}");
    if status == 403 {
        assert_eq!(v["error"]["reason"], "staff_not_authorized", "{v}");
    } else {
        assert_eq!(status, 201, "{v}");
    }
    // door 4: DSR packages opened by staff need the privacy office's roles
    let r = app
        .get(&format!("/v1/dsr/{}/result", uuid_like()), &agent)
        .await;
    assert_eq!(r.status(), 403);
    // and the same key without `support` reads the clear value (the narrowing is the staff policy's)
    let v: Value = app
        .get(
            &format!("/v1/subjects/{s}/fields?purpose=service&categories=user.contact.mobile"),
            &app.app_key,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(clear(&v), "{v}");
}

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

/// PIPL Art. 47: an erased account stays erased. `POST /v1/subjects` refuses its account id with
/// the importer's code, `account_erased`.
async fn an_erased_account_id_is_refused_by_post_subjects_as_by_the_importer(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| u["guardian_name"].is_empty())
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=subject_request"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_account_id_refused(&app, &u["account_id"]).await;
}

/// `POST /v1/subjects` with `account` as the account id is refused: 409 `account_erased`, the
/// id not echoed (the suppression list, PIPL Art. 47).
pub(crate) async fn assert_account_id_refused(app: &TestApp, account: &str) {
    let r = app
        .post(
            "/v1/subjects",
            &app.app_key,
            json!({"kind": "account", "purpose": "service",
                   "fields": [{"category": "user.account.id", "value": account}]}),
        )
        .await;
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "account_erased", "{v}");
    assert!(!v.to_string().contains(account));
}

/// Both doors to PIPL Art. 47 give the same result: `DELETE /v1/subjects/{id}` files a deletion
/// request and runs its steps (restrict, shred, notify recipients, signed receipt).
async fn delete_subject_runs_the_deletion_steps_with_a_signed_receipt_and_recipient_notices(
    app: TestApp,
) {
    let s = adult(&app, |_| true).await;
    // a provision to a recipient, so the erasure has someone to notify
    let r = app
        .post(
            &format!("/v1/subjects/{s}/disclosures"),
            &app.app_key,
            json!({"action": "disclose", "purpose": "legal_obligation", "recipient": "public-security-bureau",
                   "categories": ["user.name"],
                   "exception": {"kind": "criminal_investigation", "reference": "(2026)京0105刑初123号", "authorized_by": "Officer Li"}}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=purpose_achieved"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let request_id = v["request_id"].as_str().unwrap().to_string();
    // the receipt verifies with the vault's receipt key (what `pivault dsr verify-receipt` does)
    let text = v["receipt"].to_string();
    let key = app.vault.receipt_key();
    pivault_core::dsr::verify_receipt_json(&text, &key.public_key).unwrap();
    let payload: Value = serde_json::from_str(v["receipt"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["subject_id"], s.as_str());
    assert_eq!(payload["ground"], "purpose_achieved");
    assert_eq!(payload["request_id"], request_id.as_str());
    assert_eq!(
        payload["recipients_notified"],
        json!(["public-security-bureau"])
    );
    assert_eq!(
        payload["deleted"]["destroyed_key_id"],
        v["destroyed_key_id"]
    );
    // a tampered receipt does not verify
    let forged = text.replace("purpose_achieved", "subject_request");
    assert!(pivault_core::dsr::verify_receipt_json(&forged, &key.public_key).is_err());
    // the notice to the recipient is audited; the request is completed in the queue
    let recs = app.store.audit_for_subject(&s, 50).await.unwrap();
    assert!(recs.iter().any(|r| r.action == "recipient.erasure_notice"
        && r.detail
            .as_deref()
            .is_some_and(|d| d.contains("recipient=public-security-bureau"))));
    let r = app
        .get(&format!("/v1/dsr/{request_id}"), &app.admin_key)
        .await;
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["state"], "completed", "{d}");
    assert_eq!(d["kind"], "deletion");
    // and a second DELETE is refused as before
    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=purpose_achieved"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 409);
}
