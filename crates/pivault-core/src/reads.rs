//! Reads: purpose-checked field reads and blind-index lookups.

use crate::access::denial;
use crate::error::CoreError;
use crate::metrics::Door;
use crate::services::principals::Principals;
use crate::values::FailedField;
use crate::vault::Vault;
use crate::FieldOutput;
use crate::Principal;
use crate::ROLE_APP;
use pivault_domain::consent::{ConsentAction, ConsentEvent, ConsentState, GivenBy};
use pivault_domain::decision::{AccessRequest, SubjectFacts};
use pivault_domain::identifiers::IdentifierKind;
use tracing::instrument;

/// The result of an allowed read.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Subject id.
    pub subject_id: String,
    /// Purpose named.
    pub purpose: String,
    /// Legal basis applied (`consent`, `contract`, …).
    pub legal_basis: &'static str,
    /// PIPL article of the legal basis.
    pub article: &'static str,
    /// Policy clause.
    pub clause: String,
    /// Human explanation.
    pub explanation: String,
    /// Subject was a minor at decision time.
    pub minor: bool,
    /// Fields released.
    pub fields: Vec<FieldOutput>,
    /// Fields of the allowed categories that failed authentication (reported, audited and
    /// counted; never a value).
    pub failed: Vec<FailedField>,
    /// Categories withheld and why.
    pub withheld: Vec<(String, &'static str)>,
    /// Policy version.
    pub policy_version: String,
}

/// Lookup result: identifiers are not unique, so every match is returned with the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    /// How many subjects matched.
    pub count: usize,
    /// Their ids, sorted.
    pub subjects: Vec<String>,
}

impl Vault {
    /// Reads a subject's fields for `purpose`: decides, audits the decision, then opens only
    /// the categories the decision allows (minimum necessary).
    ///
    /// `categories` empty means "everything the purpose allows".
    ///
    /// # Errors
    /// `Invalid` for unknown categories; `NotFound`; `Denied` (403, audited, with reason code,
    /// clause and article); store/crypto failures. A field that fails authentication is not an
    /// error: it is listed in [`ReadResult::failed`] and the other fields are returned.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id, purpose = %purpose))]
    pub async fn read_fields(
        &self,
        p: &Principal,
        subject_id: &str,
        purpose: &str,
        categories: &[String],
        request_id: Option<&str>,
    ) -> Result<ReadResult, CoreError> {
        Principals::require_role(p, ROLE_APP)?;
        for (i, c) in categories.iter().enumerate() {
            if self.policy.category(c).is_none() {
                return Err(CoreError::invalid(
                    format!("categories[{i}]"),
                    "unknown_category",
                    "category is not declared in the policy",
                ));
            }
        }
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let f = self.facts.for_release(subject_id, now_t).await?;
        if f.facts.locked {
            self.refuse_locked(p, "fields.read", subject_id, purpose, now, request_id)
                .await?;
        }
        let cats: Vec<&str> = categories.iter().map(String::as_str).collect();
        let facts = f.facts.view();
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);
        let d = self.decide_access(p, &req, &facts, now_t);
        self.audit_decision(
            p,
            "fields.read",
            Some(subject_id),
            purpose,
            &d,
            &cats,
            now,
            request_id,
        )
        .await?;
        if !d.allowed {
            return Err(CoreError::Denied(denial(&d)));
        }
        let (mut fields, failed) = Self::open_allowed(&f, &d.allowed_categories, now);
        if !failed.is_empty() {
            // Audited right after the decision's entry, before anything is released.
            let recs =
                self.integrity_failures(&p.name, subject_id, Door::Read, &failed, now, request_id);
            self.auditor.append(recs).await?;
        }
        Self::mask_fields(&mut fields, &d);
        Ok(ReadResult {
            subject_id: subject_id.into(),
            purpose: purpose.into(),
            legal_basis: d.legal_basis.map_or("", |b| b.as_str()),
            article: d.article(),
            clause: d.clause.to_string(),
            explanation: d.explanation(),
            minor: d.minor,
            fields,
            failed,
            withheld: d
                .withheld
                .iter()
                .map(|w| (w.category.to_string(), w.reason.as_str()))
                .collect(),
            policy_version: self.policy.version().to_string(),
        })
    }

    /// Finds every subject whose identifier of `kind` equals `raw` after normalization, via
    /// the blind index (no decryption, no scan).
    ///
    /// A lookup is a use of the identifier's category for `purpose` (PIPL Art. 6 minimum
    /// necessary; policy §8.1), so it is decided through [`Vault::decide_access`] twice:
    /// - **before the index is probed**, on what the policy says for any subject (the
    ///   purpose declares the category; the staff policy lets an operator see it). A deny is
    ///   audited and answered 403 `decision_denied`, whether or not the value is held, so a
    ///   denied lookup is no oracle;
    /// - **for each match**, on that subject's facts (consent in force, erased, minor). A
    ///   subject the decision denies is left out of the answer, which then reads the same as
    ///   "not held".
    ///
    /// Every decision is audited (outcome, reason, category; never the value).
    ///
    /// # Errors
    /// `Invalid` for an unknown kind or a malformed value; `Forbidden` when the principal may
    /// not use `purpose`; `Denied` when the purpose may not use the identifier's category;
    /// store failures.
    #[instrument(skip_all, fields(principal = %p.name, purpose = %purpose, kind = %kind))]
    pub async fn lookup(
        &self,
        p: &Principal,
        kind: &str,
        raw: &str,
        purpose: &str,
        request_id: Option<&str>,
    ) -> Result<LookupResult, CoreError> {
        Principals::require_role(p, ROLE_APP)?;
        let k = IdentifierKind::parse_name(kind).ok_or_else(|| {
            CoreError::invalid(
                "by",
                "unknown_identifier_kind",
                "by is account_id, mobile, email, id_card or guardian_mobile",
            )
        })?;
        let norm = k
            .normalize(raw)
            .map_err(|e| CoreError::invalid("value", e.code, e.reason))?;
        let allowed = self
            .decide_identifier_use(p, k, purpose, "subject.lookup", request_id)
            .await?;
        let category = allowed.category.clone();
        let cats = [category.as_str()];
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);

        // 2. Probe, then decide each match on its own facts.
        let digests = self.sealer.keys().blind_indexes(k.as_str(), &norm);
        let found = self.store.lookup_any(k.as_str(), &digests).await?;
        let mut records = Vec::with_capacity(found.len().max(1));
        let mut subjects = Vec::with_capacity(found.len());
        for s in &found {
            let f = self.facts.cached(s, now_t).await?;
            if f.locked && !p.has_role("security") {
                // A locked subject (policy §8.7) is left out like a denied match, audited.
                self.refuse_locked(p, "subject.lookup", s, purpose, now, request_id)
                    .await
                    .ok();
                continue;
            }
            let facts = f.view();
            let d = self.decide_access(p, &req, &facts, now_t);
            let mut rec = self
                .auditor
                .base(&p.name, "subject.lookup", now, request_id);
            rec.subject_id = Some(s.clone());
            rec.purpose = Some(purpose.into());
            rec.outcome = if d.allowed { "allow" } else { "deny" }.into();
            rec.reason = Some(d.reason.as_str().into());
            rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
            rec.categories.clone_from(&category);
            rec.detail = Some(format!("by={}", k.as_str()));
            records.push(rec);
            if d.allowed {
                subjects.push(s.clone());
            }
        }
        if found.is_empty() {
            let mut rec = self
                .auditor
                .base(&p.name, "subject.lookup", now, request_id);
            rec.purpose = Some(purpose.into());
            rec.outcome = "allow".into();
            rec.reason = Some(allowed.reason.into());
            rec.legal_basis = allowed.legal_basis.map(str::to_string);
            rec.categories.clone_from(&category);
            rec.detail = Some(format!("by={} matches=0", k.as_str()));
            records.push(rec);
        }
        self.auditor.append(records).await?;
        Ok(LookupResult {
            count: subjects.len(),
            subjects,
        })
    }

    /// The policy-level decision on using identifiers of `k` for `purpose` (a lookup, a
    /// pseudonymization): the purpose exists, the principal may use it, and the purpose may
    /// use the identifier's category for a subject with its consent in force, not erased, of
    /// age. A deny is audited under `action` and returned. Returns the category key.
    ///
    /// # Errors
    /// `Invalid` (`unknown_purpose`, `unknown_category`); `Forbidden`
    /// (`purpose_not_permitted`); `Denied`; store failure writing the audit entry.
    pub(crate) async fn decide_identifier_use(
        &self,
        p: &Principal,
        k: IdentifierKind,
        purpose: &str,
        action: &str,
        request_id: Option<&str>,
    ) -> Result<IdentifierUse, CoreError> {
        if self.policy.purpose(purpose).is_none() {
            return Err(CoreError::invalid(
                "purpose",
                "unknown_purpose",
                "purpose is not declared in the policy",
            ));
        }
        if !p.purposes.iter().any(|x| x == purpose) {
            return Err(CoreError::Forbidden {
                code: "purpose_not_permitted",
                message: "the API key may not use this purpose",
            });
        }
        let category = self
            .policy
            .identifier_category(k)
            .map(|c| c.key.clone())
            .ok_or_else(|| {
                CoreError::invalid(
                    "by",
                    "unknown_category",
                    "the policy declares no category for this identifier kind",
                )
            })?;
        let cats = [category.as_str()];
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);

        // 1. The policy-level decision, before the index is probed: a subject with the
        //    purpose's consent in force, not erased, of age. Only what holds for every
        //    subject can deny here.
        let assumed = assumed_consent(purpose, now_t);
        let any_subject = SubjectFacts {
            consent: &assumed,
            birth_date: None,
            erased: false,
            home_region: None,
        };
        let d = self.decide_access(p, &req, &any_subject, now_t);
        if !d.allowed {
            self.audit_decision(p, action, None, purpose, &d, &cats, now, request_id)
                .await?;
            return Err(CoreError::Denied(denial(&d)));
        }
        Ok(IdentifierUse {
            reason: d.reason.as_str(),
            legal_basis: d.legal_basis.map(|b| b.as_str()),
            category,
        })
    }
}

/// An allowed policy-level decision on using an identifier kind for a purpose.
pub(crate) struct IdentifierUse {
    /// The identifier's category key.
    pub(crate) category: String,
    /// The decision's reason code.
    pub(crate) reason: &'static str,
    /// The legal basis applied.
    pub(crate) legal_basis: Option<&'static str>,
}

/// The consent state of a hypothetical subject who gave `purpose` a separate consent just
/// before `now`: the lookup's first decision uses it to ask only what the policy says for
/// every subject (is the category declared for the purpose, may this operator see it).
fn assumed_consent(purpose: &str, now: time::OffsetDateTime) -> ConsentState {
    let e = ConsentEvent {
        seq: 0,
        purpose: purpose.to_string(),
        action: ConsentAction::Grant,
        at: now - time::Duration::seconds(1),
        given_by: GivenBy::Subject,
        separate: true,
        policy_version: String::new(),
        recipient: None,
    };
    ConsentState::fold([&e], now)
}
