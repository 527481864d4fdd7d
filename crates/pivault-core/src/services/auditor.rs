//! The auditor: building and appending audit entries, and the group-commit writer.

use crate::error::CoreError;
use crate::vault::Vault;
use pivault_domain::audit::AuditRecord;

impl Vault {
    pub(crate) fn audit_base(
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
            policy_version: self.policy.version().to_string(),
            request_id: request_id.map(str::to_string),
            ..AuditRecord::default()
        }
    }

    /// Appends audit entries that accompany no other change (decisions), by group commit;
    /// returns once they are committed.
    pub(crate) async fn append_audit(&self, recs: Vec<AuditRecord>) -> Result<(), CoreError> {
        self.audit.append(recs).await
    }
}
