//! Why a decision came out as it did ([`Reason`], with its article and clause)
//! and what the caller must do when acting on it ([`Obligation`]).

use std::fmt;

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
    /// Consent was given under a policy version older than a material change of the purpose
    /// (or of a category it uses): it no longer counts and must be given again (PIPL Art. 14
    /// para. 2; policy §X).
    ConsentOutdated,
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
            Self::ConsentOutdated => "consent_outdated",
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
            Self::ConsentMissing | Self::ConsentOutdated => "PIPL Art. 14",
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
            Self::ConsentOutdated => "§X",
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

    pub(super) fn rank(self) -> u8 {
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
