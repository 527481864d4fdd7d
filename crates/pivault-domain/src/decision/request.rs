//! What a decision is asked: the [`Action`], a claimed §5.4 [`Exception`], the
//! [`AccessRequest`] and the [`SubjectFacts`] it is decided on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::consent::ConsentState;
use crate::policy::LegalBasis;
use time::Date;

/// What is done with the PI. Wire name: [`as_str`](Self::as_str), also the
/// serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{from_serde_name, serde_name};

    #[test]
    fn actions_round_trip_through_parse_display_and_serde() {
        let names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "collect",
                "use",
                "share",
                "transfer",
                "disclose",
                "cross_border_transfer"
            ]
        );
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
            assert_eq!(serde_name(a), a.as_str());
            assert_eq!(from_serde_name::<Action>(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("crossBorderTransfer"), None);
    }
}
