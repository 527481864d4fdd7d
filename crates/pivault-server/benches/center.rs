//! Issue 14 "Pages stay fast": server-side render time of the privacy center's pages for a
//! signed-in subject with 50 orders, on SQLite.
//!
//! Not a test: `cargo test` does not run it. A fresh vault imports one account of the data set
//! (the first row of `users.csv`) with 50 orders (the data set's first 50 order rows given to
//! that account) and its consent events; the account is read 50 times by an application key
//! (so the access-history page has 50 entries) and has a session opened as a verified sign-in
//! would. Timed: each page through the whole router in process (`tower::ServiceExt::oneshot`:
//! routing, the security-header layer, the session and cookie-ledger lookups, the use case,
//! the template), `--reps` times after 20 warm-up requests; the median and p99 are printed per
//! page. Target: median ≤ 5 ms.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p pivault-server --bench center -- [--reps 500]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::body::Body;
use axum::http::Request;
use pivault_core::import::{import_dir, NoProgress};
use pivault_core::Vault;
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::SystemClock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

fn policy() -> Policy {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml");
    Policy::parse(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn data() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/zh_CN-10k")
}

/// Writes `users.csv` (one account), `orders.csv` (50 orders of it) and `consent_events.csv`
/// (its events) into `dir`; returns the account id.
fn one_account(dir: &Path) -> String {
    let users = std::fs::read_to_string(data().join("users.csv")).unwrap();
    let mut lines = users.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let account = row.split(',').next().unwrap().to_string();
    std::fs::write(dir.join("users.csv"), format!("{header}\n{row}\n")).unwrap();
    let orders = std::fs::read_to_string(data().join("orders.csv")).unwrap();
    let mut ol = orders.lines();
    let mut out = format!("{}\n", ol.next().unwrap());
    for l in ol.take(50) {
        let mut cols: Vec<&str> = l.split(',').collect();
        cols[1] = &account;
        out.push_str(&cols.join(","));
        out.push('\n');
    }
    std::fs::write(dir.join("orders.csv"), out).unwrap();
    let consents = std::fs::read_to_string(data().join("consent_events.csv")).unwrap();
    let mut cl = consents.lines();
    let mut out = format!("{}\n", cl.next().unwrap());
    for l in cl.filter(|l| l.split(',').nth(1) == Some(account.as_str())) {
        out.push_str(l);
        out.push('\n');
    }
    std::fs::write(dir.join("consent_events.csv"), out).unwrap();
    account
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut reps = 500usize;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--reps" => reps = it.next().unwrap().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let account = one_account(&input);
    let (master, _) = MasterSecret::load_or_create(&work.path().join("master.key")).unwrap();
    let store = Store::connect(&format!(
        "sqlite://{}",
        work.path().join("pivault.db").display()
    ))
    .await
    .unwrap();
    let vault = Arc::new(
        Vault::new(
            store.clone(),
            KeyRing::new(master, Suite::Aes256Gcm),
            policy(),
            Arc::new(SystemClock),
        )
        .await
        .unwrap(),
    );
    let rep = import_dir(&vault, &input, &work.path().join("rejects"), &NoProgress)
        .await
        .unwrap();
    eprintln!("imported: {rep:?}");
    let subject = pivault_store::testing::column(
        &store,
        "SELECT subject_id FROM fields WHERE category = 'user.account.id' LIMIT 1",
        &[],
    )
    .await
    .unwrap()
    .remove(0);
    let orders = pivault_store::testing::column(
        &store,
        &format!("SELECT COUNT(DISTINCT record) FROM fields WHERE subject_id = '{subject}' AND category = 'user.transaction.order'"),
        &[],
    )
    .await
    .unwrap();
    eprintln!("account {account}: subject {subject}, order records {orders:?}");
    // 50 audited reads by an application, for the access history.
    let app = pivault_core::Principal {
        name: "billing".into(),
        roles: vec!["app".into()],
        purposes: vec!["service".into()],
        key_id: Some("0000000000000001".into()),
    };
    for _ in 0..50 {
        vault
            .read_fields(&app, &subject, "service", &[], None)
            .await
            .unwrap();
    }
    // A session, as a verified sign-in opens one.
    let token = "pvs_benchmarksessiontoken0000000000000000000000";
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut tx = store.begin(now).await.unwrap();
    assert!(tx
        .insert_center_session(
            &pivault_crypto::token_hash(token),
            "bench-signin",
            &subject,
            (now, now + 3_600),
            "self",
        )
        .await
        .unwrap());
    tx.commit().await.unwrap();
    let visitor = "0123456789abcdef0123456789abcdef";
    vault
        .cookie_record(
            visitor,
            Some(&subject),
            pivault_core::CookieMethod::RejectAll,
            &[],
        )
        .await
        .unwrap();
    let router = pivault_server::router(pivault_server::AppState {
        vault: Arc::clone(&vault),
    });
    let cookie = format!("pv_session={token}; pv_visitor={visitor}; pv_lang=zh-CN");
    println!("page                 median_ms   p99_ms   bytes   (reps {reps})");
    for page in [
        "/",
        "/policy",
        "/me",
        "/me/consents",
        "/me/recipients",
        "/me/access",
        "/me/requests",
    ] {
        let mut times = Vec::with_capacity(reps);
        let mut bytes = 0;
        for i in 0..reps + 20 {
            let req = Request::get(page)
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap();
            let t = Instant::now();
            let res = router.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), 200, "{page}");
            let body = axum::body::to_bytes(res.into_body(), 1 << 24)
                .await
                .unwrap();
            let dt = t.elapsed().as_secs_f64() * 1e3;
            if i >= 20 {
                times.push(dt);
            }
            bytes = body.len();
        }
        let median = percentile(&mut times, 0.5);
        let p99 = percentile(&mut times, 0.99);
        println!("{page:<20} {median:>9.3} {p99:>8.3} {bytes:>7}");
    }
}
