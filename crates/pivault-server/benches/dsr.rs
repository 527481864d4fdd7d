//! Issue 5 "Speed": end-to-end data subject requests over HTTP on SQLite.
//!
//! Not a test: `cargo test` does not run it. Prepare a store with the release CLI (from the
//! repository root, so `policies/default.toml` is found):
//!
//! ```text
//! PIVAULT_DATABASE_URL=sqlite:///work/bench-data/10k/pivault.db \
//! PIVAULT_MASTER_KEY_FILE=/work/bench-data/10k/master.key \
//!   target/release/pivault import /work/shared/data/zh_CN-10k --rejects /work/bench-data/10k/rejects
//! ```
//!
//! then run (from the repository root):
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p pivault-server --bench dsr -- \
//!   --store /work/bench-data/10k --data /work/shared/data/zh_CN-10k \
//!   [--work /tmp/dsr-bench-work] [--seq 300] [--conc 600] [--inflight 50] [--reps 3] \
//!   [--seed 5] [--kinds access,erasure]
//! ```
//!
//! The store directory (`pivault.db`, `master.key`) is never written: it is copied to the work
//! directory first (the copy is deleted at the end unless `--keep`), because preparing and
//! erasing requests mutate it. Each repetition uses fresh, distinct accounts.
//!
//! What is timed: the privacy office's execution of an approved request over HTTP, with an
//! admin API key — `POST /v1/dsr/{id}/run` — and for access also the requester's download
//! `GET /v1/dsr/{id}/result` (`X-Dsr-Token`). Filing, verification (the one-time code is
//! captured from the message by an in-process `CodeSender`, no SMTP) and approval are done
//! beforehand through the `Vault` and are not timed. The server (`pivault_server::serve`) runs
//! in the same process on 127.0.0.1:0; one `reqwest::Client` with keep-alive.
//!
//! Per repetition: `--seq` requests one after another (p50/p99 per request), then `--conc`
//! other requests with `--inflight` in flight (requests/s = completed / wall time).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The allocator the `pivault` binary ships with (its `main.rs`), so that the server measured
/// here is the server as deployed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pivault_core::dsr::{Channel, CodeSender, DsrInput, SendFuture};
use pivault_core::ports::{Outgoing, SendFailure, SignedPost};
use pivault_core::{Principal, Vault};
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::SystemClock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Captures each request's one-time code from the message body.
#[derive(Default)]
struct Capture(Mutex<HashMap<String, String>>);

impl CodeSender for Capture {
    fn send<'a>(&'a self, m: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let body = m.body;
            let fail = |code| SendFailure {
                code,
                permanent: true,
                status: None,
            };
            let at = body.find("code is ").ok_or_else(|| fail("no_code"))? + "code is ".len();
            let code: String = body[at..].chars().take(6).collect();
            let rq = body.find("Request: ").ok_or_else(|| fail("no_request"))? + "Request: ".len();
            let id: String = body[rq..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            self.0.lock().unwrap().insert(id, code);
            Ok(())
        })
    }

    fn channels(&self) -> Vec<Channel> {
        vec![Channel::Email, Channel::Sms]
    }

    fn has_webhook(&self, _recipient: &str) -> bool {
        false
    }

    fn post_webhook<'a>(&'a self, _recipient: &'a str, _post: SignedPost<'a>) -> SendFuture<'a> {
        Box::pin(async { Err(SendFailure::no_channel()) })
    }
}

struct Args {
    store: PathBuf,
    data: PathBuf,
    work: PathBuf,
    seq: usize,
    conc: usize,
    inflight: usize,
    reps: usize,
    seed: u64,
    kinds: Vec<String>,
    keep: bool,
}

fn args() -> Args {
    let mut a = Args {
        store: PathBuf::new(),
        data: PathBuf::new(),
        work: std::env::temp_dir().join(format!("pivault-dsr-bench-{}", std::process::id())),
        seq: 300,
        conc: 600,
        inflight: 50,
        reps: 3,
        seed: 5,
        kinds: vec!["access".into(), "erasure".into()],
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--store" => a.store = v().into(),
            "--data" => a.data = v().into(),
            "--work" => a.work = v().into(),
            "--seq" => a.seq = v().parse().unwrap(),
            "--conc" => a.conc = v().parse().unwrap(),
            "--inflight" => a.inflight = v().parse().unwrap(),
            "--reps" => a.reps = v().parse().unwrap(),
            "--seed" => a.seed = v().parse().unwrap(),
            "--kinds" => a.kinds = v().split(',').map(str::to_string).collect(),
            "--keep" => a.keep = true,
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.store.join("pivault.db").is_file(),
        "--store DIR must hold pivault.db"
    );
    assert!(
        a.data.join("users.csv").is_file(),
        "--data DIR must hold users.csv"
    );
    a
}

/// splitmix64: a seeded shuffle without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Emails held by exactly one account of the data set, shuffled.
fn candidate_emails(data: &Path, seed: u64) -> Vec<String> {
    let mut r = csv::Reader::from_path(data.join("users.csv")).unwrap();
    let col = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "email")
        .unwrap();
    let mut count: HashMap<String, u32> = HashMap::new();
    let mut rec = csv::StringRecord::new();
    while r.read_record(&mut rec).unwrap() {
        let e = rec[col].trim().to_lowercase();
        if e.contains('@') {
            *count.entry(e).or_default() += 1;
        }
    }
    let mut v: Vec<String> = count
        .into_iter()
        .filter(|(_, n)| *n == 1)
        .map(|(e, _)| e)
        .collect();
    v.sort();
    Rng(seed).shuffle(&mut v);
    v
}

fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in [
        "pivault.db",
        "pivault.db-wal",
        "pivault.db-shm",
        "master.key",
    ] {
        let _ = std::fs::remove_file(to.join(f));
        if from.join(f).is_file() {
            std::fs::copy(from.join(f), to.join(f)).unwrap();
        }
    }
}

fn policy_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../policies")
        .join(name)
}

/// A prepared, approved request: (id, requester token).
type Prepared = (String, String);

struct Bench {
    vault: Arc<Vault>,
    store: Store,
    codes: Arc<Capture>,
    operator: Principal,
    emails: Vec<String>,
    next_email: usize,
    http: reqwest::Client,
    base: String,
    admin_key: String,
}

impl Bench {
    /// Files, verifies and approves `n` requests of `kind` for accounts not used before.
    async fn prepare(&mut self, kind: &str, n: usize) -> Vec<Prepared> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let email = self
                .emails
                .get(self.next_email)
                .unwrap_or_else(|| panic!("the data set ran out of accounts after {}", out.len()))
                .clone();
            self.next_email += 1;
            let input = DsrInput {
                kind: kind.into(),
                email: Some(email),
                ..DsrInput::default()
            };
            let Ok(created) = self.vault.dsr_create(&input).await else {
                continue;
            };
            if created.len() != 1 {
                continue;
            }
            let c = &created[0];
            let Some(code) = self.codes.0.lock().unwrap().remove(&c.id) else {
                continue; // no subject matched, or no address
            };
            self.vault.dsr_verify(&c.id, &c.token, &code).await.unwrap();
            let v = self.vault.dsr_approve(&self.operator, &c.id).await.unwrap();
            assert_eq!(v.state, "in_progress");
            out.push((c.id.clone(), c.token.clone()));
        }
        out
    }
}

/// Runs a request; with `download`, also fetches the access package. Returns (run, download).
async fn execute(
    http: &reqwest::Client,
    base: &str,
    admin_key: &str,
    (id, token): &Prepared,
    download: bool,
) -> (Duration, Duration) {
    let t0 = Instant::now();
    let r = http
        .post(format!("{base}/v1/dsr/{id}/run"))
        .bearer_auth(admin_key)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["state"], "completed", "{v}");
    let t1 = Instant::now();
    if download {
        let r = http
            .get(format!("{base}/v1/dsr/{id}/result"))
            .header("x-dsr-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.bytes().await.unwrap();
        assert!(body.len() > 100);
    }
    (t1 - t0, t1.elapsed())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One repetition's numbers for one kind.
#[derive(Debug, Clone, Default)]
struct Rep {
    total_p50: f64,
    total_p99: f64,
    run_p50: f64,
    run_p99: f64,
    dl_p50: f64,
    dl_p99: f64,
    per_s: f64,
}

async fn rep(b: &mut Bench, kind: &str, a: &Args) -> Rep {
    let dsr_kind = if kind == "erasure" {
        "deletion"
    } else {
        "access"
    };
    let download = kind == "access";
    let seq = b.prepare(dsr_kind, a.seq).await;
    let conc = b.prepare(dsr_kind, a.conc).await;
    b.store.checkpoint().await.unwrap();
    // (a mark for attaching a profiler to the timed part only)
    eprintln!(
        "timing {kind}: {} sequential, then {} concurrent",
        seq.len(),
        conc.len()
    );

    let (mut tot, mut run, mut dl) = (Vec::new(), Vec::new(), Vec::new());
    for p in &seq {
        let (r, d) = execute(&b.http, &b.base, &b.admin_key, p, download).await;
        run.push(ms(r));
        dl.push(ms(d));
        tot.push(ms(r + d));
    }
    for v in [&mut tot, &mut run, &mut dl] {
        v.sort_by(f64::total_cmp);
    }

    let conc = Arc::new(conc);
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..a.inflight {
        let (http, base, key) = (b.http.clone(), b.base.clone(), b.admin_key.clone());
        let (conc, next) = (Arc::clone(&conc), Arc::clone(&next));
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = conc.get(i) else { break };
                execute(&http, &base, &key, p, download).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let per_s = conc.len() as f64 / t0.elapsed().as_secs_f64();
    Rep {
        total_p50: pct(&tot, 0.5),
        total_p99: pct(&tot, 0.99),
        run_p50: pct(&run, 0.5),
        run_p99: pct(&run, 0.99),
        dl_p50: pct(&dl, 0.5),
        dl_p99: pct(&dl, 0.99),
        per_s,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(a));
}

async fn run(a: Args) {
    eprintln!("copying {} to {} …", a.store.display(), a.work.display());
    let t = Instant::now();
    copy_store(&a.store, &a.work);
    eprintln!(
        "copied in {:.1}s; reading {}",
        t.elapsed().as_secs_f64(),
        a.data.join("users.csv").display()
    );
    let emails = candidate_emails(&a.data, a.seed);
    eprintln!("{} accounts with a unique email", emails.len());

    let policy =
        Policy::parse(&std::fs::read_to_string(policy_path("default.toml")).unwrap()).unwrap();
    let staff = pivault_staff::StaffPolicy::load(
        &std::fs::read_to_string(policy_path("staff.cedar")).unwrap(),
        "staff.cedar",
        &policy,
    )
    .unwrap();
    let (master, created) = MasterSecret::load_or_create(&a.work.join("master.key")).unwrap();
    assert!(!created, "the store's master.key is missing");
    let store = Store::connect(&format!("sqlite://{}", a.work.join("pivault.db").display()))
        .await
        .unwrap();
    let codes = Arc::new(Capture::default());
    let vault = Arc::new(
        Vault::new(
            store.clone(),
            KeyRing::new(master, Suite::Aes256Gcm),
            policy,
            Arc::new(SystemClock),
        )
        .await
        .unwrap()
        .with_staff_policy(staff)
        .with_code_sender(Arc::clone(&codes) as Arc<dyn CodeSender>),
    );
    let all: Vec<String> = vault
        .policy()
        .purposes()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let admin_key = vault
        .create_api_key("bench", "privacy-office", &["admin".into()], &all)
        .await
        .unwrap();
    let operator = Principal::operator("bench", vault.policy());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = pivault_server::AppState {
        vault: Arc::clone(&vault),
    };
    let server = tokio::spawn(async move {
        pivault_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let mut b = Bench {
        vault: Arc::clone(&vault),
        store: store.clone(),
        codes,
        operator,
        emails,
        next_email: 0,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(a.inflight.max(1))
            .build()
            .unwrap(),
        base: format!("http://{addr}"),
        admin_key,
    };

    let mut results: Vec<(String, Vec<Rep>)> = Vec::new();
    for kind in &a.kinds {
        assert!(
            kind == "access" || kind == "erasure",
            "kinds: access, erasure"
        );
        let mut reps = Vec::new();
        for i in 0..a.reps {
            let r = rep(&mut b, kind, &a).await;
            eprintln!(
                "{kind} rep {}: p50 {:.2} ms p99 {:.2} ms (run p50 {:.2} p99 {:.2}; download p50 {:.2} p99 {:.2}); {:.0}/s @{}; load {}",
                i + 1,
                r.total_p50, r.total_p99, r.run_p50, r.run_p99, r.dl_p50, r.dl_p99, r.per_s,
                a.inflight,
                loadavg()
            );
            reps.push(r);
        }
        results.push((kind.clone(), reps));
    }

    println!();
    println!(
        "store {} — medians of {} repetitions; {} sequential + {} with {} in flight per repetition; load {}",
        a.store.display(),
        a.reps,
        a.seq,
        a.conc,
        a.inflight,
        loadavg()
    );
    println!("| request | p50 ms | p99 ms | run p50 | run p99 | download p50 | download p99 | req/s @{} |", a.inflight);
    println!("|---|---|---|---|---|---|---|---|");
    for (kind, reps) in &results {
        let m = |f: fn(&Rep) -> f64| median(reps.iter().map(f).collect());
        println!(
            "| {kind} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |",
            m(|r| r.total_p50),
            m(|r| r.total_p99),
            m(|r| r.run_p50),
            m(|r| r.run_p99),
            m(|r| r.dl_p50),
            m(|r| r.dl_p99),
            m(|r| r.per_s),
        );
    }
    let _ = tx.send(());
    let _ = server.await;
    store.close().await;
    if !a.keep {
        let _ = std::fs::remove_dir_all(&a.work);
    }
}
