//! Provisions (share, transfer, public disclosure, cross-border transfer) and the disclosure
//! ledger (policy §5, §VI; PIPL Art. 23, 25, 38–39).

use crate::decisions::DecisionInput;
use crate::decisions::DecisionOutput;
use crate::error::CoreError;
use crate::metrics::Door;
use crate::values::FailedField;
use crate::vault::Vault;
use crate::FieldOutput;
use crate::Principal;
use crate::ROLE_ADMIN;
use crate::ROLE_APP;
use pivault_domain::audit::AuditRecord;
use pivault_store::DisclosureRow;
use std::collections::{BTreeMap, HashSet};

/// An allowed provision: the decision, the fields handed over, those that failed
/// authentication (listed, audited and counted, never a value) and the disclosure-ledger entry.
#[derive(Debug, Clone)]
pub struct Provided {
    /// The decision.
    pub decision: DecisionOutput,
    /// The fields handed over (masked where the staff policy says).
    pub fields: Vec<FieldOutput>,
    /// Fields of the allowed categories whose ciphertext failed authentication.
    pub failed: Vec<FailedField>,
    /// The disclosure-ledger entry id.
    pub disclosure_id: String,
}

/// Disclosure counts over a period (for `GET /v1/reports/disclosures`).
#[derive(Debug, Clone, Default)]
pub struct DisclosureReport {
    /// Window start, unix seconds (inclusive).
    pub from: i64,
    /// Window end, unix seconds (exclusive).
    pub to: i64,
    /// Entries in the window.
    pub total: usize,
    /// Entries relying on a §5.4 exception.
    pub under_exception: usize,
    /// Per action.
    pub by_action: BTreeMap<String, usize>,
    /// Per recipient.
    pub by_recipient: BTreeMap<String, usize>,
    /// Per exception kind.
    pub by_exception: BTreeMap<String, usize>,
    /// Per legal basis.
    pub by_legal_basis: BTreeMap<String, usize>,
    /// Distinct subjects concerned.
    pub subjects: usize,
}

impl Vault {
    /// Provides the subject's PI to a recipient (share, transfer, public disclosure,
    /// cross-border transfer): decides; when allowed, opens only the allowed categories and
    /// records the provision in the disclosure ledger with its audit entry, in one transaction.
    ///
    /// Returns the decision, the fields to hand over, the fields that failed authentication
    /// (each audited in the same transaction and counted) and the ledger entry id.
    ///
    /// # Errors
    /// As [`Vault::decide_for`]; `Invalid` for a non-outbound action; `Denied` (403, audited)
    /// when the decision denies.
    pub async fn provide(
        &self,
        p: &Principal,
        input: &DecisionInput,
        request_id: Option<&str>,
    ) -> Result<Provided, CoreError> {
        if !p.has_role(ROLE_APP) {
            return Err(CoreError::Forbidden {
                code: "role_required",
                message: "the API key lacks the role for this operation",
            });
        }
        let parsed = self.parse_decision_input(input)?;
        if !parsed.action.is_outbound() {
            return Err(CoreError::invalid(
                "action",
                "not_outbound",
                "a provision is share, transfer, disclose or cross_border_transfer",
            ));
        }
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let facts = self.facts.for_release(&input.subject_id, now_t).await?;
        if facts.facts.locked {
            self.refuse_locked(
                p,
                "disclosure.provide",
                &input.subject_id,
                &input.purpose,
                now,
                request_id,
            )
            .await?;
        }
        let sf = facts.facts.view();
        let d = self.decide_parsed(p, input, &parsed, &sf, now_t);
        let out = DecisionOutput::from_decision(&input.subject_id, &d, self.policy().version());
        let mut tx = self.store.begin(now).await?;
        let mut rec = self.audit_for_decision(p, "disclosure", &d, input, now, request_id);
        if !d.allowed {
            tx.audit(rec);
            tx.commit().await?;
            return Err(CoreError::Denied(out.denial()));
        }
        let (mut fields, failed) = Vault::open_allowed(&facts, &d.allowed_categories, now);
        for r in self.integrity_failures(
            &p.name,
            &input.subject_id,
            Door::Provision,
            &failed,
            now,
            request_id,
        ) {
            tx.audit(r);
        }
        Vault::mask_fields(&mut fields, &d);
        let id = uuid::Uuid::new_v4().to_string();
        let e = input.exception.as_ref().filter(|_| d.exception.is_some());
        let row = DisclosureRow {
            id: id.clone(),
            subject_id: input.subject_id.clone(),
            action: d.action.as_str().into(),
            recipient: input.recipient.clone(),
            purpose: input.purpose.clone(),
            categories: AuditRecord::join_categories(d.allowed_categories.iter().copied()),
            legal_basis: d.legal_basis.map_or("", |b| b.as_str()).into(),
            exception: d.exception.map(|k| k.as_str().to_string()),
            reference: e.map(|e| e.reference.trim().to_string()),
            authorized_by: e.map(|e| e.authorized_by.trim().to_string()),
            region: input
                .region
                .clone()
                .or_else(|| d.recipient.map(|r| r.region.clone())),
            at: now,
            actor: p.name.clone(),
            request_id: request_id.map(str::to_string),
        };
        tx.insert_disclosure(&row).await?;
        // PIPL Art. 39: a person whose PI goes abroad is told the foreign recipient, its
        // contact, the purpose, the method and the categories, and how to exercise their
        // rights against it. Once per (recipient, purpose, categories), through the outbox.
        let mut notice_ids = Vec::new();
        if d.cross_border
            && d.obligations
                .iter()
                .any(|o| matches!(o, pivault_domain::decision::Obligation::NotifySubject))
        {
            let recipient = input.recipient.clone().unwrap_or_else(|| "-".into());
            let mut m = crate::messages::Enqueue::to_subject(
                crate::messages::kind::CROSS_BORDER,
                &input.subject_id,
                &format!("{recipient}:{}:{}", input.purpose, row.categories),
                tx.subject_lang(&input.subject_id).await?.as_deref(),
            );
            m.params = Some(serde_json::json!({
                "recipient": recipient,
                "purpose": input.purpose,
                "categories": d.allowed_categories,
                "disclosure": id,
            }));
            notice_ids = self.enqueue(&mut tx, &[m], now).await?;
        }
        rec.detail = Some(
            format!("{} disclosure={id}", rec.detail.unwrap_or_default())
                .trim()
                .to_string(),
        );
        tx.audit(rec);
        tx.commit().await?;
        if !notice_ids.is_empty() {
            self.outbox_kick.notify_waiters();
        }
        Ok(Provided {
            decision: out,
            fields,
            failed,
            disclosure_id: id,
        })
    }

    /// Who received which categories of a subject's data, and why (newest first).
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn disclosures_of(
        &self,
        p: &Principal,
        subject_id: &str,
    ) -> Result<Vec<DisclosureRow>, CoreError> {
        if !p.has_role(ROLE_APP) {
            return Err(CoreError::Forbidden {
                code: "role_required",
                message: "the API key lacks the role for this operation",
            });
        }
        self.store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        Ok(self
            .store
            .disclosures(Some(subject_id), i64::MIN, i64::MAX)
            .await?)
    }

    /// Counts of provisions in `[from, to)` (unix seconds): per action, recipient, exception and
    /// legal basis. For the privacy office (admin role).
    ///
    /// # Errors
    /// `Forbidden` without the admin role; store failures.
    pub async fn disclosure_report(
        &self,
        p: &Principal,
        from: i64,
        to: i64,
    ) -> Result<DisclosureReport, CoreError> {
        if !p.has_role(ROLE_ADMIN) {
            return Err(CoreError::Forbidden {
                code: "role_required",
                message: "the API key lacks the role for this operation",
            });
        }
        let rows = self.store.disclosures(None, from, to).await?;
        let mut r = DisclosureReport {
            from,
            to,
            total: rows.len(),
            ..DisclosureReport::default()
        };
        let mut subjects = HashSet::new();
        for d in &rows {
            *r.by_action.entry(d.action.clone()).or_default() += 1;
            *r.by_recipient
                .entry(d.recipient.clone().unwrap_or_else(|| "public".into()))
                .or_default() += 1;
            *r.by_legal_basis.entry(d.legal_basis.clone()).or_default() += 1;
            if let Some(e) = &d.exception {
                r.under_exception += 1;
                *r.by_exception.entry(e.clone()).or_default() += 1;
            }
            subjects.insert(d.subject_id.as_str());
        }
        r.subjects = subjects.len();
        Ok(r)
    }
}
