//! Store-wide odds and ends: row counts and the record of loaded policy versions.

use super::Store;
use crate::StoreError;
use sqlx::Row;

impl Store {
    /// Row count of a table (for import reports and tests). `table` must be one of the store's
    /// own table names.
    ///
    /// # Errors
    /// Database failure, or [`StoreError::Conflict`] for an unknown table name.
    pub async fn count(&self, table: &str) -> Result<i64, StoreError> {
        const TABLES: [&str; 12] = [
            "subjects",
            "subject_keys",
            "fields",
            "blind_index",
            "consent_events",
            "audit_log",
            "api_keys",
            "legal_holds",
            "retention_items",
            "anon_weblog",
            "anon_orders",
            "sweep_runs",
        ];
        if !TABLES.contains(&table) {
            return Err(StoreError::Conflict("unknown table"));
        }
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Records that a policy version was loaded at `loaded_at` (unix seconds, the caller's
    /// clock); idempotent: a version and hash already recorded keep their first time.
    ///
    /// # Errors
    /// Database failure.
    pub async fn record_policy_version(
        &self,
        version: &str,
        hash: &str,
        loaded_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO policy_versions (version, hash, loaded_at) VALUES ($1, $2, $3) \
             ON CONFLICT (version, hash) DO NOTHING",
        )
        .bind(version)
        .bind(hash)
        .bind(loaded_at)
        .execute(self.pool.get()?)
        .await?;
        Ok(())
    }
}
