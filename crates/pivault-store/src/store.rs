//! The [`Store`]: connection, migrations, reads, and the audited write transaction.

use crate::fault::{Health, StorageFault};
use crate::guard::{GuardedPool, WriteRegistration};
use crate::rows::{ApiKeyRow, AuditRow, ConsentRow, DisclosureRow, FieldRow, KeyRow, SubjectRow};
use crate::txconn::TxConn;
use crate::StoreError;
use pivault_crypto::AuditChainKey;
use pivault_domain::audit::AuditRecord;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, Connection, Executor, Row};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

mod keyed;
pub use keyed::{AuditHead, VaultMetaRow};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Per-connection SQLite settings: WAL for concurrent readers, `secure_delete` so deleted
/// rows (wrapped DEKs, blind-index entries) are overwritten in the file, a busy timeout for
/// the CLI running beside the server.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA secure_delete=ON",
    "PRAGMA busy_timeout=10000",
    "PRAGMA foreign_keys=ON",
    // 64 MiB page cache and 256 MiB of mmap: random-UUID keys touch pages all over the file,
    // and with the 2 MiB default most of an import's time went to read() syscalls.
    "PRAGMA cache_size=-65536",
    "PRAGMA mmap_size=268435456",
    "PRAGMA temp_store=MEMORY",
];

/// Per-connection PostgreSQL settings: a statement that runs too long, or waits too long for a
/// lock (the audit-chain head every writer takes), fails with SQLSTATE 57014 or 55P03 —
/// [`StoreError::Busy`], answered 503 `storage_busy` — instead of holding its pool connection
/// (and with it every instance's writers) until clients give up; a transaction left idle by its
/// holder is ended by the server. Migrations run without them ([`Store::migrate`]).
const POSTGRES_SETTINGS: &[&str] = &[
    "SET statement_timeout = '15s'",
    "SET lock_timeout = '10s'",
    "SET idle_in_transaction_session_timeout = '30s'",
];

/// Longest wait for a pool connection before [`StoreError::Busy`] (was 30 s: clients gave up
/// first and saw a hang, not an answer).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows per multi-row INSERT; keeps bound parameters far below both backends' limits
/// (SQLite 32,766; PostgreSQL 65,535).
const CHUNK: usize = 400;

/// While writes fail, [`Store::write_readiness`] probes at most this often…
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// …and gives a probe this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// While writes are failing, [`Store::begin`] waits at most this long for a connection.
const FAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file (WAL). One process writes at a time.
    Sqlite,
    /// PostgreSQL; many pivault instances may share it.
    Postgres,
}

/// The store. Cheap to clone (a pool handle).
///
/// Its pool is reached only through the nested-acquire guard (see `guard.rs`): while a task
/// holds a [`WriteTx`], every `Store` method called from that task fails with
/// [`StoreError::NestedAcquire`] (debug builds panic) instead of waiting for a second
/// connection — reads inside a write transaction go through the transaction.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: GuardedPool,
    backend: Backend,
    write_lock: Option<Arc<Mutex<()>>>,
    health: Arc<Health>,
    /// SQLite: one connection kept open (never used) for the store's lifetime, see
    /// [`Store::connect_with`].
    keeper: Arc<std::sync::Mutex<Option<AnyConnection>>>,
    /// The audit chain key, shared by every clone; set by [`Store::set_audit_key`].
    audit_key: Arc<RwLock<Option<AuditChainKey>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Splits a URL into backend and the URL sqlx should open.
///
/// # Errors
/// [`StoreError::UnsupportedUrl`] for any scheme other than `sqlite://`, `postgres://` or
/// `postgresql://`, and for bare paths.
pub fn parse_url(url: &str) -> Result<(Backend, String), StoreError> {
    if let Some(rest) = url.strip_prefix("sqlite://") {
        if rest.is_empty() {
            return Err(StoreError::UnsupportedUrl("sqlite (no path)".into()));
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut u = format!("sqlite://{path}");
        if query.is_empty() {
            u.push_str("?mode=rwc");
        } else {
            u.push('?');
            u.push_str(query);
            if !query.contains("mode=") {
                u.push_str("&mode=rwc");
            }
        }
        Ok((Backend::Sqlite, u))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else {
        let scheme = url
            .split_once("://")
            .map_or("(none: a bare path)", |(s, _)| s);
        Err(StoreError::UnsupportedUrl(scheme.to_string()))
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    Some(rest.split_once('?').map_or(rest, |(p, _)| p))
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Store {
    /// Opens (creating, for SQLite) the database at `url` and applies migrations.
    ///
    /// # Errors
    /// Unsupported URL, I/O creating the SQLite directory, connection or migration failure.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, None).await
    }

    /// Like [`Store::connect`] with an explicit pool size.
    ///
    /// # Errors
    /// As [`Store::connect`].
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, sqlx_url) = parse_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(parent) = sqlite_path(&sqlx_url)
                .map(std::path::Path::new)
                .and_then(std::path::Path::parent)
            {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)?;
                }
            }
        }
        let is_sqlite = backend == Backend::Sqlite;
        let health = Arc::new(Health::new());
        let retire = Arc::clone(&health);
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.unwrap_or(if is_sqlite { 8 } else { 16 }))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let settings = if is_sqlite {
                        SQLITE_PRAGMAS
                    } else {
                        POSTGRES_SETTINGS
                    };
                    for setting in settings {
                        conn.execute(*setting).await?;
                    }
                    Ok(())
                })
            })
            // Once a storage fault is over, connections opened during it are replaced (see
            // `Health::reusable`).
            .before_acquire(move |_conn, meta| {
                let keep = retire.reusable(meta.age);
                Box::pin(async move { Ok(keep) })
            })
            .connect(&sqlx_url)
            .await?;
        // SQLite: while any connection of this process has the database open, a new one shares
        // its WAL index (the -shm mapping); when the last one closes, the next must set the index
        // up again, which writes. Write transactions that fail close their connection, so during
        // a storage fault the pool could drain to nothing and then be unable to open any
        // connection, reads included, each waiting out the acquire timeout. One idle connection
        // outside the pool keeps the index set up.
        let keeper = if is_sqlite {
            Some(pool.acquire().await?.detach())
        } else {
            None
        };
        let store = Self {
            pool: GuardedPool::new(pool),
            backend,
            write_lock: is_sqlite.then(|| Arc::new(Mutex::new(()))),
            health,
            keeper: Arc::new(std::sync::Mutex::new(keeper)),
            audit_key: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending forward-only migrations (same version numbers on both backends).
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(self.pool.get()?).await?,
            Backend::Postgres => {
                // A migration may rewrite a large table, and waits for other instances'
                // migrations on an advisory lock: no statement or lock timeout on its
                // connection, which is then closed rather than returned to the pool.
                let mut conn = self.pool.get()?.acquire().await?;
                conn.execute("SET statement_timeout = 0").await?;
                conn.execute("SET lock_timeout = 0").await?;
                let mut conn = conn.detach();
                let run = POSTGRES_MIGRATOR.run(&mut conn).await;
                let _ = sqlx::Connection::close(conn).await;
                run?;
            }
        }
        Ok(())
    }

    /// The backend in use.
    #[must_use]
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool (waits for connections to return). Refused (debug builds panic) while
    /// the calling task holds a write transaction: its connection would never return.
    pub async fn close(&self) {
        if let Ok(pool) = self.pool.get() {
            pool.close().await;
        }
        let keeper = self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(c) = keeper {
            let _ = c.close().await;
        }
    }

    /// SQLite only: folds the WAL into the main file and truncates it (used before scanning the
    /// file in tests and after erasure). No-op on PostgreSQL.
    ///
    /// # Errors
    /// Database failure.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE);")
                .execute(self.pool.get()?)
                .await?;
        }
        Ok(())
    }

    /// Begins a write transaction stamped `now` (unix seconds). Its first statement locks the
    /// audit chain head, so writers are serialized and the chain cannot fork.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Full`] / [`StoreError::Unavailable`] for storage faults;
    /// [`StoreError::NestedAcquire`] when the calling task already holds a write transaction
    /// (debug builds panic).
    pub async fn begin(&self, now: i64) -> Result<WriteTx, StoreError> {
        // Registered first: a second `begin` of the same task would wait for its own lock.
        let (pool, live) = self.pool.begin_write()?;
        let guard = match &self.write_lock {
            Some(l) => Some(Arc::clone(l).lock_owned().await),
            None => None,
        };
        // While writes are failing, a connection is not waited for long: the pool retries
        // connections it cannot set up until its 30 s acquire timeout.
        let acquired = match self.health.fault() {
            None => pool.acquire().await,
            Some(_) => tokio::time::timeout(FAULT_ACQUIRE_TIMEOUT, pool.acquire())
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut)),
        };
        let conn = match acquired {
            Ok(c) => c,
            Err(e) => {
                // During a storage fault, no connection in time is the fault showing (new
                // connections cannot be set up); otherwise it is load (`Busy`).
                if self.health.fault().is_some() {
                    self.health.note(&e);
                    return Err(StoreError::Unavailable(e));
                }
                return Err(e.into());
            }
        };
        let mut tx = TxConn::new(conn, guard, Arc::clone(&self.health));
        // SQLite: take the write lock now rather than at the first write (no lock upgrade).
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        };
        // `Executor::execute` directly: `sqlx::raw_sql(..).execute(..)` is an async fn whose
        // `E: Executor<'e>` bound makes its future not provably `Send` for `&mut TxConn`
        // (higher-ranked lifetimes), and callers spawn write transactions.
        (&mut *tx).execute(begin).await?;
        sqlx::query("UPDATE audit_head SET touched_at = $1 WHERE id = 1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // The head, its MAC and whether a key check is recorded, read once here under the lock:
        // `commit` verifies the MAC from these instead of reading the head again.
        let row = sqlx::query(
            "SELECT seq, hash, mac, (SELECT COUNT(*) FROM vault_meta WHERE key_check IS NOT NULL) \
             FROM audit_head WHERE id = 1",
        )
        .fetch_one(&mut *tx)
        .await?;
        let seq: i64 = row.try_get(0)?;
        let hash: Vec<u8> = row.try_get(1)?;
        let head_mac: Option<Vec<u8>> = row.try_get(2)?;
        let key_checked = row.try_get::<i64, _>(3)? > 0;
        let mut head = [0u8; 32];
        if hash.len() == 32 {
            head.copy_from_slice(&hash);
        }
        Ok(WriteTx {
            tx,
            backend: self.backend,
            head_seq: seq,
            head_hash: head,
            head_mac,
            key_checked,
            audit: Vec::new(),
            audit_key: Arc::clone(&self.audit_key),
            _live: live,
        })
    }

    /// `None` while write transactions commit; after a storage fault, that fault, until a
    /// write transaction commits again.
    #[must_use]
    pub fn storage_fault(&self) -> Option<StorageFault> {
        self.health.fault()
    }

    /// Commits an empty write transaction (it only touches the audit head's timestamp): whether
    /// the storage takes writes. Updates [`Store::storage_fault`] like any write transaction.
    ///
    /// # Errors
    /// As [`Store::begin`] and [`WriteTx::commit`].
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        self.begin(now_unix()).await?.commit().await?;
        Ok(())
    }

    /// Readiness for writes: `Ok` while write transactions commit. After a storage fault,
    /// `Err(fault)` until one commits again; meanwhile each call may run a [`Store::probe_write`]
    /// (one at a time, at most once a second, for at most 2 s), so readiness comes back once
    /// the storage does, even without write traffic.
    ///
    /// # Errors
    /// The storage fault writes are failing with.
    pub async fn write_readiness(&self) -> Result<(), StorageFault> {
        let Some(fault) = self.health.fault() else {
            return Ok(());
        };
        let Ok(mut last) = self.health.probe.try_lock() else {
            return Err(fault); // a probe is running
        };
        if last.is_some_and(|t| t.elapsed() < PROBE_INTERVAL) {
            return Err(fault);
        }
        *last = Some(Instant::now());
        match tokio::time::timeout(PROBE_TIMEOUT, self.probe_write()).await {
            Ok(Ok(())) => Ok(()),
            _ => self.health.fault().map_or(Ok(()), Err),
        }
    }

    /// A subject by id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject(&self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(SUBJECT_BY_ID)
            .bind(id)
            .fetch_optional(self.pool.get()?)
            .await?;
        row.map(|r| subject_from(&r)).transpose()
    }

    /// The wrapped DEK of a subject for a scope.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_key(
        &self,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<KeyRow>, StoreError> {
        let row = sqlx::query(KEY_OF_SCOPE)
            .bind(subject_id)
            .bind(scope)
            .fetch_optional(self.pool.get()?)
            .await?;
        row.map(|r| key_from(&r)).transpose()
    }

    /// Wrapped DEKs of `scope` for many subjects at once.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_keys_many(
        &self,
        subject_ids: &[&str],
        scope: &str,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in subject_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
                 WHERE scope = {} AND subject_id IN ({})",
                ph(self.backend, 1),
                placeholders(self.backend, 2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(scope);
            for s in chunk {
                q = q.bind(*s);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push(key_from(&r)?);
            }
        }
        Ok(out)
    }

    /// All wrapped DEKs of a subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_keys(&self, subject_id: &str) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
             WHERE subject_id = $1",
        )
        .bind(subject_id)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(key_from).collect()
    }

    /// All sealed fields of a subject, ordered by record then name.
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields(&self, subject_id: &str) -> Result<Vec<FieldRow>, StoreError> {
        let rows = sqlx::query(FIELDS_OF)
            .bind(subject_id)
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(field_from).collect()
    }

    /// Subjects whose blind index of `kind` equals `digest`; every match, sorted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup(&self, kind: &str, digest: &[u8]) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2 ORDER BY subject_id",
        )
        .bind(kind)
        .bind(digest.to_vec())
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// For many digests of one kind: the (digest, subject) pairs that exist.
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup_many(
        &self,
        kind: &str,
        digests: &[[u8; 32]],
    ) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in digests.chunks(CHUNK) {
            let sql = format!(
                "SELECT digest, subject_id FROM blind_index WHERE kind = {} AND digest IN ({})",
                ph(self.backend, 1),
                placeholders(self.backend, 2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(kind);
            for d in chunk {
                q = q.bind(d.to_vec());
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    /// Of the given consent event references, those already in the ledger.
    ///
    /// # Errors
    /// Database failure.
    pub async fn existing_consent_refs(&self, refs: &[&str]) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in refs.chunks(CHUNK) {
            let sql = format!(
                "SELECT event_ref FROM consent_events WHERE event_ref IN ({})",
                placeholders(self.backend, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q.bind(*r);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push(r.try_get(0)?);
            }
        }
        Ok(out)
    }

    /// Of the given (subject, record) pairs, those that already have fields. Uses the primary
    /// key prefix, so it costs one index probe per pair.
    ///
    /// # Errors
    /// Database failure.
    pub async fn existing_records(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT subject_id, record FROM fields WHERE (subject_id, record) IN (VALUES {})",
                values_clause(self.backend, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (s, r) in chunk {
                q = q.bind(*s).bind(*r);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(out)
    }

    /// A subject's consent ledger, in ledger order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn consent_events(&self, subject_id: &str) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(CONSENTS_OF)
            .bind(subject_id)
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(consent_from).collect()
    }

    /// Whether a consent event with this reference exists.
    ///
    /// # Errors
    /// Database failure.
    pub async fn consent_ref_exists(&self, event_ref: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM consent_events WHERE event_ref = $1")
            .bind(event_ref)
            .fetch_optional(self.pool.get()?)
            .await?;
        Ok(row.is_some())
    }

    /// An API key by its public id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT key_id, principal, roles, purposes, token_hash, created_at, revoked_at \
             FROM api_keys WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| {
            Ok(ApiKeyRow {
                key_id: r.try_get(0)?,
                principal: r.try_get(1)?,
                roles: r.try_get(2)?,
                purposes: r.try_get(3)?,
                token_hash: r.try_get(4)?,
                created_at: r.try_get(5)?,
                revoked_at: r.try_get(6)?,
            })
        })
        .transpose()
    }

    /// Up to `limit` audit rows with `seq > after`, in chain order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject_id, purpose, categories, outcome, reason, \
             legal_basis, policy_version, request_id, detail, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    record: audit_record_from(r)?,
                    prev_hash: r.try_get(13)?,
                    hash: r.try_get(14)?,
                })
            })
            .collect()
    }

    /// Disclosure-ledger entries: of one subject (newest first) when `subject_id` is set,
    /// else all entries with `from <= at < to`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn disclosures(
        &self,
        subject_id: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<DisclosureRow>, StoreError> {
        let rows = match subject_id {
            Some(s) => {
                sqlx::query(&disclosures_sql(true))
                    .bind(s)
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.pool.get()?)
                    .await?
            }
            None => {
                sqlx::query(&disclosures_sql(false))
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.pool.get()?)
                    .await?
            }
        };
        rows.iter().map(disclosure_from).collect()
    }

    /// The facts epoch: bumped by every transaction that changes what decisions read.
    ///
    /// # Errors
    /// Database failure.
    pub async fn facts_epoch(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT facts_epoch FROM audit_head WHERE id = 1")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// The audit chain head: (last seq, its hash).
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// Audit rows about one subject, newest first, at most `limit`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_for_subject(
        &self,
        subject_id: &str,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject_id, purpose, categories, outcome, reason, \
             legal_basis, policy_version, request_id, detail FROM audit_log \
             WHERE subject_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(subject_id)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(audit_record_from).collect()
    }

    /// Row count of a table (for import reports and tests). `table` must be one of the store's
    /// own table names.
    ///
    /// # Errors
    /// Database failure, or [`StoreError::Conflict`] for an unknown table name.
    pub async fn count(&self, table: &str) -> Result<i64, StoreError> {
        const TABLES: [&str; 7] = [
            "subjects",
            "subject_keys",
            "fields",
            "blind_index",
            "consent_events",
            "audit_log",
            "api_keys",
        ];
        if !TABLES.contains(&table) {
            return Err(StoreError::Conflict("unknown table"));
        }
        let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Test/operator hook: overwrite one audit column by hand, as an attacker or a careless
    /// operator would. Used to prove `audit verify` catches it.
    ///
    /// # Errors
    /// Database failure.
    pub async fn tamper_audit_action(&self, seq: i64, action: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_log SET action = $1 WHERE seq = $2")
            .bind(action)
            .bind(seq)
            .execute(self.pool.get()?)
            .await?;
        Ok(())
    }

    /// Records that a policy version was loaded (idempotent).
    ///
    /// # Errors
    /// Database failure.
    pub async fn record_policy_version(&self, version: &str, hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_versions (version, hash, loaded_at) VALUES ($1, $2, $3) \
             ON CONFLICT (version, hash) DO NOTHING",
        )
        .bind(version)
        .bind(hash)
        .bind(now_unix())
        .execute(self.pool.get()?)
        .await?;
        Ok(())
    }
}

/// A subject by id ([`subject_from`] columns).
const SUBJECT_BY_ID: &str =
    "SELECT id, kind, status, created_at, erased_at, home_region FROM subjects WHERE id = $1";
/// A subject's wrapped DEK of one scope ([`key_from`] columns).
const KEY_OF_SCOPE: &str =
    "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
     WHERE subject_id = $1 AND scope = $2";
/// A subject's sealed fields by record then name ([`field_from`] columns).
const FIELDS_OF: &str =
    "SELECT subject_id, record, name, category, key_id, ciphertext, restricted_until, updated_at \
     FROM fields WHERE subject_id = $1 ORDER BY record, name";
/// A subject's consent ledger in ledger order ([`consent_from`] columns).
const CONSENTS_OF: &str =
    "SELECT seq, event_ref, subject_id, purpose, action, at, given_by, method, separate, \
     policy_version, recorded_at, recipient FROM consent_events WHERE subject_id = $1 ORDER BY seq";

/// Disclosure-ledger query ([`disclosure_from`] columns): of one subject (`$1`, then
/// `from <= at < to`), newest first, or of everyone in `from <= at < to`, oldest first.
fn disclosures_sql(of_subject: bool) -> String {
    const COLS: &str =
        "id, subject_id, action, recipient, purpose, categories, legal_basis, exception, \
         reference, authorized_by, region, at, actor, request_id";
    if of_subject {
        format!(
            "SELECT {COLS} FROM disclosures WHERE subject_id = $1 AND at >= $2 AND at < $3 ORDER BY at DESC, id"
        )
    } else {
        format!("SELECT {COLS} FROM disclosures WHERE at >= $1 AND at < $2 ORDER BY at, id")
    }
}

fn disclosure_from(r: &AnyRow) -> Result<DisclosureRow, StoreError> {
    Ok(DisclosureRow {
        id: r.try_get(0)?,
        subject_id: r.try_get(1)?,
        action: r.try_get(2)?,
        recipient: r.try_get(3)?,
        purpose: r.try_get(4)?,
        categories: r.try_get(5)?,
        legal_basis: r.try_get(6)?,
        exception: r.try_get(7)?,
        reference: r.try_get(8)?,
        authorized_by: r.try_get(9)?,
        region: r.try_get(10)?,
        at: r.try_get(11)?,
        actor: r.try_get(12)?,
        request_id: r.try_get(13)?,
    })
}

/// Columns 0..=12 of an `audit_log` row, in table order.
fn audit_record_from(r: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: r.try_get(0)?,
        at: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        subject_id: r.try_get(4)?,
        purpose: r.try_get(5)?,
        categories: r.try_get(6)?,
        outcome: r.try_get(7)?,
        reason: r.try_get(8)?,
        legal_basis: r.try_get(9)?,
        policy_version: r.try_get(10)?,
        request_id: r.try_get(11)?,
        detail: r.try_get(12)?,
    })
}

fn subject_from(r: &AnyRow) -> Result<SubjectRow, StoreError> {
    Ok(SubjectRow {
        id: r.try_get(0)?,
        kind: r.try_get(1)?,
        status: r.try_get(2)?,
        created_at: r.try_get(3)?,
        erased_at: r.try_get(4)?,
        home_region: r.try_get(5)?,
    })
}

fn key_from(r: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        subject_id: r.try_get(0)?,
        scope: r.try_get(1)?,
        key_id: r.try_get(2)?,
        kek_id: r.try_get(3)?,
        wrapped: r.try_get(4)?,
        created_at: r.try_get(5)?,
    })
}

fn field_from(r: &AnyRow) -> Result<FieldRow, StoreError> {
    Ok(FieldRow {
        subject_id: r.try_get(0)?,
        record: r.try_get(1)?,
        name: r.try_get(2)?,
        category: r.try_get(3)?,
        key_id: r.try_get(4)?,
        ciphertext: r.try_get(5)?,
        restricted_until: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

fn consent_from(r: &AnyRow) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        seq: r.try_get(0)?,
        event_ref: r.try_get(1)?,
        subject_id: r.try_get(2)?,
        purpose: r.try_get(3)?,
        action: r.try_get(4)?,
        at: r.try_get(5)?,
        given_by: r.try_get(6)?,
        method: r.try_get(7)?,
        separate: r.try_get::<i64, _>(8)? != 0,
        policy_version: r.try_get(9)?,
        recorded_at: r.try_get(10)?,
        recipient: r.try_get(11)?,
    })
}

/// The i-th (1-based) placeholder. SQLite gets anonymous `?`: sqlx-sqlite resolves each
/// named `$n` with `sqlite3_bind_parameter_name`, which is quadratic in the parameter count of
/// a statement (it made multi-row inserts 5x slower). PostgreSQL needs `$n`.
pub(crate) fn ph(backend: Backend, i: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${i}"),
    }
}

/// `first, first+1, …` (`n` placeholders).
pub(crate) fn placeholders(backend: Backend, first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| ph(backend, i))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2, …), ($n+1, …)` for `rows` rows of `cols` columns.
fn values_clause(backend: Backend, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            s.push_str(&ph(backend, n));
            n += 1;
        }
        s.push(')');
    }
    s
}

/// An open write transaction holding the audit-chain head lock. Queue audit entries with
/// [`WriteTx::audit`]; [`WriteTx::commit`] appends them and commits the change with them.
/// Dropping it without commit rolls everything back.
///
/// The first failed statement fails the whole transaction: later statements and the commit
/// are refused, and its connection is closed rather than returned to the pool (see
/// `txconn.rs`). A write is acknowledged only by `commit` returning `Ok`.
/// While it is open, read through it ([`WriteTx::fields`], [`WriteTx::subject_key`],
/// [`WriteTx::consent_events`], …), never through the [`Store`]: the store refuses a task that
/// holds one ([`StoreError::NestedAcquire`]), because waiting for a second connection while
/// holding the head lock can stall every writer of every instance.
pub struct WriteTx {
    /// `&mut *self.tx` is the executor of the transaction's statements.
    pub(crate) tx: Box<TxConn>,
    pub(crate) backend: Backend,
    head_seq: i64,
    head_hash: [u8; 32],
    /// The head's MAC as stored (read in `begin`, updated when this transaction moves it).
    head_mac: Option<Vec<u8>>,
    /// Whether a key check value was recorded when this transaction began.
    key_checked: bool,
    audit: Vec<AuditRecord>,
    audit_key: Arc<RwLock<Option<AuditChainKey>>>,
    /// Registers this transaction with the nested-acquire guard until it ends.
    _live: WriteRegistration,
}

impl WriteTx {
    /// Marks this transaction as changing what decisions read (consents, erasure, fields):
    /// bumps the facts epoch when it commits, so every decision cache revalidates.
    ///
    /// # Errors
    /// Database failure.
    pub async fn bump_facts_epoch(&mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_head SET facts_epoch = facts_epoch + 1 WHERE id = 1")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Queues an audit entry; its `seq` is assigned at commit.
    pub fn audit(&mut self, rec: AuditRecord) {
        self.audit.push(rec);
    }

    /// Inserts a subject.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Conflict`] if the id exists.
    pub async fn insert_subject(&mut self, s: &SubjectRow) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO subjects (id, kind, status, created_at, erased_at, home_region) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.kind)
        .bind(&s.status)
        .bind(s.created_at)
        .bind(s.erased_at)
        .bind(&s.home_region)
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict("subject exists"));
        }
        Ok(())
    }

    /// Inserts many subjects at once (import).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_subjects(&mut self, rows: &[SubjectRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO subjects (id, kind, status, created_at, erased_at) VALUES {}",
                values_clause(self.backend, chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(&s.id)
                    .bind(&s.kind)
                    .bind(&s.status)
                    .bind(s.created_at)
                    .bind(s.erased_at);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// A subject's status (`active`, `erased`) as seen inside this transaction. Because the
    /// transaction holds the audit-head lock, on PostgreSQL (READ COMMITTED: each statement
    /// sees everything committed before it) this is the status after every earlier writer of
    /// every instance — re-check it here before acting on a status read outside the lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_status(&mut self, subject_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status FROM subjects WHERE id = $1")
            .bind(subject_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| Ok(r.try_get(0)?)).transpose()
    }

    /// Subjects whose blind index of `kind` equals `digest`, as seen inside this transaction
    /// (see [`WriteTx::subject_status`] for why that matters with several instances).
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup(&mut self, kind: &str, digest: &[u8]) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2 ORDER BY subject_id",
        )
        .bind(kind)
        .bind(digest.to_vec())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>(0)?))
            .collect()
    }

    /// Marks a subject erased at `at`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn mark_erased(&mut self, subject_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE subjects SET status = 'erased', erased_at = $1 WHERE id = $2")
            .bind(at)
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Inserts wrapped DEKs; an existing (subject, scope) is left alone and reported by
    /// returning fewer rows inserted than given (callers then re-read the winner).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_keys(&mut self, rows: &[KeyRow]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO subject_keys (subject_id, scope, key_id, kek_id, wrapped, created_at) VALUES {} \
                 ON CONFLICT (subject_id, scope) DO NOTHING",
                values_clause(self.backend, chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q
                    .bind(&k.subject_id)
                    .bind(&k.scope)
                    .bind(&k.key_id)
                    .bind(&k.kek_id)
                    .bind(k.wrapped.clone())
                    .bind(k.created_at);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Deletes a subject's wrapped DEK for `scope` (crypto-shredding: without it, every field
    /// sealed under that DEK is unreadable, wherever a copy lives).
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_key(&mut self, subject_id: &str, scope: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM subject_keys WHERE subject_id = $1 AND scope = $2")
                .bind(subject_id)
                .bind(scope)
                .execute(&mut *self.tx)
                .await?
                .rows_affected(),
        )
    }

    /// Inserts or replaces sealed fields.
    ///
    /// # Errors
    /// Database failure.
    pub async fn upsert_fields(&mut self, rows: &[FieldRow]) -> Result<u64, StoreError> {
        self.write_fields(rows, true).await
    }

    /// Inserts sealed fields that are not present yet; returns how many were inserted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_fields_if_absent(&mut self, rows: &[FieldRow]) -> Result<u64, StoreError> {
        self.write_fields(rows, false).await
    }

    async fn write_fields(&mut self, rows: &[FieldRow], replace: bool) -> Result<u64, StoreError> {
        let conflict = if replace {
            "ON CONFLICT (subject_id, record, name) DO UPDATE SET category = excluded.category, \
             key_id = excluded.key_id, ciphertext = excluded.ciphertext, \
             restricted_until = excluded.restricted_until, updated_at = excluded.updated_at"
        } else {
            "ON CONFLICT (subject_id, record, name) DO NOTHING"
        };
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO fields (subject_id, record, name, category, key_id, ciphertext, \
                 restricted_until, updated_at) VALUES {} {conflict}",
                values_clause(self.backend, chunk.len(), 8)
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q
                    .bind(&f.subject_id)
                    .bind(&f.record)
                    .bind(&f.name)
                    .bind(&f.category)
                    .bind(&f.key_id)
                    .bind(f.ciphertext.clone())
                    .bind(f.restricted_until)
                    .bind(f.updated_at);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Deletes every field of a subject that is not restricted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_unrestricted_fields(
        &mut self,
        subject_id: &str,
    ) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM fields WHERE subject_id = $1 AND restricted_until IS NULL")
                .bind(subject_id)
                .execute(&mut *self.tx)
                .await?
                .rows_affected(),
        )
    }

    /// Deletes restricted fields whose retention ended at or before `now`; returns the
    /// (subject, count) pairs affected.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_expired_restricted(
        &mut self,
        now: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, COUNT(*) FROM fields WHERE restricted_until IS NOT NULL \
             AND restricted_until <= $1 GROUP BY subject_id ORDER BY subject_id",
        )
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?;
        let out: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, StoreError>>()?;
        sqlx::query(
            "DELETE FROM fields WHERE restricted_until IS NOT NULL AND restricted_until <= $1",
        )
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(out)
    }

    /// Adds blind-index entries (kind, digest, subject); duplicates are ignored.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_blind_index(
        &mut self,
        rows: &[(&str, [u8; 32], &str)],
    ) -> Result<(), StoreError> {
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO blind_index (kind, digest, subject_id) VALUES {} \
                 ON CONFLICT (kind, digest, subject_id) DO NOTHING",
                values_clause(self.backend, chunk.len(), 3)
            );
            let mut q = sqlx::query(&sql);
            for (k, d, s) in chunk {
                q = q.bind(*k).bind(d.to_vec()).bind(*s);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Removes a subject's blind-index entries of `kind` (all kinds when `None`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_blind_index(
        &mut self,
        subject_id: &str,
        kind: Option<&str>,
    ) -> Result<u64, StoreError> {
        let r = match kind {
            Some(k) => {
                sqlx::query("DELETE FROM blind_index WHERE subject_id = $1 AND kind = $2")
                    .bind(subject_id)
                    .bind(k)
                    .execute(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM blind_index WHERE subject_id = $1")
                    .bind(subject_id)
                    .execute(&mut *self.tx)
                    .await?
            }
        };
        Ok(r.rows_affected())
    }

    /// Appends consent events; an existing `event_ref` is skipped. Returns how many were new.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_consents(&mut self, rows: &[ConsentRow]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO consent_events (event_ref, subject_id, purpose, action, at, given_by, \
                 method, separate, policy_version, recorded_at, recipient) VALUES {} ON CONFLICT (event_ref) DO NOTHING",
                values_clause(self.backend, chunk.len(), 11)
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(&c.event_ref)
                    .bind(&c.subject_id)
                    .bind(&c.purpose)
                    .bind(&c.action)
                    .bind(c.at)
                    .bind(&c.given_by)
                    .bind(&c.method)
                    .bind(i64::from(c.separate))
                    .bind(&c.policy_version)
                    .bind(c.recorded_at)
                    .bind(&c.recipient);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Appends one entry to the disclosure ledger.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_disclosure(&mut self, d: &DisclosureRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO disclosures (id, subject_id, action, recipient, purpose, categories, legal_basis, \
             exception, reference, authorized_by, region, at, actor, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&d.id)
        .bind(&d.subject_id)
        .bind(&d.action)
        .bind(&d.recipient)
        .bind(&d.purpose)
        .bind(&d.categories)
        .bind(&d.legal_basis)
        .bind(&d.exception)
        .bind(&d.reference)
        .bind(&d.authorized_by)
        .bind(&d.region)
        .bind(d.at)
        .bind(&d.actor)
        .bind(&d.request_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores an API key.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_api_key(&mut self, k: &ApiKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, principal, roles, purposes, token_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.key_id)
        .bind(&k.principal)
        .bind(&k.roles)
        .bind(&k.purposes)
        .bind(k.token_hash.clone())
        .bind(k.created_at)
        .bind(k.revoked_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Appends the queued audit entries to the chain (links keyed with the store's audit
    /// chain key, HMAC-SHA256 per RFC 2104), moves the head and its MAC, and commits.
    ///
    /// # Errors
    /// Database failure ([`StoreError::Full`] / [`StoreError::Unavailable`] for storage
    /// faults), or an earlier statement of this transaction failed; nothing is committed then.
    /// Database failure; with entries queued, [`StoreError::AuditKeyMissing`] when no key
    /// was set and [`StoreError::AuditHeadMismatch`] when the stored head's MAC does not
    /// verify. Nothing is committed then.
    pub async fn commit(mut self) -> Result<i64, StoreError> {
        let key = self.append_key().await?;
        let mut prev = self.head_hash;
        let mut seq = self.head_seq;
        let mut links = Vec::with_capacity(self.audit.len());
        for rec in &mut self.audit {
            seq += 1;
            rec.seq = seq;
            let key = key.as_ref().ok_or(StoreError::AuditKeyMissing)?;
            let h = key.link(&prev, &rec.canonical_bytes());
            links.push((prev, h));
            prev = h;
        }
        for (chunk, lchunk) in self.audit.chunks(CHUNK / 2).zip(links.chunks(CHUNK / 2)) {
            let sql = format!(
                "INSERT INTO audit_log (seq, at, actor, action, subject_id, purpose, categories, outcome, \
                 reason, legal_basis, policy_version, request_id, detail, prev_hash, hash) VALUES {}",
                values_clause(self.backend, chunk.len(), 15)
            );
            let mut q = sqlx::query(&sql);
            for (r, (p, h)) in chunk.iter().zip(lchunk) {
                q = q
                    .bind(r.seq)
                    .bind(r.at)
                    .bind(&r.actor)
                    .bind(&r.action)
                    .bind(&r.subject_id)
                    .bind(&r.purpose)
                    .bind(&r.categories)
                    .bind(&r.outcome)
                    .bind(&r.reason)
                    .bind(&r.legal_basis)
                    .bind(&r.policy_version)
                    .bind(&r.request_id)
                    .bind(&r.detail)
                    .bind(p.to_vec())
                    .bind(h.to_vec());
            }
            q.execute(&mut *self.tx).await?;
        }
        if let (Some(key), true) = (&key, seq != self.head_seq) {
            self.write_head(key, seq, &prev).await?;
        }
        self.tx.commit().await?;
        Ok(seq)
    }

    /// A subject by id, read through this transaction ([`Store::subject`] inside one).
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject(&mut self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(SUBJECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| subject_from(&r)).transpose()
    }

    /// The wrapped DEK of a subject for a scope, read through this transaction
    /// ([`Store::subject_key`] inside one). Sees keys inserted earlier in this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_key(
        &mut self,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<KeyRow>, StoreError> {
        let row = sqlx::query(KEY_OF_SCOPE)
            .bind(subject_id)
            .bind(scope)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| key_from(&r)).transpose()
    }

    /// All sealed fields of a subject, ordered by record then name, read through this
    /// transaction ([`Store::fields`] inside one).
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields(&mut self, subject_id: &str) -> Result<Vec<FieldRow>, StoreError> {
        let rows = sqlx::query(FIELDS_OF)
            .bind(subject_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(field_from).collect()
    }

    /// A subject's consent ledger in ledger order, read through this transaction
    /// ([`Store::consent_events`] inside one).
    ///
    /// # Errors
    /// Database failure.
    pub async fn consent_events(
        &mut self,
        subject_id: &str,
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(CONSENTS_OF)
            .bind(subject_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(consent_from).collect()
    }

    /// Disclosure-ledger entries as [`Store::disclosures`] returns them, read through this
    /// transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn disclosures(
        &mut self,
        subject_id: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<DisclosureRow>, StoreError> {
        let rows = match subject_id {
            Some(s) => {
                sqlx::query(&disclosures_sql(true))
                    .bind(s)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query(&disclosures_sql(false))
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
        };
        rows.iter().map(disclosure_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_schemes_and_bare_paths_are_refused() {
        assert!(matches!(
            parse_url("mysql://x/y"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            parse_url("./data/pivault.db"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            parse_url("sqlite://"),
            Err(StoreError::UnsupportedUrl(_))
        ));
        assert_eq!(
            parse_url("sqlite://./data/p.db").ok(),
            Some((Backend::Sqlite, "sqlite://./data/p.db?mode=rwc".into()))
        );
        assert_eq!(
            parse_url("postgres://h/db").ok().map(|x| x.0),
            Some(Backend::Postgres)
        );
    }

    #[test]
    fn values_clause_numbers_placeholders_in_order() {
        assert_eq!(values_clause(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_clause(Backend::Sqlite, 1, 2), "(?, ?)");
    }
}
