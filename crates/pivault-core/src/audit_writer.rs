//! Group commit for audit entries of decisions.
//!
//! A decision that changes nothing else still has to be audited before it is answered. One
//! transaction per decision serializes every request on the chain-head lock and a commit; here
//! concurrent requests hand their entries to one writer task, which appends everything waiting
//! in ONE transaction and then acknowledges each request. A request is answered only after its
//! entry is committed, so the guarantee is unchanged: no decision without its audit entry.

use pivault_domain::audit::AuditRecord;
use pivault_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most entries appended in one transaction.
const MAX_GROUP: usize = 2_000;

/// Why a group commit failed, as every request of the group is told.
#[derive(Clone, Debug)]
pub(crate) enum AppendFailure {
    /// The store was busy ([`StoreError::Busy`]): nothing was committed, a retry may succeed.
    Busy(&'static str),
    /// Any other failure: the error's message (no PI), or a note that the writer is gone.
    Failed(String),
}

type Ack = oneshot::Sender<Result<(), AppendFailure>>;

/// Handle to the writer task. Cloneable; the task ends when every handle is dropped.
#[derive(Clone, Debug)]
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<(Vec<AuditRecord>, Ack)>,
}

impl AuditWriter {
    /// Spawns the writer on the current Tokio runtime.
    pub(crate) fn spawn(store: Store) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Vec<AuditRecord>, Ack)>(8_192);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                let mut n = group[0].0.len();
                while n < MAX_GROUP {
                    match rx.try_recv() {
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
                let result = async {
                    let mut tx = store.begin(now).await?;
                    for (recs, _) in &mut group {
                        for r in recs.drain(..) {
                            tx.audit(r);
                        }
                    }
                    tx.commit().await
                }
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    StoreError::Busy(why) => AppendFailure::Busy(why),
                    e => AppendFailure::Failed(e.to_string()),
                });
                match &result {
                    Err(AppendFailure::Busy(why)) => {
                        tracing::warn!(why, entries = n, "audit group commit: storage busy");
                    }
                    Err(AppendFailure::Failed(e)) => {
                        tracing::error!(error = %e, entries = n, "audit group commit failed");
                    }
                    Ok(()) => {}
                }
                for (_, ack) in group {
                    let _ = ack.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Appends `recs` and waits until they are committed.
    ///
    /// # Errors
    /// Why the group commit failed, or that the writer is gone.
    pub(crate) async fn append(&self, recs: Vec<AuditRecord>) -> Result<(), AppendFailure> {
        let (ack, done) = oneshot::channel();
        let stopped = || AppendFailure::Failed("audit writer stopped".to_string());
        self.tx.send((recs, ack)).await.map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?
    }
}

impl From<AppendFailure> for crate::CoreError {
    fn from(f: AppendFailure) -> Self {
        match f {
            AppendFailure::Busy(why) => Self::Store(StoreError::Busy(why)),
            AppendFailure::Failed(e) => Self::Audit(e),
        }
    }
}
