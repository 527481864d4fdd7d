//! Why PI is erased: the grounds of PIPL Art. 47 para. 1 and of the privacy
//! policy (2024-12-04) §7.1, as an [`ErasureGround`].
//!
//! PIPL Art. 47 para. 1 obliges the handler to delete PI on its own initiative,
//! or on the subject's request, when (1) the purpose is achieved, cannot be
//! achieved or the PI is no longer necessary for it; (2) the handler stops
//! providing the product or service, or the retention period has expired;
//! (3) the subject withdraws consent; (4) the processing violates laws,
//! administrative regulations or the agreement; (5) other circumstances laws
//! provide. Policy §7.1 lets the subject ask for deletion when processing
//! violates laws (§7.1.1), PI was collected without explicit consent (§7.1.2)
//! or processing seriously violates the agreement (§7.1.3); GB/T 35273-2020
//! §8.3 a) 1)–2) states the first and last. Where a law sets a retention period
//! that has not ended, Art. 47 para. 2 restricts processing to storage and
//! protection instead.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identifiers::InvalidValue;

/// The ground an erasure rests on. Wire and storage name:
/// [`as_str`](Self::as_str), also the serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureGround {
    /// `subject_request`: the PI subject asked for deletion (PIPL Art. 47
    /// para. 1 "the individual requests deletion"; a deletion or cancellation
    /// data subject request, policy §7.1).
    SubjectRequest,
    /// `purpose_achieved`: the purpose is achieved, cannot be achieved, or the
    /// PI is no longer necessary for it (PIPL Art. 47 para. 1(1); policy §8.2).
    PurposeAchieved,
    /// `service_ended`: we stopped providing the product or service, or the
    /// subject's service ended (PIPL Art. 47 para. 1(2); policy §8.6).
    ServiceEnded,
    /// `retention_expired`: the retention period has expired (PIPL Art. 47
    /// para. 1(2); policy §8.2 "after the above retention period … we will
    /// delete or anonymize").
    RetentionExpired,
    /// `consent_withdrawn`: the subject withdrew the consent the processing
    /// rested on (PIPL Art. 47 para. 1(3); policy §7.2).
    ConsentWithdrawn,
    /// `unlawful_processing`: processing violates laws or administrative
    /// regulations (PIPL Art. 47 para. 1(4); policy §7.1.1; GB/T 35273-2020
    /// §8.3 a) 1)).
    UnlawfulProcessing,
    /// `no_consent`: PI was collected or used without the subject's explicit
    /// consent (policy §7.1.2; without another basis of PIPL Art. 13 that is
    /// unlawful processing, Art. 47 para. 1(4)).
    NoConsent,
    /// `breach_of_agreement`: processing seriously violates the agreement with
    /// the subject (PIPL Art. 47 para. 1(4); policy §7.1.3; GB/T 35273-2020
    /// §8.3 a) 2)).
    BreachOfAgreement,
}

impl ErasureGround {
    /// Every ground, in the order of pivault-core's `ERASURE_GROUNDS`.
    pub const ALL: [ErasureGround; 8] = [
        ErasureGround::SubjectRequest,
        ErasureGround::PurposeAchieved,
        ErasureGround::ServiceEnded,
        ErasureGround::RetentionExpired,
        ErasureGround::ConsentWithdrawn,
        ErasureGround::UnlawfulProcessing,
        ErasureGround::NoConsent,
        ErasureGround::BreachOfAgreement,
    ];

    /// `subject_request`, `purpose_achieved`, `service_ended`,
    /// `retention_expired`, `consent_withdrawn`, `unlawful_processing`,
    /// `no_consent` or `breach_of_agreement`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubjectRequest => "subject_request",
            Self::PurposeAchieved => "purpose_achieved",
            Self::ServiceEnded => "service_ended",
            Self::RetentionExpired => "retention_expired",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::UnlawfulProcessing => "unlawful_processing",
            Self::NoConsent => "no_consent",
            Self::BreachOfAgreement => "breach_of_agreement",
        }
    }

    /// The ground spelled as [`as_str`](Self::as_str) does; `None` otherwise.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }

    /// The PIPL provision, e.g. `"PIPL Art. 47 para. 1(3)"` for a withdrawn
    /// consent.
    #[must_use]
    pub fn article(self) -> &'static str {
        match self {
            Self::SubjectRequest => "PIPL Art. 47 para. 1",
            Self::PurposeAchieved => "PIPL Art. 47 para. 1(1)",
            Self::ServiceEnded | Self::RetentionExpired => "PIPL Art. 47 para. 1(2)",
            Self::ConsentWithdrawn => "PIPL Art. 47 para. 1(3)",
            Self::UnlawfulProcessing | Self::NoConsent | Self::BreachOfAgreement => {
                "PIPL Art. 47 para. 1(4)"
            }
        }
    }

    /// The clause of the privacy policy (2024-12-04) stating the ground, e.g.
    /// `§7.1.2` for `no_consent`.
    #[must_use]
    pub fn policy_clause(self) -> &'static str {
        match self {
            Self::SubjectRequest => "§7.1",
            Self::PurposeAchieved | Self::RetentionExpired => "§8.2",
            Self::ServiceEnded => "§8.6",
            Self::ConsentWithdrawn => "§7.2",
            Self::UnlawfulProcessing => "§7.1.1",
            Self::NoConsent => "§7.1.2",
            Self::BreachOfAgreement => "§7.1.3",
        }
    }
}

impl fmt::Display for ErasureGround {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErasureGround {
    type Err = InvalidValue;

    /// The ground spelled as [`as_str`](Self::as_str) does.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `unknown_ground` (the code pivault-core
    /// already answers with) for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(InvalidValue {
            code: "unknown_ground",
            reason: "not an erasure ground of PIPL Art. 47 / policy §7.1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{from_serde_name, serde_name};

    /// pivault-core's `ERASURE_GROUNDS`, copied: the wire forms must not drift.
    const CORE_ERASURE_GROUNDS: [&str; 8] = [
        "subject_request",
        "purpose_achieved",
        "service_ended",
        "retention_expired",
        "consent_withdrawn",
        "unlawful_processing",
        "no_consent",
        "breach_of_agreement",
    ];

    #[test]
    fn wire_names_match_core_in_order() {
        let names: Vec<&str> = ErasureGround::ALL.iter().map(|g| g.as_str()).collect();
        assert_eq!(names, CORE_ERASURE_GROUNDS);
    }

    #[test]
    fn every_ground_round_trips_through_parse_from_str_display_and_serde() {
        for g in ErasureGround::ALL {
            assert_eq!(ErasureGround::parse(g.as_str()), Some(g));
            assert_eq!(g.as_str().parse::<ErasureGround>(), Ok(g));
            assert_eq!(g.to_string(), g.as_str());
            assert_eq!(serde_name(g), g.as_str());
            assert_eq!(from_serde_name::<ErasureGround>(g.as_str()), Some(g));
        }
        assert_eq!(from_serde_name::<ErasureGround>("SubjectRequest"), None);
    }

    #[test]
    fn unknown_or_differently_spelt_grounds_are_rejected() {
        for s in [
            "",
            "Subject_Request",
            "subject-request",
            " subject_request",
            "purpose",
            "erase",
        ] {
            assert_eq!(ErasureGround::parse(s), None, "{s:?}");
            let err = s.parse::<ErasureGround>().unwrap_err();
            assert_eq!(err.code, "unknown_ground");
        }
    }

    #[test]
    fn every_ground_names_an_art_47_provision_and_a_policy_clause() {
        for g in ErasureGround::ALL {
            assert!(g.article().starts_with("PIPL Art. 47"), "{g}");
            assert!(g.policy_clause().starts_with('§'), "{g}");
        }
        assert_eq!(ErasureGround::NoConsent.policy_clause(), "§7.1.2");
        assert_eq!(
            ErasureGround::ConsentWithdrawn.article(),
            "PIPL Art. 47 para. 1(3)"
        );
    }
}
