//! The `consent_events` table: the consent ledger.

use super::{placeholders, values_clause, Store, WriteTx, CHUNK};
use crate::rows::ConsentRow;
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A subject's consent ledger in ledger order ([`consent_from`] columns).
const CONSENTS_OF: &str =
    "SELECT seq, event_ref, subject_id, purpose, action, at, given_by, method, separate, \
     policy_version, recorded_at, recipient FROM consent_events WHERE subject_id = $1 ORDER BY seq";

pub(super) fn consent_from(r: &AnyRow) -> Result<ConsentRow, StoreError> {
    Ok(ConsentRow {
        seq: r.try_get("seq")?,
        event_ref: r.try_get("event_ref")?,
        subject_id: r.try_get("subject_id")?,
        purpose: r.try_get("purpose")?,
        action: r.try_get("action")?,
        at: r.try_get("at")?,
        given_by: r.try_get("given_by")?,
        method: r.try_get("method")?,
        separate: r.try_get::<i64, _>("separate")? != 0,
        policy_version: r.try_get("policy_version")?,
        recorded_at: r.try_get("recorded_at")?,
        recipient: r.try_get("recipient")?,
    })
}

impl Store {
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
                out.push(r.try_get("event_ref")?);
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
}

impl WriteTx {
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
                // Borrowed (`&str`): bound without a copy of each value.
                q = q
                    .bind(c.event_ref.as_str())
                    .bind(c.subject_id.as_str())
                    .bind(c.purpose.as_str())
                    .bind(c.action.as_str())
                    .bind(c.at)
                    .bind(c.given_by.as_str())
                    .bind(c.method.as_str())
                    .bind(i64::from(c.separate))
                    .bind(c.policy_version.as_str())
                    .bind(c.recorded_at)
                    .bind(c.recipient.as_deref());
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
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
}
