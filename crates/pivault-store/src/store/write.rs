//! Beginning a write transaction, and write health: the storage fault writes are failing
//! with and the readiness probe.

use super::{Backend, Store, WriteTx};
use crate::fault::StorageFault;
use crate::txconn::TxConn;
use crate::StoreError;
use sqlx::Executor;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// While writes fail, [`Store::write_readiness`] probes at most this often…
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// …and gives a probe this long.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// While writes are failing, [`Store::begin`] waits at most this long for a connection.
const FAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a write transaction may change, and so which locks it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The vault's data (and audit entries): locks the data writers' row.
    Data,
    /// Audit entries only.
    Audit,
    /// Audit entries only, committed with early lock release ([`Store::begin_audit_group`]).
    AuditGroup,
}

impl Store {
    /// Begins a write transaction stamped `now` (unix seconds). Its first statement locks the
    /// data writers' row (`audit_head`), so changes to the vault's data are serialized and a
    /// re-check under the lock sees every earlier commit. Audit entries queued on it are
    /// appended at commit under their shards' heads (see [`WriteTx::commit`]).
    ///
    /// # Errors
    /// Database failure; [`StoreError::Full`] / [`StoreError::Unavailable`] for storage faults;
    /// [`StoreError::NestedAcquire`] when the calling task already holds a write transaction
    /// (debug builds panic).
    pub async fn begin(&self, now: i64) -> Result<WriteTx, StoreError> {
        self.begin_with(now, Kind::Data).await
    }

    /// Begins a write transaction that only appends audit entries (decisions, reads, lookups:
    /// issue 15). It takes no data writers' lock: it waits only for the heads of the shards its
    /// entries go to, at commit, so such writers on different shards never wait for each
    /// other. Use [`Store::begin`] for anything that changes the vault's data.
    ///
    /// # Errors
    /// As [`Store::begin`].
    pub async fn begin_audit(&self, now: i64) -> Result<WriteTx, StoreError> {
        self.begin_with(now, Kind::Audit).await
    }

    /// Begins a group commit of audit entries and nothing else (the audit writer's: queue
    /// entries with [`WriteTx::audit`], then [`WriteTx::commit`]).
    ///
    /// It differs from [`Store::begin_audit`] only in when the shard heads' locks are let go.
    /// On PostgreSQL a row lock lasts until the commit's WAL flush is done (about 2 ms on this
    /// project's disks), and every writer of the shard waits that long. Here the commit is
    /// asynchronous (`SET LOCAL synchronous_commit TO OFF`, this transaction only), so the
    /// locks go as soon as the commit record is written; `commit` then commits one small
    /// write of its own synchronously, on the same connection, and returns only after that.
    /// A WAL flush covers every record before it, so when `commit` returns `Ok` the group is
    /// on disk, exactly as with a synchronous commit: nothing is acknowledged earlier. A
    /// crash in between loses the group together with anything later that saw it (a later
    /// transaction's own durable commit flushes this one first). Known as early lock release.
    ///
    /// Only for transactions that append audit entries and change nothing else: a reader
    /// could see such a commit before it is durable. Signed checkpoints, for one, are kept
    /// with [`Store::begin_audit`], so no checkpoint is published over entries that a crash
    /// could still take back. On SQLite it is [`Store::begin_audit`].
    ///
    /// # Errors
    /// As [`Store::begin`].
    pub async fn begin_audit_group(&self, now: i64) -> Result<WriteTx, StoreError> {
        self.begin_with(now, Kind::AuditGroup).await
    }

    async fn begin_with(&self, now: i64, kind: Kind) -> Result<WriteTx, StoreError> {
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
        let early_release = kind == Kind::AuditGroup && self.backend == Backend::Postgres;
        let begin = match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            // One round trip (simple query protocol: a `&str` without arguments).
            Backend::Postgres if early_release => "BEGIN; SET LOCAL synchronous_commit TO OFF",
            Backend::Postgres => "BEGIN",
        };
        // `Executor::execute` directly: `sqlx::raw_sql(..).execute(..)` is an async fn whose
        // `E: Executor<'e>` bound makes its future not provably `Send` for `&mut TxConn`
        // (higher-ranked lifetimes), and callers spawn write transactions.
        (&mut *tx).execute(begin).await?;
        if kind == Kind::Data {
            sqlx::query("UPDATE audit_head SET touched_at = $1 WHERE id = 1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        Ok(WriteTx {
            tx,
            backend: self.backend,
            now,
            shards: self
                .shards
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(1),
            audit: Vec::new(),
            audit_key: Arc::clone(&self.audit_key),
            early_release,
            _live: live,
        })
    }

    /// `None` while write transactions commit; after a storage fault, that fault, until a
    /// write transaction commits again.
    #[must_use]
    pub fn storage_fault(&self) -> Option<StorageFault> {
        self.health.fault()
    }

    /// Commits an empty write transaction stamped `now` (unix seconds; it only touches the
    /// audit head's timestamp): whether the storage takes writes. Updates
    /// [`Store::storage_fault`] like any write transaction.
    ///
    /// # Errors
    /// As [`Store::begin`] and [`WriteTx::commit`].
    pub async fn probe_write(&self, now: i64) -> Result<(), StoreError> {
        self.begin(now).await?.commit().await?;
        Ok(())
    }

    /// Readiness for writes: `Ok` while write transactions commit. After a storage fault,
    /// `Err(fault)` until one commits again; meanwhile each call may run a [`Store::probe_write`]
    /// (one at a time, at most once a second, for at most 2 s), so readiness comes back once
    /// the storage does, even without write traffic. `now` (unix seconds, the caller's clock)
    /// stamps that probe.
    ///
    /// # Errors
    /// The storage fault writes are failing with.
    pub async fn write_readiness(&self, now: i64) -> Result<(), StorageFault> {
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
        match tokio::time::timeout(PROBE_TIMEOUT, self.probe_write(now)).await {
            Ok(Ok(())) => Ok(()),
            _ => self.health.fault().map_or(Ok(()), Err),
        }
    }
}
