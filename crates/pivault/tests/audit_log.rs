//! Issue 15, through the real binary on a small slice of the data set: the audit log as a
//! sharded Merkle tree with signed checkpoints.
//!
//! * `pivault audit verify` catches, naming the shard and the entry: one row edited, deleted
//!   or reordered in a shard other than 0; a checkpoint whose signature is wrong; a shard
//!   truncated and regrown to the same size (through the service, after its head row was put
//!   back from an earlier copy, so every keyed link and the head MAC are valid).
//! * An inclusion proof of a subject's entry verifies offline with only the public key, and
//!   fails once the entry is altered.
//! * A linear chain of before issue 15 becomes shard 0's prefix: every old entry verifies and
//!   has an inclusion proof.
//!
//! SQLite always; the `postgres::*` cases need `PIVAULT_TEST_DATABASE_URL` (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use pivault_testkit::TestDatabase;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::path::PathBuf;
use std::process::{Command, Output};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A vault with `shards` audit shards, the slice imported.
struct Log {
    dir: tempfile::TempDir,
    url: String,
    key: PathBuf,
    shards: u32,
    _db: Option<TestDatabase>,
}

impl Log {
    fn populated(url: Option<String>, db: Option<TestDatabase>, shards: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("v.db").display()));
        let slice = pivault_testkit::write_slice(
            &dir.path().join("slice"),
            30,
            &["consent_events.csv", "orders.csv"],
        );
        let l = Self {
            key: dir.path().join("master.key"),
            dir,
            url,
            shards,
            _db: db,
        };
        l.ok(&["import", slice.to_str().unwrap()]);
        l
    }

    fn cmd(&self) -> Command {
        let mut c = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).with_db(&self.url, &self.key);
        c.current_dir(self.dir.path())
            .env_remove("PIVAULT_SUITE")
            .env("PIVAULT_AUDIT_SHARDS", self.shards.to_string());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}: {}{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// `audit verify` exits 2 and its message holds every one of `needles`.
    fn broken(&self, needles: &[&str], what: &str) {
        let out = self.run(&["audit", "verify"]);
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: audit verify passed: {}{err}",
            text(&out.stdout)
        );
        for n in needles {
            assert!(err.contains(n), "{what}: {n:?} not in: {err}");
        }
    }

    async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap()
    }

    /// `(seq, idx)` of the entry at `idx` of the busiest shard other than 0, and that shard.
    async fn entry_in_a_subject_shard(&self, idx: i64) -> (u32, i64) {
        let pool = self.pool().await;
        let shard: i64 = sqlx::query(
            "SELECT shard FROM audit_log WHERE shard <> 0 GROUP BY shard ORDER BY COUNT(*) DESC, \
             shard LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
        let seq: i64 = sqlx::query("SELECT seq FROM audit_log WHERE shard = $1 AND idx = $2")
            .bind(shard)
            .bind(idx)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        (u32::try_from(shard).unwrap(), seq)
    }
}

async fn exec(pool: &AnyPool, sql: &str, params: &[i64]) {
    let mut q = sqlx::query(sql);
    for p in params {
        q = q.bind(*p);
    }
    q.execute(pool).await.unwrap();
}

async fn rewrites_are_caught(l: &Log) {
    l.ok(&["audit", "checkpoint"]);
    let out = l.ok(&["audit", "verify"]);
    assert!(out.contains("1 checkpoint"), "{out}");
    let (shard, seq) = l.entry_in_a_subject_shard(3).await;
    let pool = l.pool().await;
    let sh = shard.to_string();

    // edited
    let outcome: String = sqlx::query("SELECT outcome FROM audit_log WHERE seq = $1")
        .bind(seq)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    exec(
        &pool,
        "UPDATE audit_log SET outcome = 'forged' WHERE seq = $1",
        &[seq],
    )
    .await;
    l.broken(
        &[
            &format!("at entry {seq}:"),
            &format!("shard {sh}: entry 3 (number {seq})"),
            "keyed hash",
        ],
        "row edited",
    );
    sqlx::query("UPDATE audit_log SET outcome = $1 WHERE seq = $2")
        .bind(outcome)
        .bind(seq)
        .execute(&pool)
        .await
        .unwrap();
    l.ok(&["audit", "verify"]);

    // reordered: entries 3 and 4 of the shard swap places
    let next: i64 = sqlx::query("SELECT seq FROM audit_log WHERE shard = $1 AND idx = 4")
        .bind(i64::from(shard))
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    exec(
        &pool,
        "UPDATE audit_log SET idx = -1 WHERE seq = $1",
        &[seq],
    )
    .await;
    exec(
        &pool,
        "UPDATE audit_log SET idx = 3 WHERE seq = $1",
        &[next],
    )
    .await;
    exec(&pool, "UPDATE audit_log SET idx = 4 WHERE seq = $1", &[seq]).await;
    l.broken(
        &[&format!("shard {sh}: entry 3 (number {next})"), "reordered"],
        "rows reordered",
    );

    // deleted
    exec(&pool, "DELETE FROM audit_log WHERE seq = $1", &[next]).await;
    l.broken(&[&format!("shard {sh}: entry 3 missing")], "row deleted");
    pool.close().await;
}

async fn a_forged_checkpoint_is_caught(l: &Log) {
    l.ok(&["audit", "checkpoint"]);
    l.ok(&["audit", "verify"]);
    let pool = l.pool().await;
    // one more entry claimed in shard 0: the body no longer matches its signature
    let note: String = sqlx::query("SELECT note FROM audit_checkpoints ORDER BY id DESC LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    let forged = note.replacen("\nshard 0 ", "\nshard 0 1", 1);
    assert_ne!(forged, note);
    sqlx::query("UPDATE audit_checkpoints SET note = $1")
        .bind(forged)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    l.broken(&["checkpoint #1 does not verify"], "checkpoint forged");
}

/// Shard 0 (entries without a subject, such as `apikey.create`) is put back to an earlier
/// copy of its head and regrown through the service to the size a checkpoint signed.
async fn truncated_and_regrown_is_caught(l: &Log) {
    // checkpoints at an interval: one now, one after the two entries to be rewritten
    l.ok(&["audit", "checkpoint"]);
    let pool = l.pool().await;
    let row = sqlx::query(
        "SELECT size, hash, mac, tree_size, frontier FROM audit_shards WHERE shard = 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (size, hash, mac, frontier): (i64, Vec<u8>, Vec<u8>, Vec<u8>) =
        (row.get(0), row.get(1), row.get(2), row.get(4));
    pool.close().await;
    for p in ["a", "b"] {
        l.ok(&["keys", "create", "--principal", p]);
    }
    l.ok(&["audit", "checkpoint"]);
    l.ok(&["audit", "verify"]);
    let pool = l.pool().await;
    exec(
        &pool,
        "DELETE FROM audit_log WHERE shard = 0 AND idx >= $1",
        &[size],
    )
    .await;
    // (the stored nodes covering a removed leaf went with its entry, which carried them)
    sqlx::query(
        "UPDATE audit_shards SET size = $1, hash = $2, mac = $3, tree_size = $1, frontier = $4 \
         WHERE shard = 0",
    )
    .bind(size)
    .bind(hash)
    .bind(mac)
    .bind(frontier)
    .execute(&pool)
    .await
    .unwrap();
    exec(
        &pool,
        "DELETE FROM api_keys WHERE principal IN ('a', 'b')",
        &[],
    )
    .await;
    pool.close().await;
    for p in ["c", "d"] {
        l.ok(&["keys", "create", "--principal", p]);
    }
    l.broken(
        &[
            "shard 0: its first",
            "no longer hash to the root signed in checkpoint #2",
            &format!("from entry {size} "),
        ],
        "truncated and regrown",
    );
}

async fn a_proof_verifies_offline(l: &Log) {
    let (_, seq) = l.entry_in_a_subject_shard(2).await;
    let key = l.ok(&["audit", "key"]).trim().to_string();
    let file = l.dir.path().join("proof.json");
    l.ok(&[
        "audit",
        "proof",
        &seq.to_string(),
        "--out",
        file.to_str().unwrap(),
    ]);
    let out = l.ok(&[
        "audit",
        "verify-proof",
        file.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(out.contains("ok"), "{out}");
    // the entry altered: its leaf no longer leads to the signed root
    let mut bundle: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let leaf = bundle["leaf"].as_str().unwrap().to_string();
    let mut bytes = base64_decode(&leaf);
    let last = bytes.len() - 13; // inside `detail` or the request id, before the shard suffix
    bytes[last] ^= 1;
    bundle["leaf"] = serde_json::Value::String(base64_encode(&bytes));
    let bad = l.dir.path().join("bad.json");
    std::fs::write(&bad, bundle.to_string()).unwrap();
    let out = l.run(&[
        "audit",
        "verify-proof",
        bad.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(!out.status.success(), "an altered entry verified");
    // the key file form works too
    let kf = l.dir.path().join("audit.key");
    std::fs::write(&kf, &key).unwrap();
    l.ok(&[
        "audit",
        "verify-proof",
        file.to_str().unwrap(),
        "--key",
        kf.to_str().unwrap(),
    ]);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_reordered_or_deleted_row_in_a_shard_is_named() {
    rewrites_are_caught(&Log::populated(None, None, 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_with_a_wrong_signature_is_named() {
    a_forged_checkpoint_is_caught(&Log::populated(None, None, 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_truncated_and_regrown_to_the_same_size_is_named() {
    truncated_and_regrown_is_caught(&Log::populated(None, None, 4)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inclusion_proof_verifies_offline_and_fails_once_the_entry_is_altered() {
    a_proof_verifies_offline(&Log::populated(None, None, 4)).await;
}

/// Turns the database back into what the binary of before issue 15 left (migrations 0014 and
/// 0015 undone: the linear chain's head in `audit_head`, no shards, trees or checkpoints).
async fn make_linear(l: &Log) {
    let pool = l.pool().await;
    exec(
        &pool,
        "UPDATE audit_head SET seq = (SELECT size FROM audit_shards WHERE shard = 0), \
         hash = (SELECT hash FROM audit_shards WHERE shard = 0), \
         mac = (SELECT mac FROM audit_shards WHERE shard = 0) WHERE id = 1",
        &[],
    )
    .await;
    for sql in [
        "DROP TABLE audit_shards",
        "DROP TABLE audit_checkpoints",
        "DROP TABLE audit_durable",
        "ALTER TABLE audit_log DROP COLUMN nodes",
        "DROP INDEX audit_log_shard_idx",
        "ALTER TABLE audit_log DROP COLUMN shard",
        "ALTER TABLE audit_log DROP COLUMN idx",
        "DELETE FROM _sqlx_migrations WHERE version IN (14, 15)",
    ] {
        exec(&pool, sql, &[]).await;
    }
    if l.url.starts_with("postgres") {
        exec(&pool, "DROP SEQUENCE audit_seq", &[]).await;
    }
    pool.close().await;
}

async fn the_linear_chain_becomes_shard_zeros_prefix(l: &Log) {
    let before: i64 = {
        let pool = l.pool().await;
        let n = sqlx::query("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        n
    };
    make_linear(l).await;
    let l4 = Log {
        dir: tempfile::tempdir().unwrap(),
        url: l.url.clone(),
        key: l.key.clone(),
        shards: 4,
        _db: None,
    };
    let out = l4.ok(&["audit", "verify"]);
    assert!(out.contains(&format!("{before} entries")), "{out}");
    l4.ok(&["keys", "create", "--principal", "after-migration"]);
    l4.ok(&["audit", "checkpoint"]);
    l4.ok(&["audit", "verify"]);
    // every old entry is in shard 0 at idx = seq - 1, with a proof
    let pool = l4.pool().await;
    let bad: i64 = sqlx::query(
        "SELECT COUNT(*) FROM audit_log WHERE seq <= $1 AND (shard <> 0 OR idx <> seq - 1)",
    )
    .bind(before)
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    pool.close().await;
    assert_eq!(bad, 0);
    let key = l4.ok(&["audit", "key"]).trim().to_string();
    for seq in [1, before / 2, before] {
        let file = l4.dir.path().join(format!("p{seq}.json"));
        l4.ok(&[
            "audit",
            "proof",
            &seq.to_string(),
            "--out",
            file.to_str().unwrap(),
        ]);
        l4.ok(&[
            "audit",
            "verify-proof",
            file.to_str().unwrap(),
            "--key",
            &key,
        ]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_linear_chain_of_before_migrates_in_place_and_stays_verifiable() {
    the_linear_chain_becomes_shard_zeros_prefix(&Log::populated(None, None, 1)).await;
}

mod postgres {
    use super::*;

    async fn log(test: &str, shards: u32) -> Option<Log> {
        let db = TestDatabase::for_test(&format!("audit_log::postgres::{test}")).await?;
        let url = db.url().to_string();
        Some(
            tokio::task::spawn_blocking(move || Log::populated(Some(url), Some(db), shards))
                .await
                .unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_edited_reordered_or_deleted_row_in_a_shard_is_named() {
        let Some(l) = log("an_edited_reordered_or_deleted_row_in_a_shard_is_named", 8).await else {
            return;
        };
        rewrites_are_caught(&l).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shard_truncated_and_regrown_to_the_same_size_is_named() {
        let Some(l) = log("a_shard_truncated_and_regrown_to_the_same_size_is_named", 8).await
        else {
            return;
        };
        truncated_and_regrown_is_caught(&l).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_inclusion_proof_verifies_offline() {
        let Some(l) = log("an_inclusion_proof_verifies_offline", 8).await else {
            return;
        };
        a_proof_verifies_offline(&l).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_linear_chain_of_before_migrates_in_place() {
        let Some(l) = log("the_linear_chain_of_before_migrates_in_place", 1).await else {
            return;
        };
        the_linear_chain_becomes_shard_zeros_prefix(&l).await;
    }
}
