//! Issue 12, through the real binary on a slice of the data set (orders and web logs), on
//! SQLite and PostgreSQL, with the clock fixed past the web logs' six months: a
//! `retention sweep` killed with SIGKILL partway and run again ends in the same state as an
//! uninterrupted sweep of an identical vault, with each record's audit entry present once; a
//! dry run changes nothing; a second instance is refused while one sweeps; an anonymized export
//! below k is refused with `k_anonymity_too_low`; a legal hold set and released by the CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use pivault_testkit::TestDatabase;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SLICE_USERS: usize = 150;
/// 2026-11-29 (the test clock) + 214 days: every web-log line is past its 183 days.
const NOW: i64 = 1_795_910_400 + 214 * 86_400;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Vault {
    dir: tempfile::TempDir,
    url: String,
    key: PathBuf,
    _db: Option<TestDatabase>,
}

impl Vault {
    /// A vault with the slice imported; `key` (if given) is copied in as its master key, so two
    /// vaults derive the same record ids.
    fn populated(url: Option<String>, db: Option<TestDatabase>, key: Option<&Path>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("v.db").display()));
        let slice = pivault_testkit::write_slice(
            &dir.path().join("slice"),
            SLICE_USERS,
            &["orders.csv", "access.log"],
        );
        let v = Self {
            key: dir.path().join("master.key"),
            dir,
            url,
            _db: db,
        };
        if let Some(k) = key {
            std::fs::copy(k, &v.key).unwrap();
        }
        let out = v.run(&["import", slice.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        v
    }

    fn cmd(&self) -> Command {
        let mut c = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).with_db(&self.url, &self.key);
        c.current_dir(self.dir.path())
            .env_remove("PIVAULT_SUITE")
            .env("PIVAULT_FAKE_NOW", NOW.to_string());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap()
    }
}

/// What a sweep leaves, independent of subject ids: the anonymized rows (as multisets), the
/// fields left per category, the retention items left per category, and per audited record
/// (or, for a clock that runs per subject, per category and outcome) the number of retention
/// audit entries.
#[derive(Debug, PartialEq, Eq)]
struct State {
    anon_weblog: BTreeMap<String, i64>,
    anon_orders: BTreeMap<String, i64>,
    fields: BTreeMap<String, i64>,
    items: BTreeMap<String, i64>,
    audited: BTreeMap<String, i64>,
}

async fn count_by(pool: &AnyPool, sql: &str) -> BTreeMap<String, i64> {
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<String, _>("k"), r.get::<i64, _>("n")))
        .collect()
}

async fn state(v: &Vault) -> State {
    let pool = v.pool().await;
    State {
        anon_weblog: count_by(
            &pool,
            "SELECT hour || '|' || client_net || '|' || path || '|' || status || '|' || bytes || '|' || ua_family AS k, \
             COUNT(*) AS n FROM anon_weblog GROUP BY 1",
        )
        .await,
        anon_orders: count_by(
            &pool,
            "SELECT month || '|' || product || '|' || amount AS k, COUNT(*) AS n FROM anon_orders GROUP BY 1",
        )
        .await,
        fields: count_by(&pool, "SELECT category AS k, COUNT(*) AS n FROM fields GROUP BY category").await,
        items: count_by(
            &pool,
            "SELECT category AS k, COUNT(*) AS n FROM retention_items GROUP BY category",
        )
        .await,
        audited: count_by(
            &pool,
            "SELECT categories || '|' || detail AS k, COUNT(*) AS n \
             FROM audit_log WHERE action LIKE 'retention.%' GROUP BY 1",
        )
        .await,
    }
}

async fn retention_audit_rows(pool: &AnyPool) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM audit_log WHERE action LIKE 'retention.%'")
        .fetch_one(pool)
        .await
        .unwrap()
        .get("n")
}

async fn sweep_killed_and_resumed_equals_uninterrupted(a: Vault, b: Vault) {
    // A dry run lists and changes nothing.
    let before = state(&a).await;
    let out = a.ok(&["retention", "sweep", "--dry-run"]);
    assert!(out.contains("dry run, nothing changed"), "{out}");
    assert!(out.contains("user.behavior.web_log"), "{out}");
    assert_eq!(state(&a).await, before);

    // The reference: b swept in one go, at the time a's resumed sweep will run (an hour on:
    // the killed process's lease, 120 s, has expired by then).
    let later = (NOW + 3_600).to_string();
    let out = b
        .cmd()
        .env("PIVAULT_FAKE_NOW", &later)
        .args(["retention", "sweep", "--batch", "37"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = text(&out.stdout);
    assert!(out.contains("anonymize"), "{out}");
    let want = state(&b).await;
    assert!(!want.anon_weblog.is_empty() && !want.anon_orders.is_empty());
    assert!(
        want.audited
            .iter()
            .filter(|(k, _)| k.contains("record="))
            .all(|(_, n)| *n == 1),
        "each record is audited once"
    );
    assert!(!want.items.contains_key("user.behavior.web_log"));

    // a: slow batches, killed with SIGKILL mid-way.
    let pool = a.pool().await;
    let mut child = a
        .cmd()
        .args(["retention", "sweep", "--batch", "37", "--pause-ms", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if retention_audit_rows(&pool).await > 37 * 2 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the sweep made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // While it runs, a second sweep is refused (one instance at a time).
    let out = a.run(&["retention", "sweep"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("sweep_busy"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mid = state(&a).await;
    assert_ne!(mid, want, "killed partway");
    assert!(mid
        .audited
        .iter()
        .filter(|(k, _)| k.contains("record="))
        .all(|(_, n)| *n == 1));

    // The lease of the killed process expires after 120 s; the clock is moved on instead of
    // waiting.
    let out = a
        .cmd()
        .env("PIVAULT_FAKE_NOW", &later)
        .args(["retention", "sweep", "--batch", "37"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(state(&a).await, want, "killed and resumed = uninterrupted");

    // A later sweep finds nothing more.
    let out = a
        .cmd()
        .env("PIVAULT_FAKE_NOW", &later)
        .args(["retention", "sweep"])
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("acted on 0 record(s)"),
        "{}",
        text(&out.stdout)
    );

    // Web logs' /24 networks are nearly unique: the anonymized export is refused below k.
    let out = a.run(&["export", "anonymized", "--kind", "weblog"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("k_anonymity_too_low"));
    assert!(out.stdout.is_empty());
    let file = a.dir.path().join("orders.csv");
    let out = a.run(&[
        "export",
        "anonymized",
        "--kind",
        "orders",
        "--suppress",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("month,product,amount_cny\n"), "{csv}");

    // Holds from the CLI, audited.
    let out = a.ok(&[
        "hold",
        "set",
        "--category",
        "user.transaction.order",
        "--reason",
        "tax audit",
        "--reference",
        "TAX-2027-01",
    ]);
    let id = out.split_whitespace().next().unwrap().to_string();
    assert!(a.ok(&["hold", "list"]).contains(&id));
    a.ok(&["hold", "release", &id]);
    assert!(!a.ok(&["hold", "list"]).contains(&id));
    assert!(a.ok(&["hold", "list", "--all"]).contains("released_at="));
}

#[tokio::test]
async fn sqlite_sweep_killed_with_sigkill_resumes_to_the_same_state() {
    let a = Vault::populated(None, None, None);
    let b = Vault::populated(None, None, Some(&a.key));
    sweep_killed_and_resumed_equals_uninterrupted(a, b).await;
}

#[tokio::test]
async fn postgres_sweep_killed_with_sigkill_resumes_to_the_same_state() {
    let Some(da) = TestDatabase::for_test("retention_sweep::postgres::a").await else {
        return;
    };
    let Some(db) = TestDatabase::for_test("retention_sweep::postgres::b").await else {
        return;
    };
    let (ua, ub) = (da.url().to_string(), db.url().to_string());
    let a = Vault::populated(Some(ua), Some(da), None);
    let b = Vault::populated(Some(ub), Some(db), Some(&a.key));
    sweep_killed_and_resumed_equals_uninterrupted(a, b).await;
}
