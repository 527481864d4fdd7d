//! Issue 11, Deliver 6: the key lifecycle over HTTP on both backends — `/v1/keys` (list,
//! create, revoke, rotate, expiry) and blind-index key rotation answering lookups before,
//! during and after the re-index.

use pivault_testkit::app::users;
use pivault_testkit::TestApp;
use serde_json::{json, Value};

on_both_backends!(
    admin_lists_creates_revokes_and_rotates_keys_and_each_change_is_audited,
    expired_and_revoked_keys_get_401_with_their_own_code,
    bad_key_requests_get_stable_codes,
    index_rotation_keeps_lookups_answering_before_during_and_after_the_reindex,
    kek_rotation_and_rewrap_keep_reads_working_and_leave_no_row_under_the_old_kek,
);

async fn body(r: reqwest::Response) -> (u16, Value) {
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Status and `error.code` of an answer.
async fn code(r: reqwest::Response) -> (u16, Option<String>) {
    let (s, v) = body(r).await;
    (s, v["error"]["code"].as_str().map(str::to_string))
}

/// The status of a lookup with `token`.
async fn lookup_status(app: &TestApp, token: &str, lookup: &Value) -> u16 {
    app.post("/v1/lookup", token, lookup.clone())
        .await
        .status()
        .as_u16()
}

/// `POST path` with the admin key.
async fn admin_post(app: &TestApp, path: &str, b: Value) -> (u16, Value) {
    body(app.post(path, &app.admin_key, b).await).await
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.store
        .audit_page(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record.action)
        .collect()
}

pub async fn admin_lists_creates_revokes_and_rotates_keys_and_each_change_is_audited(app: TestApp) {
    // only admin administers keys
    assert_eq!(
        code(app.get("/v1/keys", &app.app_key).await).await,
        (403, Some("role_required".into()))
    );
    let (s, v) = body(
        app.post(
            "/v1/keys",
            &app.app_key,
            json!({"principal": "x", "purposes": ["service"]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (403, Some("role_required"))
    );

    let (s, v) = admin_post(&app, "/v1/keys", json!({"principal": "billing", "roles": ["app"], "purposes": ["service"], "expires_in": "90d"})).await;
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let id = v["key"]["key_id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("pvk.{id}.")));
    assert_eq!(v["key"]["state"], "active");
    assert!(v["key"]["expires_at"].is_string());
    // the new token works
    let u = &users()[0];
    let lookup = json!({"by": "account_id", "value": u["account_id"], "purpose": "service"});
    assert_eq!(lookup_status(&app, &token, &lookup).await, 200);

    // the listing names every key and never a token or its hash
    let r = app.get("/v1/keys", &app.admin_key).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(&token) && !text.contains(&app.admin_key) && !text.contains("hash"));
    let v: Value = serde_json::from_str(&text).unwrap();
    let listed: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&id.as_str()));
    assert!(listed.len() >= 3, "{listed:?}");

    // rotate with a grace period: both tokens work, the old one until the grace ends
    let (s, v) = admin_post(
        &app,
        &format!("/v1/keys/{id}/rotate"),
        json!({"grace": "1h"}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let token2 = v["token"].as_str().unwrap().to_string();
    let id2 = v["key"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(v["key"]["principal"], "billing");
    assert_eq!(v["key"]["purposes"], json!(["service"]));
    // the new key inherits the old key's lifetime (90 days) from now
    assert!(v["key"]["expires_at"].is_string());
    assert_eq!(lookup_status(&app, &token, &lookup).await, 200);
    assert_eq!(lookup_status(&app, &token2, &lookup).await, 200);
    // a key already rotated cannot be rotated again, even in its grace period (the second
    // successor would have got the grace period as its lifetime)
    let (s, v) = admin_post(
        &app,
        &format!("/v1/keys/{id}/rotate"),
        json!({"grace": "1h"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("api_key_inactive"))
    );
    app.clock.advance(3_601);
    assert_eq!(
        code(app.post("/v1/lookup", &token, lookup.clone()).await).await,
        (401, Some("api_key_expired".into()))
    );
    assert_eq!(lookup_status(&app, &token2, &lookup).await, 200);

    // rotate without grace: the old token is refused at once
    let (s, v) = admin_post(&app, &format!("/v1/keys/{id2}/rotate"), json!({})).await;
    assert_eq!(s, 201);
    let token3 = v["token"].as_str().unwrap().to_string();
    let id3 = v["key"]["key_id"].as_str().unwrap().to_string();
    assert_eq!(
        code(app.post("/v1/lookup", &token2, lookup.clone()).await).await,
        (401, Some("api_key_revoked".into()))
    );
    assert_eq!(lookup_status(&app, &token3, &lookup).await, 200);

    // revoke: refused at once (the cache is not trusted), idempotent
    let (s, v) = admin_post(&app, &format!("/v1/keys/{id3}/revoke"), json!({})).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("revoked")), "{v}");
    assert_eq!(
        code(app.post("/v1/lookup", &token3, lookup.clone()).await).await,
        (401, Some("api_key_revoked".into()))
    );
    let (s, v) = admin_post(&app, &format!("/v1/keys/{id3}/revoke"), json!({})).await;
    assert_eq!((s, v["state"].as_str()), (200, Some("revoked")));
    // a revoked key cannot be rotated back to life
    let (s, v) = admin_post(&app, &format!("/v1/keys/{id3}/rotate"), json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (409, Some("api_key_inactive"))
    );

    // the listing shows the lineage and the states
    let v: Value = app
        .get("/v1/keys", &app.admin_key)
        .await
        .json()
        .await
        .unwrap();
    let by_id = |k: &str| {
        v["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["key_id"] == k)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_id(&id)["replaced_by"], id2.as_str());
    assert_eq!(by_id(&id)["state"], "expired");
    assert_eq!(by_id(&id2)["replaced_by"], id3.as_str());
    assert_eq!(by_id(&id2)["state"], "revoked");
    assert_eq!(by_id(&id3)["state"], "revoked");

    // every change audited (one revoke: the second was a no-op)
    let actions = audit_actions(&app).await;
    let n = |a: &str| actions.iter().filter(|x| *x == a).count();
    assert!(n("apikey.create") >= 3, "{actions:?}");
    assert_eq!(n("apikey.rotate"), 2);
    assert_eq!(n("apikey.revoke"), 1);
    // the chain accounts for every key, those made by a rotation included
    let r = app.vault.verify_audit().await.unwrap();
    assert!(r.ok(), "{r:?}");
}

pub async fn expired_and_revoked_keys_get_401_with_their_own_code(app: TestApp) {
    let (s, v) = admin_post(
        &app,
        "/v1/keys",
        json!({"principal": "short", "roles": ["admin"], "purposes": [], "expires_in": "1h"}),
    )
    .await;
    assert_eq!(s, 201);
    let token = v["token"].as_str().unwrap().to_string();
    // authenticated (and cached) now…
    assert_eq!(app.get("/v1/keys", &token).await.status(), 200);
    app.clock.advance(3_599);
    assert_eq!(app.get("/v1/keys", &token).await.status(), 200);
    // …refused once the expiry passes, whatever the cache holds
    app.clock.advance(1);
    assert_eq!(
        code(app.get("/v1/keys", &token).await).await,
        (401, Some("api_key_expired".into()))
    );
    // a forged token for a real key id is only `unauthenticated`
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(
        code(app.get("/v1/keys", &forged).await).await,
        (401, Some("unauthenticated".into()))
    );
    // the CLI path (core) with an absolute expiry in the past is refused
    let past = pivault_core::Expiry::parse_at("2000-01-01T00:00:00Z").unwrap();
    assert!(app
        .vault
        .create_api_key_with("test", "x", &["app".into()], &[], past)
        .await
        .is_err());
}

pub async fn bad_key_requests_get_stable_codes(app: TestApp) {
    for (body_, code) in [
        (
            json!({"principal": "x", "expires_in": "90 days"}),
            "expiry_invalid",
        ),
        (
            json!({"principal": "x", "expires_in": "0d"}),
            "expiry_invalid",
        ),
        (
            json!({"principal": "x", "expires_in": "99999d"}),
            "expiry_invalid",
        ),
        (
            json!({"principal": "x", "expires_at": "2000-01-01T00:00:00Z"}),
            "expiry_invalid",
        ),
        (
            json!({"principal": "x", "expires_in": "1d", "expires_at": "2100-01-01T00:00:00Z"}),
            "expiry_invalid",
        ),
        (json!({"principal": "x", "roles": ["root"]}), "unknown_role"),
        (json!({"principal": "x", "roles": []}), "roles_empty"),
        // The principal is the actor of every audit entry the key writes.
        (json!({"principal": "18765195768"}), "text_holds_pi"),
        (
            json!({"principal": "x", "purposes": ["spying"]}),
            "unknown_purpose",
        ),
        (json!({"principal": "x y"}), "principal_malformed"),
        (json!({"principal": "x", "token": "t"}), "invalid_body"),
    ] {
        let (s, v) = body(app.post("/v1/keys", &app.admin_key, body_.clone()).await).await;
        assert_eq!(v["error"]["code"], code, "{body_} -> {s} {v}");
        assert!(s == 422 || s == 400, "{body_} -> {s}");
    }
    // Each role and purpose is kept once.
    let (s, v) = admin_post(
        &app,
        "/v1/keys",
        json!({"principal": "twice", "roles": ["app", "app"], "purposes": ["service", "service"]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["key"]["roles"], json!(["app"]));
    assert_eq!(v["key"]["purposes"], json!(["service"]));
    let (s, v) = admin_post(&app, "/v1/keys/0123456789abcdef/revoke", json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("api_key_not_found"))
    );
    let (s, v) = admin_post(&app, "/v1/keys/0123456789abcdef/rotate", json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("api_key_not_found"))
    );
    let (s, v) = admin_post(
        &app,
        "/v1/keys/0123456789abcdef/rotate",
        json!({"grace": "forever"}),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (422, Some("expiry_invalid"))
    );
}

async fn lookup(app: &TestApp, by: &str, value: &str) -> Vec<String> {
    let r = app
        .post(
            "/v1/lookup",
            &app.app_key,
            json!({"by": by, "value": value, "purpose": "service"}),
        )
        .await;
    assert_eq!(r.status(), 200, "{by}");
    let v: Value = r.json().await.unwrap();
    v["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Every identifier of the first users finds its subject.
async fn assert_lookups(
    app: &TestApp,
    expected: &[(std::collections::HashMap<String, String>, String)],
    when: &str,
) {
    for (u, s) in expected {
        for (by, col) in [
            ("account_id", "account_id"),
            ("email", "email"),
            ("mobile", "mobile"),
            ("id_card", "id_card_number"),
        ] {
            if u[col].is_empty() {
                continue;
            }
            let found = lookup(app, by, &u[col]).await;
            assert!(found.contains(s), "{when}: lookup by {by} lost {s}");
        }
    }
}

pub async fn index_rotation_keeps_lookups_answering_before_during_and_after_the_reindex(
    app: TestApp,
) {
    let mut expected = Vec::new();
    for u in users().into_iter().take(12) {
        let s = app.subject_of(&u["account_id"]).await;
        expected.push((u, s));
    }
    assert_lookups(&app, &expected, "before").await;
    let before = app.vault.key_status().await.unwrap();
    assert_eq!(before.index.len(), 1);
    let rows = before.index[0].rows;
    assert!(rows > 0);

    let new_id = app.vault.rotate_index_key("test").await.unwrap();
    assert!(new_id.starts_with("bix-"));
    // a second rotation waits for the re-index
    let e = app.vault.rotate_index_key("test").await.unwrap_err();
    assert!(e.to_string().contains("key_rotation_in_progress"), "{e}");
    assert_lookups(&app, &expected, "after rotating, before re-indexing").await;

    // half re-indexed
    let p = app.vault.reindex_step("test", 5).await.unwrap();
    assert!(!p.finished && p.done > 0 && p.done < p.total, "{p:?}");
    let mid = app.vault.key_status().await.unwrap();
    assert!(mid.index.iter().all(|g| g.rows > 0), "{mid:?}");
    assert_lookups(&app, &expected, "half re-indexed").await;
    // a subject created mid-way is found, under the new key
    let (s, v) = body(
        app.post(
            "/v1/subjects",
            &app.app_key,
            json!({"purpose": "service", "fields": [
                {"category": "user.account.id", "value": "u9990001"},
                {"category": "user.contact.email", "value": "mid.rotation@example.com"},
            ]}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let created = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        lookup(&app, "email", "mid.rotation@example.com").await,
        std::slice::from_ref(&created)
    );

    let mut steps = 0;
    loop {
        let p = app.vault.reindex_step("test", 5).await.unwrap();
        steps += 1;
        assert!(steps < 10_000);
        if p.finished {
            break;
        }
        if steps == 2 {
            assert_lookups(&app, &expected, "re-indexing").await;
        }
    }
    assert_lookups(&app, &expected, "after").await;
    assert_eq!(
        lookup(&app, "email", "mid.rotation@example.com").await,
        [created]
    );
    let after = app.vault.key_status().await.unwrap();
    let old = after.index.iter().find(|g| g.generation == 1).unwrap();
    let new = after.index.iter().find(|g| g.generation == 2).unwrap();
    assert_eq!((old.rows, old.state.as_str()), (0, "retired"));
    assert_eq!(
        (new.key_id.as_str(), new.state.as_str()),
        (new_id.as_str(), "current")
    );
    // every identifier row was re-made (plus the two of the subject created meanwhile)
    assert_eq!(new.rows, rows + 2);
    let actions = audit_actions(&app).await;
    assert!(actions.iter().any(|a| a == "key.rotate_index"));
    assert!(actions.iter().any(|a| a == "key.reindex"));
    // and a new rotation may start
    assert!(app.vault.rotate_index_key("test").await.is_ok());
}

pub async fn kek_rotation_and_rewrap_keep_reads_working_and_leave_no_row_under_the_old_kek(
    app: TestApp,
) {
    let subjects: Vec<String> = {
        let mut v = Vec::new();
        for u in users().into_iter().take(8) {
            v.push(app.subject_of(&u["account_id"]).await);
        }
        v
    };
    let read_all = || {
        let app = &app;
        let subjects = &subjects;
        async move {
            let mut out = Vec::new();
            for s in subjects {
                out.push(app.read(s, "service", "").await);
            }
            out
        }
    };
    let reads = read_all().await;
    assert!(
        reads
            .iter()
            .any(|(s, v)| *s == 200 && !v["fields"].as_array().unwrap().is_empty()),
        "{reads:?}"
    );
    let before = app.vault.key_status().await.unwrap();
    assert_eq!(before.keks.len(), 1);
    let old_id = before.keks[0].key_id.clone();
    let total = before.keks[0].rows;
    let new_id = app.vault.rotate_kek("test").await.unwrap();
    assert_ne!(new_id, old_id);
    let p = app.vault.rewrap_step("test", 3).await.unwrap();
    assert!(!p.finished && p.done == 3, "{p:?}");
    assert_eq!(read_all().await, reads, "mid-rewrap");
    loop {
        if app.vault.rewrap_step("test", 50).await.unwrap().finished {
            break;
        }
    }
    assert_eq!(read_all().await, reads, "after");
    let after = app.vault.key_status().await.unwrap();
    let old = after.keks.iter().find(|g| g.key_id == old_id).unwrap();
    let new = after.keks.iter().find(|g| g.key_id == new_id).unwrap();
    assert_eq!((old.rows, old.state.as_str()), (0, "retired"));
    assert_eq!((new.rows, new.state.as_str()), (total, "current"));
    // idempotent: nothing left to move
    let p = app.vault.rewrap_step("test", 50).await.unwrap();
    assert!(p.finished && p.done == 0, "{p:?}");
}
