//! The `subject_keys` table: each subject's wrapped data keys (DEKs), one per scope.

use super::{ph, placeholders, values_clause, Store, WriteTx, CHUNK};
use crate::rows::KeyRow;
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A subject's wrapped DEK of one scope ([`key_from`] columns).
const KEY_OF_SCOPE: &str =
    "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
     WHERE subject_id = $1 AND scope = $2";

pub(super) fn key_from(r: &AnyRow) -> Result<KeyRow, StoreError> {
    Ok(KeyRow {
        subject_id: r.try_get("subject_id")?,
        scope: r.try_get("scope")?,
        key_id: r.try_get("key_id")?,
        kek_id: r.try_get("kek_id")?,
        wrapped: r.try_get("wrapped")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// The wrapped DEK of a subject for a scope.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_key(
        &self,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<KeyRow>, StoreError> {
        let row = sqlx::query(KEY_OF_SCOPE)
            .bind(subject_id)
            .bind(scope)
            .fetch_optional(self.pool.get()?)
            .await?;
        row.map(|r| key_from(&r)).transpose()
    }

    /// Wrapped DEKs of `scope` for many subjects at once.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_keys_many(
        &self,
        subject_ids: &[&str],
        scope: &str,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in subject_ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
                 WHERE scope = {} AND subject_id IN ({})",
                ph(self.backend, 1),
                placeholders(self.backend, 2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(scope);
            for s in chunk {
                q = q.bind(*s);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push(key_from(&r)?);
            }
        }
        Ok(out)
    }

    /// All wrapped DEKs of a subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_keys(&self, subject_id: &str) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
             WHERE subject_id = $1",
        )
        .bind(subject_id)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(key_from).collect()
    }
}

impl WriteTx {
    /// Inserts wrapped DEKs; an existing (subject, scope) is left alone and reported by
    /// returning fewer rows inserted than given (callers then re-read the winner).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_keys(&mut self, rows: &[KeyRow]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO subject_keys (subject_id, scope, key_id, kek_id, wrapped, created_at) VALUES {} \
                 ON CONFLICT (subject_id, scope) DO NOTHING",
                values_clause(self.backend, chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q
                    .bind(&k.subject_id)
                    .bind(&k.scope)
                    .bind(&k.key_id)
                    .bind(&k.kek_id)
                    .bind(k.wrapped.clone())
                    .bind(k.created_at);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Deletes a subject's wrapped DEK for `scope` (crypto-shredding: without it, every field
    /// sealed under that DEK is unreadable, wherever a copy lives).
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_key(&mut self, subject_id: &str, scope: &str) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM subject_keys WHERE subject_id = $1 AND scope = $2")
                .bind(subject_id)
                .bind(scope)
                .execute(&mut *self.tx)
                .await?
                .rows_affected(),
        )
    }

    /// The wrapped DEK of a subject for a scope, read through this transaction
    /// ([`Store::subject_key`] inside one). Sees keys inserted earlier in this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_key(
        &mut self,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<KeyRow>, StoreError> {
        let row = sqlx::query(KEY_OF_SCOPE)
            .bind(subject_id)
            .bind(scope)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| key_from(&r)).transpose()
    }
}
