//! [`decide`] itself, in the order of checks the module docs of
//! [`crate::decision`] give, with the subject's age ([`age_on`]).

use super::{
    AccessRequest, Action, Decision, ExceptionKind, Obligation, OutdatedBy, Reason, SubjectFacts,
    Withheld,
};
use crate::consent::{ActiveConsent, GivenBy};
use crate::policy::Policy;
use crate::policy::{LegalBasis, Sensitivity};
use time::{Date, OffsetDateTime};

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
        outdated_by: None,
    }
}

/// Checks a consent found (or not) for the request; `Err` is the deny reason.
fn check_consent(
    found: Option<&ActiveConsent>,
    withdrawn: bool,
    missing: Reason,
    minor: bool,
) -> Result<&ActiveConsent, Reason> {
    match found {
        None if withdrawn => Err(Reason::ConsentWithdrawn),
        None => Err(missing),
        Some(c) if minor && c.given_by != GivenBy::Guardian => Err(Reason::GuardianConsentRequired),
        Some(c) => Ok(c),
    }
}

/// The deny for a consent given before the purpose's last material change (PIPL Art. 14
/// para. 2; policy §X), if it was.
fn outdated<'p>(
    policy: &'p Policy,
    purpose: &str,
    consent: &ActiveConsent,
    action: Action,
    basis: LegalBasis,
    minor: bool,
) -> Option<Decision<'p>> {
    let (version, change) = policy.consent_outdated_by(purpose, &consent.policy_version)?;
    let r = Reason::ConsentOutdated;
    let mut d = deny(action, r, r.clause(), Some(basis), minor);
    d.outdated_by = Some(OutdatedBy {
        given_under: consent.policy_version.clone(),
        version,
        change,
    });
    Some(d)
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
            match check_consent(
                c.active_for(req.purpose, rid),
                c.withdrawn_for(req.purpose, rid),
                missing,
                minor,
            ) {
                Err(r) => return d(r),
                Ok(found) => {
                    if let Some(o) = outdated(policy, req.purpose, found, action, basis, minor) {
                        return o;
                    }
                }
            }
            applied_basis = LegalBasis::Consent;
            separate_ok = true; // a consent naming the recipient is a separate consent
        } else if action == Action::Disclose {
            let rid = named.unwrap_or("public");
            let found = c
                .active_for(req.purpose, rid)
                .or_else(|| c.active_for(req.purpose, "public"));
            let withdrawn = c.withdrawn_for(req.purpose, rid);
            match check_consent(found, withdrawn, Reason::DisclosureConsentMissing, minor) {
                Err(r) => return d(r),
                Ok(found) => {
                    if let Some(o) = outdated(policy, req.purpose, found, action, basis, minor) {
                        return o;
                    }
                }
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
                Ok(found) => {
                    if let Some(o) = outdated(policy, req.purpose, found, action, basis, minor) {
                        return o;
                    }
                    separate_ok |= found.separate;
                }
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
        } else if facts.erased && cat.legal_minimum().is_none() {
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
        outdated_by: None,
    }
}
