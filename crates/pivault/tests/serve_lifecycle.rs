//! `pivault serve` as an operator runs it (the real binary): JSON logs carrying the request
//! id, HTTPS with a certificate made here, `/readyz` against the database's state, and the
//! drain on SIGTERM with no acknowledged write lost — on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::{start_serve, PivaultBin, Started};
use pivault_testkit::TestDatabase;
use serde_json::{json, Value};
use sqlx::Connection;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn bin() -> PivaultBin {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault"))
}

/// A database (SQLite in a temp dir, or a throwaway PostgreSQL database) and a key file.
struct Env {
    dir: tempfile::TempDir,
    url: String,
    key_file: PathBuf,
    db: Option<TestDatabase>,
}

impl Env {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("v.db").display());
        let key_file = dir.path().join("master.key");
        Self {
            dir,
            url,
            key_file,
            db: None,
        }
    }

    async fn postgres(what: &str) -> Option<Self> {
        let db = TestDatabase::for_test(what).await?;
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("master.key");
        Some(Self {
            url: db.url().to_string(),
            dir,
            key_file,
            db: Some(db),
        })
    }

    fn cmd(&self) -> Command {
        bin().with_db(&self.url, &self.key_file)
    }

    fn app_key(&self) -> String {
        bin().api_key_all_purposes(&self.url, &self.key_file, "billing", &["app"])
    }

    async fn connect(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.url).await.unwrap()
    }
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits for the child to exit (at most `secs`); its exit code.
fn wait_exit(child: &mut Child, secs: u64) -> Option<i32> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        assert!(
            Instant::now() < until,
            "pivault serve did not exit within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn create_body(n: usize) -> Value {
    json!({"purpose": "service", "fields": [
        {"category": "user.account.id", "value": format!("lc{n:07}")},
        {"category": "user.name", "value": format!("用户{n}")},
    ]})
}

#[tokio::test]
async fn json_logs_carry_the_request_id_of_every_request() {
    let env = Env::sqlite();
    let key = env.app_key();
    let mut cmd = env.cmd();
    cmd.args(["--log-format", "json", "--log-level", "info,sqlx=warn"]);
    let Started {
        mut child,
        base,
        before,
        rest,
    } = start_serve(cmd);
    let http = reqwest::Client::new();
    let mut ids = BTreeSet::new();
    let mut remember = |r: &reqwest::Response| {
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(!id.is_empty());
        ids.insert(id);
    };
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    remember(&r);
    let r = http
        .post(format!("{base}/v1/subjects"))
        .bearer_auth(&key)
        .json(&create_body(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    remember(&r);
    let subject = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .get(format!(
            "{base}/v1/subjects/{subject}/fields?purpose=service"
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    remember(&r);
    let r = http
        .post(format!("{base}/v1/subjects"))
        .json(&create_body(2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    remember(&r);
    let r = http
        .get(format!("{base}/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    remember(&r);
    assert_eq!(ids.len(), 5);

    sigterm(&child);
    let rest: Vec<String> = rest.map_while(Result::ok).collect();
    assert_eq!(wait_exit(&mut child, 30), Some(0));

    let mut seen = BTreeSet::new();
    let mut request_lines = 0;
    for line in before.iter().chain(rest.iter()) {
        // The two plain lines for people (and the test kit): listening and stopped.
        if line.starts_with("pivault listening on ") || line.starts_with("pivault stopped on ") {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        let in_request = v["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == "http"));
        if in_request {
            request_lines += 1;
            let id = v["span"]["request_id"]
                .as_str()
                .unwrap_or_else(|| panic!("a request's line without request_id: {line}"));
            assert!(ids.contains(id), "unknown request id {id}: {line}");
            seen.insert(id.to_string());
        }
    }
    assert_eq!(seen, ids, "every request has its lines, with its id");
    assert!(request_lines >= ids.len());
}

/// A self-signed certificate for `localhost` and 127.0.0.1: (cert PEM, key PEM).
fn self_signed() -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    (c.cert.pem(), c.key_pair.serialize_pem())
}

#[tokio::test]
async fn tls_serves_https_and_bad_files_stop_startup() {
    let env = Env::sqlite();
    let (cert, key) = self_signed();
    let d = env.dir.path();
    std::fs::write(d.join("cert.pem"), &cert).unwrap();
    std::fs::write(d.join("key.pem"), &key).unwrap();
    // (start_serve adds `serve --bind`; the TLS files come from the environment here, and
    // from the flags below)
    let mut cmd = env.cmd();
    cmd.current_dir(d)
        .env("PIVAULT_TLS_CERT", "cert.pem")
        .env("PIVAULT_TLS_KEY", "key.pem");
    cmd.env("PIVAULT_SHUTDOWN_TIMEOUT_SECS", "5");
    let Started {
        mut child,
        base,
        rest,
        ..
    } = start_serve(cmd);
    std::thread::spawn(move || for _ in rest {});
    let addr = base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("not https: {base}"))
        .parse::<std::net::SocketAddr>()
        .unwrap();
    let trusted = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}", addr.port());
    let r = trusted.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.text().await.unwrap(), "ok");
    let r = trusted.get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // a client that does not trust the certificate, and plain HTTP, get nothing
    let untrusted = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .resolve("localhost", addr)
        .build()
        .unwrap();
    assert!(untrusted
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_err());
    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, 30), Some(0));

    // bad files: a clear error at startup, before listening
    let (_, other_key) = self_signed();
    std::fs::write(d.join("other.key"), other_key).unwrap();
    std::fs::write(d.join("junk.pem"), "not a certificate\n").unwrap();
    for (cert, key, want) in [
        ("missing.pem", "key.pem", "TLS certificate missing.pem"),
        ("cert.pem", "missing.key", "TLS private key missing.key"),
        (
            "junk.pem",
            "key.pem",
            "TLS certificate junk.pem: no PEM CERTIFICATE block",
        ),
        (
            "cert.pem",
            "other.key",
            "TLS certificate cert.pem with key other.key",
        ),
    ] {
        let out = env
            .cmd()
            .current_dir(d)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--tls-cert",
                cert,
                "--tls-key",
                key,
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cert} {key}: {err}");
        assert!(err.contains(want), "{cert} {key}: want {want:?} in {err}");
        assert!(err.contains("(tls_cert from flag --tls-cert"), "{err}");
        assert!(!err.contains("listening"), "{err}");
    }
}

/// `GET /readyz` → (status, code or "ready").
async fn readyz(http: &reqwest::Client, base: &str) -> (u16, String) {
    match http.get(format!("{base}/readyz")).send().await {
        Err(e) => (0, e.to_string()),
        Ok(r) => {
            let s = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let code = v["error"]["code"]
                .as_str()
                .or(v["status"].as_str())
                .unwrap_or("?")
                .to_string();
            (s, code)
        }
    }
}

async fn readyz_checks(env: &Env) {
    let s = start_serve(env.cmd());
    let mut child = s.child;
    let base = s.base;
    std::thread::spawn(move || for _ in s.rest {});
    let http = reqwest::Client::new();
    assert_eq!(readyz(&http, &base).await, (200, "ready".into()));

    let mut db = env.connect().await;
    // a migration of this build missing from the database
    let last: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let set_success = |ok: bool| {
        format!(
            "UPDATE _sqlx_migrations SET success = {} WHERE version = {last}",
            if ok { "true" } else { "false" }
        )
    };
    sqlx::query(&set_success(false))
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(
        readyz(&http, &base).await,
        (503, "migrations_pending".into())
    );
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "liveness is not readiness");
    sqlx::query(&set_success(true))
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(readyz(&http, &base).await, (200, "ready".into()));

    // the database records another key's check value
    let kcv: Vec<u8> = sqlx::query_scalar("SELECT key_check FROM vault_meta")
        .fetch_one(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE vault_meta SET key_check = $1")
        .bind(vec![0u8; 32])
        .execute(&mut db)
        .await
        .unwrap();
    let r = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "master_key_not_loaded");
    sqlx::query("UPDATE vault_meta SET key_check = $1")
        .bind(kcv)
        .execute(&mut db)
        .await
        .unwrap();
    assert_eq!(readyz(&http, &base).await, (200, "ready".into()));
    drop(db);
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, 30), Some(0));
}

#[tokio::test]
async fn readyz_follows_the_database_sqlite() {
    readyz_checks(&Env::sqlite()).await;
}

#[tokio::test]
async fn readyz_follows_the_database_postgres() {
    let Some(mut env) =
        Env::postgres("serve_lifecycle::readyz_follows_the_database_postgres").await
    else {
        return;
    };
    readyz_checks(&env).await;
    // the database goes away under a running server: not ready, with a code
    let s = start_serve(env.cmd());
    let mut child = s.child;
    let base = s.base;
    std::thread::spawn(move || for _ in s.rest {});
    let http = reqwest::Client::new();
    assert_eq!(readyz(&http, &base).await, (200, "ready".into()));
    drop(env.db.take()); // DROP DATABASE … WITH (FORCE)
    let (status, code) = readyz(&http, &base).await;
    assert_eq!(status, 503, "{code}");
    assert!(code.starts_with("storage_"), "{code}");
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, 30), Some(0));
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    subjects: Vec<String>,
    consents: Vec<String>,
    /// 2xx answers received after SIGTERM was sent.
    ok_after_signal: usize,
    transport_errors: usize,
    unavailable: usize,
    /// Anything else: a failure of the test.
    other: Vec<String>,
}

async fn writer(
    http: reqwest::Client,
    base: String,
    key: String,
    next: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    signalled: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let r = http
            .post(format!("{base}/v1/subjects"))
            .bearer_auth(&key)
            .json(&create_body(n))
            .send()
            .await;
        let subject = match classify(r, &signalled, &seen).await {
            Some(v) => v["id"].as_str().unwrap().to_string(),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        seen.lock().unwrap().subjects.push(subject.clone());
        let r = http
            .post(format!("{base}/v1/subjects/{subject}/consents"))
            .bearer_auth(&key)
            .json(&json!({"purpose": "marketing", "action": "grant", "separate": true}))
            .send()
            .await;
        if let Some(v) = classify(r, &signalled, &seen).await {
            let event = v["event_ref"].as_str().unwrap().to_string();
            seen.lock().unwrap().consents.push(event);
        }
    }
}

/// The body of a 2xx; counts everything else.
async fn classify(
    r: reqwest::Result<reqwest::Response>,
    signalled: &AtomicBool,
    seen: &Mutex<Seen>,
) -> Option<Value> {
    match r {
        Err(_) => {
            seen.lock().unwrap().transport_errors += 1;
            None
        }
        Ok(r) if r.status().is_success() => {
            let status = r.status();
            match r.json::<Value>().await {
                Ok(v) => {
                    if signalled.load(Ordering::Relaxed) {
                        seen.lock().unwrap().ok_after_signal += 1;
                    }
                    Some(v)
                }
                // the connection died while the body was read: not an acknowledgement
                Err(e) => {
                    seen.lock()
                        .unwrap()
                        .other
                        .push(format!("{status} with a broken body: {e}"));
                    None
                }
            }
        }
        Ok(r) if r.status() == 503 => {
            seen.lock().unwrap().unavailable += 1;
            None
        }
        Ok(r) => {
            let s = r.status();
            let body = r.text().await.unwrap_or_default();
            seen.lock().unwrap().other.push(format!("{s} {body}"));
            None
        }
    }
}

async fn sigterm_drains(env: Env) {
    let key = env.app_key();
    let mut cmd = env.cmd();
    cmd.env("PIVAULT_SHUTDOWN_TIMEOUT_SECS", "20");
    let Started {
        mut child,
        base,
        rest,
        ..
    } = start_serve(cmd);
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let reader = std::thread::spawn(move || {
        for l in rest.map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let signalled = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let writers: Vec<_> = (0..12)
        .map(|_| {
            tokio::spawn(writer(
                http.clone(),
                base.clone(),
                key.clone(),
                Arc::clone(&next),
                Arc::clone(&stop),
                Arc::clone(&signalled),
                Arc::clone(&seen),
            ))
        })
        .collect();
    let until = Instant::now() + Duration::from_secs(20);
    while seen.lock().unwrap().consents.len() < 150 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = seen.lock().unwrap().subjects.len();
    assert!(before > 0, "no write succeeded before the signal");
    signalled.store(true, Ordering::Relaxed);
    sigterm(&child);
    // the writers go on while the server drains and stops
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let code = tokio::task::spawn_blocking(move || wait_exit(&mut child, 30))
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    reader.join().unwrap();
    let log = log.lock().unwrap().join("\n");
    assert_eq!(code, Some(0), "serve did not exit 0:\n{log}");
    assert!(
        log.contains("pivault stopped on SIGTERM: requests drained"),
        "{log}"
    );

    // Taken out of the mutex: the checks below await.
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.other.is_empty(),
        "answers other than 2xx/503: {:?}",
        seen.other
    );
    assert!(seen.ok_after_signal > 0, "no request in flight was drained");
    assert!(
        seen.transport_errors > 0,
        "new connections were still accepted"
    );
    eprintln!(
        "drain: {} subjects and {} consents acknowledged ({before} subjects before SIGTERM, {} \
         answers after it), {} connection errors, {} 503",
        seen.subjects.len(),
        seen.consents.len(),
        seen.ok_after_signal,
        seen.transport_errors,
        seen.unavailable
    );

    // every acknowledged write is in the database after the restart…
    let mut db = env.connect().await;
    let subjects: BTreeSet<String> = sqlx::query_scalar("SELECT id FROM subjects")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let consents: BTreeSet<String> = sqlx::query_scalar("SELECT event_ref FROM consent_events")
        .fetch_all(&mut db)
        .await
        .unwrap()
        .into_iter()
        .collect();
    drop(db);
    let lost: Vec<_> = seen
        .subjects
        .iter()
        .filter(|s| !subjects.contains(*s))
        .collect();
    assert!(lost.is_empty(), "acknowledged subjects lost: {lost:?}");
    let lost: Vec<_> = seen
        .consents
        .iter()
        .filter(|c| !consents.contains(*c))
        .collect();
    assert!(lost.is_empty(), "acknowledged consents lost: {lost:?}");
    // …and the audit chain holds, and agrees with the vault's contents
    let out = env.cmd().args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("audit chain ok"));
    // and the vault serves again
    let s = start_serve(env.cmd());
    let mut child = s.child;
    let again = s.base;
    std::thread::spawn(move || for _ in s.rest {});
    let r = reqwest::get(format!("{again}/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, 30), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_loses_no_acknowledged_write_sqlite() {
    sigterm_drains(Env::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_loses_no_acknowledged_write_postgres() {
    let Some(env) =
        Env::postgres("serve_lifecycle::sigterm_drains_and_loses_no_acknowledged_write_postgres")
            .await
    else {
        return;
    };
    sigterm_drains(env).await;
}
