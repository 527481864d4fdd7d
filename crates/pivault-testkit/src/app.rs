//! The app in process: the pivault-server router over a [`Vault`] on 127.0.0.1:0, over a copy
//! of a slice of the real zh_CN data set imported once per test binary into a template (a
//! SQLite file, or a PostgreSQL template database). Each [`spawn_on`] copies the template (file
//! copy, or `CREATE DATABASE … TEMPLATE`), runs the app at the [fixed clock](crate::clock) with
//! DSR codes going to a real SMTP sink and an SMS webhook sink, and the logs of every test going
//! to [`captured_logs`].

use crate::clock::fixed_clock;
use crate::data::{load_policy, staff_policy_path, Slice};
use crate::keys::{api_key_all_purposes, key_ring_from_file};
use crate::logs::captured_logs;
use crate::pg::{test_database_url, TestDatabase};
use pivault_core::import::{import_dir, NoProgress};
use pivault_core::Vault;
use pivault_crypto::MasterSecret;
use pivault_domain::clock::FixedClock;
use pivault_store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Accounts in the app's slice.
pub const SLICE_USERS: usize = 400;

/// The app's slice: the first [`SLICE_USERS`] accounts and every row about them, written once
/// per process.
pub fn slice() -> &'static Slice {
    static S: OnceLock<Slice> = OnceLock::new();
    S.get_or_init(|| Slice::write("pivault-slice", SLICE_USERS))
}

/// The app's slice folder.
pub fn slice_dir() -> &'static Path {
    slice().dir()
}

/// Lines of access.log in the app's slice.
#[must_use]
pub fn weblog_lines() -> Vec<String> {
    slice().weblog_lines()
}

/// Rows of users.csv in the app's slice.
#[must_use]
pub fn users() -> Vec<HashMap<String, String>> {
    slice().users()
}

/// Consent events in the app's slice.
#[must_use]
pub fn consents() -> Vec<HashMap<String, String>> {
    slice().consents()
}

/// Orders in the app's slice.
#[must_use]
pub fn orders() -> Vec<HashMap<String, String>> {
    slice().orders()
}

/// Latest consent action per (account, purpose) in the app's slice.
#[must_use]
pub fn latest_consent(account: &str, purpose: &str) -> Option<String> {
    slice().latest_consent(account, purpose)
}

/// The repository's Cedar staff policy, loaded against the default policy.
#[must_use]
pub fn staff_policy() -> pivault_staff::StaffPolicy {
    pivault_staff::StaffPolicy::load(
        &std::fs::read_to_string(staff_policy_path()).unwrap(),
        "staff.cedar",
        &load_policy(),
    )
    .unwrap()
}

/// Which database a [`TestApp`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A copy of the template SQLite file.
    Sqlite,
    /// A clone of the template PostgreSQL database (needs `PIVAULT_TEST_DATABASE_URL`).
    Postgres,
}

impl Backend {
    /// Both backends.
    pub const ALL: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// `sqlite` / `postgres`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Imports the app's slice through `url` with the master key in `dir` (created there).
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
                pivault_crypto::KeyRing::new(master, pivault_crypto::Suite::Aes256Gcm),
                load_policy(),
                fixed_clock(),
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
/// master key; `None` without `PIVAULT_TEST_DATABASE_URL`. The template lives as long as the
/// test process; the next run drops it (its name carries this process's id).
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
        })
        .join()
        .unwrap();
        import_slice(&dir, db.url());
        Some((db, dir))
    })
    .as_ref()
}

/// A template directory with the slice imported (pivault.db + master.key).
fn sqlite_template() -> &'static Path {
    static T: OnceLock<PathBuf> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("pivault-template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("pivault.db").display());
        import_slice(&dir, &url);
        dir
    })
}

/// The app on 127.0.0.1:0 over its own copy of the imported slice; stopped when dropped.
pub struct TestApp {
    /// `http://ADDR`.
    pub base: String,
    /// A client for it.
    pub http: reqwest::Client,
    /// The vault the app serves.
    pub vault: Arc<Vault>,
    /// The vault's store.
    pub store: Store,
    /// The vault's clock.
    pub clock: Arc<FixedClock>,
    /// Holds the master key (and the SQLite file).
    pub dir: tempfile::TempDir,
    /// Key with role app and every purpose.
    pub app_key: String,
    /// Key with role admin and every purpose.
    pub admin_key: String,
    /// The database it runs on.
    pub backend: Backend,
    /// SMTP sink the vault sends data subject requests' codes to (a real SMTP conversation).
    pub mail: pivault_notify::testing::SmtpSink,
    /// Webhook sink receiving SMS codes.
    pub sms: pivault_notify::testing::WebhookSink,
    /// Webhook sink of the app-push channel.
    pub push: pivault_notify::testing::WebhookSink,
    /// The signed erasure-notice webhook of policy recipient `sms-gateway`: it answers 500 to
    /// its first two requests, then 200.
    pub recipient_hook: pivault_notify::testing::WebhookSink,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// Declared last: dropped (`DROP DATABASE … WITH (FORCE)`) after the server stops.
    _pg: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestApp {
    /// The SQLite file (on [`Backend::Sqlite`]).
    #[must_use]
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

    /// `GET base+path` with `key`.
    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// `POST base+path` with `key` and a JSON body.
    pub async fn post(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `PUT base+path` with `key` and a JSON body.
    pub async fn put(&self, path: &str, key: &str, body: serde_json::Value) -> reqwest::Response {
        self.http
            .put(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE base+path` with `key`.
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

    /// Reads `subject`'s fields for `purpose` (limited to `categories`, comma-separated, unless
    /// empty) with the app key: (status, body).
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
/// `PIVAULT_TEST_DATABASE_URL` is unset (panics when it is set and PostgreSQL is unreachable).
pub async fn spawn_on(backend: Backend) -> Option<TestApp> {
    let _ = captured_logs();
    let dir = tempfile::tempdir().unwrap();
    let (url, pg) = match backend {
        Backend::Sqlite => {
            let tpl = sqlite_template();
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
            let db = TestDatabase::create_from(&admin, Some(tpl.name())).await;
            (db.url().to_string(), Some(db))
        }
    };
    let keys = key_ring_from_file(&dir.path().join("master.key"));
    let store = Store::connect_with(&url, Some(8)).await.unwrap();
    let clock = fixed_clock();
    let mail = pivault_notify::testing::SmtpSink::start().await;
    let sms = pivault_notify::testing::WebhookSink::start().await;
    let push = pivault_notify::testing::WebhookSink::start().await;
    let recipient_hook = pivault_notify::testing::WebhookSink::failing_first(2).await;
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
    )
    .with_push(
        pivault_notify::PushWebhook::new(pivault_notify::PushConfig {
            url: push.url(),
            bearer_token: None,
            timeout: std::time::Duration::from_secs(5),
        })
        .unwrap(),
    );
    let vault = Arc::new(
        Vault::new(store.clone(), keys, load_policy(), clock.clone())
            .await
            .unwrap()
            .with_staff_policy(staff_policy())
            .with_code_sender(Arc::new(
                pivault_server::dsr::NotifySender::new(notifiers).with_recipient_webhook(
                    "sms-gateway",
                    pivault_notify::SignedWebhook::new(
                        &recipient_hook.url(),
                        std::time::Duration::from_secs(5),
                    )
                    .unwrap(),
                ),
            )),
    );
    let app_key = api_key_all_purposes(&vault, "test-app", &["app"]).await;
    let admin_key = api_key_all_purposes(&vault, "privacy-office", &["admin"]).await;
    let (base, shutdown) = serve_app(Arc::clone(&vault)).await;
    Some(TestApp {
        base,
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
        push,
        recipient_hook,
        shutdown: Some(shutdown),
        _pg: pg,
    })
}

/// Serves the pivault-server router over `vault` on 127.0.0.1:0 in a task of the current
/// runtime; returns its base URL (`http://ADDR`) and the sender that stops it (dropping it
/// stops it too).
pub async fn serve_app(vault: Arc<Vault>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = pivault_server::AppState { vault };
    tokio::spawn(async move {
        pivault_server::serve(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (format!("http://{addr}"), tx)
}
