//! The connection of a [`crate::WriteTx`]: a pooled connection on which the store issues
//! `BEGIN` / `COMMIT` / `ROLLBACK` itself, and which goes back to the pool only in a known
//! state.
//!
//! Why not sqlx's `Transaction`: when its COMMIT fails (SQLite `SQLITE_FULL`, `SQLITE_IOERR`),
//! sqlx keeps the connection's transaction depth at 1; SQLite may already have rolled back on
//! its own, so the ROLLBACK on drop fails too, and the connection returns to the pool believing
//! it is inside a transaction. Every later `begin` on it then issues a SAVEPOINT instead of
//! BEGIN, and its "commits" only release savepoints: writes acknowledged, never saved.
//!
//! Here, `&mut TxConn` is the executor of every statement of the transaction, and it watches
//! their results:
//! - the first error fails the transaction: later statements are refused (on SQLite the
//!   transaction may already be gone, and they would autocommit) and so is the commit;
//! - a committed transaction returns its connection to the pool;
//! - anything else — failed, dropped before commit, dropped with a statement in flight — is
//!   rolled back in a spawned task that keeps the SQLite write lock until it is done; if the
//!   transaction failed or the ROLLBACK fails, the connection is closed instead of returned.
//!
//! Storage faults among the errors are recorded in the store's [`Health`].

use crate::fault::{classify, Health, StorageFault};
use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use sqlx::any::{AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Describe, Either, Execute, Executor};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;

/// Longest wait for the ROLLBACK, then for the close, of an abandoned transaction.
const ABANDON_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    /// A statement failed (with this storage fault, if it was one).
    Failed(Option<StorageFault>),
    Committed,
}

struct State {
    outcome: Outcome,
    /// A statement was started and has not finished: if the transaction is dropped now (its
    /// future cancelled), the connection's state is unknown.
    in_flight: bool,
    health: Arc<Health>,
}

impl State {
    /// The error for a statement on a transaction that cannot take one. It keeps the class of
    /// the original failure, so a storage fault still reads as one.
    fn refused(&self) -> sqlx::Error {
        match self.outcome {
            Outcome::Failed(Some(StorageFault::Full)) => sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "write transaction failed earlier: storage full",
            )),
            Outcome::Failed(Some(StorageFault::Unavailable)) => sqlx::Error::Io(
                std::io::Error::other("write transaction failed earlier: storage unavailable"),
            ),
            Outcome::Failed(None | Some(StorageFault::Busy)) => sqlx::Error::Protocol(
                "a statement of this write transaction failed; it can only be rolled back".into(),
            ),
            Outcome::Committed | Outcome::Open => {
                sqlx::Error::Protocol("write transaction already committed".into())
            }
        }
    }

    fn start(&mut self) -> Result<(), sqlx::Error> {
        if self.outcome == Outcome::Open {
            self.in_flight = true;
            Ok(())
        } else {
            Err(self.refused())
        }
    }

    fn finish<T>(&mut self, r: &Result<T, sqlx::Error>) {
        self.in_flight = false;
        if let Err(e) = r {
            self.fail(e);
        }
    }

    fn fail(&mut self, e: &sqlx::Error) {
        let fault = classify(e);
        if let Some(f) = fault {
            self.health.failed(f);
        }
        if self.outcome == Outcome::Open {
            self.outcome = Outcome::Failed(fault);
        }
    }
}

/// See the module documentation. `&mut TxConn` implements [`Executor`].
pub(crate) struct TxConn {
    /// `None` only once dropped.
    conn: Option<PoolConnection<Any>>,
    state: State,
    /// SQLite: the store's write lock, held until the transaction is over on the database.
    guard: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for TxConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxConn")
            .field("outcome", &self.state.outcome)
            .finish_non_exhaustive()
    }
}

impl TxConn {
    /// Wraps a connection on which the caller is about to issue `BEGIN`.
    pub(crate) fn new(
        conn: PoolConnection<Any>,
        guard: Option<OwnedMutexGuard<()>>,
        health: Arc<Health>,
    ) -> Box<Self> {
        Box::new(Self {
            conn: Some(conn),
            state: State {
                outcome: Outcome::Open,
                in_flight: false,
                health,
            },
            guard,
        })
    }

    /// Issues `COMMIT`. On success the connection goes back to the pool when dropped and the
    /// store is healthy; on failure, see the module documentation.
    pub(crate) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        // (`Executor::execute` with a `&str`, not `raw_sql(..).execute(..)`: that async fn's
        // future cannot be proven `Send` for our executor type, see `Store::begin`)
        (&mut *self).execute("COMMIT").await?;
        self.state.outcome = Outcome::Committed;
        self.state.health.committed();
        Ok(())
    }

    /// After [`TxConn::commit`]: runs one statement of its own (autocommit) on this
    /// connection (`sql` without arguments, so PostgreSQL's simple query protocol). If it
    /// fails or is cancelled, the connection is closed rather than returned to the pool.
    pub(crate) async fn after_commit(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        if self.state.outcome != Outcome::Committed {
            return Err(self.state.refused());
        }
        let conn = self.conn.as_deref_mut().ok_or(sqlx::Error::PoolClosed)?;
        // Stays set on failure: `Drop` then discards the connection.
        self.state.in_flight = true;
        match conn.execute(sql).await {
            Ok(_) => {
                self.state.in_flight = false;
                Ok(())
            }
            Err(e) => {
                if let Some(f) = classify(&e) {
                    self.state.health.failed(f);
                }
                Err(e)
            }
        }
    }

    fn parts(&mut self) -> Result<(&mut AnyConnection, &mut State), sqlx::Error> {
        self.state.start()?;
        match self.conn.as_deref_mut() {
            Some(c) => Ok((c, &mut self.state)),
            None => Err(sqlx::Error::PoolClosed),
        }
    }
}

impl Drop for TxConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let guard = self.guard.take();
        if self.state.outcome == Outcome::Committed && !self.state.in_flight {
            drop(conn); // back to the pool
            drop(guard);
            return;
        }
        let discard = self.state.outcome != Outcome::Open || self.state.in_flight;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                abandon(conn, discard).await;
                drop(guard);
            });
        } else {
            // No runtime to roll back on: closing the connection ends the transaction.
            drop(conn.detach());
            drop(guard);
        }
    }
}

/// Rolls back an unfinished transaction; returns the connection to the pool only if it was
/// healthy (`!discard`) and the rollback succeeded, else closes it.
async fn abandon(mut conn: PoolConnection<Any>, discard: bool) {
    // SQLite asks for an explicit ROLLBACK after SQLITE_FULL/IOERR even when it may have rolled
    // back already (then this one fails, harmlessly).
    let rolled_back = {
        let c: &mut AnyConnection = &mut conn;
        matches!(
            tokio::time::timeout(ABANDON_TIMEOUT, c.execute("ROLLBACK")).await,
            Ok(Ok(_))
        )
    };
    if rolled_back && !discard {
        return; // `conn` drops: back to the pool
    }
    if !discard {
        tracing::warn!(
            "rolling back an abandoned write transaction failed; closing its connection"
        );
    }
    // Closing also ends whatever transaction is left (SQLite rolls back on close; PostgreSQL
    // aborts the session's transaction).
    let _ = tokio::time::timeout(ABANDON_TIMEOUT, conn.close()).await;
}

/// Forwards a stream of results, failing the transaction on its first error.
struct Tracked<'e, T> {
    inner: BoxStream<'e, Result<T, sqlx::Error>>,
    state: &'e mut State,
}

impl<T> Stream for Tracked<'_, T> {
    type Item = Result<T, sqlx::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let r = this.inner.as_mut().poll_next(cx);
        match &r {
            Poll::Ready(Some(Err(e))) => {
                this.state.in_flight = false;
                this.state.fail(e);
            }
            Poll::Ready(None) => this.state.in_flight = false,
            _ => {}
        }
        r
    }
}

/// A stream of one error.
struct Refused(Option<sqlx::Error>);

impl Stream for Refused {
    type Item = Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Err))
    }
}

impl<'c> Executor<'c> for &'c mut TxConn {
    type Database = Any;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        match self.parts() {
            Ok((conn, state)) => Box::pin(Tracked {
                inner: conn.fetch_many(query),
                state,
            }),
            Err(e) => Box::pin(Refused(Some(e))),
        }
    }

    fn execute<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<AnyQueryResult, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            let (conn, state) = self.parts()?;
            let r = conn.execute(query).await;
            state.finish(&r);
            r
        })
    }

    fn fetch_all<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Vec<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            let (conn, state) = self.parts()?;
            let r = conn.fetch_all(query).await;
            state.finish(&r);
            r
        })
    }

    fn fetch_one<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<AnyRow, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            let (conn, state) = self.parts()?;
            let r = conn.fetch_one(query).await;
            // "no row" is an answer, not a failure of the transaction
            if matches!(r, Err(sqlx::Error::RowNotFound)) {
                state.in_flight = false;
            } else {
                state.finish(&r);
            }
            r
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<AnyRow>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, Any>,
    {
        Box::pin(async move {
            let (conn, state) = self.parts()?;
            let r = conn.fetch_optional(query).await;
            state.finish(&r);
            r
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [AnyTypeInfo],
    ) -> BoxFuture<'e, Result<AnyStatement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let (conn, state) = self.parts()?;
            let r = conn.prepare_with(sql, parameters).await;
            state.finish(&r);
            r
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<Any>, sqlx::Error>>
    where
        'c: 'e,
    {
        Box::pin(async move {
            let (conn, state) = self.parts()?;
            let r = conn.describe(sql).await;
            state.finish(&r);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::{StorageFault, Store, StoreError, SubjectRow};
    use sqlx::Executor;

    fn subject(id: &str) -> SubjectRow {
        SubjectRow {
            id: id.into(),
            kind: "account".into(),
            status: "active".into(),
            created_at: 1,
            erased_at: None,
            home_region: None,
            lock_case: None,
            lang: None,
        }
    }

    /// One pooled connection, so a connection returned in a bad state would be the next one.
    async fn store(dir: &tempfile::TempDir) -> (Store, String) {
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let s = Store::connect_with(&url, Some(1)).await.unwrap();
        s.pool
            .get()
            .unwrap()
            .execute(
                "CREATE TABLE scratch (b BLOB); \
                 CREATE TRIGGER scratch_boom BEFORE INSERT ON scratch WHEN NEW.b = 'boom' \
                 BEGIN SELECT RAISE(ROLLBACK, 'boom'); END;",
            )
            .await
            .unwrap();
        (s, url)
    }

    /// What a fresh process would see.
    async fn persisted(url: &str, id: &str) -> bool {
        let s = Store::connect_with(url, Some(1)).await.unwrap();
        let found = s.subject(id).await.unwrap().is_some();
        s.close().await;
        found
    }

    #[tokio::test]
    async fn a_full_disk_fails_the_transaction_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (store, url) = store(&dir).await;
        let mut tx = store.begin(1).await.unwrap();
        tx.insert_subject(&subject("lost")).await.unwrap();
        // A real SQLITE_FULL: cap this connection's database at its current size.
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut *tx.tx)
            .await
            .unwrap();
        sqlx::raw_sql(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut *tx.tx)
            .await
            .unwrap();
        let err = sqlx::query("INSERT INTO scratch VALUES (zeroblob(1000000))")
            .execute(&mut *tx.tx)
            .await
            .map_err(StoreError::from)
            .unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err:?}");
        assert_eq!(err.fault(), Some(StorageFault::Full));
        assert_eq!(store.storage_fault(), Some(StorageFault::Full));
        // the transaction is failed: no statement, no commit
        assert!(tx.insert_subject(&subject("after")).await.is_err());
        assert!(matches!(tx.commit().await, Err(StoreError::Full(_))));
        // The capped connection was closed, not pooled: the next transaction gets a fresh
        // one, commits for real, and the store is healthy again.
        let mut tx = store.begin(2).await.unwrap();
        tx.insert_subject(&subject("kept")).await.unwrap();
        sqlx::query("INSERT INTO scratch VALUES (zeroblob(1000000))")
            .execute(&mut *tx.tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.storage_fault(), None);
        assert_eq!(store.write_readiness(1_800_000_000).await, Ok(()));
        store.close().await;
        assert!(persisted(&url, "kept").await);
        assert!(!persisted(&url, "lost").await);
        assert!(!persisted(&url, "after").await);
    }

    #[tokio::test]
    async fn after_sqlite_rolled_back_on_its_own_the_next_transaction_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (store, url) = store(&dir).await;
        let mut tx = store.begin(1).await.unwrap();
        tx.insert_subject(&subject("lost")).await.unwrap();
        // RAISE(ROLLBACK) ends the whole transaction inside SQLite, as SQLITE_FULL/IOERR may.
        assert!(sqlx::query("INSERT INTO scratch VALUES ('boom')")
            .execute(&mut *tx.tx)
            .await
            .is_err());
        assert_eq!(store.storage_fault(), None, "not a storage fault");
        drop(tx);
        for id in ["kept1", "kept2"] {
            let mut tx = store.begin(2).await.unwrap();
            tx.insert_subject(&subject(id)).await.unwrap();
            tx.commit().await.unwrap();
        }
        // an uncommitted transaction dropped on a healthy connection is rolled back
        let mut tx = store.begin(3).await.unwrap();
        tx.insert_subject(&subject("dropped")).await.unwrap();
        drop(tx);
        let mut tx = store.begin(4).await.unwrap();
        tx.insert_subject(&subject("kept3")).await.unwrap();
        tx.commit().await.unwrap();
        store.close().await;
        for id in ["kept1", "kept2", "kept3"] {
            assert!(persisted(&url, id).await, "{id}");
        }
        for id in ["lost", "dropped"] {
            assert!(!persisted(&url, id).await, "{id}");
        }
    }
}
