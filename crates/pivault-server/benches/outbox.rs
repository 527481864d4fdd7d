//! Issue 13 "Speed": the outbox on SQLite.
//!
//! Not a test: `cargo test` does not run it. Two measurements, in one run:
//!
//! 1. **Enqueue.** A fresh store with `--subjects` subjects (default 100,000), all affected
//!    by one incident (its subjects are written directly, as scoping would); timed: the
//!    privacy office's `notify` (`Vault::notify_incident`), which writes one outbox row per
//!    subject, page by page, each page one transaction with its audit entry. `--reps` times,
//!    each a new incident (so every run enqueues all of them again). Target: ≥ 5,000 notices/s.
//! 2. **Delivery.** A copy of a prepared store (`--store`, imported from the 10k data set as
//!    for the `dsr` bench), an incident scoped to every holder of an email address, its notices
//!    queued; timed: `--workers` tasks running `deliver_outbox` until the outbox is empty, each
//!    message an SMTP conversation with a local SMTP sink (pivault-notify's test sink, a real
//!    server on 127.0.0.1) and one committed transaction with its audit entry. Beside it, in the
//!    same run, the baseline: the same number of messages sent straight to a fresh sink with
//!    `SmtpNotifier` by as many tasks, no vault. The ratio says whether pivault or the sink
//!    limits delivery.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p pivault-server --bench outbox -- \
//!   --store /work/bench-data/10k [--work /tmp/outbox-bench] [--subjects 100000] [--reps 3] \
//!   [--workers 8]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use pivault_core::{IncidentInput, Principal, Vault};
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::SystemClock;
use pivault_domain::policy::Policy;
use pivault_store::{IncidentSubjectRow, Store, SubjectRow};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    store: Option<PathBuf>,
    work: PathBuf,
    subjects: usize,
    reps: usize,
    workers: usize,
}

fn args() -> Args {
    let mut a = Args {
        store: None,
        work: std::env::temp_dir().join("outbox-bench"),
        subjects: 100_000,
        reps: 3,
        workers: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().expect("a value");
        match k.as_str() {
            "--store" => a.store = Some(PathBuf::from(v())),
            "--work" => a.work = PathBuf::from(v()),
            "--subjects" => a.subjects = v().parse().unwrap(),
            "--reps" => a.reps = v().parse().unwrap(),
            "--workers" => a.workers = v().parse().unwrap(),
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn policy() -> Policy {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml");
    Policy::parse(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn incident_input() -> IncidentInput {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    IncidentInput {
        severity: "major".into(),
        what_happened: "Benchmark incident.".into(),
        occurred_at: now - 3_600,
        discovered_at: now - 60,
        categories: vec!["user.contact.email".into()],
        measures_taken: "Keys revoked.".into(),
        ..IncidentInput::default()
    }
}

async fn vault_on(
    dir: &Path,
    sender: Option<Arc<dyn pivault_core::ports::CodeSender>>,
) -> Arc<Vault> {
    let (master, _) = MasterSecret::load_or_create(&dir.join("master.key")).unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.join("pivault.db").display()))
        .await
        .unwrap();
    let mut v = Vault::new(
        store,
        KeyRing::new(master, Suite::Aes256Gcm),
        policy(),
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    if let Some(s) = sender {
        v = v.with_code_sender(s);
    }
    Arc::new(v)
}

async fn enqueue(a: &Args) {
    let dir = a.work.join("enqueue");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vault = vault_on(&dir, None).await;
    let store = Store::connect(&format!("sqlite://{}", dir.join("pivault.db").display()))
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ids: Vec<String> = (0..a.subjects).map(|i| format!("s{i:09}")).collect();
    for chunk in ids.chunks(10_000) {
        let mut tx = store.begin(now).await.unwrap();
        let rows: Vec<SubjectRow> = chunk
            .iter()
            .map(|id| SubjectRow {
                id: id.clone(),
                kind: "account".into(),
                status: "active".into(),
                created_at: now,
                erased_at: None,
                home_region: None,
                lock_case: None,
                lang: None,
            })
            .collect();
        tx.insert_subjects(&rows).await.unwrap();
        tx.commit().await.unwrap();
    }
    let op = Principal::operator("bench", vault.policy());
    let mut rates = Vec::new();
    for rep in 0..a.reps {
        let inc = vault.open_incident(&op, &incident_input()).await.unwrap();
        let mut tx = store.begin(now).await.unwrap();
        let rows: Vec<IncidentSubjectRow> = ids
            .iter()
            .map(|s| IncidentSubjectRow {
                incident_id: inc.id.clone(),
                subject_id: s.clone(),
                categories: "user.contact.email".into(),
                region: "cn".into(),
            })
            .collect();
        tx.replace_incident_subjects(&inc.id, &rows).await.unwrap();
        let mut row = tx.incident(&inc.id).await.unwrap().unwrap();
        row.state = "scoped".into();
        row.affected = i64::try_from(ids.len()).unwrap();
        tx.put_incident(&row).await.unwrap();
        tx.commit().await.unwrap();
        let t = Instant::now();
        let out = vault.notify_incident(&op, &inc.id).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(out.enqueued as usize, ids.len(), "{out:?}");
        let rate = ids.len() as f64 / secs;
        eprintln!(
            "enqueue rep {rep}: {} notices in {secs:.2} s = {rate:.0}/s",
            ids.len()
        );
        rates.push(rate);
    }
    println!(
        "enqueue: {} subjects, median {:.0} notices/s over {} reps (target 5000)",
        a.subjects,
        median(rates),
        a.reps
    );
}

async fn deliver(a: &Args, prepared: &Path) {
    let dir = a.work.join("deliver");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "pivault.db",
        "pivault.db-wal",
        "pivault.db-shm",
        "master.key",
    ] {
        if prepared.join(f).is_file() {
            std::fs::copy(prepared.join(f), dir.join(f)).unwrap();
        }
    }
    let sink = pivault_notify::testing::SmtpSink::start().await;
    let smtp = || {
        pivault_notify::SmtpNotifier::new(
            pivault_notify::SmtpConfig::from_url(&sink.url()).unwrap(),
        )
        .unwrap()
    };
    let sender =
        pivault_server::dsr::NotifySender::new(pivault_notify::Notifiers::new(Some(smtp()), None));
    let vault = vault_on(&dir, Some(Arc::new(sender))).await;
    let op = Principal::operator("bench", vault.policy());
    let inc = vault.open_incident(&op, &incident_input()).await.unwrap();
    vault
        .scope_incident(
            &op,
            &inc.id,
            &pivault_core::IncidentScope {
                from: 0,
                to: i64::MAX / 2,
                store: true,
                categories: vec!["user.contact.email".into()],
                ..pivault_core::IncidentScope::default()
            },
        )
        .await
        .unwrap();
    let n = vault.notify_incident(&op, &inc.id).await.unwrap().enqueued;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.workers {
        let v = Arc::clone(&vault);
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            loop {
                let r = v.deliver_outbox(256).await.unwrap();
                if r.processed == 0 {
                    break;
                }
                done += r.delivered;
            }
            done
        }));
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    let got = sink
        .wait_for(n as usize, Duration::from_secs(5))
        .await
        .len();
    let pivault_rate = delivered as f64 / secs;
    eprintln!("delivered {delivered}/{n} in {secs:.2} s; the sink holds {got}");

    // Baseline: the same number of messages straight to a fresh sink, as many tasks.
    let sink2 = pivault_notify::testing::SmtpSink::start().await;
    let notifier = Arc::new(
        pivault_notify::SmtpNotifier::new(
            pivault_notify::SmtpConfig::from_url(&sink2.url()).unwrap(),
        )
        .unwrap(),
    );
    let per = (n as usize).div_ceil(a.workers);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.workers {
        let nf = Arc::clone(&notifier);
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let msg = pivault_notify::Message {
                    to: pivault_notify::Recipient::Email(format!("u{w}x{i}@example.net")),
                    subject: "个人信息安全事件告知书".into(),
                    body: "x".repeat(1_200),
                    id: Some(format!("ob-{w}-{i}")),
                };
                nf.send(&msg).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let base_secs = t.elapsed().as_secs_f64();
    let base_rate = (per * a.workers) as f64 / base_secs;
    println!(
        "deliver: {delivered} notices with {} workers: pivault {pivault_rate:.0}/s, \
         SMTP straight to the sink {base_rate:.0}/s, ratio {:.2}",
        a.workers,
        base_rate / pivault_rate
    );
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        enqueue(&a).await;
        if let Some(p) = a.store.clone() {
            deliver(&a, &p).await;
        } else {
            eprintln!("no --store: delivery not measured");
        }
    });
}
