//! The retention sweep's bookkeeping (migration 0008): its runs (`sweep_runs`), the lease that
//! lets one instance sweep at a time (`sweep_lease`), and the subject-level clocks
//! (`subjects.closed_at`, `subjects.last_active_at`) that start a whole account's retention
//! period (PIPL Art. 47; policy §4.2).

use super::{values_clause, Store, WriteTx, CHUNK};
use crate::rows::{SubjectStatus, SweepRunRow};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeMap;

const RUN_COLUMNS: &str = "id, started_at, finished_at, dry_run, actor, state, counts, updated_at";

fn run_from(r: &AnyRow) -> Result<SweepRunRow, StoreError> {
    Ok(SweepRunRow {
        id: r.try_get("id")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        dry_run: r.try_get::<i64, _>("dry_run")? != 0,
        actor: r.try_get("actor")?,
        state: r.try_get("state")?,
        counts: r.try_get("counts")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn ids_from(rows: &[AnyRow]) -> Result<Vec<String>, StoreError> {
    rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
}

impl Store {
    /// A sweep run by id.
    ///
    /// # Errors
    /// Database failure.
    pub async fn sweep_run(&self, id: &str) -> Result<Option<SweepRunRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sweep_runs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| run_from(&r)).transpose()
    }

    /// The last `limit` sweep runs, newest first (by `started_at`, then id).
    ///
    /// # Errors
    /// Database failure.
    pub async fn last_sweep_runs(&self, limit: i64) -> Result<Vec<SweepRunRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM sweep_runs ORDER BY started_at DESC, id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(run_from).collect()
    }

    /// Takes or renews the sweep lease for `holder` until `now + ttl_secs` (unix seconds):
    /// `true` when it was free, already `holder`'s, or expired (`until_at < now`); `false` while
    /// another holder's lease runs. One atomic `UPDATE` of the single lease row, so of several
    /// instances sharing one database exactly one wins (on PostgreSQL a concurrent update waits
    /// for the first and re-checks the condition against the row it committed). A Store-level
    /// write, outside any [`WriteTx`]: no audit entry, no facts change.
    ///
    /// # Errors
    /// Database failure.
    pub async fn try_sweep_lease(
        &self,
        holder: &str,
        now: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE sweep_lease SET holder = $1, until_at = $2 \
             WHERE id = 1 AND (holder IS NULL OR holder = $3 OR until_at < $4)",
        )
        .bind(holder)
        .bind(now.saturating_add(ttl_secs))
        .bind(holder)
        .bind(now)
        .execute(self.pool.get()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Releases the sweep lease if `holder` holds it (expired or not); `false` otherwise
    /// (another holder took it over, or it was free).
    ///
    /// # Errors
    /// Database failure.
    pub async fn release_sweep_lease(&self, holder: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE sweep_lease SET holder = NULL, until_at = 0 WHERE id = 1 AND holder = $1",
        )
        .bind(holder)
        .execute(self.pool.get()?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The sweep lease as stored: (holder, until unix seconds); `(None, 0)` when free. A
    /// holder whose `until` has passed no longer holds it.
    ///
    /// # Errors
    /// Database failure.
    pub async fn sweep_lease(&self) -> Result<(Option<String>, i64), StoreError> {
        let r = sqlx::query("SELECT holder, until_at FROM sweep_lease WHERE id = 1")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok((r.try_get("holder")?, r.try_get("until_at")?))
    }

    /// Active subjects whose account was closed at or before `cutoff` (unix seconds; the
    /// caller passes `now − retention period after closure`), by id, at most `limit`, after the
    /// id `after` (keyset) or from the start. Walks the primary key: the pages of one pass
    /// cost one scan of `subjects` together.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subjects_closed_before(
        &self,
        cutoff: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM subjects WHERE status = $1 AND closed_at IS NOT NULL \
             AND closed_at <= $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(SubjectStatus::Active.as_str())
        .bind(cutoff)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        ids_from(&rows)
    }

    /// Active subjects whose last recorded activity was at or before `cutoff` (unix seconds;
    /// `now − inactivity period`), by id, at most `limit`, after the id `after` or from the
    /// start. A subject without any recorded activity (`last_active_at` NULL, e.g. every
    /// subject from before migration 0008) is never listed: a deletion clock does not start on
    /// a guess. Closed accounts are listed too; the caller decides which clock wins.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subjects_inactive_before(
        &self,
        cutoff: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM subjects WHERE status = $1 AND last_active_at IS NOT NULL \
             AND last_active_at <= $2 AND id > $3 ORDER BY id LIMIT $4",
        )
        .bind(SubjectStatus::Active.as_str())
        .bind(cutoff)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        ids_from(&rows)
    }

    /// A subject's clocks: `(closed_at, last_active_at)`, unix seconds; `None` for an unknown
    /// subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_clocks(
        &self,
        subject_id: &str,
    ) -> Result<Option<(Option<i64>, Option<i64>)>, StoreError> {
        let row = sqlx::query("SELECT closed_at, last_active_at FROM subjects WHERE id = $1")
            .bind(subject_id)
            .fetch_optional(self.pool.get()?)
            .await?;
        row.map(|r| Ok((r.try_get("closed_at")?, r.try_get("last_active_at")?)))
            .transpose()
    }
}

impl WriteTx {
    /// Inserts a sweep run, or replaces every column of the run with the same id (progress,
    /// state, counts, finish).
    ///
    /// # Errors
    /// Database failure (a `state` other than `running`, `done`, `failed` violates the
    /// schema's CHECK).
    pub async fn upsert_sweep_run(&mut self, run: &SweepRunRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO sweep_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, \
             finished_at = excluded.finished_at, dry_run = excluded.dry_run, \
             actor = excluded.actor, state = excluded.state, counts = excluded.counts, \
             updated_at = excluded.updated_at"
        ))
        .bind(&run.id)
        .bind(run.started_at)
        .bind(run.finished_at)
        .bind(i64::from(run.dry_run))
        .bind(&run.actor)
        .bind(&run.state)
        .bind(&run.counts)
        .bind(run.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Records that a subject's account was closed at `at` (unix seconds): the clock of the
    /// closed-account retention period. `false` for an unknown subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_closed_at(&mut self, subject_id: &str, at: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE subjects SET closed_at = $1 WHERE id = $2")
            .bind(at)
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Clears a subject's closure (the account was reopened). `false` for an unknown subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn clear_closed_at(&mut self, subject_id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE subjects SET closed_at = NULL WHERE id = $1")
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves subjects' last activity forward: each (subject, at unix seconds) sets
    /// `last_active_at` to `at` unless it is already later (the maximum is kept, also among
    /// repeats of a subject in `touches`). Unknown subjects are ignored. Returns the subjects
    /// changed. Bulk: one `UPDATE … FROM (VALUES …)` per 400 subjects.
    ///
    /// # Errors
    /// Database failure.
    pub async fn touch_last_active(
        &mut self,
        touches: &[(String, i64)],
    ) -> Result<u64, StoreError> {
        let mut latest: BTreeMap<&str, i64> = BTreeMap::new();
        for (s, at) in touches {
            let e = latest.entry(s.as_str()).or_insert(*at);
            *e = (*e).max(*at);
        }
        let latest: Vec<(&str, i64)> = latest.into_iter().collect();
        let mut n = 0;
        for chunk in latest.chunks(CHUNK) {
            let sql = format!(
                "UPDATE subjects SET last_active_at = v.column2 FROM (VALUES {}) AS v \
                 WHERE subjects.id = v.column1 \
                 AND (subjects.last_active_at IS NULL OR subjects.last_active_at < v.column2)",
                values_clause(self.backend, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (s, at) in chunk {
                q = q.bind(*s).bind(*at);
            }
            n += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(n)
    }
}
