//! The steps of a request: package, explain, correct, withdraw, notify, receipt.

use crate::dsr::aad;
use crate::dsr::CorrectionInput;
use crate::dsr::PARAMS_CATEGORY;
use crate::dsr::RESULT_CATEGORY;
use crate::error::CoreError;
use crate::metrics::Door;
use crate::services::facts::Facts;
use crate::services::sealer::Sealer;
use crate::values::format_timestamp;
use crate::values::{FailedField, FIELD_INTEGRITY_FAILED};
use crate::vault::Vault;
use crate::FieldInput;
use base64::Engine as _;
use pivault_crypto::Dek;
use pivault_domain::audit::AuditRecord;
use pivault_domain::dsr::DsrKind;
use pivault_store::{ConsentRow, DsrRow, WriteTx};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use tracing::warn;
use zeroize::Zeroizing;

impl Vault {
    /// Access and copy (PIPL Art. 45): every field of the subject opened, by record, with the
    /// purposes, legal bases, retention and recipients of each category, the consent ledger
    /// and the disclosure ledger — sealed under the subject's DEK until downloaded. A field
    /// whose ciphertext fails authentication is listed under `failed` (record, name, category,
    /// `field_integrity_failed`; never a value) instead of stopping the package; each one is
    /// audited in the step's transaction and counted.
    pub(crate) async fn step_package(
        &self,
        tx: &mut WriteTx,
        actor: &str,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        if tx.subject_lock_case(subject).await?.is_some() {
            // A misuse report locked the subject (policy §8.7): no export until security
            // releases it (the request fails at this step and can be run again then).
            return Err(CoreError::Conflict("subject_locked"));
        }
        let dek = self.primary_dek(tx, subject).await?;
        let fields = tx.fields(subject).await?;
        let consents = tx.consent_events(subject).await?;
        let disclosures = tx.disclosures(Some(subject), i64::MIN, i64::MAX).await?;
        // Who accessed the PI (PIPL Art. 45; policy §8.1), newest first: the entries
        // `GET /v1/dsr/{id}/result` gives inclusion proofs for (issue 15).
        let history = tx.releases_of_subject(subject, 50).await?;
        let mut records: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut cats: BTreeSet<&str> = BTreeSet::new();
        let mut n = 0;
        let mut failed = Vec::new();
        for r in fields.iter().filter(|r| r.restricted_until.is_none()) {
            let Ok(v) = Sealer::open_row(&dek, r) else {
                failed.push(FailedField {
                    record: r.record.clone(),
                    name: r.name.clone(),
                    category: r.category.clone(),
                    code: FIELD_INTEGRITY_FAILED,
                });
                continue;
            };
            cats.insert(r.category.as_str());
            records.entry(r.record.as_str()).or_default().push(json!({
                "name": r.name,
                "category": r.category,
                "type": v.type_name(),
                "value": v.to_json(),
                "updated_at": format_timestamp(r.updated_at),
            }));
            n += 1;
        }
        let categories: Vec<Value> = cats
            .iter()
            .map(|c| self.category_explanation(c, &disclosures))
            .collect();
        let pkg = json!({
            "format": "pivault.access-package/1",
            "request_id": row.id,
            "kind": row.kind,
            "generated_at": format_timestamp(now),
            "policy": { "id": self.policy().id(), "version": self.policy().version() },
            "subject_id": subject,
            "records": records.into_iter().map(|(k, v)| json!({ "record": k, "fields": v })).collect::<Vec<_>>(),
            "failed": failed.iter().map(|x| json!({
                "record": x.record, "name": x.name, "category": x.category, "code": x.code,
            })).collect::<Vec<_>>(),
            "categories": categories,
            "consents": consents.iter().map(consent_json).collect::<Vec<_>>(),
            "disclosures": disclosures.iter().map(|d| json!({
                "action": d.action, "recipient": d.recipient, "purpose": d.purpose,
                "categories": d.categories, "legal_basis": d.legal_basis, "region": d.region,
                "at": format_timestamp(d.at),
            })).collect::<Vec<_>>(),
            "access_history": history.iter().map(|r| json!({
                "seq": r.seq, "at": format_timestamp(r.at), "principal": r.actor,
                "action": r.action, "purpose": r.purpose, "categories": r.categories,
            })).collect::<Vec<_>>(),
        });
        self.seal_result(tx, row, subject, &dek, &pkg).await?;
        for rec in self.integrity_failures(actor, subject, Door::DsrPackage, &failed, now, None) {
            tx.audit(rec);
        }
        Ok(
            json!({ "fields": n, "failed": failed.len(), "categories": cats.len(), "consents": consents.len(), "disclosures": disclosures.len() }),
        )
    }

    pub(crate) async fn seal_result(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        dek: &Dek,
        v: &Value,
    ) -> Result<(), CoreError> {
        let bytes = Zeroizing::new(
            serde_json::to_vec(v).map_err(|_| CoreError::Conflict("package_encoding"))?,
        );
        let sealed = dek.seal(
            &aad(subject, RESULT_CATEGORY, &row.id, dek.key_id()),
            &bytes,
        );
        tx.set_dsr_result(&row.id, dek.key_id(), &sealed).await?;
        Ok(())
    }

    /// One category explained (PIPL Art. 48; Art. 17 items): purposes and their legal
    /// basis, retention, declared recipients, and what was actually disclosed.
    pub(crate) fn category_explanation(
        &self,
        key: &str,
        disclosures: &[pivault_store::DisclosureRow],
    ) -> Value {
        let policy = self.policy();
        let Some(c) = policy.category(key) else {
            return json!({ "key": key });
        };
        let purposes: Vec<Value> = policy
            .purposes()
            .iter()
            .filter(|p| p.allows(key))
            .map(|p| json!({ "id": p.id, "name": p.name, "legal_basis": p.legal_basis.as_str(), "clause": p.clause, "separate_consent": p.separate_consent }))
            .collect();
        let recipients: Vec<Value> = policy
            .recipients()
            .iter()
            .filter(|r| r.receives(key))
            .map(|r| json!({ "id": r.id, "name": r.name, "kind": r.kind.as_str(), "entrusted": r.entrusted, "region": r.region }))
            .collect();
        let disclosed = disclosures
            .iter()
            .filter(|d| d.categories.split(',').any(|x| x == key))
            .count();
        json!({
            "key": c.key,
            "name": c.name,
            "sensitivity": c.sensitivity,
            "clause": c.clause,
            "purposes": purposes,
            "retention": c.retention.as_ref().map(|r| json!({
                "keep_for_days": r.keep_for.days(),
                "legal_minimum_days": r.legal_minimum.map(pivault_domain::RetentionPeriod::days),
                "clock": r.clock.as_str(),
                "end": r.end.as_str(),
                "basis": r.basis,
                "clause": r.clause,
            })),
            "storage_region": policy.storage_region(),
            "recipients": recipients,
            "disclosures": disclosed,
        })
    }

    /// Explanation of the processing rules (PIPL Art. 48): for each category held about the
    /// subject, why, on which basis, how long and to whom; no PI values.
    pub(crate) async fn step_explain(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let dek = self.primary_dek(tx, subject).await?;
        let fields = tx.fields(subject).await?;
        let disclosures = tx.disclosures(Some(subject), i64::MIN, i64::MAX).await?;
        let cats: BTreeSet<&str> = fields
            .iter()
            .filter(|r| r.restricted_until.is_none())
            .map(|r| r.category.as_str())
            .collect();
        let doc = json!({
            "format": "pivault.explanation/1",
            "request_id": row.id,
            "generated_at": format_timestamp(now),
            "policy": { "id": self.policy().id(), "version": self.policy().version(), "title": self.policy().title() },
            "categories": cats.iter().map(|c| self.category_explanation(c, &disclosures)).collect::<Vec<_>>(),
            "rights": DsrKind::ALL.iter().map(|k| json!({ "kind": k.as_str(), "article": k.article(), "policy_section": k.policy_section() })).collect::<Vec<_>>(),
            "automated_decision_making": "none",
        });
        self.seal_result(tx, row, subject, &dek, &doc).await?;
        Ok(json!({ "categories": cats.len() }))
    }

    /// Correction (PIPL Art. 46): opens the sealed corrections and writes them like a field
    /// put (identifiers re-indexed), then drops the sealed parameters.
    pub(crate) async fn step_correct(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<(usize, Vec<String>), CoreError> {
        let dek = self.primary_dek(tx, subject).await?;
        let sealed = row
            .sealed_params
            .as_deref()
            .ok_or(CoreError::Conflict("correction_missing"))?;
        let plain = dek.open(
            &aad(subject, PARAMS_CATEGORY, &row.id, dek.key_id()),
            sealed,
        )?;
        let corrections: Vec<CorrectionInput> = serde_json::from_slice(&plain[..])
            .map_err(|_| CoreError::Conflict("correction_corrupt"))?;
        let existing = tx.fields(subject).await?;
        // "Correct my mobile": without a field name, the correction replaces the record's one
        // field of that category, whatever the name it was stored under (an import names
        // fields after its columns).
        let inputs: Vec<FieldInput> = corrections
            .iter()
            .map(|c| {
                let mut f = to_field_input(c);
                if f.name.is_none() {
                    let record = f.record.as_deref().unwrap_or("profile");
                    let mut same = existing.iter().filter(|r| {
                        r.record == record
                            && r.category == f.category
                            && r.restricted_until.is_none()
                    });
                    if let (Some(r), None) = (same.next(), same.next()) {
                        f.name = Some(r.name.clone());
                    }
                }
                f
            })
            .collect();
        let prepared = self.prepare(&inputs)?;
        let n = self
            .stage_field_writes(tx, subject, &dek, &prepared, &existing, now)
            .await?;
        let mut cats: Vec<String> = corrections.iter().map(|c| c.category.clone()).collect();
        cats.sort();
        cats.dedup();
        Ok((n, cats))
    }

    /// Consent withdrawal (PIPL Art. 15; §7.2): a withdraw event for each requested purpose
    /// (or every consent in force, with its recipient scope), idempotent per request.
    pub(crate) async fn step_withdraw(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let params: Value = serde_json::from_str(&row.params).unwrap_or_default();
        let (_, state) = Facts::consent_state_in(tx, subject, self.now()).await?;
        let mut targets: BTreeSet<(String, Option<String>)> = BTreeSet::new();
        match params["purposes"].as_array() {
            Some(ps) => {
                for p in ps.iter().filter_map(Value::as_str) {
                    targets.insert((p.to_string(), None));
                }
            }
            None => {
                for p in state.active_purposes() {
                    targets.insert((p.to_string(), None));
                }
            }
        }
        for (p, r, _) in state.active_recipient_consents() {
            if params["purposes"]
                .as_array()
                .is_none_or(|ps| ps.iter().any(|x| x.as_str() == Some(p)))
            {
                targets.insert((p.to_string(), Some(r.to_string())));
            }
        }
        let rows: Vec<ConsentRow> = targets
            .iter()
            .map(|(p, r)| ConsentRow {
                seq: 0,
                event_ref: format!("dsr:{}:{}:{}", row.id, p, r.as_deref().unwrap_or("-")),
                subject_id: subject.to_string(),
                purpose: p.clone(),
                action: "withdraw".into(),
                at: now,
                given_by: "self".into(),
                method: "dsr".into(),
                separate: false,
                policy_version: self.policy().version().to_string(),
                recorded_at: now,
                recipient: r.clone(),
            })
            .collect();
        let n = tx.insert_consents(&rows).await?;
        tx.bump_facts_epoch().await?;
        Ok(
            json!({ "withdrawn": targets.iter().map(|(p, r)| json!({ "purpose": p, "recipient": r })).collect::<Vec<_>>(), "events": n }),
        )
    }

    /// Tells every recipient in the disclosure ledger to delete what it received
    /// (GB/T 35273-2020 §8.3; PIPL Art. 47): one erasure notice per recipient.
    pub(crate) async fn step_notify(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        actor: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let disclosures = tx.disclosures(Some(subject), i64::MIN, i64::MAX).await?;
        let mut by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for d in &disclosures {
            if let Some(r) = d.recipient.as_deref().filter(|r| *r != "public") {
                by.entry(r)
                    .or_default()
                    .extend(d.categories.split(',').filter(|c| !c.is_empty()));
            }
        }
        let mut outbox = Vec::with_capacity(by.len());
        for (r, cats) in &by {
            let joined = AuditRecord::join_categories(cats.iter().copied());
            tx.insert_erasure_notice(&row.id, r, subject, &joined, now)
                .await?;
            // Delivered to the recipient's webhook, signed, by the outbox (PIPL Art. 47).
            outbox.push(crate::messages::Enqueue {
                kind: crate::messages::kind::ERASURE,
                subject_id: Some(subject.to_string()),
                target: format!("recipient:{r}"),
                cause: row.id.clone(),
                lang: "en".into(),
                params: Some(json!({
                    "categories": cats.iter().collect::<Vec<_>>(),
                    "erased_at": format_timestamp(now),
                })),
            });
            let mut rec = self.dsr_audit(actor, "recipient_notified", row, now);
            rec.action = "recipient.erasure_notice".into();
            rec.categories = joined;
            rec.detail = rec.detail.map(|d| format!("{d} recipient={r}"));
            tx.audit(rec);
        }
        self.enqueue(tx, &outbox, now).await?;
        Ok(json!({ "recipients": by.keys().collect::<Vec<_>>() }))
    }

    /// The signed deletion receipt: refuses (the step fails) while anything of the subject is
    /// left outside retention — a half-deleted subject is never reported complete.
    pub(crate) async fn step_receipt(
        &self,
        tx: &mut WriteTx,
        row: &mut DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let (fields, keys, index) = tx.erasure_leftovers(subject).await?;
        if fields + keys + index != 0 {
            warn!(dsr = %row.id, fields, keys, index, "erasure incomplete; no receipt");
            return Err(CoreError::Conflict("erasure_incomplete"));
        }
        let results: Value = serde_json::from_str(&row.step_results).unwrap_or_default();
        let params: Value = serde_json::from_str(&row.params).unwrap_or_default();
        let signer = self.sealer.keys().receipt_signer();
        let payload = json!({
            "format": "pivault.deletion-receipt/1",
            "request_id": row.id,
            "kind": row.kind,
            "subject_id": subject,
            "ground": params["ground"],
            "received_at": format_timestamp(row.received_at),
            "completed_at": format_timestamp(now),
            "policy_version": self.policy().version(),
            "deleted": results["shred"],
            "retained": results["restrict_retained"]["retained"],
            "consents_withdrawn": results["withdraw"]["withdrawn"],
            "recipients_notified": results["notify_recipients"]["recipients"],
            "signing_key_id": signer.key_id(),
        });
        let payload =
            serde_json::to_string(&payload).map_err(|_| CoreError::Conflict("receipt_encoding"))?;
        let sig = signer.sign(payload.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD;
        let receipt = json!({
            "payload": payload,
            "signature": b64.encode(sig),
            "public_key": b64.encode(signer.public_key()),
            "algorithm": "Ed25519",
        });
        row.receipt = Some(receipt.to_string());
        Ok(json!({ "signed": true }))
    }
}
pub(crate) fn to_field_input(c: &CorrectionInput) -> FieldInput {
    FieldInput {
        category: c.category.clone(),
        name: c.name.clone(),
        record: c.record.clone(),
        value: c.value.clone(),
    }
}

pub(crate) fn consent_json(c: &ConsentRow) -> Value {
    json!({
        "purpose": c.purpose, "action": c.action, "at": format_timestamp(c.at),
        "given_by": c.given_by, "method": c.method, "separate": c.separate,
        "policy_version": c.policy_version, "recipient": c.recipient,
    })
}
