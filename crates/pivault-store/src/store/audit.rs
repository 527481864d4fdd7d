//! The `audit_log` table and the chain head's counters: reading the chain, queueing entries
//! and appending them at commit.

use super::{Store, WriteTx};
use crate::rows::AuditRow;
use crate::StoreError;
use pivault_domain::audit::AuditRecord;
use sqlx::any::AnyRow;
use sqlx::Row;

/// An `audit_log` row's entry (every column but the links), read by name.
pub(super) fn audit_record_from(r: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject_id: r.try_get("subject_id")?,
        purpose: r.try_get("purpose")?,
        categories: r.try_get("categories")?,
        outcome: r.try_get("outcome")?,
        reason: r.try_get("reason")?,
        legal_basis: r.try_get("legal_basis")?,
        policy_version: r.try_get("policy_version")?,
        request_id: r.try_get("request_id")?,
        detail: r.try_get("detail")?,
        shard: u32::try_from(r.try_get::<i64, _>("shard")?).unwrap_or(0),
        idx: r.try_get::<Option<i64>, _>("idx")?.unwrap_or(0),
    })
}

/// An `audit_log` row with its links (the entry's columns, `prev_hash`, `hash`).
pub(super) fn audit_row_from(r: &AnyRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        record: audit_record_from(r)?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// The columns [`audit_record_from`] reads.
pub(super) const AUDIT_COLS: &str = "seq, at, actor, action, subject_id, purpose, categories, \
    outcome, reason, legal_basis, policy_version, request_id, detail, shard, idx";

impl Store {
    /// Up to `limit` audit rows with `seq > after`, in `seq` order (across shards: within a
    /// shard `seq` grows with the chain; for walking one shard's chain use
    /// [`Store::audit_shard_page`]).
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_page(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS}, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(audit_row_from).collect()
    }

    /// `(entries over every shard, shard 0's last keyed link)`: with one shard, the linear
    /// chain's head of before issue 15.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>), StoreError> {
        let row = sqlx::query("SELECT hash FROM audit_shards WHERE shard = 0")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok((self.audit_len().await?, row.try_get("hash")?))
    }

    /// Entries in the audit log, over every shard (the sum of the shard heads' sizes).
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_len(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM audit_shards")
                .fetch_one(self.pool.get()?)
                .await?;
        Ok(row.try_get("n")?)
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
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLS} FROM audit_log WHERE subject_id = $1 ORDER BY seq DESC LIMIT $2"
        ))
        .bind(subject_id)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(audit_record_from).collect()
    }

    /// The facts epoch: bumped by every transaction that changes what decisions read.
    ///
    /// # Errors
    /// Database failure.
    pub async fn facts_epoch(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT facts_epoch FROM audit_head WHERE id = 1")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get("facts_epoch")?)
    }

    /// Test hook (`testing` feature only): overwrite one audit column by hand, as an attacker
    /// or a careless operator would. Used to prove `audit verify` catches it.
    ///
    /// # Errors
    /// Database failure.
    #[cfg(feature = "testing")]
    pub async fn tamper_audit_action(&self, seq: i64, action: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_log SET action = $1 WHERE seq = $2")
            .bind(action)
            .bind(seq)
            .execute(self.pool.get()?)
            .await?;
        Ok(())
    }
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
}
