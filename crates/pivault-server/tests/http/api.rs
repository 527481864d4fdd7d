//! The API cases (lookups, reads, consents, erasure, retention, audit, input validation, keys,
//! no PI in clear). Each case gets a fresh app spawned on 127.0.0.1:0 over its own copy of a
//! slice of the real zh_CN data set, and runs on both backends (`api::sqlite::…`,
//! `api::postgres::…`).

use pivault_testkit::app::{latest_consent, orders, users};
use pivault_testkit::TestApp;
use serde_json::{json, Value};

on_both_backends!(
    mobile_written_with_country_code_finds_the_subject_imported_without_it,
    mobile_stored_with_country_code_is_found_by_the_bare_number,
    email_lookup_ignores_case_and_spaces_and_returns_every_account_sharing_it,
    service_read_returns_decrypted_fields_with_the_contract_basis,
    categories_outside_the_purpose_are_withheld_as_not_necessary,
    marketing_read_without_marketing_consent_is_denied_with_its_reason,
    withdrawn_marketing_consent_denies_later_reads_and_keeps_the_ledger,
    a_separate_marketing_consent_releases_the_email,
    biometric_read_of_a_minor_needs_a_guardians_consent,
    adult_with_biometric_consent_reads_the_face_template,
    erasure_shreds_fields_and_keeps_orders_for_legal_obligation_only,
    retention_sweep_deletes_restricted_orders_once_their_period_ends,
    audit_chain_verifies_and_names_the_first_altered_row,
    every_decision_allowed_or_denied_is_audited_without_pi,
    created_subject_round_trips_and_corrected_mobile_moves_the_blind_index,
    collecting_a_category_the_purpose_does_not_need_is_refused,
    bad_input_gets_stable_codes_and_never_echoes_the_value,
    keys_gate_every_call_and_purposes_are_per_principal,
    no_pi_reaches_the_database_file_the_logs_or_the_audit_rows,
);

fn minor(u: &std::collections::HashMap<String, String>) -> bool {
    !u["guardian_name"].is_empty()
}

pub async fn mobile_written_with_country_code_finds_the_subject_imported_without_it(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| u["mobile"].len() == 11)
        .unwrap();
    let m = &u["mobile"];
    let styled = format!("+86 {}-{}-{}", &m[..3], &m[3..7], &m[7..]);
    let subject = app.subject_of(&u["account_id"]).await;
    for variant in [styled.as_str(), m.as_str(), &format!("(+86){m}")] {
        let r = app
            .post(
                "/v1/lookup",
                &app.app_key,
                json!({"by": "mobile", "value": variant, "purpose": "service"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["count"], 1);
        assert_eq!(v["subjects"][0], subject.as_str());
    }
}

pub async fn mobile_stored_with_country_code_is_found_by_the_bare_number(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| u["mobile"].starts_with("+86 "))
        .expect("slice has a +86-style mobile");
    let bare: String = u["mobile"]
        .chars()
        .filter(char::is_ascii_digit)
        .skip(2)
        .collect();
    assert_eq!(bare.len(), 11);
    let r = app
        .post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": "mobile", "value": bare, "purpose": "service"}),
        )
        .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["subjects"][0],
        app.subject_of(&u["account_id"]).await.as_str()
    );
}

pub async fn email_lookup_ignores_case_and_spaces_and_returns_every_account_sharing_it(
    app: TestApp,
) {
    let us = users();
    let norm = |e: &str| e.trim().to_lowercase();
    let shared = us
        .iter()
        .find(|u| {
            us.iter()
                .filter(|o| norm(&o["email"]) == norm(&u["email"]))
                .count()
                >= 2
        })
        .expect("the slice has a shared email");
    let expected = us
        .iter()
        .filter(|o| norm(&o["email"]) == norm(&shared["email"]))
        .count();
    let messy = format!("  {}  ", shared["email"].trim().to_uppercase());
    let r = app
        .post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": "email", "value": messy, "purpose": "service"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["count"], expected);
    assert_eq!(v["subjects"].as_array().unwrap().len(), expected);
}

pub async fn service_read_returns_decrypted_fields_with_the_contract_basis(app: TestApp) {
    let u = &users()[0];
    let s = app.subject_of(&u["account_id"]).await;
    let (status, v) = app
        .read(&s, "service", "user.name,user.contact.mobile")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decision"]["legal_basis"], "contract");
    assert_eq!(v["decision"]["article"], "PIPL Art. 13(2)");
    let fields = v["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 2);
    let name = fields
        .iter()
        .find(|f| f["category"] == "user.name")
        .unwrap();
    assert_eq!(name["value"], u["name"].as_str());
    let mobile = fields
        .iter()
        .find(|f| f["category"] == "user.contact.mobile")
        .unwrap();
    assert!(mobile["value"].as_str().unwrap().ends_with(
        &u["mobile"]
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()[2..]
    ));
}

pub async fn categories_outside_the_purpose_are_withheld_as_not_necessary(app: TestApp) {
    let s = app.subject_of(&users()[0]["account_id"]).await;
    // biometric data is not necessary for the service purpose (minimum necessary, PIPL Art. 6)
    let (status, v) = app
        .read(&s, "service", "user.name,user.biometric.face")
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["withheld"][0]["category"], "user.biometric.face");
    assert_eq!(v["withheld"][0]["reason"], "not_necessary_for_purpose");
    assert!(v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["category"] == "user.name"));
}

pub async fn marketing_read_without_marketing_consent_is_denied_with_its_reason(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| !minor(u) && latest_consent(&u["account_id"], "marketing").is_none())
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let (status, v) = app.read(&s, "marketing", "").await;
    assert_eq!(status, 403, "{v}");
    assert_eq!(v["error"]["code"], "decision_denied");
    assert_eq!(v["error"]["reason"], "consent_missing");
    assert_eq!(v["error"]["clause"], "§2.2.3");
    assert_eq!(v["error"]["article"], "PIPL Art. 14");
}

pub async fn withdrawn_marketing_consent_denies_later_reads_and_keeps_the_ledger(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| {
            !minor(u) && latest_consent(&u["account_id"], "marketing").as_deref() == Some("grant")
        })
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let (status, v) = app.read(&s, "marketing", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decision"]["legal_basis"], "consent");
    // a general marketing opt-in is not a separate consent: sensitive email is withheld
    let withheld: Vec<&str> = v["withheld"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["category"].as_str().unwrap())
        .collect();
    assert_eq!(withheld, vec!["user.contact.email"]);
    assert_eq!(v["withheld"][0]["reason"], "separate_consent_required");
    let before: Value = app
        .get(&format!("/v1/subjects/{s}/consents"), &app.app_key)
        .await
        .json()
        .await
        .unwrap();

    let r = app
        .post(
            &format!("/v1/subjects/{s}/consents"),
            &app.app_key,
            json!({"purpose": "marketing", "action": "withdraw", "method": "web"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (status, v) = app.read(&s, "marketing", "").await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["reason"], "consent_withdrawn");
    assert_eq!(v["error"]["article"], "PIPL Art. 15");

    let after: Value = app
        .get(&format!("/v1/subjects/{s}/consents"), &app.app_key)
        .await
        .json()
        .await
        .unwrap();
    let (b, a) = (
        before["events"].as_array().unwrap(),
        after["events"].as_array().unwrap(),
    );
    assert_eq!(a.len(), b.len() + 1, "withdrawal appends, never rewrites");
    assert_eq!(&a[..b.len()], &b[..]);
    assert!(after["active"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["purpose"] != "marketing"));
}

pub async fn a_separate_marketing_consent_releases_the_email(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| !minor(u) && latest_consent(&u["account_id"], "marketing").is_none())
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let r = app
        .post(
            &format!("/v1/subjects/{s}/consents"),
            &app.app_key,
            json!({"purpose": "marketing", "action": "grant", "separate": true}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (status, v) = app.read(&s, "marketing", "").await;
    assert_eq!(status, 200);
    assert!(v["withheld"].as_array().unwrap().is_empty());
    let email = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "user.contact.email")
        .unwrap();
    assert_eq!(email["value"], u["email"].trim().to_lowercase().as_str());
}

pub async fn biometric_read_of_a_minor_needs_a_guardians_consent(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| minor(u) && latest_consent(&u["account_id"], "biometric_login").is_none())
        .expect("the slice has a minor without biometric consent");
    let s = app.subject_of(&u["account_id"]).await;
    let (status, v) = app.read(&s, "biometric_login", "").await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["reason"], "consent_missing");

    let consent = |purpose: &str, action: &str, given_by: &str| {
        let (app, path) = (&app, format!("/v1/subjects/{s}/consents"));
        let body = json!({"purpose": purpose, "action": action, "given_by": given_by});
        async move {
            let r = app.post(&path, &app.app_key, body).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // the minor consenting alone is not enough (PIPL Art. 31): the grant is refused, not
    // recorded to count for nothing
    let (status, v) = consent("biometric_login", "grant", "self").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (403, Some("guardian_consent_required"))
    );
    let (status, v) = app.read(&s, "biometric_login", "").await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["reason"], "consent_missing");
    // a withdrawal by the child is kept: it only narrows the processing
    assert_eq!(consent("biometric_login", "withdraw", "self").await.0, 201);
    // a consent to a purpose that rests on a contract is refused, unless it names a recipient
    let (status, v) = consent("service", "grant", "guardian").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("purpose_not_consent_based"))
    );
    assert_eq!(consent("biometric_login", "grant", "guardian").await.0, 201);
    let (status, v) = app.read(&s, "biometric_login", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decision"]["minor"], true);
}

pub async fn adult_with_biometric_consent_reads_the_face_template(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| {
            !minor(u)
                && latest_consent(&u["account_id"], "biometric_login").as_deref() == Some("grant")
        })
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    let (status, v) = app.read(&s, "biometric_login", "user.biometric.face").await;
    assert_eq!(status, 200, "{v}");
    let t = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "template")
        .unwrap();
    assert_eq!(t["type"], "binary");
    let face =
        pivault_testkit::read_csv(&pivault_testkit::app::slice_dir().join("face_templates.csv"));
    let row = face
        .iter()
        .find(|r| r["account_id"] == u["account_id"])
        .unwrap();
    assert_eq!(t["value"], row["template_f32x128_b64"].as_str());
}

pub async fn erasure_shreds_fields_and_keeps_orders_for_legal_obligation_only(app: TestApp) {
    let cutoff = "2023-12-01"; // orders younger than 3 years stay under retention
    let os = orders();
    let u = users()
        .into_iter()
        .find(|u| {
            os.iter()
                .any(|o| o["account_id"] == u["account_id"] && o["paid_at"].as_str() > cutoff)
        })
        .unwrap();
    let recent: Vec<_> = os
        .iter()
        .filter(|o| o["account_id"] == u["account_id"] && o["paid_at"].as_str() > cutoff)
        .collect();
    let s = app.subject_of(&u["account_id"]).await;
    let key_before = app.store.subject_key(&s, "primary").await.unwrap().unwrap();
    let fields_before = app.store.fields(&s).await.unwrap();

    let r = app
        .delete(
            &format!("/v1/subjects/{s}?ground=subject_request"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    let receipt: Value = r.json().await.unwrap();
    assert_eq!(receipt["destroyed_key_id"], key_before.key_id.as_str());
    assert!(receipt["retained"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["category"] == "user.transaction.amount"));

    // the DEK is gone, so no copy of the old ciphertexts can be opened any more
    assert!(app
        .store
        .subject_key(&s, "primary")
        .await
        .unwrap()
        .is_none());
    let (master, _) =
        pivault_crypto::MasterSecret::load_or_create(&app.dir.path().join("master.key")).unwrap();
    let keys = pivault_crypto::KeyRing::new(master, pivault_crypto::Suite::Aes256Gcm);
    assert!(keys
        .unwrap_dek(
            &s,
            "restricted",
            &pivault_crypto::WrappedDek {
                key_id: key_before.key_id.clone(),
                kek_id: key_before.kek_id.clone(),
                bytes: key_before.wrapped.clone(),
            }
        )
        .is_err());
    let left = app.store.fields(&s).await.unwrap();
    assert!(left
        .iter()
        .all(|f| f.restricted_until.is_some() && f.key_id != key_before.key_id));
    // Kept: what a law requires (orders, E-Commerce Law Art. 31; web logs and the last login
    // address, Cybersecurity Law Art. 21(3)); nothing else.
    assert!(left
        .iter()
        .all(|f| f.category.starts_with("user.transaction.")
            || f.category == "user.behavior.web_log"
            || f.category == "user.network.ip"));
    assert!(left.len() < fields_before.len());

    // service reads are denied; legal-obligation reads see only the retained orders
    let (status, v) = app.read(&s, "service", "").await;
    assert_eq!(status, 403);
    assert_eq!(v["error"]["reason"], "subject_erased");
    let (status, v) = app.read(&s, "legal_obligation", "").await;
    assert_eq!(status, 200, "{v}");
    let got = v["fields"].as_array().unwrap();
    assert!(got.iter().all(|f| {
        let c = f["category"].as_str().unwrap();
        (c.starts_with("user.transaction.")
            || c == "user.behavior.web_log"
            || c == "user.network.ip")
            && f["restricted_until"].is_string()
    }));
    let amounts: Vec<&str> = got
        .iter()
        .filter(|f| f["name"] == "amount_cny")
        .map(|f| f["record"].as_str().unwrap())
        .collect();
    assert_eq!(amounts.len(), recent.len());
    let (status, _) = app.read(&s, "legal_obligation", "user.name").await;
    assert_eq!(status, 403);

    // lookups no longer find it
    for (by, value) in [
        ("account_id", u["account_id"].clone()),
        ("mobile", u["mobile"].clone()),
        ("email", u["email"].clone()),
        ("id_card", u["id_card_number"].clone()),
    ] {
        let v: Value = app
            .post(
                "/v1/lookup",
                &app.app_key,
                json!({"by": by, "value": value, "purpose": "service"}),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["count"], 0,
            "lookup by {by} still finds an erased subject"
        );
    }

    // and the wrapped DEK is not left anywhere in the database file
    let bytes = app.db_bytes().await;
    assert!(memchr::memmem::find(&bytes, &key_before.wrapped).is_none());
    let r = app
        .delete(&format!("/v1/subjects/{s}"), &app.admin_key)
        .await;
    assert_eq!(r.status(), 409);
}

pub async fn retention_sweep_deletes_restricted_orders_once_their_period_ends(app: TestApp) {
    let os = orders();
    let u = users()
        .into_iter()
        .find(|u| {
            os.iter()
                .any(|o| o["account_id"] == u["account_id"] && o["paid_at"].as_str() > "2025-01-01")
        })
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    assert_eq!(
        app.delete(&format!("/v1/subjects/{s}"), &app.admin_key)
            .await
            .status(),
        200
    );
    let kept = app.store.fields(&s).await.unwrap();
    assert!(!kept.is_empty());
    // The first sweep acts on other subjects' orders already past three years, never on
    // this subject's, whose legal minimum still runs.
    app.vault.retention_sweep("test").await.unwrap();
    assert_eq!(app.store.fields(&s).await.unwrap().len(), kept.len());
    app.clock.advance(4 * 366 * 86_400);
    assert!(app.vault.retention_sweep("test").await.unwrap() > 0);
    assert!(app.store.fields(&s).await.unwrap().is_empty());
}

pub async fn audit_chain_verifies_and_names_the_first_altered_row(app: TestApp) {
    let s = app.subject_of(&users()[1]["account_id"]).await;
    app.read(&s, "service", "").await;
    app.read(&s, "marketing", "").await;
    let ok = app.vault.verify_audit().await.unwrap();
    assert!(ok.ok(), "{ok:?}");
    assert!(ok.entries > 1000);
    let target = ok.head_seq - 3;
    app.store
        .tamper_audit_action(target, "fields.read.hidden")
        .await
        .unwrap();
    let bad = app.vault.verify_audit().await.unwrap();
    assert_eq!(bad.first_broken.map(|b| b.0), Some(target));
}

pub async fn every_decision_allowed_or_denied_is_audited_without_pi(app: TestApp) {
    let u = users()
        .into_iter()
        .find(|u| latest_consent(&u["account_id"], "marketing").is_none())
        .unwrap();
    let s = app.subject_of(&u["account_id"]).await;
    app.read(&s, "service", "").await;
    app.read(&s, "marketing", "").await;
    let recs = app.store.audit_for_subject(&s, 10).await.unwrap();
    let reads: Vec<_> = recs.iter().filter(|r| r.action == "fields.read").collect();
    assert_eq!(reads.len(), 2);
    assert!(reads
        .iter()
        .any(|r| r.outcome == "deny" && r.reason.as_deref() == Some("consent_missing")));
    assert!(reads
        .iter()
        .any(|r| r.outcome == "allow" && r.legal_basis.as_deref() == Some("contract")));
    let text = format!("{recs:?}");
    for v in [&u["name"], &u["mobile"], &u["email"], &u["id_card_number"]] {
        assert!(!text.contains(v.trim()));
    }
}

pub async fn created_subject_round_trips_and_corrected_mobile_moves_the_blind_index(app: TestApp) {
    let body = json!({"purpose": "service", "fields": [
        {"category": "user.account.id", "value": "u999001"},
        {"category": "user.name", "value": "测试用户"},
        {"category": "user.contact.mobile", "value": "+86 139-0000-0001"},
        {"category": "user.contact.email", "value": " New.User@Example.COM "},
        {"category": "user.government_id.id_card", "value": "11010519491231002x"},
    ]});
    let r = app.post("/v1/subjects", &app.app_key, body).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = app
        .read(
            &id,
            "service",
            "user.contact.email,user.government_id.id_card",
        )
        .await;
    let vals: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["value"].as_str().unwrap())
        .collect();
    assert!(vals.contains(&"new.user@example.com"));
    assert!(vals.contains(&"11010519491231002X"));
    let r = app
        .put(&format!("/v1/subjects/{id}/fields"), &app.app_key, json!({"purpose": "service", "fields": [{"category": "user.contact.mobile", "value": "13900000002"}]}))
        .await;
    assert_eq!(r.status(), 200);
    let find = |m: &'static str| {
        app.post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": "mobile", "value": m, "purpose": "service"}),
        )
    };
    assert_eq!(
        find("13900000001").await.json::<Value>().await.unwrap()["count"],
        0
    );
    assert_eq!(
        find("13900000002").await.json::<Value>().await.unwrap()["subjects"][0],
        id.as_str()
    );
    let dup = app.post("/v1/subjects", &app.app_key, json!({"purpose": "service", "fields": [{"category": "user.account.id", "value": "u999001"}]})).await;
    assert_eq!(dup.status(), 409);
}

pub async fn collecting_a_category_the_purpose_does_not_need_is_refused(app: TestApp) {
    let r = app
        .post("/v1/subjects", &app.app_key, json!({"purpose": "service", "fields": [{"category": "user.biometric.face", "value": "AAAA"}]}))
        .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["reason"], "not_necessary_for_purpose");
}

pub async fn bad_input_gets_stable_codes_and_never_echoes_the_value(app: TestApp) {
    let s = app.subject_of(&users()[0]["account_id"]).await;
    let path = format!("/v1/subjects/{s}/fields");
    let put = |v: Value| app.put(&path, &app.app_key, v);
    let cases = [
        (
            json!({"category": "user.contact.mobile", "value": "1390000"}),
            "mobile_too_short",
            "1390000",
        ),
        (
            json!({"category": "user.government_id.id_card", "value": "110105194912310021"}),
            "id_card_check_digit",
            "110105194912310021",
        ),
        (
            json!({"category": "user.contact.email", "value": "zhang.san@@example"}),
            "email_malformed",
            "zhang.san@@example",
        ),
        (
            json!({"category": "user.transaction.amount", "value": "12e9999"}),
            "number_malformed",
            "12e9999",
        ),
    ];
    for (field, code, raw) in cases {
        let r = put(json!({"purpose": "service", "fields": [field]})).await;
        assert_eq!(r.status(), 422, "{code}");
        let text = r.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["code"], code);
        assert_eq!(v["error"]["field"], "fields[0].value");
        assert!(
            !text.contains(raw),
            "error body echoes the rejected value: {text}"
        );
    }
    // malformed JSON, unknown fields, wrong types, huge bodies, no content type
    let raw = |body: &'static str| {
        let req = app
            .http
            .put(format!("{}/v1/subjects/{s}/fields", app.base))
            .bearer_auth(&app.app_key)
            .header("content-type", "application/json")
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let r = raw("{\"purpose\": \"service\", \"fields\": [").await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "malformed_json"
    );
    let r = raw("{\"purpose\": \"service\", \"fields\": [], \"mobile\": \"13900000001\"}").await;
    assert_eq!(r.status(), 422);
    let t = r.text().await.unwrap();
    assert!(
        t.contains("invalid_body") && !t.contains("13900000001"),
        "{t}"
    );
    let r = raw("{\"purpose\": 13900000001, \"fields\": []}").await;
    assert_eq!(r.status(), 422);
    assert!(!r.text().await.unwrap().contains("13900000001"));
    let big = format!("{{\"purpose\": \"service\", \"fields\": [{{\"category\": \"user.name\", \"value\": \"{}\"}}]}}", "x".repeat(2 << 20));
    // The server refuses the declared length before reading the body and closes the
    // connection; a client still writing can see the close (EPIPE/ECONNRESET) before it reads
    // the 413 that was sent. That race is the client's, so the request is tried again: the
    // answer, whenever it is read, must be the 413.
    let mut answer = None;
    for _ in 0..5 {
        match app
            .http
            .put(format!("{}/v1/subjects/{s}/fields", app.base))
            .bearer_auth(&app.app_key)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
        {
            Ok(r) => {
                answer = Some(r);
                break;
            }
            Err(e) if e.is_request() => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let r = answer.expect("the 413 was read in one of 5 tries");
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "body_too_large"
    );
    // The pooled connection may be the one the 413 closed: a request sent on it fails before
    // any answer (hyper's IncompleteMessage), so it is tried again on a fresh connection.
    let mut answer = None;
    for _ in 0..5 {
        match app
            .http
            .put(format!("{}/v1/subjects/{s}/fields", app.base))
            .bearer_auth(&app.app_key)
            .body("{}")
            .send()
            .await
        {
            Ok(r) => {
                answer = Some(r);
                break;
            }
            Err(e) if e.is_request() => continue,
            Err(e) => panic!("{e}"),
        }
    }
    let r = answer.expect("the 415 was read in one of 5 tries");
    assert_eq!(r.status(), 415);
    // unknown purpose, unknown category, unknown query parameter, missing purpose
    let (status, v) = app.read(&s, "profiling", "").await;
    assert_eq!(
        (status, v["error"]["reason"].as_str()),
        (403, Some("unknown_purpose"))
    );
    let (status, v) = app.read(&s, "service", "user.shoe_size").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (422, Some("unknown_category"))
    );
    let r = app
        .get(
            &format!("/v1/subjects/{s}/fields?purpose=service&debug=1"),
            &app.app_key,
        )
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .get(&format!("/v1/subjects/{s}/fields"), &app.app_key)
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "purpose_required"
    );
    let r = app
        .get(
            "/v1/subjects/not-a-subject/fields?purpose=service",
            &app.app_key,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app.get("/v1/nothing-here", &app.app_key).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "route_not_found"
    );
}

pub async fn keys_gate_every_call_and_purposes_are_per_principal(app: TestApp) {
    let s = app.subject_of(&users()[0]["account_id"]).await;
    let r = app
        .http
        .get(format!(
            "{}/v1/subjects/{s}/fields?purpose=service",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthenticated"
    );
    let forged = format!("{}x", &app.app_key[..app.app_key.len() - 1]);
    assert_eq!(
        app.get(&format!("/v1/subjects/{s}/fields?purpose=service"), &forged)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get(
            &format!("/v1/subjects/{s}/fields?purpose=service"),
            "garbage"
        )
        .await
        .status(),
        401
    );

    let billing = app
        .vault
        .create_api_key(
            "test",
            "billing",
            &["app".into()],
            &["service".into(), "legal_obligation".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        app.get(
            &format!("/v1/subjects/{s}/fields?purpose=service"),
            &billing
        )
        .await
        .status(),
        200
    );
    let r = app
        .get(
            &format!("/v1/subjects/{s}/fields?purpose=marketing"),
            &billing,
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["reason"],
        "purpose_not_permitted"
    );
    // only the privacy office erases
    assert_eq!(
        app.delete(&format!("/v1/subjects/{s}"), &billing)
            .await
            .status(),
        403
    );
    assert!(app
        .vault
        .create_api_key("test", "x", &["root".into()], &[])
        .await
        .is_err());
    assert!(app
        .vault
        .create_api_key("test", "x", &["app".into()], &["spying".into()])
        .await
        .is_err());
}

pub async fn no_pi_reaches_the_database_file_the_logs_or_the_audit_rows(app: TestApp) {
    let us = users();
    // exercise reads, lookups, denials and bad input so the logs have something to hold
    for u in us.iter().take(20) {
        let s = app.subject_of(&u["account_id"]).await;
        app.read(&s, "service", "").await;
        app.read(&s, "marketing", "").await;
        app.post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": "mobile", "value": u["mobile"], "purpose": "service"}),
        )
        .await;
        app.put(&format!("/v1/subjects/{s}/fields"), &app.app_key, json!({"purpose": "service", "fields": [{"category": "user.contact.email", "value": format!("{}@@", u["email"].trim())}]}))
            .await;
    }
    let mut haystack = app.db_bytes().await;
    let logs = pivault_testkit::captured_logs().bytes();
    assert!(
        logs.len() > 10_000 && String::from_utf8_lossy(&logs).contains("fields.read")
            || String::from_utf8_lossy(&logs).contains("http"),
        "the log capture holds nothing"
    );
    haystack.extend(logs);
    let audit = format!("{:?}", app.store.audit_page(0, 1_000_000).await.unwrap());
    haystack.extend(audit.as_bytes());
    let find = |needle: &str| memchr::memmem::find(&haystack, needle.as_bytes()).is_some();
    let mut checked = 0;
    for u in us.iter().step_by(7) {
        let digits: String = u["mobile"].chars().filter(char::is_ascii_digit).collect();
        let bare = &digits[digits.len() - 11..];
        for needle in [
            bare.to_string(),
            format!("+86{bare}"),
            u["email"].trim().to_lowercase(),
            u["id_card_number"].clone(),
            u["name"].clone(),
        ] {
            assert!(
                !find(&needle),
                "a PI value of {} is in clear in the db, logs or audit",
                u["account_id"]
            );
            checked += 1;
        }
    }
    assert!(checked > 200);
}
