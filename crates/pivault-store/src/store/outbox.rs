//! The `outbox` and `outbox_attempts` tables (migration 0010): every message pivault sends is
//! a row here, written in the transaction of the change that causes it, then delivered by
//! workers with retries (policy §8.3; PIPL Art. 39, 47, 57).
//!
//! Claims are made under the audit-head lock of a [`WriteTx`], so two instances never lease
//! the same message at once; a lease that runs out (its holder died) makes the message due
//! again, and it is retried under the same id (its idempotency key).

use super::{values_clause, Store, WriteTx};
use crate::rows::{OutboxAttemptRow, OutboxCounts, OutboxRow};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

const OUTBOX_COLUMNS: &str = "id, kind, subject_id, target, cause, dedup_key, lang, payload, \
     state, channel, channel_index, attempts, next_at, created_at, done_at, last_error";

/// Rows per multi-row `INSERT` (16 columns: 4,000 placeholders, under SQLite's limit).
const ENQUEUE_CHUNK: usize = 250;

fn outbox_from(r: &AnyRow) -> Result<OutboxRow, StoreError> {
    Ok(OutboxRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        subject_id: r.try_get("subject_id")?,
        target: r.try_get("target")?,
        cause: r.try_get("cause")?,
        dedup_key: r.try_get("dedup_key")?,
        lang: r.try_get("lang")?,
        payload: r.try_get("payload")?,
        state: r.try_get("state")?,
        channel: r.try_get("channel")?,
        channel_index: r.try_get("channel_index")?,
        attempts: r.try_get("attempts")?,
        next_at: r.try_get("next_at")?,
        created_at: r.try_get("created_at")?,
        done_at: r.try_get("done_at")?,
        last_error: r.try_get("last_error")?,
    })
}

fn attempt_from(r: &AnyRow) -> Result<OutboxAttemptRow, StoreError> {
    Ok(OutboxAttemptRow {
        outbox_id: r.try_get("outbox_id")?,
        n: r.try_get("n")?,
        at: r.try_get("at")?,
        channel: r.try_get("channel")?,
        outcome: r.try_get("outcome")?,
        status: r.try_get("status")?,
    })
}

fn add_count(c: &mut OutboxCounts, state: &str, n: i64) {
    let n = u64::try_from(n).unwrap_or(0);
    match state {
        "pending" => c.pending += n,
        "delivered" => c.delivered += n,
        "letter" => c.letter += n,
        "announced" => c.announced += n,
        _ => c.failed += n,
    }
}

impl Store {
    /// One outbox message by id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn outbox_item(&self, id: &str) -> Result<Option<OutboxRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| outbox_from(&r)).transpose()
    }

    /// Messages of one cause and kind, counted by state.
    ///
    /// # Errors
    /// Database failure.
    pub async fn outbox_counts(&self, cause: &str, kind: &str) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM outbox WHERE cause = $1 AND kind = $2 GROUP BY state",
        )
        .bind(cause)
        .bind(kind)
        .fetch_all(self.pool.get()?)
        .await?;
        let mut c = OutboxCounts::default();
        for r in &rows {
            let state: String = r.try_get("state")?;
            add_count(&mut c, &state, r.try_get("n")?);
        }
        Ok(c)
    }

    /// Every message, counted by state (the `/metrics` gauge and `outbox status`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn outbox_totals(&self) -> Result<OutboxCounts, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
            .fetch_all(self.pool.get()?)
            .await?;
        let mut c = OutboxCounts::default();
        for r in &rows {
            let state: String = r.try_get("state")?;
            add_count(&mut c, &state, r.try_get("n")?);
        }
        Ok(c)
    }

    /// Every attempt of one message, in order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn outbox_attempts(&self, id: &str) -> Result<Vec<OutboxAttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT outbox_id, n, at, channel, outcome, status FROM outbox_attempts \
             WHERE outbox_id = $1 ORDER BY n",
        )
        .bind(id)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(attempt_from).collect()
    }

    /// Letters waiting to be printed (state `letter`, not yet printed), oldest first.
    ///
    /// # Errors
    /// Database failure.
    pub async fn letters_to_print(&self, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'letter' AND done_at IS NULL \
             ORDER BY created_at, id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(outbox_from).collect()
    }

    /// Whether the message with `dedup_key` exists and has not reached the person yet: still
    /// pending, or a letter not yet printed.
    ///
    /// # Errors
    /// Database failure.
    pub async fn outbox_unsettled(&self, dedup_key: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE dedup_key = $1 \
             AND (state = 'pending' OR (state = 'letter' AND done_at IS NULL))",
        )
        .bind(dedup_key)
        .fetch_one(self.pool.get()?)
        .await?;
        Ok(n > 0)
    }
}

impl WriteTx {
    /// Enqueues messages. A message whose `dedup_key` is already in the outbox is left out
    /// (exactly once per kind, target, subject and cause). Returns how many were added.
    ///
    /// # Errors
    /// Database failure.
    pub async fn enqueue(&mut self, rows: &[OutboxRow]) -> Result<u64, StoreError> {
        let mut added = 0;
        for chunk in rows.chunks(ENQUEUE_CHUNK) {
            let sql = format!(
                "INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES {} ON CONFLICT (dedup_key) DO NOTHING",
                values_clause(self.backend, chunk.len(), 16)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                q = q
                    .bind(&m.id)
                    .bind(&m.kind)
                    .bind(&m.subject_id)
                    .bind(&m.target)
                    .bind(&m.cause)
                    .bind(&m.dedup_key)
                    .bind(&m.lang)
                    .bind(&m.payload)
                    .bind(&m.state)
                    .bind(&m.channel)
                    .bind(m.channel_index)
                    .bind(m.attempts)
                    .bind(m.next_at)
                    .bind(m.created_at)
                    .bind(m.done_at)
                    .bind(&m.last_error);
            }
            added += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(added)
    }

    /// Leases up to `limit` due messages (pending, `next_at <= now`, no live lease) to
    /// `holder` until `lease_until`, oldest due first; `only` restricts to one message id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn claim_outbox(
        &mut self,
        holder: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
        only: Option<&str>,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE state = 'pending' AND next_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) AND ($2 IS NULL OR id = $2) \
             ORDER BY next_at, id LIMIT $3"
        ))
        .bind(now)
        .bind(only)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        let claimed: Vec<OutboxRow> = rows.iter().map(outbox_from).collect::<Result<_, _>>()?;
        for chunk in claimed.chunks(super::CHUNK) {
            // Placeholders in order of appearance (SQLite's `?` are positional): the two
            // values first, then the ids.
            let list: Vec<String> = (0..chunk.len())
                .map(|i| super::ph(self.backend, i + 3))
                .collect();
            let sql = format!(
                "UPDATE outbox SET lease_holder = {}, lease_until = {} WHERE id IN ({})",
                super::ph(self.backend, 1),
                super::ph(self.backend, 2),
                list.join(", "),
            );
            let mut q = sqlx::query(&sql).bind(holder).bind(lease_until);
            for m in chunk {
                q = q.bind(&m.id);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(claimed)
    }

    /// Records the outcome of a delivery: its attempt rows, and the message's new state,
    /// channel position, attempt count, next time and last error. The lease is cleared. Only
    /// a message still leased by `holder` is changed (a worker whose lease ran out and was
    /// taken over records nothing); returns whether it was.
    ///
    /// # Errors
    /// Database failure.
    pub async fn record_attempt(
        &mut self,
        holder: &str,
        m: &OutboxRow,
        attempts: &[OutboxAttemptRow],
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE outbox SET state = $1, channel = $2, channel_index = $3, attempts = $4, \
             next_at = $5, done_at = $6, last_error = $7, lease_holder = NULL, lease_until = NULL, \
             payload = CASE WHEN $1 = 'pending' THEN payload ELSE NULL END \
             WHERE id = $8 AND lease_holder = $9",
        )
        .bind(&m.state)
        .bind(&m.channel)
        .bind(m.channel_index)
        .bind(m.attempts)
        .bind(m.next_at)
        .bind(m.done_at)
        .bind(&m.last_error)
        .bind(&m.id)
        .bind(holder)
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        for a in attempts {
            // `n` continues the message's own count (the caller's `n` is ignored).
            sqlx::query(
                "INSERT INTO outbox_attempts (outbox_id, n, at, channel, outcome, status) \
                 SELECT $1, COALESCE(MAX(n), 0) + 1, $2, $3, $4, $5 FROM outbox_attempts \
                 WHERE outbox_id = $1",
            )
            .bind(&a.outbox_id)
            .bind(a.at)
            .bind(&a.channel)
            .bind(&a.outcome)
            .bind(a.status)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(true)
    }

    /// Marks letters as printed at `at` (they stay in state `letter`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn mark_letters_printed(
        &mut self,
        ids: &[String],
        at: i64,
    ) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query("UPDATE outbox SET done_at = $1 WHERE id = $2 AND state = 'letter'")
                .bind(at)
                .bind(id)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }
}
