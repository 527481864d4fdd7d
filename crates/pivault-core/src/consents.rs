//! Consents: the append-only consent ledger of a subject.

use crate::error::CoreError;
use crate::services::principals::Principals;
use crate::values::valid_name;
use crate::vault::Vault;
use crate::Principal;
use crate::ROLE_APP;
use pivault_domain::consent::ConsentMethod;
use pivault_domain::consent::{check_plausible, ActiveConsent, ConsentAction, GivenBy};
use pivault_domain::policy::LegalBasis;
use pivault_store::ConsentRow;
use tracing::instrument;

/// A consent event to record.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    /// Purpose id.
    pub purpose: String,
    /// `grant` | `withdraw`.
    pub action: String,
    /// `self` | `guardian`.
    pub given_by: String,
    /// How it was collected (`web`, `app`, `api`, …).
    pub method: String,
    /// Collected as a separate consent (PIPL Art. 29).
    pub separate: bool,
    /// When the subject acted (unix seconds); defaults to now.
    pub at: Option<i64>,
    /// Caller's event id (idempotency); defaults to a fresh UUID.
    pub event_ref: Option<String>,
    /// Policy version shown to the subject; defaults to the version in force.
    pub policy_version: Option<String>,
    /// The recipient the consent names (a declared recipient, or `public` for a public
    /// disclosure): PIPL Art. 23, 25, 39 need consents that name who receives the data.
    pub recipient: Option<String>,
}

impl Vault {
    /// Appends a consent event to the subject's ledger (never rewrites earlier rows).
    ///
    /// # Errors
    /// `Invalid` for an unknown purpose, action or giver, a purpose that does not rest on
    /// consent without a recipient (`purpose_not_consent_based`), or an implausible consent
    /// ([`check_plausible`]: `consent_time_implausible`, `consent_time_in_future`,
    /// `guardian_for_adult`); `Forbidden` (`guardian_consent_required`) for a grant by a
    /// child under 14 themselves (PIPL Art. 31), `purpose_not_permitted`; `NotFound`;
    /// `Conflict` (`service_ceased`) for a grant once a service cessation has started;
    /// `Conflict` for an erased subject or a repeated `event_ref`.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id))]
    pub async fn record_consent(
        &self,
        p: &Principal,
        subject_id: &str,
        input: &ConsentInput,
        request_id: Option<&str>,
    ) -> Result<ConsentRow, CoreError> {
        Principals::require_role(p, ROLE_APP)?;
        let purpose = self.policy.purpose(&input.purpose).ok_or_else(|| {
            CoreError::invalid(
                "purpose",
                "unknown_purpose",
                "purpose is not declared in the policy",
            )
        })?;
        let action = ConsentAction::parse(&input.action).ok_or_else(|| {
            CoreError::invalid("action", "unknown_action", "action is grant or withdraw")
        })?;
        let given_by = GivenBy::parse(&input.given_by).ok_or_else(|| {
            CoreError::invalid(
                "given_by",
                "unknown_given_by",
                "given_by is self or guardian",
            )
        })?;
        // Closed lists: free text here would be stored in clear in the ledger and audit log,
        // where a caller could put PI that erasure cannot reach.
        if ConsentMethod::parse(&input.method).is_none() {
            return Err(CoreError::invalid(
                "method",
                "unknown_method",
                "method is web, app, api, import, paper, phone, email or dsr",
            ));
        }
        // A consent to a purpose that rests on a contract or a legal duty would count for
        // nothing and mislead whoever reads the ledger (PIPL Art. 13, 15). One naming a
        // recipient is the consent a share, transfer or disclosure needs whatever the
        // purpose's basis (Art. 23, 25, 39).
        if purpose.legal_basis != LegalBasis::Consent && input.recipient.is_none() {
            return Err(CoreError::invalid(
                "purpose",
                "purpose_not_consent_based",
                "the purpose does not rest on consent (PIPL Art. 13); only consent-based purposes, or a consent naming its recipient, are recorded",
            ));
        }
        if !p.purposes.iter().any(|x| x == &input.purpose) {
            return Err(CoreError::Forbidden {
                code: "purpose_not_permitted",
                message: "the API key may not record consents for this purpose",
            });
        }
        if let Some(r) = &input.event_ref {
            if !valid_name(r) {
                return Err(CoreError::invalid(
                    "event_ref",
                    "event_ref_malformed",
                    "1-128 characters of A-Z a-z 0-9 _ . : -",
                ));
            }
            // Kept in clear in the ledger for good (a withdrawal never rewrites it).
            crate::values::refuse_pi_in_name("event_ref", r)?;
        }
        if let Some(r) = &input.recipient {
            if r != "public" && self.policy.recipient(r).is_none() {
                return Err(CoreError::invalid(
                    "recipient",
                    "undeclared_recipient",
                    "recipient is not declared in the policy",
                ));
            }
        }
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let at = input.at.unwrap_or(now);
        // Cheap checks first (no subject needed), then those that need the birth date.
        check_plausible(at, now, None, GivenBy::Subject, self.policy.minor_age())
            .map_err(|e| CoreError::invalid("at", e.code, e.reason))?;
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        if subject.status != "active" {
            return Err(CoreError::Conflict("subject_erased"));
        }
        let birth = self.facts.cached(subject_id, now_t).await?.birth_date;
        check_plausible(at, now, birth, given_by, self.policy.minor_age()).map_err(|e| {
            let field = if e.code == "guardian_for_adult" {
                "given_by"
            } else {
                "at"
            };
            CoreError::invalid(field, e.code, e.reason)
        })?;
        // A child under 14 at the time does not consent alone (PIPL Art. 31): the grant would
        // enter the ledger and count for nothing, so it is refused and the caller told why.
        // A child's own withdrawal is kept: it only narrows what is done with their PI.
        if action == ConsentAction::Grant && given_by == GivenBy::Subject {
            if let Some(birth) = birth {
                let day = time::OffsetDateTime::from_unix_timestamp(at)
                    .map_or(now_t.date(), time::OffsetDateTime::date);
                if pivault_domain::decision::age_on(birth, day) < i32::from(self.policy.minor_age())
                {
                    return Err(CoreError::Forbidden {
                        code: "guardian_consent_required",
                        message: "the subject was under 14 at the time: a parent or guardian consents for them (given_by guardian; PIPL Art. 31)",
                    });
                }
            }
        }
        let mut row = ConsentRow {
            seq: 0,
            event_ref: input
                .event_ref
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            subject_id: subject_id.into(),
            purpose: purpose.id.clone(),
            action: action.as_str().into(),
            at,
            given_by: given_by.as_str().into(),
            method: input.method.clone(),
            separate: input.separate || purpose.separate_consent,
            policy_version: input
                .policy_version
                .clone()
                .unwrap_or_else(|| self.policy.version().to_string()),
            recorded_at: now,
            recipient: input.recipient.clone(),
        };
        // A consent naming its recipient is a separate consent by construction.
        row.separate |= row.recipient.is_some();
        let mut tx = self.store.begin(now).await?;
        if tx.subject_status(subject_id).await?.as_deref() != Some("active") {
            return Err(CoreError::Conflict("subject_erased"));
        }
        if action == ConsentAction::Grant {
            // A service that is ending takes no new basis for processing (policy §8.6); a
            // withdrawal is always taken (PIPL Art. 15).
            Self::refuse_if_ceased(&mut tx).await?;
        }
        if tx.insert_consents(std::slice::from_ref(&row)).await? == 0 {
            return Err(CoreError::Conflict("consent_event_exists"));
        }
        let mut rec = self.auditor.base(
            &p.name,
            &format!("consent.{}", action.as_str()),
            now,
            request_id,
        );
        rec.subject_id = Some(subject_id.into());
        rec.purpose = Some(purpose.id.clone());
        rec.detail = Some(format!(
            "given_by={} method={} separate={}{}",
            row.given_by,
            row.method,
            row.separate,
            row.recipient
                .as_deref()
                .map(|r| format!(" recipient={r}"))
                .unwrap_or_default()
        ));
        tx.audit(rec);
        tx.bump_facts_epoch().await?;
        tx.commit().await?;
        self.facts.changed(subject_id);
        Ok(row)
    }

    /// The subject's consent ledger and the consents in force now.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn consents(
        &self,
        p: &Principal,
        subject_id: &str,
    ) -> Result<(Vec<ConsentRow>, Vec<(String, ActiveConsent)>), CoreError> {
        Principals::require_role(p, ROLE_APP)?;
        self.store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        let (rows, state) = self
            .facts
            .consent_state(subject_id, self.clock.now())
            .await?;
        let active = state
            .active_purposes()
            .into_iter()
            .filter_map(|p| state.active(p).map(|a| (p.to_string(), a.clone())))
            .collect();
        Ok((rows, active))
    }
}
