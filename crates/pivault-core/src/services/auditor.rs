//! The auditor: building and appending audit entries, and the group-commit writer.

use crate::error::CoreError;
use crate::services::audit_writer::AuditWriter;
use pivault_domain::audit::AuditRecord;
use pivault_store::Store;

/// Builds audit entries and appends them through the group-commit writer.
pub(crate) struct Auditor {
    writer: AuditWriter,
    policy_version: String,
}

impl Auditor {
    /// An auditor stamping entries with `policy_version`; spawns the group-commit writers
    /// (one per audit shard, routed with `key`).
    pub(crate) fn new(
        store: Store,
        key: Option<pivault_crypto::AuditChainKey>,
        policy_version: &str,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            writer: AuditWriter::spawn(store, key, metrics),
            policy_version: policy_version.to_string(),
        }
    }

    /// An entry of `action` by `actor` at `now` (unix seconds), outcome `ok`, stamped with the
    /// policy version and the request id; the caller fills in subject, purpose, categories.
    pub(crate) fn base(
        &self,
        actor: &str,
        action: &str,
        now: i64,
        request_id: Option<&str>,
    ) -> AuditRecord {
        AuditRecord {
            at: now,
            actor: actor.to_string(),
            action: action.to_string(),
            outcome: "ok".into(),
            policy_version: self.policy_version.clone(),
            request_id: request_id.map(str::to_string),
            ..AuditRecord::default()
        }
    }

    /// Appends audit entries that accompany no other change (decisions), by group commit;
    /// returns once they are committed.
    pub(crate) async fn append(&self, recs: Vec<AuditRecord>) -> Result<(), CoreError> {
        self.writer.append(recs).await
    }

    /// Returns once everything queued before this call is committed and acknowledged.
    pub(crate) async fn flush(&self) {
        self.writer.flush().await;
    }
}
