//! The `api_keys` table: API keys (only the SHA-256 of each token is stored), their expiry,
//! revocation and rotation, and the keys epoch that tells every instance to drop what it cached.

use super::{Store, WriteTx};
use crate::rows::ApiKeyRow;
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

const COLUMNS: &str = "key_id, principal, roles, purposes, token_hash, created_at, revoked_at, \
                       expires_at, replaced_by";

fn api_key_from(r: &AnyRow) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        key_id: r.try_get("key_id")?,
        principal: r.try_get("principal")?,
        roles: r.try_get("roles")?,
        purposes: r.try_get("purposes")?,
        token_hash: r.try_get("token_hash")?,
        created_at: r.try_get("created_at")?,
        revoked_at: r.try_get("revoked_at")?,
        expires_at: r.try_get("expires_at")?,
        replaced_by: r.try_get("replaced_by")?,
    })
}

impl Store {
    /// An API key by its public id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn api_key(&self, key_id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = $1"))
            .bind(key_id)
            .fetch_optional(self.pool.get()?)
            .await?;
        row.map(|r| api_key_from(&r)).transpose()
    }

    /// Every API key, oldest first (then by id).
    ///
    /// # Errors
    /// Database failure.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_at, key_id"
        ))
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(api_key_from).collect()
    }

    /// The keys epoch: bumped by every transaction that revokes or rotates an API key or
    /// changes a key generation (see [`WriteTx::bump_keys_epoch`]).
    ///
    /// # Errors
    /// Database failure.
    pub async fn keys_epoch(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT keys_epoch FROM audit_head WHERE id = 1")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get("keys_epoch")?)
    }
}

impl WriteTx {
    /// Stores an API key.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_api_key(&mut self, k: &ApiKeyRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO api_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&k.key_id)
        .bind(&k.principal)
        .bind(&k.roles)
        .bind(&k.purposes)
        .bind(k.token_hash.clone())
        .bind(k.created_at)
        .bind(k.revoked_at)
        .bind(k.expires_at)
        .bind(k.replaced_by.as_deref())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// An API key by its public id, read through this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn api_key(&mut self, key_id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE key_id = $1"))
            .bind(key_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        row.map(|r| api_key_from(&r)).transpose()
    }

    /// Sets a key's revocation time, expiry and successor (its lifecycle columns).
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_api_key_lifecycle(
        &mut self,
        key_id: &str,
        revoked_at: Option<i64>,
        expires_at: Option<i64>,
        replaced_by: Option<&str>,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE api_keys SET revoked_at = $1, expires_at = $2, replaced_by = $3 \
             WHERE key_id = $4",
        )
        .bind(revoked_at)
        .bind(expires_at)
        .bind(replaced_by)
        .bind(key_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    /// Bumps the keys epoch when this transaction commits: every instance polls it and drops
    /// its cached authentications (and reloads key generations) when it moves.
    ///
    /// # Errors
    /// Database failure.
    pub async fn bump_keys_epoch(&mut self) -> Result<(), StoreError> {
        sqlx::query("UPDATE audit_head SET keys_epoch = keys_epoch + 1 WHERE id = 1")
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
