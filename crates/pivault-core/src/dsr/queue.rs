//! The queue: staff views of requests, approval, rejection, extension, due dates.

use crate::dsr::rejection;
use crate::dsr::state_of;
use crate::dsr::DsrView;
use crate::error::CoreError;
use crate::values::format_timestamp;
use crate::vault::Vault;
use crate::Principal;
use pivault_domain::dsr::{can_transition, DsrState};
use pivault_store::DsrFilter;
use tracing::warn;

impl Vault {
    /// A request as staff see it.
    ///
    /// # Errors
    /// `Forbidden` without the admin or dpo role; `NotFound`.
    pub async fn dsr_show(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let row = self
            .store
            .dsr(id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        Ok(self.dsr_view(&row, true, self.now().unix_timestamp()))
    }

    /// Requests matching `f` (with `due_before`: open requests due before it — overdue and
    /// near-due queues).
    ///
    /// # Errors
    /// `Forbidden` without the admin or dpo role.
    pub async fn dsr_list(&self, p: &Principal, f: &DsrFilter) -> Result<Vec<DsrView>, CoreError> {
        Self::require_dsr_staff(p)?;
        let now = self.now().unix_timestamp();
        Ok(self
            .store
            .dsr_list(f)
            .await?
            .iter()
            .map(|r| self.dsr_view(r, true, now))
            .collect())
    }

    /// Accepts a verified request for execution (`verified → in_progress`).
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` from any other state.
    pub async fn dsr_approve(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)? == DsrState::InProgress {
            drop(tx);
            return Ok(self.dsr_view(&row, true, now));
        }
        if state_of(&row)? != DsrState::Verified {
            return Err(CoreError::Conflict("dsr_not_verified"));
        }
        self.transition(
            &mut tx,
            &mut row,
            DsrState::InProgress,
            &p.name,
            "approved",
            now,
        )?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Refuses a request with a reason from [`REJECTION_REASONS`] (PIPL Art. 50).
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Invalid` (`unknown_reason`); `Conflict` for a request that is
    /// completed, rejected or executing.
    pub async fn dsr_reject(
        &self,
        p: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        if rejection(reason).is_none() {
            return Err(CoreError::invalid(
                "reason",
                "unknown_reason",
                "reason is one of identity_not_verified, no_matching_subject, manifestly_unfounded, legal_obligation, national_security_or_public_interest, criminal_proceedings, harms_others, trade_secret",
            ));
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if !can_transition(state_of(&row)?, DsrState::Rejected) {
            return Err(CoreError::Conflict("dsr_cannot_be_rejected"));
        }
        row.reason = Some(reason.to_string());
        tx.dsr_code(id).await?;
        self.transition(
            &mut tx,
            &mut row,
            DsrState::Rejected,
            &p.name,
            "rejected",
            now,
        )?;
        tx.set_code_attempts(id, 0, true).await?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Extends an open request's deadline by its jurisdiction's extension (GDPR Art. 12(3):
    /// two further months, with notice to the requester within the first month), and sends the
    /// notice.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` (`no_extension` where the jurisdiction has none,
    /// `already_extended`, `dsr_closed`).
    pub async fn dsr_extend(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)?.is_terminal() {
            return Err(CoreError::Conflict("dsr_closed"));
        }
        if row.extended_due_at.is_some() {
            return Err(CoreError::Conflict("already_extended"));
        }
        // GDPR Art. 12(3): the requester is told of the extension within the first period.
        if now > row.due_at {
            return Err(CoreError::Conflict("extension_too_late"));
        }
        let received = time::OffsetDateTime::from_unix_timestamp(row.received_at)
            .map_err(|_| CoreError::Conflict("dsr_time_corrupt"))?;
        let ext = self
            .policy()
            .jurisdiction(&row.jurisdiction)
            .and_then(|j| j.extended_due(received))
            .ok_or(CoreError::Conflict("no_extension"))?;
        row.extended_due_at = Some(ext.unix_timestamp());
        row.updated_at = now;
        let mut rec = self.dsr_audit(&p.name, "extended", &row, now);
        rec.detail = rec
            .detail
            .map(|d| format!("{d} due={}", format_timestamp(ext.unix_timestamp())));
        tx.audit(rec);
        tx.update_dsr(&row).await?;
        // The requester is told of the extension through the outbox (GDPR Art. 12(3)).
        let mut ids = Vec::new();
        if let Some(subject) = &row.subject_id {
            let mut m = crate::messages::Enqueue::to_subject(
                crate::messages::kind::DSR_NOTICE,
                subject,
                &format!("{id}#extended"),
                None,
            );
            m.params = Some(serde_json::json!({
                "request": id,
                "channel": row.channel,
                "due": format_timestamp(ext.unix_timestamp()),
            }));
            ids = self.enqueue(&mut tx, &[m], now).await?;
        }
        tx.commit().await?;
        self.deliver_now(&ids).await;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Open requests per jurisdiction: overdue, and due within `near_due_days` (for the
    /// metric). Every jurisdiction the policy declares has an entry (zeros when it has no
    /// open request), so the gauge reads 0 rather than vanishing.
    ///
    /// # Errors
    /// Store failure.
    pub async fn dsr_due_counts(&self) -> Result<Vec<pivault_store::DueCount>, CoreError> {
        let now = self.now().unix_timestamp();
        let near = now + i64::from(self.policy().dsr().near_due_days) * 86_400;
        let mut counts = self.store.dsr_due_counts(now, near).await?;
        for j in self.policy().jurisdictions() {
            if !counts.iter().any(|c| c.jurisdiction == j.key) {
                counts.push(pivault_store::DueCount {
                    jurisdiction: j.key.clone(),
                    overdue: 0,
                    near_due: 0,
                });
            }
        }
        Ok(counts)
    }

    /// Expires the requests never verified in time ([`Vault::dsr_expire_unverified`]), then
    /// logs a warning for each request overdue or due within `near_due_days` (ids, kind and
    /// state only); returns how many were warned about. Requests waiting for verification are
    /// never overdue. Run periodically by the server.
    ///
    /// # Errors
    /// Store failure.
    pub async fn dsr_due_scan(&self) -> Result<usize, CoreError> {
        let expired = self.dsr_expire_unverified().await?;
        if expired > 0 {
            tracing::info!(expired, "unverified data subject requests expired");
        }
        let now = self.now().unix_timestamp();
        let near = now + i64::from(self.policy().dsr().near_due_days) * 86_400;
        let due = self
            .store
            .dsr_list(&DsrFilter {
                due_before: Some(near),
                limit: 1000,
                ..DsrFilter::default()
            })
            .await?;
        for r in &due {
            let d = r.extended_due_at.unwrap_or(r.due_at);
            if d < now {
                warn!(dsr = %r.id, kind = %r.kind, state = %r.state, due_at = %format_timestamp(d), "data subject request overdue");
            } else {
                warn!(dsr = %r.id, kind = %r.kind, state = %r.state, due_at = %format_timestamp(d), "data subject request near its due date");
            }
        }
        Ok(due.len())
    }

    /// Runs again every request left `in_progress` part done (at least one step committed,
    /// not all) with no change for `idle_secs` seconds: the instance running it died mid-run
    /// (kill -9, a crash, a lost host). As the privacy office would with `pivault dsr run`, each
    /// resumes at its first step not committed (steps commit with their progress, so none runs
    /// twice). A request another instance is still running meanwhile is safe too: every step
    /// re-reads its request under the write lock and does nothing when it is already done.
    /// Left alone: approved requests no step of which has run (the office may run them later:
    /// an inquiry is answered by running it), and failed requests (resuming one is the
    /// office's decision). Acts as `actor` with the DPO role. Returns how many requests it
    /// ran; a run that fails is logged (the request shows its failed step) and the others go on.
    ///
    /// Rule: requests are answered within their due date (PIPL Art. 50, policy §7.4); a
    /// request stalled by a crash would otherwise wait for someone to notice it.
    ///
    /// # Errors
    /// Store failure listing the requests.
    pub async fn dsr_resume_stalled(
        &self,
        actor: &str,
        idle_secs: i64,
    ) -> Result<usize, CoreError> {
        let now = self.now().unix_timestamp();
        let stalled = self
            .store
            .dsr_list(&DsrFilter {
                state: Some(DsrState::InProgress.as_str().to_string()),
                limit: 1000,
                ..DsrFilter::default()
            })
            .await?
            .into_iter()
            .filter(|r| r.updated_at <= now - idle_secs && !crate::dsr::steps_done(r).is_empty())
            .collect::<Vec<_>>();
        let p = Principal {
            name: actor.into(),
            roles: vec![crate::dsr::ROLE_DPO.into()],
            purposes: Vec::new(),
            key_id: None,
        };
        for r in &stalled {
            warn!(dsr = %r.id, kind = %r.kind, "data subject request stalled in progress: resuming it");
            if let Err(e) = self.dsr_run_as(&p, &r.id, false).await {
                warn!(dsr = %r.id, error = %e, "resuming a stalled data subject request failed");
            }
        }
        Ok(stalled.len())
    }
}
