//! `users.csv`: accounts become PI subjects (one subject writer; erased accounts refused).

use super::common::*;
use super::reader::*;
use crate::error::CoreError;
use crate::services::facts::DOB_CATEGORY;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::subjects::ERASED_ACCOUNT;
use crate::values::{parse_timestamp, FieldValue};
use pivault_domain::identifiers::{AccountId, Email, IdCardNumber, IdentifierKind, Mobile};
use pivault_store::{FieldRow, KeyRow, SubjectRow};
use std::collections::HashSet;
use std::sync::Arc;

pub(crate) struct UserRow {
    pub(crate) line: u64,
    pub(crate) account: String,
    pub(crate) fields: Fields,
    pub(crate) idents: Vec<(IdentifierKind, String)>,
}

pub(crate) fn parse_user(c: &Cols, r: &Row) -> Result<UserRow, Reject> {
    let l = r.line;
    let account = AccountId::parse(c.get(r, "account_id"))
        .map_err(|e| reject(l, "account_id", e.code, e.reason))?;
    let name =
        text(c.get(r, "name")).ok_or_else(|| reject(l, "name", "value_empty", "name is empty"))?;
    let idc = IdCardNumber::parse(c.get(r, "id_card_number"))
        .map_err(|e| reject(l, "id_card_number", e.code, e.reason))?;
    let birth = date_of(c.get(r, "birth_date"))
        .ok_or_else(|| reject(l, "birth_date", "date_malformed", "expected YYYY-MM-DD"))?;
    if birth != idc.birth_date() {
        return Err(reject(
            l,
            "birth_date",
            "birth_date_mismatch",
            "birth date differs from the one in the ID number",
        ));
    }
    let mobile =
        Mobile::parse(c.get(r, "mobile")).map_err(|e| reject(l, "mobile", e.code, e.reason))?;
    let email =
        Email::parse(c.get(r, "email")).map_err(|e| reject(l, "email", e.code, e.reason))?;
    let reg = parse_timestamp(c.get(r, "registered_at"))
        .map_err(|e| reject(l, "registered_at", e.code, e.reason))?;
    let ip = c.get(r, "last_login_ip").trim();
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(reject(
            l,
            "last_login_ip",
            "ip_malformed",
            "not an IPv4 or IPv6 address",
        ));
    }
    let card = c.get(r, "bank_card_number").trim().replace(' ', "");
    let card_ok = (12..=19).contains(&card.len())
        && card.bytes().all(|b| b.is_ascii_digit())
        && luhn_ok(&card);
    if !card.is_empty() && !card_ok {
        return Err(reject(
            l,
            "bank_card_number",
            "bank_card_check_digit",
            "not a 12-19 digit card number with a valid Luhn check digit",
        ));
    }
    let region = c.get(r, "residence_region").trim();
    if region.is_empty() || region.len() > 8 || !region.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(reject(
            l,
            "residence_region",
            "region_malformed",
            "region is a lower-case code such as cn",
        ));
    }
    let guardian_mobile = match c.get(r, "guardian_mobile").trim() {
        "" => None,
        g => Some(Mobile::parse(g).map_err(|e| reject(l, "guardian_mobile", e.code, e.reason))?),
    };
    let mut f: Fields = vec![
        (
            "user.account.id",
            "account_id",
            FieldValue::Text(account.as_str().into()),
        ),
        ("user.name", "name", name),
        (
            "user.government_id.id_card",
            "id_card_number",
            FieldValue::Text(idc.as_str().into()),
        ),
        (
            DOB_CATEGORY,
            "birth_date",
            FieldValue::Text(birth.to_string()),
        ),
        (
            "user.contact.mobile",
            "mobile",
            FieldValue::Text(mobile.e164().into()),
        ),
        (
            "user.contact.email",
            "email",
            FieldValue::Text(email.as_str().into()),
        ),
        (
            "user.account.registered_at",
            "registered_at",
            FieldValue::Timestamp(reg),
        ),
        (
            "user.location.region",
            "residence_region",
            FieldValue::Text(region.into()),
        ),
    ];
    let optional: [(&'static str, &'static str, &str); 8] = [
        ("user.contact.address", "address", c.get(r, "address")),
        ("user.contact.province", "province", c.get(r, "province")),
        ("user.network.ip", "last_login_ip", ip),
        ("user.device.os", "os", c.get(r, "os")),
        (
            "user.device.model",
            "device_model",
            c.get(r, "device_model"),
        ),
        ("user.device.id", "device_id", c.get(r, "device_id")),
        ("user.financial.bank_card", "bank_card_number", &card),
        (
            "user.guardian.name",
            "guardian_name",
            c.get(r, "guardian_name"),
        ),
    ];
    for (cat, name, v) in optional {
        if let Some(v) = text(v) {
            f.push((cat, name, v));
        }
    }
    let mut idents = vec![
        (IdentifierKind::AccountId, account.as_str().to_string()),
        (IdentifierKind::IdCard, idc.as_str().to_string()),
        (IdentifierKind::Mobile, mobile.e164().to_string()),
        (IdentifierKind::Email, email.as_str().to_string()),
    ];
    if let Some(g) = guardian_mobile {
        f.push((
            "user.guardian.mobile",
            "guardian_mobile",
            FieldValue::Text(g.e164().into()),
        ));
        // The guardian signs in with it to act for the minor (policy §IX; PIPL Art. 31).
        idents.push((IdentifierKind::GuardianMobile, g.e164().to_string()));
    }
    Ok(UserRow {
        line: l,
        account: account.as_str().to_string(),
        fields: f,
        idents,
    })
}

pub(crate) async fn import_users(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "users.csv";
    let path = ctx.dir.join(FILE);
    ctx.check_categories(&[
        "user.account.id",
        "user.name",
        "user.government_id.id_card",
        DOB_CATEGORY,
        "user.contact.mobile",
        "user.contact.email",
        "user.account.registered_at",
        "user.location.region",
        "user.contact.address",
        "user.contact.province",
        "user.network.ip",
        "user.device.os",
        "user.device.model",
        "user.device.id",
        "user.financial.bank_card",
        "user.guardian.name",
        "user.guardian.mobile",
    ])?;
    let mut b = Batches::open(
        &path,
        &[
            "account_id",
            "name",
            "id_card_number",
            "birth_date",
            "mobile",
            "email",
            "registered_at",
            "residence_region",
        ],
    )?;
    let mut rej = Rejects::new(ctx.rejects_dir, FILE);
    let mut rep = FileReport {
        file: FILE.into(),
        ..FileReport::default()
    };
    ctx.progress.start(FILE, b.total());
    let mut seen: HashSet<String> = HashSet::new();
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
        let mut good = Vec::with_capacity(rows.len());
        for r in &rows {
            match parse_user(&b.cols, r) {
                Ok(u) => good.push(u),
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
            }
        }
        let ids: Vec<String> = good.iter().map(|u| u.account.clone()).collect();
        let existing = ctx.subjects_by_account(&ids).await?;
        let erased: HashSet<Vec<u8>> = {
            let keys = ctx.vault.sealer.keys();
            let digests: Vec<[u8; 32]> = ids
                .iter()
                .flat_map(|a| keys.blind_indexes_all(ERASED_ACCOUNT, a))
                .collect();
            ctx.vault
                .store
                .lookup_many(ERASED_ACCOUNT, &digests)
                .await?
                .into_iter()
                .map(|(d, _)| d)
                .collect()
        };
        let keys = ctx.vault.sealer.keys();
        let mut subjects = Vec::new();
        let mut key_rows: Vec<KeyRow> = Vec::new();
        let mut field_rows: Vec<FieldRow> = Vec::new();
        let mut idx_owned: Vec<(i64, &'static str, [u8; 32], String)> = Vec::new();
        let mut audits = Vec::new();
        for u in good {
            if keys
                .blind_indexes_all(ERASED_ACCOUNT, &u.account)
                .iter()
                .any(|d| erased.contains(d.as_slice()))
            {
                rej.write(&reject(
                    u.line,
                    "account_id",
                    "account_erased",
                    "this account was erased; it is not imported again",
                ))?;
                rep.rejected += 1;
                continue;
            }
            if existing.contains_key(&u.account) {
                rep.skipped += 1;
                continue;
            }
            if !seen.insert(u.account.clone()) {
                rej.write(&reject(
                    u.line,
                    "account_id",
                    "duplicate_in_file",
                    "the same account id appears earlier in this file",
                ))?;
                rep.rejected += 1;
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let (dek, kr) = ctx.vault.sealer.new_dek(&id, SCOPE_PRIMARY, ctx.now);
            for (cat, name, v) in &u.fields {
                field_rows.push(Sealer::seal_row(
                    &dek, &id, "profile", name, cat, v, None, ctx.now,
                ));
            }
            ctx.vault
                .sealer
                .cache_dek(&id, SCOPE_PRIMARY, Arc::new(dek));
            for (k, v) in &u.idents {
                let (g, d) = keys.blind_index_current(k.as_str(), v);
                idx_owned.push((g, k.as_str(), d, id.clone()));
            }
            audits.push(ctx.audit(
                "subject.create",
                &id,
                "service",
                &u.fields,
                format!("source={FILE} line={}", u.line),
            ));
            subjects.push(SubjectRow {
                id,
                kind: "account".into(),
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
        if !subjects.is_empty() {
            let idx: Vec<(i64, &str, [u8; 32], &str)> = idx_owned
                .iter()
                .map(|(g, k, d, s)| (*g, *k, *d, s.as_str()))
                .collect();
            ctx.write_new_subjects(&subjects, &key_rows, &field_rows, &idx, audits)
                .await?;
        }
        ctx.progress.advance(n);
    }
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}
