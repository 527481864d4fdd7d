//! The `disclosures` table: the ledger of PI provided outside the provider.

use super::{Store, WriteTx};
use crate::rows::DisclosureRow;
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Every column of a disclosure-ledger row ([`disclosure_from`] reads them by name).
const COLS: &str =
    "id, subject_id, action, recipient, purpose, categories, legal_basis, exception, \
     reference, authorized_by, region, at, actor, request_id";

/// Disclosure-ledger query: of one subject (`$1`, then `from <= at < to`), newest first, or of
/// everyone in `from <= at < to`, oldest first.
fn disclosures_sql(of_subject: bool) -> String {
    if of_subject {
        format!(
            "SELECT {COLS} FROM disclosures WHERE subject_id = $1 AND at >= $2 AND at < $3 ORDER BY at DESC, id"
        )
    } else {
        format!("SELECT {COLS} FROM disclosures WHERE at >= $1 AND at < $2 ORDER BY at, id")
    }
}

fn disclosure_from(r: &AnyRow) -> Result<DisclosureRow, StoreError> {
    Ok(DisclosureRow {
        id: r.try_get("id")?,
        subject_id: r.try_get("subject_id")?,
        action: r.try_get("action")?,
        recipient: r.try_get("recipient")?,
        purpose: r.try_get("purpose")?,
        categories: r.try_get("categories")?,
        legal_basis: r.try_get("legal_basis")?,
        exception: r.try_get("exception")?,
        reference: r.try_get("reference")?,
        authorized_by: r.try_get("authorized_by")?,
        region: r.try_get("region")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        request_id: r.try_get("request_id")?,
    })
}

impl Store {
    /// Disclosure-ledger entries: of one subject (newest first) when `subject_id` is set,
    /// else all entries with `from <= at < to`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn disclosures(
        &self,
        subject_id: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<DisclosureRow>, StoreError> {
        let rows = match subject_id {
            Some(s) => {
                sqlx::query(&disclosures_sql(true))
                    .bind(s)
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.pool.get()?)
                    .await?
            }
            None => {
                sqlx::query(&disclosures_sql(false))
                    .bind(from)
                    .bind(to)
                    .fetch_all(self.pool.get()?)
                    .await?
            }
        };
        rows.iter().map(disclosure_from).collect()
    }
}

impl WriteTx {
    /// Appends one entry to the disclosure ledger.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_disclosure(&mut self, d: &DisclosureRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO disclosures (id, subject_id, action, recipient, purpose, categories, legal_basis, \
             exception, reference, authorized_by, region, at, actor, request_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(&d.id)
        .bind(&d.subject_id)
        .bind(&d.action)
        .bind(&d.recipient)
        .bind(&d.purpose)
        .bind(&d.categories)
        .bind(&d.legal_basis)
        .bind(&d.exception)
        .bind(&d.reference)
        .bind(&d.authorized_by)
        .bind(&d.region)
        .bind(d.at)
        .bind(&d.actor)
        .bind(&d.request_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Disclosure-ledger entries as [`Store::disclosures`] returns them, read through this
    /// transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn disclosures(
        &mut self,
        subject_id: Option<&str>,
        from: i64,
        to: i64,
    ) -> Result<Vec<DisclosureRow>, StoreError> {
        let rows = match subject_id {
            Some(s) => {
                sqlx::query(&disclosures_sql(true))
                    .bind(s)
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query(&disclosures_sql(false))
                    .bind(from)
                    .bind(to)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
        };
        rows.iter().map(disclosure_from).collect()
    }
}
