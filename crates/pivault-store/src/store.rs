//! The [`Store`] and its [`WriteTx`], with their methods split by table (aggregate):
//!
//! - `open`: URL parsing, the pool, migrations, close, checkpoint;
//! - `write`: beginning a write transaction, write health and readiness;
//! - `subjects`, `keys`, `fields`, `blind_index`, `consents`, `api_keys`, `disclosures`:
//!   one table each, reads on [`Store`] and writes (and in-transaction reads) on [`WriteTx`];
//! - `audit`: the audit log, queueing entries and appending them at commit;
//! - `keyed`: the keyed chain head and the vault's key check record (`vault_meta`);
//! - `meta`: row counts and policy versions;
//! - `policy_history`: the published policy versions (migration 0011, policy §X);
//! - `holds`, `retention`, `sweep`: legal holds, retention items and anonymized data, the
//!   sweep's runs and lease (issue 12, migration 0008).
//!
//! Rows are mapped by column name (`row.try_get("column")`), never by position.

use crate::fault::Health;
use crate::guard::{GuardedPool, WriteRegistration};
use crate::txconn::TxConn;
use pivault_crypto::AuditChainKey;
use pivault_domain::audit::AuditRecord;
use sqlx::AnyConnection;
use std::sync::{Arc, RwLock};
use tokio::sync::Mutex;

mod api_keys;
mod audit;
mod blind_index;
mod center;
mod consents;
mod disclosures;
mod fields;
mod holds;
mod incidents;
mod key_gens;
mod keyed;
mod keys;
mod meta;
mod open;
mod outbox;
mod policy_history;
mod retention;
mod shards;
mod subjects;
mod sweep;
mod write;

pub use incidents::ReleaseRow;
pub use key_gens::ERASED_ACCOUNT_KIND;
pub use keyed::{AuditHead, VaultMetaRow};
pub use shards::{CheckpointRow, Pending, ShardHeadRow};

/// Rows per multi-row INSERT; keeps bound parameters far below both backends' limits
/// (SQLite 32,766; PostgreSQL 65,535).
const CHUNK: usize = 400;

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
    /// How many audit shards entries are spread over (issue 15), shared by every clone; set
    /// by [`Store::ensure_audit_shards`].
    pub(crate) shards: Arc<std::sync::atomic::AtomicU32>,
    /// The shard count asked for (0: the backend's default), see
    /// [`Store::want_audit_shards`].
    pub(crate) wanted_shards: Arc<std::sync::atomic::AtomicU32>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
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

/// Most values an exclusion list ([`not_in`]) may carry in one statement: far below both
/// backends' bound-parameter limits, far above any real number of legal holds.
const MAX_EXCLUDED: usize = 30_000;

/// ` AND column NOT IN (…)` with `n` placeholders numbered from `first`; empty when `n` is 0
/// (`NOT IN ()` is not SQL).
fn not_in(backend: Backend, column: &str, first: usize, n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" AND {column} NOT IN ({})", placeholders(backend, first, n))
    }
}

/// `(c1, c2, …) IN (SELECT column1, column2, … FROM (VALUES (…), …) AS v)` for `rows` tuples
/// of the given columns, placeholders numbered from 1. The subquery matters: SQLite plans a
/// bare `(a, b) IN (VALUES …)` of more than one row as a scan of the whole table, and this
/// form as one primary-key probe per tuple (`EXPLAIN QUERY PLAN`:
/// `SEARCH … (subject_id=? AND record=?)`); PostgreSQL plans both as a join on the index.
fn tuples_in(backend: Backend, columns: &[&str], rows: usize) -> String {
    let names: Vec<String> = (1..=columns.len()).map(|i| format!("column{i}")).collect();
    format!(
        "({}) IN (SELECT {} FROM (VALUES {}) AS v)",
        columns.join(", "),
        names.join(", "),
        values_clause(backend, rows, columns.len())
    )
}

/// `($1, $2, …), ($n+1, …)` for `rows` rows of `cols` columns.
fn values_clause(backend: Backend, rows: usize, cols: usize) -> String {
    values_clause_from(backend, 1, rows, cols)
}

/// [`values_clause`] numbering placeholders from `first`.
fn values_clause_from(backend: Backend, first: usize, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = first;
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
    /// The instant the transaction was begun with (unix seconds, the caller's clock): stamps
    /// rows whose time is the write's own (`anon_*.anonymized_at`).
    now: i64,
    /// Audit shards to route entries over (the store's count when this transaction began).
    shards: u32,
    audit: Vec<AuditRecord>,
    audit_key: Arc<RwLock<Option<AuditChainKey>>>,
    /// An audit group commit ([`Store::begin_audit_group`]): on PostgreSQL its commit is
    /// asynchronous and `commit` makes it durable afterwards, outside the head locks.
    early_release: bool,
    /// Registers this transaction with the nested-acquire guard until it ends.
    _live: WriteRegistration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_clause_numbers_placeholders_in_order() {
        assert_eq!(values_clause(Backend::Postgres, 2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_clause(Backend::Sqlite, 1, 2), "(?, ?)");
        assert_eq!(values_clause_from(Backend::Postgres, 3, 1, 2), "($3, $4)");
        assert_eq!(
            tuples_in(Backend::Postgres, &["a", "b"], 2),
            "(a, b) IN (SELECT column1, column2 FROM (VALUES ($1, $2), ($3, $4)) AS v)"
        );
    }
}
