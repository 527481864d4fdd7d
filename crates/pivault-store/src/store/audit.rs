//! The `audit_log` table and the chain head's counters: reading the chain, queueing entries
//! and appending them at commit.

use super::{values_clause, Store, WriteTx, CHUNK};
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
    })
}

impl Store {
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
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }

    /// The audit chain head: (last seq, its hash).
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_head(&self) -> Result<(i64, Vec<u8>), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
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
}
