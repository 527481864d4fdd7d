//! Policy as code: the privacy policy's categories of PI and purposes of
//! processing, declared in TOML, parsed and validated once per version into an
//! immutable, indexed [`Policy`].
//!
//! The file (`policies/default.toml` implements the Inspur Cloud privacy
//! policy of 2024-12-04) has one `[policy]` table, `[[category]]` entries,
//! `[[purpose]]` entries and `[[recipient]]` entries; see [`Category`],
//! [`Purpose`] and [`Recipient`] for their fields. An optional `[dsr]` table and
//! `[[jurisdiction]]` entries configure data subject requests (see
//! [`DsrSettings`] and [`Jurisdiction`]). An optional `[incident]` table, with its
//! `retry` table and `[[incident.deadline]]` entries, configures security incident
//! notices and reporting deadlines (see [`IncidentPolicy`]).
//!
//! Invariants of a [`Policy`] value (checked by [`Policy::parse`], which is the
//! only constructor):
//! - category keys and purpose ids are unique and well-formed dotted keys;
//! - every category a purpose names exists, and is named once;
//! - at most one category carries each [`IdentifierKind`], so a blind-index
//!   lookup resolves to one category;
//! - `minor_age` is in 1..=18, `dsr_deadline_days` ≥ 1;
//! - a retention rule has a `keep_for` period of 0–36,500 days, never shorter than its
//!   `legal_minimum`, a known clock event and end action (policy §4.2, §8.2);
//! - every category whose retention ends in `anonymize` is listed by exactly one
//!   `[[anonymization]]` rule, whose quasi-identifiers are columns of its set and whose
//!   `k_min` is at least 2 (PIPL Art. 73(4));
//! - only consent-based purposes have `separate_consent` (PIPL Art. 14, 29).
//! - there is at least one jurisdiction, keys are unique, and the `[dsr]`
//!   `default_jurisdiction` is one of them; a file without `[[jurisdiction]]`
//!   gets `cn` built from `dsr_deadline_days` (calendar days, `+08:00`, §XI).
//! - `[[policy_version]]` (optional; policy §X) lists versions oldest first, each with a
//!   unique label and a `published` date later than the one before, the last being
//!   `[policy] version`; each `[[policy_version.change]]` has a summary, `material`, and
//!   names at least one declared purpose or category; a `text` path comes with its
//!   `text_sha256`.
//! - `[incident]` has at least one channel, each once; deadlines are 1–8,760 hours, one per
//!   regime and severity (`any` or a [`Severity`]).
//! - lookups by key, id and identifier kind are O(1) and never re-parse.
//!
//! Parsing never panics and reports every problem it finds, each with a 1-based
//! line and column (in characters), so `pivault policy check` can print them
//! all at once.

use std::collections::HashMap;

use crate::dsr::{DsrSettings, Jurisdiction};
use crate::identifiers::IdentifierKind;
pub use crate::incident::{Channel, Deadline, IncidentPolicy, RetrySettings, Severity};

mod diagnostics;
mod history;
mod load;
mod load_dsr;
mod load_history;
mod load_incident;
mod model;
mod purpose_id;
mod read;
mod tree;

pub use diagnostics::{Diagnostic, PolicyErrors};
pub use history::{DiffError, PolicyChange, PolicyVersion, VersionChange};
pub use model::{
    localized, AnonymizationRule, AnonymizedSet, Category, EndAction, LegalBasis, Purpose,
    Recipient, RecipientKind, Retention, RetentionClock, RetentionPeriod, Sensitivity, ValueType,
};
pub use purpose_id::PurposeId;

use load::build;
use read::Ctx;
use tree::Node;

// ---------------------------------------------------------------------------
// Policy

/// A validated policy version: immutable, indexed, cheap to share behind an
/// `Arc`. Built only by [`Policy::parse`].
#[derive(Debug, Clone)]
pub struct Policy {
    id: String,
    version: String,
    title: String,
    title_zh: Option<String>,
    storage_region: String,
    minor_age: u8,
    dsr_deadline_days: u32,
    hash: String,
    categories: Vec<Category>,
    purposes: Vec<Purpose>,
    recipients: Vec<Recipient>,
    dsr: DsrSettings,
    jurisdictions: Vec<Jurisdiction>,
    anonymization: Vec<AnonymizationRule>,
    incident: IncidentPolicy,
    versions: Vec<PolicyVersion>,
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
    /// `default_jurisdiction` no `[[jurisdiction]]` declares; and in `[incident]`: an
    /// unknown, repeated or empty list of `channels`, `retry` numbers out of range (or
    /// `max_backoff_secs` below `base_secs`), and in `[[incident.deadline]]` an unknown
    /// severity, 0 hours, a malformed regime, or a second deadline for one regime and
    /// severity; and in `[[policy_version]]`: a repeated version, a `published` that is not
    /// `YYYY-MM-DD` or not later than the entry before, a last entry other than `[policy]
    /// version`, a `text` that is not a relative path or lacks its `text_sha256` (64 hex
    /// digits), and in `[[policy_version.change]]` a missing `summary` or `material`, an
    /// unknown or repeated purpose or category, or neither named.
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

    /// The policy document's title in Chinese (`title_zh`), when the policy gives one.
    pub fn title_zh(&self) -> Option<&str> {
        self.title_zh.as_deref()
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

    /// How security incidents are handled (policy §8.3–§8.4): the `[incident]` table, or
    /// [`IncidentPolicy::default`] for what it leaves out (a file without the table loads
    /// with every default).
    pub fn incident(&self) -> &IncidentPolicy {
        &self.incident
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

    /// The name of the category `key` shown to people: its `name_zh` when `zh` and the policy
    /// gives one, else its `name`; the key itself for a category the policy does not declare.
    /// Notices and announcements name categories this way (PIPL Art. 17: plain language).
    #[must_use]
    pub fn category_name(&self, key: &str, zh: bool) -> String {
        self.category(key).map_or_else(
            || key.to_string(),
            |c| model::localized(&c.name, c.name_zh.as_deref(), zh).to_string(),
        )
    }

    /// The purpose with this id, in O(1).
    pub fn purpose(&self, id: &str) -> Option<&Purpose> {
        self.purpose_index.get(id).map(|&i| &self.purposes[i])
    }

    /// All categories, in file order.
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    /// The `[[anonymization]]` rules, in file order.
    pub fn anonymization_rules(&self) -> &[AnonymizationRule] {
        &self.anonymization
    }

    /// The rule producing the anonymized `set`, if the policy has one.
    pub fn anonymization(&self, set: AnonymizedSet) -> Option<&AnonymizationRule> {
        self.anonymization.iter().find(|r| r.set == set)
    }

    /// The rule that anonymizes records of `category`, if any.
    pub fn anonymization_for(&self, category: &str) -> Option<&AnonymizationRule> {
        self.anonymization
            .iter()
            .find(|r| r.categories.iter().any(|c| c == category))
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

#[cfg(test)]
mod tests;
