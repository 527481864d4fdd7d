//! Issue 15 over HTTP: the audit log as a transparency log. The verifier key and the newest
//! checkpoint are public; signing a checkpoint needs `admin`; proofs need `admin` or `dpo`; an
//! inclusion proof checks offline with `pivault_verify` against the published key and fails
//! when one byte of its entry changes; a consistency proof between two checkpoints checks; an
//! access package carries the proofs of the subject's access history.
use base64::Engine as _;
use pivault_testkit::TestApp;
use pivault_verify::{Checkpoint, ConsistencyBundle, InclusionBundle, NoteVerifier};
use serde_json::{json, Value};

// Every case runs on SQLite (`audit::sqlite::…`) and on PostgreSQL (`audit::postgres::…`).
on_both_backends!(
    the_key_and_the_latest_checkpoint_are_public_and_signing_needs_admin,
    an_inclusion_proof_verifies_offline_and_fails_when_a_byte_changes,
    proofs_need_admin_or_dpo_and_bad_input_gets_stable_codes,
    consistency_between_two_checkpoints_verifies,
    an_access_package_carries_the_proofs_of_the_access_history,
);

async fn anonymous(app: &TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
}

async fn error_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    (
        status,
        v["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

/// The verifier from `GET /v1/audit/key` (no key).
async fn verifier(app: &TestApp) -> NoteVerifier {
    let r = anonymous(app, "/v1/audit/key").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let key = v["key"].as_str().unwrap();
    let verifier = NoteVerifier::parse(key).unwrap();
    assert_eq!(v["origin"], verifier.name());
    assert!(verifier.name().starts_with("pivault/audit/"), "{key}");
    assert_eq!(v["algorithm"], "Ed25519");
    verifier
}

/// Signs a checkpoint with the admin key: its body.
async fn sign(app: &TestApp) -> Value {
    let r = app
        .post("/v1/audit/checkpoints", &app.admin_key, json!({}))
        .await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// A fresh audit entry about an imported subject (a decided read): its seq.
async fn fresh_entry(app: &TestApp, account: &str) -> i64 {
    let subject = app.subject_of(account).await;
    let (status, _) = app.read(&subject, "service", "").await;
    assert_eq!(status, 200);
    let recs = app.store.audit_for_subject(&subject, 1).await.unwrap();
    recs[0].seq
}

async fn proof(app: &TestApp, path: &str, key: &str) -> InclusionBundle {
    let r = app.get(path, key).await;
    assert_eq!(r.status(), 200, "{path}");
    InclusionBundle::from_json(&r.text().await.unwrap()).unwrap()
}

async fn the_key_and_the_latest_checkpoint_are_public_and_signing_needs_admin(app: TestApp) {
    let v = verifier(&app).await;
    // The key is stable: the same on every call.
    assert_eq!(verifier(&app).await.encode(), v.encode());

    let latest = anonymous(&app, "/v1/audit/checkpoints/latest").await;
    if latest.status() == 404 {
        assert_eq!(error_code(latest).await.1, "audit_checkpoint_not_found");
    } else {
        assert_eq!(latest.status(), 200);
    }

    // Signing: 401 without a key, 403 with an app key, 201 with the admin key.
    let r = app
        .http
        .post(format!("{}/v1/audit/checkpoints", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (401, "unauthenticated".into()));
    let r = app
        .post("/v1/audit/checkpoints", &app.app_key, json!({}))
        .await;
    assert_eq!(error_code(r).await, (403, "role_required".into()));
    let signed = sign(&app).await;
    assert!(signed["id"].as_i64().unwrap() >= 1);
    assert!(
        signed["size"].as_i64().unwrap() > 0,
        "the imported slice is audited"
    );
    assert!(signed["at"].as_str().unwrap().ends_with('Z'));

    // The latest is the one just signed, without a key, and its note verifies.
    let r = anonymous(&app, "/v1/audit/checkpoints/latest").await;
    assert_eq!(r.status(), 200);
    let latest: Value = r.json().await.unwrap();
    assert_eq!(latest, signed);
    let cp = Checkpoint::open(latest["note"].as_str().unwrap(), &v).unwrap();
    assert_eq!(cp.origin, v.name());
    assert_eq!(
        i64::try_from(cp.size).unwrap(),
        latest["size"].as_i64().unwrap()
    );
    // One head per shard: 1 by default on both backends.
    let shards = cp.shards().unwrap();
    assert_eq!(shards.len(), 1);
    assert_eq!(
        shards.iter().map(|h| h.size).sum::<u64>(),
        cp.size,
        "the shard sizes add up to the checkpoint's"
    );
}

async fn an_inclusion_proof_verifies_offline_and_fails_when_a_byte_changes(app: TestApp) {
    let v = verifier(&app).await;
    let seq = fresh_entry(&app, "u100246").await;
    // No checkpoint covers the new entry yet: one is signed for the proof.
    let b = proof(
        &app,
        &format!("/v1/audit/entries/{seq}/proof"),
        &app.admin_key,
    )
    .await;
    let ok = b.verify(&v).unwrap();
    let entry = ok.entry.expect("the leaf decodes as a pivault audit entry");
    assert_eq!(entry.seq, seq);
    assert_eq!(entry.actor, "test-app");
    assert_eq!(entry.purpose.as_deref(), Some("service"));
    assert_eq!(entry.shard, b.shard);
    // The checkpoint it was proven in is now the latest one.
    let latest: Value = anonymous(&app, "/v1/audit/checkpoints/latest")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(latest["note"], b.checkpoint.as_str());

    // One byte of the entry changed (the purpose, say): the path no longer leads to the root.
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(&b.leaf)
        .unwrap();
    for i in [leaf.len() / 2, 0, leaf.len() - 1] {
        let mut bad = b.clone();
        let mut changed = leaf.clone();
        changed[i] ^= 0x01;
        bad.leaf = base64::engine::general_purpose::STANDARD.encode(&changed);
        assert!(
            bad.verify(&v).is_err(),
            "byte {i} changed and it still verifies"
        );
    }
    // A changed proof hash, or another key, fails too.
    if let Some(h) = b.proof.first() {
        let mut bad = b.clone();
        let flipped = if h.starts_with('0') { "1" } else { "0" };
        bad.proof[0] = format!("{flipped}{}", &h[1..]);
        assert!(bad.verify(&v).is_err());
    }
    let other = pivault_verify::note::NoteVerifier::new(
        v.name(),
        ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key(),
    )
    .unwrap();
    assert!(
        b.verify(&other).is_err(),
        "a checkpoint verifies only under its key"
    );

    // Against a named checkpoint that covers it: the same entry, that checkpoint.
    let cp = sign(&app).await;
    let id = cp["id"].as_i64().unwrap();
    let named = proof(
        &app,
        &format!("/v1/audit/entries/{seq}/proof?checkpoint={id}"),
        &app.admin_key,
    )
    .await;
    assert_eq!(named.checkpoint, cp["note"].as_str().unwrap());
    assert_eq!(named.verify(&v).unwrap().entry.unwrap().seq, seq);

    // An entry appended after that checkpoint is not in it: 409.
    let later = fresh_entry(&app, "u100041").await;
    let r = app
        .get(
            &format!("/v1/audit/entries/{later}/proof?checkpoint={id}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(error_code(r).await, (409, "entry_not_in_checkpoint".into()));
    // Without a checkpoint it is proven (in a newer one).
    let b = proof(
        &app,
        &format!("/v1/audit/entries/{later}/proof"),
        &app.admin_key,
    )
    .await;
    assert_eq!(b.verify(&v).unwrap().entry.unwrap().seq, later);
}

async fn proofs_need_admin_or_dpo_and_bad_input_gets_stable_codes(app: TestApp) {
    let v = verifier(&app).await;
    let seq = fresh_entry(&app, "u100246").await;
    let path = format!("/v1/audit/entries/{seq}/proof");
    // No key: 401; an app key (or another staff role): 403.
    let r = anonymous(&app, &path).await;
    assert_eq!(error_code(r).await, (401, "unauthenticated".into()));
    let support =
        pivault_testkit::keys::api_key_all_purposes(&app.vault, "support-desk", &["support"]).await;
    for key in [&app.app_key, &support] {
        let r = app.get(&path, key).await;
        assert_eq!(error_code(r).await, (403, "role_required".into()));
        let r = app.get("/v1/audit/consistency?from=1&to=1", key).await;
        assert_eq!(error_code(r).await, (403, "role_required".into()));
    }
    // The dpo reads proofs like the admin.
    let dpo = pivault_testkit::keys::api_key_all_purposes(&app.vault, "dpo-office", &["dpo"]).await;
    let b = proof(&app, &path, &dpo).await;
    assert_eq!(b.verify(&v).unwrap().entry.unwrap().seq, seq);

    // Bad input: stable codes, never 500.
    let k = &app.admin_key;
    for (path, want) in [
        ("/v1/audit/entries/abc/proof", (400, "invalid_path")),
        (
            "/v1/audit/entries/99999999999999999999/proof",
            (400, "invalid_path"),
        ),
        (
            &*format!("/v1/audit/entries/{seq}/proof?checkpoint=x"),
            (400, "invalid_query"),
        ),
        (
            &*format!("/v1/audit/entries/{seq}/proof?nope=1"),
            (400, "invalid_query"),
        ),
        (
            &*format!("/v1/audit/entries/{seq}/proof?checkpoint=0"),
            (422, "invalid_parameter"),
        ),
        (
            &*format!("/v1/audit/entries/{seq}/proof?checkpoint=-3"),
            (422, "invalid_parameter"),
        ),
        (
            &*format!("/v1/audit/entries/{seq}/proof?checkpoint=999999"),
            (404, "audit_checkpoint_not_found"),
        ),
        ("/v1/audit/entries/0/proof", (404, "audit_entry_not_found")),
        ("/v1/audit/entries/-1/proof", (404, "audit_entry_not_found")),
        (
            "/v1/audit/entries/999999999/proof",
            (404, "audit_entry_not_found"),
        ),
        ("/v1/audit/consistency", (400, "invalid_query")),
        ("/v1/audit/consistency?from=1", (400, "invalid_query")),
        ("/v1/audit/consistency?from=a&to=1", (400, "invalid_query")),
        (
            "/v1/audit/consistency?from=0&to=1",
            (422, "invalid_parameter"),
        ),
        (
            "/v1/audit/consistency?from=1&to=999999",
            (404, "audit_checkpoint_not_found"),
        ),
    ] {
        let r = app.get(path, k).await;
        let got = error_code(r).await;
        assert_eq!((got.0, got.1.as_str()), want, "{path}");
    }
    // A number out of range is said to be one, without the segment.
    let r = app
        .get("/v1/audit/entries/99999999999999999999/proof", k)
        .await;
    let text = r.text().await.unwrap();
    assert!(
        text.contains("not a whole number in range") && !text.contains("99999999999"),
        "{text}"
    );
}

async fn consistency_between_two_checkpoints_verifies(app: TestApp) {
    let v = verifier(&app).await;
    let a = sign(&app).await;
    // Entries in several subjects' shards between the two.
    for account in [
        "u100246", "u100154", "u100123", "u100111", "u100041", "u100016",
    ] {
        let _ = fresh_entry(&app, account).await;
    }
    let b = sign(&app).await;
    let (from, to) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
    assert!(to > from);
    let r = app
        .get(
            &format!("/v1/audit/consistency?from={from}&to={to}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(r.status(), 200);
    let bundle = ConsistencyBundle::from_json(&r.text().await.unwrap()).unwrap();
    assert_eq!(bundle.old, a["note"].as_str().unwrap());
    assert_eq!(bundle.new, b["note"].as_str().unwrap());
    let (old, new) = bundle.verify(&v).unwrap();
    assert!(new.size > old.size, "{} -> {}", old.size, new.size);
    // The same checkpoint twice is consistent with itself.
    let r = app
        .get(
            &format!("/v1/audit/consistency?from={to}&to={to}"),
            &app.admin_key,
        )
        .await;
    let same = ConsistencyBundle::from_json(&r.text().await.unwrap()).unwrap();
    same.verify(&v).unwrap();
    // Swapped: 422 checkpoint_order.
    let r = app
        .get(
            &format!("/v1/audit/consistency?from={to}&to={from}"),
            &app.admin_key,
        )
        .await;
    assert_eq!(error_code(r).await, (422, "checkpoint_order".into()));
    // A bundle whose new checkpoint is replaced by the old one's is refused when it grew.
    let mut bad = bundle.clone();
    bad.new = bundle.old.clone();
    assert!(bad.verify(&v).is_err());
}

async fn an_access_package_carries_the_proofs_of_the_access_history(app: TestApp) {
    let v = verifier(&app).await;
    let u = pivault_testkit::app::users()
        .into_iter()
        .find(|u| u["account_id"] == "u100246")
        .unwrap();
    // A read of the subject's PI, so that its access history is not empty.
    let _ = fresh_entry(&app, "u100246").await;
    let reqs = crate::dsr::file(
        &app,
        json!({ "kind": "access", "email": u["email"].trim() }),
    )
    .await;
    let (id, token) = reqs[0].clone();
    let (code, _) = crate::dsr::mailed_code(&app, &id).await;
    assert_eq!(
        crate::dsr::verify(&app, &id, &token, &code).await.status(),
        200
    );
    let r = app
        .post(
            &format!("/v1/dsr/{id}/approve?run=true"),
            &app.admin_key,
            json!({}),
        )
        .await;
    let st: Value = r.json().await.unwrap();
    assert_eq!(st["state"], "completed", "{st}");

    let r = crate::dsr::as_requester(&app, &format!("/v1/dsr/{id}/result"), &token).await;
    assert_eq!(r.status(), 200);
    let pkg: Value = r.json().await.unwrap();
    let history = pkg["access_history"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if pkg.get("access_history").is_some() {
        // It lists the read made above.
        assert!(!history.is_empty(), "{}", pkg["access_history"]);
    }
    let proofs = pkg["audit_proofs"]
        .as_array()
        .expect("audit_proofs")
        .clone();
    assert_eq!(proofs.len(), history.len().min(50));
    let mut proven = Vec::new();
    for p in &proofs {
        let b = InclusionBundle::from_json(&p.to_string()).unwrap();
        let e = b.verify(&v).unwrap().entry.unwrap();
        assert_eq!(e.subject_id.as_deref(), pkg["subject_id"].as_str());
        proven.push(e.seq);
    }
    let mut listed: Vec<i64> = history.iter().filter_map(|e| e["seq"].as_i64()).collect();
    listed.sort_unstable_by(|a, b| b.cmp(a));
    listed.truncate(50);
    assert_eq!(proven, listed, "one proof per listed access, newest first");

    // The staff download carries them too; the CSV form does not.
    let r = app
        .get(&format!("/v1/dsr/{id}/result"), &app.admin_key)
        .await;
    let staff: Value = r.json().await.unwrap();
    assert_eq!(
        staff["audit_proofs"].as_array().unwrap().len(),
        proofs.len()
    );
    let r =
        crate::dsr::as_requester(&app, &format!("/v1/dsr/{id}/result?format=csv"), &token).await;
    assert_eq!(r.status(), 200);

    // The proofs of a history: one per entry listed (duplicates once), newest first, at most
    // 50, each verifying against the published key.
    let seqs: Vec<i64> = app
        .store
        .audit_page(0, 60)
        .await
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect();
    assert_eq!(seqs.len(), 60);
    let mut listed: Vec<Value> = seqs.iter().map(|s| json!({ "seq": s })).collect();
    listed.push(json!({ "seq": seqs[3] }));
    listed.reverse();
    let proofs = pivault_server::routes::audit::package_proofs(&app.vault, &listed)
        .await
        .unwrap();
    let mut want = seqs.clone();
    want.sort_unstable_by(|a, b| b.cmp(a));
    want.truncate(50);
    let got: Vec<i64> = proofs
        .iter()
        .map(|b| b.verify(&v).unwrap().entry.unwrap().seq)
        .collect();
    assert_eq!(got, want);
}
