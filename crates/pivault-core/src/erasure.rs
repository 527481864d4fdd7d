//! Erasure (PIPL Art. 47): restrict retained data, crypto-shred the rest, sweep expired retention.

use crate::error::CoreError;
use crate::services::principals::Principals;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::services::sealer::SCOPE_RESTRICTED;
use crate::subjects::ERASED_ACCOUNT;
use crate::values::FieldValue;
use crate::vault::Vault;
use crate::Principal;
use crate::ROLE_ADMIN;
use pivault_crypto::Dek;
use pivault_domain::erasure::ErasureGround;
use pivault_domain::identifiers::IdentifierKind;
use pivault_store::WriteTx;
use std::collections::BTreeMap;
use std::sync::Arc;
use tracing::instrument;

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
    /// The deletion request that carried the erasure out (`GET /v1/dsr/{id}` shows it).
    pub request_id: String,
    /// The signed deletion receipt (JSON text: `payload`, `signature`, `public_key`,
    /// `algorithm`; Ed25519, RFC 8032), as `pivault dsr verify-receipt` checks it.
    pub signed_receipt: String,
}

/// What [`Vault::stage_shred`] destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShredOutcome {
    pub(crate) destroyed_key_id: String,
    pub(crate) deleted_fields: u64,
    pub(crate) deleted_categories: Vec<String>,
    pub(crate) blind_index_entries_removed: u64,
}

impl Vault {
    /// Erases a subject by crypto-shredding (PIPL Art. 47; policy §7.1, §4.2), through the
    /// same steps as a deletion request: the privacy office files one on its own authority
    /// ([`Vault::dsr_file_erasure`]) and runs it — restrict retained data (orders: ≥ 3 years
    /// after the transaction, re-sealed under a `restricted` DEK with their release instant),
    /// shred (every other field deleted, the primary DEK destroyed, blind-index entries
    /// removed, the account id put on the suppression list), notify the recipients the
    /// subject's data was provided to, and a signed receipt. Each step is one transaction
    /// with its audit entry; a failed step leaves the request `failed(step)` in the queue.
    ///
    /// # Errors
    /// `Forbidden` without the admin role; `NotFound`;
    /// `Conflict` (`already_erased`) if already erased (also when another erasure won the
    /// race); `subject_locked` (423) while a misuse case locks the subject (policy §8.7);
    /// `erasure_incomplete` (500) when a step failed — the request can be resumed with
    /// `POST /v1/dsr/{id}/run`.
    #[instrument(skip_all, fields(principal = %p.name, subject_id = %subject_id))]
    pub async fn erase_subject(
        &self,
        p: &Principal,
        subject_id: &str,
        ground: ErasureGround,
        _request_id: Option<&str>,
    ) -> Result<ErasureReceipt, CoreError> {
        Principals::require_role(p, ROLE_ADMIN)?;
        let subject = self
            .store
            .subject(subject_id)
            .await?
            .ok_or(CoreError::NotFound("subject"))?;
        if subject.status != "active" {
            return Err(CoreError::Conflict("already_erased"));
        }
        if subject.lock_case.is_some() {
            // A misuse report locked the subject (policy §8.7): the data is what the
            // investigation reads, so it is not destroyed until security releases the case.
            return Err(CoreError::Conflict("subject_locked"));
        }
        let id = self
            .dsr_file_erasure(p, subject_id, ground.as_str())
            .await?;
        self.dsr_run(p, &id).await?;
        let row = self
            .store
            .dsr(&id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        let results: serde_json::Value =
            serde_json::from_str(&row.step_results).unwrap_or_default();
        if results["shred"]["already_erased"] == true {
            return Err(CoreError::Conflict("already_erased"));
        }
        let (Some(receipt), Some(done)) = (row.receipt.clone(), row.completed_at) else {
            return Err(CoreError::Conflict("erasure_incomplete"));
        };
        let shred = &results["shred"];
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let retained = results["restrict_retained"]["retained"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| RetainedCategory {
                        category: r["category"].as_str().unwrap_or_default().to_string(),
                        fields: r["fields"].as_u64().unwrap_or_default(),
                        until: r["until"]
                            .as_str()
                            .and_then(|t| crate::values::parse_timestamp(t).ok())
                            .unwrap_or_default(),
                        basis: r["basis"].as_str().unwrap_or_default().to_string(),
                        clause: r["clause"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ErasureReceipt {
            subject_id: subject_id.into(),
            erased_at: done,
            destroyed_key_id: shred["destroyed_key_id"]
                .as_str()
                .unwrap_or_default()
                .into(),
            deleted_fields: shred["deleted_fields"].as_u64().unwrap_or_default(),
            deleted_categories: strings(&shred["deleted_categories"]),
            retained,
            blind_index_entries_removed: shred["blind_index_entries_removed"]
                .as_u64()
                .unwrap_or_default(),
            request_id: id,
            signed_receipt: receipt,
        })
    }

    /// Forgets every cached key and decision fact of a subject whose DEK was destroyed.
    pub(crate) fn shredded(&self, subject_id: &str) {
        self.facts.changed(subject_id);
        self.sealer.forget(subject_id);
    }

    /// Erasure, first half (PIPL Art. 47 para 2; §4.2): fields of categories under a legal
    /// retention period still running are re-sealed under the subject's `restricted` DEK with
    /// their release instant (the record's own event time, e.g. `paid_at`, + the `legal_minimum`).
    /// Staged in `tx`; returns what was retained. Rows already restricted are left alone, so a
    /// resumed erasure never re-seals twice. Only the fields that can be retained are read: those
    /// of categories with a legal minimum or under a legal hold, or every field when a hold
    /// names the subject.
    ///
    /// # Errors
    /// Crypto failure opening a row; store failure.
    pub(crate) async fn stage_restrict(
        &self,
        tx: &mut WriteTx,
        subject_id: &str,
        dek: &Dek,
        now: i64,
    ) -> Result<Vec<RetainedCategory>, CoreError> {
        // Legal holds override the deletion (issue 12): held rows are kept restricted, until
        // at least now; the sweep leaves them while the hold lasts and acts once it is released.
        let holds = tx.holds(true).await?;
        let rows = if holds
            .iter()
            .any(|h| h.subject_id.as_deref() == Some(subject_id))
        {
            tx.fields(subject_id).await?
        } else {
            let mut cats: Vec<&str> = self
                .policy
                .categories()
                .iter()
                .filter(|c| c.legal_minimum().is_some())
                .map(|c| c.key.as_str())
                .chain(holds.iter().filter_map(|h| h.category.as_deref()))
                .collect();
            cats.sort_unstable();
            cats.dedup();
            tx.fields_in(subject_id, &cats).await?
        };
        // Release instant per record: the record's own event time (e.g. paid_at) + the legal minimum.
        let mut anchor: BTreeMap<String, i64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.restricted_until.is_none()) {
            let Some(c) = self.policy.category(&r.category) else {
                continue;
            };
            if c.legal_minimum().is_some() {
                if let Ok(FieldValue::Timestamp(t)) = Sealer::open_row(dek, r) {
                    let e = anchor.entry(r.record.clone()).or_insert(t);
                    *e = (*e).max(t);
                }
            }
        }
        let mut rdek: Option<Arc<Dek>> = None;
        let mut retained: BTreeMap<String, RetainedCategory> = BTreeMap::new();
        let mut resealed = Vec::new();
        let hold_of = |cat: &str| {
            holds.iter().find(|h| {
                h.subject_id.as_deref() == Some(subject_id) || h.category.as_deref() == Some(cat)
            })
        };
        for r in rows {
            if r.restricted_until.is_some() {
                continue;
            }
            let legal = self
                .policy
                .category(&r.category)
                .and_then(|c| c.legal_minimum());
            let hold = hold_of(&r.category);
            let legal_until = legal.map(|rt| {
                anchor.get(&r.record).copied().unwrap_or(now)
                    + rt.legal_minimum_seconds().unwrap_or(0)
            });
            let (until, basis, clause) = match (hold, legal, legal_until) {
                (Some(h), _, lu) => (
                    lu.unwrap_or(now).max(now),
                    format!(
                        "legal hold {}: kept until the hold is released (the date is the earliest end)",
                        h.reference
                    ),
                    "PIPL Art. 47 para. 2".to_string(),
                ),
                (None, Some(rt), Some(lu)) if lu > now => (lu, rt.basis.clone(), rt.clause.clone()),
                _ => continue,
            };
            if rdek.is_none() {
                rdek = Some(
                    match self.sealer.dek_in(tx, subject_id, SCOPE_RESTRICTED).await? {
                        Some(d) => d,
                        None => {
                            let (d, row) = self.sealer.new_dek(subject_id, SCOPE_RESTRICTED, now);
                            tx.insert_keys(std::slice::from_ref(&row)).await?;
                            Arc::new(d)
                        }
                    },
                );
            }
            let Some(rd) = rdek.as_deref() else {
                continue;
            };
            let Ok(v) = Sealer::open_row(dek, &r) else {
                // A field that fails authentication cannot be re-sealed: it stays unrestricted
                // and is shredded with the primary DEK. Audited and counted, never blocking
                // the erasure (issue 11, defect 5).
                let failed = [crate::values::FailedField {
                    record: r.record.clone(),
                    name: r.name.clone(),
                    category: r.category.clone(),
                    code: crate::values::FIELD_INTEGRITY_FAILED,
                }];
                for rec in self.integrity_failures(
                    "dsr:restrict_retained",
                    subject_id,
                    crate::metrics::Door::Erasure,
                    &failed,
                    now,
                    None,
                ) {
                    tx.audit(rec);
                }
                continue;
            };
            let sealed = Sealer::seal_row(
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
                    basis: basis.clone(),
                    clause: clause.clone(),
                });
            e.fields += 1;
            e.until = e.until.max(until);
            resealed.push(sealed);
        }
        if !resealed.is_empty() {
            tx.upsert_fields(&resealed).await?;
        }
        Ok(retained.into_values().collect())
    }

    /// Erasure, second half (PIPL Art. 47; §7.1): destroys the primary DEK (crypto-shredding),
    /// deletes every unrestricted field and blind-index entry, adds the erased account id to
    /// the suppression list, drops sealed request payloads and marks the subject erased — staged
    /// in `tx`, with a facts-epoch bump. Call [`Vault::shredded`] after the commit. Reads only
    /// the categories it deletes and the account-id fields (to suppress them), not every field.
    ///
    /// # Errors
    /// Store failure.
    pub(crate) async fn stage_shred(
        &self,
        tx: &mut pivault_store::WriteTx,
        subject_id: &str,
        dek: &Dek,
        now: i64,
    ) -> Result<ShredOutcome, CoreError> {
        let deleted_categories = tx.live_categories(subject_id).await?;
        let account_categories: Vec<&str> = self
            .policy
            .categories()
            .iter()
            .filter(|c| c.identifier == Some(IdentifierKind::AccountId))
            .map(|c| c.key.as_str())
            .collect();
        let rows = tx.fields_in(subject_id, &account_categories).await?;
        tx.delete_key(subject_id, SCOPE_PRIMARY).await?;
        let deleted_fields = tx.delete_unrestricted_fields(subject_id).await?;
        // Records shredded whole leave the retention clock too; restricted ones keep theirs.
        tx.delete_orphan_retention_items(subject_id).await?;
        let removed = tx.delete_blind_index(subject_id, None).await?;
        // Suppression list: a keyed hash of the erased account id (not the id), so that a
        // re-run of an import cannot bring the person back (PIPL Art. 47: erased means gone).
        // An account id kept restricted (a legal hold) is suppressed too: it is opened with the
        // restricted DEK staged in this transaction.
        let mut rdek: Option<Arc<Dek>> = None;
        let mut tombstones: Vec<(i64, &str, [u8; 32], &str)> = Vec::new();
        for r in &rows {
            let opened = if r.restricted_until.is_none() {
                Sealer::open_row(dek, r)
            } else {
                if rdek.is_none() {
                    rdek = self.sealer.dek_in(tx, subject_id, SCOPE_RESTRICTED).await?;
                }
                match rdek.as_deref() {
                    Some(rd) => Sealer::open_row(rd, r),
                    None => continue,
                }
            };
            if let Ok(FieldValue::Text(a)) = opened {
                let (g, d) = self.sealer.keys().blind_index_current(ERASED_ACCOUNT, &a);
                tombstones.push((g, ERASED_ACCOUNT, d, subject_id));
            }
        }
        crate::services::sealer::insert_index(tx, &tombstones).await?;
        tx.clear_dsr_payloads(subject_id).await?;
        // The cookie choices made signed in stay with their browser's random id, unlinked.
        tx.unlink_cookie_subject(subject_id).await?;
        tx.mark_erased(subject_id, now).await?;
        tx.bump_facts_epoch().await?;
        Ok(ShredOutcome {
            destroyed_key_id: dek.key_id().to_string(),
            deleted_fields,
            deleted_categories,
            blind_index_entries_removed: removed,
        })
    }

    /// The retention sweep run to the end ([`Vault::sweep`] with default options); returns
    /// the field rows deleted.
    ///
    /// # Errors
    /// As [`Vault::sweep`].
    pub async fn retention_sweep(&self, actor: &str) -> Result<i64, CoreError> {
        let opts = crate::retention::SweepOptions {
            actor: actor.to_string(),
            ..crate::retention::SweepOptions::default()
        };
        let rep = self.sweep(&opts, &|_| {}).await?;
        Ok(i64::try_from(rep.fields_deleted).unwrap_or(i64::MAX))
    }
}
