//! Misuse reports and security locks (policy §8.7: "if you find that your personal information
//! has been leaked or used abnormally, contact us … we will take security measures"; PIPL
//! Art. 51(4)).
//!
//! A misuse report is a data subject request of kind `misuse_report`, filed and verified like
//! any other (the keyless intake, a one-time code to the account's own address). Once verified
//! it needs no approval: its one step, `lock`, runs at once. The step, in one transaction, opens
//! a security case with the subject's recent access history from the audit log (who read or
//! received what, when: ids, purposes and category keys, no values), sets the subject's lock,
//! queues an acknowledgement to the subject, and audits it. From that commit on, every read,
//! lookup match, provision and export of the subject is refused with `subject_locked` (423) for
//! every principal but the `security` role, until security releases the case.

use pivault_store::{DsrRow, SecurityCaseRow, WriteTx};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::CoreError;
use crate::messages::{kind, Enqueue};
use crate::{Principal, Vault};

/// Audit entries of access history attached to a case.
const HISTORY: i64 = 200;

/// A security case as the security team sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    /// Id.
    pub id: String,
    /// The subject.
    pub subject_id: String,
    /// `misuse_report`.
    pub source: String,
    /// `open` or `released`.
    pub state: String,
    /// Unix seconds.
    pub opened_at: i64,
    /// Recent access history (no values).
    pub history: Value,
    /// Who released it.
    pub released_by: Option<String>,
    /// Unix seconds.
    pub released_at: Option<i64>,
}

fn view(c: SecurityCaseRow) -> CaseView {
    CaseView {
        history: serde_json::from_str(&c.history).unwrap_or(Value::Null),
        id: c.id,
        subject_id: c.subject_id,
        source: c.source,
        state: c.state,
        opened_at: c.opened_at,
        released_by: c.released_by,
        released_at: c.released_at,
    }
}

impl Vault {
    /// The `lock` step of a misuse report (see the module doc).
    pub(crate) async fn step_lock(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let history: Vec<Value> = tx
            .releases_of_subject(subject, HISTORY)
            .await?
            .into_iter()
            .map(|r| {
                json!({
                    "seq": r.seq, "at": r.at, "actor": r.actor, "action": r.action,
                    "purpose": r.purpose, "categories": r.categories,
                    "key": r.detail.as_deref().and_then(|d| d.split(' ').find_map(|t| t.strip_prefix("key="))),
                })
            })
            .collect();
        let case = SecurityCaseRow {
            id: format!("case-{}", uuid::Uuid::new_v4().simple()),
            subject_id: subject.to_string(),
            source: "misuse_report".into(),
            state: "open".into(),
            opened_at: now,
            history: Value::Array(history.clone()).to_string(),
            released_by: None,
            released_at: None,
        };
        tx.open_case(&case).await?;
        tx.bump_facts_epoch().await?;
        let lang = tx.subject_lang(subject).await?;
        self.enqueue(
            tx,
            &[Enqueue::to_subject(
                kind::MISUSE,
                subject,
                &case.id,
                lang.as_deref(),
            )],
            now,
        )
        .await?;
        let mut rec = self.auditor.base("security", "subject.lock", now, None);
        rec.subject_id = Some(subject.to_string());
        rec.detail = Some(format!(
            "case={} dsr={} history={}",
            case.id,
            row.id,
            history.len()
        ));
        tx.audit(rec);
        Ok(json!({ "case": case.id, "history_entries": history.len() }))
    }

    /// Refuses a release of a locked subject's PI to anyone but the security role (policy
    /// §8.7): audits the refusal (`deny`, reason `subject_locked`) and returns
    /// `Conflict(subject_locked)` (423). `Ok` for the security role.
    pub(crate) async fn refuse_locked(
        &self,
        p: &Principal,
        action: &str,
        subject_id: &str,
        purpose: &str,
        now: i64,
        request_id: Option<&str>,
    ) -> Result<(), CoreError> {
        if p.has_role("security") {
            return Ok(());
        }
        let mut rec = self.auditor.base(&p.name, action, now, request_id);
        rec.subject_id = Some(subject_id.to_string());
        rec.purpose = Some(purpose.to_string());
        rec.outcome = "deny".into();
        rec.reason = Some("subject_locked".into());
        rec.detail = crate::access::release_detail(p, 0);
        self.auditor.append(vec![rec]).await?;
        Err(CoreError::Conflict("subject_locked"))
    }

    /// Security cases, newest first (`open_only`: those still locking a subject).
    ///
    /// # Errors
    /// `Forbidden` without the security role; store failure.
    pub async fn security_cases(
        &self,
        p: &Principal,
        open_only: bool,
    ) -> Result<Vec<CaseView>, CoreError> {
        Self::require_security(p)?;
        Ok(self
            .store
            .security_cases(open_only)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    /// One security case.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound` (`lock_not_found`).
    pub async fn security_case(&self, p: &Principal, id: &str) -> Result<CaseView, CoreError> {
        Self::require_security(p)?;
        self.store
            .security_case(id)
            .await?
            .map(view)
            .ok_or(CoreError::NotFound("lock"))
    }

    /// Releases a case and unlocks its subject (audited).
    ///
    /// # Errors
    /// `Forbidden` without the security role; `NotFound` (`lock_not_found`) for an unknown
    /// case; `Conflict` (`case_released`) for one already released; store failure.
    pub async fn release_case(&self, p: &Principal, id: &str) -> Result<CaseView, CoreError> {
        if !p.has_role("security") {
            return Err(CoreError::Forbidden {
                code: "role_required",
                message: "releasing a security lock needs the security role",
            });
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        if !tx.release_case(id, &p.name, now).await? {
            drop(tx);
            // Known but no longer open: say so, as a second hold release does.
            return Err(if self.store.security_case(id).await?.is_some() {
                CoreError::Conflict("case_released")
            } else {
                CoreError::NotFound("lock")
            });
        }
        tx.bump_facts_epoch().await?;
        let mut rec = self.auditor.base(&p.name, "subject.unlock", now, None);
        rec.detail = Some(format!("case={id}"));
        tx.audit(rec);
        tx.commit().await?;
        let c = self
            .store
            .security_case(id)
            .await?
            .ok_or(CoreError::NotFound("lock"))?;
        self.facts.changed(&c.subject_id);
        Ok(view(c))
    }
}
