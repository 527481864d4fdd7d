//! Issue 16, item 6, through the real binary: a vault run with `PIVAULT_SUITE=sm4-gcm` imports
//! a slice of the data set, serves it, and answers a purposeful read over HTTP; in the SQLite
//! file every sealed field starts with the SM4-GCM suite byte 0x02 and every wrapped data key is
//! an SM4-GCM wrap (61 bytes, leading 0x02), which the master key alone unwraps and which open
//! the fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{Aad, KeyRing, MasterSecret, Suite, WrappedDek};
use pivault_testkit::bin::PivaultBin;
use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use std::process::Command;

/// Accounts imported (with their consent events).
const USERS: usize = 15;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sm4_vault_seals_fields_and_wraps_keys_with_sm4_and_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let url = format!("sqlite://{}", d.join("v.db").display());
    let key = d.join("master.key");
    let bin = PivaultBin::new(env!("CARGO_BIN_EXE_pivault"));
    let cmd = || -> Command {
        let mut c = bin.with_db(&url, &key);
        c.current_dir(d).env("PIVAULT_SUITE", "sm4-gcm");
        c
    };

    let slice = pivault_testkit::write_slice(&d.join("slice"), USERS, &["consent_events.csv"]);
    let out = cmd()
        .args(["import", slice.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let app_key = bin.api_key(&url, &key, "sm4-app", &["app"], &["service"]);

    // Served by the SM4 vault: a purposeful read of one account's name.
    let user = pivault_testkit::read_csv(&slice.join("users.csv"))
        .into_iter()
        .next()
        .unwrap();
    let server = pivault_testkit::bin::serve(cmd());
    let http = reqwest::Client::new();
    let found: serde_json::Value = http
        .post(format!("{}/v1/lookup", server.base))
        .bearer_auth(&app_key)
        .json(&serde_json::json!({
            "by": "account_id", "value": user["account_id"], "purpose": "service"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["count"], 1, "{found}");
    let subject = found["subjects"][0].as_str().unwrap().to_string();
    let r = http
        .get(format!(
            "{}/v1/subjects/{subject}/fields?purpose=service&categories=user.name",
            server.base
        ))
        .bearer_auth(&app_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let name = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["category"] == "user.name")
        .unwrap_or_else(|| panic!("no name in {v}"));
    assert_eq!(name["value"], user["name"].as_str(), "{v}");
    drop(server);

    // What the database holds.
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let fields =
        sqlx::query("SELECT subject_id, record, name, category, key_id, ciphertext FROM fields")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(fields.len() > USERS * 5, "{} fields", fields.len());
    for f in &fields {
        let ct: Vec<u8> = f.get("ciphertext");
        assert_eq!(ct[0], 0x02, "a field not sealed with SM4-GCM");
    }
    let keys = sqlx::query("SELECT subject_id, scope, key_id, kek_id, wrapped FROM subject_keys")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(keys.len() >= USERS, "{} wrapped keys", keys.len());
    let (master, created) = MasterSecret::load_or_create(&key).unwrap();
    assert!(!created);
    // Any ring unwraps both forms; an AES ring proves the SM4 wrap does not need the suite.
    let ring = KeyRing::new(master, Suite::Aes256Gcm);
    let mut opened = 0;
    for k in &keys {
        let w = WrappedDek {
            key_id: k.get("key_id"),
            kek_id: k.get("kek_id"),
            bytes: k.get("wrapped"),
        };
        assert_eq!(w.bytes.len(), 61, "not an SM4-GCM wrap");
        assert_eq!(w.bytes[0], 0x02, "not an SM4-GCM wrap");
        assert_eq!(w.wrap_suite(), Some(Suite::Sm4Gcm));
        let subject: String = k.get("subject_id");
        let scope: String = k.get("scope");
        let dek = ring.unwrap_dek(&subject, &scope, &w).unwrap();
        for f in fields.iter().filter(|f| {
            f.get::<String, _>("subject_id") == subject && f.get::<String, _>("key_id") == w.key_id
        }) {
            let (category, field): (String, String) = (f.get("category"), f.get("name"));
            let record: String = f.get("record");
            let ct: Vec<u8> = f.get("ciphertext");
            let path = format!("{record}/{field}");
            let aad = Aad {
                subject_id: &subject,
                category: &category,
                field: &path,
                key_id: dek.key_id(),
            };
            // The vault's AAD: subject, category, `record/name`, key id.
            assert!(
                dek.open(&aad, &ct).is_ok(),
                "{path} of {subject} does not open"
            );
            opened += 1;
        }
    }
    assert_eq!(
        opened,
        fields.len(),
        "every field opens with its unwrapped key"
    );
}
