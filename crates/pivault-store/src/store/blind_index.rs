//! The `blind_index` table: keyed digests of normalized identifiers, for exact lookups
//! without decryption.

use super::{ph, placeholders, values_clause, Store, WriteTx, CHUNK};
use crate::StoreError;
use sqlx::Row;

impl Store {
    /// Subjects whose blind index of `kind` equals `digest`; every match, sorted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup(&self, kind: &str, digest: &[u8]) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2 ORDER BY subject_id",
        )
        .bind(kind)
        .bind(digest.to_vec())
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("subject_id")?))
            .collect()
    }

    /// Subjects whose blind index of `kind` equals any of `digests` (the same value under each
    /// blind-index key generation lookups consult); every match once, sorted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup_any(
        &self,
        kind: &str,
        digests: &[[u8; 32]],
    ) -> Result<Vec<String>, StoreError> {
        if let [d] = digests {
            return self.lookup(kind, d).await;
        }
        let mut out: Vec<String> = self
            .lookup_many(kind, digests)
            .await?
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// For many digests of one kind: the (digest, subject) pairs that exist.
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup_many(
        &self,
        kind: &str,
        digests: &[[u8; 32]],
    ) -> Result<Vec<(Vec<u8>, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in digests.chunks(CHUNK) {
            let sql = format!(
                "SELECT digest, subject_id FROM blind_index WHERE kind = {} AND digest IN ({})",
                ph(self.backend, 1),
                placeholders(self.backend, 2, chunk.len())
            );
            let mut q = sqlx::query(&sql).bind(kind);
            for d in chunk {
                q = q.bind(d.to_vec());
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push((r.try_get("digest")?, r.try_get("subject_id")?));
            }
        }
        Ok(out)
    }
}

impl WriteTx {
    /// Subjects whose blind index of `kind` equals `digest`, as seen inside this transaction
    /// (see [`WriteTx::subject_status`] for why that matters with several instances).
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup(&mut self, kind: &str, digest: &[u8]) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id FROM blind_index WHERE kind = $1 AND digest = $2 ORDER BY subject_id",
        )
        .bind(kind)
        .bind(digest.to_vec())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<String, _>("subject_id")?))
            .collect()
    }

    /// [`WriteTx::lookup`] for any of `digests` (see [`Store::lookup_any`]).
    ///
    /// # Errors
    /// Database failure.
    pub async fn lookup_any(
        &mut self,
        kind: &str,
        digests: &[[u8; 32]],
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for d in digests {
            out.extend(self.lookup(kind, d).await?);
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Adds blind-index entries (kind, digest, subject) computed under blind-index key
    /// generation `key_gen`; duplicates are ignored.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_blind_index(
        &mut self,
        key_gen: i64,
        rows: &[(&str, [u8; 32], &str)],
    ) -> Result<(), StoreError> {
        // In key order: digests are uniformly random, so unsorted rows would land all over the
        // primary-key B-tree; sorted, each statement walks it once from left to right.
        let mut rows: Vec<&(&str, [u8; 32], &str)> = rows.iter().collect();
        rows.sort_unstable_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO blind_index (kind, digest, subject_id, key_gen) VALUES {} \
                 ON CONFLICT (kind, digest, subject_id) DO NOTHING",
                values_clause(self.backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for (k, d, s) in chunk.iter().copied() {
                q = q.bind(*k).bind(&d[..]).bind(*s).bind(key_gen);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Removes a subject's blind-index entries of `kind` (all kinds when `None`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_blind_index(
        &mut self,
        subject_id: &str,
        kind: Option<&str>,
    ) -> Result<u64, StoreError> {
        let r = match kind {
            Some(k) => {
                sqlx::query("DELETE FROM blind_index WHERE subject_id = $1 AND kind = $2")
                    .bind(subject_id)
                    .bind(k)
                    .execute(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM blind_index WHERE subject_id = $1")
                    .bind(subject_id)
                    .execute(&mut *self.tx)
                    .await?
            }
        };
        Ok(r.rows_affected())
    }
}
