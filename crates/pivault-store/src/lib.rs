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
//! - Audit links are keyed (HMAC-SHA256 under the chain key the vault hands in with
//!   [`Store::set_audit_key`]) and the head carries a MAC; a commit that appends refuses a
//!   head whose MAC does not verify ([`StoreError::AuditHeadMismatch`]).
//! - SQLite runs with `secure_delete=ON`, so deleted rows (wrapped DEKs, blind-index entries)
//!   are overwritten in the file rather than left in free pages.

mod dsr;
mod rows;
mod store;
pub mod testing;

pub use dsr::DueCount;
pub use rows::{
    ApiKeyRow, AuditRow, ConsentRow, DisclosureRow, DsrCodeRow, DsrFilter, DsrRow, FieldRow,
    KeyRow, SubjectRow,
};
pub use store::{AuditHead, Backend, Store, VaultMetaRow, WriteTx};

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
    /// Any other database failure. The message is sqlx's and may name tables; it never holds
    /// PI because no PI value is ever bound in clear.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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
}
