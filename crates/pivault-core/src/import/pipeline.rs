//! The importer's pipeline: batch N is written and committed by the one writer (a task of its
//! own) while batch N+1 is read, checked, looked up and sealed; the CPU work of a batch
//! (parsing, AES-GCM per field, DEK generation and wrapping, blind-index HMACs) is spread over
//! every core.
//!
//! What stays as it was: each batch is one transaction through `Store::begin` (the writers'
//! lock, the cessation check under it) with one audit entry per row, committed in file order;
//! at most one batch is in flight. The lookups of batch N+1 (existing accounts, records and
//! consent events) run before batch N is committed, so each importer also treats what batch N
//! lands as present (`Inflight`): a repeat across two batches is skipped exactly as when the
//! earlier one had been committed first.

use crate::error::CoreError;
use crate::Vault;
use pivault_domain::audit::AuditRecord;
use pivault_store::{ConsentRow, FieldRow, KeyRow, RetentionItem, Store, SubjectRow};
use std::collections::HashSet;
use std::hash::Hash;

/// Everything one batch writes, owned, so that its transaction can run in a task of its own.
#[derive(Default)]
pub(crate) struct BatchWrite {
    pub(crate) subjects: Vec<SubjectRow>,
    pub(crate) keys: Vec<KeyRow>,
    /// Sealed fields: upserted (`replace`) or inserted where absent.
    pub(crate) fields: Vec<FieldRow>,
    pub(crate) replace_fields: bool,
    /// Blind-index rows `(generation, kind, digest, subject)`.
    pub(crate) index: Vec<(i64, &'static str, [u8; 32], String)>,
    pub(crate) consents: Vec<ConsentRow>,
    pub(crate) items: Vec<RetentionItem>,
    pub(crate) activity: Vec<(String, i64)>,
    pub(crate) bump_facts_epoch: bool,
    pub(crate) audits: Vec<AuditRecord>,
}

impl BatchWrite {
    fn is_empty(&self) -> bool {
        self.subjects.is_empty()
            && self.fields.is_empty()
            && self.consents.is_empty()
            && self.audits.is_empty()
    }

    /// One transaction: the rows, then the audit entries, committed together. Nothing (no
    /// transaction) for an empty batch.
    pub(crate) async fn write(self, store: Store, now: i64) -> Result<(), CoreError> {
        if self.is_empty() {
            return Ok(());
        }
        let mut tx = store.begin(now).await?;
        Vault::refuse_if_ceased(&mut tx).await?;
        if !self.subjects.is_empty() {
            tx.insert_subjects(&self.subjects).await?;
        }
        if !self.keys.is_empty() {
            tx.insert_keys(&self.keys).await?;
        }
        if !self.fields.is_empty() {
            if self.replace_fields {
                tx.upsert_fields(&self.fields).await?;
            } else {
                tx.insert_fields_if_absent(&self.fields).await?;
            }
        }
        if !self.index.is_empty() {
            let idx: Vec<(i64, &str, [u8; 32], &str)> = self
                .index
                .iter()
                .map(|(g, k, d, s)| (*g, *k, *d, s.as_str()))
                .collect();
            crate::services::sealer::insert_index(&mut tx, &idx).await?;
        }
        if !self.consents.is_empty() {
            tx.insert_consents(&self.consents).await?;
        }
        if !self.items.is_empty() {
            tx.insert_retention_items(&self.items).await?;
        }
        if !self.activity.is_empty() {
            tx.touch_last_active(&self.activity).await?;
        }
        for a in self.audits {
            tx.audit(a);
        }
        if self.bump_facts_epoch {
            tx.bump_facts_epoch().await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The import's one writer: at most one batch in flight, committed in the order submitted.
pub(crate) struct Writer {
    store: Store,
    now: i64,
    running: Option<tokio::task::JoinHandle<Result<(), CoreError>>>,
}

impl Writer {
    pub(crate) fn new(vault: &Vault, now: i64) -> Self {
        Self {
            store: vault.store.clone(),
            now,
            running: None,
        }
    }

    /// Waits until the batch in flight is committed (its error, if it failed), then starts
    /// writing `batch` in a task of its own: a task that holds a write transaction may take no
    /// second pool connection (the nested-acquire guard), and the caller reads beside it.
    pub(crate) async fn submit(&mut self, batch: BatchWrite) -> Result<(), CoreError> {
        self.finish().await?;
        if !batch.is_empty() {
            let store = self.store.clone();
            let now = self.now;
            self.running = Some(tokio::spawn(batch.write(store, now)));
        }
        Ok(())
    }

    /// Waits until the batch in flight is committed.
    pub(crate) async fn finish(&mut self) -> Result<(), CoreError> {
        if let Some(h) = self.running.take() {
            match h.await {
                Ok(r) => r?,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {
                    return Err(CoreError::Io(std::io::Error::other(
                        "the import's writer was cancelled",
                    )))
                }
            }
        }
        Ok(())
    }
}

/// The keys the batch in flight lands (accounts, records, consent events): present for the
/// batch prepared beside it, whose lookups cannot see them yet.
pub(crate) struct Inflight<K> {
    landing: HashSet<K>,
    next: HashSet<K>,
}

impl<K: Eq + Hash> Inflight<K> {
    pub(crate) fn new() -> Self {
        Self {
            landing: HashSet::new(),
            next: HashSet::new(),
        }
    }

    /// Whether the batch in flight lands `k`.
    pub(crate) fn contains(&self, k: &K) -> bool {
        self.landing.contains(k)
    }

    /// `k` is landed by the batch being prepared.
    pub(crate) fn add(&mut self, k: K) {
        self.next.insert(k);
    }

    /// The batch being prepared was submitted: it is now the one in flight.
    pub(crate) fn submitted(&mut self) {
        self.landing = std::mem::take(&mut self.next);
    }
}

/// Below this many items a batch is mapped on one thread.
const MIN_PER_THREAD: usize = 64;

/// `f` over `items`, in order, on every core: scoped threads inside a blocking task, so the
/// runtime's workers keep driving the writer meanwhile.
pub(crate) async fn par_map<T, R, F>(items: Vec<T>, f: F) -> Result<Vec<R>, CoreError>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> R + Send + Sync + 'static,
{
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let task = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(items.len().div_ceil(MIN_PER_THREAD))
            .max(1);
        if threads == 1 {
            return items.into_iter().map(f).collect::<Vec<R>>();
        }
        let per = items.len().div_ceil(threads);
        let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
        let mut it = items.into_iter();
        loop {
            let c: Vec<T> = it.by_ref().take(per).collect();
            if c.is_empty() {
                break;
            }
            chunks.push(c);
        }
        let f = &f;
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|c| s.spawn(move || c.into_iter().map(f).collect::<Vec<R>>()))
                .collect();
            let mut out = Vec::new();
            for h in handles {
                match h.join() {
                    Ok(v) => out.extend(v),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
            out
        })
    });
    match task.await {
        Ok(v) => Ok(v),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(CoreError::Io(std::io::Error::other(
            "the import's sealing was cancelled",
        ))),
    }
}
