//! Running a request: its steps in order, each committed with its progress and audit entry
//! (in a group commit with other runs' steps, `dsr::group`), resumable after a crash.

use crate::dsr::kind_of;
use crate::dsr::state_of;
use crate::dsr::steps_done;
use crate::dsr::steps_of;
use crate::dsr::DsrView;
use crate::error::CoreError;
use crate::fault::Fault;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::values::format_timestamp;
use crate::vault::Vault;
use crate::Principal;
use pivault_crypto::Dek;
use pivault_domain::audit::AuditRecord;
use pivault_domain::dsr::DsrState;
use pivault_store::{DsrRow, WriteTx};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::warn;

/// A step staged in a write transaction, not yet committed ([`Vault::stage_step`]).
#[derive(Debug)]
pub(crate) struct StagedStep {
    /// The request as the step leaves it.
    pub(crate) row: DsrRow,
    /// The request's subject.
    pub(crate) subject: String,
    /// The subject's primary DEK was destroyed (crypto-shredding).
    pub(crate) shredded: bool,
    /// The subject's decision facts changed (consents, fields, a lock).
    pub(crate) facts_changed: bool,
}

impl Vault {
    /// Executes an approved (or failed, to resume it) request's remaining steps, each
    /// committed with its progress and audit entry (grouped with other runs' steps in one
    /// transaction, `dsr::group`). A duplicate is never executed: it is
    /// completed with a link to the request it duplicates. A failing step leaves the request
    /// `failed(step)` and runs no later step; running it again resumes at that step.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` for a request not approved; `Conflict`
    /// (`fault_injected`) when an injected halt stops execution.
    pub async fn dsr_run(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        self.dsr_run_as(p, id, true).await
    }

    /// [`Vault::dsr_run`]; a failed request is resumed only with `resume_failed` (otherwise
    /// it is answered as it is, nothing run: [`Vault::dsr_resume_stalled`] leaves that to the
    /// privacy office).
    pub(crate) async fn dsr_run_as(
        &self,
        p: &Principal,
        id: &str,
        resume_failed: bool,
    ) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let row = self
            .store
            .dsr(id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        let kind = kind_of(&row)?;
        let now = self.now().unix_timestamp();
        match state_of(&row)? {
            DsrState::InProgress => {}
            DsrState::Failed if !resume_failed => return Ok(self.dsr_view(&row, true, now)),
            DsrState::Failed => {
                let mut tx = self.store.begin(now).await?;
                let mut r = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
                if state_of(&r)? == DsrState::Failed {
                    r.failed_step = None;
                    self.transition(
                        &mut tx,
                        &mut r,
                        DsrState::InProgress,
                        &p.name,
                        "resumed",
                        now,
                    )?;
                    tx.update_dsr(&r).await?;
                    tx.commit().await?;
                }
            }
            DsrState::Completed => return Ok(self.dsr_view(&row, true, now)),
            _ => return Err(CoreError::Conflict("dsr_not_approved")),
        }
        if row.duplicate_of.is_some() {
            let mut tx = self.store.begin(now).await?;
            let mut r = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
            if state_of(&r)? == DsrState::InProgress {
                r.step_results = json!({ "duplicate_of": r.duplicate_of }).to_string();
                self.transition(
                    &mut tx,
                    &mut r,
                    DsrState::Completed,
                    &p.name,
                    "completed_as_duplicate",
                    now,
                )?;
                tx.update_dsr(&r).await?;
                tx.commit().await?;
            }
            return Ok(self.dsr_view(&r, true, now));
        }
        let steps = steps_of(kind);
        if steps.is_empty() {
            // A kind with no step (an inquiry answered by the office, a sign-in): running it
            // completes it, once, with its audit entry.
            let mut tx = self.store.begin(now).await?;
            let mut r = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
            if state_of(&r)? == DsrState::InProgress {
                self.transition(
                    &mut tx,
                    &mut r,
                    DsrState::Completed,
                    &p.name,
                    "completed",
                    now,
                )?;
                tx.update_dsr(&r).await?;
                tx.commit().await?;
            }
            return Ok(self.dsr_view(&r, true, now));
        }
        // The request as this run last saw it: each step returns the row it committed, so no
        // step needs a read of its own before it (`run_step` re-reads under the write lock).
        let mut cur = row;
        if state_of(&cur)? == DsrState::Failed {
            cur = self
                .store
                .dsr(id)
                .await?
                .ok_or(CoreError::NotFound("dsr"))?;
        }
        for (i, step) in steps.iter().enumerate() {
            if steps_done(&cur).iter().any(|s| s == step) {
                continue;
            }
            let last = i + 1 == steps.len();
            let fault = self.fault();
            let res = if fault == Some(Fault::FailAt((*step).to_string())) {
                Err(CoreError::Conflict("fault_injected"))
            } else {
                self.run_step(&p.name, id, step, last).await
            };
            match res {
                Err(e) => {
                    warn!(dsr = %id, step = *step, error = %e, "request step failed");
                    return self.mark_failed(&p.name, id, step).await;
                }
                Ok(Some(r)) => cur = r,
                // Another run moved the request meanwhile: follow it.
                Ok(None) => {
                    cur = self
                        .store
                        .dsr(id)
                        .await?
                        .ok_or(CoreError::NotFound("dsr"))?;
                    if state_of(&cur)? != DsrState::InProgress {
                        return Ok(self.dsr_view(&cur, true, self.now().unix_timestamp()));
                    }
                }
            }
            match fault {
                Some(Fault::HaltAfter(s)) if s == *step => {
                    return Err(CoreError::Conflict("fault_injected"));
                }
                Some(Fault::AbortAfter(s)) if s == *step => std::process::abort(),
                _ => {}
            }
        }
        Ok(self.dsr_view(&cur, true, self.now().unix_timestamp()))
    }

    pub(crate) async fn mark_failed(
        &self,
        actor: &str,
        id: &str,
        step: &str,
    ) -> Result<DsrView, CoreError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        row.failed_step = Some(step.to_string());
        self.transition(&mut tx, &mut row, DsrState::Failed, actor, "failed", now)?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Stages one step in `tx` (a step's part of a group commit, see `dsr::group`): re-reads
    /// the request under the write lock (a concurrent run, or an earlier part of the same
    /// group, may have done the step), stages the step's change, records the step and its
    /// results (completing the request after the last step) and queues its audit entry.
    /// `None` when there is nothing to do. Nothing is committed here.
    ///
    /// # Errors
    /// The step's failure; store failure. The caller rolls back what was staged.
    pub(crate) async fn stage_step(
        &self,
        tx: &mut WriteTx,
        actor: &str,
        id: &str,
        step: &str,
        last: bool,
        now: i64,
    ) -> Result<Option<StagedStep>, CoreError> {
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)? != DsrState::InProgress || steps_done(&row).iter().any(|s| s == step) {
            return Ok(None);
        }
        let subject = row
            .subject_id
            .clone()
            .ok_or(CoreError::Conflict("dsr_without_subject"))?;
        let mut shredded = false;
        let mut rec = self.dsr_audit(actor, &format!("step.{step}"), &row, now);
        let results: Value = match step {
            "package" => self.step_package(tx, actor, &row, &subject, now).await?,
            "explain" => self.step_explain(tx, &row, &subject, now).await?,
            "correct" => {
                let (n, cats) = self.step_correct(tx, &row, &subject, now).await?;
                row.sealed_params = None;
                rec.categories = AuditRecord::join_categories(cats.iter().map(String::as_str));
                json!({ "fields": n })
            }
            "withdraw" => self.step_withdraw(tx, &row, &subject, now).await?,
            "restrict_retained" => {
                if tx.subject_lock_case(&subject).await?.is_some() {
                    // A misuse report locked the subject (policy §8.7): nothing is destroyed
                    // while security investigates (the request fails at this step and can be
                    // run again once the case is released).
                    return Err(CoreError::Conflict("subject_locked"));
                }
                let dek = self.sealer.dek_in(tx, &subject, SCOPE_PRIMARY).await?;
                match dek {
                    Some(dek)
                        if tx.subject_status(&subject).await?.as_deref() == Some("active") =>
                    {
                        let retained = self.stage_restrict(tx, &subject, &dek, now).await?;
                        rec.categories = AuditRecord::join_categories(
                            retained.iter().map(|r| r.category.as_str()),
                        );
                        json!({ "retained": retained.iter().map(|r| json!({
                            "category": r.category, "fields": r.fields, "until": format_timestamp(r.until),
                            "basis": r.basis, "clause": r.clause,
                        })).collect::<Vec<_>>() })
                    }
                    _ => json!({ "retained": [], "already_erased": true }),
                }
            }
            "shred" => {
                let dek = self.sealer.dek_in(tx, &subject, SCOPE_PRIMARY).await?;
                match dek {
                    Some(dek)
                        if tx.subject_status(&subject).await?.as_deref() == Some("active") =>
                    {
                        let out = self.stage_shred(tx, &subject, &dek, now).await?;
                        // At once, not after the commit: a later step of the same group
                        // commit (another request of this subject) must not find the
                        // destroyed DEK in the cache. Forgetting early only costs a read.
                        self.sealer.forget(&subject);
                        shredded = true;
                        rec.categories = AuditRecord::join_categories(
                            out.deleted_categories.iter().map(String::as_str),
                        );
                        json!({
                            "destroyed_key_id": out.destroyed_key_id,
                            "deleted_fields": out.deleted_fields,
                            "deleted_categories": out.deleted_categories,
                            "blind_index_entries_removed": out.blind_index_entries_removed,
                        })
                    }
                    _ => json!({ "already_erased": true }),
                }
            }
            "notify_recipients" => self.step_notify(tx, &row, &subject, actor, now).await?,
            "receipt" => self.step_receipt(tx, &mut row, &subject, now).await?,
            "lock" => self.step_lock(tx, &row, &subject, now).await?,
            _ => return Err(CoreError::Conflict("dsr_step_unknown")),
        };
        let mut all: BTreeMap<String, Value> =
            serde_json::from_str(&row.step_results).unwrap_or_default();
        all.insert(step.to_string(), results);
        row.step_results = serde_json::to_string(&all).unwrap_or_else(|_| "{}".into());
        if !row.steps_done.is_empty() {
            row.steps_done.push(',');
        }
        row.steps_done.push_str(step);
        row.updated_at = now;
        tx.audit(rec);
        if last {
            self.transition(tx, &mut row, DsrState::Completed, actor, "completed", now)?;
        }
        tx.update_dsr(&row).await?;
        Ok(Some(StagedStep {
            row,
            subject,
            shredded,
            facts_changed: matches!(step, "lock" | "correct" | "withdraw"),
        }))
    }

    /// The subject's primary DEK inside a step's transaction (cache, else read through `tx`).
    pub(crate) async fn primary_dek(
        &self,
        tx: &mut WriteTx,
        subject: &str,
    ) -> Result<Arc<Dek>, CoreError> {
        self.sealer
            .dek_in(tx, subject, SCOPE_PRIMARY)
            .await?
            .ok_or(CoreError::Conflict("subject_key_missing"))
    }
}
