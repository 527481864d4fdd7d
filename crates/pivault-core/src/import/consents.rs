//! `consent_events.csv`: the consent ledger.

use super::common::*;
use super::pipeline::{BatchWrite, Inflight, Writer};
use super::reader::*;
use crate::error::CoreError;
use crate::values::parse_timestamp;
use pivault_domain::consent::check_plausible;
use pivault_store::ConsentRow;
use std::collections::{HashMap, HashSet};

pub(crate) async fn import_consents(ctx: &Ctx<'_>) -> Result<FileReport, CoreError> {
    const FILE: &str = "consent_events.csv";
    let path = ctx.dir.join(FILE);
    let mut b = Batches::open(
        &path,
        &[
            "event_id",
            "account_id",
            "purpose",
            "action",
            "at",
            "policy_version",
            "method",
            "given_by",
        ],
    )?;
    let mut rej = Rejects::new(ctx.rejects_dir, FILE);
    let mut rep = FileReport {
        file: FILE.into(),
        ..FileReport::default()
    };
    ctx.progress.start(FILE, b.total());
    let policy = ctx.vault.policy();
    let mut inflight: Inflight<String> = Inflight::new();
    let mut writer = Writer::new(ctx.vault, ctx.now);
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
        let accounts: Vec<String> = rows
            .iter()
            .map(|r| b.cols.get(r, "account_id").trim().to_string())
            .collect();
        let subjects = ctx.subjects_by_account(&accounts).await?;
        let refs: Vec<&str> = rows
            .iter()
            .map(|r| b.cols.get(r, "event_id").trim())
            .collect();
        let existing: HashSet<String> = ctx
            .vault
            .store
            .existing_consent_refs(&refs)
            .await?
            .into_iter()
            .collect();
        // Birth dates of the subjects with a guardian's consent in this batch: a guardian
        // consents only for a minor (PIPL Art. 31).
        let mut births: HashMap<&str, Option<time::Date>> = HashMap::new();
        for r in &rows {
            if b.cols.get(r, "given_by").trim() != "guardian" {
                continue;
            }
            if let Some(s) = subjects.get(b.cols.get(r, "account_id").trim()) {
                if !births.contains_key(s.as_str()) {
                    let f = ctx.vault.facts.cached(s, ctx.vault.now()).await?;
                    births.insert(s.as_str(), f.birth_date);
                }
            }
        }
        let mut out = Vec::new();
        let mut audits = Vec::new();
        let mut seen = HashSet::new();
        for r in &rows {
            let c = &b.cols;
            let l = r.line;
            let parsed = parse_consent(
                c,
                r,
                policy,
                |a| subjects.get(a).cloned(),
                |s| births.get(s).copied().flatten(),
                ctx.now,
            );
            match parsed {
                Err(e) => {
                    rej.write(&e)?;
                    rep.rejected += 1;
                }
                Ok(row) => {
                    // Present: committed before this batch's lookups, landed by the batch in
                    // flight, or earlier in this batch.
                    if existing.contains(&row.event_ref)
                        || inflight.contains(&row.event_ref)
                        || !seen.insert(row.event_ref.clone())
                    {
                        rep.skipped += 1;
                        continue;
                    }
                    inflight.add(row.event_ref.clone());
                    let mut a = ctx.vault.auditor.base(
                        ACTOR,
                        &format!("consent.{}", row.action),
                        ctx.now,
                        None,
                    );
                    a.subject_id = Some(row.subject_id.clone());
                    a.purpose = Some(row.purpose.clone());
                    a.detail = Some(format!(
                        "source={FILE} line={l} given_by={} method={}",
                        row.given_by, row.method
                    ));
                    audits.push(a);
                    out.push(row);
                    rep.imported += 1;
                }
            }
        }
        // Always submitted (an empty batch writes nothing): it waits for the batch in flight,
        // which `inflight` stops covering here.
        writer
            .submit(BatchWrite {
                bump_facts_epoch: !out.is_empty(),
                consents: out,
                audits,
                ..BatchWrite::default()
            })
            .await?;
        inflight.submitted();
        ctx.progress.advance(n);
    }
    writer.finish().await?;
    rej.finish()?;
    ctx.progress.finish();
    Ok(rep)
}

/// Checks one `consent_events.csv` row as the importer does and builds its ledger row, with
/// `recorded_at` = `now` (Unix seconds). `subject_of` maps an account id to its subject id
/// (`None`: unknown account); `birth_of` gives a subject's birth date for the guardian check (PIPL Art. 31).
///
/// # Errors
/// The row's [`Reject`] (column, stable code, fixed reason; never a value).
pub(crate) fn parse_consent(
    c: &Cols,
    r: &Row,
    policy: &pivault_domain::policy::Policy,
    subject_of: impl Fn(&str) -> Option<String>,
    birth_of: impl Fn(&str) -> Option<time::Date>,
    now: i64,
) -> Result<ConsentRow, Reject> {
    let l = r.line;
    let ev = c.get(r, "event_id").trim();
    if ev.is_empty()
        || ev.len() > 64
        || !ev
            .bytes()
            .all(|x| x.is_ascii_alphanumeric() || x == b'_' || x == b'-')
    {
        return Err(reject(
            l,
            "event_id",
            "event_id_malformed",
            "event id is 1-64 characters of A-Z a-z 0-9 _ -",
        ));
    }
    let subject = subject_of(c.get(r, "account_id").trim()).ok_or_else(|| {
        reject(
            l,
            "account_id",
            "unknown_account",
            "no imported account has this account id",
        )
    })?;
    let purpose = policy.purpose(c.get(r, "purpose").trim()).ok_or_else(|| {
        reject(
            l,
            "purpose",
            "unknown_purpose",
            "purpose is not declared in the policy",
        )
    })?;
    let action = pivault_domain::consent::ConsentAction::parse(c.get(r, "action").trim())
        .ok_or_else(|| reject(l, "action", "unknown_action", "action is grant or withdraw"))?;
    let given_by = pivault_domain::consent::GivenBy::parse(c.get(r, "given_by").trim())
        .ok_or_else(|| {
            reject(
                l,
                "given_by",
                "unknown_given_by",
                "given_by is self or guardian",
            )
        })?;
    let at = parse_timestamp(c.get(r, "at")).map_err(|e| reject(l, "at", e.code, e.reason))?;
    let birth = birth_of(subject.as_str());
    check_plausible(at, now, birth, given_by, policy.minor_age()).map_err(|e| {
        let col = if e.code == "guardian_for_adult" {
            "given_by"
        } else {
            "at"
        };
        reject(l, col, e.code, e.reason)
    })?;
    let method = c.get(r, "method").trim();
    if method.is_empty() || method.len() > 32 {
        return Err(reject(
            l,
            "method",
            "method_malformed",
            "method is 1-32 characters",
        ));
    }
    let pv = c.get(r, "policy_version").trim();
    if pv.is_empty() || pv.len() > 32 {
        return Err(reject(
            l,
            "policy_version",
            "policy_version_malformed",
            "policy version is 1-32 characters",
        ));
    }
    Ok(ConsentRow {
        seq: 0,
        event_ref: ev.to_string(),
        subject_id: subject,
        purpose: purpose.id.clone(),
        action: action.as_str().into(),
        at,
        given_by: given_by.as_str().into(),
        method: method.into(),
        separate: purpose.separate_consent,
        policy_version: pv.into(),
        recorded_at: now,
        recipient: None,
    })
}
