//! `decide()`: the one purpose check that sits in front of every use of PI.
//!
//! A decision is a pure function of (policy, the subject's facts, the request, the instant):
//! no IO, no parsing, no clock reads. That makes it fast, testable and explainable — every
//! outcome names a stable reason code, the policy clause and the PIPL article behind it.
//!
//! Order of checks (the first failing one decides):
//! 1. the purpose exists in the policy (PIPL Art. 6: explicit, specific purposes);
//! 2. the calling principal may use it (policy §8.1: only authorized personnel);
//! 3. an erased subject is readable only under a legal obligation, and only for categories
//!    under a legal retention period (PIPL Art. 47 para 2);
//! 4. the legal basis holds: for consent, an active consent for that purpose (Art. 13(1), 14, 15);
//!    for a subject under the minor age, that consent was given by a guardian (Art. 31, §IX);
//! 5. per category: only categories the purpose declares (minimum necessary, Art. 6, §8.2);
//!    sensitive categories under consent need a separate consent (Art. 29). All PI of a minor
//!    is sensitive (Art. 28).
//!
//! Any error while evaluating is a deny, never a skipped rule.

use crate::consent::{ConsentState, GivenBy};
use crate::policy::{LegalBasis, Policy, Sensitivity};
use time::{Date, OffsetDateTime};

/// Stable reason codes. The wire form is `as_str()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Allowed.
    Allowed,
    /// The purpose is not declared in the policy.
    UnknownPurpose,
    /// The calling principal is not authorized for this purpose.
    PurposeNotPermitted,
    /// The subject was erased; only retained categories under a legal obligation remain.
    SubjectErased,
    /// Consent is the legal basis and none was given for this purpose.
    ConsentMissing,
    /// Consent was given, then withdrawn.
    ConsentWithdrawn,
    /// The subject is under the minor age and the consent was not given by a guardian.
    GuardianConsentRequired,
    /// A sensitive category needs a separate consent for this purpose.
    SeparateConsentRequired,
    /// The category is not necessary for this purpose (withheld).
    NotNecessaryForPurpose,
    /// The category is not declared in the policy.
    UnknownCategory,
    /// The category is held only for a legal retention period and this purpose is not a
    /// legal obligation.
    RestrictedUnderRetention,
}

impl Reason {
    /// Stable machine-readable code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::UnknownPurpose => "unknown_purpose",
            Self::PurposeNotPermitted => "purpose_not_permitted",
            Self::SubjectErased => "subject_erased",
            Self::ConsentMissing => "consent_missing",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::GuardianConsentRequired => "guardian_consent_required",
            Self::SeparateConsentRequired => "separate_consent_required",
            Self::NotNecessaryForPurpose => "not_necessary_for_purpose",
            Self::UnknownCategory => "unknown_category",
            Self::RestrictedUnderRetention => "restricted_under_retention",
        }
    }

    /// The PIPL article the rule comes from.
    #[must_use]
    pub fn article(self) -> &'static str {
        match self {
            Self::Allowed => "PIPL Art. 13",
            Self::UnknownPurpose | Self::NotNecessaryForPurpose | Self::UnknownCategory => {
                "PIPL Art. 6"
            }
            Self::PurposeNotPermitted => "PIPL Art. 51(3)",
            Self::SubjectErased | Self::RestrictedUnderRetention => "PIPL Art. 47",
            Self::ConsentMissing => "PIPL Art. 14",
            Self::ConsentWithdrawn => "PIPL Art. 15",
            Self::GuardianConsentRequired => "PIPL Art. 31",
            Self::SeparateConsentRequired => "PIPL Art. 29",
        }
    }

    /// The policy clause the rule implements.
    #[must_use]
    pub fn clause(self) -> &'static str {
        match self {
            Self::Allowed | Self::UnknownPurpose => "§2.2",
            Self::NotNecessaryForPurpose | Self::UnknownCategory => "§8.2",
            Self::PurposeNotPermitted => "§8.1",
            Self::SubjectErased | Self::RestrictedUnderRetention => "§4.2",
            Self::ConsentMissing | Self::ConsentWithdrawn => "§7.2",
            Self::GuardianConsentRequired => "§9.2",
            Self::SeparateConsentRequired => "§II",
        }
    }

    fn rank(self) -> u8 {
        // Which withheld reason explains a deny best when every category was withheld.
        match self {
            Self::GuardianConsentRequired => 0,
            Self::SeparateConsentRequired => 1,
            Self::RestrictedUnderRetention => 2,
            Self::NotNecessaryForPurpose => 3,
            _ => 4,
        }
    }
}

/// What the caller wants to do.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Purpose id.
    pub purpose: &'a str,
    /// Categories requested; empty means "everything the purpose allows".
    pub categories: &'a [&'a str],
    /// Purposes the calling principal is authorized for.
    pub principal_purposes: &'a [String],
}

/// What the decision needs to know about the subject (no PI values except the birth date,
/// which is used and dropped).
#[derive(Debug, Clone, Copy)]
pub struct SubjectFacts<'a> {
    /// Consent state at the decision instant.
    pub consent: &'a ConsentState,
    /// Date of birth, when known: decides whether the subject is a minor (PIPL Art. 28, 31).
    pub birth_date: Option<Date>,
    /// The subject has been erased (crypto-shredded); only restricted categories remain.
    pub erased: bool,
}

/// A category the decision withheld, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld<'p> {
    /// Category key.
    pub category: &'p str,
    /// Why.
    pub reason: Reason,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone)]
pub struct Decision<'p> {
    /// Allow or deny.
    pub allowed: bool,
    /// `Allowed`, or the reason for the deny.
    pub reason: Reason,
    /// Legal basis applied, when allowed (and when the purpose exists).
    pub legal_basis: Option<LegalBasis>,
    /// The policy clause behind the outcome (the purpose's own clause when allowed).
    pub clause: &'p str,
    /// Categories that may be used (minimum necessary), in the request's order.
    pub allowed_categories: Vec<&'p str>,
    /// Categories withheld, with reasons.
    pub withheld: Vec<Withheld<'p>>,
    /// True when the subject was a minor at decision time.
    pub minor: bool,
}

impl Decision<'_> {
    /// The PIPL article behind the outcome.
    #[must_use]
    pub fn article(&self) -> &'static str {
        match (self.allowed, self.legal_basis) {
            (true, Some(b)) => b.pipl_article(),
            _ => self.reason.article(),
        }
    }

    /// One sentence for people: what was decided and which rule decided it.
    #[must_use]
    pub fn explanation(&self) -> String {
        if self.allowed {
            let basis = self.legal_basis.map_or("", LegalBasis::as_str);
            let mut s = format!(
                "allowed: legal basis {basis} ({}), policy {}",
                self.article(),
                self.clause
            );
            if !self.withheld.is_empty() {
                s.push_str(&format!("; {} categories withheld", self.withheld.len()));
            }
            s
        } else {
            format!(
                "denied: {} ({}, policy {})",
                self.reason.as_str(),
                self.reason.article(),
                self.clause
            )
        }
    }
}

/// Age in whole years on `today` of someone born on `birth`.
#[must_use]
pub fn age_on(birth: Date, today: Date) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month() as u8, today.day()) < (birth.month() as u8, birth.day()) {
        age -= 1;
    }
    age
}

fn deny<'p>(
    reason: Reason,
    clause: &'p str,
    basis: Option<LegalBasis>,
    minor: bool,
) -> Decision<'p> {
    Decision {
        allowed: false,
        reason,
        legal_basis: basis,
        clause,
        allowed_categories: Vec::new(),
        withheld: Vec::new(),
        minor,
    }
}

/// Decides whether `req` may use the subject's PI at instant `now` under `policy`.
///
/// Pure: the same inputs give the same decision. Never panics. See the module docs for the
/// order of checks and the source of each rule.
#[must_use]
pub fn decide<'p>(
    policy: &'p Policy,
    facts: &SubjectFacts<'_>,
    req: &AccessRequest<'_>,
    now: OffsetDateTime,
) -> Decision<'p> {
    let minor = facts
        .birth_date
        .is_some_and(|b| age_on(b, now.date()) < i32::from(policy.minor_age()));
    let Some(purpose) = policy.purpose(req.purpose) else {
        return deny(
            Reason::UnknownPurpose,
            Reason::UnknownPurpose.clause(),
            None,
            minor,
        );
    };
    let basis = purpose.legal_basis;
    if !req.principal_purposes.iter().any(|p| p == req.purpose) {
        return deny(
            Reason::PurposeNotPermitted,
            Reason::PurposeNotPermitted.clause(),
            Some(basis),
            minor,
        );
    }
    if facts.erased && basis != LegalBasis::LegalObligation {
        return deny(
            Reason::SubjectErased,
            Reason::SubjectErased.clause(),
            Some(basis),
            minor,
        );
    }
    let mut separate_ok = true;
    if basis == LegalBasis::Consent {
        match facts.consent.active(req.purpose) {
            None => {
                let r = if facts.consent.withdrawn(req.purpose) {
                    Reason::ConsentWithdrawn
                } else {
                    Reason::ConsentMissing
                };
                return deny(r, &purpose.clause, Some(basis), minor);
            }
            Some(c) => {
                if minor && c.given_by != GivenBy::Guardian {
                    return deny(
                        Reason::GuardianConsentRequired,
                        Reason::GuardianConsentRequired.clause(),
                        Some(basis),
                        minor,
                    );
                }
                separate_ok = c.separate || purpose.separate_consent;
            }
        }
    }

    let mut allowed_categories = Vec::new();
    let mut withheld = Vec::new();
    let mut consider = |key: &str| {
        let Some(cat) = policy.category(key) else {
            // Unknown keys cannot be borrowed from the policy; report them via the purpose's
            // own list instead — they are withheld by construction (never allowed).
            return;
        };
        let k = cat.key.as_str();
        let reason = if !purpose.allows(k) {
            Some(Reason::NotNecessaryForPurpose)
        } else if facts.erased && cat.retention.is_none() {
            Some(Reason::SubjectErased)
        } else if basis == LegalBasis::Consent
            && (cat.sensitivity == Sensitivity::Sensitive || minor)
            && !separate_ok
        {
            Some(Reason::SeparateConsentRequired)
        } else {
            None
        };
        match reason {
            None => allowed_categories.push(k),
            Some(reason) => withheld.push(Withheld {
                category: k,
                reason,
            }),
        }
    };
    if req.categories.is_empty() {
        for k in &purpose.categories {
            consider(k);
        }
    } else {
        for k in req.categories {
            consider(k);
        }
    }
    if allowed_categories.is_empty() {
        let reason = withheld
            .iter()
            .map(|w| w.reason)
            .min_by_key(|r| r.rank())
            .unwrap_or(Reason::UnknownCategory);
        let mut d = deny(reason, reason.clause(), Some(basis), minor);
        d.withheld = withheld;
        return d;
    }
    Decision {
        allowed: true,
        reason: Reason::Allowed,
        legal_basis: Some(basis),
        clause: &purpose.clause,
        allowed_categories,
        withheld,
        minor,
    }
}
