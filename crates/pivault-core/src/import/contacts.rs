//! `business_contacts.csv`: business contacts of customers.

use super::common::*;
use super::pipeline::BatchWrite;
use super::reader::*;
use crate::error::CoreError;
use crate::import::account_of;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::values::FieldValue;
use pivault_domain::identifiers::{Email, Mobile};
use pivault_store::SubjectRow;
use std::collections::HashSet;

/// The blind-index kind that keeps a business contact from being imported twice.
pub(crate) const REF_KIND: &str = "business_contact_ref";

/// What the `business_contact_ref` blind index is computed over: the customer's account id,
/// the contact's name and mobile (E.164), joined by U+001F.
pub(crate) fn contact_ref(account: &str, name: &str, mobile_e164: &str) -> String {
    format!("{account}\u{1f}{name}\u{1f}{mobile_e164}")
}

pub(crate) async fn import_contacts(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "business_contacts.csv";
    let path = ctx.dir.join(FILE);
    ctx.check_categories(&[
        "user.business_contact.name",
        "user.business_contact.title",
        "user.business_contact.mobile",
        "user.business_contact.email",
        "user.business_contact.organization",
    ])?;
    let mut b = Batches::open(
        &path,
        &[
            "customer_org",
            "contact_name",
            "title",
            "mobile",
            "email",
            "account_id",
        ],
    )?;
    let mut rej = Rejects::new(ctx.rejects_dir, FILE);
    let mut rep = FileReport {
        file: FILE.into(),
        ..FileReport::default()
    };
    ctx.progress.start(FILE, b.total());
    let keys = ctx.vault.sealer.keys();
    loop {
        let (rows, bad) = b.next()?;
        if rows.is_empty() && bad.is_empty() {
            break;
        }
        let n = (rows.len() + bad.len()) as u64;
        for r in &bad {
            rej.write(r)?;
        }
        rep.rejected += bad.len() as u64;
        // (line, (generation, digest) under the current blind-index key, the digests every
        // generation lookups consult, fields)
        #[allow(clippy::type_complexity)]
        let mut good: Vec<(u64, (i64, [u8; 32]), Vec<[u8; 32]>, Fields)> = Vec::new();
        for r in &rows {
            let c = &b.cols;
            let l = r.line;
            let parsed = parse_contact(c, r).map(|(reference, f)| {
                let digest = keys.blind_index_current(REF_KIND, &reference);
                let lookup = keys.blind_indexes(REF_KIND, &reference);
                (l, digest, lookup, f)
            });
            match parsed {
                Ok(g) => good.push(g),
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
            }
        }
        let digests: Vec<[u8; 32]> = good.iter().flat_map(|g| g.2.iter().copied()).collect();
        let existing: HashSet<Vec<u8>> = ctx
            .vault
            .store
            .lookup_many(REF_KIND, &digests)
            .await?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let mut seen = HashSet::new();
        let mut subjects = Vec::new();
        let mut key_rows = Vec::new();
        let mut field_rows = Vec::new();
        let mut idx_owned: Vec<((i64, [u8; 32]), String)> = Vec::new();
        let mut audits = Vec::new();
        for (l, digest, lookup, f) in good {
            if lookup.iter().any(|d| existing.contains(d.as_slice())) || !seen.insert(digest.1) {
                rep.skipped += 1;
                continue;
            }
            let id = crate::subjects::new_subject_id();
            let (dek, kr) = ctx.vault.sealer.new_dek(&id, SCOPE_PRIMARY, ctx.now);
            for (cat, name, v) in &f {
                field_rows.push(Sealer::seal_row(
                    &dek, &id, "profile", name, cat, v, None, ctx.now,
                ));
            }
            audits.push(ctx.audit(
                "subject.create",
                &id,
                "maintenance",
                &f,
                format!("source={FILE} line={l}"),
            ));
            idx_owned.push((digest, id.clone()));
            subjects.push(SubjectRow {
                id,
                kind: "business_contact".into(),
                status: "active".into(),
                created_at: ctx.now,
                erased_at: None,
                home_region: None,
                lock_case: None,
                lang: None,
            });
            key_rows.push(kr);
            rep.imported += 1;
        }
        // One transaction through the importer's batch writer (rows, DEKs, fields, index,
        // one audit entry per row).
        BatchWrite {
            subjects,
            keys: key_rows,
            fields: field_rows,
            replace_fields: true,
            index: idx_owned
                .into_iter()
                .map(|((g, d), s)| (g, REF_KIND, d, s))
                .collect(),
            audits,
            ..BatchWrite::default()
        }
        .write(ctx.vault.store.clone(), ctx.now)
        .await?;
        ctx.progress.advance(n);
    }
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

/// Checks one `business_contacts.csv` row as the importer does; returns the contact's
/// reference (the input of its blind index, see [`contact_ref`]) and its fields.
///
/// # Errors
/// The row's [`Reject`] (column, stable code, fixed reason; never a value).
pub(crate) fn parse_contact(c: &Cols, r: &Row) -> Result<(String, Fields), Reject> {
    let l = r.line;
    let account = account_of(c, r)?;
    let name = text(c.get(r, "contact_name"))
        .ok_or_else(|| reject(l, "contact_name", "value_empty", "contact name is empty"))?;
    let mobile =
        Mobile::parse(c.get(r, "mobile")).map_err(|e| reject(l, "mobile", e.code, e.reason))?;
    let email =
        Email::parse(c.get(r, "email")).map_err(|e| reject(l, "email", e.code, e.reason))?;
    let org = text(c.get(r, "customer_org"))
        .ok_or_else(|| reject(l, "customer_org", "value_empty", "organization is empty"))?;
    let FieldValue::Text(name_s) = &name else {
        unreachable_text()
    };
    let reference = contact_ref(&account, name_s, mobile.e164());
    let mut f: Fields = vec![
        ("user.business_contact.name", "contact_name", name.clone()),
        (
            "user.business_contact.mobile",
            "mobile",
            FieldValue::Text(mobile.e164().into()),
        ),
        (
            "user.business_contact.email",
            "email",
            FieldValue::Text(email.as_str().into()),
        ),
        ("user.business_contact.organization", "customer_org", org),
        (
            "user.business_contact.organization",
            "customer_account_id",
            FieldValue::Text(account),
        ),
    ];
    if let Some(t) = text(c.get(r, "title")) {
        f.push(("user.business_contact.title", "title", t));
    }
    Ok((reference, f))
}
