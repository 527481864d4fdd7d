//! The `legal_holds` table (migration 0008): holds that stop the retention sweep for a subject
//! or for a whole category (PIPL Art. 47: a legal obligation can require keeping data past its
//! retention period; policy §4.2).

use super::{Store, WriteTx};
use crate::rows::HoldRow;
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

const HOLD_COLUMNS: &str =
    "id, subject_id, category, reason, reference, set_by, set_at, released_by, released_at";

fn hold_from(r: &AnyRow) -> Result<HoldRow, StoreError> {
    Ok(HoldRow {
        id: r.try_get("id")?,
        subject_id: r.try_get("subject_id")?,
        category: r.try_get("category")?,
        reason: r.try_get("reason")?,
        reference: r.try_get("reference")?,
        set_by: r.try_get("set_by")?,
        set_at: r.try_get("set_at")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
    })
}

/// Every hold (or the active ones only), oldest first.
fn holds_sql(active_only: bool) -> String {
    let filter = if active_only {
        " WHERE released_at IS NULL"
    } else {
        ""
    };
    format!("SELECT {HOLD_COLUMNS} FROM legal_holds{filter} ORDER BY set_at, id")
}

impl Store {
    /// Legal holds, oldest first (by `set_at`, then id); with `active_only`, only those not
    /// released.
    ///
    /// # Errors
    /// Database failure.
    pub async fn holds(&self, active_only: bool) -> Result<Vec<HoldRow>, StoreError> {
        let rows = sqlx::query(&holds_sql(active_only))
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(hold_from).collect()
    }

    /// A legal hold by id, released or not.
    ///
    /// # Errors
    /// Database failure.
    pub async fn hold(&self, id: &str) -> Result<Option<HoldRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| hold_from(&r)).transpose()
    }
}

impl WriteTx {
    /// Records a legal hold. Exactly one of `subject_id` / `category` must be set (the schema
    /// enforces it too); a hold is normally inserted unreleased.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Conflict`] if the id exists, or when the hold names both
    /// or neither of a subject and a category.
    pub async fn insert_hold(&mut self, h: &HoldRow) -> Result<(), StoreError> {
        if h.subject_id.is_some() == h.category.is_some() {
            return Err(StoreError::Conflict(
                "a legal hold names exactly one of a subject or a category",
            ));
        }
        let r = sqlx::query(&format!(
            "INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO NOTHING"
        ))
        .bind(&h.id)
        .bind(&h.subject_id)
        .bind(&h.category)
        .bind(&h.reason)
        .bind(&h.reference)
        .bind(&h.set_by)
        .bind(h.set_at)
        .bind(&h.released_by)
        .bind(h.released_at)
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Conflict("legal hold exists"));
        }
        Ok(())
    }

    /// Releases an active hold: `by` (principal) at `at` (unix seconds). `false` when the id is
    /// unknown or the hold was already released (the first release is kept).
    ///
    /// # Errors
    /// Database failure.
    pub async fn release_hold(&mut self, id: &str, by: &str, at: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE legal_holds SET released_by = $1, released_at = $2 \
             WHERE id = $3 AND released_at IS NULL",
        )
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Legal holds read through this transaction ([`Store::holds`] inside one): the sweep
    /// re-reads the active holds under the audit-head lock before it deletes, so a hold
    /// committed by another instance meanwhile is honoured.
    ///
    /// # Errors
    /// Database failure.
    pub async fn holds(&mut self, active_only: bool) -> Result<Vec<HoldRow>, StoreError> {
        let rows = sqlx::query(&holds_sql(active_only))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(hold_from).collect()
    }
}
