//! Several instances on one PostgreSQL database: two real `pivault serve` OS processes (the
//! binary under test, `CARGO_BIN_EXE_pivault`) with separate pools and DEK caches, sharing one
//! fresh database and one master key file, with requests spread over both.
//!
//! Each test gets its own database (dropped afterwards) and its own pair of processes. Needs
//! `PIVAULT_TEST_DATABASE_URL`; without it every test prints a `SKIPPED` line and returns.
//! `.ci/run` always sets it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_store::Store;
use pivault_testkit::bin::{Instance, PivaultBin};
use pivault_testkit::TestDatabase;
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A shared database, a master key file, and two keys to both instances: an application key
/// (role `app`) for what services do, and the privacy office's key (role `admin`) for erasure.
struct Cluster {
    a: Instance,
    b: Instance,
    key: String,
    admin: String,
    http: reqwest::Client,
    url: String,
    _dir: tempfile::TempDir,
    /// Declared last: dropped after both processes were killed.
    _db: TestDatabase,
}

/// Starts `pivault serve --bind 127.0.0.1:0` and reads its port from the line
/// `pivault listening on http://ADDR` it prints on stderr once it accepts connections.
fn serve(url: &str, key_file: &Path) -> Instance {
    pivault_testkit::bin::serve(pivault(url, key_file))
}

/// The binary under test on `url` with `key_file`.
fn pivault(url: &str, key_file: &Path) -> std::process::Command {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).with_db(url, key_file)
}

impl Cluster {
    async fn start(test: &str) -> Option<Self> {
        let db = TestDatabase::for_test(&format!("two_instances::{test}")).await?;
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        let url = db.url().to_string();
        // The first instance starts on the empty database: `serve` applies the migrations and
        // creates the (development) master key file the second instance then shares.
        let a = serve(&url, &key_file);
        let b = serve(&url, &key_file);
        let out = pivault(&url, &key_file).arg("migrate").output().unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Postgres"),
            "{out:?}"
        );
        let key = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).api_key_all_purposes(
            &url,
            &key_file,
            "billing",
            &["app"],
        );
        // Roles are explicit (issue 11): `admin` erases but does not read.
        let admin = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).api_key_all_purposes(
            &url,
            &key_file,
            "privacy-office",
            &["admin"],
        );
        Some(Self {
            a,
            b,
            key,
            admin,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap(),
            url,
            _dir: dir,
            _db: db,
        })
    }

    /// Instance `i % 2`: requests alternate between the two processes.
    fn base(&self, i: usize) -> &str {
        if i % 2 == 0 {
            &self.a.base
        } else {
            &self.b.base
        }
    }

    async fn call(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        // Roles are explicit (issue 11): erasure and key administration need the admin key.
        let key = if method == reqwest::Method::DELETE || path.starts_with("/v1/keys") {
            &self.admin
        } else {
            &self.key
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base(i)))
            .bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create_subject(&self, i: usize, n: usize) -> String {
        let (s, v) = self
            .call(
                i,
                reqwest::Method::POST,
                "/v1/subjects",
                Some(json!({"purpose": "service", "fields": [
                    {"category": "user.account.id", "value": format!("u7{n:06}")},
                    {"category": "user.name", "value": format!("用户{n}")},
                    {"category": "user.contact.mobile", "value": format!("1390{n:07}")},
                    {"category": "user.contact.email", "value": format!("user{n}@example.com")},
                    {"category": "user.transaction.order", "record": "order:o1", "name": "order_id", "value": format!("o{n}")},
                    {"category": "user.transaction.amount", "record": "order:o1", "name": "amount_cny", "value": 12.5},
                    {"category": "user.transaction.paid_at", "record": "order:o1", "name": "paid_at", "value": "2026-06-01T08:00:00Z"},
                ]})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    async fn read(&self, i: usize, subject: &str, purpose: &str) -> (u16, Value) {
        self.call(
            i,
            reqwest::Method::GET,
            &format!("/v1/subjects/{subject}/fields?purpose={purpose}"),
            None,
        )
        .await
    }

    async fn store(&self) -> Store {
        Store::connect_with(&self.url, Some(2)).await.unwrap()
    }
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_grants_and_withdrawals_through_both_instances_end_in_the_latest_event() {
    let Some(c) = Cluster::start("concurrent_grants_and_withdrawals").await else {
        return;
    };
    let c = Arc::new(c);
    let subjects = [c.create_subject(0, 1).await, c.create_subject(1, 2).await];
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut rng = rand::rng();
    for (round, subject) in subjects.iter().enumerate() {
        // 60 events with distinct times in the past, sent shuffled and all at once, half
        // through each instance.
        let mut events: Vec<(i64, &str)> = (0..60)
            .map(|k| {
                let action = if rand::random::<bool>() {
                    "grant"
                } else {
                    "withdraw"
                };
                (now - 86_400 + k * 97, action)
            })
            .collect();
        let latest = *events.iter().max_by_key(|e| e.0).unwrap();
        events.shuffle(&mut rng);
        let mut tasks = tokio::task::JoinSet::new();
        for (k, (at, action)) in events.iter().enumerate() {
            let c = Arc::clone(&c);
            let path = format!("/v1/subjects/{subject}/consents");
            let body = json!({"purpose": "marketing", "action": action, "at": rfc3339(*at),
                              "event_ref": format!("race-{round}-{k}")});
            tasks.spawn(async move { c.call(k, reqwest::Method::POST, &path, Some(body)).await });
        }
        while let Some(r) = tasks.join_next().await {
            let (s, v) = r.unwrap();
            assert_eq!(s, 201, "{v}");
        }
        for i in 0..2 {
            let (s, v) = c
                .call(
                    i,
                    reqwest::Method::GET,
                    &format!("/v1/subjects/{subject}/consents"),
                    None,
                )
                .await;
            assert_eq!(s, 200);
            assert_eq!(v["events"].as_array().unwrap().len(), 60, "no event lost");
            let active = v["active"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["purpose"] == "marketing");
            assert_eq!(
                active,
                latest.1 == "grant",
                "instance {i}: state must be the latest event by time ({latest:?})"
            );
            let (s, _) = c.read(i, subject, "marketing").await;
            assert_eq!(
                s == 200,
                latest.1 == "grant",
                "instance {i} decides on the latest event"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_erased_through_one_instance_cannot_be_read_through_the_other() {
    let Some(c) = Cluster::start("erased_through_one_instance").await else {
        return;
    };
    for n in 0..12 {
        let (via, other) = (n % 2, (n + 1) % 2);
        let s = c.create_subject(via, 100 + n).await;
        // the other instance reads first, so it holds the subject's DEK in its cache
        let (st, v) = c.read(other, &s, "service").await;
        assert_eq!(st, 200, "{v}");
        assert!(!v["fields"].as_array().unwrap().is_empty());
        let (st, v) = c
            .call(
                via,
                reqwest::Method::DELETE,
                &format!("/v1/subjects/{s}?ground=subject_request"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let (st, v) = c.read(other, &s, "service").await;
        assert_eq!(st, 403, "a service read after erasure must be denied: {v}");
        assert_eq!(v["error"]["reason"], "subject_erased");
        // what is left is the retained order, restricted, for a legal obligation only
        let (st, v) = c.read(other, &s, "legal_obligation").await;
        assert_eq!(st, 200, "{v}");
        for f in v["fields"].as_array().unwrap() {
            assert!(
                f["category"]
                    .as_str()
                    .unwrap()
                    .starts_with("user.transaction."),
                "{f}"
            );
        }
        let (st, v) = c
            .call(other, reqwest::Method::POST, "/v1/lookup",
                  Some(json!({"by": "account_id", "value": format!("u7{:06}", 100 + n), "purpose": "service"})))
            .await;
        assert_eq!((st, v["count"].as_u64()), (200, Some(0)));
        let (st, _) = c
            .call(other, reqwest::Method::PUT, &format!("/v1/subjects/{s}/fields"),
                  Some(json!({"purpose": "service", "fields": [{"category": "user.name", "value": "x"}]})))
            .await;
        assert_eq!(st, 409, "no write may bring fields back");
        let (st, _) = c
            .call(
                other,
                reqwest::Method::POST,
                &format!("/v1/subjects/{s}/consents"),
                Some(json!({"purpose": "marketing", "action": "grant"})),
            )
            .await;
        assert_eq!(st, 409);
        let (st, _) = c
            .call(
                other,
                reqwest::Method::DELETE,
                &format!("/v1/subjects/{s}?ground=subject_request"),
                None,
            )
            .await;
        assert_eq!(st, 409, "erasure runs once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_stays_one_chain_after_ten_thousand_concurrent_decisions() {
    let Some(c) = Cluster::start("audit_chain").await else {
        return;
    };
    let c = Arc::new(c);
    let mut subjects = Vec::new();
    for n in 0..8 {
        subjects.push(c.create_subject(n, 200 + n).await);
    }
    let subjects = Arc::new(subjects);
    let before = c.store().await.audit_head().await.unwrap().0;
    const CLIENTS: usize = 32;
    const DECISIONS: usize = 10_000;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let c = Arc::clone(&c);
        let subjects = Arc::clone(&subjects);
        tasks.spawn(async move {
            let mut i = client;
            while i < DECISIONS {
                // allowed (service) and denied (marketing without consent) decisions
                let purpose = if i % 3 == 0 { "marketing" } else { "service" };
                let (s, v) = c.read(i, &subjects[i % subjects.len()], purpose).await;
                assert!(s == 200 || (s == 403 && purpose == "marketing"), "{s} {v}");
                i += CLIENTS;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let took = started.elapsed();
    let head = c.store().await.audit_head().await.unwrap().0;
    assert_eq!(
        head - before,
        i64::try_from(DECISIONS).unwrap(),
        "one entry per decision"
    );
    // the auditor needs the vault's master key: the chain is keyed with it
    let out = pivault(&c.url, &c._dir.path().join("master.key"))
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("audit chain ok: {head} entries")),
        "{out:?}"
    );
    // printed with --nocapture; the CI log shows the rate
    println!(
        "{DECISIONS} decisions through 2 instances by {CLIENTS} clients in {:.1} s; audit verify: {}",
        took.as_secs_f64(),
        stdout.trim()
    );
    assert!(took < Duration::from_secs(240));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deks_created_by_one_instance_open_in_the_other_and_no_subject_gets_two() {
    let Some(c) = Cluster::start("deks_consistent").await else {
        return;
    };
    let c = Arc::new(c);
    // subjects created concurrently through both instances
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..24 {
        let c = Arc::clone(&c);
        tasks.spawn(async move { (n, c.create_subject(n, 300 + n).await) });
    }
    let mut subjects = Vec::new();
    while let Some(r) = tasks.join_next().await {
        subjects.push(r.unwrap());
    }
    // each is written through the instance that did not create it, while both read it
    let mut tasks = tokio::task::JoinSet::new();
    for (n, s) in subjects.clone() {
        let c = Arc::clone(&c);
        tasks.spawn(async move {
            let path = format!("/v1/subjects/{s}/fields");
            let put = c.call(
                n + 1,
                reqwest::Method::PUT,
                &path,
                Some(json!({"purpose": "service", "fields": [
                    {"category": "user.contact.address", "value": format!("地址{n}")}]})),
            );
            let (r0, r1, p) = tokio::join!(c.read(0, &s, "service"), c.read(1, &s, "service"), put);
            assert_eq!((r0.0, r1.0, p.0), (200, 200, 200), "{p:?}");
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let store = c.store().await;
    for (n, s) in &subjects {
        for i in 0..2 {
            let (st, v) = c.read(i, s, "service").await;
            assert_eq!(st, 200);
            let names: Vec<&str> = v["fields"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["category"] == "user.contact.address")
                .map(|f| f["value"].as_str().unwrap())
                .collect();
            assert_eq!(
                names,
                vec![format!("地址{n}")],
                "instance {i} opens the other's fields"
            );
        }
        let keys = store.subject_keys(s).await.unwrap();
        assert_eq!(keys.len(), 1);
        let fields = store.fields(s).await.unwrap();
        assert_eq!(fields.len(), 8);
        assert!(
            fields.iter().all(|f| f.key_id == keys[0].key_id),
            "one DEK per subject"
        );
    }
    // the same subject erased through both instances at once: once, under one restricted DEK
    for (n, s) in subjects.iter().take(8) {
        let path = format!("/v1/subjects/{s}?ground=subject_request");
        let (x, y) = tokio::join!(
            c.call(*n, reqwest::Method::DELETE, &path, None),
            c.call(n + 1, reqwest::Method::DELETE, &path, None)
        );
        let mut st = [x.0, y.0];
        st.sort_unstable();
        assert_eq!(st, [200, 409], "{x:?} {y:?}");
        let keys = store.subject_keys(s).await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].scope, "restricted");
        let fields = store.fields(s).await.unwrap();
        assert_eq!(fields.len(), 3, "the order's three fields are retained");
        assert!(fields.iter().all(|f| f.key_id == keys[0].key_id));
        for i in 0..2 {
            let (st, v) = c.read(i, s, "legal_obligation").await;
            assert_eq!(st, 200, "{v}");
            assert_eq!(v["fields"].as_array().unwrap().len(), 3);
        }
    }
    store.close().await;
}

/// Issue 11: a key revoked through instance A is refused by instance B within 1 s, although B
/// had just authenticated it (and cached the authentication for up to 30 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_on_one_instance_is_refused_on_the_other_within_a_second() {
    let Some(c) = Cluster::start("revoked_key").await else {
        return;
    };
    // an admin key made through A
    let (s, v) = c
        .call(
            0,
            reqwest::Method::POST,
            "/v1/keys",
            Some(json!({"principal": "ops", "roles": ["admin"], "purposes": []})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let id = v["key"]["key_id"].as_str().unwrap().to_string();
    let on_b = |t: String| {
        let http = c.http.clone();
        let url = format!("{}/v1/keys", c.b.base);
        async move {
            let r = http.get(url).bearer_auth(t).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // B authenticates it (and caches it)
    for _ in 0..5 {
        assert_eq!(on_b(token.clone()).await.0, 200);
    }
    let (s, v) = c
        .call(
            0,
            reqwest::Method::POST,
            &format!("/v1/keys/{id}/revoke"),
            Some(json!({})),
        )
        .await;
    assert_eq!((s, v["state"].as_str()), (200, Some("revoked")), "{v}");
    let revoked_at = Instant::now();
    loop {
        let (s, v) = on_b(token.clone()).await;
        if s == 401 {
            assert_eq!(v["error"]["code"], "api_key_revoked");
            break;
        }
        assert_eq!(s, 200);
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "instance B still accepts the revoked key after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = revoked_at.elapsed();
    println!("revoked key refused by the other instance after {took:?}");
    assert!(took < Duration::from_secs(1));
    // and it stays refused
    assert_eq!(on_b(token).await.0, 401);
}
