//! The result of a request: the package or receipt, as JSON or CSV; receipt verification.

use crate::dsr::aad;
use crate::dsr::kind_of;
use crate::dsr::ResultFormat;
use crate::dsr::RESULT_CATEGORY;
use crate::dsr::SUBJECT_ACTOR;
use crate::error::CoreError;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::vault::Vault;
use crate::Principal;
use base64::Engine as _;
use pivault_domain::dsr::{DsrKind, DsrState};
use pivault_store::DsrRow;
use serde_json::Value;

/// Converts a JSON package to CSV: `section,record,name,category,value,detail`.
pub(crate) fn package_csv(pkg: &Value) -> Result<Vec<u8>, CoreError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| CoreError::Io(std::io::Error::other(e.to_string()));
    w.write_record(["section", "record", "name", "category", "value", "detail"])
        .map_err(io)?;
    // Cells a spreadsheet would run as a formula get a leading apostrophe (OWASP "CSV
    // injection"): the package is opened by people, in spreadsheet programs.
    let text = |v: &Value| {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
            format!("'{s}")
        } else {
            s
        }
    };
    for rec in pkg["records"].as_array().into_iter().flatten() {
        for f in rec["fields"].as_array().into_iter().flatten() {
            w.write_record([
                "field",
                &text(&rec["record"]),
                &text(&f["name"]),
                &text(&f["category"]),
                &text(&f["value"]),
                &text(&f["type"]),
            ])
            .map_err(io)?;
        }
    }
    // Fields that failed authentication: where they are and the code, never a value.
    for f in pkg["failed"].as_array().into_iter().flatten() {
        w.write_record([
            "failed",
            &text(&f["record"]),
            &text(&f["name"]),
            &text(&f["category"]),
            "",
            &text(&f["code"]),
        ])
        .map_err(io)?;
    }
    // Ledger sections: one row per entry, the same four columns for both ledgers.
    for (section, keys) in [
        ("consents", ["action", "purpose", "at", "recipient"]),
        ("disclosures", ["action", "categories", "at", "recipient"]),
    ] {
        let label = section.trim_end_matches('s');
        for e in pkg[section].as_array().into_iter().flatten() {
            let [k1, k2, k3, k4] = keys.map(|k| text(&e[k]));
            w.write_record([label, "", &k1, &k2, &k3, &k4])
                .map_err(io)?;
        }
    }
    w.into_inner()
        .map_err(|e| CoreError::Io(std::io::Error::other(e.to_string())))
}

impl Vault {
    /// The requester's result (access package, copy, explanation) as JSON or CSV; the
    /// download is audited.
    ///
    /// # Errors
    /// `Forbidden` for a wrong token; `Conflict` (`dsr_not_completed`, `no_result` for kinds
    /// without one, `result_shredded` after the subject was erased); `Invalid` for CSV of an
    /// explanation.
    pub async fn dsr_result(
        &self,
        id: &str,
        token: &str,
        format: ResultFormat,
    ) -> Result<(Vec<u8>, &'static str), CoreError> {
        let row = self.dsr_for_requester(id, token).await?;
        self.dsr_result_of(&row, SUBJECT_ACTOR, format).await
    }

    /// A request's result for staff (the privacy office delivering it another way).
    ///
    /// # Errors
    /// As [`Vault::dsr_result`]; `Forbidden` without the admin or dpo role.
    pub async fn dsr_result_staff(
        &self,
        p: &Principal,
        id: &str,
        format: ResultFormat,
    ) -> Result<(Vec<u8>, &'static str), CoreError> {
        Self::require_dsr_staff(p)?;
        let row = self
            .store
            .dsr(id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        self.dsr_result_of(&row, &p.name, format).await
    }

    pub(crate) async fn dsr_result_of(
        &self,
        row: &DsrRow,
        actor: &str,
        format: ResultFormat,
    ) -> Result<(Vec<u8>, &'static str), CoreError> {
        let kind = kind_of(row)?;
        if row.state != DsrState::Completed.as_str() {
            return Err(CoreError::Conflict("dsr_not_completed"));
        }
        // A duplicate was answered by the request it duplicates (same subject, kind and
        // parameters, both verified): its result is that one's.
        if let Some(orig) = &row.duplicate_of {
            let o = self
                .store
                .dsr(orig)
                .await?
                .ok_or(CoreError::NotFound("dsr"))?;
            if o.subject_id == row.subject_id && o.duplicate_of.is_none() {
                return Box::pin(self.dsr_result_of(&o, actor, format)).await;
            }
        }
        match kind {
            DsrKind::Access | DsrKind::Copy | DsrKind::Explanation => {}
            DsrKind::Deletion | DsrKind::Cancellation => {
                if format == ResultFormat::Csv {
                    return Err(CoreError::invalid(
                        "format",
                        "format_unsupported",
                        "a signed receipt is JSON only",
                    ));
                }
                let r = row
                    .receipt
                    .clone()
                    .ok_or(CoreError::Conflict("no_result"))?;
                return Ok((r.into_bytes(), "application/json"));
            }
            _ => return Err(CoreError::Conflict("no_result")),
        }
        if format == ResultFormat::Csv && kind == DsrKind::Explanation {
            return Err(CoreError::invalid(
                "format",
                "format_unsupported",
                "an explanation is JSON only",
            ));
        }
        let subject = row
            .subject_id
            .as_deref()
            .ok_or(CoreError::Conflict("no_result"))?;
        let (key_id, sealed) = self
            .store
            .dsr_result(&row.id)
            .await?
            .ok_or(CoreError::Conflict("result_shredded"))?;
        let dek = self
            .sealer
            .dek(subject, SCOPE_PRIMARY)
            .await?
            .ok_or(CoreError::Conflict("result_shredded"))?;
        let plain = dek.open(&aad(subject, RESULT_CATEGORY, &row.id, &key_id), &sealed)?;
        let now = self.now().unix_timestamp();
        let mut rec = self.dsr_audit(actor, "result_downloaded", row, now);
        rec.detail = rec.detail.map(|d| {
            format!(
                "{d} format={}",
                if format == ResultFormat::Csv {
                    "csv"
                } else {
                    "json"
                }
            )
        });
        self.auditor.append(vec![rec]).await?;
        match format {
            ResultFormat::Json => Ok((plain[..].to_vec(), "application/json")),
            ResultFormat::Csv => {
                let v: Value = serde_json::from_slice(&plain[..])
                    .map_err(|_| CoreError::Conflict("package_corrupt"))?;
                Ok((package_csv(&v)?, "text/csv; charset=utf-8"))
            }
        }
    }
}
/// Verifies a signed receipt document (`{"payload": "...", "signature": base64, ...}`) with
/// `public_key` (Ed25519, RFC 8032, strict).
///
/// # Errors
/// A sentence saying what is wrong: not JSON, fields missing, bad base64, bad signature.
pub fn verify_receipt_json(text: &str, public_key: &[u8; 32]) -> Result<(), &'static str> {
    let v: Value = serde_json::from_str(text).map_err(|_| "not a JSON document")?;
    let payload = v["payload"].as_str().ok_or("no payload string")?;
    let sig = v["signature"].as_str().ok_or("no signature")?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig)
        .map_err(|_| "signature is not base64")?;
    let sig: [u8; 64] = sig.try_into().map_err(|_| "signature is not 64 bytes")?;
    pivault_crypto::verify_receipt(public_key, payload.as_bytes(), &sig)
        .map_err(|_| "signature does not match the payload and key")
}
