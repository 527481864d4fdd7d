//! The policy's vocabulary (sensitivity, value types, legal bases, retention
//! anchors, recipient kinds) and its entries: [`Category`], [`Purpose`],
//! [`Recipient`] with their [`Retention`].

use serde::{Deserialize, Serialize};

use crate::identifiers::IdentifierKind;

/// How much harm misuse of a category can do, which decides the consent it
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// Sensitive PI (PIPL Art. 28: biometrics, specific identity, financial
    /// accounts, whereabouts, any PI of a minor under 14, and what the policy's
    /// §II lists). Consent-based processing needs separate consent (Art. 29).
    Sensitive,
    /// Other PI (PIPL Art. 4): relates to an identified or identifiable person.
    Personal,
    /// Not PI on its own (policy §2.1.3: device and log information alone); it
    /// becomes PI when combined with PI.
    NonPersonal,
}

/// The shape of a category's values, for storage and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueType {
    /// UTF-8 text.
    Text,
    /// A decimal number (amounts in CNY as text of the decimal, e.g. `12.50`).
    Number,
    /// An RFC 3339 UTC timestamp, second precision.
    Timestamp,
    /// Opaque bytes (e.g. a face template).
    Binary,
}

/// The legal basis of a purpose: one of the seven of PIPL Art. 13 para. 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasis {
    /// The PI subject's consent (Art. 13(1)); withdrawable (Art. 15).
    Consent,
    /// Necessary to conclude or perform a contract to which the subject is a
    /// party, or for HR management under labour rules (Art. 13(2)).
    Contract,
    /// Necessary to fulfil a statutory duty or obligation (Art. 13(3)).
    LegalObligation,
    /// Necessary to respond to a public health emergency or protect life, health
    /// and property in an emergency (Art. 13(4)).
    PublicHealth,
    /// News reporting and supervision by public opinion in the public interest,
    /// within a reasonable scope (Art. 13(5)).
    NewsReporting,
    /// PI the subject disclosed or that was lawfully disclosed, within a
    /// reasonable scope (Art. 13(6), Art. 27).
    PublicInformation,
    /// Other circumstances provided by laws and administrative regulations
    /// (Art. 13(7)).
    OtherLaw,
}

impl LegalBasis {
    /// Every basis, in the order of PIPL Art. 13.
    pub const ALL: [LegalBasis; 7] = [
        LegalBasis::Consent,
        LegalBasis::Contract,
        LegalBasis::LegalObligation,
        LegalBasis::PublicHealth,
        LegalBasis::NewsReporting,
        LegalBasis::PublicInformation,
        LegalBasis::OtherLaw,
    ];

    /// The name used in policy files: `consent`, `contract`, `legal_obligation`,
    /// `public_health`, `news_reporting`, `public_information`, `other_law`.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Consent => "consent",
            LegalBasis::Contract => "contract",
            LegalBasis::LegalObligation => "legal_obligation",
            LegalBasis::PublicHealth => "public_health",
            LegalBasis::NewsReporting => "news_reporting",
            LegalBasis::PublicInformation => "public_information",
            LegalBasis::OtherLaw => "other_law",
        }
    }

    /// The basis named `s` as [`as_str`](Self::as_str) spells it, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == s)
    }

    /// The article establishing this basis, e.g. `"PIPL Art. 13(1)"` for consent.
    pub fn pipl_article(self) -> &'static str {
        match self {
            LegalBasis::Consent => "PIPL Art. 13(1)",
            LegalBasis::Contract => "PIPL Art. 13(2)",
            LegalBasis::LegalObligation => "PIPL Art. 13(3)",
            LegalBasis::PublicHealth => "PIPL Art. 13(4)",
            LegalBasis::NewsReporting => "PIPL Art. 13(5)",
            LegalBasis::PublicInformation => "PIPL Art. 13(6)",
            LegalBasis::OtherLaw => "PIPL Art. 13(7)",
        }
    }
}

impl Sensitivity {
    /// Every level.
    pub const ALL: [Sensitivity; 3] = [
        Sensitivity::Sensitive,
        Sensitivity::Personal,
        Sensitivity::NonPersonal,
    ];

    /// `sensitive`, `personal` or `non_personal`.
    pub fn as_str(self) -> &'static str {
        match self {
            Sensitivity::Sensitive => "sensitive",
            Sensitivity::Personal => "personal",
            Sensitivity::NonPersonal => "non_personal",
        }
    }

    /// The level named `s` as [`as_str`](Self::as_str) spells it, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl ValueType {
    /// Every type.
    pub const ALL: [ValueType; 4] = [
        ValueType::Text,
        ValueType::Number,
        ValueType::Timestamp,
        ValueType::Binary,
    ];

    /// `text`, `number`, `timestamp` or `binary`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Timestamp => "timestamp",
            ValueType::Binary => "binary",
        }
    }

    /// The type named `s` as [`as_str`](Self::as_str) spells it, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// From when a retention period counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionAnchor {
    /// From the event the record describes (a transaction's completion, a log
    /// line's request): E-Commerce Law Art. 31 counts "from the date of completion
    /// of the transaction".
    Event,
    /// From when the vault collected the value.
    Collection,
}

impl RetentionAnchor {
    /// Every anchor.
    pub const ALL: [RetentionAnchor; 2] = [RetentionAnchor::Event, RetentionAnchor::Collection];

    /// `event` or `collection`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionAnchor::Event => "event",
            RetentionAnchor::Collection => "collection",
        }
    }

    /// The anchor named `s` as [`as_str`](Self::as_str) spells it, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A minimum retention period imposed by law (policy §4.2): values of the
/// category must not be erased before it ends, even on an erasure request
/// (PIPL Art. 47 para. 2 then restricts processing to storage and protection).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// Minimum retention in whole days, ≥ 1.
    pub min_days: u32,
    /// When the period starts.
    pub from: RetentionAnchor,
    /// The law requiring it, e.g. `E-Commerce Law Art. 31`.
    pub basis: String,
    /// The policy clause announcing it, e.g. `§4.2`.
    pub clause: String,
}

/// A category of PI the policy covers, e.g. `user.contact.mobile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// Dotted key `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`, fideslang style.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// How sensitive values of this category are.
    pub sensitivity: Sensitivity,
    /// The shape of values.
    pub value_type: ValueType,
    /// Set when values of this category are identifiers with a blind index; at
    /// most one category per kind.
    pub identifier: Option<IdentifierKind>,
    /// The policy clause collecting it, e.g. `§2.2.1`.
    pub clause: String,
    /// The legal minimum retention, if any.
    pub retention: Option<Retention>,
    /// Identifies a person on its own (identifiers, names, device ids, IP addresses). A
    /// non-personal category combined with an identifying one in one request is treated as
    /// PI (policy §2.1.3). Defaults to true when `identifier` is set.
    pub identifying: bool,
    /// A customer's business data (policy §VI): stored in the region the customer chose and
    /// never transferred out of it (§6.3).
    pub business_data: bool,
}

impl Category {
    /// Whether this is sensitive PI (PIPL Art. 28).
    pub fn is_sensitive(&self) -> bool {
        self.sensitivity == Sensitivity::Sensitive
    }
}

/// What kind of party a recipient is (policy §5.1.3–5.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// A supplier (§5.1.3).
    Supplier,
    /// A service provider: basic technical, consulting, analytics services (§5.1.3).
    ServiceProvider,
    /// A third-party SDK embedded in our clients (§5.1.4).
    ThirdPartySdk,
    /// An affiliate of the provider ("Definition"; §2.2.4).
    Affiliate,
}

impl RecipientKind {
    /// Every kind.
    pub const ALL: [RecipientKind; 4] = [
        RecipientKind::Supplier,
        RecipientKind::ServiceProvider,
        RecipientKind::ThirdPartySdk,
        RecipientKind::Affiliate,
    ];
    /// Wire name: `supplier`, `service_provider`, `third_party_sdk`, `affiliate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supplier => "supplier",
            Self::ServiceProvider => "service_provider",
            Self::ThirdPartySdk => "third_party_sdk",
            Self::Affiliate => "affiliate",
        }
    }
}

/// A party that may receive PI, with what it may receive and why (§5.1; PIPL Art. 21, 23).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recipient {
    /// Id `^[a-z][a-z0-9_-]*$`, e.g. `sms-gateway`.
    pub id: String,
    /// Human-readable name (shown to subjects: Art. 23 requires naming the recipient).
    pub name: String,
    /// Supplier, service provider, third-party SDK or affiliate.
    pub kind: RecipientKind,
    /// True for an entrusted party processing on our behalf and instruction (PIPL Art. 21):
    /// no separate consent, but a contract and supervision. False for another PI handler
    /// (Art. 23): separate consent naming it.
    pub entrusted: bool,
    /// Where it processes the data: a lower-case region code (`cn`, `sg`, …). Another region
    /// than the policy's storage region makes every provision a cross-border transfer.
    pub region: String,
    /// Purposes it may receive data for.
    pub purposes: Vec<String>,
    /// The only categories it may receive (minimum necessary).
    pub categories: Vec<String>,
    /// Policy clause, e.g. `§5.1.3`.
    pub clause: String,
}

impl Recipient {
    /// Whether it may receive `category`.
    pub fn receives(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }
    /// Whether it may receive data for `purpose`.
    pub fn serves(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }
}

/// A purpose of processing (PIPL Art. 6: specific and reasonable, minimum
/// scope), with its legal basis and the categories it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purpose {
    /// Id `^[a-z][a-z0-9_]*$`, e.g. `marketing`.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The policy clause stating it, e.g. `§2.2.3`.
    pub clause: String,
    /// Why processing for this purpose is lawful (PIPL Art. 13).
    pub legal_basis: LegalBasis,
    /// The minimum necessary categories (PIPL Art. 6) this purpose may use, in
    /// file order, no repeats.
    pub categories: Vec<String>,
    /// The fideslang data use key, e.g. `marketing.communications`.
    pub fides_use: Option<String>,
    /// Consent for this purpose must be a separate consent (PIPL Art. 14 para. 1;
    /// required for sensitive PI Art. 29, provision to another handler Art. 23,
    /// public disclosure Art. 25, cross-border transfer Art. 39). Only ever true
    /// for consent-based purposes.
    pub separate_consent: bool,
}

impl Purpose {
    /// Whether this purpose may use `category` (a category key).
    pub fn allows(&self, category: &str) -> bool {
        self.categories.iter().any(|c| c == category)
    }
}
