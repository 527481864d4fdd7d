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

/// The event that starts a category's retention clock (policy §4.2, §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionClock {
    /// When the vault collected the record (a web-log line's request, a ticket's filing).
    Collected,
    /// The transaction the record describes was completed (an order's payment): E-Commerce
    /// Law Art. 31 counts "from the date of completion of the transaction".
    Transaction,
    /// The subject's account was closed (policy §7.1 account cancellation).
    AccountClosed,
    /// The subject's last recorded activity (a login, a request, a web-log line).
    LastActivity,
    /// The subject withdrew the consent the category was processed on (PIPL Art. 15, 47(1)(3)):
    /// the latest withdrawal among the consent purposes that list the category, while none of
    /// them is granted.
    ConsentWithdrawn,
}

impl RetentionClock {
    /// Every clock event.
    pub const ALL: [RetentionClock; 5] = [
        RetentionClock::Collected,
        RetentionClock::Transaction,
        RetentionClock::AccountClosed,
        RetentionClock::LastActivity,
        RetentionClock::ConsentWithdrawn,
    ];

    /// `collected`, `transaction`, `account_closed`, `last_activity` or `consent_withdrawn`.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionClock::Collected => "collected",
            RetentionClock::Transaction => "transaction",
            RetentionClock::AccountClosed => "account_closed",
            RetentionClock::LastActivity => "last_activity",
            RetentionClock::ConsentWithdrawn => "consent_withdrawn",
        }
    }

    /// The clock named `s` as [`as_str`](Self::as_str) spells it, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the clock starts per record (an event each record carries) rather than per
    /// subject (closure, activity, withdrawal).
    pub fn is_per_record(self) -> bool {
        matches!(
            self,
            RetentionClock::Collected | RetentionClock::Transaction
        )
    }
}

/// What happens to a record when its retention ends (policy §4.2, §8.2: "destroy or
/// anonymize"; PIPL Art. 47(1)(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndAction {
    /// The record's fields are deleted.
    Delete,
    /// The record is replaced by an anonymized one (PIPL Art. 73(4)) under the category's
    /// [`AnonymizationRule`], and its fields are deleted.
    Anonymize,
}

impl EndAction {
    /// Every action.
    pub const ALL: [EndAction; 2] = [EndAction::Delete, EndAction::Anonymize];

    /// `delete` or `anonymize`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndAction::Delete => "delete",
            EndAction::Anonymize => "anonymize",
        }
    }

    /// The action named `s` as [`as_str`](Self::as_str) spells it, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A period of whole days, written in a policy as `"30d"`, `"26w"` or `"3y"` (a year is 365
/// days; a period meant to satisfy a legal minimum in years should be written in days when
/// the law counts leap days, e.g. `"1096d"`). At most 100 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RetentionPeriod(u32);

impl RetentionPeriod {
    /// The longest period a policy may state: 100 years, in days.
    pub const MAX_DAYS: u32 = 36_500;

    /// A period of `days` whole days, if it is at most [`RetentionPeriod::MAX_DAYS`].
    pub fn from_days(days: u32) -> Option<Self> {
        (days <= Self::MAX_DAYS).then_some(RetentionPeriod(days))
    }

    /// Parses `<n>d`, `<n>w` or `<n>y` (n a non-negative decimal integer).
    ///
    /// # Errors
    /// A sentence saying what is wrong (negative, no unit, unknown unit, too long), never
    /// echoing more than the input it was given.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.starts_with('-') {
            return Err("a period cannot be negative".into());
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        if num.is_empty() {
            return Err("a period is a whole number followed by d, w or y, e.g. \"183d\"".into());
        }
        let n: u64 = num
            .parse()
            .map_err(|_| "a period's number is too large".to_string())?;
        let per = match unit {
            "d" => 1,
            "w" => 7,
            "y" => 365,
            "" => {
                return Err(
                    "a period needs a unit: d (days), w (weeks) or y (years of 365 days)".into(),
                )
            }
            _ => {
                return Err(
                    "unknown period unit: use d (days), w (weeks) or y (years of 365 days)".into(),
                )
            }
        };
        n.checked_mul(per)
            .and_then(|d| u32::try_from(d).ok())
            .and_then(RetentionPeriod::from_days)
            .ok_or_else(|| {
                format!(
                    "a period may be at most {} days (100 years)",
                    Self::MAX_DAYS
                )
            })
    }

    /// The period in whole days.
    pub fn days(self) -> u32 {
        self.0
    }

    /// The period in seconds (days × 86,400).
    pub fn seconds(self) -> i64 {
        i64::from(self.0) * 86_400
    }
}

/// A category's retention rule (policy §4.2, §8.2; PIPL Art. 19: "the shortest period
/// necessary"). The record is kept `keep_for` after its `clock` starts, never less than the
/// `legal_minimum` (which also survives an erasure request, PIPL Art. 47 para. 2), and then
/// `end` is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Retention {
    /// How long the purpose needs the data after the clock starts. Never shorter than
    /// `legal_minimum` (checked when the policy loads).
    pub keep_for: RetentionPeriod,
    /// The period a law requires the data to be kept, even after an erasure request.
    pub legal_minimum: Option<RetentionPeriod>,
    /// The event that starts the clock.
    pub clock: RetentionClock,
    /// What happens at the end.
    pub end: EndAction,
    /// Where the periods come from, e.g. `E-Commerce Law Art. 31`.
    pub basis: String,
    /// The policy clause announcing it, e.g. `§4.2`.
    pub clause: String,
}

impl Retention {
    /// The legal minimum in seconds, if any.
    pub fn legal_minimum_seconds(&self) -> Option<i64> {
        self.legal_minimum.map(RetentionPeriod::seconds)
    }
}

/// The anonymized data sets pivault can produce (PIPL Art. 73(4)); each has a fixed
/// transformation in code and the quasi-identifier columns a policy may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnonymizedSet {
    /// Web-log lines: network prefix, browser family, path without PI, hour.
    Weblog,
    /// Orders: amount, product and month, with no link to the subject.
    Order,
}

impl AnonymizedSet {
    /// Every set.
    pub const ALL: [AnonymizedSet; 2] = [AnonymizedSet::Weblog, AnonymizedSet::Order];

    /// `weblog` or `order`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnonymizedSet::Weblog => "weblog",
            AnonymizedSet::Order => "order",
        }
    }

    /// The set named `s`, if any.
    pub fn parse_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The columns of the set that may be named as quasi-identifiers.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            AnonymizedSet::Weblog => &[
                "hour",
                "client_net",
                "method",
                "path",
                "status",
                "ua_family",
                "ua_major",
            ],
            AnonymizedSet::Order => &["month", "product", "amount"],
        }
    }
}

/// How records of some categories are anonymized, and the k-anonymity an export labelled
/// anonymized must reach (`[[anonymization]]`; PIPL Art. 73(4); GB/T 35273-2020 §3.14;
/// Sweeney 2002).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnonymizationRule {
    /// The anonymized set records of these categories become.
    pub set: AnonymizedSet,
    /// The categories whose records this rule anonymizes.
    pub categories: Vec<String>,
    /// The columns an attacker could link to other data; k is measured over them.
    pub quasi_identifiers: Vec<String>,
    /// The smallest equivalence class an export may contain (default 5).
    pub k_min: u32,
    /// The policy clause, e.g. `§4.2`.
    pub clause: String,
}

/// A category of PI the policy covers, e.g. `user.contact.mobile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    /// Dotted key `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`, fideslang style.
    pub key: String,
    /// Human-readable name.
    pub name: String,
    /// Its name in Chinese (`name_zh`), shown on zh-CN pages; `name` when not given.
    pub name_zh: Option<String>,
    /// How sensitive values of this category are.
    pub sensitivity: Sensitivity,
    /// The shape of values.
    pub value_type: ValueType,
    /// Set when values of this category are identifiers with a blind index; at
    /// most one category per kind.
    pub identifier: Option<IdentifierKind>,
    /// The policy clause collecting it, e.g. `§2.2.1`.
    pub clause: String,
    /// How long values are kept and what happens then; `None` keeps them until erasure.
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

    /// The legal minimum retention, if a law requires one (it survives an erasure request:
    /// PIPL Art. 47 para. 2).
    pub fn legal_minimum(&self) -> Option<&Retention> {
        self.retention
            .as_ref()
            .filter(|r| r.legal_minimum.is_some())
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
    /// Its name in Chinese (`name_zh`), shown on zh-CN pages; `name` when not given.
    pub name_zh: Option<String>,
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
    /// Its name in Chinese (`name_zh`), shown on zh-CN pages; `name` when not given.
    pub name_zh: Option<String>,
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

/// The name of a policy item for a page in Chinese (`zh`) or English: `name_zh` when the
/// policy gives one, else `name`.
#[must_use]
pub fn localized<'a>(name: &'a str, name_zh: Option<&'a str>, zh: bool) -> &'a str {
    match name_zh {
        Some(z) if zh => z,
        _ => name,
    }
}
