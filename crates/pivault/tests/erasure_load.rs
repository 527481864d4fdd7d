//! Issue 9, defect 2: erasures under load must not stall the pool. Real `pivault serve`
//! processes (the binary under test) — two on one fresh PostgreSQL database, one on a SQLite
//! file — take, all at once, 40 runs of verified and approved deletion requests
//! (`POST /v1/dsr/{id}/run`) and 50 clients sending a mix of reads, lookups, creates and ~5%
//! erasures (`DELETE /v1/subjects/{id}`). Every request has a 10 s client timeout; the load
//! phase stops starting requests after 60 s. Passing means: no timeout, no 5xx, every run
//! completed, one intact audit chain.
//!
//! The PostgreSQL case needs `PIVAULT_TEST_DATABASE_URL` (else it prints a `SKIPPED` line and
//! returns; `.ci/run` always sets it and counts the `postgres_*` cases of this binary).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_notify::testing::SmtpSink;
use pivault_testkit::bin::{Instance, PivaultBin};
use pivault_testkit::TestDatabase;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Deletion requests run concurrently.
const DSR_RUNS: usize = 40;
/// Mixed clients running beside them, and requests each.
const CLIENTS: usize = 50;
const REQUESTS_PER_CLIENT: usize = 40;
/// Subjects the mixed clients erase (about 5% of their requests) and read.
const DELETABLE: usize = 120;
/// Subjects the mixed clients read and look up, never erased.
const STABLE: usize = 40;
/// Per-request client timeout.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// No request is started after this much of the load phase.
const PHASE_BUDGET: Duration = Duration::from_secs(60);

/// Starts `pivault serve --bind 127.0.0.1:0` mailing codes to `smtp`, and reads its address
/// from the `pivault listening on http://ADDR` line on stderr.
fn serve(url: &str, key_file: &Path, smtp: &str) -> Instance {
    let mut cmd = pivault(url, key_file);
    cmd.env("PIVAULT_SMTP_URL", smtp);
    pivault_testkit::bin::serve(cmd)
}

/// The binary under test on `url` with `key_file`.
fn pivault(url: &str, key_file: &Path) -> std::process::Command {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).with_db(url, key_file)
}

/// One outcome of the load phase, by kind of request.
#[derive(Debug, Default)]
struct Tally {
    /// Answered with an expected status.
    completed: usize,
    /// No answer within [`CLIENT_TIMEOUT`].
    timeouts: usize,
    /// 5xx answers, by status and error code.
    server_errors: Vec<(u16, String)>,
    /// Other failures: unexpected 4xx, connection errors.
    unexpected: Vec<String>,
    /// Requests not started because the phase budget was spent.
    not_started: usize,
    /// (completed, timed out, 5xx) by kind of request.
    by_kind: std::collections::BTreeMap<&'static str, (usize, usize, usize)>,
}

struct Load {
    instances: Vec<Instance>,
    http: reqwest::Client,
    key: String,
    url: String,
    key_file: PathBuf,
    sink: SmtpSink,
    tally: Mutex<Tally>,
    next_account: AtomicUsize,
    deletable: Mutex<Vec<String>>,
    /// (subject id, account id) of the subjects never erased.
    stable: std::sync::OnceLock<Vec<(String, String)>>,
}

enum Outcome {
    Status(u16, Value),
    Timeout,
    Failed(String),
}

impl Load {
    fn base(&self, i: usize) -> &str {
        &self.instances[i % self.instances.len()].base
    }

    async fn call(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        auth: Option<&str>,
        extra: Option<(&str, &str)>,
        body: Option<Value>,
    ) -> Outcome {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base(i)))
            .timeout(CLIENT_TIMEOUT);
        if let Some(k) = auth {
            req = req.bearer_auth(k);
        }
        if let Some((h, v)) = extra {
            req = req.header(h, v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.text().await {
                    Ok(t) => Outcome::Status(status, serde_json::from_str(&t).unwrap_or_default()),
                    Err(e) if e.is_timeout() => Outcome::Timeout,
                    Err(e) => Outcome::Failed(format!("reading body: {e}")),
                }
            }
            Err(e) if e.is_timeout() => Outcome::Timeout,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    /// Setup call: must answer `want`.
    /// A setup call's answer, which must have status `want`.
    fn expect(what: &str, out: Outcome, want: u16) -> Value {
        match out {
            Outcome::Status(s, v) if s == want => v,
            Outcome::Status(s, v) => panic!("{what}: {s} {v}"),
            Outcome::Timeout => panic!("{what}: timed out during setup"),
            Outcome::Failed(e) => panic!("{what}: {e}"),
        }
    }

    /// Records one load-phase request; `ok` lists the statuses it may answer with.
    fn record(&self, what: &'static str, out: Outcome, ok: &[u16]) -> Option<Value> {
        let mut t = self.tally.lock().unwrap();
        let kind = t.by_kind.entry(what).or_default();
        match out {
            Outcome::Status(s, v) if ok.contains(&s) => {
                kind.0 += 1;
                t.completed += 1;
                return Some(v);
            }
            Outcome::Status(s, v) if s >= 500 => {
                kind.2 += 1;
                let code = v["error"]["code"].as_str().unwrap_or("-").to_string();
                t.server_errors.push((s, format!("{what}: {code}")));
            }
            Outcome::Status(s, v) => t.unexpected.push(format!("{what}: {s} {v}")),
            Outcome::Timeout => {
                kind.1 += 1;
                t.timeouts += 1;
            }
            Outcome::Failed(e) => t.unexpected.push(format!("{what}: {e}")),
        }
        None
    }

    fn new_subject_body(n: usize) -> Value {
        json!({"purpose": "service", "fields": [
            {"category": "user.account.id", "value": format!("u8{n:06}")},
            {"category": "user.name", "value": format!("用户{n}")},
            {"category": "user.contact.mobile", "value": format!("1370{n:07}")},
            {"category": "user.contact.email", "value": format!("load{n}@example.com")},
            {"category": "user.transaction.order", "record": "order:o1", "name": "order_id", "value": format!("o{n}")},
            {"category": "user.transaction.amount", "record": "order:o1", "name": "amount_cny", "value": 12.5},
            {"category": "user.transaction.paid_at", "record": "order:o1", "name": "paid_at", "value": "2026-06-01T08:00:00Z"},
        ]})
    }

    async fn create(&self, i: usize, n: usize) -> String {
        let v = Self::expect(
            "create subject",
            self.call(
                i,
                reqwest::Method::POST,
                "/v1/subjects",
                Some(&self.key),
                None,
                Some(Self::new_subject_body(n)),
            )
            .await,
            201,
        );
        v["id"].as_str().unwrap().to_string()
    }

    /// The code mailed for request `id`.
    async fn mailed_code(&self, id: &str) -> String {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            for m in self.sink.messages() {
                let body = m.text_body().unwrap_or_default();
                if body.contains(&format!("Request: {id}")) {
                    let at = body.find("code is ").expect("code sentence") + "code is ".len();
                    return body[at..].chars().take(6).collect();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no mail for request {id}");
    }

    /// Files a deletion request for account `n`, verifies it with the mailed code and approves
    /// it: the request is `in_progress`, ready to run.
    async fn approved_deletion(&self, i: usize, n: usize) -> String {
        let v = Self::expect(
            "file deletion",
            self.call(
                i,
                reqwest::Method::POST,
                "/v1/dsr",
                None,
                None,
                Some(json!({"kind": "deletion", "email": format!("load{n}@example.com")})),
            )
            .await,
            202,
        );
        let id = v["requests"][0]["id"].as_str().unwrap().to_string();
        let token = v["requests"][0]["token"].as_str().unwrap().to_string();
        let code = self.mailed_code(&id).await;
        Self::expect(
            "verify",
            self.call(
                i + 1,
                reqwest::Method::POST,
                &format!("/v1/dsr/{id}/verify"),
                None,
                Some(("x-dsr-token", &token)),
                Some(json!({ "code": code })),
            )
            .await,
            200,
        );
        let v = Self::expect(
            "approve",
            self.call(
                i,
                reqwest::Method::POST,
                &format!("/v1/dsr/{id}/approve"),
                Some(&self.key),
                None,
                Some(json!({})),
            )
            .await,
            200,
        );
        assert_eq!(v["state"], "in_progress");
        id
    }

    /// One mixed client: ~5% erasures, 10% creates, 15% lookups, the rest reads.
    async fn client(self: Arc<Self>, client: usize, deadline: Instant) {
        for k in 0..REQUESTS_PER_CLIENT {
            if Instant::now() >= deadline {
                self.tally.lock().unwrap().not_started += REQUESTS_PER_CLIENT - k;
                return;
            }
            let i = client + k;
            let roll = (client * 7919 + k * 104_729) % 100;
            let stable = self.stable.get().expect("seeded before the load phase");
            let (stable_id, stable_account) = &stable[(client * 31 + k) % stable.len()];
            if roll < 5 {
                let victim = self.deletable.lock().unwrap().pop();
                if let Some(s) = victim {
                    let out = self
                        .call(
                            i,
                            reqwest::Method::DELETE,
                            &format!("/v1/subjects/{s}?ground=subject_request"),
                            Some(&self.key),
                            None,
                            None,
                        )
                        .await;
                    self.record("erase", out, &[200]);
                    continue;
                }
            }
            if roll < 15 {
                let n = self.next_account.fetch_add(1, Ordering::SeqCst);
                let out = self
                    .call(
                        i,
                        reqwest::Method::POST,
                        "/v1/subjects",
                        Some(&self.key),
                        None,
                        Some(Self::new_subject_body(n)),
                    )
                    .await;
                self.record("create", out, &[201]);
            } else if roll < 30 {
                let out = self
                    .call(
                        i,
                        reqwest::Method::POST,
                        "/v1/lookup",
                        Some(&self.key),
                        None,
                        Some(json!({"by": "account_id", "value": stable_account, "purpose": "service"})),
                    )
                    .await;
                if let Some(v) = self.record("lookup", out, &[200]) {
                    assert_eq!(v["count"], 1, "{v}");
                }
            } else {
                // reads of subjects that may be erased meanwhile (403 then) and of stable ones
                let target = if roll % 2 == 0 {
                    let d = self.deletable.lock().unwrap();
                    d.get((client + k) % d.len().max(1))
                        .cloned()
                        .unwrap_or_else(|| stable_id.clone())
                } else {
                    stable_id.clone()
                };
                let out = self
                    .call(
                        i,
                        reqwest::Method::GET,
                        &format!("/v1/subjects/{target}/fields?purpose=service"),
                        Some(&self.key),
                        None,
                        None,
                    )
                    .await;
                self.record("read", out, &[200, 403]);
            }
        }
    }
}

/// Starts `instances` servers on `url`, seeds subjects and approved deletion requests, runs
/// the load phase and checks the outcome.
async fn run_load(url: String, instances: usize, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    let sink = SmtpSink::start().await;
    // The first instance starts on the empty database: it applies the migrations and creates
    // the (development) master key file the second one then shares.
    let mut started = vec![serve(&url, &key_file, &sink.url())];
    for _ in 1..instances {
        started.push(serve(&url, &key_file, &sink.url()));
    }
    let key = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).api_key_all_purposes(
        &url,
        &key_file,
        "privacy-office",
        // admin files, approves and runs erasures; app creates, looks up and reads (roles are
        // explicit, and the admin rules of the staff policy then mask what it reads).
        &["app", "admin"],
    );
    let load = Arc::new(Load {
        instances: started,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(128)
            .build()
            .unwrap(),
        key,
        url: url.clone(),
        key_file: key_file.clone(),
        sink,
        tally: Mutex::new(Tally::default()),
        next_account: AtomicUsize::new(DSR_RUNS + DELETABLE + STABLE),
        deletable: Mutex::new(Vec::new()),
        stable: std::sync::OnceLock::new(),
    });

    // Setup: subjects 0..DSR_RUNS get deletion requests; then the deletable and stable ones.
    let setup = Instant::now();
    let total = DSR_RUNS + DELETABLE + STABLE;
    let mut created = vec![String::new(); total];
    for chunk in (0..total).collect::<Vec<_>>().chunks(16) {
        let mut set = tokio::task::JoinSet::new();
        for &n in chunk {
            let l = Arc::clone(&load);
            set.spawn(async move { (n, l.create(n, n).await) });
        }
        while let Some(r) = set.join_next().await {
            let (n, id) = r.unwrap();
            created[n] = id;
        }
    }
    *load.deletable.lock().unwrap() = created[DSR_RUNS..DSR_RUNS + DELETABLE].to_vec();
    load.stable
        .set(
            (DSR_RUNS + DELETABLE..total)
                .map(|n| (created[n].clone(), format!("u8{n:06}")))
                .collect(),
        )
        .unwrap();
    let mut dsr_ids = Vec::new();
    for chunk in (0..DSR_RUNS).collect::<Vec<_>>().chunks(8) {
        let mut set = tokio::task::JoinSet::new();
        for &n in chunk {
            let l = Arc::clone(&load);
            set.spawn(async move { l.approved_deletion(n, n).await });
        }
        while let Some(r) = set.join_next().await {
            dsr_ids.push(r.unwrap());
        }
    }
    let setup_took = setup.elapsed();

    // Load phase: every run and every client at once.
    let phase = Instant::now();
    let deadline = phase + PHASE_BUDGET;
    let mut tasks = tokio::task::JoinSet::new();
    let runs: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
    for (i, id) in dsr_ids.iter().enumerate() {
        let l = Arc::clone(&load);
        let id = id.clone();
        let runs = Arc::clone(&runs);
        tasks.spawn(async move {
            let out = l
                .call(
                    i,
                    reqwest::Method::POST,
                    &format!("/v1/dsr/{id}/run"),
                    Some(&l.key),
                    None,
                    Some(json!({})),
                )
                .await;
            if let Some(v) = l.record("dsr.run", out, &[200]) {
                runs.lock().unwrap().insert(id, v);
            }
        });
    }
    for c in 0..CLIENTS {
        tasks.spawn(Arc::clone(&load).client(c, deadline));
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let took = phase.elapsed();
    let t = std::mem::take(&mut *load.tally.lock().unwrap());
    let attempted = DSR_RUNS + CLIENTS * REQUESTS_PER_CLIENT - t.not_started;
    // printed with --nocapture; the CI log shows it
    println!(
        "{label}: {instances} instance(s), {DSR_RUNS} deletion runs + {CLIENTS} mixed clients: \
         {attempted} requests started in {:.1} s (setup {:.1} s): completed {}, timeouts {}, \
         5xx {}, unexpected {}, not started {}; (completed, timeouts, 5xx) by kind {:?}",
        took.as_secs_f64(),
        setup_took.as_secs_f64(),
        t.completed,
        t.timeouts,
        t.server_errors.len(),
        t.unexpected.len(),
        t.not_started,
        t.by_kind,
    );
    let mut codes: HashMap<&str, usize> = HashMap::new();
    for (_, c) in &t.server_errors {
        *codes.entry(c.as_str()).or_default() += 1;
    }
    assert!(
        t.timeouts == 0 && t.server_errors.is_empty() && t.unexpected.is_empty() && t.not_started == 0,
        "{label}: timeouts {}, 5xx by request and code {codes:?}, unexpected (first 5) {:?}, not started {}",
        t.timeouts,
        t.unexpected.iter().take(5).collect::<Vec<_>>(),
        t.not_started
    );
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), DSR_RUNS);
    for (id, v) in &runs {
        assert_eq!(v["state"], "completed", "{id}: {v}");
        assert!(v.get("receipt").is_some_and(|r| !r.is_null()), "{id}: {v}");
    }
    // one intact audit chain after all of it
    let out = pivault(&load.url, &load.key_file)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("audit chain ok"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_instances_serve_erasures_and_mixed_load_without_timeouts_or_5xx() {
    let Some(db) = TestDatabase::for_test("erasure_load::postgres_two_instances").await else {
        return;
    };
    run_load(db.url().to_string(), 2, "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_one_instance_serves_erasures_and_mixed_load_without_timeouts_or_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("pivault.db").display());
    run_load(url, 1, "sqlite").await;
}
