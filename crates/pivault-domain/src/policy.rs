//! Policy as code: the privacy policy's categories of PI and purposes of
//! processing, declared in TOML, parsed and validated once per version into an
//! immutable, indexed [`Policy`].
//!
//! The file (`policies/default.toml` implements the Inspur Cloud privacy
//! policy of 2024-12-04) has one `[policy]` table, `[[category]]` entries,
//! `[[purpose]]` entries and `[[recipient]]` entries; see [`Category`],
//! [`Purpose`] and [`Recipient`] for their fields. An optional `[dsr]` table and
//! `[[jurisdiction]]` entries configure data subject requests (see
//! [`DsrSettings`] and [`Jurisdiction`]).
//!
//! Invariants of a [`Policy`] value (checked by [`Policy::parse`], which is the
//! only constructor):
//! - category keys and purpose ids are unique and well-formed dotted keys;
//! - every category a purpose names exists, and is named once;
//! - at most one category carries each [`IdentifierKind`], so a blind-index
//!   lookup resolves to one category;
//! - `minor_age` is in 1..=18, `dsr_deadline_days` ≥ 1, retention `min_days` ≥ 1;
//! - only consent-based purposes have `separate_consent` (PIPL Art. 14, 29).
//! - there is at least one jurisdiction, keys are unique, and the `[dsr]`
//!   `default_jurisdiction` is one of them; a file without `[[jurisdiction]]`
//!   gets `cn` built from `dsr_deadline_days` (calendar days, `+08:00`, §XI).
//! - lookups by key, id and identifier kind are O(1) and never re-parse.
//!
//! Parsing never panics and reports every problem it finds, each with a 1-based
//! line and column (in characters), so `pivault policy check` can print them
//! all at once.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::dsr::{DayKind, DsrSettings, Jurisdiction, Period};
use crate::identifiers::IdentifierKind;

mod tree;
use tree::{Entry, Node};

// ---------------------------------------------------------------------------
// Vocabulary

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

// ---------------------------------------------------------------------------
// Diagnostics

/// One problem in a policy file, at a 1-based line and column (the column counts
/// characters, not bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl Diagnostic {
    /// `path:line:col: level: message`, the format compilers use, so editors can
    /// jump to it. `level` is e.g. `error` or `warning`.
    pub fn render(&self, path: &str, level: &str) -> String {
        format!(
            "{path}:{}:{}: {level}: {}",
            self.line, self.column, self.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Every problem found in a policy file, ordered by position; never empty.
/// `Display` writes one `line:col: message` per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", lines(.0))]
pub struct PolicyErrors(pub Vec<Diagnostic>);

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl PolicyErrors {
    /// `path:line:col: error: message`, one line each, newline-terminated: the
    /// output of `pivault policy check FILE`.
    pub fn render(&self, path: &str) -> String {
        self.0
            .iter()
            .map(|d| d.render(path, "error") + "\n")
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Policy

/// A validated policy version: immutable, indexed, cheap to share behind an
/// `Arc`. Built only by [`Policy::parse`].
#[derive(Debug, Clone)]
pub struct Policy {
    id: String,
    version: String,
    title: String,
    storage_region: String,
    minor_age: u8,
    dsr_deadline_days: u32,
    hash: String,
    categories: Vec<Category>,
    purposes: Vec<Purpose>,
    recipients: Vec<Recipient>,
    dsr: DsrSettings,
    jurisdictions: Vec<Jurisdiction>,
    category_index: HashMap<String, usize>,
    purpose_index: HashMap<String, usize>,
    identifier_index: HashMap<IdentifierKind, usize>,
    warnings: Vec<Diagnostic>,
}

impl Policy {
    /// Parses and validates a policy file's text; never panics on any input.
    ///
    /// ```
    /// let policy = pivault_domain::policy::Policy::parse(r#"
    /// [policy]
    /// id = "demo"
    /// version = "2024-12-04"
    /// title = "Demo"
    /// storage_region = "cn"
    /// minor_age = 14
    /// dsr_deadline_days = 10
    ///
    /// [[category]]
    /// key = "user.contact.mobile"
    /// name = "Mobile phone number"
    /// sensitivity = "personal"
    /// value_type = "text"
    /// identifier = "mobile"
    /// clause = "§2.2.1"
    ///
    /// [[purpose]]
    /// id = "service"
    /// name = "Provide the services"
    /// clause = "§2.2.1"
    /// legal_basis = "contract"
    /// categories = ["user.contact.mobile"]
    /// "#).unwrap();
    /// assert!(policy.purpose("service").unwrap().allows("user.contact.mobile"));
    /// assert_eq!(policy.hash().len(), 64);
    /// ```
    ///
    /// # Errors
    /// [`PolicyErrors`] listing every problem with its line and column: TOML
    /// syntax (only the first, as the TOML parser stops there), unknown fields,
    /// missing fields, wrong types, unknown enum values, malformed keys,
    /// duplicate category keys or purpose ids, unknown or repeated categories in
    /// a purpose, one identifier kind on two categories, out-of-range numbers,
    /// `separate_consent` on a purpose whose basis is not consent, and in
    /// `[dsr]`/`[[jurisdiction]]`: duplicate or malformed jurisdiction keys,
    /// both or neither of `deadline_days`/`deadline_months`, both
    /// `extension_days` and `extension_months`, dates that are not
    /// `YYYY-MM-DD`, offsets that are not `±HH:MM`, and a
    /// `default_jurisdiction` no `[[jurisdiction]]` declares.
    pub fn parse(source: &str) -> Result<Policy, PolicyErrors> {
        let mut ctx = Ctx::default();
        let root = match toml::from_str::<Node>(source) {
            Ok(root) => root,
            Err(e) => {
                let at = e.span().map_or(0, |s| s.start);
                ctx.error(at..at, e.message().trim_end().to_owned());
                return Err(ctx.into_errors(source));
            }
        };
        let built = build(&mut ctx, &root, source);
        match built {
            Some(policy) if ctx.errors.is_empty() => Ok(policy),
            _ => Err(ctx.into_errors(source)),
        }
    }

    /// The policy's id, e.g. `inspur-cloud`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version, e.g. `2024-12-04`; consents and decisions record it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The policy document's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Where PI is stored: an ISO 3166-1 alpha-2 code, lower-case (`cn`: mainland
    /// China excluding Hong Kong, Macau and Taiwan, policy §4.1). Anything leaving
    /// it is a cross-border transfer (PIPL Art. 38–39).
    pub fn storage_region(&self) -> &str {
        &self.storage_region
    }

    /// Subjects younger than this many whole years are minors whose PI needs a
    /// guardian's consent (PIPL Art. 31: 14) and is sensitive (Art. 28).
    pub fn minor_age(&self) -> u8 {
        self.minor_age
    }

    /// Days to answer a data-subject request (policy §XI: 10).
    pub fn dsr_deadline_days(&self) -> u32 {
        self.dsr_deadline_days
    }

    /// How data subject requests are handled: the `[dsr]` table, or
    /// [`DsrSettings::default`] for what it leaves out.
    pub fn dsr(&self) -> &DsrSettings {
        &self.dsr
    }

    /// Every jurisdiction, in file order; never empty. A file without
    /// `[[jurisdiction]]` has one, `cn`: `dsr_deadline_days` calendar days at
    /// `+08:00`, clause `§XI` (policy §XI: "within 10 days").
    pub fn jurisdictions(&self) -> &[Jurisdiction] {
        &self.jurisdictions
    }

    /// The jurisdiction with this key, e.g. `cn`; the
    /// [`dsr().default_jurisdiction`](DsrSettings::default_jurisdiction) is
    /// always present.
    pub fn jurisdiction(&self, key: &str) -> Option<&Jurisdiction> {
        self.jurisdictions.iter().find(|j| j.key == key)
    }

    /// Hex SHA-256 (64 lower-case characters) of the source text, so a version
    /// label cannot hide an edited file.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The category with this key, in O(1).
    pub fn category(&self, key: &str) -> Option<&Category> {
        self.category_index.get(key).map(|&i| &self.categories[i])
    }

    /// The purpose with this id, in O(1).
    pub fn purpose(&self, id: &str) -> Option<&Purpose> {
        self.purpose_index.get(id).map(|&i| &self.purposes[i])
    }

    /// All categories, in file order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// All purposes, in file order.
    pub fn purposes(&self) -> &[Purpose] {
        &self.purposes
    }

    /// A recipient by id.
    pub fn recipient(&self, id: &str) -> Option<&Recipient> {
        self.recipients.iter().find(|r| r.id == id)
    }

    /// Every declared recipient, in file order.
    pub fn recipients(&self) -> &[Recipient] {
        &self.recipients
    }

    /// The category whose `identifier` is this kind, if one is declared.
    pub fn identifier_category(&self, kind: IdentifierKind) -> Option<&Category> {
        self.identifier_index
            .get(&kind)
            .map(|&i| &self.categories[i])
    }

    /// Things that are lawful to declare but probably wrong, e.g. a consent-based
    /// purpose using sensitive PI without `separate_consent` (PIPL Art. 29).
    /// `pivault policy check` prints them; they do not stop the policy loading.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }
}

// ---------------------------------------------------------------------------
// Validation

/// Problems found so far, at byte offsets into the source.
#[derive(Default)]
struct Ctx {
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
}

impl Ctx {
    fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.errors.push((span.start, message.into()));
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.warnings.push((span.start, message.into()));
    }

    fn into_errors(self, source: &str) -> PolicyErrors {
        PolicyErrors(diagnostics(source, self.errors))
    }
}

/// Byte offsets → sorted 1-based line/column (in characters) diagnostics.
fn diagnostics(source: &str, found: Vec<(usize, String)>) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = found
        .into_iter()
        .map(|(offset, message)| {
            let (line, column) = line_column(source, offset);
            Diagnostic {
                line,
                column,
                message,
            }
        })
        .collect();
    out.sort_by_key(|d| (d.line, d.column));
    out.dedup();
    out
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A value with the byte span it came from.
#[derive(Debug, Clone)]
struct At<T> {
    value: T,
    span: Range<usize>,
}

/// One TOML table being read: reports unknown keys once, then hands out typed
/// fields, reporting missing or mistyped ones.
struct Table<'a> {
    entries: &'a [Entry],
    span: Range<usize>,
    what: &'static str,
}

impl<'a> Table<'a> {
    fn open(
        ctx: &mut Ctx,
        node: &'a serde_spanned::Spanned<Node>,
        what: &'static str,
        allowed: &[&str],
    ) -> Option<Self> {
        let Node::Table(entries) = node.get_ref() else {
            ctx.error(
                node.span(),
                format!(
                    "{what} must be a table, found {}",
                    node.get_ref().type_name()
                ),
            );
            return None;
        };
        for entry in entries {
            if !allowed.contains(&entry.key.name.as_str()) {
                ctx.error(
                    entry.key.span.clone().unwrap_or_else(|| entry.value.span()),
                    format!(
                        "unknown field `{}` in {what}, expected one of: {}",
                        entry.key.name,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Table {
            entries,
            span: node.span(),
            what,
        })
    }

    fn get(&self, name: &str) -> Option<&'a serde_spanned::Spanned<Node>> {
        self.entries
            .iter()
            .find(|e| e.key.name == name)
            .map(|e| &e.value)
    }

    fn missing(&self, ctx: &mut Ctx, name: &str) {
        ctx.error(
            self.span.clone(),
            format!("missing field `{name}` in {}", self.what),
        );
    }

    fn wrong_type(&self, ctx: &mut Ctx, name: &str, expected: &str, found: &Node) {
        let hint = if matches!(found, Node::Datetime) && expected == "a string" {
            " (quote it)"
        } else {
            ""
        };
        let found = found.type_name();
        ctx.error(
            self.get(name)
                .map_or(self.span.clone(), serde_spanned::Spanned::span),
            format!(
                "`{name}` in {} must be {expected}, found {found}{hint}",
                self.what
            ),
        );
    }

    fn opt_string(&self, ctx: &mut Ctx, name: &str) -> Option<At<String>> {
        let node = self.get(name)?;
        match node.get_ref() {
            Node::String(s) if s.trim().is_empty() => {
                ctx.error(
                    node.span(),
                    format!("`{name}` in {} must not be empty", self.what),
                );
                None
            }
            Node::String(s) => Some(At {
                value: s.clone(),
                span: node.span(),
            }),
            other => {
                self.wrong_type(ctx, name, "a string", other);
                None
            }
        }
    }

    fn string(&self, ctx: &mut Ctx, name: &str) -> Option<At<String>> {
        if self.get(name).is_none() {
            self.missing(ctx, name);
            return None;
        }
        self.opt_string(ctx, name)
    }

    /// A required integer in `range`.
    fn integer(&self, ctx: &mut Ctx, name: &str, range: Range<i64>) -> Option<At<i64>> {
        if self.get(name).is_none() {
            self.missing(ctx, name);
            return None;
        }
        self.opt_integer(ctx, name, range)
    }

    /// An optional integer in `range`.
    fn opt_integer(&self, ctx: &mut Ctx, name: &str, range: Range<i64>) -> Option<At<i64>> {
        let node = self.get(name)?;
        match node.get_ref() {
            Node::Integer(n) if range.contains(n) => Some(At {
                value: *n,
                span: node.span(),
            }),
            Node::Integer(_) => {
                ctx.error(
                    node.span(),
                    format!(
                        "`{name}` in {} must be between {} and {}",
                        self.what,
                        range.start,
                        range.end - 1
                    ),
                );
                None
            }
            other => {
                self.wrong_type(ctx, name, "an integer", other);
                None
            }
        }
    }

    fn opt_bool(&self, ctx: &mut Ctx, name: &str) -> Option<At<bool>> {
        let node = self.get(name)?;
        match node.get_ref() {
            Node::Boolean(b) => Some(At {
                value: *b,
                span: node.span(),
            }),
            other => {
                self.wrong_type(ctx, name, "true or false", other);
                None
            }
        }
    }

    /// An optional string naming one of `choices`.
    fn opt_enum<T: Copy>(
        &self,
        ctx: &mut Ctx,
        name: &str,
        choices: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Option<At<T>> {
        let at = self.opt_string(ctx, name)?;
        match choices.iter().copied().find(|&c| as_str(c) == at.value) {
            Some(value) => Some(At {
                value,
                span: at.span,
            }),
            None => {
                let names: Vec<&str> = choices.iter().map(|&c| as_str(c)).collect();
                ctx.error(
                    at.span,
                    format!(
                        "unknown {name} `{}` in {}, expected one of: {}",
                        at.value,
                        self.what,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn enumeration<T: Copy>(
        &self,
        ctx: &mut Ctx,
        name: &str,
        choices: &[T],
        as_str: fn(T) -> &'static str,
    ) -> Option<At<T>> {
        if self.get(name).is_none() {
            self.missing(ctx, name);
            return None;
        }
        self.opt_enum(ctx, name, choices, as_str)
    }
}

/// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`: fideslang-style dotted keys.
fn is_dotted_key(s: &str) -> bool {
    s.split('.').all(is_segment)
}

/// `^[a-z][a-z0-9_]*$`.
fn is_segment(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// `^[a-z][a-z0-9_-]*$` for the policy id (`inspur-cloud`).
fn is_slug(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

const POLICY_FIELDS: &[&str] = &[
    "id",
    "version",
    "title",
    "storage_region",
    "minor_age",
    "dsr_deadline_days",
];
const CATEGORY_FIELDS: &[&str] = &[
    "key",
    "name",
    "sensitivity",
    "value_type",
    "identifier",
    "clause",
    "retention",
    "identifying",
    "business_data",
];
const RECIPIENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "kind",
    "entrusted",
    "region",
    "purposes",
    "categories",
    "clause",
];
const DSR_FIELDS: &[&str] = &[
    "default_jurisdiction",
    "duplicate_window_days",
    "near_due_days",
    "code_ttl_seconds",
    "code_attempts",
];
const JURISDICTION_FIELDS: &[&str] = &[
    "key",
    "deadline_days",
    "deadline_months",
    "extension_days",
    "extension_months",
    "day_kind",
    "holidays",
    "extra_workdays",
    "utc_offset",
    "clause",
];
const RETENTION_FIELDS: &[&str] = &["min_days", "from", "basis", "clause"];
const PURPOSE_FIELDS: &[&str] = &[
    "id",
    "name",
    "clause",
    "legal_basis",
    "categories",
    "fides_use",
    "separate_consent",
];

/// Walks the whole document, recording every problem; returns a policy only
/// when every part could be built (the caller still checks `ctx.errors`).
fn build(ctx: &mut Ctx, root: &Node, source: &str) -> Option<Policy> {
    let Node::Table(entries) = root else {
        ctx.error(0..0, "a policy file is a TOML table");
        return None;
    };
    let mut header = None;
    let mut category_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut purpose_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut recipient_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut dsr_node = None;
    let mut jurisdiction_nodes: &[serde_spanned::Spanned<Node>] = &[];
    for entry in entries {
        let span = entry.key.span.clone().unwrap_or_else(|| entry.value.span());
        match (entry.key.name.as_str(), entry.value.get_ref()) {
            ("policy", _) => header = Some(&entry.value),
            ("category", Node::Array(items)) => category_nodes = items,
            ("purpose", Node::Array(items)) => purpose_nodes = items,
            ("recipient", Node::Array(items)) => recipient_nodes = items,
            ("dsr", _) => dsr_node = Some(&entry.value),
            ("jurisdiction", Node::Array(items)) => jurisdiction_nodes = items,
            (name @ ("category" | "purpose" | "recipient" | "jurisdiction"), other) => ctx.error(
                span,
                format!(
                    "`{name}` must be an array of tables ([[{name}]]), found {}",
                    other.type_name()
                ),
            ),
            (other, _) => ctx.error(
                span,
                format!(
                    "unknown top-level key `{other}`, expected one of: policy, category, purpose, recipient, dsr, jurisdiction"
                ),
            ),
        }
    }

    let header = match header {
        Some(node) => read_header(ctx, node),
        None => {
            ctx.error(0..0, "missing [policy] table");
            None
        }
    };

    let mut categories: Vec<Category> = Vec::new();
    let mut category_spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut identifier_spans: HashMap<IdentifierKind, Range<usize>> = HashMap::new();
    let mut all_categories_built = true;
    for node in category_nodes {
        match read_category(
            ctx,
            node,
            &mut category_spans,
            &mut identifier_spans,
            source,
        ) {
            Some(c) => categories.push(c),
            None => all_categories_built = false,
        }
    }

    let mut purposes: Vec<Purpose> = Vec::new();
    let mut purpose_spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut all_purposes_built = true;
    for node in purpose_nodes {
        match read_purpose(ctx, node, &category_spans, &mut purpose_spans, source) {
            Some(p) => purposes.push(p),
            None => all_purposes_built = false,
        }
    }

    let mut recipients: Vec<Recipient> = Vec::new();
    let mut all_recipients_built = true;
    for node in recipient_nodes {
        match read_recipient(ctx, node, &category_spans, &purpose_spans, &recipients) {
            Some(r) => recipients.push(r),
            None => all_recipients_built = false,
        }
    }

    let dsr = match dsr_node {
        Some(node) => read_dsr(ctx, node),
        None => Some(DsrConfig {
            settings: Some(DsrSettings::default()),
            default_key: Some(DsrSettings::default().default_jurisdiction),
            default_span: None,
        }),
    };
    let mut jurisdictions: Vec<Jurisdiction> = Vec::new();
    let mut jurisdiction_spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut all_jurisdictions_built = true;
    let mut readable_keys = 0;
    for node in jurisdiction_nodes {
        match read_jurisdiction(
            ctx,
            node,
            &mut jurisdiction_spans,
            &mut readable_keys,
            source,
        ) {
            Some(j) => jurisdictions.push(j),
            None => all_jurisdictions_built = false,
        }
    }
    if let Some(d) = &dsr {
        // A jurisdiction whose key could not be read may be the one meant; its
        // own error is already reported.
        if readable_keys == jurisdiction_nodes.len() {
            check_default_jurisdiction(ctx, d, &jurisdiction_spans, jurisdiction_nodes, dsr_node);
        }
    }

    let header = header?;
    let dsr = dsr?.settings?;
    if !all_categories_built
        || !all_purposes_built
        || !all_recipients_built
        || !all_jurisdictions_built
    {
        return None;
    }
    if jurisdictions.is_empty() {
        jurisdictions.push(legacy_jurisdiction(header.dsr_deadline_days));
    }
    lint_separate_consent(ctx, &categories, &purposes, purpose_nodes);

    let category_index = index(categories.iter().map(|c| c.key.clone()));
    let purpose_index = index(purposes.iter().map(|p| p.id.clone()));
    let identifier_index = categories
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.identifier.map(|k| (k, i)))
        .collect();
    let warnings = diagnostics(source, std::mem::take(&mut ctx.warnings));
    Some(Policy {
        id: header.id,
        version: header.version,
        title: header.title,
        storage_region: header.storage_region,
        minor_age: header.minor_age,
        dsr_deadline_days: header.dsr_deadline_days,
        hash: hex::encode(Sha256::digest(source.as_bytes())),
        categories,
        purposes,
        recipients,
        dsr,
        jurisdictions,
        category_index,
        purpose_index,
        identifier_index,
        warnings,
    })
}

fn index(keys: impl Iterator<Item = String>) -> HashMap<String, usize> {
    keys.enumerate().map(|(i, k)| (k, i)).collect()
}

struct Header {
    id: String,
    version: String,
    title: String,
    storage_region: String,
    minor_age: u8,
    dsr_deadline_days: u32,
}

fn read_header(ctx: &mut Ctx, node: &serde_spanned::Spanned<Node>) -> Option<Header> {
    let t = Table::open(ctx, node, "[policy]", POLICY_FIELDS)?;
    let id = t.string(ctx, "id");
    if let Some(id) = &id {
        if !is_slug(&id.value) {
            ctx.error(
                id.span.clone(),
                "`id` in [policy] must match ^[a-z][a-z0-9_-]*$",
            );
        }
    }
    let version = t.string(ctx, "version");
    let title = t.string(ctx, "title");
    let region = t.string(ctx, "storage_region");
    if let Some(r) = &region {
        if !(r.value.len() == 2 && r.value.bytes().all(|b| b.is_ascii_lowercase())) {
            ctx.error(
                r.span.clone(),
                "`storage_region` must be a lower-case ISO 3166-1 alpha-2 code, e.g. \"cn\"",
            );
        }
    }
    // PIPL Art. 31 sets 14; no law in scope sets a minor age above 18 (Civil
    // Code Art. 17), and 0 would make nobody a minor by accident.
    let minor_age = t.integer(ctx, "minor_age", 1..19);
    let dsr = t.integer(ctx, "dsr_deadline_days", 1..i64::from(u32::MAX) + 1);
    Some(Header {
        id: id?.value,
        version: version?.value,
        title: title?.value,
        storage_region: region?.value,
        minor_age: u8::try_from(minor_age?.value).ok()?,
        dsr_deadline_days: u32::try_from(dsr?.value).ok()?,
    })
}

/// What `[dsr]` yielded: the settings if all were valid, and the default
/// jurisdiction key (with where it was written) if that was, so it is checked
/// even when another setting is wrong.
struct DsrConfig {
    settings: Option<DsrSettings>,
    default_key: Option<String>,
    default_span: Option<Range<usize>>,
}

fn read_dsr(ctx: &mut Ctx, node: &serde_spanned::Spanned<Node>) -> Option<DsrConfig> {
    let t = Table::open(ctx, node, "[dsr]", DSR_FIELDS)?;
    let defaults = DsrSettings::default();
    let mut ok = true;
    let given = t.get("default_jurisdiction").is_some();
    let default = t.opt_string(ctx, "default_jurisdiction");
    if let Some(d) = &default {
        if !is_slug(&d.value) {
            ok = false;
            ctx.error(
                d.span.clone(),
                format!(
                    "default_jurisdiction `{}` must be a jurisdiction key (^[a-z][a-z0-9_-]*$)",
                    d.value
                ),
            );
        }
    }
    ok &= !given || default.is_some();
    let mut number = |name: &str, range: Range<i64>, fallback: u32| -> Option<u32> {
        let given = t.get(name).is_some();
        match t.opt_integer(ctx, name, range) {
            Some(n) => u32::try_from(n.value).ok(),
            None if given => None,
            None => Some(fallback),
        }
    };
    // A year at most: a longer window would merge unrelated requests.
    let window = number(
        "duplicate_window_days",
        0..366,
        defaults.duplicate_window_days,
    );
    let near = number("near_due_days", 0..366, defaults.near_due_days);
    let ttl = number("code_ttl_seconds", 60..3601, defaults.code_ttl_seconds);
    let attempts = number("code_attempts", 1..11, defaults.code_attempts);
    let default_span = default.as_ref().map(|d| d.span.clone());
    let default_key = ok.then(|| default.map_or(defaults.default_jurisdiction, |d| d.value));
    let settings = (|| {
        Some(DsrSettings {
            default_jurisdiction: default_key.clone()?,
            duplicate_window_days: window?,
            near_due_days: near?,
            code_ttl_seconds: ttl?,
            code_attempts: attempts?,
        })
    })();
    Some(DsrConfig {
        settings,
        default_key,
        default_span,
    })
}

/// The default jurisdiction must be declared; without `[[jurisdiction]]` the
/// synthesized `cn` is the only one.
fn check_default_jurisdiction(
    ctx: &mut Ctx,
    dsr: &DsrConfig,
    declared: &HashMap<String, Range<usize>>,
    nodes: &[serde_spanned::Spanned<Node>],
    dsr_node: Option<&serde_spanned::Spanned<Node>>,
) {
    let Some(key) = &dsr.default_key else {
        return;
    };
    let known = if nodes.is_empty() {
        key == LEGACY_JURISDICTION
    } else {
        declared.contains_key(key)
    };
    if known {
        return;
    }
    // Point at the value if it was written, else at the [dsr] table, else at
    // the first jurisdiction (the default `cn` is implied).
    let at = dsr
        .default_span
        .clone()
        .or_else(|| dsr_node.map(serde_spanned::Spanned::span))
        .or_else(|| nodes.first().map(serde_spanned::Spanned::span))
        .unwrap_or(0..0);
    let mut names: Vec<&str> = declared.keys().map(String::as_str).collect();
    names.sort_unstable();
    if nodes.is_empty() {
        names.push(LEGACY_JURISDICTION);
    }
    ctx.error(
        at,
        format!(
            "default_jurisdiction `{key}` is not declared by any [[jurisdiction]] (declared: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ),
    );
}

/// The key of the jurisdiction built from `dsr_deadline_days` when a file
/// declares none.
const LEGACY_JURISDICTION: &str = "cn";

/// Policy §XI: "we will reply to your request within 10 days" — calendar days,
/// counted in China Standard Time.
fn legacy_jurisdiction(days: u32) -> Jurisdiction {
    Jurisdiction {
        key: LEGACY_JURISDICTION.to_owned(),
        deadline: Period::Days(days),
        extension: None,
        day_kind: DayKind::Calendar,
        holidays: BTreeSet::new(),
        extra_workdays: BTreeSet::new(),
        utc_offset: time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC),
        clause: "§XI".to_owned(),
    }
}

fn read_jurisdiction(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    seen: &mut HashMap<String, Range<usize>>,
    readable_keys: &mut usize,
    source: &str,
) -> Option<Jurisdiction> {
    let t = Table::open(ctx, node, "[[jurisdiction]]", JURISDICTION_FIELDS)?;
    let key = t.string(ctx, "key");
    let mut ok = key.is_some();
    if let Some(k) = &key {
        if is_slug(&k.value) {
            *readable_keys += 1;
        }
        if !is_slug(&k.value) {
            ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "jurisdiction key `{}` must be lower-case, ^[a-z][a-z0-9_-]*$ (e.g. `cn`, `eu`)",
                    k.value
                ),
            );
        } else if let Some(first) = seen.get(&k.value) {
            ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "duplicate jurisdiction key `{}` (first declared on line {})",
                    k.value,
                    line_of(source, first)
                ),
            );
        } else {
            seen.insert(k.value.clone(), k.span.clone());
        }
    }
    let deadline = read_period(ctx, &t, "deadline", true);
    let extension = read_period(ctx, &t, "extension", false);
    let day_kind_given = t.get("day_kind").is_some();
    let day_kind = t.opt_enum(ctx, "day_kind", &DayKind::ALL, DayKind::as_str);
    ok &= !day_kind_given || day_kind.is_some();
    let holidays = read_dates(ctx, &t, "holidays");
    let extra = read_dates(ctx, &t, "extra_workdays");
    if let (Some(h), Some(e)) = (&holidays, &extra) {
        for (date, span) in e {
            if h.iter().any(|(d, _)| d == date) {
                ok = false;
                ctx.error(
                    span.clone(),
                    format!("{date} is listed both in `holidays` and in `extra_workdays`"),
                );
            }
        }
    }
    let offset = t.string(ctx, "utc_offset");
    let utc_offset = offset.as_ref().and_then(|o| {
        let parsed = parse_offset(&o.value);
        if parsed.is_none() {
            ctx.error(
                o.span.clone(),
                format!(
                    "utc_offset `{}` must be `+HH:MM` or `-HH:MM`, e.g. \"+08:00\"",
                    o.value
                ),
            );
        }
        parsed
    });
    let clause = t.string(ctx, "clause");
    if !ok {
        return None;
    }
    Some(Jurisdiction {
        key: key?.value,
        deadline: deadline??,
        extension: extension?,
        day_kind: day_kind.map_or(DayKind::Calendar, |d| d.value),
        holidays: holidays?.into_iter().map(|(d, _)| d).collect(),
        extra_workdays: extra?.into_iter().map(|(d, _)| d).collect(),
        utc_offset: utc_offset?,
        clause: clause?.value,
    })
}

/// `{prefix}_days` xor `{prefix}_months`: `Some(None)` when neither is given
/// and that is allowed, `None` after an error.
fn read_period(
    ctx: &mut Ctx,
    t: &Table<'_>,
    prefix: &str,
    required: bool,
) -> Option<Option<Period>> {
    let days_name = format!("{prefix}_days");
    let months_name = format!("{prefix}_months");
    // One year, or twelve months: no DSR law in scope gives longer.
    let days = t.opt_integer(ctx, &days_name, 1..367);
    let months = t.opt_integer(ctx, &months_name, 1..13);
    match (t.get(&days_name), t.get(&months_name)) {
        (Some(a), Some(b)) => {
            // Point at whichever of the two comes second in the file.
            let second = if a.span().start > b.span().start {
                a
            } else {
                b
            };
            ctx.error(
                second.span(),
                format!(
                    "set either `{days_name}` or `{months_name}` in {}, not both",
                    t.what
                ),
            );
            None
        }
        (None, None) if required => {
            ctx.error(
                t.span.clone(),
                format!(
                    "missing field `{days_name}` or `{months_name}` in {}",
                    t.what
                ),
            );
            None
        }
        (None, None) => Some(None),
        (Some(_), None) => Some(Some(Period::Days(u32::try_from(days?.value).ok()?))),
        (None, Some(_)) => Some(Some(Period::Months(u32::try_from(months?.value).ok()?))),
    }
}

/// An optional array of `"YYYY-MM-DD"` strings (empty when absent).
fn read_dates(
    ctx: &mut Ctx,
    t: &Table<'_>,
    field: &str,
) -> Option<Vec<(time::Date, Range<usize>)>> {
    let Some(node) = t.get(field) else {
        return Some(Vec::new());
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(
            ctx,
            field,
            "an array of \"YYYY-MM-DD\" strings",
            node.get_ref(),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(s) => match parse_date(s) {
                Some(d) => out.push((d, item.span())),
                None => {
                    ok = false;
                    ctx.error(
                        item.span(),
                        format!("`{s}` in `{field}` is not a date of the form YYYY-MM-DD"),
                    );
                }
            },
            other => {
                ok = false;
                let hint = if matches!(other, Node::Datetime) {
                    " (quote it)"
                } else {
                    ""
                };
                ctx.error(
                    item.span(),
                    format!(
                        "`{field}` holds \"YYYY-MM-DD\" strings, found {}{hint}",
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// `YYYY-MM-DD`, exactly, naming a real day.
fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    let digits = |r: Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
}

/// `+HH:MM` or `-HH:MM`, hours 00..=23, minutes 00..=59.
fn parse_offset(s: &str) -> Option<time::UtcOffset> {
    let b = s.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign: i8 = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let two = |i: usize| -> Option<i8> {
        let (hi, lo) = (b[i], b[i + 1]);
        (hi.is_ascii_digit() && lo.is_ascii_digit())
            .then(|| i8::try_from((hi - b'0') * 10 + (lo - b'0')).ok())
            .flatten()
    };
    let (hours, minutes) = (two(1)?, two(4)?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    time::UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}

fn line_of(source: &str, span: &Range<usize>) -> usize {
    line_column(source, span.start).0
}

fn read_category(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    seen: &mut HashMap<String, Range<usize>>,
    identifiers: &mut HashMap<IdentifierKind, Range<usize>>,
    source: &str,
) -> Option<Category> {
    let t = Table::open(ctx, node, "[[category]]", CATEGORY_FIELDS)?;
    let key = t.string(ctx, "key");
    let mut key_ok = key.is_some();
    if let Some(k) = &key {
        if !is_dotted_key(&k.value) {
            key_ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "category key `{}` must be a dotted key like `user.contact.email` (^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$)",
                    k.value
                ),
            );
        } else if let Some(first) = seen.get(&k.value) {
            key_ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "duplicate category key `{}` (first declared on line {})",
                    k.value,
                    line_of(source, first)
                ),
            );
        } else {
            seen.insert(k.value.clone(), k.span.clone());
        }
    }
    let name = t.string(ctx, "name");
    let sensitivity = t.enumeration(ctx, "sensitivity", &Sensitivity::ALL, Sensitivity::as_str);
    let value_type = t.enumeration(ctx, "value_type", &ValueType::ALL, ValueType::as_str);
    let identifier_given = t.get("identifier").is_some();
    let identifier = t.opt_enum(
        ctx,
        "identifier",
        &IdentifierKind::ALL,
        IdentifierKind::as_str,
    );
    if let Some(id) = &identifier {
        if let Some(first) = identifiers.get(&id.value) {
            ctx.error(
                id.span.clone(),
                format!(
                    "identifier `{}` is already on the category of line {}; a blind-index kind belongs to one category",
                    id.value.as_str(),
                    line_of(source, first)
                ),
            );
        } else {
            identifiers.insert(id.value, id.span.clone());
        }
    }
    if let (Some(id), Some(vt)) = (&identifier, &value_type) {
        if vt.value != ValueType::Text {
            ctx.error(
                vt.span.clone(),
                format!(
                    "a category with `identifier = \"{}\"` holds text, not {}",
                    id.value.as_str(),
                    vt.value.as_str()
                ),
            );
        }
    }
    let identifying = t.opt_bool(ctx, "identifying");
    let business_data = t.opt_bool(ctx, "business_data");
    let clause = t.string(ctx, "clause");
    let retention = match t.get("retention") {
        None => Some(None),
        Some(r) => read_retention(ctx, r).map(Some),
    };
    if !key_ok || (identifier_given && identifier.is_none()) {
        return None;
    }
    Some(Category {
        key: key?.value,
        name: name?.value,
        sensitivity: sensitivity?.value,
        value_type: value_type?.value,
        identifying: identifying.map_or(identifier.is_some(), |b| b.value),
        business_data: business_data.is_some_and(|b| b.value),
        identifier: identifier.map(|i| i.value),
        clause: clause?.value,
        retention: retention?,
    })
}

fn read_retention(ctx: &mut Ctx, node: &serde_spanned::Spanned<Node>) -> Option<Retention> {
    let t = Table::open(ctx, node, "retention", RETENTION_FIELDS)?;
    let min_days = t.integer(ctx, "min_days", 1..i64::from(u32::MAX) + 1);
    let from = t.enumeration(ctx, "from", &RetentionAnchor::ALL, RetentionAnchor::as_str);
    let basis = t.string(ctx, "basis");
    let clause = t.string(ctx, "clause");
    Some(Retention {
        min_days: u32::try_from(min_days?.value).ok()?,
        from: from?.value,
        basis: basis?.value,
        clause: clause?.value,
    })
}

fn read_purpose(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    categories: &HashMap<String, Range<usize>>,
    seen: &mut HashMap<String, Range<usize>>,
    source: &str,
) -> Option<Purpose> {
    let t = Table::open(ctx, node, "[[purpose]]", PURPOSE_FIELDS)?;
    let id = t.string(ctx, "id");
    let mut id_ok = id.is_some();
    if let Some(i) = &id {
        if !is_segment(&i.value) {
            id_ok = false;
            ctx.error(
                i.span.clone(),
                format!("purpose id `{}` must match ^[a-z][a-z0-9_]*$", i.value),
            );
        } else if let Some(first) = seen.get(&i.value) {
            id_ok = false;
            ctx.error(
                i.span.clone(),
                format!(
                    "duplicate purpose id `{}` (first declared on line {})",
                    i.value,
                    line_of(source, first)
                ),
            );
        } else {
            seen.insert(i.value.clone(), i.span.clone());
        }
    }
    let name = t.string(ctx, "name");
    let clause = t.string(ctx, "clause");
    let basis = t.enumeration(ctx, "legal_basis", &LegalBasis::ALL, LegalBasis::as_str);
    let listed = read_category_list(ctx, &t, categories);
    let fides_given = t.get("fides_use").is_some();
    let fides_use = t.opt_string(ctx, "fides_use");
    let mut fides_ok = !fides_given || fides_use.is_some();
    if let Some(f) = &fides_use {
        if !is_dotted_key(&f.value) {
            fides_ok = false;
            ctx.error(
                f.span.clone(),
                format!(
                    "fides_use `{}` must be a dotted key like `essential.service`",
                    f.value
                ),
            );
        }
    }
    let separate_given = t.get("separate_consent").is_some();
    let separate = t.opt_bool(ctx, "separate_consent");
    if let (Some(sep), Some(b)) = (&separate, &basis) {
        if sep.value && b.value != LegalBasis::Consent {
            ctx.error(
                sep.span.clone(),
                format!(
                    "`separate_consent = true` needs `legal_basis = \"consent\"`, not `{}`: separate consent is a kind of consent (PIPL Art. 14)",
                    b.value.as_str()
                ),
            );
            return None;
        }
    }
    if !id_ok || !fides_ok || (separate_given && separate.is_none()) {
        return None;
    }
    Some(Purpose {
        id: id?.value,
        name: name?.value,
        clause: clause?.value,
        legal_basis: basis?.value,
        categories: listed?,
        fides_use: fides_use.map(|f| f.value),
        separate_consent: separate.is_some_and(|s| s.value),
    })
}

fn read_recipient(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    categories: &HashMap<String, Range<usize>>,
    purposes: &HashMap<String, Range<usize>>,
    earlier: &[Recipient],
) -> Option<Recipient> {
    let t = Table::open(ctx, node, "[[recipient]]", RECIPIENT_FIELDS)?;
    let id = t.string(ctx, "id");
    let mut ok = id.is_some();
    if let Some(i) = &id {
        if !is_slug(&i.value) {
            ok = false;
            ctx.error(
                i.span.clone(),
                format!("recipient id `{}` must match ^[a-z][a-z0-9_-]*$", i.value),
            );
        } else if earlier.iter().any(|r| r.id == i.value) {
            ok = false;
            ctx.error(
                i.span.clone(),
                format!("duplicate recipient id `{}`", i.value),
            );
        }
    }
    let name = t.string(ctx, "name");
    let kind = t.enumeration(ctx, "kind", &RecipientKind::ALL, RecipientKind::as_str);
    let entrusted = t.opt_bool(ctx, "entrusted");
    let region = t.string(ctx, "region");
    if let Some(r) = &region {
        if r.value.len() != 2 || !r.value.bytes().all(|b| b.is_ascii_lowercase()) {
            ok = false;
            ctx.error(
                r.span.clone(),
                format!(
                    "region `{}` must be a lower-case 2-letter code like `cn`",
                    r.value
                ),
            );
        }
    }
    let clause = t.string(ctx, "clause");
    let purposes = read_key_list(ctx, &t, "purposes", "[[recipient]]", "purpose", purposes);
    let cats = read_key_list(
        ctx,
        &t,
        "categories",
        "[[recipient]]",
        "category",
        categories,
    );
    if !ok {
        return None;
    }
    Some(Recipient {
        id: id?.value,
        name: name?.value,
        kind: kind?.value,
        entrusted: entrusted.is_some_and(|e| e.value),
        region: region?.value,
        purposes: purposes?,
        categories: cats?,
        clause: clause?.value,
    })
}

/// An array field of `table` whose strings must each name a known `what` (once).
fn read_key_list(
    ctx: &mut Ctx,
    t: &Table<'_>,
    field: &str,
    table: &str,
    what: &str,
    known: &HashMap<String, Range<usize>>,
) -> Option<Vec<String>> {
    let Some(node) = t.get(field) else {
        t.missing(ctx, field);
        return None;
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(ctx, field, "an array of strings", node.get_ref());
        return None;
    };
    if items.is_empty() {
        ctx.error(
            node.span(),
            format!("`{field}` in {table} must name at least one {what}"),
        );
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(key) if !known.contains_key(key) => {
                ok = false;
                ctx.error(item.span(), format!("unknown {what} `{key}`"));
            }
            Node::String(key) if out.contains(key) => {
                ok = false;
                ctx.error(item.span(), format!("{what} `{key}` is listed twice"));
            }
            Node::String(key) => out.push(key.clone()),
            other => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("`{field}` holds strings, found {}", other.type_name()),
                );
            }
        }
    }
    ok.then_some(out)
}

/// The `categories` array of a purpose: each an existing category, each once.
fn read_category_list(
    ctx: &mut Ctx,
    t: &Table<'_>,
    categories: &HashMap<String, Range<usize>>,
) -> Option<Vec<String>> {
    let Some(node) = t.get("categories") else {
        t.missing(ctx, "categories");
        return None;
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(
            ctx,
            "categories",
            "an array of category keys",
            node.get_ref(),
        );
        return None;
    };
    if items.is_empty() {
        ctx.error(
            node.span(),
            "`categories` in [[purpose]] must name at least one category (PIPL Art. 6: a purpose uses some PI, the minimum necessary)",
        );
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(key) if !categories.contains_key(key) => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("unknown category `{key}`: no [[category]] has this key"),
                );
            }
            Node::String(key) if out.contains(key) => {
                ok = false;
                ctx.error(item.span(), format!("category `{key}` is listed twice"));
            }
            Node::String(key) => out.push(key.clone()),
            other => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!(
                        "`categories` in [[purpose]] holds category keys (strings), found {}",
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// PIPL Art. 29: sensitive PI processed on consent needs separate consent. Not
/// an error, because a deployment may obtain it per category at collection
/// time, but worth a look.
fn lint_separate_consent(
    ctx: &mut Ctx,
    categories: &[Category],
    purposes: &[Purpose],
    nodes: &[serde_spanned::Spanned<Node>],
) {
    for (purpose, node) in purposes.iter().zip(nodes) {
        if purpose.legal_basis != LegalBasis::Consent || purpose.separate_consent {
            continue;
        }
        let sensitive: Vec<&str> = purpose
            .categories
            .iter()
            .filter(|key| {
                categories
                    .iter()
                    .any(|c| &c.key == *key && c.is_sensitive())
            })
            .map(String::as_str)
            .collect();
        if !sensitive.is_empty() {
            ctx.warn(
                node.span(),
                format!(
                    "consent-based purpose `{}` uses sensitive PI ({}) without `separate_consent = true` (PIPL Art. 29)",
                    purpose.id,
                    sensitive.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
