//! The `subjects` table: PI subjects and their status.

use super::{values_clause, Store, WriteTx, CHUNK};
use crate::rows::{SubjectRow, SubjectStatus};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A subject by id ([`subject_from`] columns).
const SUBJECT_BY_ID: &str =
    "SELECT id, kind, status, created_at, erased_at, home_region, lock_case, lang FROM subjects \
     WHERE id = $1";

fn subject_from(r: &AnyRow) -> Result<SubjectRow, StoreError> {
    Ok(SubjectRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        erased_at: r.try_get("erased_at")?,
        home_region: r.try_get("home_region")?,
        lock_case: r.try_get("lock_case")?,
        lang: r.try_get("lang")?,
    })
}

impl Store {
    /// A subject by id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject(&self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(SUBJECT_BY_ID)
            .bind(id)
            .fetch_optional(self.pool.get()?)
            .await?;
        row.map(|r| subject_from(&r)).transpose()
    }
}

impl WriteTx {
    /// Inserts a subject.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Conflict`] if the id exists.
    pub async fn insert_subject(&mut self, s: &SubjectRow) -> Result<(), StoreError> {
        let r = sqlx::query(
            "INSERT INTO subjects (id, kind, status, created_at, erased_at, home_region, lang) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&s.id)
        .bind(&s.kind)
        .bind(&s.status)
        .bind(s.created_at)
        .bind(s.erased_at)
        .bind(&s.home_region)
        .bind(&s.lang)
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict("subject exists"));
        }
        Ok(())
    }

    /// Inserts many subjects at once (import).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_subjects(&mut self, rows: &[SubjectRow]) -> Result<(), StoreError> {
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO subjects (id, kind, status, created_at, erased_at) VALUES {}",
                values_clause(self.backend, chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for s in chunk {
                q = q
                    .bind(&s.id)
                    .bind(&s.kind)
                    .bind(&s.status)
                    .bind(s.created_at)
                    .bind(s.erased_at);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// A subject's status (`active`, `erased`) as seen inside this transaction. Because the
    /// transaction holds the audit-head lock, on PostgreSQL (READ COMMITTED: each statement
    /// sees everything committed before it) this is the status after every earlier writer of
    /// every instance — re-check it here before acting on a status read outside the lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_status(&mut self, subject_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT status FROM subjects WHERE id = $1")
            .bind(subject_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| Ok(r.try_get("status")?)).transpose()
    }

    /// Marks a subject erased at `at`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn mark_erased(&mut self, subject_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE subjects SET status = $1, erased_at = $2 WHERE id = $3")
            .bind(SubjectStatus::Erased.as_str())
            .bind(at)
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// A subject by id, read through this transaction ([`Store::subject`] inside one).
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject(&mut self, id: &str) -> Result<Option<SubjectRow>, StoreError> {
        let row = sqlx::query(SUBJECT_BY_ID)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| subject_from(&r)).transpose()
    }
}
