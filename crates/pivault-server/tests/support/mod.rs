//! Test harness: a slice of the real zh_CN data set imported once per test binary into a
//! template (a SQLite file, or a PostgreSQL template database); each test copies it (file copy,
//! or `CREATE DATABASE … TEMPLATE`), spawns the app on 127.0.0.1:0 with a fixed clock, and talks
//! HTTP to it. Logs of every test go to one in-memory buffer at TRACE level so a
//! test can search them for PI.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use pivault_core::import::{import_dir, NoProgress};
use pivault_core::Vault;
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::FixedClock;
use pivault_domain::policy::Policy;
use pivault_store::testing::{test_database_url, TestDatabase};
use pivault_store::Store;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use time::macros::datetime;

/// Accounts in the imported slice.
pub const SLICE_USERS: usize = 400;

pub fn shared_data() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/zh_CN-10k");
    assert!(
        p.is_dir(),
        "the shared data set is missing at {}",
        p.display()
    );
    p
}

pub fn policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/default.toml")
}

/// One CSV file as header + rows of (column → value).
pub struct Csv {
    pub rows: Vec<HashMap<String, String>>,
}

pub fn read_csv(path: &Path) -> Csv {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect();
    Csv { rows }
}

/// The slice: first SLICE_USERS users and every row of the other files about them.
pub fn slice_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = shared_data();
        let out = std::env::temp_dir().join(format!("pivault-slice-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let users = std::fs::read_to_string(src.join("users.csv")).unwrap();
        let mut lines = users.lines();
        let header = lines.next().unwrap();
        let kept: Vec<&str> = lines.take(SLICE_USERS).collect();
        let accounts: std::collections::HashSet<String> = kept
            .iter()
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        let mut f = std::fs::File::create(out.join("users.csv")).unwrap();
        writeln!(f, "{header}").unwrap();
        for l in &kept {
            writeln!(f, "{l}").unwrap();
        }
        for name in [
            "consent_events.csv",
            "orders.csv",
            "face_templates.csv",
            "business_contacts.csv",
            "icp_filings.csv",
        ] {
            let mut r = csv::Reader::from_path(src.join(name)).unwrap();
            let headers = r.headers().unwrap().clone();
            let col = headers.iter().position(|h| h == "account_id").unwrap();
            let mut w = csv::Writer::from_path(out.join(name)).unwrap();
            w.write_record(&headers).unwrap();
            for rec in r.records() {
                let rec = rec.unwrap();
                if accounts.contains(&rec[col]) {
                    w.write_record(&rec).unwrap();
                }
            }
            w.flush().unwrap();
        }
        let tickets = std::fs::read_to_string(src.join("tickets.jsonl")).unwrap();
        let mut f = std::fs::File::create(out.join("tickets.jsonl")).unwrap();
        for l in tickets.lines() {
            let t: serde_json::Value = serde_json::from_str(l).unwrap();
            if accounts.contains(t["account_id"].as_str().unwrap()) {
                writeln!(f, "{l}").unwrap();
            }
        }
        out
    })
}

/// The repository's Cedar staff policy, loaded against the default policy.
pub fn staff_policy() -> pivault_staff::StaffPolicy {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/staff.cedar");
    pivault_staff::StaffPolicy::load(
        &std::fs::read_to_string(&path).unwrap(),
        "staff.cedar",
        &load_policy(),
    )
    .unwrap()
}

pub fn test_clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(datetime!(2026-11-29 00:00 UTC)))
}

fn load_policy() -> Policy {
    Policy::parse(&std::fs::read_to_string(policy_path()).unwrap()).unwrap()
}

/// Which database a [`TestApp`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A copy of the template SQLite file.
    Sqlite,
    /// A clone of the template PostgreSQL database (needs `PIVAULT_TEST_DATABASE_URL`).
    Postgres,
}

/// Imports the slice through `url` with the master key in `dir`.
fn import_slice(dir: &Path, url: &str) {
    let slice = slice_dir().to_path_buf();
    let d = dir.to_path_buf();
    let url = url.to_string();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (master, _) = MasterSecret::load_or_create(&d.join("master.key")).unwrap();
            let store = Store::connect(&url).await.unwrap();
            let vault = Vault::new(
                store.clone(),
                KeyRing::new(master, Suite::Aes256Gcm),
                load_policy(),
                test_clock(),
            )
            .await
            .unwrap();
            let rep = import_dir(&vault, &slice, &d.join("rejects"), &NoProgress)
                .await
                .unwrap();
            assert!(
                rep.files.iter().all(|f| f.rejected == 0),
                "slice import rejected rows: {:?}",
                rep.files
            );
            store.checkpoint().await.unwrap();
            store.close().await;
        });
    })
    .join()
    .unwrap();
}

/// A PostgreSQL template database with the slice imported, and the directory holding its
/// master key; `None` without `PIVAULT_TEST_DATABASE_URL`. The template database lives as long
/// as the test process; the next run drops it (its name carries this process's id).
fn pg_template() -> Option<&'static (TestDatabase, PathBuf)> {
    static T: OnceLock<Option<(TestDatabase, PathBuf)>> = OnceLock::new();
    T.get_or_init(|| {
        let admin = test_database_url()?;
        let dir = std::env::temp_dir().join(format!("pivault-pg-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(TestDatabase::create(&admin))
                .unwrap()
        })
        .join()
        .unwrap();
        import_slice(&dir, db.url());
        Some((db, dir))
    })
    .as_ref()
}

/// A template directory with the slice imported (pivault.db + master.key).
fn template() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pivault-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("pivault.db").display());
        import_slice(&dir, &url);
        dir
    })
}

/// Captured logs of the whole test binary.
pub fn logs() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&buf);
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Writer(Arc::clone(&b)))
            .finish();
        let _ = tracing::subscriber::set_global_default(sub);
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);
impl Write for Writer {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub vault: Arc<Vault>,
    pub store: Store,
    pub clock: Arc<FixedClock>,
    pub dir: tempfile::TempDir,
    /// Key with role app and every purpose.
    pub app_key: String,
    /// Key with role admin.
    pub admin_key: String,
    pub backend: Backend,
    /// SMTP sink the vault sends data subject requests' codes to (a real SMTP conversation).
    pub mail: pivault_notify::testing::SmtpSink,
    /// Webhook sink receiving SMS codes.
    pub sms: pivault_notify::testing::WebhookSink,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Declared last: dropped (`DROP DATABASE … WITH (FORCE)`) after the server stops.
    pg: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("pivault.db")
    }

    /// Everything the database holds, as bytes to search for values in clear: on SQLite the
    /// file and its WAL after a checkpoint; on PostgreSQL every value a SELECT can see.
    pub async fn db_bytes(&self) -> Vec<u8> {
        match self.backend {
            Backend::Sqlite => {
                self.store.checkpoint().await.unwrap();
                let mut bytes = std::fs::read(self.db_path()).unwrap();
                if let Ok(wal) = std::fs::read(self.db_path().with_extension("db-wal")) {
                    bytes.extend(wal);
                }
                bytes
            }
            Backend::Postgres => pivault_store::testing::visible_bytes(&self.store)
                .await
                .unwrap(),
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn put(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .put(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, key: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// Subject id of an imported account.
    pub async fn subject_of(&self, account: &str) -> String {
        let r = self
            .post(
                "/v1/lookup",
                &self.app_key,
                serde_json::json!({"by": "account_id", "value": account, "purpose": "service"}),
            )
            .await;
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            v["count"], 1,
            "account {account} should match exactly one subject"
        );
        v["subjects"][0].as_str().unwrap().to_string()
    }

    pub async fn read(
        &self,
        subject: &str,
        purpose: &str,
        categories: &str,
    ) -> (u16, serde_json::Value) {
        let mut path = format!("/v1/subjects/{subject}/fields?purpose={purpose}");
        if !categories.is_empty() {
            path.push_str(&format!("&categories={categories}"));
        }
        let r = self.get(&path, &self.app_key).await;
        let s = r.status().as_u16();
        (s, r.json().await.unwrap())
    }
}

/// Spawns the app on a copy of the imported slice on `backend`; `None` for PostgreSQL when
/// `PIVAULT_TEST_DATABASE_URL` is unset.
pub async fn spawn_on(backend: Backend) -> Option<TestApp> {
    let _ = logs();
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => {
            let tpl = template();
            for f in ["pivault.db", "master.key"] {
                std::fs::copy(tpl.join(f), dir.path().join(f)).unwrap();
            }
            let url = format!("sqlite://{}", dir.path().join("pivault.db").display());
            (url, None)
        }
        Backend::Postgres => {
            let admin = test_database_url()?;
            let (tpl, tpl_dir) = tokio::task::spawn_blocking(pg_template)
                .await
                .unwrap()
                .unwrap();
            std::fs::copy(tpl_dir.join("master.key"), dir.path().join("master.key")).unwrap();
            let db = TestDatabase::create_from(&admin, Some(tpl.name()))
                .await
                .unwrap();
            (db.url().to_string(), Some(db))
        }
    };
    let (master, created) = MasterSecret::load_or_create(&dir.path().join("master.key")).unwrap();
    assert!(!created);
    let store = Store::connect_with(&url, Some(8)).await.unwrap();
    let clock = test_clock();
    let mail = pivault_notify::testing::SmtpSink::start().await;
    let sms = pivault_notify::testing::WebhookSink::start().await;
    let notifiers = pivault_notify::Notifiers::new(
        Some(
            pivault_notify::SmtpNotifier::new(
                pivault_notify::SmtpConfig::from_url(&mail.url()).unwrap(),
            )
            .unwrap(),
        ),
        Some(
            pivault_notify::SmsWebhook::new(pivault_notify::SmsConfig {
                url: sms.url(),
                bearer_token: Some("sms-test-token".into()),
                timeout: std::time::Duration::from_secs(5),
            })
            .unwrap(),
        ),
    );
    let vault = Arc::new(
        Vault::new(
            store.clone(),
            KeyRing::new(master, Suite::Aes256Gcm),
            load_policy(),
            clock.clone(),
        )
        .await
        .unwrap()
        .with_staff_policy(staff_policy())
        .with_code_sender(Arc::new(pivault_server::dsr::NotifySender(notifiers))),
    );
    let all: Vec<String> = vault
        .policy()
        .purposes()
        .iter()
        .map(|p| p.id.clone())
        .collect();
    let app_key = vault
        .create_api_key("test", "test-app", &["app".into()], &all)
        .await
        .unwrap();
    let admin_key = vault
        .create_api_key("test", "privacy-office", &["admin".into()], &all)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = pivault_server::AppState {
        vault: Arc::clone(&vault),
    };
    tokio::spawn(async move {
        pivault_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Some(TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        vault,
        store,
        clock,
        dir,
        app_key,
        admin_key,
        backend,
        mail,
        sms,
        shutdown: Some(tx),
        pg,
    })
}

/// Rows of users.csv in the slice.
pub fn users() -> Vec<HashMap<String, String>> {
    read_csv(&slice_dir().join("users.csv")).rows
}

/// Consent events in the slice.
pub fn consents() -> Vec<HashMap<String, String>> {
    read_csv(&slice_dir().join("consent_events.csv")).rows
}

pub fn orders() -> Vec<HashMap<String, String>> {
    read_csv(&slice_dir().join("orders.csv")).rows
}

/// Latest action per (account, purpose) in the ledger.
pub fn latest_consent(account: &str, purpose: &str) -> Option<String> {
    consents()
        .into_iter()
        .filter(|c| c["account_id"] == account && c["purpose"] == purpose)
        .max_by(|a, b| a["at"].cmp(&b["at"]))
        .map(|c| c["action"].clone())
}
