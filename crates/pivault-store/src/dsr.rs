//! Persistence of data subject requests: the request rows, their one-time codes and the
//! erasure notices to recipients (PIPL Art. 44–50; policy §VII, §XI).

use crate::rows::{DsrCodeRow, DsrFilter, DsrRow};
use crate::store::{ph, Backend};
use crate::{Store, StoreError, WriteTx};
use pivault_domain::dsr::DsrState;
use sqlx::any::AnyRow;
use sqlx::Row;

/// Every column but `result` ([`dsr_from`] reads them by name).
const COLS: &str = "id, subject_id, kind, state, reason, failed_step, channel, jurisdiction, \
    received_at, due_at, extended_due_at, duplicate_of, token_hash, steps_done, step_results, \
    params, sealed_params, result_key_id, receipt, updated_at, completed_at, identity_digest";

/// `('a', 'b', …)`: an SQL list of states (their stored names, [`DsrState::as_str`]).
fn state_list(states: impl IntoIterator<Item = DsrState>) -> String {
    let names: Vec<String> = states
        .into_iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

/// States whose deadline is not running: the terminal ones (nothing is due any more) and
/// those still waiting for the requester to prove who they are (policy §7.2: a request that was
/// never verified is not overdue; it expires instead).
fn closed() -> String {
    state_list(DsrState::ALL.into_iter().filter(|s| {
        s.is_terminal() || matches!(s, DsrState::Received | DsrState::IdentityUnverified)
    }))
}

fn dsr_from(r: &AnyRow) -> Result<DsrRow, StoreError> {
    Ok(DsrRow {
        id: r.try_get("id")?,
        subject_id: r.try_get("subject_id")?,
        kind: r.try_get("kind")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
        failed_step: r.try_get("failed_step")?,
        channel: r.try_get("channel")?,
        jurisdiction: r.try_get("jurisdiction")?,
        received_at: r.try_get("received_at")?,
        due_at: r.try_get("due_at")?,
        extended_due_at: r.try_get("extended_due_at")?,
        duplicate_of: r.try_get("duplicate_of")?,
        token_hash: r.try_get("token_hash")?,
        steps_done: r.try_get("steps_done")?,
        step_results: r.try_get("step_results")?,
        params: r.try_get("params")?,
        sealed_params: r.try_get("sealed_params")?,
        result_key_id: r.try_get("result_key_id")?,
        receipt: r.try_get("receipt")?,
        updated_at: r.try_get("updated_at")?,
        completed_at: r.try_get("completed_at")?,
        identity_digest: r.try_get("identity_digest")?,
    })
}

fn code_from(r: &AnyRow) -> Result<DsrCodeRow, StoreError> {
    Ok(DsrCodeRow {
        request_id: r.try_get("request_id")?,
        digest: r.try_get("digest")?,
        expires_at: r.try_get("expires_at")?,
        attempts_left: r.try_get("attempts_left")?,
        sends: r.try_get("sends")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// The original a request duplicates ([`Store::dsr_first_since`]).
fn first_since_sql() -> String {
    format!(
        "SELECT {COLS} FROM dsr_requests WHERE subject_id = $1 AND kind = $2 AND params = $3 \
         AND received_at >= $4 AND id <> $5 \
         AND state IN {} \
         AND duplicate_of IS NULL ORDER BY received_at, id LIMIT 1",
        state_list([
            DsrState::Verified,
            DsrState::InProgress,
            DsrState::Completed,
            DsrState::Failed,
        ])
    )
}

/// What erasure must have removed ([`Store::erasure_leftovers`]); binds the subject 3 times.
const LEFTOVERS: &str = "SELECT \
     (SELECT COUNT(*) FROM fields WHERE subject_id = $1 AND restricted_until IS NULL) AS fields, \
     (SELECT COUNT(*) FROM subject_keys WHERE subject_id = $2 AND scope = 'primary') AS primary_keys, \
     (SELECT COUNT(*) FROM blind_index WHERE subject_id = $3 AND kind <> 'erased_account_id') \
     AS index_entries";

/// `(fields, primary_keys, index_entries)` of a [`LEFTOVERS`] row.
fn leftovers_from(r: &AnyRow) -> Result<(i64, i64, i64), StoreError> {
    Ok((
        r.try_get("fields")?,
        r.try_get("primary_keys")?,
        r.try_get("index_entries")?,
    ))
}

/// Open requests counted per jurisdiction by [`Store::dsr_due_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCount {
    /// Jurisdiction key.
    pub jurisdiction: String,
    /// Open requests whose (extended) due date has passed.
    pub overdue: i64,
    /// Open requests due within the near-due window but not yet overdue.
    pub near_due: i64,
}

const CODES_SENT_SINCE: &str = "SELECT CAST(COALESCE(SUM(c.sends), 0) AS BIGINT) AS sends \
     FROM dsr_codes c JOIN dsr_requests r ON r.id = c.request_id \
     WHERE r.subject_id = $1 AND c.sent_at >= $2";

impl Store {
    /// One request, without its result.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr(&self, id: &str) -> Result<Option<DsrRow>, StoreError> {
        sqlx::query(&format!("SELECT {COLS} FROM dsr_requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool.get()?)
            .await?
            .as_ref()
            .map(dsr_from)
            .transpose()
    }

    /// A request's sealed result and the key id that sealed it.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_result(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let row = sqlx::query(
            "SELECT result_key_id, result FROM dsr_requests WHERE id = $1 AND result IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| Ok((r.try_get("result_key_id")?, r.try_get("result")?)))
            .transpose()
    }

    /// Requests matching `f`, oldest due first (extended due dates count).
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_list(&self, f: &DsrFilter) -> Result<Vec<DsrRow>, StoreError> {
        let b = self.backend();
        let mut sql = format!("SELECT {COLS} FROM dsr_requests WHERE 1 = 1");
        let mut n = 0;
        let mut next = |b: Backend| {
            n += 1;
            ph(b, n)
        };
        if f.state.is_some() {
            sql.push_str(&format!(" AND state = {}", next(b)));
        }
        if f.kind.is_some() {
            sql.push_str(&format!(" AND kind = {}", next(b)));
        }
        if f.subject_id.is_some() {
            sql.push_str(&format!(" AND subject_id = {}", next(b)));
        }
        if f.due_before.is_some() {
            sql.push_str(&format!(
                " AND state NOT IN {} AND COALESCE(extended_due_at, due_at) < {}",
                closed(),
                next(b)
            ));
        }
        sql.push_str(&format!(
            " ORDER BY COALESCE(extended_due_at, due_at), id LIMIT {}",
            next(b)
        ));
        let mut q = sqlx::query(&sql);
        if let Some(s) = &f.state {
            q = q.bind(s);
        }
        if let Some(k) = &f.kind {
            q = q.bind(k);
        }
        if let Some(s) = &f.subject_id {
            q = q.bind(s);
        }
        if let Some(d) = f.due_before {
            q = q.bind(d);
        }
        q = q.bind(f.limit.clamp(1, 10_000));
        q.fetch_all(self.pool.get()?)
            .await?
            .iter()
            .map(dsr_from)
            .collect()
    }

    /// The first request of `subject_id` and `kind`, with the same non-PI parameters, received
    /// at or after `since`, that the subject has verified (verified, in progress, completed or
    /// failed) and that is not itself a duplicate: the one a new request duplicates. An
    /// unverified request is never an original, so nobody can pre-empt a person's request by
    /// filing one under their address.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_first_since(
        &self,
        subject_id: &str,
        kind: &str,
        params: &str,
        since: i64,
        except: &str,
    ) -> Result<Option<DsrRow>, StoreError> {
        sqlx::query(&first_since_sql())
            .bind(subject_id)
            .bind(kind)
            .bind(params)
            .bind(since)
            .bind(except)
            .fetch_optional(self.pool.get()?)
            .await?
            .as_ref()
            .map(dsr_from)
            .transpose()
    }

    /// One-time codes sent for `subject_id`'s requests since `since` (unix seconds): the
    /// per-person daily limit (policy §7.2).
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_codes_sent_since(
        &self,
        subject_id: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(CODES_SENT_SINCE)
            .bind(subject_id)
            .bind(since)
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("sends")?.unwrap_or(0))
    }

    /// The live one-time code of a request.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_code(&self, request_id: &str) -> Result<Option<DsrCodeRow>, StoreError> {
        sqlx::query(
            "SELECT request_id, digest, expires_at, attempts_left, sends, sent_at \
             FROM dsr_codes WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(self.pool.get()?)
        .await?
        .as_ref()
        .map(code_from)
        .transpose()
    }

    /// Requests per stored state (every state present, open or closed), by state name.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_state_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM dsr_requests GROUP BY state ORDER BY state",
        )
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// Open requests per jurisdiction: overdue at `now`, and near due (due before
    /// `near_until`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_due_counts(
        &self,
        now: i64,
        near_until: i64,
    ) -> Result<Vec<DueCount>, StoreError> {
        let closed = closed();
        let rows = sqlx::query(&format!(
            "SELECT jurisdiction, \
             SUM(CASE WHEN COALESCE(extended_due_at, due_at) < $1 THEN 1 ELSE 0 END) AS overdue, \
             SUM(CASE WHEN COALESCE(extended_due_at, due_at) >= $2 AND COALESCE(extended_due_at, due_at) < $3 THEN 1 ELSE 0 END) AS near_due \
             FROM dsr_requests WHERE state NOT IN {closed} GROUP BY jurisdiction ORDER BY jurisdiction"
        ))
        .bind(now)
        .bind(now)
        .bind(near_until)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DueCount {
                    jurisdiction: r.try_get("jurisdiction")?,
                    overdue: r.try_get::<Option<i64>, _>("overdue")?.unwrap_or(0),
                    near_due: r.try_get::<Option<i64>, _>("near_due")?.unwrap_or(0),
                })
            })
            .collect()
    }

    /// What erasure must have removed and is still there: (unrestricted fields, primary DEKs,
    /// blind-index entries) of `subject_id`. All zero for a completely erased subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn erasure_leftovers(&self, subject_id: &str) -> Result<(i64, i64, i64), StoreError> {
        let row = sqlx::query(LEFTOVERS)
            .bind(subject_id)
            .bind(subject_id)
            .bind(subject_id)
            .fetch_one(self.pool.get()?)
            .await?;
        leftovers_from(&row)
    }
}

impl WriteTx {
    /// [`Store::dsr_codes_sent_since`] read inside this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_codes_sent_since(
        &mut self,
        subject_id: &str,
        since: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(CODES_SENT_SINCE)
            .bind(subject_id)
            .bind(since)
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("sends")?.unwrap_or(0))
    }

    /// Inserts a request (its `result` starts empty).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_dsr(&mut self, d: &DsrRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO dsr_requests ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ))
        .bind(&d.id)
        .bind(&d.subject_id)
        .bind(&d.kind)
        .bind(&d.state)
        .bind(&d.reason)
        .bind(&d.failed_step)
        .bind(&d.channel)
        .bind(&d.jurisdiction)
        .bind(d.received_at)
        .bind(d.due_at)
        .bind(d.extended_due_at)
        .bind(&d.duplicate_of)
        .bind(d.token_hash.clone())
        .bind(&d.steps_done)
        .bind(&d.step_results)
        .bind(&d.params)
        .bind(d.sealed_params.clone())
        .bind(&d.result_key_id)
        .bind(&d.receipt)
        .bind(d.updated_at)
        .bind(d.completed_at)
        .bind(d.identity_digest.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Open requests waiting for verification that were filed under `identity_digest` with
    /// the same kind, parameters, jurisdiction and channel, received at or after `since`:
    /// the ones an identical new filing is folded into. Read under the write lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_unverified_same(
        &mut self,
        identity_digest: &[u8],
        key: (&str, &str, &str, &str),
        since: i64,
    ) -> Result<Vec<DsrRow>, StoreError> {
        let (kind, params, jurisdiction, channel) = key;
        sqlx::query(&format!(
            "SELECT {COLS} FROM dsr_requests WHERE identity_digest = $1 AND state = $2 \
             AND kind = $3 AND params = $4 AND jurisdiction = $5 AND channel = $6 \
             AND received_at >= $7 ORDER BY received_at, id"
        ))
        .bind(identity_digest.to_vec())
        .bind(DsrState::IdentityUnverified.as_str())
        .bind(kind)
        .bind(params)
        .bind(jurisdiction)
        .bind(channel)
        .bind(since)
        .fetch_all(&mut *self.tx)
        .await?
        .iter()
        .map(dsr_from)
        .collect()
    }

    /// Up to `limit` requests still waiting for verification that were received before
    /// `before` (unix seconds): the ones to expire. Read under the write lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_unverified_before(
        &mut self,
        before: i64,
        limit: i64,
    ) -> Result<Vec<DsrRow>, StoreError> {
        sqlx::query(&format!(
            "SELECT {COLS} FROM dsr_requests WHERE state IN {} AND received_at < $1 \
             ORDER BY received_at, id LIMIT $2",
            state_list([DsrState::IdentityUnverified])
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?
        .iter()
        .map(dsr_from)
        .collect()
    }

    /// Sets a request's token hash (a filing folded into it gets a fresh token).
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_dsr_token(&mut self, id: &str, token_hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query("UPDATE dsr_requests SET token_hash = $1 WHERE id = $2")
            .bind(token_hash.to_vec())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Re-reads a request under the write lock (another instance may have moved it).
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr(&mut self, id: &str) -> Result<Option<DsrRow>, StoreError> {
        sqlx::query(&format!("SELECT {COLS} FROM dsr_requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .as_ref()
            .map(dsr_from)
            .transpose()
    }

    /// Writes a request's mutable columns (state, reason, failed step, extension, duplicate
    /// link, steps, receipt, times). `sealed_params` is cleared when `d.sealed_params` is None.
    ///
    /// # Errors
    /// Database failure.
    pub async fn update_dsr(&mut self, d: &DsrRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE dsr_requests SET state = $1, reason = $2, failed_step = $3, \
             extended_due_at = $4, duplicate_of = $5, steps_done = $6, step_results = $7, \
             sealed_params = $8, receipt = $9, updated_at = $10, completed_at = $11, \
             identity_digest = $12 WHERE id = $13",
        )
        .bind(&d.state)
        .bind(&d.reason)
        .bind(&d.failed_step)
        .bind(d.extended_due_at)
        .bind(&d.duplicate_of)
        .bind(&d.steps_done)
        .bind(&d.step_results)
        .bind(d.sealed_params.clone())
        .bind(&d.receipt)
        .bind(d.updated_at)
        .bind(d.completed_at)
        .bind(d.identity_digest.clone())
        .bind(&d.id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Stores a request's sealed result.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_dsr_result(
        &mut self,
        id: &str,
        key_id: &str,
        sealed: &[u8],
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE dsr_requests SET result_key_id = $1, result = $2 WHERE id = $3")
            .bind(key_id)
            .bind(sealed.to_vec())
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Drops the sealed results and PI parameters of every request of `subject_id` (erasure:
    /// the DEK that sealed them is being destroyed anyway; this leaves no ciphertext behind).
    ///
    /// # Errors
    /// Database failure.
    pub async fn clear_dsr_payloads(&mut self, subject_id: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE dsr_requests SET result = NULL, result_key_id = NULL, sealed_params = NULL, \
             identity_digest = NULL WHERE subject_id = $1 \
             AND (result IS NOT NULL OR sealed_params IS NOT NULL OR identity_digest IS NOT NULL)",
        )
        .bind(subject_id)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    /// Replaces the live code of a request.
    ///
    /// # Errors
    /// Database failure.
    pub async fn put_dsr_code(&mut self, c: &DsrCodeRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dsr_codes WHERE request_id = $1")
            .bind(&c.request_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(
            "INSERT INTO dsr_codes (request_id, digest, expires_at, attempts_left, sends, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.request_id)
        .bind(c.digest.clone())
        .bind(c.expires_at)
        .bind(c.attempts_left)
        .bind(c.sends)
        .bind(c.sent_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The live code of a request, read under the write lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_code(&mut self, request_id: &str) -> Result<Option<DsrCodeRow>, StoreError> {
        sqlx::query(
            "SELECT request_id, digest, expires_at, attempts_left, sends, sent_at \
             FROM dsr_codes WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .as_ref()
        .map(code_from)
        .transpose()
    }

    /// Sets the attempts left of a code; a burnt or used code has its digest zeroed so it can
    /// never match again while the send counter is kept.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_code_attempts(
        &mut self,
        request_id: &str,
        attempts_left: i64,
        burn: bool,
    ) -> Result<(), StoreError> {
        let sql = if burn {
            "UPDATE dsr_codes SET attempts_left = $1, digest = $2 WHERE request_id = $3"
        } else {
            "UPDATE dsr_codes SET attempts_left = $1 WHERE request_id = $3 AND $2 IS NOT NULL"
        };
        let q = sqlx::query(sql).bind(attempts_left);
        let q = if burn {
            q.bind(vec![0u8; 32])
        } else {
            q.bind(Vec::<u8>::new())
        };
        q.bind(request_id).execute(&mut *self.tx).await?;
        Ok(())
    }

    /// Records that `recipient` was told to delete `categories` of the subject (idempotent per
    /// request and recipient).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_erasure_notice(
        &mut self,
        request_id: &str,
        recipient: &str,
        subject_id: &str,
        categories: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "INSERT INTO erasure_notices (request_id, recipient, subject_id, categories, at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id, recipient) DO NOTHING",
        )
        .bind(request_id)
        .bind(recipient)
        .bind(subject_id)
        .bind(categories)
        .bind(at)
        .execute(&mut *self.tx)
        .await?
        .rows_affected())
    }

    /// [`Store::dsr_first_since`], read through this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_first_since(
        &mut self,
        subject_id: &str,
        kind: &str,
        params: &str,
        since: i64,
        except: &str,
    ) -> Result<Option<DsrRow>, StoreError> {
        sqlx::query(&first_since_sql())
            .bind(subject_id)
            .bind(kind)
            .bind(params)
            .bind(since)
            .bind(except)
            .fetch_optional(&mut *self.tx)
            .await?
            .as_ref()
            .map(dsr_from)
            .transpose()
    }

    /// [`Store::erasure_leftovers`], read through this transaction: sees this transaction's
    /// own deletions.
    ///
    /// # Errors
    /// Database failure.
    pub async fn erasure_leftovers(
        &mut self,
        subject_id: &str,
    ) -> Result<(i64, i64, i64), StoreError> {
        let row = sqlx::query(LEFTOVERS)
            .bind(subject_id)
            .bind(subject_id)
            .bind(subject_id)
            .fetch_one(&mut *self.tx)
            .await?;
        leftovers_from(&row)
    }
}
