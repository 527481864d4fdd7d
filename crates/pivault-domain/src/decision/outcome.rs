//! The outcome of [`decide`](super::decide): a [`Decision`] with the categories
//! allowed and [`Withheld`], and its explanation.

use super::{Action, ExceptionKind, Obligation, Reason};
use crate::policy::{LegalBasis, PolicyChange, PolicyVersion, Recipient};

/// The material policy change that outdated the consent a decision found
/// ([`Reason::ConsentOutdated`]; PIPL Art. 14 para. 2; policy §X).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutdatedBy<'p> {
    /// The policy version the consent was given under.
    pub given_under: String,
    /// The version that made the change.
    pub version: &'p PolicyVersion,
    /// The change.
    pub change: &'p PolicyChange,
}

/// A category the decision withheld, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withheld<'p> {
    /// Category key.
    pub category: &'p str,
    /// Why.
    pub reason: Reason,
}

/// The outcome of [`decide`](super::decide).
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
    /// With [`Reason::ConsentOutdated`]: the change that outdated the consent.
    pub outdated_by: Option<OutdatedBy<'p>>,
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
        if let (false, Some(o)) = (self.allowed, &self.outdated_by) {
            return format!(
                "denied {}: {} ({}, policy {}): the consent was given under policy version {}, \
                 and version {} changed this purpose materially: {}",
                self.action.as_str(),
                self.reason.as_str(),
                self.reason.article(),
                self.clause,
                o.given_under,
                o.version.version,
                o.change.summary
            );
        }
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
