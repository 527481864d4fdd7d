//! Records of existing subjects: orders, face templates, ICP filings, support tickets.

use super::common::*;
use super::pipeline::{par_map, BatchWrite, Inflight, Writer};
use super::reader::*;
use crate::error::CoreError;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::values::{parse_decimal, parse_timestamp, FieldValue};
use base64::Engine as _;
use pivault_domain::identifiers::{AccountId, IdCardNumber, Mobile};
use pivault_domain::policy::ValueType;
use pivault_store::RetentionItem;
use std::collections::HashSet;
use std::sync::Arc;

/// A parsed record row: subject account, record id, fields.
pub(crate) struct RecordRow {
    pub(crate) line: u64,
    pub(crate) account: String,
    pub(crate) record: String,
    pub(crate) fields: Fields,
    /// Optional columns the row lacked: the row is kept, and each is written to the file's
    /// warnings (`<file>.warnings.csv`, line and column) and counted in the report.
    pub(crate) missing: Vec<&'static str>,
    /// When the record's event happened (an order's payment, a ticket's filing, a web-log
    /// request): the start of its retention clock when its category's clock is per record
    /// (`transaction`, `collected`; policy §4.2). `None`: the import time.
    pub(crate) event_at: Option<i64>,
    /// Set for records that show the subject was active then (web-log lines): moves the
    /// subject's `last_active_at` forward (the `last_activity` clock).
    pub(crate) activity_at: Option<i64>,
}

/// One batch from a record file: parsed rows, rejects (malformed or invalid rows), and how
/// many source rows it covered (0 = end of file).
pub(crate) type RecordBatch = (Vec<RecordRow>, Vec<Reject>, u64);

/// Shared driver for CSV files whose rows become one record of an existing account's subject.
pub(crate) async fn import_records(
    ctx: &Ctx<'_>,
    file: &'static str,
    required: &[&str],
    categories: &[&str],
    purpose: &'static str,
    parse: fn(&Cols, &Row) -> Result<RecordRow, Reject>,
) -> Result<FileReport, CoreError> {
    ctx.check_categories(categories)?;
    let mut b = Batches::open(&ctx.dir.join(file), required)?;
    let total = b.total();
    drive_records(ctx, file, purpose, total, move || {
        let (rows, mut bad) = b.next()?;
        let n = (rows.len() + bad.len()) as u64;
        let mut good = Vec::with_capacity(rows.len());
        for r in &rows {
            match parse(&b.cols, r) {
                Ok(x) => good.push(x),
                Err(e) => bad.push(e),
            }
        }
        Ok((good, bad, n))
    })
    .await
}

/// Lands record rows batch by batch (from CSV or JSON Lines): unknown accounts and erased
/// subjects are rejects, records already present (or earlier in the file) are skipped, the
/// rest are sealed under the subject's DEK in one transaction per batch.
pub(crate) async fn drive_records(
    ctx: &Ctx<'_>,
    file: &'static str,
    purpose: &'static str,
    total: u64,
    mut next_batch: impl FnMut() -> Result<RecordBatch, CoreError> + Send,
) -> Result<FileReport, CoreError> {
    let mut rej = Rejects::new(ctx.rejects_dir, file);
    let mut warn = Rejects::warnings(ctx.rejects_dir, file);
    let mut rep = FileReport {
        file: file.into(),
        ..FileReport::default()
    };
    ctx.progress.start(file, total);
    let mut inflight: Inflight<(String, String)> = Inflight::new();
    let mut writer = Writer::new(ctx.vault, ctx.now);
    loop {
        let (good, bad, n) = next_batch()?;
        if n == 0 {
            break;
        }
        for r in &bad {
            rej.write(r)?;
        }
        rep.rejected += bad.len() as u64;
        let accounts: Vec<String> = good.iter().map(|g| g.account.clone()).collect();
        let subjects = ctx.subjects_by_account(&accounts).await?;
        let pairs: Vec<(&str, &str)> = good
            .iter()
            .filter_map(|g| {
                subjects
                    .get(&g.account)
                    .map(|s| (s.as_str(), g.record.as_str()))
            })
            .collect();
        let existing: HashSet<(String, String)> = ctx
            .vault
            .store
            .existing_records(&pairs)
            .await?
            .into_iter()
            .collect();
        let subject_ids: Vec<&str> = subjects.values().map(String::as_str).collect();
        let deks = ctx
            .vault
            .sealer
            .deks_many(&subject_ids, SCOPE_PRIMARY)
            .await?;
        let mut w = BatchWrite::default();
        let mut to_seal = Vec::with_capacity(good.len());
        let mut seen = HashSet::new();
        for g in good {
            let Some(subject) = subjects.get(&g.account) else {
                rej.write(&reject(
                    g.line,
                    "account_id",
                    "unknown_account",
                    "no imported account has this account id",
                ))?;
                rep.rejected += 1;
                continue;
            };
            let key = (subject.clone(), g.record.clone());
            // Present: committed before this batch's lookups, landed by the batch in flight,
            // or earlier in this batch.
            if existing.contains(&key) || inflight.contains(&key) || !seen.insert(key.clone()) {
                rep.skipped += 1;
                continue;
            }
            let Some(dek) = deks.get(subject) else {
                rej.write(&reject(
                    g.line,
                    "account_id",
                    "subject_erased",
                    "the account was erased",
                ))?;
                rep.rejected += 1;
                continue;
            };
            inflight.add(key);
            // The record's retention clock, when its governing (first) category counts per
            // record (policy §4.2): the sweep finds it by `event_at` without opening it.
            if let Some((cat, _, _)) = g.fields.first() {
                let per_record = ctx
                    .vault
                    .policy()
                    .category(cat)
                    .and_then(|c| c.retention.as_ref())
                    .is_some_and(|r| r.clock.is_per_record());
                if per_record {
                    w.items.push(RetentionItem {
                        subject_id: subject.clone(),
                        record: g.record.clone(),
                        category: (*cat).to_string(),
                        event_at: g.event_at.unwrap_or(ctx.now),
                    });
                }
            }
            if let Some(at) = g.activity_at {
                w.activity.push((subject.clone(), at));
            }
            w.audits.push(ctx.audit(
                "fields.put",
                subject,
                purpose,
                &g.fields,
                format!("source={file} line={} record={}", g.line, g.record),
            ));
            for &col in &g.missing {
                warn.write(&reject(
                    g.line,
                    col,
                    "field_missing",
                    "an optional field is missing; the row was kept without it",
                ))?;
                rep.warnings += 1;
            }
            rep.imported += 1;
            to_seal.push((subject.clone(), Arc::clone(dek), g));
        }
        let now = ctx.now;
        let sealed = par_map(to_seal, move |(subject, dek, g)| {
            g.fields
                .iter()
                .map(|(cat, name, v)| {
                    Sealer::seal_row(&dek, &subject, &g.record, name, cat, v, None, now)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        w.fields = sealed.into_iter().flatten().collect();
        if w.fields.is_empty() {
            // Nothing to write (as before: no transaction for a batch without fields).
            w = BatchWrite::default();
        }
        // Always submitted (an empty batch writes nothing): it waits for the batch in flight,
        // which `inflight` stops covering here.
        writer.submit(w).await?;
        inflight.submitted();
        ctx.progress.advance(n);
    }
    writer.finish().await?;
    rej.finish()?;
    warn.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

pub(crate) fn record_id(v: &str, l: u64, col: &'static str) -> Result<String, Reject> {
    let t = v.trim();
    if t.is_empty()
        || t.len() > 64
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(reject(
            l,
            col,
            "record_id_malformed",
            "id is 1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    Ok(t.to_string())
}

pub(crate) fn account_of(c: &Cols, r: &Row) -> Result<String, Reject> {
    AccountId::parse(c.get(r, "account_id"))
        .map(|a| a.as_str().to_string())
        .map_err(|e| reject(r.line, "account_id", e.code, e.reason))
}

pub(crate) async fn import_orders(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    import_records(
        ctx,
        "orders.csv",
        &["order_id", "account_id", "product", "amount_cny", "paid_at"],
        &[
            "user.transaction.order",
            "user.transaction.amount",
            "user.transaction.paid_at",
            "user.transaction.invoice",
        ],
        "legal_obligation",
        parse_order,
    )
    .await
}

pub(crate) async fn import_faces(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    import_records(
        ctx,
        "face_templates.csv",
        &["account_id", "enrolled_at", "template_f32x128_b64"],
        &["user.biometric.face"],
        "biometric_login",
        parse_face,
    )
    .await
}

pub(crate) async fn import_icp(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    import_records(
        ctx,
        "icp_filings.csv",
        &[
            "filing_id",
            "account_id",
            "entity_name",
            "person_in_charge",
            "person_id_card_number",
            "person_mobile",
            "domain",
            "submitted_at",
        ],
        &[
            "user.icp.filing",
            "user.name",
            "user.government_id.id_card",
            "user.contact.mobile",
        ],
        "icp_filing",
        parse_icp,
    )
    .await
}

pub(crate) const TICKET_CATEGORY: &str = "user.support.ticket";

/// One `tickets.jsonl` line: `{"ticket_id", "account_id", "created_at", "text", "spans"}`.
///
/// `ticket_id`, `account_id` and `text` are required. `created_at` is optional: a ticket
/// without it (absent or `null`) is kept without a creation time, and the missing column is
/// recorded as a warning; a `created_at` that is present but malformed is still a reject.
///
/// The text is sealed whole (it is free text and may hold any PI); `created_at` goes in the
/// same record and category, as a face template's `enrolled_at` and a filing's `submitted_at`
/// do (tickets carry no retention period that would need a timestamp category of their own,
/// as `user.transaction.paid_at` does). `spans` is dropped: code-point offsets and PI-kind
/// labels of the generator's ground truth, not PI about the subject, and no policy category
/// fits them.
pub(crate) fn parse_ticket(l: u64, bytes: &[u8]) -> Result<RecordRow, Reject> {
    use serde_json::Value as J;
    let s = std::str::from_utf8(bytes)
        .map_err(|_| reject(l, "", "not_utf8", "the row is not valid UTF-8"))?;
    let v: J = serde_json::from_str(s)
        .map_err(|_| reject(l, "", "json_malformed", "the line is not valid JSON"))?;
    let J::Object(o) = v else {
        return Err(reject(
            l,
            "",
            "json_not_object",
            "the line is not a JSON object",
        ));
    };
    let field = |name: &'static str| {
        o.get(name)
            .ok_or_else(|| reject(l, name, "field_missing", "a required field is missing"))
    };
    let string = |name: &'static str| {
        field(name)?.as_str().ok_or_else(|| {
            reject(
                l,
                name,
                "value_wrong_type",
                "the field is not a JSON string",
            )
        })
    };
    let id = record_id(string("ticket_id")?, l, "ticket_id")?;
    let account = AccountId::parse(string("account_id")?)
        .map(|a| a.as_str().to_string())
        .map_err(|e| reject(l, "account_id", e.code, e.reason))?;
    let at = match o.get("created_at") {
        None | Some(J::Null) => None,
        Some(_) => Some(
            parse_timestamp(string("created_at")?)
                .map_err(|e| reject(l, "created_at", e.code, e.reason))?,
        ),
    };
    // The vault's own rule for a text value: a string, not blank, at most 64 KiB.
    let text = FieldValue::from_json(field("text")?, ValueType::Text)
        .map_err(|e| reject(l, "text", e.code, e.reason))?;
    let mut fields = vec![(TICKET_CATEGORY, "text", text)];
    let mut missing = Vec::new();
    match at {
        Some(at) => fields.push((TICKET_CATEGORY, "created_at", FieldValue::Timestamp(at))),
        None => missing.push("created_at"),
    }
    Ok(RecordRow {
        line: l,
        account,
        record: format!("ticket:{id}"),
        fields,
        missing,
        event_at: at,
        activity_at: None,
    })
}

pub(crate) async fn import_tickets(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "tickets.jsonl";
    ctx.check_categories(&[TICKET_CATEGORY])?;
    let mut b = JsonlBatches::open(&ctx.dir.join(FILE))?;
    let total = b.total;
    // §2.1.4: support records serve responding to and improving the service.
    drive_records(ctx, FILE, "maintenance", total, move || {
        let (lines, mut bad) = b.next()?;
        let n = (lines.len() + bad.len()) as u64;
        let mut good = Vec::with_capacity(lines.len());
        for (l, bytes) in &lines {
            match parse_ticket(*l, bytes) {
                Ok(x) => good.push(x),
                Err(e) => bad.push(e),
            }
        }
        Ok((good, bad, n))
    })
    .await
}

/// Checks one `orders.csv` row as the importer does and builds its record (the account id is
/// not looked up here).
///
/// # Errors
/// The row's [`Reject`] (column, stable code, fixed reason; never a value).
pub(crate) fn parse_order(c: &Cols, r: &Row) -> Result<RecordRow, Reject> {
    let l = r.line;
    let id = record_id(c.get(r, "order_id"), l, "order_id")?;
    let account = account_of(c, r)?;
    let product = text(c.get(r, "product"))
        .ok_or_else(|| reject(l, "product", "value_empty", "product is empty"))?;
    let amount = parse_decimal(c.get(r, "amount_cny"))
        .map_err(|e| reject(l, "amount_cny", e.code, e.reason))?;
    let paid =
        parse_timestamp(c.get(r, "paid_at")).map_err(|e| reject(l, "paid_at", e.code, e.reason))?;
    let mut fields: Fields = vec![
        ("user.transaction.order", "product", product),
        (
            "user.transaction.amount",
            "amount_cny",
            FieldValue::Number(amount),
        ),
        (
            "user.transaction.paid_at",
            "paid_at",
            FieldValue::Timestamp(paid),
        ),
    ];
    if let Some(v) = text(c.get(r, "invoice_title")) {
        fields.push(("user.transaction.invoice", "invoice_title", v));
    }
    if let Some(v) = text(c.get(r, "invoice_tax_id")) {
        fields.push(("user.transaction.invoice", "invoice_tax_id", v));
    }
    Ok(RecordRow {
        line: l,
        account,
        record: format!("order:{id}"),
        fields,
        missing: Vec::new(),
        event_at: Some(paid),
        activity_at: None,
    })
}

/// Checks one `face_templates.csv` row as the importer does and builds its record (the account id is
/// not looked up here).
///
/// # Errors
/// The row's [`Reject`] (column, stable code, fixed reason; never a value).
pub(crate) fn parse_face(c: &Cols, r: &Row) -> Result<RecordRow, Reject> {
    let l = r.line;
    let account = account_of(c, r)?;
    let at = parse_timestamp(c.get(r, "enrolled_at"))
        .map_err(|e| reject(l, "enrolled_at", e.code, e.reason))?;
    let t = base64::engine::general_purpose::STANDARD
        .decode(c.get(r, "template_f32x128_b64").trim())
        .map_err(|_| {
            reject(
                l,
                "template_f32x128_b64",
                "binary_malformed",
                "not standard base64",
            )
        })?;
    if t.len() != 512 {
        return Err(reject(
            l,
            "template_f32x128_b64",
            "template_size",
            "a face template is 128 float32 values (512 bytes)",
        ));
    }
    Ok(RecordRow {
        line: l,
        account,
        record: "face".into(),
        fields: vec![
            ("user.biometric.face", "template", FieldValue::Binary(t)),
            (
                "user.biometric.face",
                "enrolled_at",
                FieldValue::Timestamp(at),
            ),
        ],
        missing: Vec::new(),
        event_at: Some(at),
        activity_at: None,
    })
}

/// Checks one `icp_filings.csv` row as the importer does and builds its record (the account id is
/// not looked up here).
///
/// # Errors
/// The row's [`Reject`] (column, stable code, fixed reason; never a value).
pub(crate) fn parse_icp(c: &Cols, r: &Row) -> Result<RecordRow, Reject> {
    let l = r.line;
    let id = record_id(c.get(r, "filing_id"), l, "filing_id")?;
    let account = account_of(c, r)?;
    let entity = text(c.get(r, "entity_name"))
        .ok_or_else(|| reject(l, "entity_name", "value_empty", "entity name is empty"))?;
    let person = text(c.get(r, "person_in_charge")).ok_or_else(|| {
        reject(
            l,
            "person_in_charge",
            "value_empty",
            "person in charge is empty",
        )
    })?;
    let idc = IdCardNumber::parse(c.get(r, "person_id_card_number"))
        .map_err(|e| reject(l, "person_id_card_number", e.code, e.reason))?;
    let mobile = Mobile::parse(c.get(r, "person_mobile"))
        .map_err(|e| reject(l, "person_mobile", e.code, e.reason))?;
    let domain = c.get(r, "domain").trim().to_ascii_lowercase();
    if domain.is_empty()
        || domain.len() > 253
        || !domain.contains('.')
        || !domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return Err(reject(l, "domain", "domain_malformed", "not a domain name"));
    }
    let at = parse_timestamp(c.get(r, "submitted_at"))
        .map_err(|e| reject(l, "submitted_at", e.code, e.reason))?;
    Ok(RecordRow {
        line: l,
        account,
        record: format!("icp:{id}"),
        fields: vec![
            ("user.icp.filing", "entity_name", entity),
            ("user.name", "person_in_charge", person),
            (
                "user.government_id.id_card",
                "person_id_card_number",
                FieldValue::Text(idc.as_str().into()),
            ),
            (
                "user.contact.mobile",
                "person_mobile",
                FieldValue::Text(mobile.e164().into()),
            ),
            ("user.icp.filing", "domain", FieldValue::Text(domain)),
            ("user.icp.filing", "submitted_at", FieldValue::Timestamp(at)),
        ],
        missing: Vec::new(),
        event_at: Some(at),
        activity_at: None,
    })
}
