//! `decide()`: the one decision that sits in front of every collection, use, share, transfer,
//! public disclosure and cross-border transfer of PI.
//!
//! A decision is a pure function of (policy, the subject's facts, the request, the instant):
//! no IO, no parsing, no clock reads. That makes it fast, testable and explainable — every
//! outcome names a stable reason code, the policy clause and the PIPL article behind it.
//!
//! Order of checks (the first failing one decides):
//! 1. the purpose exists in the policy (PIPL Art. 6: explicit, specific purposes);
//! 2. the calling principal may use it (policy §8.1: only authorized personnel);
//! 3. share/transfer/cross-border name a declared recipient that serves the purpose
//!    (§5.1.3–5.1.4; Art. 21, 23); a destination outside the storage region makes it a
//!    cross-border transfer (§4.1, §8.5; Art. 38–39), and collection or use abroad is refused;
//! 4. an erased subject is readable only under a legal obligation, and only for categories
//!    under a legal retention period (Art. 47 para 2);
//! 5. the legal basis holds: a §5.4 exception (Art. 13(2)–(7)) with its reference and
//!    authorizing officer; else for consent, an active consent for the purpose (Art. 13(1), 14,
//!    15), given by a guardian for a subject under the minor age (Art. 31, §IX); sharing with
//!    another handler and cross-border transfer need a separate consent naming the recipient
//!    (Art. 23, 39); public disclosure a separate consent (Art. 25);
//! 6. per category: only categories the purpose declares (minimum necessary, Art. 6, §8.2) and
//!    the recipient may receive; sensitive categories under consent need a separate consent
//!    (Art. 29), all PI of a minor being sensitive (Art. 28); business data never leaves the
//!    region its customer chose (§6.3). Non-personal categories (device model, OS) alone are
//!    not PI (§2.1.3); combined with an identifying category in one request they are PI.
//!
//! Any error while evaluating is a deny, never a skipped rule.

use crate::consent::{ActiveConsent, ConsentState, GivenBy};
use crate::policy::{LegalBasis, Policy, Recipient, Sensitivity};
use std::fmt;
use time::{Date, OffsetDateTime};

/// What is done with the PI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Collect and store (PIPL Art. 4 "handling" includes collection).
    Collect,
    /// Use within the provider.
    Use,
    /// Provide to another party: an entrusted party (Art. 21) or another handler (Art. 23).
    Share,
    /// Transfer to another company, e.g. in a merger (Art. 22; policy §5.2).
    Transfer,
    /// Disclose publicly or to authorities (Art. 25; policy §5.3, §5.1.2).
    Disclose,
    /// Provide to a recipient outside the storage region (Art. 38–39; policy §4.1, §8.5).
    CrossBorderTransfer,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 6] = [
        Action::Collect,
        Action::Use,
        Action::Share,
        Action::Transfer,
        Action::Disclose,
        Action::CrossBorderTransfer,
    ];
    /// Wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Collect => "collect",
            Self::Use => "use",
            Self::Share => "share",
            Self::Transfer => "transfer",
            Self::Disclose => "disclose",
            Self::CrossBorderTransfer => "cross_border_transfer",
        }
    }
    /// Parses the wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
    /// Whether PI leaves the provider (and must be recorded in the disclosure ledger).
    #[must_use]
    pub fn is_outbound(self) -> bool {
        matches!(
            self,
            Self::Share | Self::Transfer | Self::Disclose | Self::CrossBorderTransfer
        )
    }
}

/// The exceptions of policy §5.4 (PIPL Art. 13(2)–(7), Art. 18) under which sharing, transfer
/// or disclosure needs no prior consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExceptionKind {
    /// §5.4.1 national security and national defence.
    NationalSecurity,
    /// §5.4.2 public safety, public health or major public interests.
    PublicSafetyOrHealth,
    /// §5.4.3 criminal investigation, prosecution, trial and enforcement.
    CriminalInvestigation,
    /// §5.4.4 protecting life or property when consent is impracticable.
    ProtectLifeOrProperty,
    /// §5.4.5 PI the subject disclosed to the public.
    SelfDisclosed,
    /// §5.4.6 PI from lawfully public sources.
    LawfullyPublic,
}

impl ExceptionKind {
    /// Every kind.
    pub const ALL: [ExceptionKind; 6] = [
        ExceptionKind::NationalSecurity,
        ExceptionKind::PublicSafetyOrHealth,
        ExceptionKind::CriminalInvestigation,
        ExceptionKind::ProtectLifeOrProperty,
        ExceptionKind::SelfDisclosed,
        ExceptionKind::LawfullyPublic,
    ];
    /// Wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NationalSecurity => "national_security",
            Self::PublicSafetyOrHealth => "public_safety_or_health",
            Self::CriminalInvestigation => "criminal_investigation",
            Self::ProtectLifeOrProperty => "protect_life_or_property",
            Self::SelfDisclosed => "self_disclosed",
            Self::LawfullyPublic => "lawfully_public",
        }
    }
    /// Parses the wire name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
    /// The policy clause.
    #[must_use]
    pub fn clause(self) -> &'static str {
        match self {
            Self::NationalSecurity => "§5.4.1",
            Self::PublicSafetyOrHealth => "§5.4.2",
            Self::CriminalInvestigation => "§5.4.3",
            Self::ProtectLifeOrProperty => "§5.4.4",
            Self::SelfDisclosed => "§5.4.5",
            Self::LawfullyPublic => "§5.4.6",
        }
    }
    /// The legal basis it stands for.
    #[must_use]
    pub fn legal_basis(self) -> LegalBasis {
        match self {
            Self::NationalSecurity | Self::CriminalInvestigation => LegalBasis::LegalObligation,
            Self::PublicSafetyOrHealth | Self::ProtectLifeOrProperty => LegalBasis::PublicHealth,
            Self::SelfDisclosed | Self::LawfullyPublic => LegalBasis::PublicInformation,
        }
    }
    /// Whether the subject is told afterwards. Not where the law requires confidentiality or
    /// telling would impede the duty (PIPL Art. 18 para 1).
    #[must_use]
    pub fn notifies_subject(self) -> bool {
        !matches!(self, Self::NationalSecurity | Self::CriminalInvestigation)
    }
}

/// A §5.4 exception as claimed by the request: the kind, a reference (case number, warrant)
/// and the officer who authorized it. Both strings must be non-empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception<'a> {
    /// Which exception.
    pub kind: ExceptionKind,
    /// Case number or document reference.
    pub reference: &'a str,
    /// The authorizing officer.
    pub authorized_by: &'a str,
}

/// Stable reason codes. The wire form is `as_str()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Allowed.
    Allowed,
    /// Allowed: every category is non-personal on its own (§2.1.3).
    NotPersonalInformation,
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
    /// Share, transfer and cross-border transfer must name a recipient.
    RecipientRequired,
    /// The recipient is not declared in the policy.
    UndeclaredRecipient,
    /// The recipient is declared, but not for this purpose.
    RecipientPurposeNotDeclared,
    /// The recipient may not receive this category (withheld).
    NotDeclaredForRecipient,
    /// Sharing with another handler needs a separate consent naming it.
    RecipientConsentMissing,
    /// A cross-border transfer needs a separate consent naming the recipient and purpose.
    CrossBorderConsentMissing,
    /// A public disclosure needs a separate consent, or a §5.4 exception.
    DisclosureConsentMissing,
    /// An exception was claimed without its reference or authorizing officer.
    ExceptionIncomplete,
    /// A cross-border transfer must name a destination outside the storage region.
    NotCrossBorder,
    /// PI is stored and used in the policy's storage region only.
    OutsideStorageRegion,
    /// Business data stays in the region its customer chose.
    BusinessDataRegionLocked,
    /// The operator's role may not read this category (staff access control, §8.1).
    StaffNotAuthorized,
}

impl Reason {
    /// Stable machine-readable code.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::NotPersonalInformation => "not_personal_information",
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
            Self::RecipientRequired => "recipient_required",
            Self::UndeclaredRecipient => "undeclared_recipient",
            Self::RecipientPurposeNotDeclared => "recipient_purpose_not_declared",
            Self::NotDeclaredForRecipient => "not_declared_for_recipient",
            Self::RecipientConsentMissing => "recipient_consent_missing",
            Self::CrossBorderConsentMissing => "cross_border_consent_missing",
            Self::DisclosureConsentMissing => "disclosure_consent_missing",
            Self::ExceptionIncomplete => "exception_incomplete",
            Self::NotCrossBorder => "not_cross_border",
            Self::OutsideStorageRegion => "outside_storage_region",
            Self::BusinessDataRegionLocked => "business_data_region_locked",
            Self::StaffNotAuthorized => "staff_not_authorized",
        }
    }

    /// The PIPL article the rule comes from.
    #[must_use]
    pub fn article(self) -> &'static str {
        match self {
            Self::Allowed => "PIPL Art. 13",
            Self::NotPersonalInformation => "PIPL Art. 4",
            Self::UnknownPurpose | Self::NotNecessaryForPurpose | Self::UnknownCategory => {
                "PIPL Art. 6"
            }
            Self::PurposeNotPermitted => "PIPL Art. 51(3)",
            Self::SubjectErased | Self::RestrictedUnderRetention => "PIPL Art. 47",
            Self::ConsentMissing => "PIPL Art. 14",
            Self::ConsentWithdrawn => "PIPL Art. 15",
            Self::GuardianConsentRequired => "PIPL Art. 31",
            Self::SeparateConsentRequired => "PIPL Art. 29",
            Self::RecipientRequired
            | Self::UndeclaredRecipient
            | Self::RecipientPurposeNotDeclared
            | Self::NotDeclaredForRecipient
            | Self::RecipientConsentMissing => "PIPL Art. 23",
            Self::CrossBorderConsentMissing | Self::NotCrossBorder => "PIPL Art. 39",
            Self::OutsideStorageRegion => "PIPL Art. 38",
            Self::DisclosureConsentMissing => "PIPL Art. 25",
            Self::ExceptionIncomplete => "PIPL Art. 13",
            Self::BusinessDataRegionLocked => "PIPL Art. 21",
            Self::StaffNotAuthorized => "PIPL Art. 51(3)",
        }
    }

    /// The policy clause the rule implements.
    #[must_use]
    pub fn clause(self) -> &'static str {
        match self {
            Self::Allowed | Self::UnknownPurpose => "§2.2",
            Self::NotPersonalInformation => "§2.1.3",
            Self::NotNecessaryForPurpose | Self::UnknownCategory => "§8.2",
            Self::PurposeNotPermitted => "§8.1",
            Self::SubjectErased | Self::RestrictedUnderRetention => "§4.2",
            Self::ConsentMissing | Self::ConsentWithdrawn => "§7.2",
            Self::GuardianConsentRequired => "§9.2",
            Self::SeparateConsentRequired => "§II",
            Self::RecipientRequired
            | Self::UndeclaredRecipient
            | Self::RecipientPurposeNotDeclared
            | Self::NotDeclaredForRecipient => "§5.1.3",
            Self::RecipientConsentMissing => "§5.1.1",
            Self::CrossBorderConsentMissing | Self::NotCrossBorder => "§8.5",
            Self::OutsideStorageRegion => "§4.1",
            Self::DisclosureConsentMissing => "§5.3.1",
            Self::ExceptionIncomplete => "§5.4",
            Self::BusinessDataRegionLocked => "§6.3",
            Self::StaffNotAuthorized => "§8.1",
        }
    }

    fn rank(self) -> u8 {
        // Which withheld reason explains a deny best when every category was withheld.
        match self {
            Self::GuardianConsentRequired => 0,
            Self::BusinessDataRegionLocked => 1,
            Self::SeparateConsentRequired => 2,
            Self::RestrictedUnderRetention | Self::SubjectErased => 3,
            Self::NotDeclaredForRecipient => 4,
            Self::NotNecessaryForPurpose => 5,
            _ => 6,
        }
    }
}

/// Something the caller must do when acting on an allowed decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obligation<'p> {
    /// Record the provision in the disclosure ledger (PIPL Art. 55–56; policy §5).
    RecordDisclosure,
    /// Tell the subject (Art. 22, 23, 25, 39 "inform"; not for Art. 18 exceptions).
    NotifySubject,
    /// Show this category masked only (staff access, policy §8.1).
    Mask(&'p str),
}

impl fmt::Display for Obligation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RecordDisclosure => f.write_str("record_disclosure"),
            Self::NotifySubject => f.write_str("notify_subject"),
            Self::Mask(c) => write!(f, "mask:{c}"),
        }
    }
}

/// What the caller wants to do.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// What is done.
    pub action: Action,
    /// Purpose id.
    pub purpose: &'a str,
    /// Categories requested; empty means "everything the purpose allows".
    pub categories: &'a [&'a str],
    /// Purposes the calling principal is authorized for.
    pub principal_purposes: &'a [String],
    /// Recipient id (share, transfer, cross-border; optional for disclose).
    pub recipient: Option<&'a str>,
    /// Destination region; defaults to the recipient's region.
    pub region: Option<&'a str>,
    /// A claimed §5.4 exception.
    pub exception: Option<Exception<'a>>,
}

impl<'a> AccessRequest<'a> {
    /// A request to use PI within the provider.
    #[must_use]
    pub fn use_of(
        purpose: &'a str,
        categories: &'a [&'a str],
        principal_purposes: &'a [String],
    ) -> Self {
        Self {
            action: Action::Use,
            purpose,
            categories,
            principal_purposes,
            recipient: None,
            region: None,
            exception: None,
        }
    }
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
    /// The region the customer chose for its business data (§6.3); defaults to the policy's
    /// storage region.
    pub home_region: Option<&'a str>,
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
    /// What was asked.
    pub action: Action,
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
    /// Non-personal categories treated as PI because the request combines them with an
    /// identifying category (§2.1.3).
    pub combined_as_pi: Vec<&'p str>,
    /// What the caller must do.
    pub obligations: Vec<Obligation<'p>>,
    /// The recipient, when one was named and declared.
    pub recipient: Option<&'p Recipient>,
    /// The exception relied on.
    pub exception: Option<ExceptionKind>,
    /// The destination is outside the storage region.
    pub cross_border: bool,
    /// True when the subject was a minor at decision time.
    pub minor: bool,
}

impl Decision<'_> {
    /// The PIPL article behind the outcome.
    #[must_use]
    pub fn article(&self) -> &'static str {
        if !self.allowed {
            return self.reason.article();
        }
        if self.reason == Reason::NotPersonalInformation {
            return Reason::NotPersonalInformation.article();
        }
        if let Some(e) = self.exception {
            return e.legal_basis().pipl_article();
        }
        if self.cross_border {
            return "PIPL Art. 39";
        }
        match (self.action, self.recipient) {
            (Action::Share, Some(r)) if r.entrusted => "PIPL Art. 21",
            (Action::Share, Some(_)) => "PIPL Art. 23",
            (Action::Transfer, _) => "PIPL Art. 22",
            (Action::Disclose, _) => "PIPL Art. 25",
            _ => self
                .legal_basis
                .map_or("PIPL Art. 13", LegalBasis::pipl_article),
        }
    }

    /// One sentence for people: what was decided and which rule decided it.
    #[must_use]
    pub fn explanation(&self) -> String {
        if !self.allowed {
            return format!(
                "denied {}: {} ({}, policy {})",
                self.action.as_str(),
                self.reason.as_str(),
                self.reason.article(),
                self.clause
            );
        }
        let basis = self.legal_basis.map_or("none needed", LegalBasis::as_str);
        let mut s = format!(
            "allowed {} of {} categories: legal basis {basis} ({}), policy {}",
            self.action.as_str(),
            self.allowed_categories.len(),
            self.article(),
            self.clause
        );
        if let Some(r) = self.recipient {
            let who = if r.entrusted {
                "entrusted party"
            } else {
                "another handler"
            };
            s.push_str(&format!("; recipient {} ({who}, {})", r.id, r.region));
        }
        if let Some(e) = self.exception {
            s.push_str(&format!("; exception {} ({})", e.as_str(), e.clause()));
        }
        if !self.withheld.is_empty() {
            s.push_str(&format!("; {} categories withheld", self.withheld.len()));
        }
        if !self.combined_as_pi.is_empty() {
            s.push_str(
                "; non-personal categories combined with an identifier are treated as PI (§2.1.3)",
            );
        }
        s
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
    action: Action,
    reason: Reason,
    clause: &'p str,
    basis: Option<LegalBasis>,
    minor: bool,
) -> Decision<'p> {
    Decision {
        action,
        allowed: false,
        reason,
        legal_basis: basis,
        clause,
        allowed_categories: Vec::new(),
        withheld: Vec::new(),
        combined_as_pi: Vec::new(),
        obligations: Vec::new(),
        recipient: None,
        exception: None,
        cross_border: false,
        minor,
    }
}

/// Checks a consent found (or not) for the request; `Err` is the deny reason.
fn check_consent(
    found: Option<&ActiveConsent>,
    withdrawn: bool,
    missing: Reason,
    minor: bool,
) -> Result<bool, Reason> {
    match found {
        None if withdrawn => Err(Reason::ConsentWithdrawn),
        None => Err(missing),
        Some(c) if minor && c.given_by != GivenBy::Guardian => Err(Reason::GuardianConsentRequired),
        Some(c) => Ok(c.separate),
    }
}

/// Decides whether `req` may proceed on the subject's PI at instant `now` under `policy`.
///
/// Pure: the same inputs give the same decision. Never panics. See the module docs for the
/// order of checks and the source of each rule.
#[must_use]
#[allow(clippy::too_many_lines)] // one rule after another, in the documented order
pub fn decide<'p>(
    policy: &'p Policy,
    facts: &SubjectFacts<'_>,
    req: &AccessRequest<'_>,
    now: OffsetDateTime,
) -> Decision<'p> {
    let action = req.action;
    let minor = facts
        .birth_date
        .is_some_and(|b| age_on(b, now.date()) < i32::from(policy.minor_age()));
    let Some(purpose) = policy.purpose(req.purpose) else {
        return deny(
            action,
            Reason::UnknownPurpose,
            Reason::UnknownPurpose.clause(),
            None,
            minor,
        );
    };
    let basis = purpose.legal_basis;
    let d = |r: Reason| deny(action, r, r.clause(), Some(basis), minor);
    if !req.principal_purposes.iter().any(|p| p == req.purpose) {
        return d(Reason::PurposeNotPermitted);
    }

    // Recipient and destination.
    let mut recipient = None;
    if let Some(rid) = req.recipient {
        match policy.recipient(rid) {
            Some(r) if r.serves(req.purpose) => recipient = Some(r),
            Some(_) => return d(Reason::RecipientPurposeNotDeclared),
            // A public disclosure may name an authority or "public" that is not a declared
            // recipient; every other provision needs a declared one.
            None if action == Action::Disclose => {}
            None => return d(Reason::UndeclaredRecipient),
        }
    } else if matches!(
        action,
        Action::Share | Action::Transfer | Action::CrossBorderTransfer
    ) {
        return d(Reason::RecipientRequired);
    }
    let storage = policy.storage_region();
    let dest = req.region.or(recipient.map(|r| r.region.as_str()));
    let cross_border = dest.is_some_and(|x| x != storage);
    if action == Action::CrossBorderTransfer && !cross_border {
        return d(Reason::NotCrossBorder);
    }
    if cross_border && matches!(action, Action::Collect | Action::Use) {
        return d(Reason::OutsideStorageRegion);
    }
    if facts.erased && basis != LegalBasis::LegalObligation {
        return d(Reason::SubjectErased);
    }

    // The categories in play, and whether the request is about PI at all (§2.1.3).
    let keys: &[&str] = req.categories;
    let purpose_keys = &purpose.categories;
    let n = if keys.is_empty() {
        purpose_keys.len()
    } else {
        keys.len()
    };
    let key_at = |i: usize| -> &str {
        if keys.is_empty() {
            purpose_keys[i].as_str()
        } else {
            keys[i]
        }
    };
    let mut any_identifying = false;
    let mut all_non_personal = n > 0;
    for i in 0..n {
        match policy.category(key_at(i)) {
            Some(c) => {
                any_identifying |= c.identifying;
                all_non_personal &= c.sensitivity == Sensitivity::NonPersonal;
            }
            None => all_non_personal = false,
        }
    }
    let not_pi = all_non_personal && matches!(action, Action::Collect | Action::Use);

    // Legal basis and consent.
    let mut applied_basis = basis;
    let mut exception = None;
    let mut separate_ok = purpose.separate_consent;
    if let Some(e) = req
        .exception
        .filter(|_| action.is_outbound() && !cross_border)
    {
        if e.reference.trim().is_empty() || e.authorized_by.trim().is_empty() {
            return d(Reason::ExceptionIncomplete);
        }
        exception = Some(e.kind);
        applied_basis = e.kind.legal_basis();
        separate_ok = true;
    } else if !not_pi {
        let c = facts.consent;
        let named = recipient.map(|r| r.id.as_str()).or(req.recipient);
        let needs_named = cross_border
            || action == Action::Transfer
            || (action == Action::Share && recipient.is_some_and(|r| !r.entrusted));
        if needs_named {
            let rid = named.unwrap_or("");
            let missing = if cross_border {
                Reason::CrossBorderConsentMissing
            } else {
                Reason::RecipientConsentMissing
            };
            if let Err(r) = check_consent(
                c.active_for(req.purpose, rid),
                c.withdrawn_for(req.purpose, rid),
                missing,
                minor,
            ) {
                return d(r);
            }
            applied_basis = LegalBasis::Consent;
            separate_ok = true; // a consent naming the recipient is a separate consent
        } else if action == Action::Disclose {
            let rid = named.unwrap_or("public");
            let found = c
                .active_for(req.purpose, rid)
                .or_else(|| c.active_for(req.purpose, "public"));
            let withdrawn = c.withdrawn_for(req.purpose, rid);
            if let Err(r) = check_consent(found, withdrawn, Reason::DisclosureConsentMissing, minor)
            {
                return d(r);
            }
            applied_basis = LegalBasis::Consent;
            separate_ok = true;
        } else if basis == LegalBasis::Consent {
            match check_consent(
                c.active(req.purpose),
                c.withdrawn(req.purpose),
                Reason::ConsentMissing,
                minor,
            ) {
                Err(r) => {
                    let clause = if r == Reason::GuardianConsentRequired {
                        r.clause()
                    } else {
                        purpose.clause.as_str()
                    };
                    return deny(action, r, clause, Some(basis), minor);
                }
                Ok(sep) => separate_ok |= sep,
            }
        }
    }

    // Per category.
    let mut allowed_categories = Vec::with_capacity(n);
    let mut withheld = Vec::new();
    let mut combined_as_pi = Vec::new();
    let home = facts.home_region.unwrap_or(storage);
    for i in 0..n {
        let Some(cat) = policy.category(key_at(i)) else {
            continue;
        };
        let k = cat.key.as_str();
        let non_personal = cat.sensitivity == Sensitivity::NonPersonal;
        if non_personal && any_identifying {
            combined_as_pi.push(k);
        }
        let reason = if non_personal && !any_identifying && !action.is_outbound() {
            None // not PI on its own (§2.1.3)
        } else if cat.business_data && dest.is_some_and(|x| x != home) {
            // §6.3 is absolute: checked before anything that could be configured around it.
            Some(Reason::BusinessDataRegionLocked)
        } else if !purpose.allows(k) {
            Some(Reason::NotNecessaryForPurpose)
        } else if recipient.is_some_and(|r| !r.receives(k)) {
            Some(Reason::NotDeclaredForRecipient)
        } else if facts.erased && cat.retention.is_none() {
            Some(Reason::SubjectErased)
        } else if applied_basis == LegalBasis::Consent
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
    }
    if allowed_categories.is_empty() {
        let reason = withheld
            .iter()
            .map(|w| w.reason)
            .min_by_key(|r| r.rank())
            .unwrap_or(Reason::UnknownCategory);
        let mut dd = deny(action, reason, reason.clause(), Some(applied_basis), minor);
        dd.withheld = withheld;
        dd.recipient = recipient;
        dd.cross_border = cross_border;
        return dd;
    }
    let mut obligations = Vec::new();
    if action.is_outbound() {
        obligations.push(Obligation::RecordDisclosure);
        let entrusted_share =
            action == Action::Share && recipient.is_some_and(|r| r.entrusted) && !cross_border;
        if !entrusted_share && exception.is_none_or(ExceptionKind::notifies_subject) {
            obligations.push(Obligation::NotifySubject);
        }
    }
    let clause = match (exception, recipient) {
        (Some(e), _) => e.clause(),
        _ if not_pi => Reason::NotPersonalInformation.clause(),
        (None, Some(r)) if action.is_outbound() => r.clause.as_str(),
        _ => purpose.clause.as_str(),
    };
    Decision {
        action,
        allowed: true,
        reason: if not_pi {
            Reason::NotPersonalInformation
        } else {
            Reason::Allowed
        },
        legal_basis: if not_pi { None } else { Some(applied_basis) },
        clause,
        allowed_categories,
        withheld,
        combined_as_pi,
        obligations,
        recipient,
        exception,
        cross_border,
        minor,
    }
}
