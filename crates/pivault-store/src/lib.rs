//! Persistence for pivault: one [`Store`] over sqlx's runtime-generic `Any` driver, with SQLite
//! (the embedded default) and PostgreSQL backends chosen by URL scheme.
//!
//! Invariants:
//! - Every change goes through a [`WriteTx`]. One begun with [`Store::begin`] first locks the
//!   data writers' row (`UPDATE audit_head …`), which serializes changes to the vault's data
//!   on both backends; one begun with [`Store::begin_audit`] only appends audit entries and
//!   takes no such lock. At commit, the entries queued on a transaction are appended to their
//!   shards (issue 15: each shard is its own keyed chain and RFC 9162 Merkle tree, with its
//!   own head, locked in ascending shard order), in the same transaction as the change: if the
//!   append fails, the change fails, and a shard's chain never forks.
//! - The same SQL runs on both backends (`$n` placeholders, BIGINT/TEXT/BLOB only); only DDL
//!   differs, in per-backend migrations with the same version numbers.
//! - `NotFound` is kept apart from other failures: reads return `Option`.
//! - Several processes may share one PostgreSQL database: the head lock serializes their
//!   writers too, and at READ COMMITTED a statement after it sees every earlier commit, so
//!   [`WriteTx::subject_status`] / [`WriteTx::lookup`] re-check state under the lock.
//! - A write is acknowledged only by [`WriteTx::commit`] returning `Ok`. A [`WriteTx`] issues
//!   BEGIN/COMMIT/ROLLBACK itself on a pooled connection (not sqlx's `Transaction`, whose
//!   bookkeeping goes wrong when COMMIT fails); its first failed statement fails it, and a
//!   connection whose transaction failed is closed, never returned to the pool mid-transaction.
//! - Storage faults (disk full; I/O error, read-only, unreachable) are [`StoreError::Full`] /
//!   [`StoreError::Unavailable`]; [`Store::write_readiness`] reports them until a write commits.
//! - Test support (the `testing` module: throwaway PostgreSQL databases, raw writes that play
//!   an attacker; `Store::tamper_audit_action`) exists only with the `testing` cargo feature,
//!   which the workspace's crates enable for their tests alone (dev-dependencies): release
//!   builds do not contain it.
//! - Inside a write transaction every read goes through it ([`WriteTx::fields`],
//!   [`WriteTx::subject_key`], …): a task that holds a [`WriteTx`] and asks the pool for another
//!   connection gets [`StoreError::NestedAcquire`] (debug builds panic) — holding the chain-head
//!   lock while waiting for a connection stalled every instance (see `guard.rs`).
//! - PostgreSQL connections carry statement, lock-wait and idle-in-transaction timeouts; a
//!   timeout is [`StoreError::Busy`] (retryable).
//! - Audit links are keyed (HMAC-SHA256 under the chain key the vault hands in with
//!   [`Store::set_audit_key`]) and the head carries a MAC; a commit that appends refuses a
//!   head whose MAC does not verify ([`StoreError::AuditHeadMismatch`]).
//! - SQLite runs with `secure_delete=ON`, so deleted rows (wrapped DEKs, blind-index entries)
//!   are overwritten in the file rather than left in free pages.

mod dsr;
mod fault;
mod guard;
mod rows;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod txconn;

pub use dsr::DueCount;
pub use fault::StorageFault;
pub use rows::{
    AnnouncementRow, AnonOrderRow, AnonWeblogRow, ApiKeyRow, AuditRow, CenterSessionRow,
    CessationRow, ConsentRow, CookieChoiceRow, DisclosureRow, DsrCodeRow, DsrFilter, DsrRow,
    FieldRow, HoldRow, IncidentRow, IncidentSubjectRow, KeyGenRow, KeyJobRow, KeyRow,
    OutboxAttemptRow, OutboxCounts, OutboxRow, PolicyVersionRow, PolicyVersionUpsert,
    RetentionItem, RetentionStat, SecurityCaseRow, SubjectRow, SubjectStatus, SweepRunRow,
};
pub use store::{
    AuditHead, Backend, CheckpointRow, Pending, ReleaseRow, ShardHeadRow, Store, VaultMetaRow,
    WriteTx, ERASED_ACCOUNT_KIND,
};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL has a scheme other than `sqlite://` or `postgres://`.
    #[error(
        "unsupported database URL: use sqlite://PATH or postgres://HOST/DB (got scheme {0:?})"
    )]
    UnsupportedUrl(String),
    /// A unique constraint was violated (the row already exists).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The storage is out of space ([`StorageFault::Full`]); nothing was committed.
    #[error("disk full: {0}")]
    Full(#[source] sqlx::Error),
    /// The storage cannot be written or reached ([`StorageFault::Unavailable`]); nothing was
    /// committed.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database is too busy to answer in time ([`StorageFault::Busy`]): a PostgreSQL lock
    /// wait or statement ran into its timeout (SQLSTATE 55P03 `lock_not_available`, 57014
    /// `query_canceled`). Nothing was committed; retrying later is safe.
    #[error("storage busy: {0}")]
    Busy(#[source] sqlx::Error),
    /// A task holding a write transaction asked the pool for another connection (a bug: it
    /// must read through its [`WriteTx`]; waiting there can stall the pool).
    #[error("a pool connection was requested while this task holds a write transaction")]
    NestedAcquire,
    /// Any other database failure. The message is sqlx's and may name tables; it never holds
    /// PI because no PI value is ever bound in clear.
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// I/O while preparing the database location.
    #[error("io error preparing database: {0}")]
    Io(#[from] std::io::Error),
    /// Audit entries were queued but the store has no audit chain key (the vault hands it in
    /// with [`Store::set_audit_key`] once the master key is checked). Code `audit_key_missing`.
    #[error("audit_key_missing: no audit chain key is set; audit entries cannot be appended")]
    AuditKeyMissing,
    /// The stored audit chain head's MAC does not verify under the audit key: the head was
    /// moved or rewritten without the key (e.g. back over deleted entries). Appending would
    /// hide that, so nothing is committed. Code `audit_head_mismatch`; `pivault audit verify`
    /// names the entry.
    #[error(
        "audit_head_mismatch: the audit chain head's MAC does not verify; refusing to append \
         (run `pivault audit verify`)"
    )]
    AuditHeadMismatch,
    /// A shard's stored Merkle frontier does not match its entries (damaged, or an entry is
    /// missing or renumbered), so the tree cannot be extended. Code `audit_tree_mismatch`;
    /// `pivault audit verify` names the shard and entry.
    #[error(
        "audit_tree_mismatch: audit shard {0}'s Merkle tree does not match its entries; \
         refusing to append (run `pivault audit verify`)"
    )]
    AuditTreeMismatch(u32),
}

impl From<sqlx::Error> for StoreError {
    /// Storage faults get their own variants; everything else is [`StoreError::Db`].
    fn from(e: sqlx::Error) -> Self {
        if fault::is_busy(&e) {
            return Self::Busy(e);
        }
        match fault::classify(&e) {
            Some(StorageFault::Full) => Self::Full(e),
            Some(StorageFault::Unavailable) => Self::Unavailable(e),
            Some(StorageFault::Busy) => Self::Busy(e),
            None => Self::Db(e),
        }
    }
}

impl StoreError {
    /// The storage fault this error is, if it is one: the request may succeed unchanged once
    /// the storage recovers.
    #[must_use]
    pub fn fault(&self) -> Option<StorageFault> {
        match self {
            Self::Full(_) => Some(StorageFault::Full),
            Self::Unavailable(_) => Some(StorageFault::Unavailable),
            Self::Busy(_) => Some(StorageFault::Busy),
            Self::Io(e) => Some(fault::classify_io(e)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;
    use std::borrow::Cow;

    /// A database error with a given SQLSTATE.
    #[derive(Debug)]
    struct State(&'static str);

    impl std::fmt::Display for State {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "sqlstate {}", self.0)
        }
    }

    impl std::error::Error for State {}

    impl sqlx::error::DatabaseError for State {
        fn message(&self) -> &str {
            "test"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db(code: &'static str) -> StoreError {
        StoreError::from(sqlx::Error::Database(Box::new(State(code))))
    }

    #[test]
    fn lock_and_statement_timeouts_and_an_exhausted_pool_are_busy_and_nothing_else_is() {
        assert!(matches!(db("55P03"), StoreError::Busy(_)));
        assert!(matches!(db("57014"), StoreError::Busy(_)));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Busy(_)
        ));
        assert!(matches!(db("23505"), StoreError::Db(_)));
        assert!(matches!(db("40001"), StoreError::Db(_)));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Db(_)
        ));
    }
}
