//! The `policy_history` table (migration 0011): the published versions of the privacy policy
//! (policy §X; PIPL Art. 14 para. 2). A version is stored once and never rewritten.

use super::{placeholders, Store, WriteTx, CHUNK};
use crate::rows::{ConsentRow, PolicyVersionRow, PolicyVersionUpsert};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

const COLUMNS: &str = "version, published_at, sha256, text, changes, stored_at";

fn version_from(r: &AnyRow) -> Result<PolicyVersionRow, StoreError> {
    Ok(PolicyVersionRow {
        version: r.try_get("version")?,
        published_at: r.try_get("published_at")?,
        sha256: r.try_get("sha256")?,
        text: r.try_get("text")?,
        changes: r.try_get("changes")?,
        stored_at: r.try_get("stored_at")?,
    })
}

impl Store {
    /// Every stored policy version, oldest publication first.
    ///
    /// # Errors
    /// Database failure.
    pub async fn policy_history(&self) -> Result<Vec<PolicyVersionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM policy_history ORDER BY published_at, version"
        ))
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(version_from).collect()
    }

    /// The consent ledgers of the given subjects, ordered by subject then ledger sequence (the
    /// affected-subject scans of a policy change read a page of subjects at a time).
    ///
    /// # Errors
    /// Database failure.
    pub async fn consent_events_of(
        &self,
        subject_ids: &[String],
    ) -> Result<Vec<ConsentRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in subject_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT seq, event_ref, subject_id, purpose, action, at, given_by, method, \
                 separate, policy_version, recorded_at, recipient FROM consent_events \
                 WHERE subject_id IN ({}) ORDER BY subject_id, seq",
                placeholders(self.backend, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q.bind(s);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push(super::consents::consent_from(&r)?);
            }
        }
        Ok(out)
    }
}

impl WriteTx {
    /// Stores a published policy version unless it is stored already. A version stored with
    /// the same `sha256` is left as it is, except that a text missing from it is filled in; a
    /// version stored with another `sha256` is not touched and [`PolicyVersionUpsert::Rewritten`]
    /// is returned (a published version is never rewritten, policy §X).
    ///
    /// # Errors
    /// Database failure.
    pub async fn upsert_policy_version(
        &mut self,
        row: &PolicyVersionRow,
    ) -> Result<PolicyVersionUpsert, StoreError> {
        let found = sqlx::query("SELECT sha256, text FROM policy_history WHERE version = $1")
            .bind(&row.version)
            .fetch_optional(&mut *self.tx)
            .await?;
        if let Some(r) = found {
            let sha: String = r.try_get("sha256")?;
            if sha != row.sha256 {
                return Ok(PolicyVersionUpsert::Rewritten);
            }
            let text: Option<String> = r.try_get("text")?;
            if text.is_none() && row.text.is_some() {
                sqlx::query("UPDATE policy_history SET text = $1 WHERE version = $2")
                    .bind(&row.text)
                    .bind(&row.version)
                    .execute(&mut *self.tx)
                    .await?;
            }
            return Ok(PolicyVersionUpsert::Unchanged);
        }
        sqlx::query(&format!(
            "INSERT INTO policy_history ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&row.version)
        .bind(&row.published_at)
        .bind(&row.sha256)
        .bind(&row.text)
        .bind(&row.changes)
        .bind(row.stored_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(PolicyVersionUpsert::Inserted)
    }
}
