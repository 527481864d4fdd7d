//! Legal holds: a subject's data, or a whole category, kept past its retention and past an
//! erasure request while a legal proceeding, an investigation or a regulator requires it
//! (PIPL Art. 47 para. 2 "retention periods prescribed by laws"; Civil Procedure Law
//! Art. 67 evidence preservation). A hold stops deletion by the sweep and by an erasure until
//! it is released. It never stops the subject from seeing the data (PIPL Art. 45).
//!
//! Set and released by `admin` or `dpo` (and the CLI operator), each change audited in its
//! transaction. The audit entry names the hold id, its target and its reference, never the
//! free-text reason (it may quote a case file).

use pivault_store::HoldRow;

use crate::error::CoreError;
use crate::services::principals::Principal;
use crate::vault::Vault;

/// What a new hold covers and why.
#[derive(Debug, Clone)]
pub struct HoldInput {
    /// The subject held, or `None` for a category hold.
    pub subject_id: Option<String>,
    /// The category held (every subject's), or `None` for a subject hold.
    pub category: Option<String>,
    /// Why (1–500 characters, no control characters).
    pub reason: String,
    /// The case, order or ticket it answers to (1–64 of `A-Z a-z 0-9 _ . : / -`).
    pub reference: String,
}

impl Vault {
    /// Sets a legal hold.
    ///
    /// # Errors
    /// `Forbidden` (`role_required`) without admin or dpo; `Invalid` (`hold_target_invalid`)
    /// unless exactly one of subject and category is given and it exists, or a bad
    /// reason/reference (`value_empty`, `value_too_long`, `reference_malformed`), or a
    /// reference that holds a mobile or ID number (`text_holds_pi`); store failure.
    pub async fn hold_set(&self, p: &Principal, input: HoldInput) -> Result<HoldRow, CoreError> {
        Self::require_dsr_staff(p)?;
        let reason = input.reason.trim();
        if reason.is_empty() {
            return Err(CoreError::invalid(
                "reason",
                "value_empty",
                "a hold needs a reason",
            ));
        }
        if reason.chars().count() > 500
            || reason
                .chars()
                .any(|c| c.is_control() || pivault_domain::text::is_invisible(c))
        {
            return Err(CoreError::invalid(
                "reason",
                "value_too_long",
                "a reason is at most 500 characters, without control, zero-width or bidi characters",
            ));
        }
        let reference = input.reference.trim();
        if reference.is_empty()
            || reference.len() > 64
            || !reference
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.:/-".contains(&b))
        {
            return Err(CoreError::invalid(
                "reference",
                "reference_malformed",
                "a reference is 1-64 of A-Z a-z 0-9 _ . : / -",
            ));
        }
        // The reference is written into the audit entry, which erasure never reaches.
        crate::values::refuse_pi_in_name("reference", reference)?;
        match (&input.subject_id, &input.category) {
            (Some(s), None) => {
                if self.store.subject(s).await?.is_none() {
                    return Err(CoreError::invalid(
                        "subject_id",
                        "hold_target_invalid",
                        "no subject has this id",
                    ));
                }
            }
            (None, Some(c)) => {
                if self.policy.category(c).is_none() {
                    return Err(CoreError::invalid(
                        "category",
                        "hold_target_invalid",
                        "the policy has no such category",
                    ));
                }
            }
            _ => {
                return Err(CoreError::invalid(
                    "subject_id",
                    "hold_target_invalid",
                    "name exactly one of subject_id and category",
                ))
            }
        }
        let now = self.now().unix_timestamp();
        let id = format!("hold_{}", hex::encode(Self::random_16()?));
        let row = HoldRow {
            id: id.clone(),
            subject_id: input.subject_id.clone(),
            category: input.category.clone(),
            reason: reason.to_string(),
            reference: reference.to_string(),
            set_by: p.name.as_str().to_string(),
            set_at: now,
            released_by: None,
            released_at: None,
        };
        let mut tx = self.store.begin(now).await?;
        tx.insert_hold(&row).await?;
        let mut rec = self.auditor.base(p.name.as_str(), "hold.set", now, None);
        rec.subject_id = row.subject_id.clone();
        rec.categories = row.category.clone().unwrap_or_default();
        rec.detail = Some(format!("hold={id} reference={reference}"));
        tx.audit(rec);
        tx.commit().await?;
        Ok(row)
    }

    /// Releases a legal hold; the next sweep acts on what it held.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound` (`hold_not_found`); `Conflict` (`hold_released`); store failure.
    pub async fn hold_release(&self, p: &Principal, id: &str) -> Result<HoldRow, CoreError> {
        Self::require_dsr_staff(p)?;
        let now = self.now().unix_timestamp();
        let Some(row) = self.store.hold(id).await? else {
            return Err(CoreError::NotFound("hold"));
        };
        if row.released_at.is_some() {
            return Err(CoreError::Conflict("hold_released"));
        }
        let mut tx = self.store.begin(now).await?;
        if !tx.release_hold(id, p.name.as_str(), now).await? {
            return Err(CoreError::Conflict("hold_released"));
        }
        let mut rec = self
            .auditor
            .base(p.name.as_str(), "hold.release", now, None);
        rec.subject_id = row.subject_id.clone();
        rec.categories = row.category.clone().unwrap_or_default();
        rec.detail = Some(format!("hold={id} reference={}", row.reference));
        tx.audit(rec);
        tx.commit().await?;
        Ok(HoldRow {
            released_by: Some(p.name.as_str().to_string()),
            released_at: Some(now),
            ..row
        })
    }

    /// Legal holds, newest first; only those not released when `active_only`.
    ///
    /// # Errors
    /// `Forbidden`; store failure.
    pub async fn hold_list(
        &self,
        p: &Principal,
        active_only: bool,
    ) -> Result<Vec<HoldRow>, CoreError> {
        Self::require_dsr_staff(p)?;
        Ok(self.store.holds(active_only).await?)
    }

    /// Records that a subject's account was closed (admin or dpo): every `account_closed`
    /// retention clock starts now (policy §7.1 account cancellation, §8.2). Closing twice
    /// keeps the first time. Audited in the same transaction. Returns the closing time.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound` (`subject`); `Conflict` (`subject_erased`); store failure.
    pub async fn close_account(&self, p: &Principal, subject_id: &str) -> Result<i64, CoreError> {
        Self::require_dsr_staff(p)?;
        let Some(row) = self.store.subject(subject_id).await? else {
            return Err(CoreError::NotFound("subject"));
        };
        if row.erased_at.is_some() {
            return Err(CoreError::Conflict("subject_erased"));
        }
        if let Some((Some(at), _)) = self.store.subject_clocks(subject_id).await? {
            return Ok(at);
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        tx.set_closed_at(subject_id, now).await?;
        let mut rec = self
            .auditor
            .base(p.name.as_str(), "subject.close", now, None);
        rec.subject_id = Some(subject_id.to_string());
        tx.audit(rec);
        tx.commit().await?;
        Ok(now)
    }

    fn random_16() -> Result<[u8; 16], CoreError> {
        pivault_crypto::try_random_bytes().ok_or(CoreError::Conflict("rng_unavailable"))
    }
}
