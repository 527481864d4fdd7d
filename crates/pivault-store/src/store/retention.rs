//! Retention (migration 0008): the `retention_items` table the sweep walks, deleting expired
//! records with their fields, and the anonymized tables (`anon_weblog`, `anon_orders`).
//!
//! Rule sources: PIPL Art. 47 (delete once the retention period ends), Art. 73 (anonymized
//! information is not PI), CSL Art. 21 (network logs kept at least six months), E-Commerce Law
//! Art. 31 (transaction records kept at least three years), policy §4.2 (the retention table).

use super::fields::{field_from, FIELD_COLUMNS};
use super::{not_in, ph, tuples_in, values_clause, Backend, Store, WriteTx, CHUNK, MAX_EXCLUDED};
use crate::rows::{AnonOrderRow, AnonWeblogRow, FieldRow, RetentionItem, RetentionStat};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

/// (subject, record) pairs per statement of [`WriteTx::delete_records`] and
/// [`Store::fields_of_records`]: 2 bound values each, far below both backends' limits.
/// Measured on SQLite (`delete_records_throughput`): larger chunks gain nothing.
const PAIR_CHUNK: usize = CHUNK;

fn item_from(r: &AnyRow) -> Result<RetentionItem, StoreError> {
    Ok(RetentionItem {
        subject_id: r.try_get("subject_id")?,
        record: r.try_get("record")?,
        category: r.try_get("category")?,
        event_at: r.try_get("event_at")?,
    })
}

fn weblog_from(r: &AnyRow) -> Result<(i64, AnonWeblogRow), StoreError> {
    Ok((
        r.try_get("id")?,
        AnonWeblogRow {
            hour: r.try_get("hour")?,
            client_net: r.try_get("client_net")?,
            method: r.try_get("method")?,
            path: r.try_get("path")?,
            status: r.try_get("status")?,
            bytes: r.try_get("bytes")?,
            ua_family: r.try_get("ua_family")?,
            ua_major: r.try_get("ua_major")?,
        },
    ))
}

fn order_from(r: &AnyRow) -> Result<(i64, AnonOrderRow), StoreError> {
    Ok((
        r.try_get("id")?,
        AnonOrderRow {
            month: r.try_get("month")?,
            product: r.try_get("product")?,
            amount: r.try_get("amount")?,
        },
    ))
}

/// The statement of [`Store::due_items_by_subject`]: placeholders 1 category, 2 cutoff, then
/// (with a cursor) 3–4 the cursor, then the held subjects, then the limit.
pub(super) fn due_items_sql(backend: Backend, with_cursor: bool, held: usize) -> String {
    let mut n = 3;
    let cursor = if with_cursor {
        n += 2;
        format!(
            " AND (subject_id, record) > ({}, {})",
            ph(backend, 3),
            ph(backend, 4)
        )
    } else {
        String::new()
    };
    let held_clause = not_in(backend, "subject_id", n, held);
    n += held;
    format!(
        "SELECT subject_id, record, category, event_at FROM retention_items \
         WHERE category = {} AND event_at <= {}{cursor}{held_clause} \
         ORDER BY subject_id, record LIMIT {}",
        ph(backend, 1),
        ph(backend, 2),
        ph(backend, n)
    )
}

/// The fields of `n` (subject, record) pairs: one primary-key prefix probe per pair.
fn fields_of_records_sql(backend: Backend, n: usize) -> String {
    format!(
        "SELECT {FIELD_COLUMNS} FROM fields WHERE {}",
        tuples_in(backend, &["subject_id", "record"], n)
    )
}

/// Deletes the rows of `table` (`fields`, `retention_items`) of `n` (subject, record) pairs:
/// one primary-key (prefix) probe per pair.
fn delete_records_sql(backend: Backend, table: &str, n: usize) -> String {
    format!(
        "DELETE FROM {table} WHERE {}",
        tuples_in(backend, &["subject_id", "record"], n)
    )
}

/// Sorts fields by (subject, record, name) in byte order: the same on both backends, whatever
/// PostgreSQL's collation.
fn sort_fields(out: &mut [FieldRow]) {
    out.sort_by(|a, b| {
        (&a.subject_id, &a.record, &a.name).cmp(&(&b.subject_id, &b.record, &b.name))
    });
}

impl Store {
    /// Retention items of `category` whose clock started at or before `cutoff_event_at`
    /// (unix seconds; the caller passes `now − retention period`), in (subject, record) order,
    /// at most `limit`, after the keyset cursor `after` = (subject, record) of the last item of
    /// the previous page, or from the start. Items of the `held_subjects` are skipped in SQL
    /// (legal holds, PIPL Art. 47).
    ///
    /// The walk is the primary key's order, subject by subject: the fields a sweep batch then
    /// deletes are neighbours in the store (on SQLite both tables are stored in that order,
    /// migration 0009), so a batch rewrites each page it touches once. A run costs one pass
    /// over the items table per category with a per-record clock, however few are due.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Conflict`] for more than 30,000 held subjects.
    pub async fn due_items_by_subject(
        &self,
        category: &str,
        cutoff_event_at: i64,
        after: Option<(String, String)>,
        limit: i64,
        held_subjects: &[String],
    ) -> Result<Vec<RetentionItem>, StoreError> {
        if held_subjects.len() > MAX_EXCLUDED {
            return Err(StoreError::Conflict("too many held subjects"));
        }
        let sql = due_items_sql(self.backend, after.is_some(), held_subjects.len());
        let mut q = sqlx::query(&sql).bind(category).bind(cutoff_event_at);
        if let Some((s, r)) = after {
            q = q.bind(s).bind(r);
        }
        for h in held_subjects {
            q = q.bind(h);
        }
        let rows = q.bind(limit).fetch_all(self.pool.get()?).await?;
        rows.iter().map(item_from).collect()
    }

    /// Every sealed field of the given (subject, record) pairs, sorted by (subject, record,
    /// name) in byte order; pairs without fields contribute nothing. One index probe per pair,
    /// in chunks of 400 pairs.
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields_of_records(
        &self,
        records: &[(String, String)],
    ) -> Result<Vec<FieldRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in records.chunks(PAIR_CHUNK) {
            let sql = fields_of_records_sql(self.backend, chunk.len());
            let mut q = sqlx::query(&sql);
            for (s, r) in chunk {
                q = q.bind(s).bind(r);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.push(field_from(&r)?);
            }
        }
        sort_fields(&mut out);
        Ok(out)
    }

    /// Retention figures per category, by category: for each category with retention items or
    /// restricted fields, its item count, oldest `event_at`, the items due by the window's end
    /// (`event_at` at or before the category's entry in `cutoff_per_category`, which the caller
    /// computes as `due_window_end − retention period`; 0 for a category without an entry), and
    /// its restricted fields with those whose restriction ends at or before `due_window_end`
    /// (unix seconds). One grouped pass over the items and one over the restricted-fields
    /// index.
    ///
    /// # Errors
    /// Database failure.
    pub async fn retention_stats(
        &self,
        due_window_end: i64,
        cutoff_per_category: &[(String, i64)],
    ) -> Result<Vec<RetentionStat>, StoreError> {
        let pool = self.pool.get()?;
        let b = self.backend;
        let mut stats: BTreeMap<String, RetentionStat> = BTreeMap::new();
        // One pass over the items: count, oldest, and what is due, each category compared
        // with its own cutoff.
        let cutoffs = &cutoff_per_category[..cutoff_per_category.len().min(MAX_EXCLUDED / 2)];
        let due = if cutoffs.is_empty() {
            "0".to_string()
        } else {
            let arms: String = (0..cutoffs.len())
                .map(|i| {
                    format!(
                        " WHEN category = {} AND event_at <= {} THEN 1",
                        ph(b, 2 * i + 1),
                        ph(b, 2 * i + 2)
                    )
                })
                .collect();
            format!("COALESCE(SUM(CASE{arms} ELSE 0 END), 0)")
        };
        let sql = format!(
            "SELECT category, COUNT(*) AS n, MIN(event_at) AS oldest, {due} AS due \
             FROM retention_items GROUP BY category"
        );
        let mut q = sqlx::query(&sql);
        for (c, cutoff) in cutoffs {
            q = q.bind(c).bind(*cutoff);
        }
        for r in q.fetch_all(pool).await? {
            let category: String = r.try_get("category")?;
            let st = stats.entry(category.clone()).or_default();
            st.category = category;
            st.items = r.try_get("n")?;
            st.oldest_event_at = r.try_get("oldest")?;
            st.due_before = r.try_get("due")?;
        }
        let rows = sqlx::query(
            "SELECT category, COUNT(*) AS n, \
             COALESCE(SUM(CASE WHEN restricted_until <= $1 THEN 1 ELSE 0 END), 0) AS due \
             FROM fields WHERE restricted_until IS NOT NULL GROUP BY category",
        )
        .bind(due_window_end)
        .fetch_all(pool)
        .await?;
        for r in &rows {
            let category: String = r.try_get("category")?;
            let st = stats.entry(category.clone()).or_default();
            st.category = category;
            st.restricted_fields = r.try_get("n")?;
            st.restricted_due_before = r.try_get("due")?;
        }
        Ok(stats.into_values().collect())
    }

    /// Subjects holding unrestricted fields of `category`, by id, at most `limit`, after the
    /// id `after` (keyset): the candidates of a per-subject clock such as `consent_withdrawn`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subjects_with_category(
        &self,
        category: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let b = self.backend;
        let sql = format!(
            "SELECT DISTINCT subject_id FROM fields WHERE category = {} AND restricted_until IS NULL \
             AND subject_id > {} ORDER BY subject_id LIMIT {}",
            ph(b, 1),
            ph(b, 2),
            ph(b, 3)
        );
        let rows = sqlx::query(&sql)
            .bind(category)
            .bind(after.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter()
            .map(|r| r.try_get("subject_id").map_err(StoreError::from))
            .collect()
    }

    /// A page of anonymized web-log lines for export: `(id, row)` with `id > after_id`, by id,
    /// at most `limit`. Clear text by design (PIPL Art. 73: no longer PI).
    ///
    /// # Errors
    /// Database failure.
    pub async fn anon_weblog_page(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AnonWeblogRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, hour, client_net, method, path, status, bytes, ua_family, ua_major \
             FROM anon_weblog WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(weblog_from).collect()
    }

    /// A page of anonymized orders for export: `(id, row)` with `id > after_id`, by id, at most
    /// `limit`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn anon_orders_page(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<(i64, AnonOrderRow)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, month, product, amount FROM anon_orders WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(order_from).collect()
    }

    /// Rows of the anonymized tables: `(anon_weblog, anon_orders)`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn anon_counts(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM anon_weblog) AS weblog, \
             (SELECT COUNT(*) FROM anon_orders) AS orders",
        )
        .fetch_one(self.pool.get()?)
        .await?;
        Ok((row.try_get("weblog")?, row.try_get("orders")?))
    }
}

impl WriteTx {
    /// Registers retention-managed records; an item whose (subject, record) is already
    /// registered keeps its first category and clock (`ON CONFLICT DO NOTHING`, so importing
    /// twice is harmless). Returns how many were inserted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_retention_items(
        &mut self,
        items: &[RetentionItem],
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in items.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO retention_items (subject_id, record, category, event_at) VALUES {} \
                 ON CONFLICT (subject_id, record) DO NOTHING",
                values_clause(self.backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for i in chunk {
                q = q
                    .bind(&i.subject_id)
                    .bind(&i.record)
                    .bind(&i.category)
                    .bind(i.event_at);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Deletes whole records at the end of their retention period (PIPL Art. 47): for each
    /// (subject, record) pair, every `fields` row of the record (restricted or not) and its
    /// `retention_items` row. Returns the field rows deleted. Holds are the caller's to check
    /// (under this transaction's lock: [`WriteTx::holds`]). Bulk: two statements per 400
    /// pairs, one primary-key probe per pair.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_records(
        &mut self,
        records: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let mut fields = 0;
        for chunk in records.chunks(PAIR_CHUNK) {
            for table in ["fields", "retention_items"] {
                let sql = delete_records_sql(self.backend, table, chunk.len());
                let mut q = sqlx::query(&sql);
                for (s, r) in chunk {
                    q = q.bind(s).bind(r);
                }
                let n = q.execute(&mut *self.tx).await?.rows_affected();
                if table == "fields" {
                    fields += n;
                }
            }
        }
        Ok(fields)
    }

    /// Deletes the unrestricted fields of `category` of each subject in `subjects` (a clock that
    /// runs per subject ended: account closed, inactive, consent withdrawn; PIPL Art. 47(1)).
    /// Fields kept restricted after an erasure are left to their own `restricted_until`.
    /// Returns `(subject, fields deleted)` for the subjects that had any.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_category_fields(
        &mut self,
        category: &str,
        subjects: &[String],
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = format!(
            "DELETE FROM fields WHERE subject_id = {} AND category = {} AND restricted_until IS NULL",
            ph(self.backend, 1),
            ph(self.backend, 2)
        );
        let mut out = Vec::new();
        for s in subjects {
            let n = sqlx::query(&sql)
                .bind(s)
                .bind(category)
                .execute(&mut *self.tx)
                .await?
                .rows_affected();
            if n > 0 {
                out.push((s.clone(), n));
            }
        }
        Ok(out)
    }

    /// Deletes the subject's `retention_items` rows whose record has no field left: at an
    /// erasure, records shredded whole leave the retention clock; records kept restricted for a
    /// legal minimum keep theirs. Returns the rows deleted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn delete_orphan_retention_items(
        &mut self,
        subject_id: &str,
    ) -> Result<u64, StoreError> {
        let sql = format!(
            "DELETE FROM retention_items WHERE subject_id = {} AND NOT EXISTS \
             (SELECT 1 FROM fields f WHERE f.subject_id = retention_items.subject_id \
             AND f.record = retention_items.record)",
            crate::store::ph(self.backend, 1)
        );
        Ok(sqlx::query(&sql)
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected())
    }

    /// Every sealed field of the given (subject, record) pairs, read through this transaction
    /// ([`Store::fields_of_records`] inside one): what an anonymization reads before it writes
    /// the anonymized rows and deletes the records in the same transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn fields_of_records(
        &mut self,
        records: &[(String, String)],
    ) -> Result<Vec<FieldRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in records.chunks(PAIR_CHUNK) {
            let sql = fields_of_records_sql(self.backend, chunk.len());
            let mut q = sqlx::query(&sql);
            for (s, r) in chunk {
                q = q.bind(s).bind(r);
            }
            for r in q.fetch_all(&mut *self.tx).await? {
                out.push(field_from(&r)?);
            }
        }
        sort_fields(&mut out);
        Ok(out)
    }

    /// Appends anonymized web-log lines (PIPL Art. 73; CSL Art. 21 logs past their period),
    /// stamped `anonymized_at` = this transaction's time. Returns rows inserted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_anon_weblog(&mut self, rows: &[AnonWeblogRow]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO anon_weblog (hour, client_net, method, path, status, bytes, \
                 ua_family, ua_major, anonymized_at) VALUES {}",
                values_clause(self.backend, chunk.len(), 9)
            );
            let mut q = sqlx::query(&sql);
            for w in chunk {
                q = q
                    .bind(w.hour)
                    .bind(&w.client_net)
                    .bind(&w.method)
                    .bind(&w.path)
                    .bind(w.status)
                    .bind(w.bytes)
                    .bind(&w.ua_family)
                    .bind(w.ua_major)
                    .bind(self.now);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }

    /// Appends anonymized orders (PIPL Art. 73; E-Commerce Law Art. 31 records past their
    /// period), stamped `anonymized_at` = this transaction's time. Returns rows inserted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_anon_orders(&mut self, rows: &[AnonOrderRow]) -> Result<u64, StoreError> {
        let mut n = 0;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO anon_orders (month, product, amount, anonymized_at) VALUES {}",
                values_clause(self.backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for o in chunk {
                q = q
                    .bind(&o.month)
                    .bind(&o.product)
                    .bind(&o.amount)
                    .bind(self.now);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::{delete_records_sql, due_items_sql, fields_of_records_sql};
    use crate::{Backend, Store};

    /// The sweep's page query walks the primary key in order (subject by subject): no
    /// temporary B-tree for the ORDER BY; with a cursor it starts at the cursor.
    #[tokio::test]
    async fn due_items_walk_the_primary_key_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/p.db", dir.path().display());
        let store = Store::connect(&url).await.unwrap();
        for (cursor, held) in [(false, 0), (true, 0), (true, 3)] {
            let sql = due_items_sql(Backend::Sqlite, cursor, held);
            let plan: Vec<String> = {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let mut q = sqlx::query(&explain).bind("c").bind(1);
                if cursor {
                    q = q.bind("s").bind("r");
                }
                for i in 0..held {
                    q = q.bind(format!("h{i}"));
                }
                q.bind(10)
                    .fetch_all(store.pool.get().unwrap())
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| sqlx::Row::try_get::<String, _>(r, "detail").unwrap())
                    .collect()
            };
            let plan = plan.join(" | ");
            if cursor {
                assert!(
                    plan.contains("SEARCH retention_items USING PRIMARY KEY"),
                    "{plan}"
                );
            } else {
                assert!(plan.contains("SCAN retention_items"), "{plan}");
            }
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        }
        // The bulk statements probe the primary key per pair; none scans its table.
        for (sql, table) in [
            (delete_records_sql(Backend::Sqlite, "fields", 3), "fields"),
            (
                delete_records_sql(Backend::Sqlite, "retention_items", 3),
                "retention_items",
            ),
            (fields_of_records_sql(Backend::Sqlite, 3), "fields"),
        ] {
            let plan = plan_of(&store, &sql, 6).await;
            assert!(
                plan.contains(&format!("SEARCH {table} USING"))
                    && plan.contains("(subject_id=? AND record=?)")
                    && !plan.contains(&format!("SCAN {table}")),
                "{sql}: {plan}"
            );
        }
        store.close().await;
    }

    /// `EXPLAIN QUERY PLAN` of `sql` with `n` text parameters, its details joined by ` | `.
    async fn plan_of(store: &Store, sql: &str, n: usize) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query(&explain);
        for i in 0..n {
            q = q.bind(format!("v{i}"));
        }
        q.fetch_all(store.pool.get().unwrap())
            .await
            .unwrap()
            .iter()
            .map(|r| sqlx::Row::try_get::<String, _>(r, "detail").unwrap())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}
