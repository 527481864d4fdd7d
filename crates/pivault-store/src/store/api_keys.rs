//! The `api_keys` table: API keys (only the SHA-256 of each token is stored).

use super::{Store, WriteTx};
use crate::rows::ApiKeyRow;
use crate::StoreError;
use sqlx::Row;

impl Store {
    /// An API key by its public id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(
            "SELECT key_id, principal, roles, purposes, token_hash, created_at, revoked_at \
             FROM api_keys WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| {
            Ok(ApiKeyRow {
                key_id: r.try_get("key_id")?,
                principal: r.try_get("principal")?,
                roles: r.try_get("roles")?,
                purposes: r.try_get("purposes")?,
                token_hash: r.try_get("token_hash")?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        })
        .transpose()
    }
}

impl WriteTx {
    /// Stores an API key.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_api_key(&mut self, k: &ApiKeyRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, principal, roles, purposes, token_hash, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&k.key_id)
        .bind(&k.principal)
        .bind(&k.roles)
        .bind(&k.purposes)
        .bind(k.token_hash.clone())
        .bind(k.created_at)
        .bind(k.revoked_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
