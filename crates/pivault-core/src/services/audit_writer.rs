//! Group commit for audit entries of decisions.
//!
//! A decision that changes nothing else still has to be audited before it is answered. One
//! transaction per decision serializes every request on a shard head's lock and a commit;
//! here concurrent requests hand their entries to a writer task, which appends everything
//! waiting in ONE transaction and then acknowledges each request. A request is answered only
//! after its entry is committed, so the guarantee is unchanged: no decision without its audit
//! entry.
//!
//! Each group is an audit group commit (`Store::begin_audit_group`): on PostgreSQL the shard
//! heads' locks are let go at the commit, before its WAL flush, and the group is acknowledged
//! only once that flush is done (`Pending::durable`). Meanwhile the writer already appends the
//! next group: up to `IN_FLIGHT` groups wait for their flush at once.
//!
//! The writer handle can route entries to one writer task per audit shard (issue 15: by their
//! subject's keyed shard, `AuditChainKey::shard_of`, so that each group commit locks one shard
//! head); measured on PostgreSQL that lost more to smaller groups than it gained (see
//! `spawn`), so one writer per process appends every shard's entries, locking the heads of
//! the shards in its group in ascending order.

use crate::metrics::Metrics;
use crate::CoreError;
use pivault_domain::audit::AuditRecord;
use pivault_store::{StorageFault, Store};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most entries appended in one transaction.
const MAX_GROUP: usize = 2_000;

/// Most committed groups of one writer waiting for their WAL flush at once (PostgreSQL,
/// `Store::begin_audit_group`); each holds a pooled connection.
const IN_FLIGHT: usize = 4;
/// `IN_FLIGHT` as the semaphore counts permits.
#[allow(clippy::cast_possible_truncation)]
const IN_FLIGHT_PERMITS: u32 = IN_FLIGHT as u32;

/// Why a group commit failed: its message, and the storage fault it was, if any (so a
/// request still learns "disk full", not just "failed").
#[derive(Clone, Debug)]
struct Failure {
    fault: Option<StorageFault>,
    message: String,
}

type Ack = oneshot::Sender<Result<(), Failure>>;

/// Handle to the writer tasks (one per shard). Cloneable; the tasks end when every handle is
/// dropped.
#[derive(Clone, Debug)]
pub(crate) struct AuditWriter {
    tx: Vec<mpsc::Sender<(Vec<AuditRecord>, Ack)>>,
    /// Routes a subject to its shard; `None` before the vault has its key (one writer then).
    key: Option<pivault_crypto::AuditChainKey>,
    /// The store's audit shards when the writers started.
    shards: u32,
    metrics: Arc<Metrics>,
}

impl AuditWriter {
    /// Spawns one writer per shard of `store` on the current Tokio runtime; each group
    /// commit's duration and size go to `metrics`. `key` routes entries to their shard.
    pub(crate) fn spawn(
        store: Store,
        key: Option<pivault_crypto::AuditChainKey>,
        metrics: Arc<Metrics>,
    ) -> Self {
        // One writer per process: with a writer per shard (8 shards), each group commit
        // carried an eighth of the entries, and with 4 instances the two cores went to four
        // times as many transactions: 2.7x slower than one writer, 2 writers 1.7x slower,
        // even with the locks let go before the WAL flush (BENCHMARKS.md, issue 15).
        // `writer_for` routes by shard once there are more.
        let writers: usize = 1;
        let shards = store.audit_shard_count().max(1);
        let tx = (0..writers)
            .map(|_| Self::spawn_one(store.clone(), Arc::clone(&metrics)))
            .collect();
        Self {
            tx,
            key,
            shards,
            metrics,
        }
    }

    fn spawn_one(store: Store, metrics: Arc<Metrics>) -> mpsc::Sender<(Vec<AuditRecord>, Ack)> {
        let (tx, mut rx) = mpsc::channel::<(Vec<AuditRecord>, Ack)>(8_192);
        let m = Arc::clone(&metrics);
        // Groups committed and waiting for their WAL flush, at most `IN_FLIGHT` (each holds a
        // connection). The writer begins its next group meanwhile (`WriteTx::commit_pending`).
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                if first.0.is_empty() {
                    // A flush marker (see `flush`): everything sent before it was taken from
                    // the queue in an earlier group; once no group is in flight, each of them
                    // is committed and acknowledged.
                    let _all = in_flight.acquire_many(IN_FLIGHT_PERMITS).await;
                    let _ = first.1.send(Ok(()));
                    continue;
                }
                let mut group = vec![first];
                let mut n = group[0].0.len();
                let mut marker = None;
                while n < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(item) if item.0.is_empty() => {
                            // A flush marker ends the group; it is answered after the commit.
                            marker = Some(item.1);
                            break;
                        }
                        Ok(item) => {
                            n += item.0.len();
                            group.push(item);
                        }
                        Err(_) => break,
                    }
                }
                let now = group
                    .iter()
                    .flat_map(|g| g.0.iter())
                    .map(|r| r.at)
                    .max()
                    .unwrap_or(0);
                let started = Instant::now();
                let permit = Arc::clone(&in_flight).acquire_owned().await;
                let committed = async {
                    let mut tx = store.begin_audit_group(now).await?;
                    for (recs, _) in &mut group {
                        for r in recs.drain(..) {
                            tx.audit(r);
                        }
                    }
                    tx.commit_pending().await
                }
                .await;
                let m = Arc::clone(&m);
                let finish = async move {
                    let result = match committed {
                        Ok((_, pending)) => pending.durable().await,
                        Err(e) => Err(e),
                    }
                    .map_err(|e: pivault_store::StoreError| Failure {
                        fault: e.fault(),
                        message: e.to_string(),
                    });
                    m.audit_commit(started.elapsed(), n);
                    if let Err(e) = &result {
                        match e.fault {
                            Some(f) => tracing::error!(
                                error = %e.message, entries = n, "audit group commit failed: {}", f.describe()
                            ),
                            None => {
                                tracing::error!(error = %e.message, entries = n, "audit group commit failed");
                            }
                        }
                    }
                    for (_, ack) in group {
                        let _ = ack.send(result.clone());
                    }
                    drop(permit);
                };
                if marker.is_some() {
                    // Answered only after this group and every one before it.
                    finish.await;
                    let _all = in_flight.acquire_many(IN_FLIGHT_PERMITS).await;
                    if let Some(mk) = marker {
                        let _ = mk.send(Ok(()));
                    }
                } else {
                    tokio::spawn(finish);
                }
            }
        });
        tx
    }

    /// The writer of `recs`' shard (their first subject's; shard 0 without one).
    fn writer_for(&self, recs: &[AuditRecord]) -> &mpsc::Sender<(Vec<AuditRecord>, Ack)> {
        let shard = match (&self.key, recs.iter().find_map(|r| r.subject_id.as_deref())) {
            (Some(k), Some(s)) if self.tx.len() > 1 => k.shard_of(s, self.shards),
            _ => 0,
        };
        &self.tx[usize::try_from(shard).unwrap_or(0) % self.tx.len()]
    }

    /// Waits until every entry sent before this call has been committed (or failed) and its
    /// request acknowledged: the queue is first in, first out, and an empty batch is a marker
    /// that the writer answers once everything ahead of it is done. Returns at once when the
    /// writer is gone.
    pub(crate) async fn flush(&self) {
        for tx in &self.tx {
            let (ack, done) = oneshot::channel();
            if tx.send((Vec::new(), ack)).await.is_ok() {
                let _ = done.await;
            }
        }
    }

    /// Appends `recs` and waits until they are committed.
    ///
    /// # Errors
    /// [`CoreError::Storage`] when the commit met a storage fault, else [`CoreError::Audit`]
    /// with the commit's message or a note that the writer is gone.
    pub(crate) async fn append(&self, recs: Vec<AuditRecord>) -> Result<(), CoreError> {
        let stopped = || CoreError::Audit("audit writer stopped".to_string());
        let (ack, done) = oneshot::channel();
        let started = Instant::now();
        self.writer_for(&recs)
            .send((recs, ack))
            .await
            .map_err(|_| stopped())?;
        let result = done.await.map_err(|_| stopped())?;
        self.metrics.audit_append(started.elapsed());
        match result {
            Ok(()) => Ok(()),
            Err(Failure {
                fault: Some(fault),
                message,
            }) => Err(CoreError::Storage {
                fault,
                detail: message,
            }),
            Err(Failure { message, .. }) => Err(CoreError::Audit(message)),
        }
    }
}
