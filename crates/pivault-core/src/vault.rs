//! The [`Vault`]: every use case of the PI vault.

use crate::error::{CoreError, Denial};
use crate::values::FieldValue;
use pivault_crypto::{Aad, Dek, DekCache, KeyRing, WrappedDek};
use pivault_domain::audit::AuditRecord;
use pivault_domain::clock::Clock;
use pivault_domain::consent::{ActiveConsent, ConsentAction, ConsentEvent, ConsentState, GivenBy};
use pivault_domain::decision::{decide, AccessRequest, Decision, Obligation, Reason, SubjectFacts};
use pivault_domain::identifiers::{IdCardNumber, IdentifierKind};
use pivault_domain::policy::{Category, Policy};
use pivault_store::{ApiKeyRow, ConsentRow, FieldRow, KeyRow, Store, SubjectRow, WriteTx};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use time::{Date, OffsetDateTime};
use tracing::instrument;
use zeroize::Zeroizing;

/// Role for application services: create, put, read, look up, record consent.
pub const ROLE_APP: &str = "app";
/// Operator roles whose reads also pass the Cedar staff policy (§8.1): support, dpo, security.
pub const STAFF_ROLES: [&str; 3] = ["support", "dpo", "security"];
/// Role for the privacy office: everything, including erasure.
pub const ROLE_ADMIN: &str = "admin";
pub(crate) const SCOPE_PRIMARY: &str = "primary";
pub(crate) const SCOPE_RESTRICTED: &str = "restricted";
pub(crate) const DOB_CATEGORY: &str = "user.demographic.date_of_birth";
/// How a consent may have been collected.
/// `dsr`: recorded by a data subject request (withdrawal, cancellation).
pub const CONSENT_METHODS: [&str; 8] = [
    "web", "app", "api", "import", "paper", "phone", "email", "dsr",
];
/// Grounds of an erasure: PIPL Art. 47 para 1 and policy §7.1.1–7.1.3, plus the subject's own
/// request (Art. 47 para 1 "the individual requests deletion" in the cases listed).
pub const ERASURE_GROUNDS: [&str; 8] = [
    "subject_request",
    "purpose_achieved",
    "service_ended",
    "retention_expired",
    "consent_withdrawn",
    "unlawful_processing",
    "no_consent",
    "breach_of_agreement",
];
/// Blind-index kind of the suppression list of erased account ids.
pub(crate) const ERASED_ACCOUNT: &str = "erased_account_id";
const MAX_FIELDS_PER_REQUEST: usize = 256;
/// Consent times may run ahead of our clock by at most this many seconds (client skew).
const MAX_CLOCK_SKEW_SECS: i64 = 300;

/// An authenticated caller: an application service (API key) or the operator CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Principal name (e.g. `billing`).
    pub name: String,
    /// Roles (`app`, `admin`).
    pub roles: Vec<String>,
    /// Purposes this principal may use (policy §8.1).
    pub purposes: Vec<String>,
}

impl Principal {
    /// True if the principal has `role`; `admin` has every role.
    #[must_use]
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role || r == ROLE_ADMIN)
    }

    /// The operator CLI: admin, every purpose of the policy. Actor name `cli:<command>`.
    #[must_use]
    pub fn operator(command: &str, policy: &Policy) -> Self {
        Self {
            name: format!("cli:{command}"),
            roles: vec![ROLE_ADMIN.into()],
            purposes: policy.purposes().iter().map(|p| p.id.clone()).collect(),
        }
    }
}

/// One field to write: a category-tagged value.
#[derive(Debug, Clone)]
pub struct FieldInput {
    /// Category key from the policy.
    pub category: String,
    /// Field name within the record; defaults to the category key.
    pub name: Option<String>,
    /// Record within the subject; defaults to `profile`.
    pub record: Option<String>,
    /// The value, as JSON, interpreted by the category's value type.
    pub value: serde_json::Value,
}

/// One field returned by a read.
#[derive(Debug, Clone)]
pub struct FieldOutput {
    /// Record.
    pub record: String,
    /// Field name.
    pub name: String,
    /// Category key.
    pub category: String,
    /// Decrypted value.
    pub value: FieldValue,
    /// Unix seconds until which a restricted field is retained, if restricted.
    pub restricted_until: Option<i64>,
}

/// The result of an allowed read.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Subject id.
    pub subject_id: String,
    /// Purpose named.
    pub purpose: String,
    /// Legal basis applied (`consent`, `contract`, …).
    pub legal_basis: &'static str,
    /// PIPL article of the legal basis.
    pub article: &'static str,
    /// Policy clause.
    pub clause: String,
    /// Human explanation.
    pub explanation: String,
    /// Subject was a minor at decision time.
    pub minor: bool,
    /// Fields released.
    pub fields: Vec<FieldOutput>,
    /// Categories withheld and why.
    pub withheld: Vec<(String, &'static str)>,
    /// Policy version.
    pub policy_version: String,
}

/// Lookup result: identifiers are not unique, so every match is returned with the count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupResult {
    /// How many subjects matched.
    pub count: usize,
    /// Their ids, sorted.
    pub subjects: Vec<String>,
}

/// A consent event to record.
#[derive(Debug, Clone)]
pub struct ConsentInput {
    /// Purpose id.
    pub purpose: String,
    /// `grant` | `withdraw`.
    pub action: String,
    /// `self` | `guardian`.
    pub given_by: String,
    /// How it was collected (`web`, `app`, `api`, …).
    pub method: String,
    /// Collected as a separate consent (PIPL Art. 29).
    pub separate: bool,
    /// When the subject acted (unix seconds); defaults to now.
    pub at: Option<i64>,
    /// Caller's event id (idempotency); defaults to a fresh UUID.
    pub event_ref: Option<String>,
    /// Policy version shown to the subject; defaults to the version in force.
    pub policy_version: Option<String>,
    /// The recipient the consent names (a declared recipient, or `public` for a public
    /// disclosure): PIPL Art. 23, 25, 39 need consents that name who receives the data.
    pub recipient: Option<String>,
}

/// A category kept after erasure because the law requires it (PIPL Art. 47 para 2; §4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedCategory {
    /// Category key.
    pub category: String,
    /// Fields kept.
    pub fields: u64,
    /// Latest release instant among them, unix seconds.
    pub until: i64,
    /// Legal basis of the retention.
    pub basis: String,
    /// Policy clause.
    pub clause: String,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureReceipt {
    /// Subject id.
    pub subject_id: String,
    /// Unix seconds.
    pub erased_at: i64,
    /// Id of the destroyed DEK.
    pub destroyed_key_id: String,
    /// Fields deleted.
    pub deleted_fields: u64,
    /// Categories deleted.
    pub deleted_categories: Vec<String>,
    /// Categories retained, restricted.
    pub retained: Vec<RetainedCategory>,
    /// Blind-index entries removed.
    pub blind_index_entries_removed: u64,
}

/// What [`Vault::stage_shred`] destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShredOutcome {
    pub(crate) destroyed_key_id: String,
    pub(crate) deleted_fields: u64,
    pub(crate) deleted_categories: Vec<String>,
    pub(crate) blind_index_entries_removed: u64,
}

/// What [`Vault::subject_facts`] loads.
pub(crate) struct LoadedFacts {
    /// The earliest consent event still in the future (clock skew), unix seconds: the folded
    /// state changes then.
    pub(crate) next_consent_at: Option<i64>,
    pub(crate) erased: bool,
    pub(crate) home_region: Option<String>,
    pub(crate) fields: Vec<FieldRow>,
    pub(crate) consent: ConsentState,
    pub(crate) dek: Option<Arc<Dek>>,
    pub(crate) birth_date: Option<Date>,
}

pub(crate) struct Prepared<'p> {
    category: &'p Category,
    record: String,
    name: String,
    value: FieldValue,
    ident: Option<(IdentifierKind, String)>,
}

/// The PI vault: store + key ring + policy + clock.
pub struct Vault {
    store: Store,
    keys: Arc<KeyRing>,
    cache: DekCache,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    audit: crate::audit_writer::AuditWriter,
    facts: Arc<crate::facts_cache::FactsCache>,
    staff: Option<Arc<pivault_staff::StaffPolicy>>,
    principals:
        std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, std::time::Instant)>>,
    sender: Option<Arc<dyn crate::dsr::CodeSender>>,
    fault: std::sync::Mutex<Option<crate::dsr::Fault>>,
}

/// How long an authenticated API key is trusted without asking the store again. A revoked key
/// stops working within this time.
pub const PRINCIPAL_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("policy", &self.policy.version())
            .finish_non_exhaustive()
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn parse_date(s: &str) -> Option<Date> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &fmt).ok()
}

fn denial(d: &Decision<'_>) -> Denial {
    Denial {
        code: d.reason.as_str(),
        article: d.reason.article(),
        clause: d.clause.to_string(),
        explanation: d.explanation(),
        withheld: d
            .withheld
            .iter()
            .map(|w| (w.category.to_string(), w.reason.as_str()))
            .collect(),
    }
}

fn consent_event(r: &ConsentRow) -> Option<ConsentEvent> {
    Some(ConsentEvent {
        seq: r.seq,
        purpose: r.purpose.clone(),
        action: ConsentAction::parse(&r.action)?,
        at: OffsetDateTime::from_unix_timestamp(r.at).ok()?,
        given_by: GivenBy::parse(&r.given_by)?,
        separate: r.separate,
        policy_version: r.policy_version.clone(),
        recipient: r.recipient.clone(),
    })
}

impl Vault {
    /// Builds a vault: checks the master key against the database first (see
    /// [`crate::keycheck::establish`]; nothing is written when it does not match), then
    /// records the policy version in the store.
    ///
    /// # Errors
    /// [`CoreError::KeyRefused`] for a master key that is not the database's; store failure.
    pub async fn new(
        store: Store,
        keys: KeyRing,
        policy: Policy,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        crate::keycheck::establish(
            &store,
            &keys,
            policy.version(),
            clock.now().unix_timestamp(),
        )
        .await?;
        store
            .record_policy_version(
                policy.version(),
                policy.hash(),
                clock.now().unix_timestamp(),
            )
            .await?;
        Ok(Self {
            audit: crate::audit_writer::AuditWriter::spawn(store.clone()),
            facts: crate::facts_cache::FactsCache::spawn(store.clone()),
            staff: None,
            store,
            keys: Arc::new(keys),
            cache: DekCache::new(100_000),
            policy: Arc::new(policy),
            clock,
            principals: std::sync::Mutex::new(std::collections::HashMap::new()),
            sender: None,
            fault: std::sync::Mutex::new(None),
        })
    }

    /// Puts operator reads under a Cedar staff policy (policy §8.1; see `pivault-staff`).
    #[must_use]
    pub fn with_staff_policy(mut self, staff: pivault_staff::StaffPolicy) -> Self {
        self.staff = Some(Arc::new(staff));
        self
    }

    /// Sends data subject requests' one-time codes and notices through `sender` (policy §7.2).
    #[must_use]
    pub fn with_code_sender(mut self, sender: Arc<dyn crate::dsr::CodeSender>) -> Self {
        self.sender = Some(sender);
        self
    }

    /// Injects (or clears) a fault into request execution (tests and drills; see
    /// [`crate::dsr::Fault`]).
    pub fn inject_fault(&self, fault: Option<crate::dsr::Fault>) {
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }

    pub(crate) fn fault(&self) -> Option<crate::dsr::Fault> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    pub(crate) fn code_sender(&self) -> Option<&Arc<dyn crate::dsr::CodeSender>> {
        self.sender.as_ref()
    }

    /// Narrows an allowed decision for an operator (support, dpo, security): categories the
    /// staff policy denies are withheld, those it allows masked get a `mask:` obligation. A
    /// decision left with nothing is a deny (`staff_not_authorized`). No-op for other callers.
    fn apply_staff<'p>(&'p self, p: &Principal, purpose: &str, d: &mut Decision<'p>) {
        let roles: Vec<String> = p
            .roles
            .iter()
            .filter(|r| STAFF_ROLES.contains(&r.as_str()))
            .cloned()
            .collect();
        if roles.is_empty() || !d.allowed {
            return;
        }
        let access = match &self.staff {
            Some(staff) => staff.authorize_all(&p.name, &roles, &d.allowed_categories, purpose),
            // An operator without a staff policy loaded gets nothing: a missing rule is a deny.
            None => vec![pivault_staff::StaffAccess::Denied; d.allowed_categories.len()],
        };
        let mut kept = Vec::new();
        for (cat, a) in d.allowed_categories.iter().zip(access) {
            match a {
                pivault_staff::StaffAccess::Clear => kept.push(*cat),
                pivault_staff::StaffAccess::Masked => {
                    kept.push(*cat);
                    d.obligations.push(Obligation::Mask(cat));
                }
                pivault_staff::StaffAccess::Denied => {
                    d.withheld.push(pivault_domain::decision::Withheld {
                        category: cat,
                        reason: Reason::StaffNotAuthorized,
                    });
                }
            }
        }
        d.allowed_categories = kept;
        if d.allowed_categories.is_empty() {
            d.allowed = false;
            d.reason = Reason::StaffNotAuthorized;
            d.clause = Reason::StaffNotAuthorized.clause();
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The key ring.
    #[must_use]
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Current instant from the vault's clock.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn audit_base(
        &self,
        actor: &str,
        action: &str,
        now: i64,
        request_id: Option<&str>,
    ) -> AuditRecord {
        AuditRecord {
            at: now,
            actor: actor.to_string(),
            action: action.to_string(),
            outcome: "ok".into(),
            policy_version: self.policy.version().to_string(),
            request_id: request_id.map(str::to_string),
            ..AuditRecord::default()
        }
    }

    fn require_role(p: &Principal, role: &str) -> Result<(), CoreError> {
        if p.has_role(role) {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                code: "role_required",
                message: "the API key lacks the role for this operation",
            })
        }
    }

    pub(crate) fn cache_key(subject_id: &str, scope: &str) -> String {
        format!("{subject_id}/{scope}")
    }

    /// The subject's DEK for `scope`, from the cache or unwrapped from the store.
    pub(crate) async fn dek(
        &self,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<Arc<Dek>>, CoreError> {
        if let Some(d) = self.cache.get(&Self::cache_key(subject_id, scope)) {
            return Ok(Some(d));
        }
        let row = self.store.subject_key(subject_id, scope).await?;
        self.cache_unwrapped(subject_id, scope, row)
    }

    /// Unwraps a key row read after a cache miss and caches the DEK.
    fn cache_unwrapped(
        &self,
        subject_id: &str,
        scope: &str,
        row: Option<KeyRow>,
    ) -> Result<Option<Arc<Dek>>, CoreError> {
        let Some(row) = row else {
            return Ok(None);
        };
        let d = Arc::new(self.unwrap_row(&row)?);
        self.cache
            .insert(Self::cache_key(subject_id, scope), Arc::clone(&d));
        Ok(Some(d))
    }

    /// The subject's DEK for `scope` inside a write transaction: from the cache, else unwrapped
    /// from the key row read through `tx` (never through the pool: see
    /// `pivault_store::StoreError::NestedAcquire`). A key read this way is cached, so call it
    /// before, not after, inserting a key of the same subject and scope in `tx`.
    pub(crate) async fn dek_in(
        &self,
        tx: &mut WriteTx,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<Arc<Dek>>, CoreError> {
        if let Some(d) = self.cache.get(&Self::cache_key(subject_id, scope)) {
            return Ok(Some(d));
        }
        let row = tx.subject_key(subject_id, scope).await?;
        self.cache_unwrapped(subject_id, scope, row)
    }

    /// DEKs of `scope` for many subjects: cache hits, plus one query for the misses.
    pub(crate) async fn deks_many(
        &self,
        subject_ids: &[&str],
        scope: &str,
    ) -> Result<std::collections::HashMap<String, Arc<Dek>>, CoreError> {
        let mut out = std::collections::HashMap::with_capacity(subject_ids.len());
        let mut missing = Vec::new();
        for s in subject_ids {
            match self.cache.get(&Self::cache_key(s, scope)) {
                Some(d) => {
                    out.insert((*s).to_string(), d);
                }
                None => missing.push(*s),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            for row in self.store.subject_keys_many(&missing, scope).await? {
                let d = Arc::new(self.unwrap_row(&row)?);
                self.cache
                    .insert(Self::cache_key(&row.subject_id, scope), Arc::clone(&d));
                out.insert(row.subject_id, d);
            }
        }
        Ok(out)
    }

    /// Puts a freshly created DEK in the cache.
    pub(crate) fn cache_dek(&self, subject_id: &str, scope: &str, dek: Arc<Dek>) {
        self.cache.insert(Self::cache_key(subject_id, scope), dek);
    }

    fn unwrap_row(&self, row: &KeyRow) -> Result<Dek, CoreError> {
        let w = WrappedDek {
            key_id: row.key_id.clone(),
            kek_id: row.kek_id.clone(),
            bytes: row.wrapped.clone(),
        };
        Ok(self.keys.unwrap_dek(&row.subject_id, &row.scope, &w)?)
    }

    pub(crate) fn new_dek(&self, subject_id: &str, scope: &str, now: i64) -> (Dek, KeyRow) {
        let dek = self.keys.generate_dek();
        let w = self.keys.wrap_dek(subject_id, scope, &dek);
        let row = KeyRow {
            subject_id: subject_id.to_string(),
            scope: scope.to_string(),
            key_id: w.key_id,
            kek_id: w.kek_id,
            wrapped: w.bytes,
            created_at: now,
        };
        (dek, row)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seal_row(
        dek: &Dek,
        subject_id: &str,
        record: &str,
        name: &str,
        category: &str,
        value: &FieldValue,
        restricted_until: Option<i64>,
        now: i64,
    ) -> FieldRow {
        let field = format!("{record}/{name}");
        let pt = Zeroizing::new(value.encode());
        let aad = Aad {
            subject_id,
            category,
            field: &field,
            key_id: dek.key_id(),
        };
        FieldRow {
            subject_id: subject_id.to_string(),
            record: record.to_string(),
            name: name.to_string(),
            category: category.to_string(),
            key_id: dek.key_id().to_string(),
            ciphertext: dek.seal(&aad, &pt),
            restricted_until,
            updated_at: now,
        }
    }

    /// Opens one sealed field with `dek`.
    pub(crate) fn open_row(dek: &Dek, row: &FieldRow) -> Result<FieldValue, CoreError> {
        if row.key_id != dek.key_id() {
            return Err(CoreError::Crypto(pivault_crypto::CryptoError::UnknownKey {
                key_id: row.key_id.clone(),
            }));
        }
        let field = format!("{}/{}", row.record, row.name);
        let aad = Aad {
            subject_id: &row.subject_id,
            category: &row.category,
            field: &field,
            key_id: &row.key_id,
        };
        let pt = dek.open(&aad, &row.ciphertext)?;
        FieldValue::decode(&pt).map_err(|e| CoreError::invalid("stored field", e.code, e.reason))
    }

    pub(crate) fn prepare<'p>(
        &'p self,
        inputs: &[FieldInput],
    ) -> Result<Vec<Prepared<'p>>, CoreError> {
        if inputs.is_empty() {
            return Err(CoreError::invalid(
                "fields",
                "fields_empty",
                "at least one field is required",
            ));
        }
        if inputs.len() > MAX_FIELDS_PER_REQUEST {
            return Err(CoreError::invalid(
                "fields",
                "too_many_fields",
                "at most 256 fields per request",
            ));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(inputs.len());
        for (i, f) in inputs.iter().enumerate() {
            let category = self.policy.category(&f.category).ok_or_else(|| {
                CoreError::invalid(
                    format!("fields[{i}].category"),
                    "unknown_category",
                    "category is not declared in the policy",
                )
            })?;
            let record = f.record.clone().unwrap_or_else(|| "profile".into());
            let name = f.name.clone().unwrap_or_else(|| category.key.clone());
            if !valid_name(&record) {
                return Err(CoreError::invalid(
                    format!("fields[{i}].record"),
                    "record_malformed",
                    "1-128 characters of A-Z a-z 0-9 _ . : -",
                ));
            }
            if !valid_name(&name) {
                return Err(CoreError::invalid(
                    format!("fields[{i}].name"),
                    "name_malformed",
                    "1-128 characters of A-Z a-z 0-9 _ . : -",
                ));
            }
            if !seen.insert((record.clone(), name.clone())) {
                return Err(CoreError::invalid(
                    format!("fields[{i}]"),
                    "duplicate_field",
                    "the same record and name appear twice",
                ));
            }
            let where_ = format!("fields[{i}].value");
            let (value, ident) = if let Some(kind) = category.identifier {
                let raw = f.value.as_str().ok_or_else(|| {
                    CoreError::invalid(
                        where_.clone(),
                        "value_wrong_type",
                        "identifier values must be strings",
                    )
                })?;
                let norm = kind
                    .normalize(raw)
                    .map_err(|e| CoreError::invalid(where_.clone(), e.code, e.reason))?;
                (FieldValue::Text(norm.clone()), Some((kind, norm)))
            } else if category.key == DOB_CATEGORY {
                let d = f.value.as_str().and_then(parse_date).ok_or_else(|| {
                    CoreError::invalid(
                        where_.clone(),
                        "date_malformed",
                        "expected a date as YYYY-MM-DD",
                    )
                })?;
                (FieldValue::Text(d.to_string()), None)
            } else {
                let v = FieldValue::from_json(&f.value, category.value_type)
                    .map_err(|e| CoreError::invalid(where_.clone(), e.code, e.reason))?;
                (v, None)
            };
            out.push(Prepared {
                category,
                record,
                name,
                value,
                ident,
            });
        }
        Ok(out)
    }

    /// A collection is all-or-nothing: a decision that withholds any category refuses the
    /// whole write (§8.2: no irrelevant PI is collected). Returns the refusal to audit.
    fn collection_refusal<'p>(d: &Decision<'p>) -> Option<Decision<'p>> {
        if d.allowed && d.withheld.is_empty() {
            return None;
        }
        let mut dd = d.clone();
        if let Some(w) = dd.withheld.first().filter(|_| dd.allowed) {
            dd.reason = w.reason;
            dd.clause = w.reason.clause();
            dd.allowed = false;
        }
        Some(dd)
    }

    /// Birth date from the date-of-birth field, else from a resident ID number (GB 11643).
    fn birth_date_of(dek: Option<&Dek>, rows: &[FieldRow]) -> Option<Date> {
        let dek = dek?;
        let mut from_id = None;
        for r in rows {
            if r.restricted_until.is_some() {
                continue;
            }
            if r.category == DOB_CATEGORY {
                if let Ok(FieldValue::Text(s)) = Self::open_row(dek, r) {
                    if let Some(d) = parse_date(&s) {
                        return Some(d);
                    }
                }
            } else if r.category == "user.government_id.id_card" && from_id.is_none() {
                if let Ok(FieldValue::Text(s)) = Self::open_row(dek, r) {
                    from_id = IdCardNumber::parse(&s).ok().map(|i| i.birth_date());
                }
            }
        }
        from_id
    }

    fn prepared_birth_date(prepared: &[Prepared<'_>]) -> Option<Date> {
        prepared
            .iter()
            .find_map(|p| match (&p.value, p.category.key.as_str()) {
                (FieldValue::Text(s), DOB_CATEGORY) => parse_date(s),
                (FieldValue::Text(s), "user.government_id.id_card") => {
                    IdCardNumber::parse(s).ok().map(|i| i.birth_date())
                }
                _ => None,
            })
    }

    pub(crate) async fn consent_state(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Vec<ConsentRow>, ConsentState), CoreError> {
        let rows = self.store.consent_events(subject_id).await?;
        Ok(Self::fold_consents(rows, now))
    }

    /// [`Vault::consent_state`] inside a write transaction: the ledger read through `tx`.
    pub(crate) async fn consent_state_in(
        tx: &mut WriteTx,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Vec<ConsentRow>, ConsentState), CoreError> {
        let rows = tx.consent_events(subject_id).await?;
        Ok(Self::fold_consents(rows, now))
    }

    fn fold_consents(
        rows: Vec<ConsentRow>,
        now: OffsetDateTime,
    ) -> (Vec<ConsentRow>, ConsentState) {
        let events: Vec<ConsentEvent> = rows.iter().filter_map(consent_event).collect();
        let state = ConsentState::fold(&events, now);
        (rows, state)
    }

    /// Decision facts of a subject, from the facts cache when it is current (see
    /// `facts_cache`), else loaded.
    pub(crate) async fn cached_facts(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<Arc<crate::facts_cache::CachedFacts>, CoreError> {
        let stamp = self.facts.stamp();
        if let Some(hit) = self.facts.get(subject_id, stamp, now.unix_timestamp()) {
            return Ok(hit);
        }
        let f = self.subject_facts(subject_id, now).await?;
        Ok(self
            .facts
            .insert(subject_id, stamp, now.unix_timestamp(), f))
    }

    /// Forgets cached decision facts of `subject_id` after a local change to them.
    pub(crate) fn facts_changed(&self, subject_id: &str) {
        self.facts.invalidate(subject_id);
    }

    /// Appends audit entries that accompany no other change (decisions), by group commit;
    /// returns once they are committed.
    pub(crate) async fn append_audit(&self, recs: Vec<AuditRecord>) -> Result<(), CoreError> {
        self.audit.append(recs).await
    }

    /// Opens the fields in `allowed` categories: under an erased subject only the restricted
    /// ones still within their retention, otherwise only the unrestricted ones.
    pub(crate) fn open_allowed(
        f: &LoadedFacts,
        allowed: &[&str],
        now: i64,
    ) -> Result<Vec<FieldOutput>, CoreError> {
        let Some(dek) = f.dek.as_deref() else {
            return Ok(Vec::new());
        };
        let allowed: HashSet<&str> = allowed.iter().copied().collect();
        f.fields
            .iter()
            .filter(|r| {
                allowed.contains(r.category.as_str())
                    && r.restricted_until.is_none_or(|u| u > now)
                    && f.erased == r.restricted_until.is_some()
            })
            .map(|r| {
                Ok(FieldOutput {
                    record: r.record.clone(),
                    name: r.name.clone(),
                    category: r.category.clone(),
                    value: Self::open_row(dek, r)?,
                    restricted_until: r.restricted_until,
                })
            })
            .collect()
    }

    /// Everything a decision needs about a subject, loaded once: its row, fields, consent state
    /// at `now`, the DEK of the scope its fields are under, and its birth date.
    pub(crate) async fn subject_facts(
        &self,
        subject_id: &str,
        now: OffsetDateTime,
    ) -> Result<LoadedFacts, CoreError> {
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        let erased = subject.status == "erased";
        if erased {
            // Erased, possibly through another instance: drop this instance's copy of the
            // shredded DEK.
            self.cache
                .remove(&Self::cache_key(subject_id, SCOPE_PRIMARY));
        }
        let fields = self.store.fields(subject_id).await?;
        let (rows, consent) = self.consent_state(subject_id, now).await?;
        let next_consent_at = rows
            .iter()
            .map(|r| r.at)
            .filter(|&at| at > now.unix_timestamp())
            .min();
        let dek = self
            .dek(
                subject_id,
                if erased {
                    SCOPE_RESTRICTED
                } else {
                    SCOPE_PRIMARY
                },
            )
            .await?;
        let birth_date = if erased {
            None
        } else {
            Self::birth_date_of(dek.as_deref(), &fields)
        };
        Ok(LoadedFacts {
            next_consent_at,
            erased,
            home_region: subject.home_region,
            fields,
            consent,
            dek,
            birth_date,
        })
    }

    #[allow(clippy::too_many_arguments)] // one call shape, all plain values of the decision
    /// Audits a decision in its own transaction (reads change nothing else).
    async fn audit_decision(
        &self,
        p: &Principal,
        action: &str,
        subject_id: Option<&str>,
        purpose: &str,
        d: &Decision<'_>,
        requested: &[&str],
        now: i64,
        request_id: Option<&str>,
    ) -> Result<(), CoreError> {
        let mut rec = self.audit_base(&p.name, action, now, request_id);
        rec.subject_id = subject_id.map(str::to_string);
        rec.purpose = Some(purpose.to_string());
        rec.outcome = if d.allowed { "allow" } else { "deny" }.into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = if d.allowed {
            AuditRecord::join_categories(d.allowed_categories.iter().copied())
        } else {
            AuditRecord::join_categories(requested.iter().copied())
        };
        if !d.withheld.is_empty() {
            rec.detail = Some(format!("withheld={}", d.withheld.len()));
        }
        self.audit.append(vec![rec]).await?;
        Ok(())
    }

    /// Creates a PI subject with its first fields, collected for `purpose`.
    ///
    /// The collection is decided like a read (the purpose must exist, be permitted to the
    /// principal, have its legal basis, and declare every category: §8.2 "avoid collecting
    /// irrelevant user information"). Identifier fields are normalized and blind-indexed.
    ///
    /// # Errors
    /// `Invalid` (422) for bad fields; `Denied` (403, audited); `Conflict` if the account id
    /// already belongs to a subject; store/crypto failures.
    #[instrument(skip_all, fields(principal = %p.name, purpose = %purpose))]
    pub async fn create_subject(
        &self,
        p: &Principal,
        kind: &str,
        purpose: &str,
        inputs: &[FieldInput],
        request_id: Option<&str>,
    ) -> Result<String, CoreError> {
        Self::require_role(p, ROLE_APP)?;
        if !matches!(kind, "account" | "business_contact") {
            return Err(CoreError::invalid(
                "kind",
                "unknown_subject_kind",
                "kind is account or business_contact",
            ));
        }
        let prepared = self.prepare(inputs)?;
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let cats: Vec<&str> = prepared.iter().map(|f| f.category.key.as_str()).collect();
        let empty = ConsentState::default();
        let facts = SubjectFacts {
            consent: &empty,
            birth_date: Self::prepared_birth_date(&prepared),
            erased: false,
            home_region: None,
        };
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);
        let d = decide(&self.policy, &facts, &req, now_t);
        if let Some(dd) = Self::collection_refusal(&d) {
            self.audit_decision(
                p,
                "subject.create",
                None,
                purpose,
                &dd,
                &cats,
                now,
                request_id,
            )
            .await?;
            return Err(CoreError::Denied(denial(&dd)));
        }
        for f in &prepared {
            if let Some((IdentifierKind::AccountId, norm)) = &f.ident {
                let digest = self
                    .keys
                    .blind_index(IdentifierKind::AccountId.as_str(), norm);
                if !self
                    .store
                    .lookup(IdentifierKind::AccountId.as_str(), &digest)
                    .await?
                    .is_empty()
                {
                    return Err(CoreError::Conflict("account_exists"));
                }
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (dek, key_row) = self.new_dek(&id, SCOPE_PRIMARY, now);
        let rows: Vec<FieldRow> = prepared
            .iter()
            .map(|f| {
                Self::seal_row(
                    &dek,
                    &id,
                    &f.record,
                    &f.name,
                    &f.category.key,
                    &f.value,
                    None,
                    now,
                )
            })
            .collect();
        let idx: Vec<(&str, [u8; 32], &str)> = prepared
            .iter()
            .filter_map(|f| f.ident.as_ref())
            .map(|(k, n)| {
                (
                    k.as_str(),
                    self.keys.blind_index(k.as_str(), n),
                    id.as_str(),
                )
            })
            .collect();
        let mut tx = self.store.begin(now).await?;
        // Re-check under the write lock: another instance may have created the account since
        // the check above.
        for (kind, digest, _) in &idx {
            if *kind == IdentifierKind::AccountId.as_str()
                && !tx.lookup(kind, digest).await?.is_empty()
            {
                return Err(CoreError::Conflict("account_exists"));
            }
        }
        tx.insert_subject(&SubjectRow {
            id: id.clone(),
            kind: kind.into(),
            status: "active".into(),
            created_at: now,
            erased_at: None,
            home_region: None,
        })
        .await?;
        tx.insert_keys(std::slice::from_ref(&key_row)).await?;
        tx.upsert_fields(&rows).await?;
        tx.insert_blind_index(&idx).await?;
        let mut rec = self.audit_base(&p.name, "subject.create", now, request_id);
        rec.subject_id = Some(id.clone());
        rec.purpose = Some(purpose.into());
        rec.outcome = "allow".into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = AuditRecord::join_categories(cats.iter().copied());
        rec.detail = Some(format!("kind={kind} fields={}", rows.len()));
        tx.audit(rec);
        tx.commit().await?;
        self.cache
            .insert(Self::cache_key(&id, SCOPE_PRIMARY), Arc::new(dek));
        Ok(id)
    }

    /// Writes (inserts or replaces) fields of an existing subject, collected for `purpose`.
    ///
    /// # Errors
    /// As [`Vault::create_subject`]; `NotFound` for an unknown subject; `Conflict` when the
    /// subject was erased.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id, purpose = %purpose))]
    pub async fn put_fields(
        &self,
        p: &Principal,
        subject_id: &str,
        purpose: &str,
        inputs: &[FieldInput],
        request_id: Option<&str>,
    ) -> Result<usize, CoreError> {
        Self::require_role(p, ROLE_APP)?;
        let prepared = self.prepare(inputs)?;
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        if subject.status != "active" {
            return Err(CoreError::Conflict("subject_erased"));
        }
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let dek = self
            .dek(subject_id, SCOPE_PRIMARY)
            .await?
            .ok_or(CoreError::Conflict("subject_key_missing"))?;
        let existing = self.store.fields(subject_id).await?;
        let (_, state) = self.consent_state(subject_id, now_t).await?;
        let birth = Self::prepared_birth_date(&prepared)
            .or_else(|| Self::birth_date_of(Some(&dek), &existing));
        let cats: Vec<&str> = prepared.iter().map(|f| f.category.key.as_str()).collect();
        let facts = SubjectFacts {
            consent: &state,
            birth_date: birth,
            erased: false,
            home_region: None,
        };
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);
        let d = decide(&self.policy, &facts, &req, now_t);
        if let Some(dd) = Self::collection_refusal(&d) {
            self.audit_decision(
                p,
                "fields.put",
                Some(subject_id),
                purpose,
                &dd,
                &cats,
                now,
                request_id,
            )
            .await?;
            return Err(CoreError::Denied(denial(&dd)));
        }
        let mut tx = self.store.begin(now).await?;
        let n = self
            .stage_field_writes(&mut tx, subject_id, &dek, &prepared, &existing, now)
            .await?;
        let mut rec = self.audit_base(&p.name, "fields.put", now, request_id);
        rec.subject_id = Some(subject_id.into());
        rec.purpose = Some(purpose.into());
        rec.outcome = "allow".into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = AuditRecord::join_categories(cats.iter().copied());
        rec.detail = Some(format!("fields={n}"));
        tx.audit(rec);
        tx.commit().await?;
        self.facts_changed(subject_id);
        Ok(n)
    }

    /// Stages sealed writes of `prepared` fields into `tx`: upserts them under `dek` and
    /// re-derives the blind index of every identifier kind touched (a corrected mobile stops
    /// finding the subject under the old number), with a facts-epoch bump. `existing` are the
    /// subject's current fields. Returns the number of fields written.
    ///
    /// # Errors
    /// `Conflict` if the subject was erased meanwhile or an account id belongs to another
    /// subject; crypto/store failures.
    pub(crate) async fn stage_field_writes(
        &self,
        tx: &mut pivault_store::WriteTx,
        subject_id: &str,
        dek: &Dek,
        prepared: &[Prepared<'_>],
        existing: &[FieldRow],
        now: i64,
    ) -> Result<usize, CoreError> {
        let rows: Vec<FieldRow> = prepared
            .iter()
            .map(|f| {
                Self::seal_row(
                    dek,
                    subject_id,
                    &f.record,
                    &f.name,
                    &f.category.key,
                    &f.value,
                    None,
                    now,
                )
            })
            .collect();
        // Re-derive the blind index of every identifier kind touched, from all current values:
        // a corrected mobile must stop finding the subject under the old number.
        let touched: HashSet<IdentifierKind> = prepared
            .iter()
            .filter_map(|f| f.ident.as_ref().map(|x| x.0))
            .collect();
        let replaced: HashSet<(&str, &str)> = prepared
            .iter()
            .map(|f| (f.record.as_str(), f.name.as_str()))
            .collect();
        let mut idx_values: Vec<(IdentifierKind, String)> =
            prepared.iter().filter_map(|f| f.ident.clone()).collect();
        for r in existing {
            if replaced.contains(&(r.record.as_str(), r.name.as_str())) {
                continue;
            }
            if let Some(kind) = self.policy.category(&r.category).and_then(|c| c.identifier) {
                if touched.contains(&kind) {
                    if let FieldValue::Text(s) = Self::open_row(dek, r)? {
                        idx_values.push((kind, s));
                    }
                }
            }
        }
        let idx: Vec<(&str, [u8; 32], &str)> = idx_values
            .iter()
            .map(|(k, n)| (k.as_str(), self.keys.blind_index(k.as_str(), n), subject_id))
            .collect();
        // Re-check under the write lock: another instance may have erased the subject since
        // the status was read above; its fields must not come back sealed under a shredded DEK.
        if tx.subject_status(subject_id).await?.as_deref() != Some("active") {
            return Err(CoreError::Conflict("subject_erased"));
        }
        // An account id belongs to one subject: checked under the write lock.
        for (kind, digest, _) in &idx {
            if *kind == IdentifierKind::AccountId.as_str()
                && tx
                    .lookup(kind, digest)
                    .await?
                    .iter()
                    .any(|s| s != subject_id)
            {
                return Err(CoreError::Conflict("account_exists"));
            }
        }
        tx.upsert_fields(&rows).await?;
        for k in &touched {
            tx.delete_blind_index(subject_id, Some(k.as_str())).await?;
        }
        tx.insert_blind_index(&idx).await?;
        tx.bump_facts_epoch().await?;
        Ok(rows.len())
    }

    /// Reads a subject's fields for `purpose`: decides, audits the decision, then opens only
    /// the categories the decision allows (minimum necessary).
    ///
    /// `categories` empty means "everything the purpose allows".
    ///
    /// # Errors
    /// `Invalid` for unknown categories; `NotFound`; `Denied` (403, audited, with reason code,
    /// clause and article); store/crypto failures.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id, purpose = %purpose))]
    pub async fn read_fields(
        &self,
        p: &Principal,
        subject_id: &str,
        purpose: &str,
        categories: &[String],
        request_id: Option<&str>,
    ) -> Result<ReadResult, CoreError> {
        Self::require_role(p, ROLE_APP)?;
        for (i, c) in categories.iter().enumerate() {
            if self.policy.category(c).is_none() {
                return Err(CoreError::invalid(
                    format!("categories[{i}]"),
                    "unknown_category",
                    "category is not declared in the policy",
                ));
            }
        }
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let f = self.subject_facts(subject_id, now_t).await?;
        let cats: Vec<&str> = categories.iter().map(String::as_str).collect();
        let facts = SubjectFacts {
            consent: &f.consent,
            birth_date: f.birth_date,
            erased: f.erased,
            home_region: f.home_region.as_deref(),
        };
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);
        let mut d = decide(&self.policy, &facts, &req, now_t);
        self.apply_staff(p, purpose, &mut d);
        self.audit_decision(
            p,
            "fields.read",
            Some(subject_id),
            purpose,
            &d,
            &cats,
            now,
            request_id,
        )
        .await?;
        if !d.allowed {
            return Err(CoreError::Denied(denial(&d)));
        }
        let mut fields = Self::open_allowed(&f, &d.allowed_categories, now)?;
        for o in &d.obligations {
            if let Obligation::Mask(cat) = o {
                for fo in fields.iter_mut().filter(|fo| fo.category == *cat) {
                    let shown = match &fo.value {
                        FieldValue::Text(t) | FieldValue::Number(t) => pivault_staff::mask(cat, t),
                        _ => "***".to_string(),
                    };
                    fo.value = FieldValue::Text(shown);
                }
            }
        }
        Ok(ReadResult {
            subject_id: subject_id.into(),
            purpose: purpose.into(),
            legal_basis: d.legal_basis.map_or("", |b| b.as_str()),
            article: d.article(),
            clause: d.clause.to_string(),
            explanation: d.explanation(),
            minor: d.minor,
            fields,
            withheld: d
                .withheld
                .iter()
                .map(|w| (w.category.to_string(), w.reason.as_str()))
                .collect(),
            policy_version: self.policy.version().to_string(),
        })
    }

    /// Finds every subject whose identifier of `kind` equals `raw` after normalization, via
    /// the blind index (no decryption, no scan). Each match is audited.
    ///
    /// # Errors
    /// `Invalid` for an unknown kind or a malformed value; `Forbidden` when the principal may
    /// not use `purpose`; `Denied` for an unknown purpose; store failures.
    #[instrument(skip_all, fields(principal = %p.name, purpose = %purpose, kind = %kind))]
    pub async fn lookup(
        &self,
        p: &Principal,
        kind: &str,
        raw: &str,
        purpose: &str,
        request_id: Option<&str>,
    ) -> Result<LookupResult, CoreError> {
        Self::require_role(p, ROLE_APP)?;
        let k = IdentifierKind::parse_name(kind).ok_or_else(|| {
            CoreError::invalid(
                "by",
                "unknown_identifier_kind",
                "by is account_id, mobile, email or id_card",
            )
        })?;
        let norm = k
            .normalize(raw)
            .map_err(|e| CoreError::invalid("value", e.code, e.reason))?;
        if self.policy.purpose(purpose).is_none() {
            return Err(CoreError::invalid(
                "purpose",
                "unknown_purpose",
                "purpose is not declared in the policy",
            ));
        }
        if !p.purposes.iter().any(|x| x == purpose) {
            return Err(CoreError::Forbidden {
                code: "purpose_not_permitted",
                message: "the API key may not use this purpose",
            });
        }
        let digest = self.keys.blind_index(k.as_str(), &norm);
        let subjects = self.store.lookup(k.as_str(), &digest).await?;
        let now = self.clock.now().unix_timestamp();
        let category = self
            .policy
            .identifier_category(k)
            .map(|c| c.key.clone())
            .unwrap_or_default();
        let mut tx = self.store.begin(now).await?;
        let targets: Vec<Option<&str>> = if subjects.is_empty() {
            vec![None]
        } else {
            subjects.iter().map(|s| Some(s.as_str())).collect()
        };
        for s in targets {
            let mut rec = self.audit_base(&p.name, "subject.lookup", now, request_id);
            rec.subject_id = s.map(str::to_string);
            rec.purpose = Some(purpose.into());
            rec.outcome = "allow".into();
            rec.categories = category.clone();
            rec.detail = Some(format!("by={} matches={}", k.as_str(), subjects.len()));
            tx.audit(rec);
        }
        tx.commit().await?;
        Ok(LookupResult {
            count: subjects.len(),
            subjects,
        })
    }

    /// Appends a consent event to the subject's ledger (never rewrites earlier rows).
    ///
    /// # Errors
    /// `Invalid` for an unknown purpose, action or giver, or a time in the future; `NotFound`;
    /// `Conflict` for an erased subject or a repeated `event_ref`.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id))]
    pub async fn record_consent(
        &self,
        p: &Principal,
        subject_id: &str,
        input: &ConsentInput,
        request_id: Option<&str>,
    ) -> Result<ConsentRow, CoreError> {
        Self::require_role(p, ROLE_APP)?;
        let purpose = self.policy.purpose(&input.purpose).ok_or_else(|| {
            CoreError::invalid(
                "purpose",
                "unknown_purpose",
                "purpose is not declared in the policy",
            )
        })?;
        let action = ConsentAction::parse(&input.action).ok_or_else(|| {
            CoreError::invalid("action", "unknown_action", "action is grant or withdraw")
        })?;
        let given_by = GivenBy::parse(&input.given_by).ok_or_else(|| {
            CoreError::invalid(
                "given_by",
                "unknown_given_by",
                "given_by is self or guardian",
            )
        })?;
        // Closed lists: free text here would be stored in clear in the ledger and audit log,
        // where a caller could put PI that erasure cannot reach.
        if !CONSENT_METHODS.contains(&input.method.as_str()) {
            return Err(CoreError::invalid(
                "method",
                "unknown_method",
                "method is web, app, api, import, paper, phone or email",
            ));
        }
        if !p.purposes.iter().any(|x| x == &input.purpose) {
            return Err(CoreError::Forbidden {
                code: "purpose_not_permitted",
                message: "the API key may not record consents for this purpose",
            });
        }
        if let Some(r) = &input.event_ref {
            if !valid_name(r) {
                return Err(CoreError::invalid(
                    "event_ref",
                    "event_ref_malformed",
                    "1-128 characters of A-Z a-z 0-9 _ . : -",
                ));
            }
        }
        if let Some(r) = &input.recipient {
            if r != "public" && self.policy.recipient(r).is_none() {
                return Err(CoreError::invalid(
                    "recipient",
                    "undeclared_recipient",
                    "recipient is not declared in the policy",
                ));
            }
        }
        let now = self.clock.now().unix_timestamp();
        let at = input.at.unwrap_or(now);
        if at > now + MAX_CLOCK_SKEW_SECS {
            return Err(CoreError::invalid(
                "at",
                "consent_time_in_future",
                "a consent cannot be recorded ahead of time",
            ));
        }
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        if subject.status != "active" {
            return Err(CoreError::Conflict("subject_erased"));
        }
        let mut row = ConsentRow {
            seq: 0,
            event_ref: input
                .event_ref
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            subject_id: subject_id.into(),
            purpose: purpose.id.clone(),
            action: action.as_str().into(),
            at,
            given_by: given_by.as_str().into(),
            method: input.method.clone(),
            separate: input.separate || purpose.separate_consent,
            policy_version: input
                .policy_version
                .clone()
                .unwrap_or_else(|| self.policy.version().to_string()),
            recorded_at: now,
            recipient: input.recipient.clone(),
        };
        // A consent naming its recipient is a separate consent by construction.
        row.separate |= row.recipient.is_some();
        let mut tx = self.store.begin(now).await?;
        if tx.subject_status(subject_id).await?.as_deref() != Some("active") {
            return Err(CoreError::Conflict("subject_erased"));
        }
        if tx.insert_consents(std::slice::from_ref(&row)).await? == 0 {
            return Err(CoreError::Conflict("consent_event_exists"));
        }
        let mut rec = self.audit_base(
            &p.name,
            &format!("consent.{}", action.as_str()),
            now,
            request_id,
        );
        rec.subject_id = Some(subject_id.into());
        rec.purpose = Some(purpose.id.clone());
        rec.detail = Some(format!(
            "given_by={} method={} separate={}{}",
            row.given_by,
            row.method,
            row.separate,
            row.recipient
                .as_deref()
                .map(|r| format!(" recipient={r}"))
                .unwrap_or_default()
        ));
        tx.audit(rec);
        tx.bump_facts_epoch().await?;
        tx.commit().await?;
        self.facts_changed(subject_id);
        Ok(row)
    }

    /// The subject's consent ledger and the consents in force now.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn consents(
        &self,
        p: &Principal,
        subject_id: &str,
    ) -> Result<(Vec<ConsentRow>, Vec<(String, ActiveConsent)>), CoreError> {
        Self::require_role(p, ROLE_APP)?;
        self.store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        let (rows, state) = self.consent_state(subject_id, self.clock.now()).await?;
        let active = state
            .active_purposes()
            .into_iter()
            .filter_map(|p| state.active(p).map(|a| (p.to_string(), a.clone())))
            .collect();
        Ok((rows, active))
    }

    /// Erases a subject by crypto-shredding (PIPL Art. 47; policy §7.1, §4.2).
    ///
    /// Fields in categories under a legal retention period (orders: ≥ 3 years after the
    /// transaction) are re-sealed under a new `restricted` DEK with their release instant;
    /// every other field is deleted, the primary DEK is destroyed, blind-index entries are
    /// removed and the subject is marked erased — all with the audit entry, in one transaction.
    ///
    /// # Errors
    /// `Forbidden` without the admin role; `NotFound`; `Conflict` if already erased.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id))]
    pub async fn erase_subject(
        &self,
        p: &Principal,
        subject_id: &str,
        ground: &str,
        request_id: Option<&str>,
    ) -> Result<ErasureReceipt, CoreError> {
        Self::require_role(p, ROLE_ADMIN)?;
        if !ERASURE_GROUNDS.contains(&ground) {
            return Err(CoreError::invalid(
                "ground",
                "unknown_ground",
                "ground is one of PIPL Art. 47 / policy §7.1: subject_request, purpose_achieved, service_ended, retention_expired, consent_withdrawn, unlawful_processing, no_consent, breach_of_agreement",
            ));
        }
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        if subject.status != "active" {
            return Err(CoreError::Conflict("already_erased"));
        }
        let now = self.clock.now().unix_timestamp();
        // Take the write lock before reading the key and the fields: a concurrent erasure
        // through another instance must not run twice, nor read fields half re-sealed (it
        // would re-seal the retained fields under a second restricted DEK that is never
        // stored). Erasures are rare; holding the lock for one subject's crypto is cheap.
        let mut tx = self.store.begin(now).await?;
        if tx.subject_status(subject_id).await?.as_deref() != Some("active") {
            self.cache.evict_prefix(&format!("{subject_id}/"));
            return Err(CoreError::Conflict("already_erased"));
        }
        // Everything below reads through `tx`: another pool connection while holding the lock
        // could wait on writers that wait on this transaction.
        let dek = self
            .dek_in(&mut tx, subject_id, SCOPE_PRIMARY)
            .await?
            .ok_or(CoreError::Conflict("subject_key_missing"))?;
        let rows = tx.fields(subject_id).await?;
        let (rows, retained) = self
            .stage_restrict(&mut tx, subject_id, &dek, rows, now)
            .await?;
        let shred = self
            .stage_shred(&mut tx, subject_id, &dek, &rows, now)
            .await?;
        let mut rec = self.audit_base(&p.name, "subject.erase", now, request_id);
        rec.subject_id = Some(subject_id.into());
        rec.categories =
            AuditRecord::join_categories(shred.deleted_categories.iter().map(String::as_str));
        rec.detail = Some(format!(
            "ground={ground} destroyed_key={} deleted_fields={} retained_fields={} blind_index_removed={}",
            shred.destroyed_key_id,
            shred.deleted_fields,
            retained.iter().map(|r| r.fields).sum::<u64>(),
            shred.blind_index_entries_removed,
        ));
        tx.audit(rec);
        tx.commit().await?;
        self.shredded(subject_id);
        Ok(ErasureReceipt {
            subject_id: subject_id.into(),
            erased_at: now,
            destroyed_key_id: shred.destroyed_key_id,
            deleted_fields: shred.deleted_fields,
            deleted_categories: shred.deleted_categories,
            retained,
            blind_index_entries_removed: shred.blind_index_entries_removed,
        })
    }

    /// Forgets every cached key and decision fact of a subject whose DEK was destroyed.
    pub(crate) fn shredded(&self, subject_id: &str) {
        self.facts_changed(subject_id);
        self.cache.evict_prefix(&format!("{subject_id}/"));
    }

    /// Erasure, first half (PIPL Art. 47 para 2; §4.2): fields of categories under a legal
    /// retention period still running are re-sealed under the subject's `restricted` DEK with
    /// their release instant (the record's own event time, e.g. `paid_at`, + `min_days`).
    /// Staged in `tx`; returns the rows as they will be after it (re-sealed ones replaced) and
    /// what was retained. Rows already restricted are left alone, so a resumed erasure never
    /// re-seals twice.
    ///
    /// # Errors
    /// Crypto failure opening a row; store failure.
    pub(crate) async fn stage_restrict(
        &self,
        tx: &mut WriteTx,
        subject_id: &str,
        dek: &Dek,
        rows: Vec<FieldRow>,
        now: i64,
    ) -> Result<(Vec<FieldRow>, Vec<RetainedCategory>), CoreError> {
        // Release instant per record: the record's own event time (e.g. paid_at) + min_days.
        let mut anchor: BTreeMap<String, i64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.restricted_until.is_none()) {
            let Some(c) = self.policy.category(&r.category) else {
                continue;
            };
            if c.retention.is_some() {
                if let Ok(FieldValue::Timestamp(t)) = Self::open_row(dek, r) {
                    let e = anchor.entry(r.record.clone()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
        }
        let mut rdek: Option<Arc<Dek>> = None;
        let mut retained: BTreeMap<String, RetainedCategory> = BTreeMap::new();
        let mut out = Vec::with_capacity(rows.len());
        let mut resealed = Vec::new();
        for r in rows {
            let ret = self
                .policy
                .category(&r.category)
                .and_then(|c| c.retention.as_ref())
                .filter(|_| r.restricted_until.is_none());
            let Some(rt) = ret else {
                out.push(r);
                continue;
            };
            let until =
                anchor.get(&r.record).copied().unwrap_or(now) + i64::from(rt.min_days) * 86_400;
            if until <= now {
                out.push(r);
                continue;
            }
            if rdek.is_none() {
                rdek = Some(match self.dek_in(tx, subject_id, SCOPE_RESTRICTED).await? {
                    Some(d) => d,
                    None => {
                        let (d, row) = self.new_dek(subject_id, SCOPE_RESTRICTED, now);
                        tx.insert_keys(std::slice::from_ref(&row)).await?;
                        Arc::new(d)
                    }
                });
            }
            let Some(rd) = rdek.as_deref() else {
                continue;
            };
            let v = Self::open_row(dek, &r)?;
            let sealed = Self::seal_row(
                rd,
                subject_id,
                &r.record,
                &r.name,
                &r.category,
                &v,
                Some(until),
                now,
            );
            let e = retained
                .entry(r.category.clone())
                .or_insert_with(|| RetainedCategory {
                    category: r.category.clone(),
                    fields: 0,
                    until,
                    basis: rt.basis.clone(),
                    clause: rt.clause.clone(),
                });
            e.fields += 1;
            e.until = e.until.max(until);
            resealed.push(sealed.clone());
            out.push(sealed);
        }
        if !resealed.is_empty() {
            tx.upsert_fields(&resealed).await?;
        }
        Ok((out, retained.into_values().collect()))
    }

    /// Erasure, second half (PIPL Art. 47; §7.1): destroys the primary DEK (crypto-shredding),
    /// deletes every unrestricted field and blind-index entry, adds the erased account id to
    /// the suppression list, drops sealed request payloads and marks the subject erased — staged
    /// in `tx`, with a facts-epoch bump. `rows` are the subject's fields as they will be when
    /// `tx` commits. Call [`Vault::shredded`] after the commit.
    ///
    /// # Errors
    /// Store failure.
    pub(crate) async fn stage_shred(
        &self,
        tx: &mut pivault_store::WriteTx,
        subject_id: &str,
        dek: &Dek,
        rows: &[FieldRow],
        now: i64,
    ) -> Result<ShredOutcome, CoreError> {
        let live: Vec<&FieldRow> = rows
            .iter()
            .filter(|r| r.restricted_until.is_none())
            .collect();
        let mut deleted_categories: Vec<String> = live.iter().map(|r| r.category.clone()).collect();
        deleted_categories.sort();
        deleted_categories.dedup();
        tx.delete_key(subject_id, SCOPE_PRIMARY).await?;
        let deleted_fields = tx.delete_unrestricted_fields(subject_id).await?;
        let removed = tx.delete_blind_index(subject_id, None).await?;
        // Suppression list: a keyed hash of the erased account id (not the id), so that a
        // re-run of an import cannot bring the person back (PIPL Art. 47: erased means gone).
        let tombstones: Vec<(&str, [u8; 32], &str)> = live
            .iter()
            .filter(|r| {
                self.policy.category(&r.category).and_then(|c| c.identifier)
                    == Some(IdentifierKind::AccountId)
            })
            .filter_map(|r| match Self::open_row(dek, r) {
                Ok(FieldValue::Text(a)) => Some((
                    ERASED_ACCOUNT,
                    self.keys.blind_index(ERASED_ACCOUNT, &a),
                    subject_id,
                )),
                _ => None,
            })
            .collect();
        tx.insert_blind_index(&tombstones).await?;
        tx.clear_dsr_payloads(subject_id).await?;
        tx.mark_erased(subject_id, now).await?;
        tx.bump_facts_epoch().await?;
        Ok(ShredOutcome {
            destroyed_key_id: dek.key_id().to_string(),
            deleted_fields,
            deleted_categories,
            blind_index_entries_removed: removed,
        })
    }

    /// Deletes restricted fields whose retention period has ended (policy §4.2, §8.2), with one
    /// audit entry per subject. Returns how many fields were deleted.
    ///
    /// # Errors
    /// Store failures.
    pub async fn retention_sweep(&self, actor: &str) -> Result<i64, CoreError> {
        let now = self.clock.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let done = tx.delete_expired_restricted(now).await?;
        let mut total = 0;
        for (s, n) in &done {
            total += n;
            let mut rec = self.audit_base(actor, "retention.delete", now, None);
            rec.subject_id = Some(s.clone());
            rec.detail = Some(format!("fields={n}"));
            tx.audit(rec);
        }
        tx.commit().await?;
        Ok(total)
    }

    /// Creates an API key for `principal` with `roles` and `purposes`; returns the token, shown
    /// once. Only its SHA-256 is stored.
    ///
    /// # Errors
    /// `Invalid` for an unknown role or purpose or a malformed principal name.
    pub async fn create_api_key(
        &self,
        actor: &str,
        principal: &str,
        roles: &[String],
        purposes: &[String],
    ) -> Result<String, CoreError> {
        if !valid_name(principal) {
            return Err(CoreError::invalid(
                "principal",
                "principal_malformed",
                "1-128 characters of A-Z a-z 0-9 _ . : -",
            ));
        }
        for r in roles {
            if r != ROLE_APP && r != ROLE_ADMIN && !STAFF_ROLES.contains(&r.as_str()) {
                return Err(CoreError::invalid(
                    "roles",
                    "unknown_role",
                    "roles are app, admin, support, dpo and security",
                ));
            }
        }
        for p in purposes {
            if self.policy.purpose(p).is_none() {
                return Err(CoreError::invalid(
                    "purposes",
                    "unknown_purpose",
                    "purpose is not declared in the policy",
                ));
            }
        }
        let key_id = hex::encode(&uuid::Uuid::new_v4().as_bytes()[..8]);
        let secret = pivault_crypto::new_api_token();
        let token = format!("pvk.{key_id}.{secret}");
        let now = self.clock.now().unix_timestamp();
        let row = ApiKeyRow {
            key_id: key_id.clone(),
            principal: principal.into(),
            roles: roles.join(","),
            purposes: purposes.join(","),
            token_hash: pivault_crypto::token_hash(&token).to_vec(),
            created_at: now,
            revoked_at: None,
        };
        let mut tx = self.store.begin(now).await?;
        tx.insert_api_key(&row).await?;
        let mut rec = self.audit_base(actor, "apikey.create", now, None);
        rec.detail = Some(format!(
            "key_id={key_id} principal={principal} roles={} purposes={}",
            row.roles, row.purposes
        ));
        tx.audit(rec);
        tx.commit().await?;
        Ok(token)
    }

    /// Resolves a bearer token to its principal. Compares hashes in constant time.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed, unknown or revoked token.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, CoreError> {
        let mut parts = token.splitn(3, '.');
        let (Some("pvk"), Some(key_id), Some(_)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(CoreError::Unauthenticated);
        };
        if key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CoreError::Unauthenticated);
        }
        let h = pivault_crypto::token_hash(token);
        // Cache of recent successful authentications, keyed by the token's SHA-256: a lookup by
        // hash leaks nothing useful through timing (finding a match means a SHA-256 preimage).
        if let Ok(cache) = self.principals.lock() {
            if let Some((p, at)) = cache.get(&h) {
                if at.elapsed() < PRINCIPAL_CACHE_TTL {
                    return Ok(p.clone());
                }
            }
        }
        let row = self
            .store
            .api_key(key_id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if !pivault_crypto::ct_eq(&h, &row.token_hash) || row.revoked_at.is_some() {
            return Err(CoreError::Unauthenticated);
        }
        let split = |s: &str| {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let p = Principal {
            name: row.principal,
            roles: split(&row.roles),
            purposes: split(&row.purposes),
        };
        if let Ok(mut cache) = self.principals.lock() {
            if cache.len() > 10_000 {
                cache.retain(|_, (_, at)| at.elapsed() < PRINCIPAL_CACHE_TTL);
            }
            cache.insert(h, (p.clone(), std::time::Instant::now()));
        }
        Ok(p)
    }
}
