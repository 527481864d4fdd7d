//! The instance's lifecycle: readiness (`GET /readyz`) and the flush before exit.
//!
//! Readiness is more than liveness: an instance is ready only when its database answers, the
//! database's schema has every migration this build knows, the master key it holds is the one
//! the database records (its key check value, see [`crate::keycheck`]) and writes are being
//! stored (no storage fault outstanding). A load balancer sends traffic to ready instances
//! only; `/healthz` stays "the process is up".

use crate::Vault;
use pivault_store::StorageFault;
use std::time::Duration;

/// Longest a readiness check waits for the database before calling it unreachable.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Why an instance is not ready (each maps to a stable 503 code in the server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The database does not answer, or writes fail ([`StorageFault`]).
    Storage(StorageFault),
    /// The database lacks migrations this build has (their versions).
    MigrationsPending(Vec<i64>),
    /// The database records no key check value, or another key's: the loaded master key is
    /// not (or no longer) the database's.
    KeyNotLoaded,
}

impl Vault {
    /// Readiness: writes being stored ([`Vault::write_readiness`]), database reachable
    /// (`SELECT 1` within 2 s), migrations applied, the loaded master key matching the
    /// database's key check value. Reads only (besides the write probe after a fault).
    ///
    /// # Errors
    /// The first [`NotReady`] reason found, in that order.
    pub async fn readiness(&self) -> Result<(), NotReady> {
        // An outstanding write fault first: it names the fault (full, busy, unavailable) and
        // probes for its end.
        self.write_readiness().await.map_err(NotReady::Storage)?;
        let unreachable = || NotReady::Storage(StorageFault::Unavailable);
        let fault = |e: pivault_store::StoreError| {
            NotReady::Storage(e.fault().unwrap_or(StorageFault::Unavailable))
        };
        tokio::time::timeout(CHECK_TIMEOUT, self.store.ping())
            .await
            .map_err(|_| unreachable())?
            .map_err(fault)?;
        let pending = tokio::time::timeout(CHECK_TIMEOUT, self.store.pending_migrations())
            .await
            .map_err(|_| unreachable())?
            .map_err(fault)?;
        if !pending.is_empty() {
            return Err(NotReady::MigrationsPending(pending));
        }
        let meta = tokio::time::timeout(CHECK_TIMEOUT, self.store.vault_meta())
            .await
            .map_err(|_| unreachable())?
            .map_err(fault)?;
        let matches = meta
            .and_then(|m| m.key_check)
            .is_some_and(|k| self.sealer.keys().matches_key_check(&k));
        if matches {
            Ok(())
        } else {
            Err(NotReady::KeyNotLoaded)
        }
    }

    /// Waits until every audit entry handed to the group-commit writer before this call is
    /// committed (or failed) and acknowledged to its request. Called on shutdown, after the
    /// server stopped accepting and drained its requests, so nothing acknowledged is still
    /// in the writer's queue when the process exits.
    pub async fn flush_audit(&self) {
        self.auditor.flush().await;
    }

    /// Flushes the audit writer ([`Vault::flush_audit`]) and closes the database pool (SQLite:
    /// the last connection checkpoints the WAL). The vault must not be used afterwards.
    pub async fn shutdown(&self) {
        self.flush_audit().await;
        self.store.close().await;
    }
}
