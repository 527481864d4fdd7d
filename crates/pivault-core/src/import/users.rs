//! `users.csv`: accounts become PI subjects (one subject writer; erased accounts refused).

use super::common::*;
use super::pipeline::{par_map, BatchWrite, Inflight, Writer};
use super::reader::*;
use crate::error::CoreError;
use crate::services::facts::DOB_CATEGORY;
use crate::services::sealer::Sealer;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::subjects::ERASED_ACCOUNT;
use crate::values::{parse_timestamp, FieldValue};
use pivault_crypto::{Dek, KeyRing};
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

/// A new subject's rows, sealed off the writer's path.
struct SealedUser {
    id: String,
    user: UserRow,
    dek: Dek,
    key: KeyRow,
    fields: Vec<FieldRow>,
    index: Vec<(i64, &'static str, [u8; 32], String)>,
}

/// A fresh DEK (wrapped under the current KEK), every field sealed under it, and the
/// identifiers' blind-index digests under the current index key.
fn seal_user(keys: &KeyRing, id: String, user: UserRow, now: i64) -> SealedUser {
    let (dek, key) = Sealer::new_dek_with(keys, &id, SCOPE_PRIMARY, now);
    let fields = user
        .fields
        .iter()
        .map(|(cat, name, v)| Sealer::seal_row(&dek, &id, "profile", name, cat, v, None, now))
        .collect();
    let index = user
        .idents
        .iter()
        .map(|(k, v)| {
            let (g, d) = keys.blind_index_current(k.as_str(), v);
            (g, k.as_str(), d, id.clone())
        })
        .collect();
    SealedUser {
        id,
        user,
        dek,
        key,
        fields,
        index,
    }
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
    let mut inflight: Inflight<String> = Inflight::new();
    let mut writer = Writer::new(ctx.vault, ctx.now);
    let cols = Arc::new(b.cols.clone());
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
        let parsed = {
            let cols = Arc::clone(&cols);
            par_map(rows, move |r| parse_user(&cols, &r)).await?
        };
        let mut good = Vec::with_capacity(parsed.len());
        for p in parsed {
            match p {
                Ok(u) => good.push(u),
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
            }
        }
        let ids: Vec<String> = good.iter().map(|u| u.account.clone()).collect();
        let existing = ctx.subjects_by_account(&ids).await?;
        let keys = ctx.vault.sealer.keys();
        let erased_of: Vec<Vec<[u8; 32]>> = ids
            .iter()
            .map(|a| keys.blind_indexes_all(ERASED_ACCOUNT, a))
            .collect();
        let erased: HashSet<Vec<u8>> = {
            let digests: Vec<[u8; 32]> = erased_of.iter().flatten().copied().collect();
            ctx.vault
                .store
                .lookup_many(ERASED_ACCOUNT, &digests)
                .await?
                .into_iter()
                .map(|(d, _)| d)
                .collect()
        };
        let mut create = Vec::with_capacity(good.len());
        for (u, erased_digests) in good.into_iter().zip(&erased_of) {
            if erased_digests.iter().any(|d| erased.contains(d.as_slice())) {
                rej.write(&reject(
                    u.line,
                    "account_id",
                    "account_erased",
                    "this account was erased; it is not imported again",
                ))?;
                rep.rejected += 1;
                continue;
            }
            // Present: committed before this batch's lookups, or landed by the batch in flight.
            if existing.contains_key(&u.account) || inflight.contains(&u.account) {
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
            inflight.add(u.account.clone());
            // Drawn here, in file order: ids grow with the file (see `new_subject_id`).
            create.push((crate::subjects::new_subject_id(), u));
        }
        let sealed = {
            let keys = ctx.vault.sealer.keys_arc();
            let now = ctx.now;
            par_map(create, move |(id, u)| seal_user(&keys, id, u, now)).await?
        };
        let mut w = BatchWrite {
            replace_fields: true,
            ..BatchWrite::default()
        };
        for s in sealed {
            ctx.vault
                .sealer
                .cache_dek(&s.id, SCOPE_PRIMARY, Arc::new(s.dek));
            w.audits.push(ctx.audit(
                "subject.create",
                &s.id,
                "service",
                &s.user.fields,
                format!("source={FILE} line={}", s.user.line),
            ));
            w.fields.extend(s.fields);
            w.index.extend(s.index);
            w.keys.push(s.key);
            w.subjects.push(SubjectRow {
                id: s.id,
                kind: "account".into(),
                status: "active".into(),
                created_at: ctx.now,
                erased_at: None,
                home_region: None,
                lock_case: None,
                lang: None,
            });
            rep.imported += 1;
        }
        writer.submit(w).await?;
        inflight.submitted();
        ctx.progress.advance(n);
    }
    writer.finish().await?;
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}
