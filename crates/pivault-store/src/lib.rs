//! Persistence for pivault: one [`Store`] over sqlx's runtime-generic `Any` driver, with SQLite
//! (the embedded default) and PostgreSQL backends chosen by URL scheme.
//!
//! Invariants:
//! - Every change goes through a [`WriteTx`], whose first statement locks the audit chain head
//!   (`UPDATE audit_head …`). That serializes writers per chain on both backends — the chain
//!   never forks — and the audit entries queued on the transaction are appended in the same
//!   transaction as the change: if the append fails, the change fails.
//! - The same SQL runs on both backends (`$n` placeholders, BIGINT/TEXT/BLOB only); only DDL
//!   differs, in per-backend migrations with the same version numbers.
//! - `NotFound` is kept apart from other failures: reads return `Option`.
//! - Several processes may share one PostgreSQL database: the head lock serializes their
//!   writers too, and at READ COMMITTED a statement after it sees every earlier commit, so
//!   [`WriteTx::subject_status`] / [`WriteTx::lookup`] re-check state under the lock.
//! - [`testing`] holds test support only (throwaway PostgreSQL databases).
//! - SQLite runs with `secure_delete=ON`, so deleted rows (wrapped DEKs, blind-index entries)
//!   are overwritten in the file rather than left in free pages.

mod dsr;
mod fault;
mod rows;
mod store;
pub mod testing;
mod txconn;

pub use dsr::DueCount;
pub use fault::StorageFault;
pub use rows::{
    ApiKeyRow, AuditRow, ConsentRow, DisclosureRow, DsrCodeRow, DsrFilter, DsrRow, FieldRow,
    KeyRow, SubjectRow,
};
pub use store::{Backend, Store, WriteTx};

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
    /// Any other database failure. The message is sqlx's and may name tables; it never holds
    /// PI because no PI value is ever bound in clear.
    #[error("database error: {0}")]
    Db(#[source] sqlx::Error),
    /// I/O while preparing the database location.
    #[error("io error preparing database: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sqlx::Error> for StoreError {
    /// Storage faults get their own variants; everything else is [`StoreError::Db`].
    fn from(e: sqlx::Error) -> Self {
        match fault::classify(&e) {
            Some(StorageFault::Full) => Self::Full(e),
            Some(StorageFault::Unavailable) => Self::Unavailable(e),
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
            Self::Io(e) => Some(fault::classify_io(e)),
            _ => None,
        }
    }
}
