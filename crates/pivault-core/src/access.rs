//! The one access path: decide, narrow by the staff policy, audit.

use crate::error::{CoreError, Denial};
use crate::metrics::Door;
use crate::services::facts::ReleaseFacts;
use crate::services::sealer::Sealer;
use crate::values::FieldValue;
use crate::values::{FailedField, FIELD_INTEGRITY_FAILED};
use crate::vault::Vault;
use crate::FieldOutput;
use crate::Principal;
use crate::STAFF_ROLES;
use pivault_domain::audit::AuditRecord;
use pivault_domain::decision::{decide, AccessRequest, Decision, Obligation, Reason, SubjectFacts};
use std::collections::HashSet;

pub(crate) fn denial(d: &Decision<'_>) -> Denial {
    Denial {
        code: d.reason.as_str(),
        article: d.reason.article(),
        clause: d.clause.to_string(),
        explanation: d.explanation(),
        withheld: d
            .withheld
            .iter()
            .map(|w| (w.category.to_string(), w.reason.as_str()))
            .collect(),
    }
}

impl Vault {
    /// Narrows an allowed decision for an operator (support, dpo, security): categories the
    /// staff policy denies are withheld, those it allows masked get a `mask:` obligation. A
    /// decision left with nothing is a deny (`staff_not_authorized`). No-op for other callers.
    pub(crate) fn apply_staff<'p>(&'p self, p: &Principal, purpose: &str, d: &mut Decision<'p>) {
        let roles: Vec<String> = p
            .roles
            .iter()
            .filter(|r| STAFF_ROLES.contains(&r.as_str()))
            .cloned()
            .collect();
        if roles.is_empty() || !d.allowed {
            return;
        }
        let access = match &self.staff {
            Some(staff) => staff.authorize_all(&p.name, &roles, &d.allowed_categories, purpose),
            // An operator without a staff policy loaded gets nothing: a missing rule is a deny.
            None => vec![pivault_staff::StaffAccess::Denied; d.allowed_categories.len()],
        };
        let mut kept = Vec::new();
        for (cat, a) in d.allowed_categories.iter().zip(access) {
            match a {
                pivault_staff::StaffAccess::Clear => kept.push(*cat),
                pivault_staff::StaffAccess::Masked => {
                    kept.push(*cat);
                    d.obligations.push(Obligation::Mask(cat));
                }
                pivault_staff::StaffAccess::Denied => {
                    d.withheld.push(pivault_domain::decision::Withheld {
                        category: cat,
                        reason: Reason::StaffNotAuthorized,
                    });
                }
            }
        }
        d.allowed_categories = kept;
        if d.allowed_categories.is_empty() {
            d.allowed = false;
            d.reason = Reason::StaffNotAuthorized;
            d.clause = Reason::StaffNotAuthorized.clause();
        }
    }

    /// Opens the fields in `allowed` categories: under an erased subject only the restricted
    /// ones still within their retention, otherwise only the unrestricted ones. A field whose
    /// ciphertext fails authentication does not stop the others: it is returned in the second
    /// list (record, name, category, code [`FIELD_INTEGRITY_FAILED`]), never with a value; the
    /// caller audits and counts each one ([`Vault::integrity_failures`]).
    pub(crate) fn open_allowed(
        f: &ReleaseFacts,
        allowed: &[&str],
        now: i64,
    ) -> (Vec<FieldOutput>, Vec<FailedField>) {
        let Some(dek) = f.dek.as_deref() else {
            return (Vec::new(), Vec::new());
        };
        let erased = f.facts.erased;
        let allowed: HashSet<&str> = allowed.iter().copied().collect();
        let mut opened = Vec::new();
        let mut failed = Vec::new();
        for r in f.fields.iter().filter(|r| {
            allowed.contains(r.category.as_str())
                && r.restricted_until.is_none_or(|u| u > now)
                && erased == r.restricted_until.is_some()
        }) {
            match Sealer::open_row(dek, r) {
                Ok(value) => opened.push(FieldOutput {
                    record: r.record.clone(),
                    name: r.name.clone(),
                    category: r.category.clone(),
                    value,
                    restricted_until: r.restricted_until,
                }),
                Err(_) => failed.push(FailedField {
                    record: r.record.clone(),
                    name: r.name.clone(),
                    category: r.category.clone(),
                    code: FIELD_INTEGRITY_FAILED,
                }),
            }
        }
        (opened, failed)
    }

    /// For each field that failed authentication at `door`: counts it in the metrics, warns in
    /// the log (subject id, field path, category; never a value) and returns its audit entry
    /// (`field.integrity_failed`, outcome `failed`, the category, `door=… field=record/name`),
    /// for the caller to append in its transaction or right after.
    pub(crate) fn integrity_failures(
        &self,
        actor: &str,
        subject_id: &str,
        door: Door,
        failed: &[FailedField],
        now: i64,
        request_id: Option<&str>,
    ) -> Vec<AuditRecord> {
        failed
            .iter()
            .map(|x| {
                self.metrics
                    .integrity_failure(door, &x.category, &self.policy);
                tracing::warn!(
                    subject_id,
                    door = door.as_str(),
                    record = %x.record,
                    name = %x.name,
                    category = %x.category,
                    "sealed field failed authentication; not released"
                );
                let mut rec = self
                    .auditor
                    .base(actor, "field.integrity_failed", now, request_id);
                rec.subject_id = Some(subject_id.to_string());
                rec.outcome = "failed".into();
                rec.categories = x.category.clone();
                rec.detail = Some(format!(
                    "door={} field={}/{} code={}",
                    door.as_str(),
                    x.record,
                    x.name,
                    x.code
                ));
                rec
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)] // one call shape, all plain values of the decision
    /// Audits a decision in its own transaction (reads change nothing else).
    pub(crate) async fn audit_decision(
        &self,
        p: &Principal,
        action: &str,
        subject_id: Option<&str>,
        purpose: &str,
        d: &Decision<'_>,
        requested: &[&str],
        now: i64,
        request_id: Option<&str>,
    ) -> Result<(), CoreError> {
        let mut rec = self.auditor.base(&p.name, action, now, request_id);
        rec.subject_id = subject_id.map(str::to_string);
        rec.purpose = Some(purpose.to_string());
        rec.outcome = if d.allowed { "allow" } else { "deny" }.into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = if d.allowed {
            AuditRecord::join_categories(d.allowed_categories.iter().copied())
        } else {
            AuditRecord::join_categories(requested.iter().copied())
        };
        rec.detail = release_detail(p, d.withheld.len());
        self.auditor.append(vec![rec]).await?;
        Ok(())
    }

    /// The one access path's decision: the purpose decision ([`decide`]) and then the staff
    /// policy narrows it ([`Vault::apply_staff`]). Every door that releases PI — reads,
    /// decisions, provisions and disclosures — decides through here, and audits what it
    /// returns before releasing anything; masking cannot be skipped through another door.
    pub(crate) fn decide_access<'p>(
        &'p self,
        p: &Principal,
        req: &AccessRequest<'_>,
        facts: &SubjectFacts<'_>,
        now: time::OffsetDateTime,
    ) -> Decision<'p> {
        let mut d = decide(&self.policy, facts, req, now);
        self.apply_staff(p, req.purpose, &mut d);
        self.metrics.decision(&d);
        d
    }

    /// Carries out the decision's `mask:` obligations on opened fields (the staff policy's
    /// masked categories, §8.1): the value is replaced by its masked form.
    pub(crate) fn mask_fields(fields: &mut [FieldOutput], d: &Decision<'_>) {
        for o in &d.obligations {
            if let Obligation::Mask(cat) = o {
                for fo in fields.iter_mut().filter(|fo| fo.category == *cat) {
                    let shown = match &fo.value {
                        FieldValue::Text(t) | FieldValue::Number(t) => pivault_staff::mask(cat, t),
                        _ => "***".to_string(),
                    };
                    fo.value = FieldValue::Text(shown);
                }
            }
        }
    }
}

/// The detail of a decision's audit entry: `key=<api key id>` (the key that asked, so an
/// incident can be scoped to it, policy §8.3) and `withheld=<n>`; `None` when neither applies.
pub(crate) fn release_detail(p: &Principal, withheld: usize) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(k) = &p.key_id {
        parts.push(format!("key={k}"));
    }
    if withheld > 0 {
        parts.push(format!("withheld={withheld}"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}
