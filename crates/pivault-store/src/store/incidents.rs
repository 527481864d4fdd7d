//! Incidents, their affected subjects, public announcements, security cases and misuse locks,
//! and the service-cessation row (migration 0010; policy §8.3, §8.4, §8.6, §8.7, PIPL Art. 57).
//! Ids, keys and counts only: no PI value is stored in these tables.

use std::collections::BTreeMap;

use super::{values_clause, Store, WriteTx, CHUNK};
use crate::rows::{
    AnnouncementRow, CessationRow, IncidentRow, IncidentSubjectRow, SecurityCaseRow,
};
use crate::StoreError;
use sqlx::any::AnyRow;
use sqlx::Row;

const INCIDENT_COLUMNS: &str = "id, state, severity, what_happened, occurred_at, discovered_at, \
     categories, systems, cause, possible_impact, measures_taken, measures_planned, self_help, \
     remedies, scope, affected, opened_by, opened_at, reported_at, closed_at, timeline, updated_at";

const ANNOUNCEMENT_COLUMNS: &str =
    "id, kind, cause, published_at, title_zh, body_zh, title_en, body_en";

const CASE_COLUMNS: &str =
    "id, subject_id, source, state, opened_at, history, released_by, released_at";

fn incident_from(r: &AnyRow) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: r.try_get("id")?,
        state: r.try_get("state")?,
        severity: r.try_get("severity")?,
        what_happened: r.try_get("what_happened")?,
        occurred_at: r.try_get("occurred_at")?,
        discovered_at: r.try_get("discovered_at")?,
        categories: r.try_get("categories")?,
        systems: r.try_get("systems")?,
        cause: r.try_get("cause")?,
        possible_impact: r.try_get("possible_impact")?,
        measures_taken: r.try_get("measures_taken")?,
        measures_planned: r.try_get("measures_planned")?,
        self_help: r.try_get("self_help")?,
        remedies: r.try_get("remedies")?,
        scope: r.try_get("scope")?,
        affected: r.try_get("affected")?,
        opened_by: r.try_get("opened_by")?,
        opened_at: r.try_get("opened_at")?,
        reported_at: r.try_get("reported_at")?,
        closed_at: r.try_get("closed_at")?,
        timeline: r.try_get("timeline")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn announcement_from(r: &AnyRow) -> Result<AnnouncementRow, StoreError> {
    Ok(AnnouncementRow {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        cause: r.try_get("cause")?,
        published_at: r.try_get("published_at")?,
        title_zh: r.try_get("title_zh")?,
        body_zh: r.try_get("body_zh")?,
        title_en: r.try_get("title_en")?,
        body_en: r.try_get("body_en")?,
    })
}

fn case_from(r: &AnyRow) -> Result<SecurityCaseRow, StoreError> {
    Ok(SecurityCaseRow {
        id: r.try_get("id")?,
        subject_id: r.try_get("subject_id")?,
        source: r.try_get("source")?,
        state: r.try_get("state")?,
        opened_at: r.try_get("opened_at")?,
        history: r.try_get("history")?,
        released_by: r.try_get("released_by")?,
        released_at: r.try_get("released_at")?,
    })
}

fn cessation_from(r: &AnyRow) -> Result<CessationRow, StoreError> {
    Ok(CessationRow {
        state: r.try_get("state")?,
        cessation_id: r.try_get("cessation_id")?,
        started_by: r.try_get("started_by")?,
        started_at: r.try_get("started_at")?,
        effective_at: r.try_get("effective_at")?,
        progress: r.try_get("progress")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// One audit entry that released a subject's PI (a read or a provision): who, when, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    /// Chain position.
    pub seq: i64,
    /// Unix seconds.
    pub at: i64,
    /// Principal name.
    pub actor: String,
    /// `fields.read`, `disclosure.share`, …
    pub action: String,
    /// The subject.
    pub subject_id: String,
    /// Purpose.
    pub purpose: Option<String>,
    /// Category keys released, comma-separated.
    pub categories: String,
    /// The entry's detail (`key=<id> …`).
    pub detail: Option<String>,
}

impl Store {
    /// One incident.
    ///
    /// # Errors
    /// Database failure.
    pub async fn incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| incident_from(&r)).transpose()
    }

    /// Every incident, newest first.
    ///
    /// # Errors
    /// Database failure.
    pub async fn incidents(&self) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY opened_at DESC, id"
        ))
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(incident_from).collect()
    }

    /// Audit entries in `[from, to]` (unix seconds) that released PI (`outcome = 'allow'`,
    /// action `fields.read` or `disclosure.*`), in chain order, after `after_seq`, at most
    /// `limit`. The caller filters by key and principal: the key id is in `detail`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn releases_between(
        &self,
        from: i64,
        to: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject_id, purpose, categories, detail FROM audit_log \
             WHERE seq > $1 AND at >= $2 AND at <= $3 AND outcome = 'allow' \
             AND subject_id IS NOT NULL \
             AND (action = 'fields.read' OR action LIKE 'disclosure.%') \
             ORDER BY seq LIMIT $4",
        )
        .bind(after_seq)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(release_from).collect()
    }

    /// Subjects holding a field of any of `categories` (a compromised store), with the
    /// categories each holds, after subject `after`, at most `limit` subjects' rows.
    /// Returns `(subject_id, category)` pairs in subject order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn holders_of(
        &self,
        categories: &[String],
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        let list = values_clause(self.backend, 1, categories.len());
        let n = categories.len();
        let sql = format!(
            "SELECT DISTINCT subject_id, category FROM fields WHERE category IN {list} \
             AND subject_id > {} ORDER BY subject_id, category LIMIT {}",
            super::ph(self.backend, n + 1),
            super::ph(self.backend, n + 2),
        );
        let mut q = sqlx::query(&sql);
        for c in categories {
            q = q.bind(c);
        }
        let rows = q
            .bind(after)
            .bind(limit)
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("subject_id")?, r.try_get("category")?)))
            .collect()
    }

    /// The categories each of `ids` holds a field of (subjects holding none are absent).
    ///
    /// # Errors
    /// Database failure.
    pub async fn categories_held(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, std::collections::BTreeSet<String>>, StoreError> {
        let mut out: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT DISTINCT subject_id, category FROM fields WHERE subject_id IN {}",
                values_clause(self.backend, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.entry(r.try_get("subject_id")?)
                    .or_default()
                    .insert(r.try_get("category")?);
            }
        }
        Ok(out)
    }

    /// The affected categories of one subject of an incident (comma-separated), if affected.
    ///
    /// # Errors
    /// Database failure.
    pub async fn incident_subject_categories(
        &self,
        incident: &str,
        subject: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT categories FROM incident_subjects WHERE incident_id = $1 AND subject_id = $2",
        )
        .bind(incident)
        .bind(subject)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| Ok(r.try_get("categories")?)).transpose()
    }

    /// Home regions of `ids` (`None` where unset or unknown).
    ///
    /// # Errors
    /// Database failure.
    pub async fn home_regions(
        &self,
        ids: &[String],
    ) -> Result<BTreeMap<String, Option<String>>, StoreError> {
        let mut out = BTreeMap::new();
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id, home_region FROM subjects WHERE id IN {}",
                values_clause(self.backend, 1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(self.pool.get()?).await? {
                out.insert(r.try_get("id")?, r.try_get("home_region")?);
            }
        }
        Ok(out)
    }

    /// The subjects an incident affects, after `after`, at most `limit`, in id order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn incident_subjects(
        &self,
        incident: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<IncidentSubjectRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT incident_id, subject_id, categories, region FROM incident_subjects \
             WHERE incident_id = $1 AND subject_id > $2 ORDER BY subject_id LIMIT $3",
        )
        .bind(incident)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentSubjectRow {
                    incident_id: r.try_get("incident_id")?,
                    subject_id: r.try_get("subject_id")?,
                    categories: r.try_get("categories")?,
                    region: r.try_get("region")?,
                })
            })
            .collect()
    }

    /// An incident's affected subjects with their language on record, after `after`, at most
    /// `limit`, in id order (erased subjects are left out: nobody is left to reach).
    ///
    /// # Errors
    /// Database failure.
    pub async fn incident_targets(
        &self,
        incident: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.subject_id, s.lang FROM incident_subjects i JOIN subjects s \
             ON s.id = i.subject_id WHERE i.incident_id = $1 AND i.subject_id > $2 \
             AND s.status = 'active' ORDER BY i.subject_id LIMIT $3",
        )
        .bind(incident)
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("subject_id")?, r.try_get("lang")?)))
            .collect()
    }

    /// Every published announcement, newest first.
    ///
    /// # Errors
    /// Database failure.
    pub async fn announcements(&self) -> Result<Vec<AnnouncementRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ANNOUNCEMENT_COLUMNS} FROM announcements ORDER BY published_at DESC, id"
        ))
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(announcement_from).collect()
    }

    /// One security case.
    ///
    /// # Errors
    /// Database failure.
    pub async fn security_case(&self, id: &str) -> Result<Option<SecurityCaseRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM security_cases WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool.get()?)
        .await?;
        row.map(|r| case_from(&r)).transpose()
    }

    /// Security cases, newest first; with `open_only`, those still locking a subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn security_cases(
        &self,
        open_only: bool,
    ) -> Result<Vec<SecurityCaseRow>, StoreError> {
        let filter = if open_only {
            " WHERE state = 'open'"
        } else {
            ""
        };
        let rows = sqlx::query(&format!(
            "SELECT {CASE_COLUMNS} FROM security_cases{filter} ORDER BY opened_at DESC, id"
        ))
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter().map(case_from).collect()
    }

    /// The cessation row.
    ///
    /// # Errors
    /// Database failure.
    pub async fn cessation(&self) -> Result<CessationRow, StoreError> {
        let r = sqlx::query(
            "SELECT state, cessation_id, started_by, started_at, effective_at, progress, updated_at \
             FROM cessation WHERE id = 1",
        )
        .fetch_one(self.pool.get()?)
        .await?;
        cessation_from(&r)
    }

    /// How many subjects are active (not erased).
    ///
    /// # Errors
    /// Database failure.
    pub async fn count_active_subjects(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subjects WHERE status = 'active'")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Active subjects after `after` that have a field of any of `categories` (the contact
    /// categories): whom a cessation notice can reach. At most `limit`, in id order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn active_subjects_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, Option<String>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, lang FROM subjects WHERE status = 'active' AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.pool.get()?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("lang")?)))
            .collect()
    }
}

pub(super) const RELEASES_OF_SUBJECT: &str =
    "SELECT seq, at, actor, action, subject_id, purpose, categories, detail FROM audit_log \
     WHERE subject_id = $1 AND outcome = 'allow' \
     AND (action = 'fields.read' OR action LIKE 'disclosure.%' OR action LIKE '%.export%') \
     ORDER BY seq DESC LIMIT $2";

pub(super) fn release_from(r: &AnyRow) -> Result<ReleaseRow, StoreError> {
    Ok(ReleaseRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject_id: r.try_get("subject_id")?,
        purpose: r.try_get("purpose")?,
        categories: r.try_get("categories")?,
        detail: r.try_get("detail")?,
    })
}

impl WriteTx {
    /// A subject's most recent PI releases, read inside this transaction (newest first).
    ///
    /// # Errors
    /// Database failure.
    pub async fn releases_of_subject(
        &mut self,
        subject_id: &str,
        limit: i64,
    ) -> Result<Vec<ReleaseRow>, StoreError> {
        let rows = sqlx::query(RELEASES_OF_SUBJECT)
            .bind(subject_id)
            .bind(limit)
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(release_from).collect()
    }

    /// The open security case locking the subject, if any (policy §8.7).
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_lock_case(
        &mut self,
        subject_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT lock_case FROM subjects WHERE id = $1")
            .bind(subject_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.and_then(|r| r.try_get("lock_case").ok()).flatten())
    }

    /// Records the subject's language for notices (`None`: back to the default). `false` for
    /// an unknown subject.
    ///
    /// # Errors
    /// Database failure.
    pub async fn set_subject_lang(
        &mut self,
        subject_id: &str,
        lang: Option<&str>,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE subjects SET lang = $1 WHERE id = $2")
            .bind(lang)
            .bind(subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The subject's language on record (`None` = zh-CN or unknown subject).
    ///
    /// # Errors
    /// Database failure.
    pub async fn subject_lang(&mut self, subject_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT lang FROM subjects WHERE id = $1")
            .bind(subject_id)
            .fetch_optional(&mut *self.tx)
            .await?;
        Ok(row.and_then(|r| r.try_get("lang").ok()).flatten())
    }

    /// Inserts or replaces an incident (every column).
    ///
    /// # Errors
    /// Database failure.
    pub async fn put_incident(&mut self, i: &IncidentRow) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM incidents WHERE id = $1")
            .bind(&i.id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query(&format!(
            "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)"
        ))
        .bind(&i.id)
        .bind(&i.state)
        .bind(&i.severity)
        .bind(&i.what_happened)
        .bind(i.occurred_at)
        .bind(i.discovered_at)
        .bind(&i.categories)
        .bind(&i.systems)
        .bind(&i.cause)
        .bind(&i.possible_impact)
        .bind(&i.measures_taken)
        .bind(&i.measures_planned)
        .bind(&i.self_help)
        .bind(&i.remedies)
        .bind(&i.scope)
        .bind(i.affected)
        .bind(&i.opened_by)
        .bind(i.opened_at)
        .bind(i.reported_at)
        .bind(i.closed_at)
        .bind(&i.timeline)
        .bind(i.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// An incident read inside this transaction (under the audit-head lock).
    ///
    /// # Errors
    /// Database failure.
    pub async fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| incident_from(&r)).transpose()
    }

    /// Replaces an incident's affected subjects.
    ///
    /// # Errors
    /// Database failure.
    pub async fn replace_incident_subjects(
        &mut self,
        incident: &str,
        rows: &[IncidentSubjectRow],
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM incident_subjects WHERE incident_id = $1")
            .bind(incident)
            .execute(&mut *self.tx)
            .await?;
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO incident_subjects (incident_id, subject_id, categories, region) \
                 VALUES {}",
                values_clause(self.backend, chunk.len(), 4)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(&r.incident_id)
                    .bind(&r.subject_id)
                    .bind(&r.categories)
                    .bind(&r.region);
            }
            q.execute(&mut *self.tx).await?;
        }
        Ok(())
    }

    /// Publishes an announcement; one per (kind, cause): a second is left out. Returns whether
    /// it was added.
    ///
    /// # Errors
    /// Database failure.
    pub async fn publish_announcement(&mut self, a: &AnnouncementRow) -> Result<bool, StoreError> {
        let r = sqlx::query(&format!(
            "INSERT INTO announcements ({ANNOUNCEMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (kind, cause) DO NOTHING"
        ))
        .bind(&a.id)
        .bind(&a.kind)
        .bind(&a.cause)
        .bind(a.published_at)
        .bind(&a.title_zh)
        .bind(&a.body_zh)
        .bind(&a.title_en)
        .bind(&a.body_en)
        .execute(&mut *self.tx)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Opens a security case and locks its subject (`subjects.lock_case`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn open_case(&mut self, c: &SecurityCaseRow) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO security_cases ({CASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&c.id)
        .bind(&c.subject_id)
        .bind(&c.source)
        .bind(&c.state)
        .bind(c.opened_at)
        .bind(&c.history)
        .bind(&c.released_by)
        .bind(c.released_at)
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("UPDATE subjects SET lock_case = $1 WHERE id = $2")
            .bind(&c.id)
            .bind(&c.subject_id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Releases an open case and unlocks its subject (unless another open case locks it).
    /// `false` when the case is unknown or already released.
    ///
    /// # Errors
    /// Database failure.
    pub async fn release_case(&mut self, id: &str, by: &str, at: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE security_cases SET state = 'released', released_by = $1, released_at = $2 \
             WHERE id = $3 AND state = 'open'",
        )
        .bind(by)
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE subjects SET lock_case = (SELECT MAX(c.id) FROM security_cases c \
             WHERE c.subject_id = subjects.id AND c.state = 'open') \
             WHERE lock_case = $1",
        )
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// The cessation row read inside this transaction.
    ///
    /// # Errors
    /// Database failure.
    pub async fn cessation(&mut self) -> Result<CessationRow, StoreError> {
        let r = sqlx::query(
            "SELECT state, cessation_id, started_by, started_at, effective_at, progress, updated_at \
             FROM cessation WHERE id = 1",
        )
        .fetch_one(&mut *self.tx)
        .await?;
        cessation_from(&r)
    }

    /// Writes the cessation row.
    ///
    /// # Errors
    /// Database failure.
    pub async fn put_cessation(&mut self, c: &CessationRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cessation SET state = $1, cessation_id = $2, started_by = $3, started_at = $4, \
             effective_at = $5, progress = $6, updated_at = $7 WHERE id = 1",
        )
        .bind(&c.state)
        .bind(&c.cessation_id)
        .bind(&c.started_by)
        .bind(c.started_at)
        .bind(c.effective_at)
        .bind(&c.progress)
        .bind(c.updated_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Whether collection is stopped (a cessation is running or done), read under the lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn collection_ceased(&mut self) -> Result<bool, StoreError> {
        let state: String = sqlx::query_scalar("SELECT state FROM cessation WHERE id = 1")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(state != "none")
    }
}
