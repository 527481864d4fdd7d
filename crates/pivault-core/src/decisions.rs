//! The decision API and the disclosure ledger (policy §2.2, §4.1, §5, §VI, §8.1; PIPL Art.
//! 21–25, 38–39, 55).
//!
//! Invariants: the same [`decide`] sits behind every read, every decision request and every
//! provision; every decision is audited; every allowed provision (share, transfer, disclosure,
//! cross-border transfer) is written to the disclosure ledger in the same transaction as its
//! audit entry, and a provision relying on a §5.4 exception is flagged in both.

use crate::error::{CoreError, Denial};
use crate::vault::Vault;
use crate::Principal;
use crate::ROLE_APP;
use pivault_domain::audit::AuditRecord;
use pivault_domain::decision::{
    AccessRequest, Action, Decision, Exception, ExceptionKind, SubjectFacts,
};

/// A claimed §5.4 exception, as received.
#[derive(Debug, Clone)]
pub struct ExceptionInput {
    /// `national_security` | `public_safety_or_health` | `criminal_investigation` |
    /// `protect_life_or_property` | `self_disclosed` | `lawfully_public`.
    pub kind: String,
    /// Case number or document reference (1–128 characters).
    pub reference: String,
    /// The authorizing officer (1–128 characters).
    pub authorized_by: String,
}

/// A decision request.
#[derive(Debug, Clone)]
pub struct DecisionInput {
    /// `collect|use|share|transfer|disclose|cross_border_transfer`.
    pub action: String,
    /// Purpose id.
    pub purpose: String,
    /// Subject id.
    pub subject_id: String,
    /// Category keys; empty = everything the purpose allows.
    pub categories: Vec<String>,
    /// Recipient id.
    pub recipient: Option<String>,
    /// Destination region (two lower-case letters).
    pub region: Option<String>,
    /// A claimed exception.
    pub exception: Option<ExceptionInput>,
}

/// A decision, owned, ready for the wire.
#[derive(Debug, Clone)]
pub struct DecisionOutput {
    /// Subject id.
    pub subject_id: String,
    /// Action decided.
    pub action: &'static str,
    /// Allow or deny.
    pub allowed: bool,
    /// Reason code (`allowed`, `not_personal_information`, or the deny reason).
    pub reason: &'static str,
    /// Legal basis applied.
    pub legal_basis: Option<&'static str>,
    /// PIPL article behind the outcome.
    pub article: &'static str,
    /// Policy clause behind the outcome.
    pub clause: String,
    /// One sentence for people.
    pub explanation: String,
    /// Categories that may be used.
    pub allowed_categories: Vec<String>,
    /// Categories withheld, with reason codes.
    pub withheld: Vec<(String, &'static str)>,
    /// `record_disclosure`, `notify_subject`, `mask:<category>`.
    pub obligations: Vec<String>,
    /// Non-personal categories treated as PI in combination (§2.1.3).
    pub combined_as_pi: Vec<String>,
    /// Recipient named.
    pub recipient: Option<String>,
    /// Exception relied on.
    pub exception: Option<&'static str>,
    /// Destination outside the storage region.
    pub cross_border: bool,
    /// Subject was a minor at decision time.
    pub minor: bool,
    /// Policy version.
    pub policy_version: String,
}

pub(crate) fn text_ok(s: &str, max: usize) -> bool {
    let t = s.trim();
    // Blank also covers a text made only of zero-width or bidi characters (issue 11 defect 4).
    !pivault_domain::text::is_blank(t)
        && t.chars().count() <= max
        && !t.chars().any(char::is_control)
}

pub(crate) fn slug_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl DecisionOutput {
    pub(crate) fn from_decision(subject_id: &str, d: &Decision<'_>, policy_version: &str) -> Self {
        Self {
            subject_id: subject_id.to_string(),
            action: d.action.as_str(),
            allowed: d.allowed,
            reason: d.reason.as_str(),
            legal_basis: d.legal_basis.map(|b| b.as_str()),
            article: d.article(),
            clause: d.clause.to_string(),
            explanation: d.explanation(),
            allowed_categories: d
                .allowed_categories
                .iter()
                .map(|c| (*c).to_string())
                .collect(),
            withheld: d
                .withheld
                .iter()
                .map(|w| (w.category.to_string(), w.reason.as_str()))
                .collect(),
            obligations: d.obligations.iter().map(ToString::to_string).collect(),
            combined_as_pi: d.combined_as_pi.iter().map(|c| (*c).to_string()).collect(),
            recipient: d.recipient.map(|r| r.id.clone()),
            exception: d.exception.map(ExceptionKind::as_str),
            cross_border: d.cross_border,
            minor: d.minor,
            policy_version: policy_version.to_string(),
        }
    }

    /// The denial carried by a denied decision.
    #[must_use]
    pub fn denial(&self) -> Denial {
        Denial {
            code: self.reason,
            article: self.article,
            clause: self.clause.clone(),
            explanation: self.explanation.clone(),
            withheld: self.withheld.clone(),
        }
    }
}

pub(crate) struct Parsed<'a> {
    pub(crate) action: Action,
    pub(crate) cats: Vec<&'a str>,
    pub(crate) exception: Option<Exception<'a>>,
}

impl Vault {
    pub(crate) fn parse_decision_input<'a>(
        &self,
        input: &'a DecisionInput,
    ) -> Result<Parsed<'a>, CoreError> {
        let action = Action::parse(&input.action).ok_or_else(|| {
            CoreError::invalid(
                "action",
                "unknown_action",
                "action is collect, use, share, transfer, disclose or cross_border_transfer",
            )
        })?;
        for (i, c) in input.categories.iter().enumerate() {
            if self.policy().category(c).is_none() {
                return Err(CoreError::invalid(
                    format!("categories[{i}]"),
                    "unknown_category",
                    "category is not declared in the policy",
                ));
            }
        }
        if let Some(r) = &input.recipient {
            if !slug_ok(r) {
                return Err(CoreError::invalid(
                    "recipient",
                    "recipient_malformed",
                    "recipient is 1-64 characters of a-z 0-9 _ -",
                ));
            }
        }
        if let Some(r) = &input.region {
            if r.len() != 2 || !r.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(CoreError::invalid(
                    "region",
                    "region_malformed",
                    "region is a lower-case 2-letter code such as cn",
                ));
            }
        }
        let exception = match &input.exception {
            None => None,
            Some(e) => {
                let kind = ExceptionKind::parse(&e.kind).ok_or_else(|| {
                    CoreError::invalid(
                        "exception.kind",
                        "unknown_exception",
                        "exception kind is one of the six of policy §5.4",
                    )
                })?;
                for (field, v) in [
                    ("exception.reference", &e.reference),
                    ("exception.authorized_by", &e.authorized_by),
                ] {
                    if !v.trim().is_empty() && !text_ok(v, 128) {
                        return Err(CoreError::invalid(
                            field,
                            "text_malformed",
                            "1-128 characters, no control characters",
                        ));
                    }
                }
                Some(Exception {
                    kind,
                    reference: e.reference.trim(),
                    authorized_by: e.authorized_by.trim(),
                })
            }
        };
        Ok(Parsed {
            action,
            cats: input.categories.iter().map(String::as_str).collect(),
            exception,
        })
    }

    /// The decision for a parsed request on the given facts.
    pub(crate) fn decide_parsed(
        &self,
        p: &Principal,
        input: &DecisionInput,
        parsed: &Parsed<'_>,
        sf: &SubjectFacts<'_>,
        now: time::OffsetDateTime,
    ) -> Decision<'_> {
        let req = AccessRequest {
            action: parsed.action,
            purpose: &input.purpose,
            categories: &parsed.cats,
            principal_purposes: &p.purposes,
            recipient: input.recipient.as_deref(),
            region: input.region.as_deref(),
            exception: parsed.exception,
        };
        self.decide_access(p, &req, sf, now)
    }

    pub(crate) fn audit_for_decision(
        &self,
        p: &Principal,
        kind: &str,
        d: &Decision<'_>,
        input: &DecisionInput,
        now: i64,
        request_id: Option<&str>,
    ) -> AuditRecord {
        let mut rec = self.auditor.base(
            &p.name,
            &format!("{kind}.{}", d.action.as_str()),
            now,
            request_id,
        );
        rec.subject_id = Some(input.subject_id.clone());
        rec.purpose = Some(input.purpose.clone());
        rec.outcome = if d.allowed { "allow" } else { "deny" }.into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = if d.allowed {
            AuditRecord::join_categories(d.allowed_categories.iter().copied())
        } else {
            AuditRecord::join_categories(input.categories.iter().map(String::as_str))
        };
        let mut detail = Vec::new();
        if let Some(k) = &p.key_id {
            detail.push(format!("key={k}"));
        }
        if let Some(r) = input.recipient.as_deref() {
            detail.push(format!("recipient={r}"));
        }
        if let Some(r) = input.region.as_deref() {
            detail.push(format!("region={r}"));
        }
        if let Some(e) = d.exception {
            // Flagged: a provision without consent, on a §5.4 exception.
            detail.push(format!("EXCEPTION={}", e.as_str()));
        }
        if !d.withheld.is_empty() {
            detail.push(format!("withheld={}", d.withheld.len()));
        }
        if !detail.is_empty() {
            rec.detail = Some(detail.join(" "));
        }
        rec
    }

    /// Decides `input` for principal `p` (the decision API, `POST /v1/decisions`), audits the
    /// decision, and returns it — allowed or denied. Nothing is provided, so nothing goes to the
    /// disclosure ledger; use [`Vault::provide`] to act on an outbound decision.
    ///
    /// # Errors
    /// `Invalid` (422) for an unknown action, category or exception kind, or malformed
    /// recipient/region; `NotFound` for an unknown subject; store failures.
    pub async fn decide_for(
        &self,
        p: &Principal,
        input: &DecisionInput,
        request_id: Option<&str>,
    ) -> Result<DecisionOutput, CoreError> {
        if !p.has_role(ROLE_APP) {
            return Err(CoreError::Forbidden {
                code: "role_required",
                message: "the API key lacks the role for this operation",
            });
        }
        let parsed = self.parse_decision_input(input)?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let facts = self.facts.cached(&input.subject_id, now_t).await?;
        if facts.locked && !p.has_role("security") {
            // The read or provision would be refused (policy §8.7): so is the decision.
            return Err(CoreError::Conflict("subject_locked"));
        }
        let sf = facts.view();
        let d = self.decide_parsed(p, input, &parsed, &sf, now_t);
        self.auditor
            .append(vec![
                self.audit_for_decision(p, "decision", &d, input, now, request_id)
            ])
            .await?;
        Ok(DecisionOutput::from_decision(
            &input.subject_id,
            &d,
            self.policy().version(),
        ))
    }
}
