//! Subjects: creating PI subjects and writing their fields (one subject writer).

use crate::access::denial;
use crate::error::CoreError;
use crate::services::facts::Facts;
use crate::services::facts::DOB_CATEGORY;
use crate::services::principals::Principals;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::values::parse_date;
use crate::values::raw_str;
use crate::values::valid_name;
use crate::values::FieldValue;
use crate::vault::Vault;
use crate::FieldInput;
use crate::Principal;
use crate::ROLE_APP;
use pivault_crypto::Dek;
use pivault_domain::audit::AuditRecord;
use pivault_domain::consent::ConsentState;
use pivault_domain::decision::{decide, AccessRequest, Decision, SubjectFacts};
use pivault_domain::identifiers::{IdCardNumber, IdentifierKind};
use pivault_domain::policy::Category;
use pivault_store::{FieldRow, SubjectRow};
use std::collections::HashSet;
use std::sync::Arc;
use time::Date;
use tracing::instrument;

/// Blind-index kind of the suppression list of erased account ids.
pub(crate) const ERASED_ACCOUNT: &str = "erased_account_id";

pub(crate) const MAX_FIELDS_PER_REQUEST: usize = 256;

/// A new subject id: a UUID v7 (RFC 9562 §5.7), time-ordered, so the rows of new subjects
/// (`subjects`, `subject_keys`, `fields`, the `blind_index` and `audit_log` subject indexes)
/// land at the end of their B-trees instead of all over them. Ids drawn in one process grow
/// strictly (the `uuid` crate's shared v7 context); 74 of the 128 bits stay random. The id
/// shows when the subject was created (to the millisecond), which `subjects.created_at`
/// holds anyway; nothing reads the version or relies on the id being unguessable (every use
/// of a subject id is authenticated and decided).
pub(crate) fn new_subject_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) struct Prepared<'p> {
    pub(crate) category: &'p Category,
    pub(crate) record: String,
    pub(crate) name: String,
    pub(crate) value: FieldValue,
    pub(crate) ident: Option<(IdentifierKind, String)>,
}

impl Vault {
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
            // Record and field names are stored in clear, beside the sealed value.
            crate::values::refuse_pi_in_name(&format!("fields[{i}].record"), &record)?;
            crate::values::refuse_pi_in_name(&format!("fields[{i}].name"), &name)?;
            if !seen.insert((record.clone(), name.clone())) {
                return Err(CoreError::invalid(
                    format!("fields[{i}]"),
                    "duplicate_field",
                    "the same record and name appear twice",
                ));
            }
            let where_ = format!("fields[{i}].value");
            let (value, ident) = if let Some(kind) = category.identifier {
                let raw = raw_str(&f.value).ok_or_else(|| {
                    CoreError::invalid(
                        where_.clone(),
                        "value_wrong_type",
                        "identifier values must be strings",
                    )
                })?;
                let norm = kind
                    .normalize(&raw)
                    .map_err(|e| CoreError::invalid(where_.clone(), e.code, e.reason))?;
                (FieldValue::Text(norm.clone()), Some((kind, norm)))
            } else if category.key == DOB_CATEGORY {
                let d = raw_str(&f.value)
                    .as_deref()
                    .and_then(parse_date)
                    .ok_or_else(|| {
                        CoreError::invalid(
                            where_.clone(),
                            "date_malformed",
                            "expected a date as YYYY-MM-DD",
                        )
                    })?;
                (FieldValue::Text(d.to_string()), None)
            } else {
                let v = FieldValue::from_raw(&f.value, category.value_type)
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
    pub(crate) fn collection_refusal<'p>(d: &Decision<'p>) -> Option<Decision<'p>> {
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

    pub(crate) fn prepared_birth_date(prepared: &[Prepared<'_>]) -> Option<Date> {
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
        Principals::require_role(p, ROLE_APP)?;
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
        self.metrics.decision(&d);
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
                // Every blind-index generation lookups consult (a key rotation may be under way).
                let digests = self
                    .sealer
                    .keys()
                    .blind_indexes(IdentifierKind::AccountId.as_str(), norm);
                if !self
                    .store
                    .lookup_any(IdentifierKind::AccountId.as_str(), &digests)
                    .await?
                    .is_empty()
                {
                    return Err(CoreError::Conflict("account_exists"));
                }
                // The suppression list of erased accounts (PIPL Art. 47): the importer refuses
                // these rows with the same code. It keeps every generation that wrote to it.
                let erased = self.sealer.keys().blind_indexes_all(ERASED_ACCOUNT, norm);
                if !self
                    .store
                    .lookup_any(ERASED_ACCOUNT, &erased)
                    .await?
                    .is_empty()
                {
                    return Err(CoreError::Conflict("account_erased"));
                }
            }
        }
        let id = new_subject_id();
        let (dek, key_row) = self.sealer.new_dek(&id, SCOPE_PRIMARY, now);
        let rows: Vec<FieldRow> = prepared
            .iter()
            .map(|f| {
                Sealer::seal_row(
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
        let idx: Vec<(i64, &str, [u8; 32], &str)> = prepared
            .iter()
            .filter_map(|f| f.ident.as_ref())
            .map(|(k, n)| {
                let (g, d) = self.sealer.keys().blind_index_current(k.as_str(), n);
                (g, k.as_str(), d, id.as_str())
            })
            .collect();
        let mut tx = self.store.begin(now).await?;
        Self::refuse_if_ceased(&mut tx).await?;
        // Re-check under the write lock: another instance may have created the account since
        // the check above.
        for (_, kind, digest, _) in &idx {
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
            lock_case: None,
            lang: None,
        })
        .await?;
        tx.insert_keys(std::slice::from_ref(&key_row)).await?;
        tx.upsert_fields(&rows).await?;
        crate::services::sealer::insert_index(&mut tx, &idx).await?;
        let mut rec = self
            .auditor
            .base(&p.name, "subject.create", now, request_id);
        rec.subject_id = Some(id.clone());
        rec.purpose = Some(purpose.into());
        rec.outcome = "allow".into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = AuditRecord::join_categories(cats.iter().copied());
        rec.detail = Some(format!("kind={kind} fields={}", rows.len()));
        tx.audit(rec);
        tx.commit().await?;
        self.sealer.cache_dek(&id, SCOPE_PRIMARY, Arc::new(dek));
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
        Principals::require_role(p, ROLE_APP)?;
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
            .sealer
            .dek(subject_id, SCOPE_PRIMARY)
            .await?
            .ok_or(CoreError::Conflict("subject_key_missing"))?;
        let existing = self.store.fields(subject_id).await?;
        let (_, state) = self.facts.consent_state(subject_id, now_t).await?;
        let birth = Self::prepared_birth_date(&prepared)
            .or_else(|| Facts::birth_date_of(Some(&dek), &existing));
        let cats: Vec<&str> = prepared.iter().map(|f| f.category.key.as_str()).collect();
        let facts = SubjectFacts {
            consent: &state,
            birth_date: birth,
            erased: false,
            home_region: None,
        };
        let req = AccessRequest::use_of(purpose, &cats, &p.purposes);
        let d = decide(&self.policy, &facts, &req, now_t);
        self.metrics.decision(&d);
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
        Self::refuse_if_ceased(&mut tx).await?;
        if tx.subject_lock_case(subject_id).await?.is_some() && !p.has_role("security") {
            // A misuse report locked the subject (policy §8.7): nobody but security changes
            // its data until the case is released.
            return Err(CoreError::Conflict("subject_locked"));
        }
        let n = self
            .stage_field_writes(&mut tx, subject_id, &dek, &prepared, &existing, now)
            .await?;
        let mut rec = self.auditor.base(&p.name, "fields.put", now, request_id);
        rec.subject_id = Some(subject_id.into());
        rec.purpose = Some(purpose.into());
        rec.outcome = "allow".into();
        rec.reason = Some(d.reason.as_str().into());
        rec.legal_basis = d.legal_basis.map(|b| b.as_str().to_string());
        rec.categories = AuditRecord::join_categories(cats.iter().copied());
        rec.detail = Some(format!("fields={n}"));
        tx.audit(rec);
        tx.commit().await?;
        self.facts.changed(subject_id);
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
                Sealer::seal_row(
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
                    if let FieldValue::Text(s) = Sealer::open_row(dek, r)? {
                        idx_values.push((kind, s));
                    }
                }
            }
        }
        let idx: Vec<(i64, &str, [u8; 32], &str)> = idx_values
            .iter()
            .map(|(k, n)| {
                let (g, d) = self.sealer.keys().blind_index_current(k.as_str(), n);
                (g, k.as_str(), d, subject_id)
            })
            .collect();
        // Re-check under the write lock: another instance may have erased the subject since
        // the status was read above; its fields must not come back sealed under a shredded DEK.
        if tx.subject_status(subject_id).await?.as_deref() != Some("active") {
            return Err(CoreError::Conflict("subject_erased"));
        }
        // An account id belongs to one subject: checked under the write lock.
        for (_, kind, digest, _) in &idx {
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
        crate::services::sealer::insert_index(tx, &idx).await?;
        tx.bump_facts_epoch().await?;
        Ok(rows.len())
    }
}
