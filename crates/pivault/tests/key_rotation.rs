//! Issue 11, Deliver 6, through the real binary on a slice of the data set, on SQLite and
//! PostgreSQL: `keys rotate-kek`, then `keys rewrap` killed with SIGKILL mid-way and resumed;
//! every field of every subject still opens (checked from the database with the master key
//! alone), and `keys status` shows 0 rows under the old KEK. Then `keys rotate-index` and a
//! half-done, then finished, `keys reindex`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{
    Aad, GenerationState, KeyGeneration, KeyKind, KeyRing, MasterSecret, Suite, WrappedDek,
};
use pivault_store::Store;
use pivault_testkit::bin::PivaultBin;
use pivault_testkit::TestDatabase;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Accounts in the slice.
const SLICE_USERS: usize = 120;

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
    fn populated(url: Option<String>, db: Option<TestDatabase>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("v.db").display()));
        let slice = pivault_testkit::write_slice(
            &dir.path().join("slice"),
            SLICE_USERS,
            &["consent_events.csv", "orders.csv", "business_contacts.csv"],
        );
        let v = Self {
            key: dir.path().join("master.key"),
            dir,
            url,
            _db: db,
        };
        let out = v.run(&["import", slice.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        v
    }

    fn cmd(&self) -> Command {
        let mut c = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).with_db(&self.url, &self.key);
        c.current_dir(self.dir.path()).env_remove("PIVAULT_SUITE");
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

    /// Wrapped DEKs per KEK id.
    async fn per_kek(&self, pool: &AnyPool) -> Vec<(String, i64)> {
        sqlx::query(
            "SELECT kek_id, COUNT(*) AS n FROM subject_keys GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("kek_id"), r.get("n")))
        .collect()
    }

    /// Opens every wrapped DEK and every field sealed under it, from the database and the
    /// master key file alone (a fresh key ring, as a restarted instance would build it).
    /// Returns (DEKs opened, fields opened); panics on the first that does not open.
    async fn open_everything(&self) -> (usize, usize) {
        let store = Store::connect(&self.url).await.unwrap();
        let ring = KeyRing::new(MasterSecret::load(&self.key).unwrap(), Suite::Aes256Gcm);
        let gens = store.key_generations().await.unwrap();
        for (kind, name) in [(KeyKind::Kek, "kek"), (KeyKind::BlindIndex, "index")] {
            let g: Vec<KeyGeneration> = gens
                .iter()
                .filter(|g| g.kind == name)
                .map(|g| KeyGeneration {
                    generation: g.generation,
                    salt: g.salt.clone(),
                    state: match g.state.as_str() {
                        "current" => GenerationState::Current,
                        "retired" => GenerationState::Retired,
                        _ => GenerationState::Active,
                    },
                })
                .collect();
            ring.install_generations(kind, &g);
        }
        let pool = self.pool().await;
        let ids: Vec<String> = sqlx::query("SELECT id FROM subjects ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("id"))
            .collect();
        let (mut deks, mut fields) = (0, 0);
        for id in &ids {
            let keys = store.subject_keys(id).await.unwrap();
            let rows = store.fields(id).await.unwrap();
            for k in &keys {
                let dek = ring
                    .unwrap_dek(
                        &k.subject_id,
                        &k.scope,
                        &WrappedDek {
                            key_id: k.key_id.clone(),
                            kek_id: k.kek_id.clone(),
                            bytes: k.wrapped.clone(),
                        },
                    )
                    .unwrap_or_else(|e| panic!("DEK of {id}/{} does not open: {e}", k.scope));
                deks += 1;
                for f in rows.iter().filter(|f| f.key_id == k.key_id) {
                    let field = format!("{}/{}", f.record, f.name);
                    let aad = Aad {
                        subject_id: &f.subject_id,
                        category: &f.category,
                        field: &field,
                        key_id: &f.key_id,
                    };
                    dek.open(&aad, &f.ciphertext)
                        .unwrap_or_else(|e| panic!("field {field} of {id} does not open: {e}"));
                    fields += 1;
                }
            }
            assert!(
                rows.iter()
                    .all(|f| keys.iter().any(|k| k.key_id == f.key_id)),
                "{id} has a field whose DEK is gone"
            );
        }
        store.close().await;
        (deks, fields)
    }
}

async fn kek_rotation_survives_sigkill_mid_rewrap(v: Vault) {
    let pool = v.pool().await;
    let before = v.per_kek(&pool).await;
    assert_eq!(before.len(), 1, "{before:?}");
    let (old, total) = before[0].clone();
    assert!(total >= SLICE_USERS as i64);
    let opened_before = v.open_everything().await;

    let out = v.ok(&["keys", "rotate-kek"]);
    assert!(out.contains("new KEK kek-"), "{out}");
    // A slow rewrap (small batches, a pause between them), killed with SIGKILL mid-way.
    let mut child = v
        .cmd()
        .args(["keys", "rewrap", "--batch", "7", "--pause-ms", "150"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let now = v.per_kek(&pool).await;
        let under_old = now.iter().find(|(k, _)| *k == old).map_or(0, |x| x.1);
        if under_old < total && under_old > 7 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "rewrap made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "rewrap ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mid = v.per_kek(&pool).await;
    assert_eq!(mid.len(), 2, "half rewrapped: {mid:?}");
    assert_eq!(mid.iter().map(|x| x.1).sum::<i64>(), total);
    let status = v.ok(&["keys", "status"]);
    assert!(status.contains("job rewrap: running"), "{status}");
    // reads work with half the rows under each KEK
    assert_eq!(v.open_everything().await, opened_before);

    // resume: finishes, nothing left under the old KEK
    let out = v.ok(&["keys", "rewrap", "--batch", "50"]);
    assert!(out.contains("rewrap finished"), "{out}");
    let after = v.per_kek(&pool).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0].0, old);
    assert_eq!(after[0].1, total);
    assert_eq!(v.open_everything().await, opened_before);
    let status = v.ok(&["keys", "status"]);
    let old_line = status.lines().find(|l| l.contains(&old)).unwrap();
    assert!(
        old_line.contains("retired") && old_line.contains(" 0 row(s)"),
        "{status}"
    );
    assert!(status.contains("job rewrap: done"), "{status}");
    // again: idempotent
    let out = v.ok(&["keys", "rewrap"]);
    assert!(out.contains("0 wrapped DEK(s) moved"), "{out}");

    // blind-index rotation, half re-indexed, then finished
    let index_rows = |p: &AnyPool| {
        let p = p.clone();
        async move {
            sqlx::query(
                "SELECT key_gen, COUNT(*) AS n FROM blind_index \
                 WHERE kind <> 'erased_account_id' GROUP BY key_gen ORDER BY key_gen",
            )
            .fetch_all(&p)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<i64, _>("key_gen"), r.get::<i64, _>("n")))
            .collect::<Vec<_>>()
        }
    };
    let before = index_rows(&pool).await;
    assert_eq!(before.len(), 1);
    let out = v.ok(&["keys", "rotate-index"]);
    assert!(out.contains("new blind-index key bix-"), "{out}");
    let out = v.ok(&["keys", "reindex", "--batch", "10", "--max-batches", "2"]);
    assert!(out.contains("reindex paused"), "{out}");
    let mid = index_rows(&pool).await;
    assert_eq!(mid.len(), 2, "{mid:?}");
    assert_eq!(mid[0], before[0], "old rows stay until the end");
    let out = v.ok(&["keys", "reindex"]);
    assert!(out.contains("reindex finished"), "{out}");
    let after = index_rows(&pool).await;
    assert_eq!(after, vec![(2, before[0].1)]);
    let status = v.ok(&["keys", "status"]);
    assert!(status.contains("job reindex: done"), "{status}");
    pool.close().await;
}

#[tokio::test]
async fn sqlite_kek_rotation_survives_sigkill_mid_rewrap_and_index_rotation_completes() {
    kek_rotation_survives_sigkill_mid_rewrap(Vault::populated(None, None)).await;
}

#[tokio::test]
async fn postgres_kek_rotation_survives_sigkill_mid_rewrap_and_index_rotation_completes() {
    let Some(db) = TestDatabase::for_test("key_rotation::postgres").await else {
        return;
    };
    let url = db.url().to_string();
    kek_rotation_survives_sigkill_mid_rewrap(Vault::populated(Some(url), Some(db))).await;
}
