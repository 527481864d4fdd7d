//! Issue 9, defects 3 and 4, through the real binary on a small slice of the data set:
//!
//! * a wrong or missing master key is refused by every command that opens the vault, with a
//!   stable code on stderr and exit status 4, and nothing is written (every table compared
//!   before and after; no key file appears);
//! * the audit chain cannot be rewritten by someone who can write the database but does not
//!   hold the master key: four rewrites are each caught by `pivault audit verify` (exit 2, the
//!   entry named), and a chain from before the change (unkeyed SHA-256) is re-keyed on first
//!   open and verifies.
//!
//! SQLite always; the `postgres::*` cases need `PIVAULT_TEST_DATABASE_URL` (CI sets it) and
//! print `SKIPPED` without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_domain::audit::AuditRecord;
use pivault_testkit::bin::PivaultBin;
use pivault_testkit::TestDatabase;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Exit status of a command that refuses to open the vault with the key it was given.
const REFUSED: i32 = 4;
/// Accounts in the slice (with their consent events and orders).
const SLICE_USERS: usize = 40;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// users.csv's first [`SLICE_USERS`] accounts, their consent events and their orders, in `dir`.
fn write_slice(dir: &Path) -> PathBuf {
    pivault_testkit::write_slice(
        &dir.join("slice"),
        SLICE_USERS,
        &["consent_events.csv", "orders.csv"],
    )
}

/// A vault on one database with its key file, populated from the slice by the binary itself.
struct Vault {
    dir: tempfile::TempDir,
    url: String,
    key: PathBuf,
    slice: PathBuf,
    /// Declared last: the PostgreSQL database is dropped after everything else.
    _db: Option<TestDatabase>,
}

impl Vault {
    /// A populated vault: the slice imported (the first command makes the development key
    /// on the new database) and one API key created.
    fn populated(url: Option<String>, db: Option<TestDatabase>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("v.db").display()));
        let slice = write_slice(dir.path());
        let v = Self {
            key: dir.path().join("master.key"),
            dir,
            url,
            slice,
            _db: db,
        };
        let out = v.run(&["import", v.slice.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = v.run(&["keys", "create", "--principal", "billing"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(v.key.exists());
        v
    }

    fn cmd(&self, key: &Path) -> Command {
        let mut c = PivaultBin::new(env!("CARGO_BIN_EXE_pivault")).with_db(&self.url, key);
        // One audit shard: these cases rewrite the linear chain (shard 0) by entry number; the
        // sharded log's cases are in `audit_log.rs`.
        c.current_dir(self.dir.path())
            .env_remove("PIVAULT_SUITE")
            .env("PIVAULT_AUDIT_SHARDS", "1");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(&self.key, args)
    }

    fn run_with(&self, key: &Path, args: &[&str]) -> Output {
        self.cmd(key).args(args).output().unwrap()
    }

    /// `serve` with `key`: `Err(stderr)` if it started listening (it is stopped then),
    /// `Ok((exit status, stderr))` if it exited.
    fn serve_with(&self, key: &Path) -> Result<(Option<i32>, String), String> {
        let mut child = self
            .cmd(key)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut seen = String::new();
        for line in BufReader::new(child.stderr.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.contains("pivault listening on") {
                let _ = child.kill();
                let _ = child.wait();
                return Err(seen);
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        let status = child.wait().unwrap();
        Ok((status.code(), seen))
    }

    async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap()
    }

    /// Every row of every table (each row rendered, sorted per table), skipping `skip`.
    async fn fingerprint(&self, skip: &[&str]) -> Vec<String> {
        let pool = self.pool().await;
        let tables: Vec<String> = if self.url.starts_with("sqlite:") {
            sqlx::query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        } else {
            sqlx::query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&pool)
                .await
                .unwrap()
        }
        .iter()
        .map(|r| r.get::<String, _>(0))
        .filter(|t| !skip.contains(&t.as_str()))
        .collect();
        let mut out = Vec::new();
        for t in tables {
            let sql = if t == "_sqlx_migrations" {
                "SELECT version, checksum FROM _sqlx_migrations".to_string()
            } else {
                format!("SELECT * FROM {t}")
            };
            let mut rows: Vec<String> = sqlx::query(&sql)
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| {
                    let cols: Vec<String> = (0..r.len())
                        .map(|i| {
                            if let Ok(b) = r.try_get::<Option<Vec<u8>>, _>(i) {
                                format!("{:?}", b.map(hex))
                            } else if let Ok(s) = r.try_get::<Option<String>, _>(i) {
                                format!("{s:?}")
                            } else if let Ok(n) = r.try_get::<Option<i64>, _>(i) {
                                format!("{n:?}")
                            } else if let Ok(b) = r.try_get::<Option<bool>, _>(i) {
                                format!("{b:?}")
                            } else {
                                "?".to_string()
                            }
                        })
                        .collect();
                    format!("{t}|{}", cols.join("|"))
                })
                .collect();
            rows.sort();
            out.push(format!("{t}: {} rows", rows.len()));
            out.extend(rows);
        }
        pool.close().await;
        out.sort();
        out
    }

    /// A file holding another valid master key.
    fn wrong_key(&self) -> PathBuf {
        let p = self.dir.path().join("other.key");
        std::fs::write(&p, format!("{}\n", "5a".repeat(32))).unwrap();
        p
    }

    async fn audit_len(&self) -> i64 {
        let pool = self.pool().await;
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
        pool.close().await;
        n
    }
}

fn hex(b: Vec<u8>) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Which tables differ, for a readable failure.
fn same(before: &[String], after: &[String]) -> Result<(), String> {
    if before == after {
        return Ok(());
    }
    let b: std::collections::BTreeSet<&String> = before.iter().collect();
    let a: std::collections::BTreeSet<&String> = after.iter().collect();
    let gone: Vec<&&String> = b.difference(&a).take(5).collect();
    let new: Vec<&&String> = a.difference(&b).take(5).collect();
    Err(format!("database changed: removed {gone:?}, added {new:?}"))
}

fn assert_refused(what: &str, code: Option<i32>, stderr: &str, expect: &str) {
    assert_eq!(
        code,
        Some(REFUSED),
        "{what}: exit status {code:?}, stderr: {stderr}"
    );
    assert!(stderr.contains(expect), "{what}: no {expect}: {stderr}");
}

/// Every command that opens the vault, with its arguments (`serve` apart).
fn vault_commands(v: &Vault) -> Vec<Vec<String>> {
    let s = |x: &[&str]| x.iter().map(|a| (*a).to_string()).collect::<Vec<_>>();
    vec![
        s(&["import", v.slice.to_str().unwrap()]),
        s(&["dsr", "list"]),
        s(&["dsr", "show", "00000000-0000-4000-8000-000000000000"]),
        s(&["sweep"]),
        s(&["audit", "verify"]),
        s(&[
            "keys",
            "create",
            "--principal",
            "intruder",
            "--purposes",
            "service",
        ]),
        s(&[
            "policy",
            "explain",
            "--subject",
            "00000000-0000-4000-8000-000000000000",
            "--purpose",
            "marketing",
        ]),
    ]
}

/// Each command (and `serve`) with `key` is refused with `expect`; the database is unchanged.
async fn refuses_everything(v: &Vault, key: &Path, expect: &str, commands: &[Vec<String>]) {
    let before = v.fingerprint(&[]).await;
    match v.serve_with(key) {
        Err(seen) => panic!("serve started listening with this key ({expect}): {seen}"),
        Ok((code, stderr)) => assert_refused("serve", code, &stderr, expect),
    }
    same(&before, &v.fingerprint(&[]).await).unwrap();
    for args in commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = v.run_with(key, &args);
        assert_refused(
            &args.join(" "),
            out.status.code(),
            &text(&out.stderr),
            expect,
        );
        if let Err(e) = same(&before, &v.fingerprint(&[]).await) {
            panic!("{}: {e}", args.join(" "));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_refuses_a_wrong_master_key_and_writes_nothing() {
    let v = Vault::populated(None, None);
    let wrong = v.wrong_key();
    refuses_everything(&v, &wrong, "master_key_mismatch", &vault_commands(&v)).await;
    // the right key still opens it, and nothing was imported twice
    let out = v.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_refuses_a_missing_master_key_on_a_populated_database() {
    let v = Vault::populated(None, None);
    let kept = v.dir.path().join("kept.key");
    std::fs::rename(&v.key, &kept).unwrap();
    refuses_everything(&v, &v.key, "master_key_missing", &vault_commands(&v)).await;
    assert!(
        !v.key.exists(),
        "no development key may be made for a populated database"
    );
    std::fs::rename(&kept, &v.key).unwrap();
    let out = v.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

// ---- the audit chain ----------------------------------------------------------------------

/// Column order of `audit_log` up to `detail`, as `AuditRecord` holds them.
const AUDIT_COLS: &str = "seq, at, actor, action, subject_id, purpose, categories, outcome, \
                          reason, legal_basis, policy_version, request_id, detail";

fn record(r: &sqlx::any::AnyRow) -> AuditRecord {
    AuditRecord {
        seq: r.get(0),
        at: r.get(1),
        actor: r.get(2),
        action: r.get(3),
        subject_id: r.get(4),
        purpose: r.get(5),
        categories: r.get(6),
        outcome: r.get(7),
        reason: r.get(8),
        legal_basis: r.get(9),
        policy_version: r.get(10),
        request_id: r.get(11),
        detail: r.get(12),
        shard: 0,
        idx: r.get::<i64, _>(0) - 1,
    }
}

/// What a writer without the key can do: recompute the chain from entry `from` on with the
/// unkeyed SHA-256 of before issue 9, and point the head at the result.
async fn rehash_unkeyed_from(pool: &AnyPool, from: i64) {
    let mut tx = pool.begin().await.unwrap();
    let mut prev = [0u8; 32];
    if from > 1 {
        let h: Vec<u8> = sqlx::query("SELECT hash FROM audit_log WHERE seq = $1")
            .bind(from - 1)
            .fetch_one(&mut *tx)
            .await
            .unwrap()
            .get(0);
        prev.copy_from_slice(&h);
    }
    let rows = sqlx::query(&format!(
        "SELECT {AUDIT_COLS} FROM audit_log WHERE seq >= $1 ORDER BY seq"
    ))
    .bind(from)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let mut last = from - 1;
    for r in &rows {
        let rec = record(r);
        let h = pivault_crypto::chain_hash(&prev, &rec.canonical_bytes());
        sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(prev.to_vec())
            .bind(h.to_vec())
            .bind(rec.seq)
            .execute(&mut *tx)
            .await
            .unwrap();
        prev = h;
        last = rec.seq;
    }
    sqlx::query("UPDATE audit_shards SET size = $1, hash = $2 WHERE shard = 0")
        .bind(last)
        .bind(prev.to_vec())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn exec(pool: &AnyPool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// `audit verify` fails with exit 2 and names entry `seq`.
fn assert_broken_at(v: &Vault, seq: i64, what: &str) {
    let out = v.run(&["audit", "verify"]);
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: audit verify passed: {}{err}",
        text(&out.stdout)
    );
    assert!(
        err.contains(&format!("at entry {seq}:")),
        "{what}: entry {seq} not named: {err}"
    );
}

fn assert_verifies(v: &Vault) -> String {
    let out = v.run(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_newest_entry_and_moving_the_head_back_is_detected() {
    let v = Vault::populated(None, None);
    assert_verifies(&v);
    head_moved_back(&v).await;
}

async fn head_moved_back(v: &Vault) {
    let n = v.audit_len().await;
    let pool = v.pool().await;
    exec(&pool, &format!("DELETE FROM audit_log WHERE seq = {n}")).await;
    exec(
        &pool,
        &format!(
            "UPDATE audit_shards SET size = {}, hash = (SELECT hash FROM audit_log WHERE seq = {}) WHERE shard = 0",
            n - 1,
            n - 1
        ),
    )
    .await;
    pool.close().await;
    assert_broken_at(v, n, "newest entry deleted, head moved back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_the_log_and_resetting_the_head_is_detected() {
    let v = Vault::populated(None, None);
    assert_verifies(&v);
    let pool = v.pool().await;
    exec(&pool, "DELETE FROM audit_log").await;
    sqlx::query("UPDATE audit_shards SET size = 0, hash = $1 WHERE shard = 0")
        .bind(vec![0u8; 32])
        .execute(&pool)
        .await
        .unwrap();
    // as the head of a new database looks (no MAC), where the column exists
    let _ = sqlx::query("UPDATE audit_shards SET mac = NULL WHERE shard = 0")
        .execute(&pool)
        .await;
    pool.close().await;
    assert_broken_at(&v, 1, "log emptied, head reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_row_and_rehashing_the_chain_without_the_key_is_detected() {
    let v = Vault::populated(None, None);
    assert_verifies(&v);
    let k = v.audit_len().await / 2;
    let pool = v.pool().await;
    exec(
        &pool,
        &format!(
            "UPDATE audit_log SET outcome = 'deny', reason = 'consent_missing' WHERE seq = {k}"
        ),
    )
    .await;
    rehash_unkeyed_from(&pool, k).await;
    pool.close().await;
    assert_broken_at(&v, k, "row edited, chain re-hashed with SHA-256");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_middle_entry_and_renumbering_the_rest_is_detected() {
    let v = Vault::populated(None, None);
    assert_verifies(&v);
    let n = v.audit_len().await;
    let k = n / 3;
    let pool = v.pool().await;
    exec(&pool, &format!("DELETE FROM audit_log WHERE seq = {k}")).await;
    for seq in k + 1..=n {
        exec(
            &pool,
            &format!("UPDATE audit_log SET seq = {} WHERE seq = {seq}", seq - 1),
        )
        .await;
    }
    rehash_unkeyed_from(&pool, k).await;
    pool.close().await;
    assert_broken_at(&v, k, "middle entry deleted, renumbered and re-linked");
}

/// Turns the database back into what the binary of before issue 9 left: no key check, no
/// head MAC, migration 5 not applied, the chain hashed with unkeyed SHA-256. Later migrations
/// (6: key lifecycle, 7: DSR intake) stay applied: they touch other columns, and sqlx applies
/// the missing version 5 on its own.
async fn make_legacy(v: &Vault) {
    let pool = v.pool().await;
    exec(&pool, "DROP TABLE IF EXISTS vault_meta").await;
    let _ = sqlx::query("ALTER TABLE audit_head DROP COLUMN mac")
        .execute(&pool)
        .await;
    exec(&pool, "DELETE FROM _sqlx_migrations WHERE version = 5").await;
    rehash_unkeyed_from(&pool, 1).await;
    pool.close().await;
}

async fn first_entry_is_unkeyed(v: &Vault) -> bool {
    let pool = v.pool().await;
    let r = sqlx::query(&format!(
        "SELECT {AUDIT_COLS}, hash FROM audit_log WHERE seq = 1"
    ))
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    let stored: Vec<u8> = r.get(13);
    pivault_crypto::chain_hash(&[0u8; 32], &record(&r).canonical_bytes()).to_vec() == stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_unkeyed_chain_is_rekeyed_on_first_open_and_verifies() {
    legacy_chain_is_rekeyed(&Vault::populated(None, None)).await;
}

async fn legacy_chain_is_rekeyed(v: &Vault) {
    make_legacy(v).await;
    let n = v.audit_len().await;
    assert!(first_entry_is_unkeyed(v).await);
    // the same data-table contents before and after a refused open (migration 5 may add its
    // schema, nothing else)
    let schema = ["vault_meta", "_sqlx_migrations", "audit_head"];
    let before = v.fingerprint(&schema).await;

    let wrong = v.wrong_key();
    let out = v.run_with(&wrong, &["audit", "verify"]);
    assert_refused(
        "legacy, wrong key",
        out.status.code(),
        &text(&out.stderr),
        "master_key_mismatch",
    );
    same(&before, &v.fingerprint(&schema).await).unwrap();
    let out = v.run_with(&v.dir.path().join("absent.key"), &["import", "slice"]);
    assert_refused(
        "legacy, no key",
        out.status.code(),
        &text(&out.stderr),
        "master_key_missing",
    );
    assert!(!v.dir.path().join("absent.key").exists());
    same(&before, &v.fingerprint(&schema).await).unwrap();
    assert!(first_entry_is_unkeyed(v).await);

    // the right key: the legacy chain verifies, is re-keyed (one more entry says so) and the
    // format is recorded
    let ok = assert_verifies(v);
    assert!(
        ok.contains(&format!("audit chain ok: {} entries", n + 1)),
        "{ok}"
    );
    assert!(!first_entry_is_unkeyed(v).await, "entry 1 was not re-keyed");
    let pool = v.pool().await;
    let r = sqlx::query("SELECT chain_format, key_check FROM vault_meta WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(r.get::<String, _>(0), "hmac-sha256-v1");
    assert_eq!(r.get::<Vec<u8>, _>(1).len(), 32);
    // and the keyed chain now catches a rewrite without the key
    head_moved_back(v).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_chain_that_is_already_broken_stays_broken_after_rekeying() {
    broken_legacy_chain_stays_broken(&Vault::populated(None, None)).await;
}

async fn broken_legacy_chain_stays_broken(v: &Vault) {
    make_legacy(v).await;
    let k = v.audit_len().await / 2;
    let pool = v.pool().await;
    exec(
        &pool,
        &format!("UPDATE audit_log SET action = 'subject.read' WHERE seq = {k}"),
    )
    .await;
    pool.close().await;
    assert_broken_at(v, k, "legacy chain altered before the upgrade");
    // the intact prefix was re-keyed; the break was not papered over
    assert!(!first_entry_is_unkeyed(v).await);
    assert_broken_at(v, k, "legacy chain altered before the upgrade, second run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intact_keyed_chain_verifies_and_names_its_length() {
    let v = Vault::populated(None, None);
    let n = v.audit_len().await;
    let ok = assert_verifies(&v);
    assert!(ok.contains(&format!("audit chain ok: {n} entries")), "{ok}");
    assert!(!first_entry_is_unkeyed(&v).await, "the chain must be keyed");
}

mod postgres {
    use super::*;

    async fn vault(test: &str) -> Option<Vault> {
        let db = TestDatabase::for_test(&format!("keyaudit::postgres::{test}")).await?;
        let url = db.url().to_string();
        Some(
            tokio::task::spawn_blocking(move || Vault::populated(Some(url), Some(db)))
                .await
                .unwrap(),
        )
    }

    fn serve_and_import(v: &Vault) -> Vec<Vec<String>> {
        vec![vec!["import".to_string(), v.slice.display().to_string()]]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_and_import_refuse_a_wrong_master_key_and_write_nothing() {
        let Some(v) = vault("serve_and_import_refuse_a_wrong_master_key_and_write_nothing").await
        else {
            return;
        };
        let wrong = v.wrong_key();
        refuses_everything(&v, &wrong, "master_key_mismatch", &serve_and_import(&v)).await;
        assert_verifies(&v);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve_and_import_refuse_a_missing_master_key_and_write_nothing() {
        let Some(v) = vault("serve_and_import_refuse_a_missing_master_key_and_write_nothing").await
        else {
            return;
        };
        let kept = v.dir.path().join("kept.key");
        std::fs::rename(&v.key, &kept).unwrap();
        refuses_everything(&v, &v.key, "master_key_missing", &serve_and_import(&v)).await;
        assert!(!v.key.exists());
        std::fs::rename(&kept, &v.key).unwrap();
        assert_verifies(&v);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deleting_the_newest_entry_and_moving_the_head_back_is_detected() {
        let Some(v) = vault("deleting_the_newest_entry_and_moving_the_head_back_is_detected").await
        else {
            return;
        };
        assert_verifies(&v);
        head_moved_back(&v).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_legacy_unkeyed_chain_is_rekeyed_on_first_open_and_verifies() {
        let Some(v) = vault("a_legacy_unkeyed_chain_is_rekeyed_on_first_open_and_verifies").await
        else {
            return;
        };
        legacy_chain_is_rekeyed(&v).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_legacy_chain_that_is_already_broken_stays_broken_after_rekeying() {
        let Some(v) =
            vault("a_legacy_chain_that_is_already_broken_stays_broken_after_rekeying").await
        else {
            return;
        };
        broken_legacy_chain_stays_broken(&v).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn editing_a_row_and_rehashing_the_chain_without_the_key_is_detected() {
        let Some(v) =
            vault("editing_a_row_and_rehashing_the_chain_without_the_key_is_detected").await
        else {
            return;
        };
        let k = v.audit_len().await / 2;
        let pool = v.pool().await;
        exec(
            &pool,
            &format!("UPDATE audit_log SET outcome = 'deny' WHERE seq = {k}"),
        )
        .await;
        rehash_unkeyed_from(&pool, k).await;
        pool.close().await;
        assert_broken_at(&v, k, "row edited, chain re-hashed with SHA-256");
    }
}
