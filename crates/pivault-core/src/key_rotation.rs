//! Key rotation (issue 11): new KEK and blind-index key generations, and the resumable jobs
//! that move every row onto them.
//!
//! * [`Vault::rotate_kek`] records a new KEK generation (a random HKDF salt, RFC 5869; the key
//!   itself is derived from the master key, so it survives restarts and every instance derives
//!   the same one). New DEKs are wrapped under it from the commit on.
//! * [`Vault::rewrap_step`] rewraps one batch of wrapped DEKs under the current KEK, in one
//!   transaction with the job's progress row and an audit entry. The DEKs themselves do not
//!   change, so no field is re-encrypted and reads work throughout. Killed at any point, the
//!   batch either committed (with its cursor) or did not; the next step resumes from the cursor,
//!   and a row already under the current KEK is left alone (idempotent). When a pass finds no row
//!   left under an older KEK, those generations are marked `retired` (they still unwrap, so a row
//!   a lagging writer wrapped late is never lost).
//! * [`Vault::rotate_index_key`] and [`Vault::reindex_step`] do the same for the blind index:
//!   each subject's identifiers are opened and indexed again under the new key, lookups answer
//!   from both generations meanwhile (`KeyRing::blind_indexes`), and the last step removes the
//!   old identifier rows in the same transaction that marks the old generation retired. The
//!   suppression list of erased accounts (`erased_account_id`) cannot be re-indexed — its
//!   plaintext was destroyed with the subject — so it keeps its generation, which stays loaded
//!   for that list only.
//! * [`Vault::key_status`] counts the rows under each key id.
//!
//! Every change bumps the keys epoch in its transaction, so other instances load the new
//! generations within 100 ms (`services/key_watch.rs`).

use crate::error::CoreError;
use crate::import::contacts::{contact_ref, REF_KIND};
use crate::services::key_watch::install;
use crate::services::sealer::{insert_index, Sealer, SCOPE_PRIMARY};
use crate::values::FieldValue;
use crate::vault::Vault;
use pivault_crypto::{KeyKind, WrappedDek};
use pivault_store::{KeyGenRow, KeyJobRow, KeyRow, WriteTx};

const KIND_KEK: &str = "kek";
const KIND_INDEX: &str = "index";
const JOB_REWRAP: &str = "rewrap";
const JOB_REINDEX: &str = "reindex";

/// A key generation as `keys status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGenInfo {
    /// `kek` or `index`.
    pub kind: String,
    /// 1, 2, …
    pub generation: i64,
    /// Public key id (`kek-…`, `bix-…`).
    pub key_id: String,
    /// `current`, `active` or `retired`.
    pub state: String,
    /// Wrapped DEKs (kek) or identifier rows (index) under it.
    pub rows: i64,
    /// Index only: rows of the suppression list of erased accounts under it.
    pub suppression_rows: i64,
}

/// Progress of a rewrap or reindex job after one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyJobProgress {
    /// `rewrap` or `reindex`.
    pub job: &'static str,
    /// The key id rows are moved to.
    pub key_id: String,
    /// Rows moved so far (rewrap: wrapped DEKs; reindex: identifier rows written).
    pub done: i64,
    /// Rows to move (grows if a pass finds rows written under an old key meanwhile).
    pub total: i64,
    /// `true` when no row is left under an older key (and, for the index, the old rows were
    /// removed).
    pub finished: bool,
}

/// `keys status`: every key generation with its row counts, and the jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// KEK generations (and KEK ids found on rows but not recorded, e.g. a retired master).
    pub keks: Vec<KeyGenInfo>,
    /// Blind-index generations.
    pub index: Vec<KeyGenInfo>,
    /// The job rows: (job, state, done, total).
    pub jobs: Vec<(String, String, i64, i64)>,
}

/// The job row if it is a running job for `generation` (a job for an older generation, or a
/// finished one, is started again).
fn running(existing: Option<KeyJobRow>, generation: i64) -> Option<KeyJobRow> {
    existing.filter(|j| j.state == "running" && j.generation == generation)
}

impl Vault {
    /// Loads the key generations as this transaction sees them into the key ring.
    async fn reload_generations(&self, tx: &mut WriteTx) -> Result<Vec<KeyGenRow>, CoreError> {
        let mut rows = tx.key_generations(KIND_KEK).await?;
        rows.extend(tx.key_generations(KIND_INDEX).await?);
        install(self.sealer.keys(), &rows);
        Ok(rows)
    }

    /// Loads the committed key generations into the key ring.
    async fn load_committed_generations(&self) -> Result<(), CoreError> {
        install(self.sealer.keys(), &self.store.key_generations().await?);
        Ok(())
    }

    /// Records a new generation of `kind` as current; the previous current one becomes
    /// `active` (generation 1 gets its row now if it had none).
    async fn new_generation(
        &self,
        tx: &mut WriteTx,
        kind: &str,
        key_kind: KeyKind,
        now: i64,
    ) -> Result<KeyGenRow, CoreError> {
        let mut gens = tx.key_generations(kind).await?;
        if gens.is_empty() {
            let first = KeyGenRow {
                kind: kind.into(),
                generation: 1,
                key_id: self.sealer.keys().generation_key_id(key_kind, 1, &[]),
                salt: Vec::new(),
                state: "current".into(),
                created_at: now,
                retired_at: None,
            };
            tx.insert_key_generation(&first).await?;
            gens.push(first);
        }
        for g in gens.iter().filter(|g| g.state == "current") {
            tx.set_key_generation_state(kind, g.generation, "active", None)
                .await?;
        }
        let generation = gens.iter().map(|g| g.generation).max().unwrap_or(1) + 1;
        let salt = pivault_crypto::try_random_bytes::<32>()
            .ok_or(CoreError::Crypto(pivault_crypto::CryptoError::Malformed(
                "the operating system random number generator failed",
            )))?
            .to_vec();
        let row = KeyGenRow {
            kind: kind.into(),
            generation,
            key_id: self
                .sealer
                .keys()
                .generation_key_id(key_kind, generation, &salt),
            salt,
            state: "current".into(),
            created_at: now,
            retired_at: None,
        };
        tx.insert_key_generation(&row).await?;
        tx.bump_keys_epoch().await?;
        Ok(row)
    }

    /// Starts a new KEK: records generation *n+1* as current (audited, `key.rotate_kek`). From
    /// the commit on, new DEKs are wrapped under it here at once and on other instances within
    /// 100 ms; existing wraps still open under the old KEK until [`Vault::rewrap_step`] moves
    /// them. Returns the new KEK id.
    ///
    /// # Errors
    /// Store failures; a failing OS random number generator.
    pub async fn rotate_kek(&self, actor: &str) -> Result<String, CoreError> {
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let row = self
            .new_generation(&mut tx, KIND_KEK, KeyKind::Kek, now)
            .await?;
        let mut rec = self.auditor.base(actor, "key.rotate_kek", now, None);
        rec.detail = Some(format!("kek={} generation={}", row.key_id, row.generation));
        tx.audit(rec);
        tx.commit().await?;
        // Only after the commit: a generation must never wrap a DEK before it is recorded.
        self.load_committed_generations().await?;
        Ok(row.key_id)
    }

    /// Starts a new blind-index key: records generation *n+1* as current (audited,
    /// `key.rotate_index`). New identifiers are indexed under it; lookups answer from it and the
    /// previous generation until [`Vault::reindex_step`] finishes. Returns the new key id.
    ///
    /// # Errors
    /// `Conflict` (`key_rotation_in_progress`) while a previous re-index is unfinished; store
    /// failures.
    pub async fn rotate_index_key(&self, actor: &str) -> Result<String, CoreError> {
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        if tx
            .key_generations(KIND_INDEX)
            .await?
            .iter()
            .any(|g| g.state == "active")
        {
            return Err(CoreError::Conflict("key_rotation_in_progress"));
        }
        let row = self
            .new_generation(&mut tx, KIND_INDEX, KeyKind::BlindIndex, now)
            .await?;
        let mut rec = self.auditor.base(actor, "key.rotate_index", now, None);
        rec.detail = Some(format!(
            "index_key={} generation={}",
            row.key_id, row.generation
        ));
        tx.audit(rec);
        tx.commit().await?;
        // Only after the commit: a generation must never wrap a DEK before it is recorded.
        self.load_committed_generations().await?;
        Ok(row.key_id)
    }

    /// Rewraps up to `batch` wrapped DEKs under the current KEK, in one transaction with the
    /// job's progress and an audit entry (`key.rewrap`). Call until `finished`. Safe to run
    /// from several processes at once and to kill at any point (see the module doc).
    ///
    /// # Errors
    /// A wrapped DEK that no loaded KEK opens (nothing of the batch is committed then); store
    /// failures.
    pub async fn rewrap_step(&self, actor: &str, batch: i64) -> Result<KeyJobProgress, CoreError> {
        let batch = batch.clamp(1, 10_000);
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let gens = self.reload_generations(&mut tx).await?;
        let keys = self.sealer.keys();
        let current = keys.kek_id();
        let generation = keys.kek_generation();
        let existing = running(tx.key_job(JOB_REWRAP).await?, generation);
        let fresh = existing.is_none();
        let mut job = match existing {
            Some(j) => j,
            None => KeyJobRow {
                kind: JOB_REWRAP.into(),
                generation,
                state: "running".into(),
                cursor_subject: String::new(),
                cursor_scope: String::new(),
                done: 0,
                total: tx.count_keys_not_under(&current).await?,
                started_at: now,
                updated_at: now,
            },
        };
        // A new job with nothing under an older KEK has nothing to scan.
        let rows = if fresh && job.total == 0 {
            Vec::new()
        } else {
            tx.keys_after(&job.cursor_subject, &job.cursor_scope, batch)
                .await?
        };
        let mut moved = 0;
        for r in &rows {
            if r.kek_id == current {
                continue;
            }
            let w = keys.rewrap_dek(
                &r.subject_id,
                &r.scope,
                &WrappedDek {
                    key_id: r.key_id.clone(),
                    kek_id: r.kek_id.clone(),
                    bytes: r.wrapped.clone(),
                },
            )?;
            let new = KeyRow {
                kek_id: w.kek_id,
                wrapped: w.bytes,
                ..r.clone()
            };
            moved += i64::try_from(tx.rewrap_key(&r.kek_id, &new).await?).unwrap_or(0);
        }
        if let Some(last) = rows.last() {
            job.cursor_subject.clone_from(&last.subject_id);
            job.cursor_scope.clone_from(&last.scope);
        }
        job.done += moved;
        let mut finished = false;
        if i64::try_from(rows.len()).unwrap_or(0) < batch {
            let left = tx.count_keys_not_under(&current).await?;
            if left == 0 {
                finished = true;
                job.state = "done".into();
                for g in gens
                    .iter()
                    .filter(|g| g.kind == KIND_KEK && g.state == "active")
                {
                    if tx.count_keys_under(&g.key_id).await? == 0 {
                        tx.set_key_generation_state(KIND_KEK, g.generation, "retired", Some(now))
                            .await?;
                    }
                }
                tx.bump_keys_epoch().await?;
            } else {
                // Rows a lagging writer wrapped under an old KEK behind the cursor: another pass.
                job.cursor_subject.clear();
                job.cursor_scope.clear();
                job.total = job.done + left;
            }
        }
        job.total = job.total.max(job.done);
        job.updated_at = now;
        tx.put_key_job(&job).await?;
        if moved > 0 || finished {
            let mut rec = self.auditor.base(actor, "key.rewrap", now, None);
            rec.detail = Some(format!(
                "kek={current} rewrapped={moved} done={} total={}{}",
                job.done,
                job.total,
                if finished { " finished" } else { "" }
            ));
            tx.audit(rec);
        }
        tx.commit().await?;
        Ok(KeyJobProgress {
            job: JOB_REWRAP,
            key_id: current,
            done: job.done,
            total: job.total,
            finished,
        })
    }

    /// The identifiers of `subject` as its fields hold them, as blind-index rows under the
    /// current generation: one per identifier field, plus the business-contact reference.
    async fn index_rows_of(
        &self,
        tx: &mut WriteTx,
        subject: &str,
    ) -> Result<Vec<(i64, &'static str, [u8; 32])>, CoreError> {
        let Some(dek) = self.sealer.dek_in(tx, subject, SCOPE_PRIMARY).await? else {
            return Ok(Vec::new());
        };
        let keys = self.sealer.keys();
        let mut out = Vec::new();
        let mut contact: [Option<String>; 3] = [None, None, None];
        for r in tx.fields(subject).await? {
            if r.key_id != dek.key_id() {
                continue;
            }
            let kind = self.policy.category(&r.category).and_then(|c| c.identifier);
            let slot = match (r.record.as_str(), r.name.as_str()) {
                ("profile", "customer_account_id") => Some(0),
                ("profile", "contact_name") => Some(1),
                ("profile", "mobile") => Some(2),
                _ => None,
            };
            if kind.is_none() && slot.is_none() {
                continue;
            }
            if let FieldValue::Text(v) = Sealer::open_row(&dek, &r)? {
                if let Some(k) = kind {
                    let (g, d) = keys.blind_index_current(k.as_str(), &v);
                    out.push((g, k.as_str(), d));
                }
                if let Some(i) = slot {
                    contact[i] = Some(v);
                }
            }
        }
        if let [Some(a), Some(n), Some(m)] = &contact {
            let (g, d) = keys.blind_index_current(REF_KIND, &contact_ref(a, n, m));
            out.push((g, REF_KIND, d));
        }
        Ok(out)
    }

    async fn reindex_subjects(
        &self,
        tx: &mut WriteTx,
        subjects: &[String],
    ) -> Result<i64, CoreError> {
        let mut n = 0;
        for s in subjects {
            let rows = self.index_rows_of(tx, s).await?;
            let idx: Vec<(i64, &str, [u8; 32], &str)> = rows
                .iter()
                .map(|(g, k, d)| (*g, *k, *d, s.as_str()))
                .collect();
            insert_index(tx, &idx).await?;
            n += i64::try_from(idx.len()).unwrap_or(0);
        }
        Ok(n)
    }

    /// Re-indexes up to `batch` subjects under the current blind-index key, in one transaction
    /// with the job's progress and an audit entry (`key.reindex`); the last step removes the old
    /// identifier rows and retires the old generation. Call until `finished`. Resumable and
    /// idempotent like [`Vault::rewrap_step`].
    ///
    /// # Errors
    /// A field that does not open; store failures.
    pub async fn reindex_step(&self, actor: &str, batch: i64) -> Result<KeyJobProgress, CoreError> {
        let batch = batch.clamp(1, 10_000);
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let gens = self.reload_generations(&mut tx).await?;
        let keys = self.sealer.keys();
        let generation = keys.index_generation();
        let key_id = keys.index_key_id(generation).unwrap_or_default();
        let mut job = match running(tx.key_job(JOB_REINDEX).await?, generation) {
            Some(j) => j,
            None => KeyJobRow {
                kind: JOB_REINDEX.into(),
                generation,
                state: "running".into(),
                cursor_subject: String::new(),
                cursor_scope: String::new(),
                done: 0,
                total: tx.count_index_not_under(generation).await?,
                started_at: now,
                updated_at: now,
            },
        };
        let subjects = tx
            .index_subjects_after(generation, &job.cursor_subject, batch)
            .await?;
        let mut written = self.reindex_subjects(&mut tx, &subjects).await?;
        if let Some(last) = subjects.last() {
            job.cursor_subject.clone_from(last);
        }
        let mut finished = false;
        let mut removed = 0;
        if i64::try_from(subjects.len()).unwrap_or(0) < batch {
            // Subjects a lagging writer indexed under the old key after the cursor passed them.
            let missing = tx.index_subjects_missing(generation).await?;
            written += self.reindex_subjects(&mut tx, &missing).await?;
            removed = tx.delete_index_not_under(generation).await?;
            for g in gens
                .iter()
                .filter(|g| g.kind == KIND_INDEX && g.state == "active")
            {
                tx.set_key_generation_state(KIND_INDEX, g.generation, "retired", Some(now))
                    .await?;
            }
            tx.bump_keys_epoch().await?;
            finished = true;
            job.state = "done".into();
        }
        job.done += written;
        job.total = job.total.max(job.done);
        job.updated_at = now;
        tx.put_key_job(&job).await?;
        if written > 0 || finished {
            let mut rec = self.auditor.base(actor, "key.reindex", now, None);
            rec.detail = Some(format!(
                "index_key={key_id} indexed={written} done={} total={}{}",
                job.done,
                job.total,
                if finished {
                    format!(" finished old_rows_removed={removed}")
                } else {
                    String::new()
                }
            ));
            tx.audit(rec);
        }
        tx.commit().await?;
        if finished {
            self.load_committed_generations().await?;
        }
        Ok(KeyJobProgress {
            job: JOB_REINDEX,
            key_id,
            done: job.done,
            total: job.total,
            finished,
        })
    }

    /// Rows per key id: wrapped DEKs per KEK, blind-index rows per index key generation, and
    /// the jobs' progress. Reads only.
    ///
    /// # Errors
    /// Store failures.
    pub async fn key_status(&self) -> Result<KeyStatus, CoreError> {
        let gens = self.store.key_generations().await?;
        install(self.sealer.keys(), &gens);
        let keys = self.sealer.keys();
        let per_kek = self.store.wrapped_keys_per_kek().await?;
        let per_gen = self.store.index_rows_per_generation().await?;
        let mut keks: Vec<KeyGenInfo> = gens
            .iter()
            .filter(|g| g.kind == KIND_KEK)
            .map(|g| KeyGenInfo {
                kind: KIND_KEK.into(),
                generation: g.generation,
                key_id: g.key_id.clone(),
                state: g.state.clone(),
                rows: per_kek
                    .iter()
                    .find(|(k, _)| *k == g.key_id)
                    .map_or(0, |x| x.1),
                suppression_rows: 0,
            })
            .collect();
        if keks.is_empty() {
            keks.push(KeyGenInfo {
                kind: KIND_KEK.into(),
                generation: 1,
                key_id: keys.kek_id(),
                state: "current".into(),
                rows: per_kek
                    .iter()
                    .find(|(k, _)| *k == keys.kek_id())
                    .map_or(0, |x| x.1),
                suppression_rows: 0,
            });
        }
        for (k, n) in &per_kek {
            if !keks.iter().any(|g| g.key_id == *k) {
                keks.push(KeyGenInfo {
                    kind: KIND_KEK.into(),
                    generation: 0,
                    key_id: k.clone(),
                    state: "unrecorded".into(),
                    rows: *n,
                    suppression_rows: 0,
                });
            }
        }
        let mut index: Vec<KeyGenInfo> = gens
            .iter()
            .filter(|g| g.kind == KIND_INDEX)
            .map(|g| (g.generation, g.key_id.clone(), g.state.clone()))
            .chain((!gens.iter().any(|g| g.kind == KIND_INDEX)).then(|| {
                (
                    1,
                    keys.index_key_id(1).unwrap_or_default(),
                    "current".to_string(),
                )
            }))
            .map(|(generation, key_id, state)| {
                let (ids, sup) = per_gen
                    .iter()
                    .find(|x| x.0 == generation)
                    .map_or((0, 0), |x| (x.1, x.2));
                KeyGenInfo {
                    kind: KIND_INDEX.into(),
                    generation,
                    key_id,
                    state,
                    rows: ids,
                    suppression_rows: sup,
                }
            })
            .collect();
        index.sort_by_key(|g| g.generation);
        let mut jobs = Vec::new();
        for j in [JOB_REWRAP, JOB_REINDEX] {
            if let Some(r) = self.store.key_job(j).await? {
                jobs.push((r.kind, r.state, r.done, r.total));
            }
        }
        Ok(KeyStatus { keks, index, jobs })
    }
}
