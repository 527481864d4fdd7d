//! Key rotation: the `key_generations` and `key_jobs` tables, and the queries the resumable
//! rewrap (`subject_keys`) and reindex (`blind_index`) jobs run batch by batch.

use super::{Store, WriteTx};
use crate::rows::{KeyGenRow, KeyJobRow, KeyRow};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The blind-index kind of the suppression list of erased accounts: its plaintext is gone, so
/// its rows stay under the generation that computed them and are never re-indexed.
pub const ERASED_ACCOUNT_KIND: &str = "erased_account_id";

const GEN_COLUMNS: &str = "kind, generation, key_id, salt, state, created_at, retired_at";
const JOB_COLUMNS: &str = "kind, generation, state, cursor_subject, cursor_scope, done, total, \
                           started_at, updated_at";

fn gen_from(r: &AnyRow) -> Result<KeyGenRow, StoreError> {
    Ok(KeyGenRow {
        kind: r.try_get("kind")?,
        generation: r.try_get("generation")?,
        key_id: r.try_get("key_id")?,
        salt: r.try_get("salt")?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        retired_at: r.try_get("retired_at")?,
    })
}

fn job_from(r: &AnyRow) -> Result<KeyJobRow, StoreError> {
    Ok(KeyJobRow {
        kind: r.try_get("kind")?,
        generation: r.try_get("generation")?,
        state: r.try_get("state")?,
        cursor_subject: r.try_get("cursor_subject")?,
        cursor_scope: r.try_get("cursor_scope")?,
        done: r.try_get("done")?,
        total: r.try_get("total")?,
        started_at: r.try_get("started_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn counts(rows: &[AnyRow], key: &str) -> Result<Vec<(String, i64)>, StoreError> {
    rows.iter()
        .map(|r| Ok((r.try_get(key)?, r.try_get("n")?)))
        .collect()
}

impl Store {
    /// Every key generation, by kind then generation.
    ///
    /// # Errors
    /// Database failure.
    pub async fn key_generations(&self) -> Result<Vec<KeyGenRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GEN_COLUMNS} FROM key_generations ORDER BY kind, generation"
        ))
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(gen_from).collect()
    }

    /// The progress row of a key job (`rewrap`, `reindex`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn key_job(&self, kind: &str) -> Result<Option<KeyJobRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM key_jobs WHERE kind = $1"
        ))
        .bind(kind)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| job_from(&r)).transpose()
    }

    /// Wrapped DEKs per KEK id: `(kek_id, rows)`, by id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn wrapped_keys_per_kek(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kek_id, COUNT(*) AS n FROM subject_keys GROUP BY kek_id ORDER BY kek_id",
        )
        .fetch_all(self.pool.get()?)
        .await?;
        counts(&rows, "kek_id")
    }

    /// Blind-index rows per key generation, split into identifiers and the suppression list of
    /// erased accounts: `(generation, identifier rows, erased-account rows)`, by generation.
    ///
    /// # Errors
    /// Database failure.
    pub async fn index_rows_per_generation(&self) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_gen, \
             SUM(CASE WHEN kind = $1 THEN 0 ELSE 1 END) AS ids, \
             SUM(CASE WHEN kind = $2 THEN 1 ELSE 0 END) AS erased \
             FROM blind_index GROUP BY key_gen ORDER BY key_gen",
        )
        .bind(ERASED_ACCOUNT_KIND)
        .bind(ERASED_ACCOUNT_KIND)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("key_gen")?,
                    r.try_get("ids")?,
                    r.try_get("erased")?,
                ))
            })
            .collect()
    }
}

impl WriteTx {
    /// Every key generation of `kind`, by generation, read through this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn key_generations(&mut self, kind: &str) -> Result<Vec<KeyGenRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GEN_COLUMNS} FROM key_generations WHERE kind = $1 ORDER BY generation"
        ))
        .bind(kind)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(gen_from).collect()
    }

    /// Inserts a key generation.
    ///
    /// # Errors
    /// Database failure (a generation that exists is a conflict).
    pub async fn insert_key_generation(&mut self, g: &KeyGenRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO key_generations ({GEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&g.kind)
        .bind(g.generation)
        .bind(&g.key_id)
        .bind(g.salt.clone())
        .bind(&g.state)
        .bind(g.created_at)
        .bind(g.retired_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Sets the state (and retirement time) of a key generation.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_key_generation_state(
        &mut self,
        kind: &str,
        generation: i64,
        state: &str,
        retired_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE key_generations SET state = $1, retired_at = $2 \
             WHERE kind = $3 AND generation = $4",
        )
        .bind(state)
        .bind(retired_at)
        .bind(kind)
        .bind(generation)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The progress row of a key job, read through this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn key_job(&mut self, kind: &str) -> Result<Option<KeyJobRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM key_jobs WHERE kind = $1"
        ))
        .bind(kind)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| job_from(&r)).transpose()
    }

    /// Inserts or replaces the progress row of a key job.
    ///
    /// # Errors
    /// Database failure.
    pub async fn put_key_job(&mut self, j: &KeyJobRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO key_jobs ({JOB_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (kind) DO UPDATE SET generation = excluded.generation, \
             state = excluded.state, cursor_subject = excluded.cursor_subject, \
             cursor_scope = excluded.cursor_scope, done = excluded.done, total = excluded.total, \
             started_at = excluded.started_at, updated_at = excluded.updated_at"
        ))
        .bind(&j.kind)
        .bind(j.generation)
        .bind(&j.state)
        .bind(&j.cursor_subject)
        .bind(&j.cursor_scope)
        .bind(j.done)
        .bind(j.total)
        .bind(j.started_at)
        .bind(j.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Wrapped DEKs not under `kek_id`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn count_keys_not_under(&mut self, kek_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM subject_keys WHERE kek_id <> $1")
            .bind(kek_id)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Wrapped DEKs under `kek_id`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn count_keys_under(&mut self, kek_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM subject_keys WHERE kek_id = $1")
            .bind(kek_id)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Up to `limit` wrapped DEKs after `(subject, scope)` in key order, not under `kek_id`.
    /// The key order is the primary key's, so a batch is an index range scan.
    ///
    /// # Errors
    /// Database failure.
    pub async fn keys_after(
        &mut self,
        subject: &str,
        scope: &str,
        limit: i64,
    ) -> Result<Vec<KeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
             WHERE subject_id > $1 OR (subject_id = $2 AND scope > $3) \
             ORDER BY subject_id, scope LIMIT $4",
        )
        .bind(subject)
        .bind(subject)
        .bind(scope)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(super::keys::key_from).collect()
    }

    /// Replaces a wrapped DEK by the same DEK wrapped under another KEK, only if the row is still
    /// the one read (same DEK id, same old KEK): a DEK shredded or replaced meanwhile is left
    /// alone. Returns the rows changed (0 or 1).
    ///
    /// # Errors
    /// Database failure.
    pub async fn rewrap_key(&mut self, old_kek: &str, new: &KeyRow) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE subject_keys SET kek_id = $1, wrapped = $2 \
             WHERE subject_id = $3 AND scope = $4 AND key_id = $5 AND kek_id = $6",
        )
        .bind(&new.kek_id)
        .bind(new.wrapped.clone())
        .bind(&new.subject_id)
        .bind(&new.scope)
        .bind(&new.key_id)
        .bind(old_kek)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    /// Identifier rows (not the erased-account suppression list) not under generation `gen`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn count_index_not_under(&mut self, gen: i64) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM blind_index WHERE key_gen <> $1 AND kind <> $2")
                .bind(gen)
                .bind(ERASED_ACCOUNT_KIND)
                .fetch_one(&mut *self.tx)
                .await?;
        Ok(row.try_get("n")?)
    }

    /// Up to `limit` subjects after `subject`, in id order, holding an identifier row not under
    /// generation `gen`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn index_subjects_after(
        &mut self,
        gen: i64,
        subject: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT subject_id FROM blind_index \
             WHERE key_gen <> $1 AND kind <> $2 AND subject_id > $3 \
             ORDER BY subject_id LIMIT $4",
        )
        .bind(gen)
        .bind(ERASED_ACCOUNT_KIND)
        .bind(subject)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("subject_id")?))
            .collect()
    }

    /// Subjects holding an identifier row of some kind under an older generation and none of
    /// that kind under `gen`: what a writer that had not yet seen the rotation indexed after the
    /// cursor passed it.
    ///
    /// # Errors
    /// Database failure.
    pub async fn index_subjects_missing(&mut self, gen: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT b.subject_id FROM blind_index b \
             WHERE b.key_gen <> $1 AND b.kind <> $2 AND NOT EXISTS ( \
               SELECT 1 FROM blind_index c WHERE c.subject_id = b.subject_id \
               AND c.kind = b.kind AND c.key_gen = $3) \
             ORDER BY b.subject_id",
        )
        .bind(gen)
        .bind(ERASED_ACCOUNT_KIND)
        .bind(gen)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("subject_id")?))
            .collect()
    }

    /// Deletes the identifier rows not under generation `gen` (the suppression list of erased
    /// accounts is kept). Returns the rows deleted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_index_not_under(&mut self, gen: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM blind_index WHERE key_gen <> $1 AND kind <> $2")
                .bind(gen)
                .bind(ERASED_ACCOUNT_KIND)
                .execute(&mut *self.tx)
                .await?
                .rows_affected(),
        )
    }
}
