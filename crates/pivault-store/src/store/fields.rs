//! The `fields` table: sealed PI fields, and their restriction for legal retention.

use super::{not_in, ph, tuples_in, values_clause, Store, WriteTx, CHUNK, MAX_EXCLUDED};
use crate::rows::FieldRow;
use crate::{Backend, StoreError};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The columns [`field_from`] reads.
pub(super) const FIELD_COLUMNS: &str =
    "subject_id, record, name, category, key_id, ciphertext, restricted_until, updated_at";

/// A subject's sealed fields by record then name ([`field_from`] columns).
const FIELDS_OF: &str =
    "SELECT subject_id, record, name, category, key_id, ciphertext, restricted_until, updated_at \
     FROM fields WHERE subject_id = $1 ORDER BY record, name";

pub(super) fn field_from(r: &AnyRow) -> Result<FieldRow, StoreError> {
    Ok(FieldRow {
        subject_id: r.try_get("subject_id")?,
        record: r.try_get("record")?,
        name: r.try_get("name")?,
        category: r.try_get("category")?,
        key_id: r.try_get("key_id")?,
        ciphertext: r.try_get("ciphertext")?,
        restricted_until: r.try_get("restricted_until")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// All sealed fields of a subject, ordered by record then name.
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields(&self, subject_id: &str) -> Result<Vec<FieldRow>, StoreError> {
        let rows = sqlx::query(FIELDS_OF)
            .bind(subject_id)
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(field_from).collect()
    }

    /// The facts epoch and all sealed fields of a subject (by record then name), read by ONE
    /// statement, so both are as of the same snapshot: the fields of a read, and the epoch
    /// that says whether cached decision facts are still current (every transaction that
    /// changes a subject's facts or fields bumps it, `WriteTx::bump_facts_epoch`).
    ///
    /// Returns `(epoch, fields)`; `fields` is empty for an unknown subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields_at_epoch(
        &self,
        subject_id: &str,
    ) -> Result<(i64, Vec<FieldRow>), StoreError> {
        // One row: the epoch and the fields as one JSON array (ciphertext in hex). Row by row,
        // each field was a hand-off between the database's worker thread and the request's
        // (SQLite) or a row to decode (both): most of a read's time (issue 16).
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT h.facts_epoch, (SELECT json_group_array(json_array(record, name, \
                 category, key_id, hex(ciphertext), restricted_until, updated_at) \
                 ORDER BY record, name) FROM fields WHERE subject_id = $1) \
                 FROM audit_head h WHERE h.id = 1"
            }
            Backend::Postgres => {
                "SELECT h.facts_epoch, (SELECT COALESCE(json_agg(json_build_array(record, name, \
                 category, key_id, encode(ciphertext, 'hex'), restricted_until, updated_at) \
                 ORDER BY record, name), '[]')::text FROM fields WHERE subject_id = $1) \
                 FROM audit_head h WHERE h.id = 1"
            }
        };
        let row = sqlx::query(sql)
            .bind(subject_id)
            .fetch_optional(self.pool.get()?)
            .await?
            // As `Store::facts_epoch` without its row.
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))?;
        let epoch: i64 = row.try_get(0)?;
        let json: Option<String> = row.try_get(1)?;
        // The message names where the JSON broke, never a value from it.
        let bad = |what: String| {
            StoreError::Db(sqlx::Error::Decode(
                format!("fields of a subject as JSON: {what}").into(),
            ))
        };
        type Packed = (String, String, String, String, String, Option<i64>, i64);
        let packed: Vec<Packed> = match json.as_deref() {
            None => Vec::new(),
            Some(j) => serde_json::from_str(j)
                .map_err(|e| bad(format!("malformed at column {}", e.column())))?,
        };
        let mut fields = Vec::with_capacity(packed.len());
        for (record, name, category, key_id, ct, restricted_until, updated_at) in packed {
            fields.push(FieldRow {
                subject_id: subject_id.to_string(),
                record,
                name,
                category,
                key_id,
                ciphertext: hex::decode(ct).map_err(|_| bad("ciphertext is not hex".into()))?,
                restricted_until,
                updated_at,
            });
        }
        Ok((epoch, fields))
    }

    /// A page of every subject's sealed fields in primary-key order (subject, record, name):
    /// at most `limit` rows after `after`, or from the start. For walking the whole table
    /// (`pivault audit verify --fields`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields_page(
        &self,
        after: Option<(&str, &str, &str)>,
        limit: i64,
    ) -> Result<Vec<FieldRow>, StoreError> {
        const COLS: &str =
            "SELECT subject_id, record, name, category, key_id, ciphertext, restricted_until, \
             updated_at FROM fields";
        let rows = match after {
            None => {
                sqlx::query(&format!(
                    "{COLS} ORDER BY subject_id, record, name LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(self.pool.get()?)
                .await?
            }
            Some((s, r, n)) => {
                sqlx::query(&format!(
                    "{COLS} WHERE (subject_id, record, name) > ($1, $2, $3) \
                     ORDER BY subject_id, record, name LIMIT $4"
                ))
                .bind(s)
                .bind(r)
                .bind(n)
                .bind(limit)
                .fetch_all(self.pool.get()?)
                .await?
            }
        };
        rows.iter().map(field_from).collect()
    }

    /// How many sealed fields the vault holds.
    ///
    /// # Errors
    /// Database failure.
    pub async fn count_fields(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM fields")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Of the given (subject, record) pairs, those that already have fields. Uses the primary
    /// key prefix, so it costs one index probe per pair.
    ///
    /// # Errors
    /// Database failure.
    pub async fn existing_records(
        &self,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        for chunk in pairs.chunks(CHUNK) {
            // `IN (SELECT … FROM (VALUES …))`: SQLite probes the key per pair; a bare
            // `IN (VALUES …)` list of more than one row scans the whole table.
            let sql = format!(
                "SELECT DISTINCT subject_id, record FROM fields WHERE {}",
                tuples_in(self.backend, &["subject_id", "record"], chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for (s, r) in chunk {
                q = q.bind(*s).bind(*r);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push((r.try_get("subject_id")?, r.try_get("record")?));
            }
        }
        Ok(out)
    }
}

impl WriteTx {
    /// Inserts or replaces sealed fields.
    ///
    /// # Errors
    /// Database failure.
    pub async fn upsert_fields(&mut self, rows: &[FieldRow]) -> Result<u64, StoreError> {
        self.write_fields(rows, true).await
    }

    /// Inserts sealed fields that are not present yet; returns how many were inserted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_fields_if_absent(&mut self, rows: &[FieldRow]) -> Result<u64, StoreError> {
        self.write_fields(rows, false).await
    }

    async fn write_fields(&mut self, rows: &[FieldRow], replace: bool) -> Result<u64, StoreError> {
        let conflict = if replace {
            "ON CONFLICT (subject_id, record, name) DO UPDATE SET category = excluded.category, \
             key_id = excluded.key_id, ciphertext = excluded.ciphertext, \
             restricted_until = excluded.restricted_until, updated_at = excluded.updated_at"
        } else {
            "ON CONFLICT (subject_id, record, name) DO NOTHING"
        };
        // In primary-key order (stable: of two rows with one key, the later still wins), so a
        // statement moves through the clustered B-tree one way instead of back and forth.
        let mut rows: Vec<&FieldRow> = rows.iter().collect();
        rows.sort_by(|a, b| {
            (&a.subject_id, &a.record, &a.name).cmp(&(&b.subject_id, &b.record, &b.name))
        });
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO fields (subject_id, record, name, category, key_id, ciphertext, \
                 restricted_until, updated_at) VALUES {} {conflict}",
                values_clause(self.backend, chunk.len(), 8)
            );
            let mut q = sqlx::query(&sql);
            // Borrowed (`&str`, `&[u8]`): bound without a copy of each value.
            for f in chunk {
                q = q
                    .bind(f.subject_id.as_str())
                    .bind(f.record.as_str())
                    .bind(f.name.as_str())
                    .bind(f.category.as_str())
                    .bind(f.key_id.as_str())
                    .bind(f.ciphertext.as_slice())
                    .bind(f.restricted_until)
                    .bind(f.updated_at);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Deletes every field of a subject that is not restricted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_unrestricted_fields(
        &mut self,
        subject_id: &str,
    ) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM fields WHERE subject_id = $1 AND restricted_until IS NULL")
                .bind(subject_id)
                .execute(&mut *self.tx)
                .await?
                .rows_affected(),
        )
    }

    /// Deletes restricted fields whose retention ended at or before `now`; returns the
    /// (subject, count) pairs affected.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_expired_restricted(
        &mut self,
        now: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT subject_id, COUNT(*) AS n FROM fields WHERE restricted_until IS NOT NULL \
             AND restricted_until <= $1 GROUP BY subject_id ORDER BY subject_id",
        )
        .bind(now)
        .fetch_all(&mut *self.tx)
        .await?;
        let out: Vec<(String, i64)> = rows
            .iter()
            .map(|r| Ok((r.try_get("subject_id")?, r.try_get("n")?)))
            .collect::<Result<_, StoreError>>()?;
        sqlx::query(
            "DELETE FROM fields WHERE restricted_until IS NOT NULL AND restricted_until <= $1",
        )
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(out)
    }

    /// Deletes up to `limit` restricted fields whose retention ended at or before `now` (unix
    /// seconds), earliest end first, skipping the `excluded_subjects` and
    /// `excluded_categories` (active legal holds, PIPL Art. 47; policy §4.2). Returns one
    /// (subject, record, category) entry per field deleted, sorted; fewer than `limit` entries
    /// means nothing else is due. The batched, hold-aware form of
    /// [`WriteTx::delete_expired_restricted`]. A record's `retention_items` row is left alone.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Conflict`] for more than 30,000 exclusions together.
    pub async fn delete_expired_restricted_batch(
        &mut self,
        now: i64,
        limit: i64,
        excluded_subjects: &[String],
        excluded_categories: &[String],
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let (ns, nc) = (excluded_subjects.len(), excluded_categories.len());
        if ns + nc > MAX_EXCLUDED {
            return Err(StoreError::Conflict("too many retention exclusions"));
        }
        let sql = format!(
            "SELECT subject_id, record, name, category FROM fields \
             WHERE restricted_until IS NOT NULL AND restricted_until <= {}{}{} \
             ORDER BY restricted_until LIMIT {}",
            ph(self.backend, 1),
            not_in(self.backend, "subject_id", 2, ns),
            not_in(self.backend, "category", 2 + ns, nc),
            ph(self.backend, 2 + ns + nc)
        );
        let mut q = sqlx::query(&sql).bind(now);
        for v in excluded_subjects.iter().chain(excluded_categories) {
            q = q.bind(v);
        }
        let rows = q.bind(limit).fetch_all(&mut *self.tx).await?;
        let mut due: Vec<(String, String, String, String)> = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("subject_id")?,
                    r.try_get("record")?,
                    r.try_get("category")?,
                    r.try_get("name")?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        due.sort();
        for chunk in due.chunks(CHUNK) {
            let sql = format!(
                "DELETE FROM fields WHERE {}",
                tuples_in(self.backend, &["subject_id", "record", "name"], chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for (s, r, _, n) in chunk {
                q = q.bind(s).bind(r).bind(n);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(due.into_iter().map(|(s, r, c, _)| (s, r, c)).collect())
    }

    /// All sealed fields of a subject, ordered by record then name, read through this
    /// transaction ([`Store::fields`] inside one).
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields(&mut self, subject_id: &str) -> Result<Vec<FieldRow>, StoreError> {
        let rows = sqlx::query(FIELDS_OF)
            .bind(subject_id)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(field_from).collect()
    }

    /// The subject's sealed fields of the given categories (by record then name), read through
    /// this transaction: what an erasure step opens, without reading every field of the
    /// subject (a subject of the data set holds ~28 fields, up to hundreds of web-log lines).
    /// Empty for no category.
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields_in(
        &mut self,
        subject_id: &str,
        categories: &[&str],
    ) -> Result<Vec<FieldRow>, StoreError> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {FIELD_COLUMNS} FROM fields WHERE subject_id = {} AND category IN ({}) \
             ORDER BY record, name",
            // all placeholders of one style: sqlx numbers SQLite's bare `?` apart from `$N`
            ph(self.backend, 1),
            super::placeholders(self.backend, 2, categories.len())
        );
        let mut q = sqlx::query(&sql).bind(subject_id);
        for c in categories {
            q = q.bind(*c);
        }
        let rows = q.fetch_all(&mut *self.tx).await?;
        rows.iter().map(field_from).collect()
    }

    /// The categories of the subject's fields not restricted (`restricted_until` unset),
    /// sorted by bytes, each once: what a shred deletes.
    ///
    /// # Errors
    /// Database failure.
    pub async fn live_categories(&mut self, subject_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT category FROM fields \
             WHERE subject_id = $1 AND restricted_until IS NULL",
        )
        .bind(subject_id)
        .fetch_all(&mut *self.tx)
        .await?;
        let mut cats = rows
            .iter()
            .map(|r| r.try_get::<String, _>("category"))
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here, byte by byte: a database's collation must not reorder a signed receipt.
        cats.sort_unstable();
        Ok(cats)
    }
}
