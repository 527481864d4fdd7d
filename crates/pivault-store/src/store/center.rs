//! The privacy center's tables (migration 0012): subject sessions opened by a verified sign-in,
//! and the cookie-choice ledger (policy §III, §7.2). Hashes, opaque ids and choices only: no PI
//! value is stored here.

use super::{Store, WriteTx};
use crate::rows::{CenterSessionRow, CookieChoiceRow};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

fn session_from(r: &AnyRow) -> Result<CenterSessionRow, StoreError> {
    Ok(CenterSessionRow {
        signin_id: r.try_get("signin_id")?,
        subject_id: r.try_get("subject_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        ended_at: r.try_get("ended_at")?,
        acting_as: r.try_get("acting_as")?,
    })
}

fn choice_from(r: &AnyRow) -> Result<CookieChoiceRow, StoreError> {
    Ok(CookieChoiceRow {
        seq: r.try_get("seq")?,
        visitor_id: r.try_get("visitor_id")?,
        subject_id: r.try_get("subject_id")?,
        category: r.try_get("category")?,
        granted: r.try_get::<i64, _>("granted")? != 0,
        method: r.try_get("method")?,
        policy_version: r.try_get("policy_version")?,
        at: r.try_get("at")?,
    })
}

const CHOICE_COLUMNS: &str =
    "seq, visitor_id, subject_id, category, granted, method, policy_version, at";

impl Store {
    /// The session whose token hashes to `token_hash`, if any (ended or not).
    ///
    /// # Errors
    /// Database failure.
    pub async fn center_session(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<CenterSessionRow>, StoreError> {
        let row = sqlx::query(
            "SELECT signin_id, subject_id, created_at, expires_at, ended_at, acting_as \
             FROM center_sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.as_ref().map(session_from).transpose()
    }

    /// Every cookie choice recorded under `visitor_id`, or under `subject_id` when given, in
    /// the order they were made (oldest first).
    ///
    /// # Errors
    /// Database failure.
    pub async fn cookie_choices(
        &self,
        visitor_id: &str,
        subject_id: Option<&str>,
    ) -> Result<Vec<CookieChoiceRow>, StoreError> {
        let rows = match subject_id {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {CHOICE_COLUMNS} FROM cookie_choices \
                     WHERE visitor_id = $1 OR subject_id = $2 ORDER BY at, seq"
                ))
                .bind(visitor_id)
                .bind(s)
                .fetch_all(self.pool.get()?)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {CHOICE_COLUMNS} FROM cookie_choices \
                     WHERE visitor_id = $1 ORDER BY at, seq"
                ))
                .bind(visitor_id)
                .fetch_all(self.pool.get()?)
                .await?
            }
        };
        rows.iter().map(choice_from).collect()
    }

    /// A subject's most recent PI releases (reads, disclosures, exports), newest first, at
    /// most `limit`: the access history the privacy center shows (PIPL Art. 45).
    ///
    /// # Errors
    /// Database failure.
    pub async fn releases_of_subject(
        &self,
        subject_id: &str,
        limit: i64,
    ) -> Result<Vec<super::ReleaseRow>, StoreError> {
        let rows = sqlx::query(super::incidents::RELEASES_OF_SUBJECT)
            .bind(subject_id)
            .bind(limit)
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(super::incidents::release_from).collect()
    }
}

impl WriteTx {
    /// Opens a session for the verified sign-in `signin_id`, acting as `acting_as` (`self` or
    /// `guardian`). `false` when that sign-in already opened one (a code opens one session
    /// only).
    ///
    /// # Errors
    /// Database failure.
    pub async fn insert_center_session(
        &mut self,
        token_hash: &[u8],
        signin_id: &str,
        subject_id: &str,
        (created_at, expires_at): (i64, i64),
        acting_as: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO center_sessions \
             (token_hash, signin_id, subject_id, created_at, expires_at, acting_as) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (signin_id) DO NOTHING",
        )
        .bind(token_hash)
        .bind(signin_id)
        .bind(subject_id)
        .bind(created_at)
        .bind(expires_at)
        .bind(acting_as)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends the session (sign-out). `false` when there is none or it had ended.
    ///
    /// # Errors
    /// Database failure.
    pub async fn end_center_session(
        &mut self,
        token_hash: &[u8],
        at: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE center_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(token_hash)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends every open session of a subject (erasure, lock). Returns how many.
    ///
    /// # Errors
    /// Database failure.
    pub async fn end_center_sessions_of(
        &mut self,
        subject_id: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE center_sessions SET ended_at = $1 WHERE subject_id = $2 AND ended_at IS NULL",
        )
        .bind(at)
        .bind(subject_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected())
    }

    /// Appends one choice per `(category, granted)` under `visitor_id` (and `subject_id` when
    /// signed in), with the next sequence numbers of that visitor.
    ///
    /// # Errors
    /// Database failure (a category or method outside the table's CHECK lists).
    pub async fn append_cookie_choices(
        &mut self,
        visitor_id: &str,
        subject_id: Option<&str>,
        choices: &[(&str, bool)],
        method: &str,
        policy_version: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let next: i64 = sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) AS m FROM cookie_choices WHERE visitor_id = $1",
        )
        .bind(visitor_id)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("m")?;
        for (i, (category, granted)) in choices.iter().enumerate() {
            sqlx::query(
                "INSERT INTO cookie_choices (seq, visitor_id, subject_id, category, granted, method, policy_version, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(next + 1 + i as i64)
            .bind(visitor_id)
            .bind(subject_id)
            .bind(*category)
            .bind(i64::from(*granted))
            .bind(method)
            .bind(policy_version)
            .bind(at)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Links a visitor's choices made before sign-in to the subject (policy §III: the choices
    /// follow the account). Returns how many rows were linked.
    ///
    /// # Errors
    /// Database failure.
    pub async fn link_cookie_visitor(
        &mut self,
        visitor_id: &str,
        subject_id: &str,
    ) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE cookie_choices SET subject_id = $1 WHERE visitor_id = $2 AND subject_id IS NULL",
        )
        .bind(subject_id)
        .bind(visitor_id)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected())
    }

    /// Unlinks every cookie choice from `subject_id` (an erasure, PIPL Art. 47): the choices
    /// stay under their random visitor ids, which name nobody once the link is gone. Returns
    /// the rows unlinked.
    ///
    /// # Errors
    /// Database failure.
    pub async fn unlink_cookie_subject(&mut self, subject_id: &str) -> Result<u64, StoreError> {
        let r = sqlx::query("UPDATE cookie_choices SET subject_id = NULL WHERE subject_id = $1")
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected())
    }
}
