//! The retention sweep (policy §4.2, §8.2; PIPL Art. 19 and 47(1)(2)): records whose
//! retention has ended are deleted or anonymized, in batches, each batch one transaction with
//! an audit entry per record; legal holds stop it.
//!
//! What is swept:
//! - **per-record clocks** (`collected`, `transaction`): every record listed in
//!   `retention_items` whose `event_at + keep_for` has passed, walked subject by subject. The whole record is acted on
//!   with its governing category's end action: `anonymize` writes the anonymized row
//!   (`anon_weblog`, `anon_orders`: no subject, no key, PIPL Art. 73(4)) and deletes the fields;
//!   `delete` deletes them. Fields kept after an erasure (sealed under the `restricted` DEK)
//!   are opened with that DEK, so an order that survived an erasure is anonymized like any
//!   other once its legal period ends.
//! - **restricted fields past `restricted_until`** that no record item covers (a category
//!   kept for a legal minimum after an erasure): deleted.
//!
//! Resuming: an item leaves `retention_items` in the same transaction that acts on it and
//! writes its audit entry, so a sweep killed at any point and run again does each item
//! exactly once. Only one instance sweeps at a time (the `sweep_lease` row).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use pivault_crypto::Dek;
use pivault_domain::policy::{AnonymizedSet, EndAction, RetentionClock};
use pivault_store::{AnonOrderRow, AnonWeblogRow, FieldRow, RetentionItem, SweepRunRow};

use crate::error::CoreError;
use crate::services::sealer::{Sealer, SCOPE_PRIMARY, SCOPE_RESTRICTED};
use crate::values::FieldValue;
use crate::vault::Vault;

/// How long one instance holds the sweep lease without renewing it (seconds). Each batch
/// renews it.
pub const SWEEP_LEASE_SECONDS: i64 = 120;

/// What a sweep is asked to do.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// List what would happen and change nothing.
    pub dry_run: bool,
    /// Records per transaction (1..=5,000).
    pub batch: usize,
    /// Who runs it, for the audit log (`cli:sweep`, `serve:schedule`).
    pub actor: String,
    /// Stop after this many records (tests and drills); `None` runs to the end.
    pub limit: Option<u64>,
    /// Pause between batches, in milliseconds (to spare a busy database).
    pub pause_ms: u64,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            dry_run: false,
            batch: 2_000,
            actor: "cli:sweep".into(),
            limit: None,
            pause_ms: 0,
        }
    }
}

/// The result of a sweep: counts per category and action, and what was held back and why.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SweepReport {
    /// The run's id (`sweep_runs`).
    pub run_id: String,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// `(category, action) → records` acted on (or, in a dry run, that would be).
    pub acted: BTreeMap<String, BTreeMap<String, u64>>,
    /// `(category, reason) → records` due but held back (`legal_hold:subject`,
    /// `legal_hold:category`).
    pub held: BTreeMap<String, BTreeMap<String, u64>>,
    /// Field rows deleted.
    pub fields_deleted: u64,
    /// Records whose fields could not be opened to anonymize (integrity failure): deleted
    /// without an anonymized row, audited.
    pub unreadable: u64,
}

impl SweepReport {
    /// Records acted on, all categories and actions.
    pub fn total(&self) -> u64 {
        self.acted.values().flat_map(BTreeMap::values).sum()
    }

    fn add(map: &mut BTreeMap<String, BTreeMap<String, u64>>, cat: &str, what: &str, n: u64) {
        if n > 0 {
            *map.entry(cat.to_string())
                .or_default()
                .entry(what.to_string())
                .or_default() += n;
        }
    }
}

/// One category's per-record pass: its rule, resolved.
struct CategoryPass<'a> {
    cat: &'a str,
    end: EndAction,
    clock: RetentionClock,
    /// Items whose clock started at or before this (unix seconds) are due.
    cutoff: i64,
    /// The anonymized set, for `anonymize`.
    set: Option<AnonymizedSet>,
}

/// The state a sweep carries from page to page.
struct Walk<'a> {
    opts: &'a SweepOptions,
    now: i64,
    holder: &'a str,
    batch: usize,
    limit: u64,
    held_subjects: &'a [String],
    done: &'a mut u64,
    renewed: &'a mut std::time::Instant,
    progress: &'a (dyn Fn(SweepProgress) + Send + Sync),
}

impl Walk<'_> {
    /// Records the next page may hold once `done` are done: the batch size, or what is left
    /// of the limit.
    fn want(&self, done: u64) -> u64 {
        (self.batch as u64).min(self.limit.saturating_sub(done))
    }
}

/// What the sweep will do with one record, decided before its transaction.
#[derive(Debug, Clone)]
enum Outcome {
    /// Anonymized web-log row to insert.
    Weblog(AnonWeblogRow),
    /// Anonymized order row to insert.
    Order(AnonOrderRow),
    /// Its fields could not be opened or parsed (integrity failure): deleted, audited as such.
    Unreadable,
    /// Deleted with nothing kept (`delete`, or no fields left).
    Nothing,
}

/// Reads due pages of one category and prepares them (reads only, never inside a write
/// transaction).
struct PageReader {
    store: pivault_store::Store,
    sealer: Arc<Sealer>,
    cat: String,
    cutoff: i64,
    set: Option<AnonymizedSet>,
    held_subjects: Vec<String>,
}

impl PageReader {
    /// The next page of due records after `after`, at most `want` (0: none).
    async fn page(
        &self,
        after: Option<(String, String)>,
        want: u64,
    ) -> Result<Vec<RetentionItem>, CoreError> {
        if want == 0 {
            return Ok(Vec::new());
        }
        let want = i64::try_from(want).unwrap_or(5_000);
        Ok(self
            .store
            .due_items_by_subject(&self.cat, self.cutoff, after, want, &self.held_subjects)
            .await?)
    }

    /// [`PageReader::prepared`], for a task of its own.
    async fn prepared_owned(
        self: Arc<Self>,
        after: Option<(String, String)>,
        want: u64,
    ) -> Result<Option<Prepared>, CoreError> {
        self.prepared(after, want).await
    }

    /// The next page, read and prepared: for `anonymize`, the records' fields opened with
    /// the DEK each row names (primary or restricted) and the anonymized rows built.
    /// `None` when nothing more is due.
    async fn prepared(
        &self,
        after: Option<(String, String)>,
        want: u64,
    ) -> Result<Option<Prepared>, CoreError> {
        let items = self.page(after, want).await?;
        if items.is_empty() {
            return Ok(None);
        }
        let Some(set) = self.set else {
            let outcomes = vec![Outcome::Nothing; items.len()];
            return Ok(Some(Prepared { items, outcomes }));
        };
        let pairs: Vec<(String, String)> = items
            .iter()
            .map(|i| (i.subject_id.clone(), i.record.clone()))
            .collect();
        let rows = self.store.fields_of_records(&pairs).await?;
        let deks = self.deks_for(&rows).await?;
        let mut by_record: HashMap<(&str, &str), Vec<&FieldRow>> = HashMap::new();
        for r in &rows {
            by_record
                .entry((r.subject_id.as_str(), r.record.as_str()))
                .or_default()
                .push(r);
        }
        let outcomes = items
            .iter()
            .map(|i| {
                let Some(fields) = by_record.get(&(i.subject_id.as_str(), i.record.as_str()))
                else {
                    return Outcome::Nothing; // no fields left: nothing to anonymize
                };
                let opened: Option<HashMap<&str, FieldValue>> = fields
                    .iter()
                    .map(|f| {
                        let dek = deks.get(&f.key_id)?;
                        Sealer::open_row(dek, f).ok().map(|v| (f.name.as_str(), v))
                    })
                    .collect();
                let made = opened.and_then(|o| match set {
                    AnonymizedSet::Weblog => anon_weblog(&o).map(Outcome::Weblog),
                    AnonymizedSet::Order => anon_order(&o).map(Outcome::Order),
                });
                made.unwrap_or(Outcome::Unreadable)
            })
            .collect();
        Ok(Some(Prepared { items, outcomes }))
    }

    /// DEKs by key id for the rows given: the subjects' primary and restricted DEKs.
    async fn deks_for(&self, rows: &[FieldRow]) -> Result<HashMap<String, Arc<Dek>>, CoreError> {
        let mut subjects: Vec<&str> = rows.iter().map(|r| r.subject_id.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        let mut out = HashMap::new();
        for scope in [SCOPE_PRIMARY, SCOPE_RESTRICTED] {
            for (_, d) in self.sealer.deks_many(&subjects, scope).await? {
                out.insert(d.key_id().to_string(), d);
            }
        }
        Ok(out)
    }
}

/// One page read and transformed, ready to be written.
struct Prepared {
    items: Vec<RetentionItem>,
    /// One per item, in order.
    outcomes: Vec<Outcome>,
}

/// Progress of a running sweep, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct SweepProgress {
    /// Records done so far.
    pub done: u64,
}

/// Active legal holds, as the sweep and erasure need them.
#[derive(Debug, Clone, Default)]
pub struct ActiveHolds {
    /// Subjects under a hold.
    pub subjects: HashSet<String>,
    /// Categories under a hold.
    pub categories: HashSet<String>,
}

impl ActiveHolds {
    /// Whether a record of `category` of `subject` is held.
    pub fn holds(&self, subject: &str, category: &str) -> bool {
        self.subjects.contains(subject) || self.categories.contains(category)
    }
}

impl Vault {
    /// The active legal holds.
    ///
    /// # Errors
    /// Store failure.
    pub async fn active_holds(&self) -> Result<ActiveHolds, CoreError> {
        let mut h = ActiveHolds::default();
        for row in self.store.holds(true).await? {
            if let Some(s) = row.subject_id {
                h.subjects.insert(s);
            }
            if let Some(c) = row.category {
                h.categories.insert(c);
            }
        }
        Ok(h)
    }

    /// Runs the retention sweep (policy §4.2, §8.2): see the module docs. `progress` is
    /// called after each batch.
    ///
    /// # Errors
    /// `sweep_busy` when another instance holds the sweep lease; store failure (what was
    /// committed stays committed, and the next run resumes).
    pub async fn sweep(
        &self,
        opts: &SweepOptions,
        progress: &(dyn Fn(SweepProgress) + Send + Sync),
    ) -> Result<SweepReport, CoreError> {
        let now = self.clock.now().unix_timestamp();
        let holder = format!("{}:{}", opts.actor, std::process::id());
        if !opts.dry_run
            && !self
                .store
                .try_sweep_lease(&holder, now, SWEEP_LEASE_SECONDS)
                .await?
        {
            return Err(CoreError::Conflict("sweep_busy"));
        }
        let result = self.sweep_leased(opts, progress, &holder, now).await;
        if !opts.dry_run {
            // Released even after an error; an instance killed mid-sweep loses the lease when
            // it expires.
            let _ = self.store.release_sweep_lease(&holder).await;
        }
        result
    }

    async fn sweep_leased(
        &self,
        opts: &SweepOptions,
        progress: &(dyn Fn(SweepProgress) + Send + Sync),
        holder: &str,
        now: i64,
    ) -> Result<SweepReport, CoreError> {
        let batch = opts.batch.clamp(1, 5_000);
        let holds = self.active_holds().await?;
        let held_subjects: Vec<String> = holds.subjects.iter().cloned().collect();
        let mut rep = SweepReport {
            run_id: format!("sweep-{now}-{}", std::process::id()),
            dry_run: opts.dry_run,
            ..SweepReport::default()
        };
        let mut run = SweepRunRow {
            id: rep.run_id.clone(),
            started_at: now,
            finished_at: None,
            dry_run: opts.dry_run,
            actor: opts.actor.clone(),
            state: "running".into(),
            counts: "{}".into(),
            updated_at: now,
        };
        let limit = opts.limit.unwrap_or(u64::MAX);
        let mut done: u64 = 0;
        // A dry run's records acted on by the per-record pass, so that the restricted pass
        // (staged and rolled back) does not count them twice.
        let mut dry_records: Vec<(String, String)> = Vec::new();
        let mut renewed = std::time::Instant::now();
        let categories: Vec<_> = self
            .policy
            .categories()
            .iter()
            .filter_map(|c| c.retention.as_ref().map(|r| (c.key.clone(), r.clone())))
            .filter(|(_, r)| r.clock.is_per_record())
            .collect();
        for (cat, rule) in &categories {
            let pass = CategoryPass {
                cat: cat.as_str(),
                end: rule.end,
                clock: rule.clock,
                cutoff: now - rule.keep_for.seconds(),
                set: match rule.end {
                    EndAction::Anonymize => self.policy.anonymization_for(cat).map(|r| r.set),
                    EndAction::Delete => None,
                },
            };
            if holds.categories.contains(cat.as_str()) {
                // A category hold stops every record of it; count what is due.
                let n = self.count_due(&pass, |_| true).await?;
                SweepReport::add(&mut rep.held, cat, "legal_hold:category", n);
                continue;
            }
            let mut walk = Walk {
                opts,
                now,
                holder,
                batch,
                limit,
                held_subjects: &held_subjects,
                done: &mut done,
                renewed: &mut renewed,
                progress,
            };
            if opts.dry_run {
                self.dry_category(&pass, &mut walk, &mut rep, &mut dry_records)
                    .await?;
            } else {
                self.sweep_category(&pass, &mut walk, &mut rep, &mut run)
                    .await?;
            }
            if !held_subjects.is_empty() {
                // Report what the subject holds keep back: their due items, counted.
                let n = self
                    .count_due(&pass, |i| holds.subjects.contains(&i.subject_id))
                    .await?;
                SweepReport::add(&mut rep.held, cat, "legal_hold:subject", n);
            }
        }
        if done < limit {
            done += self
                .sweep_restricted(opts, &holds, now, batch, &dry_records, &mut rep)
                .await?;
            progress(SweepProgress { done });
        }
        if done < limit {
            done += self
                .sweep_subject_clocks(opts, &holds, now, &mut rep)
                .await?;
            progress(SweepProgress { done });
        }
        run.state = "done".into();
        run.finished_at = Some(now);
        run.counts = serde_json::to_string(&rep.acted).unwrap_or_default();
        if !opts.dry_run {
            let mut tx = self.store.begin(now).await?;
            tx.upsert_sweep_run(&run).await?;
            tx.commit().await?;
        }
        self.metrics.swept(rep.fields_deleted);
        Ok(rep)
    }

    /// The due items of `pass` that `keep` accepts, counted (legal holds: what they keep
    /// back). Pages of 5,000 in primary-key order.
    async fn count_due(
        &self,
        pass: &CategoryPass<'_>,
        keep: impl Fn(&RetentionItem) -> bool,
    ) -> Result<u64, CoreError> {
        let mut n = 0;
        let mut after: Option<(String, String)> = None;
        loop {
            let page = self
                .store
                .due_items_by_subject(pass.cat, pass.cutoff, after.clone(), 5_000, &[])
                .await?;
            let Some(last) = page.last() else {
                return Ok(n);
            };
            after = Some((last.subject_id.clone(), last.record.clone()));
            n += page.iter().filter(|i| keep(i)).count() as u64;
        }
    }

    /// A dry run of one category's per-record pass: the due records counted, and kept for
    /// the restricted pass (so that it does not count them twice).
    async fn dry_category(
        &self,
        pass: &CategoryPass<'_>,
        w: &mut Walk<'_>,
        rep: &mut SweepReport,
        dry_records: &mut Vec<(String, String)>,
    ) -> Result<(), CoreError> {
        let reader = self.page_reader(pass, w.held_subjects);
        let mut after: Option<(String, String)> = None;
        loop {
            let want = w.want(*w.done);
            let items = reader.page(after, want).await?;
            let Some(last) = items.last() else {
                return Ok(());
            };
            after = Some((last.subject_id.clone(), last.record.clone()));
            dry_records.extend(
                items
                    .iter()
                    .map(|i| (i.subject_id.clone(), i.record.clone())),
            );
            SweepReport::add(
                &mut rep.acted,
                pass.cat,
                pass.end.as_str(),
                items.len() as u64,
            );
            *w.done += items.len() as u64;
            (w.progress)(SweepProgress { done: *w.done });
        }
    }

    /// One category's per-record pass, pipelined: while batch N is written and committed,
    /// batch N+1 is read, its fields opened and anonymized (no writes) in a task of its own,
    /// so the store's writer and the reading and CPU work overlap on two cores. Batches stay disjoint (the cursor is past N), and each is
    /// still one transaction that re-reads the holds under the writer's lock.
    async fn sweep_category(
        &self,
        pass: &CategoryPass<'_>,
        w: &mut Walk<'_>,
        rep: &mut SweepReport,
        run: &mut SweepRunRow,
    ) -> Result<(), CoreError> {
        let reader = Arc::new(self.page_reader(pass, w.held_subjects));
        let mut next = reader.prepared(None, w.want(*w.done)).await?;
        while let Some(cur) = next.take() {
            let n = cur.items.len() as u64;
            let after = cur
                .items
                .last()
                .map(|i| (i.subject_id.clone(), i.record.clone()));
            // Its own task: a task that holds a write transaction may not take a second
            // pool connection (the nested-acquire guard), and this one reads beside it.
            let following =
                tokio::spawn(Arc::clone(&reader).prepared_owned(after, w.want(*w.done + n)));
            let committed = self.commit_batch(pass, cur, w.opts, w.now, rep, run).await;
            let following = match following.await {
                Ok(r) => r,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => Err(CoreError::Io(std::io::Error::other(
                    "the sweep's read-ahead was cancelled",
                ))),
            };
            committed?;
            next = following?;
            *w.done += n;
            // The lease is renewed at most every 10 s (it lasts 120 s).
            if w.renewed.elapsed() > std::time::Duration::from_secs(10) {
                self.store
                    .try_sweep_lease(w.holder, w.now, SWEEP_LEASE_SECONDS)
                    .await?;
                *w.renewed = std::time::Instant::now();
            }
            (w.progress)(SweepProgress { done: *w.done });
            if w.opts.pause_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(w.opts.pause_ms)).await;
            }
        }
        Ok(())
    }

    /// The reader of `pass`'s due pages (owned, so that a read-ahead task can hold it).
    fn page_reader(&self, pass: &CategoryPass<'_>, held_subjects: &[String]) -> PageReader {
        PageReader {
            store: self.store.clone(),
            sealer: Arc::clone(&self.sealer),
            cat: pass.cat.to_string(),
            cutoff: pass.cutoff,
            set: pass.set,
            held_subjects: held_subjects.to_vec(),
        }
    }

    /// Writes one prepared batch: anonymized rows, the records' fields and items deleted, an
    /// audit entry per record, and the run's progress (`sweep_runs`), in one transaction.
    /// Holds are re-read inside it (under the writer's lock), so a hold set by another
    /// instance since the sweep began keeps its records: they are left and counted as held.
    async fn commit_batch(
        &self,
        pass: &CategoryPass<'_>,
        b: Prepared,
        opts: &SweepOptions,
        now: i64,
        rep: &mut SweepReport,
        run: &mut SweepRunRow,
    ) -> Result<(), CoreError> {
        let mut tx = self.store.begin(now).await?;
        let mut live = ActiveHolds::default();
        for row in tx.holds(true).await? {
            if let Some(s) = row.subject_id {
                live.subjects.insert(s);
            }
            if let Some(c) = row.category {
                live.categories.insert(c);
            }
        }
        let mut counts = rep.acted.clone();
        let mut held = rep.held.clone();
        let mut pairs = Vec::with_capacity(b.items.len());
        let mut weblog = Vec::new();
        let mut orders = Vec::new();
        let mut unreadable = 0u64;
        for (i, outcome) in b.items.iter().zip(b.outcomes) {
            if live.holds(&i.subject_id, pass.cat) {
                let why = if live.categories.contains(pass.cat) {
                    "legal_hold:category"
                } else {
                    "legal_hold:subject"
                };
                SweepReport::add(&mut held, pass.cat, why, 1);
                continue;
            }
            let action = match outcome {
                Outcome::Weblog(r) => {
                    weblog.push(r);
                    "retention.anonymize"
                }
                Outcome::Order(r) => {
                    orders.push(r);
                    "retention.anonymize"
                }
                Outcome::Unreadable => {
                    unreadable += 1;
                    "retention.delete_unreadable"
                }
                Outcome::Nothing if pass.end == EndAction::Anonymize => "retention.anonymize",
                Outcome::Nothing => "retention.delete",
            };
            pairs.push((i.subject_id.clone(), i.record.clone()));
            let mut rec = self.auditor.base(&opts.actor, action, now, None);
            rec.subject_id = Some(i.subject_id.clone());
            rec.categories = pass.cat.to_string();
            rec.legal_basis = Some("legal_obligation".into());
            rec.detail = Some(format!(
                "record={} clock={} event_at={}",
                i.record,
                pass.clock.as_str(),
                i.event_at
            ));
            tx.audit(rec);
        }
        if !weblog.is_empty() {
            tx.insert_anon_weblog(&weblog).await?;
        }
        if !orders.is_empty() {
            tx.insert_anon_orders(&orders).await?;
        }
        let deleted = tx.delete_records(&pairs).await?;
        let n = pairs.len() as u64;
        SweepReport::add(&mut counts, pass.cat, pass.end.as_str(), n - unreadable);
        SweepReport::add(&mut counts, pass.cat, "delete_unreadable", unreadable);
        run.updated_at = now;
        run.counts = serde_json::to_string(&counts).unwrap_or_default();
        tx.upsert_sweep_run(run).await?;
        tx.commit().await?;
        rep.acted = counts;
        rep.held = held;
        rep.fields_deleted += deleted;
        rep.unreadable += unreadable;
        Ok(())
    }

    /// Restricted fields past `restricted_until` that no record item covers: deleted,
    /// audited per record, unless held (`dry_records`: what a dry run's per-record pass
    /// would already have acted on). A dry run stages the very same deletions in one
    /// transaction and rolls it back, so its forecast is exactly what a real run would do.
    async fn sweep_restricted(
        &self,
        opts: &SweepOptions,
        holds: &ActiveHolds,
        now: i64,
        batch: usize,
        dry_records: &[(String, String)],
        rep: &mut SweepReport,
    ) -> Result<u64, CoreError> {
        let subjects: Vec<String> = holds.subjects.iter().cloned().collect();
        let categories: Vec<String> = holds.categories.iter().cloned().collect();
        let batch = i64::try_from(batch).unwrap_or(2_000);
        let mut total = 0;
        if opts.dry_run {
            let mut tx = self.store.begin(now).await?;
            tx.delete_records(dry_records).await?;
            loop {
                let n = self
                    .stage_restricted(&mut tx, opts, &subjects, &categories, now, batch, rep)
                    .await?;
                if n == 0 {
                    break;
                }
                total += n;
            }
            drop(tx); // rolled back: nothing changes
            return Ok(total);
        }
        loop {
            let mut tx = self.store.begin(now).await?;
            let n = self
                .stage_restricted(&mut tx, opts, &subjects, &categories, now, batch, rep)
                .await?;
            if n == 0 {
                break;
            }
            tx.commit().await?;
            total += n;
        }
        Ok(total)
    }

    /// One batch of expired restricted fields deleted in `tx`, with an audit entry per record;
    /// returns the records.
    #[allow(clippy::too_many_arguments)]
    async fn stage_restricted(
        &self,
        tx: &mut pivault_store::WriteTx,
        opts: &SweepOptions,
        subjects: &[String],
        categories: &[String],
        now: i64,
        batch: i64,
        rep: &mut SweepReport,
    ) -> Result<u64, CoreError> {
        let gone = tx
            .delete_expired_restricted_batch(now, batch, subjects, categories)
            .await?;
        let mut per: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for (s, r, c) in &gone {
            per.entry((s.clone(), r.clone()))
                .or_default()
                .push(c.clone());
        }
        let mut n = 0;
        for ((s, r), mut cats) in per {
            cats.sort();
            cats.dedup();
            let mut rec = self
                .auditor
                .base(&opts.actor, "retention.delete", now, None);
            rec.subject_id = Some(s.clone());
            rec.categories = cats.join(",");
            rec.legal_basis = Some("legal_obligation".into());
            rec.detail = Some(format!("record={r} restricted_until<=now"));
            tx.audit(rec);
            for c in cats {
                SweepReport::add(&mut rep.acted, &c, "delete", 1);
            }
            n += 1;
        }
        if !opts.dry_run {
            rep.fields_deleted += gone.len() as u64;
        }
        Ok(n)
    }
}

impl Vault {
    /// Categories whose clock runs per subject (`account_closed`, `last_activity`,
    /// `consent_withdrawn`): the subjects whose clock started `keep_for` ago lose that
    /// category's fields (end action `delete`; these categories have no anonymized set), one
    /// transaction per page of subjects with an audit entry per subject and category. Held
    /// subjects and categories are left and counted. Returns the subjects acted on.
    async fn sweep_subject_clocks(
        &self,
        opts: &SweepOptions,
        holds: &ActiveHolds,
        now: i64,
        rep: &mut SweepReport,
    ) -> Result<u64, CoreError> {
        let mut total = 0;
        for c in self.policy.categories() {
            let Some(rule) = c.retention.as_ref() else {
                continue;
            };
            if rule.clock.is_per_record() {
                continue;
            }
            let cutoff = now - rule.keep_for.seconds();
            let mut after: Option<String> = None;
            loop {
                let page = match rule.clock {
                    RetentionClock::AccountClosed => {
                        self.store
                            .subjects_closed_before(cutoff, after.as_deref(), 500)
                            .await?
                    }
                    RetentionClock::LastActivity => {
                        self.store
                            .subjects_inactive_before(cutoff, after.as_deref(), 500)
                            .await?
                    }
                    _ => {
                        self.store
                            .subjects_with_category(&c.key, after.as_deref(), 500)
                            .await?
                    }
                };
                let Some(last) = page.last() else { break };
                after = Some(last.clone());
                let mut due = Vec::with_capacity(page.len());
                for s in page {
                    if rule.clock == RetentionClock::ConsentWithdrawn
                        && !self.withdrawn_before(&s, &c.key, cutoff).await?
                    {
                        continue;
                    }
                    if holds.holds(&s, &c.key) {
                        let why = if holds.categories.contains(&c.key) {
                            "legal_hold:category"
                        } else {
                            "legal_hold:subject"
                        };
                        SweepReport::add(&mut rep.held, &c.key, why, 1);
                        continue;
                    }
                    due.push(s);
                }
                if due.is_empty() {
                    continue;
                }
                // A dry run stages the same deletions and rolls them back.
                let mut tx = self.store.begin(now).await?;
                let gone = tx.delete_category_fields(&c.key, &due).await?;
                for (s, n) in &gone {
                    let mut rec = self
                        .auditor
                        .base(&opts.actor, "retention.delete", now, None);
                    rec.subject_id = Some(s.clone());
                    rec.categories.clone_from(&c.key);
                    rec.legal_basis = Some("legal_obligation".into());
                    rec.detail = Some(format!("clock={} fields={n}", rule.clock.as_str()));
                    tx.audit(rec);
                }
                if opts.dry_run {
                    drop(tx); // rolled back
                } else {
                    if !gone.is_empty() {
                        tx.bump_facts_epoch().await?;
                    }
                    tx.commit().await?;
                    for (s, n) in &gone {
                        rep.fields_deleted += n;
                        self.facts.changed(s);
                    }
                }
                SweepReport::add(&mut rep.acted, &c.key, "delete", gone.len() as u64);
                total += gone.len() as u64;
            }
        }
        Ok(total)
    }

    /// Whether every consent purpose that lists `category` is withdrawn for `subject`, the
    /// latest withdrawal at or before `cutoff` (PIPL Art. 15: processing on consent ends with
    /// it). A subject who never consented is not "withdrawn": the clock has not started.
    async fn withdrawn_before(
        &self,
        subject: &str,
        category: &str,
        cutoff: i64,
    ) -> Result<bool, CoreError> {
        let purposes: Vec<&str> = self
            .policy
            .purposes()
            .iter()
            .filter(|p| p.legal_basis == pivault_domain::policy::LegalBasis::Consent)
            .filter(|p| p.categories.iter().any(|c| c == category))
            .map(|p| p.id.as_str())
            .collect();
        if purposes.is_empty() {
            return Ok(false);
        }
        let events = self.store.consent_events(subject).await?;
        let mut latest_withdrawal: Option<i64> = None;
        for p in purposes {
            let last = events
                .iter()
                .filter(|e| e.purpose == p && e.recipient.is_none())
                .max_by_key(|e| (e.at, e.seq));
            match last {
                Some(e) if e.action == "withdraw" => {
                    latest_withdrawal = Some(latest_withdrawal.map_or(e.at, |w| w.max(e.at)));
                }
                Some(_) => return Ok(false), // granted: the clock has not started
                None => {}
            }
        }
        Ok(latest_withdrawal.is_some_and(|w| w <= cutoff))
    }
}

/// The anonymized web-log row of a record's opened `line` field, if it parses.
fn anon_weblog(fields: &HashMap<&str, FieldValue>) -> Option<AnonWeblogRow> {
    let FieldValue::Text(line) = fields.get("line")? else {
        return None;
    };
    let l = pivault_domain::weblog::parse_combined(line).ok()?;
    let a = pivault_domain::weblog::anonymize(&l);
    Some(AnonWeblogRow {
        hour: a.hour,
        client_net: a.client_net,
        method: a.method,
        path: a.path,
        status: i64::from(a.status),
        bytes: i64::try_from(a.bytes).unwrap_or(i64::MAX),
        ua_family: a.ua_family,
        ua_major: a.ua_major.map(i64::from),
    })
}

/// The anonymized order row (amount, product, month) of a record's opened fields.
fn anon_order(fields: &HashMap<&str, FieldValue>) -> Option<AnonOrderRow> {
    let (FieldValue::Text(product), FieldValue::Number(amount), FieldValue::Timestamp(paid)) = (
        fields.get("product")?,
        fields.get("amount_cny")?,
        fields.get("paid_at")?,
    ) else {
        return None;
    };
    let a = pivault_domain::anonymize::anonymize_order(product, amount, *paid);
    Some(AnonOrderRow {
        month: a.month,
        product: a.product,
        amount: a.amount,
    })
}

/// One category's line of the retention report (`GET /v1/reports/retention`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetentionLine {
    /// Category key.
    pub category: String,
    /// `keep_for` in days (`None`: no rule, kept until erasure).
    pub keep_for_days: Option<u32>,
    /// `legal_minimum` in days.
    pub legal_minimum_days: Option<u32>,
    /// The clock event.
    pub clock: Option<&'static str>,
    /// The end action.
    pub end: Option<&'static str>,
    /// Records under a per-record clock held now.
    pub records: i64,
    /// Fields kept after an erasure (restricted), held now.
    pub restricted_fields: i64,
    /// The oldest record's clock start, unix seconds.
    pub oldest_event_at: Option<i64>,
    /// Records and restricted fields that fall due within the window (30 days).
    pub due_in_window: i64,
    /// Records and restricted fields kept by a legal hold.
    pub on_hold: i64,
}

impl Vault {
    /// The retention report (admin, dpo): per category, how much is held, the oldest item,
    /// what falls due within `window_secs` (30 days for the route) and what is held by legal
    /// holds; also sets the `pivault_retention_items` gauges. Categories under a per-subject
    /// clock (`account_closed`, `last_activity`, `consent_withdrawn`) report only their
    /// restricted fields.
    ///
    /// # Errors
    /// `Forbidden` without admin or dpo; store failure.
    pub async fn retention_report(
        &self,
        p: &crate::Principal,
        window_secs: i64,
    ) -> Result<Vec<RetentionLine>, CoreError> {
        Self::require_dsr_staff(p)?;
        let now = self.now().unix_timestamp();
        let end = now + window_secs;
        let cutoffs: Vec<(String, i64)> = self
            .policy
            .categories()
            .iter()
            .filter_map(|c| {
                let r = c.retention.as_ref()?;
                r.clock
                    .is_per_record()
                    .then(|| (c.key.clone(), end - r.keep_for.seconds()))
            })
            .collect();
        let stats: HashMap<String, pivault_store::RetentionStat> = self
            .store
            .retention_stats(end, &cutoffs)
            .await?
            .into_iter()
            .map(|s| (s.category.clone(), s))
            .collect();
        let holds = self.active_holds().await?;
        let mut subject_held: HashMap<String, i64> = HashMap::new();
        for s in &holds.subjects {
            for f in self.store.fields(s).await? {
                *subject_held.entry(f.category).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for c in self.policy.categories() {
            let st = stats.get(&c.key);
            let records = st.map_or(0, |s| s.items);
            let restricted = st.map_or(0, |s| s.restricted_fields);
            let due = st.map_or(0, |s| s.due_before + s.restricted_due_before);
            let on_hold = if holds.categories.contains(&c.key) {
                records + restricted
            } else {
                subject_held.get(&c.key).copied().unwrap_or(0)
            };
            let r = c.retention.as_ref();
            self.metrics
                .retention(&c.key, records + restricted, due, on_hold);
            out.push(RetentionLine {
                category: c.key.clone(),
                keep_for_days: r.map(|r| r.keep_for.days()),
                legal_minimum_days: r.and_then(|r| r.legal_minimum.map(|m| m.days())),
                clock: r.map(|r| r.clock.as_str()),
                end: r.map(|r| r.end.as_str()),
                records,
                restricted_fields: restricted,
                oldest_event_at: st.and_then(|s| s.oldest_event_at),
                due_in_window: due,
                on_hold,
            });
        }
        Ok(out)
    }
}
