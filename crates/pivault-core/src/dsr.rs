//! Data subject requests (DSR): access, copy, correction, deletion, consent withdrawal, account
//! cancellation and explanation of the processing rules (PIPL Art. 44–50; policy §VII, §XI).
//!
//! Life cycle ([`DsrState`], checked by [`can_transition`] on every move, each move audited):
//! `received → identity_unverified → verified → in_progress → completed | rejected | failed`.
//!
//! - **Identity** (§7.2): the claimed email or mobile is normalized and looked up by blind
//!   index. Each matching account gets its own request, token and one-time code, sent to that
//!   account's address; verifying one account's code never acts on another. A claim matching
//!   nobody gets a request too (same response shape), which can never be verified.
//! - **Codes**: 6 digits from the OS CSPRNG, stored only as a keyed digest bound to the
//!   request id, valid `code_ttl_seconds` (600), `code_attempts` (3) tries, compared in
//!   constant time.
//! - **Deadlines** come from the policy's jurisdiction (`cn`: 10 days, §XI; `eu`: one month
//!   extendable by two, GDPR Art. 12(3)).
//! - **Duplicates**: a request of the same subject and kind within `duplicate_window_days` of
//!   an earlier one that was not rejected is linked to it (`duplicate_of`) and never executed.
//! - **Execution** is a list of steps per kind; each step commits its change, its progress and
//!   its audit entry in one transaction, so a crash resumes from the first step not committed,
//!   a failed step stops every later one (`failed(step)`), and deletion is reported complete
//!   only after the store shows nothing of the subject left outside retention.
//! - **Receipts** of deletion and cancellation are signed with Ed25519 (RFC 8032) over the
//!   exact payload bytes; the public key is served so the subject can verify them.

use crate::error::CoreError;
use crate::values::{format_timestamp, FieldValue};
use crate::vault::{FieldInput, Principal, Vault, ERASURE_GROUNDS, ROLE_ADMIN, SCOPE_PRIMARY};
use base64::Engine as _;
use pivault_crypto::{Aad, Dek};
use pivault_domain::audit::AuditRecord;
use pivault_domain::dsr::{can_transition, DsrKind, DsrState};
use pivault_domain::identifiers::IdentifierKind;
use pivault_domain::policy::LegalBasis;
use pivault_store::{ConsentRow, DsrCodeRow, DsrFilter, DsrRow, WriteTx};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tracing::{info, warn};
use zeroize::Zeroizing;

/// Role of the privacy office's request handlers (besides `admin`).
pub const ROLE_DPO: &str = "dpo";
/// Actor name in audit rows for what the requester does (never their identity: PI).
const SUBJECT_ACTOR: &str = "dsr:requester";
/// Most codes sent for one request (first send plus resends).
const MAX_CODE_SENDS: i64 = 5;
/// Most codes sent for one person's requests in 24 hours, whatever the number of requests:
/// with 3 attempts each, at most 30 guesses a day at a 6-digit code, and no mailbox flooding.
const MAX_CODES_PER_SUBJECT_PER_DAY: i64 = 10;
/// Digits of a one-time code.
const CODE_DIGITS: u32 = 6;
/// AAD category of sealed request payloads (results, PI parameters).
const RESULT_CATEGORY: &str = "dsr.result";
const PARAMS_CATEGORY: &str = "dsr.params";

/// Why a request is refused (PIPL Art. 50: a refusal gives its reasons): stable code, the
/// sentence shown to the requester, and the rule relied on.
pub const REJECTION_REASONS: [(&str, &str, &str); 8] = [
    (
        "identity_not_verified",
        "The requester's identity could not be verified.",
        "policy §7.2; GB/T 35273-2020 §8.7",
    ),
    (
        "no_matching_subject",
        "No personal information is held under the identity given.",
        "PIPL Art. 50",
    ),
    (
        "manifestly_unfounded",
        "The request is manifestly unfounded or an abuse of the right.",
        "GB/T 35273-2020 §8.7",
    ),
    (
        "legal_obligation",
        "A law or administrative regulation requires the processing to continue.",
        "PIPL Art. 13(3), Art. 47 para 2",
    ),
    (
        "national_security_or_public_interest",
        "The request concerns national security, public safety, public health or a major public interest.",
        "PIPL Art. 13(4)-(5); GB/T 35273-2020 §8.7",
    ),
    (
        "criminal_proceedings",
        "The request is directly related to a criminal investigation, prosecution, trial or enforcement.",
        "GB/T 35273-2020 §8.7",
    ),
    (
        "harms_others",
        "Answering would seriously harm the lawful rights and interests of others.",
        "GB/T 35273-2020 §8.7",
    ),
    (
        "trade_secret",
        "Answering would disclose a trade secret.",
        "GB/T 35273-2020 §8.7",
    ),
];

/// How a one-time code reaches the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email over SMTP.
    Email,
    /// SMS through the configured webhook.
    Sms,
}

impl Channel {
    /// The channel a stored request names (`sms`, else email).
    fn of(stored: &str) -> Self {
        if stored == "sms" {
            Self::Sms
        } else {
            Self::Email
        }
    }

    /// `email` or `sms`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// A boxed future, for [`CodeSender`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send + 'a>>;

/// Delivers a message to a requester (policy §7.2). Implemented over `pivault-notify` by the
/// server; tests use a real SMTP sink.
pub trait CodeSender: Send + Sync {
    /// Sends `body` to `to` over `channel`.
    ///
    /// # Errors
    /// A stable error code (`smtp_unavailable`, `no_channel`, …); never the address or body.
    fn send<'a>(
        &'a self,
        channel: Channel,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> SendFuture<'a>;
}

/// A fault injected into request execution, for tests and drills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The step fails (its transaction rolls back): the request becomes `failed(step)`.
    FailAt(String),
    /// Execution stops right after the step commits, as if the process died there: the
    /// request stays `in_progress`.
    HaltAfter(String),
    /// The process aborts right after the step commits (real crash).
    AbortAfter(String),
}

impl Fault {
    /// Parses `fail:STEP`, `halt:STEP` or `abort:STEP` (env `PIVAULT_DSR_FAULT`).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (mode, step) = s.split_once(':')?;
        let step = step.to_string();
        match mode {
            "fail" => Some(Self::FailAt(step)),
            "halt" => Some(Self::HaltAfter(step)),
            "abort" => Some(Self::AbortAfter(step)),
            _ => None,
        }
    }
}

/// A new request as the requester files it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsrInput {
    /// `access`, `copy`, `correction`, `deletion`, `withdrawal`, `cancellation`,
    /// `explanation`.
    pub kind: String,
    /// The email the requester claims (a code goes to it).
    pub email: Option<String>,
    /// The mobile the requester claims (a code goes to it by SMS).
    pub mobile: Option<String>,
    /// Deadline jurisdiction; defaults to the policy's `default_jurisdiction`.
    pub jurisdiction: Option<String>,
    /// Deletion: the ground (PIPL Art. 47; one of `ERASURE_GROUNDS`); defaults to
    /// `subject_request`.
    pub ground: Option<String>,
    /// Withdrawal: purposes to withdraw; empty = every consent in force.
    #[serde(default)]
    pub purposes: Vec<String>,
    /// Correction: the corrected fields (PIPL Art. 46).
    #[serde(default)]
    pub corrections: Vec<CorrectionInput>,
}

/// One corrected field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionInput {
    /// Category key.
    pub category: String,
    /// Record; defaults to `profile`.
    pub record: Option<String>,
    /// Field name; defaults to the category key.
    pub name: Option<String>,
    /// The corrected value.
    pub value: Value,
}

/// One request created by [`Vault::dsr_create`]: its id and the requester's token (shown
/// once; only its SHA-256 is stored).
#[derive(Debug, Clone, Serialize)]
pub struct CreatedDsr {
    /// Request id.
    pub id: String,
    /// Bearer token for the requester's calls on this request (`X-Dsr-Token`).
    pub token: String,
    /// State after creation (`identity_unverified`).
    pub state: &'static str,
    /// RFC 3339 due date.
    pub due_at: String,
}

/// A request as shown to staff (with `subject_id`) or to the requester (without).
#[derive(Debug, Clone, Serialize)]
pub struct DsrView {
    /// Request id.
    pub id: String,
    /// Request kind.
    pub kind: String,
    /// PIPL article of the right exercised.
    pub article: &'static str,
    /// State.
    pub state: String,
    /// Subject id (staff views only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    /// Refusal: code, sentence and rule (Art. 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// The step that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    /// Jurisdiction key.
    pub jurisdiction: String,
    /// RFC 3339.
    pub received_at: String,
    /// RFC 3339: the effective due date (extended when extended).
    pub due_at: String,
    /// Whether an extension with notice applies.
    pub extended: bool,
    /// Open past its due date.
    pub overdue: bool,
    /// The request this one duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Steps committed so far.
    pub steps_done: Vec<String>,
    /// Steps of this kind, in order.
    pub steps: Vec<&'static str>,
    /// Signed receipt (deletion, cancellation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Value>,
    /// RFC 3339, when completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// A refusal and its reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// Stable code from [`REJECTION_REASONS`].
    pub code: String,
    /// Sentence for the requester.
    pub explanation: &'static str,
    /// Rule relied on.
    pub source: &'static str,
}

/// Format of a downloaded result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// JSON document.
    Json,
    /// CSV, one row per item (copy and access only).
    Csv,
}

/// The steps of a request kind, in execution order.
#[must_use]
pub fn steps_of(kind: DsrKind) -> &'static [&'static str] {
    match kind {
        DsrKind::Access | DsrKind::Copy => &["package"],
        DsrKind::Explanation => &["explain"],
        DsrKind::Correction => &["correct"],
        DsrKind::Withdrawal => &["withdraw"],
        DsrKind::Deletion => &["restrict_retained", "shred", "notify_recipients", "receipt"],
        DsrKind::Cancellation => &[
            "withdraw",
            "restrict_retained",
            "shred",
            "notify_recipients",
            "receipt",
        ],
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn new_token() -> Result<String, CoreError> {
    let mut b = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| CoreError::Conflict("rng_unavailable"))?;
    Ok(format!(
        "dsr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

fn kind_of(row: &DsrRow) -> Result<DsrKind, CoreError> {
    row.kind
        .parse()
        .map_err(|_| CoreError::Conflict("dsr_kind_corrupt"))
}

fn state_of(row: &DsrRow) -> Result<DsrState, CoreError> {
    row.state
        .parse()
        .map_err(|_| CoreError::Conflict("dsr_state_corrupt"))
}

fn steps_done(row: &DsrRow) -> Vec<String> {
    row.steps_done
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn rejection(code: &str) -> Option<Rejection> {
    REJECTION_REASONS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(c, e, s)| Rejection {
            code: (*c).to_string(),
            explanation: e,
            source: s,
        })
}

/// Masks an account id for a message: first 3 and last 2 characters kept.
fn mask_account(a: &str) -> String {
    let chars: Vec<char> = a.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let mut s: String = chars[..3].iter().collect();
    s.push_str(&"*".repeat(chars.len() - 5));
    s.extend(&chars[chars.len() - 2..]);
    s
}

fn aad<'a>(subject_id: &'a str, category: &'a str, id: &'a str, key_id: &'a str) -> Aad<'a> {
    Aad {
        subject_id,
        category,
        field: id,
        key_id,
    }
}

/// Converts a JSON package to CSV: `section,record,name,category,value,detail`.
fn package_csv(pkg: &Value) -> Result<Vec<u8>, CoreError> {
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
    fn require_dsr_staff(p: &Principal) -> Result<(), CoreError> {
        if p.has_role(ROLE_ADMIN) || p.has_role(ROLE_DPO) {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                code: "role_required",
                message: "request handling needs the admin or dpo role",
            })
        }
    }

    fn dsr_view(&self, row: &DsrRow, staff: bool, now: i64) -> DsrView {
        let kind = row.kind.parse::<DsrKind>().ok();
        let due = row.extended_due_at.unwrap_or(row.due_at);
        let open = !matches!(row.state.as_str(), "completed" | "rejected");
        DsrView {
            id: row.id.clone(),
            kind: row.kind.clone(),
            article: kind.map_or("", |k| k.article()),
            state: row.state.clone(),
            subject_id: if staff { row.subject_id.clone() } else { None },
            rejection: row.reason.as_deref().and_then(rejection),
            failed_step: row.failed_step.clone(),
            jurisdiction: row.jurisdiction.clone(),
            received_at: format_timestamp(row.received_at),
            due_at: format_timestamp(due),
            extended: row.extended_due_at.is_some(),
            overdue: open && due < now,
            // The requester learns of a duplicate only once verified: before that, it would tell
            // whether the address has an account.
            duplicate_of: if staff
                || !matches!(row.state.as_str(), "received" | "identity_unverified")
            {
                row.duplicate_of.clone()
            } else {
                None
            },
            steps_done: steps_done(row),
            steps: kind.map(steps_of).unwrap_or_default().to_vec(),
            receipt: row
                .receipt
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            completed_at: row.completed_at.map(format_timestamp),
        }
    }

    /// An audit entry of a request's life cycle: action `dsr.<what>`, the request id, kind and
    /// state in `detail` (no PI).
    fn dsr_audit(&self, actor: &str, what: &str, row: &DsrRow, now: i64) -> AuditRecord {
        let mut rec = self.audit_base(actor, &format!("dsr.{what}"), now, None);
        rec.subject_id = row.subject_id.clone();
        rec.detail = Some(format!(
            "dsr={} kind={} state={}",
            row.id, row.kind, row.state
        ));
        rec
    }

    /// Moves `row` to `to` (checked by [`can_transition`]) and queues the audit entry.
    fn transition(
        &self,
        tx: &mut WriteTx,
        row: &mut DsrRow,
        to: DsrState,
        actor: &str,
        what: &str,
        now: i64,
    ) -> Result<(), CoreError> {
        let from = state_of(row)?;
        if !can_transition(from, to) {
            return Err(CoreError::Conflict("dsr_transition_not_allowed"));
        }
        row.state = to.as_str().to_string();
        row.updated_at = now;
        if to.is_terminal() {
            row.completed_at = Some(now);
        }
        let mut rec = self.dsr_audit(actor, what, row, now);
        if let Some(r) = &row.reason {
            rec.reason = Some(r.clone());
        }
        if let Some(s) = &row.failed_step {
            rec.outcome = "failed".into();
            rec.detail = rec.detail.map(|d| format!("{d} step={s}"));
        }
        tx.audit(rec);
        Ok(())
    }

    /// The requester's address for `channel` and a masked account hint, opened from the
    /// subject's own fields.
    async fn contact_of(
        &self,
        subject_id: &str,
        channel: Channel,
    ) -> Result<(Option<String>, Option<String>), CoreError> {
        let Some(dek) = self.dek(subject_id, SCOPE_PRIMARY).await? else {
            return Ok((None, None));
        };
        let want = match channel {
            Channel::Email => IdentifierKind::Email,
            Channel::Sms => IdentifierKind::Mobile,
        };
        let mut to = None;
        let mut hint = None;
        for r in self.store().fields(subject_id).await? {
            if r.restricted_until.is_some() {
                continue;
            }
            let ident = self
                .policy()
                .category(&r.category)
                .and_then(|c| c.identifier);
            if ident == Some(want) && to.is_none() {
                if let Ok(FieldValue::Text(s)) = Self::open_row(&dek, &r) {
                    to = Some(s);
                }
            } else if ident == Some(IdentifierKind::AccountId) {
                if let Ok(FieldValue::Text(s)) = Self::open_row(&dek, &r) {
                    hint = Some(mask_account(&s));
                }
            }
        }
        Ok((to, hint))
    }

    /// Files a request (PIPL Art. 44–50; policy §7.2, §XI): validates it, finds the accounts
    /// under the claimed identity by blind index, creates one request per account (or one
    /// that can never be verified when none matches), links duplicates, and sends each account
    /// its own one-time code. Everything is committed, with the audit entries, before any code
    /// is sent; a failed send leaves the request waiting for a resend.
    ///
    /// # Errors
    /// `Invalid` for an unknown kind, jurisdiction, ground, purpose or correction field, or a
    /// malformed identity (never echoing it); store failures.
    pub async fn dsr_create(&self, input: &DsrInput) -> Result<Vec<CreatedDsr>, CoreError> {
        let kind: DsrKind = input.kind.parse().map_err(|_| {
            CoreError::invalid(
                "kind",
                "dsr_kind_unknown",
                "kind is access, copy, correction, deletion, withdrawal, cancellation or explanation",
            )
        })?;
        let (ident, channel, raw) = match (&input.email, &input.mobile) {
            (Some(e), None) => (IdentifierKind::Email, Channel::Email, e),
            (None, Some(m)) => (IdentifierKind::Mobile, Channel::Sms, m),
            _ => {
                return Err(CoreError::invalid(
                    "identity",
                    "identity_required",
                    "give exactly one of email or mobile",
                ))
            }
        };
        let norm = ident
            .normalize(raw)
            .map_err(|e| CoreError::invalid(ident.as_str(), e.code, e.reason))?;
        let settings = self.policy().dsr();
        let jkey = input
            .jurisdiction
            .as_deref()
            .unwrap_or(&settings.default_jurisdiction);
        let jurisdiction = self.policy().jurisdiction(jkey).ok_or_else(|| {
            CoreError::invalid(
                "jurisdiction",
                "unknown_jurisdiction",
                "jurisdiction is not declared in the policy",
            )
        })?;
        let params = self.dsr_params(kind, input)?;
        let corrections = if kind == DsrKind::Correction {
            if input.corrections.is_empty() {
                return Err(CoreError::invalid(
                    "corrections",
                    "corrections_required",
                    "a correction names at least one field",
                ));
            }
            let inputs: Vec<FieldInput> = input.corrections.iter().map(to_field_input).collect();
            // Validates categories, names and values now, so a bad correction is refused
            // before anything is stored.
            self.prepare(&inputs).map_err(|e| match e {
                CoreError::Invalid {
                    field,
                    code,
                    reason,
                } => CoreError::Invalid {
                    field: field.replacen("fields", "corrections", 1),
                    code,
                    reason,
                },
                other => other,
            })?;
            Some(Zeroizing::new(
                serde_json::to_vec(&input.corrections).map_err(|_| {
                    CoreError::invalid(
                        "corrections",
                        "corrections_malformed",
                        "corrections are not serializable",
                    )
                })?,
            ))
        } else {
            None
        };

        let digest = self.keys().blind_index(ident.as_str(), &norm);
        let subjects = self.store().lookup(ident.as_str(), &digest).await?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let due = jurisdiction.due(now_t).unix_timestamp();
        let window = i64::from(settings.duplicate_window_days) * 86_400;
        let targets: Vec<Option<&str>> = if subjects.is_empty() {
            vec![None]
        } else {
            subjects.iter().map(|s| Some(s.as_str())).collect()
        };
        let mut out = Vec::new();
        let mut sends = Vec::new();
        let mut rows = Vec::new();
        let mut codes = Vec::new();
        let mut audits = Vec::new();
        for s in targets {
            let id = uuid::Uuid::new_v4().to_string();
            let token = new_token()?;
            let params_text = params.to_string();
            let duplicate_of = match s {
                Some(s) if window > 0 && kind != DsrKind::Correction => self
                    .store()
                    .dsr_first_since(s, kind.as_str(), &params_text, now - window, &id)
                    .await?
                    .map(|r| r.id),
                _ => None,
            };
            let sealed_params = match (s, &corrections) {
                (Some(s), Some(c)) => {
                    let dek = self
                        .dek(s, SCOPE_PRIMARY)
                        .await?
                        .ok_or(CoreError::Conflict("subject_key_missing"))?;
                    Some(dek.seal(&aad(s, PARAMS_CATEGORY, &id, dek.key_id()), c))
                }
                _ => None,
            };
            let mut row = DsrRow {
                id: id.clone(),
                subject_id: s.map(str::to_string),
                kind: kind.as_str().to_string(),
                state: DsrState::Received.as_str().to_string(),
                channel: channel.as_str().to_string(),
                jurisdiction: jurisdiction.key.clone(),
                received_at: now,
                due_at: due,
                duplicate_of,
                token_hash: token_hash(&token),
                step_results: "{}".into(),
                params: params_text,
                sealed_params,
                updated_at: now,
                ..DsrRow::default()
            };
            let mut rec = self.dsr_audit(SUBJECT_ACTOR, "received", &row, now);
            rec.outcome = if s.is_some() { "ok" } else { "no_match" }.into();
            if let Some(d) = &row.duplicate_of {
                rec.detail = rec.detail.map(|x| format!("{x} duplicate_of={d}"));
            }
            audits.push(rec);
            row.state = DsrState::IdentityUnverified.as_str().to_string();
            // Every request gets a code row, also one matching nobody or over the send limit
            // (its code is never sent): verification and resends then answer alike whether
            // or not the identity has an account.
            let code = Zeroizing::new(pivault_crypto::generate_code(CODE_DIGITS));
            codes.push(DsrCodeRow {
                request_id: id.clone(),
                digest: self.keys().code_digest(&id, &code).to_vec(),
                expires_at: now + i64::from(settings.code_ttl_seconds),
                attempts_left: i64::from(settings.code_attempts),
                sends: 1,
                sent_at: now,
            });
            if let Some(s) = s {
                if self.code_quota_left(s, now).await? {
                    sends.push((id.clone(), s.to_string(), code));
                } else {
                    let mut rec = self.dsr_audit(SUBJECT_ACTOR, "code_suppressed", &row, now);
                    rec.outcome = "deny".into();
                    audits.push(rec);
                    warn!(dsr = %id, "code send limit reached for this person; code not sent");
                }
            }
            audits.push(self.dsr_audit(SUBJECT_ACTOR, "identity_unverified", &row, now));
            out.push(CreatedDsr {
                id,
                token,
                state: DsrState::IdentityUnverified.as_str(),
                due_at: format_timestamp(due),
            });
            rows.push(row);
        }
        let mut tx = self.store().begin(now).await?;
        for r in &rows {
            tx.insert_dsr(r).await?;
        }
        for c in &codes {
            tx.put_dsr_code(c).await?;
        }
        for a in audits {
            tx.audit(a);
        }
        tx.commit().await?;
        for (id, subject, code) in sends {
            self.send_code(&id, &subject, kind, channel, &code).await;
        }
        Ok(out)
    }

    /// Whether another code may be sent for `subject`'s requests within 24 hours.
    async fn code_quota_left(&self, subject: &str, now: i64) -> Result<bool, CoreError> {
        Ok(self
            .store()
            .dsr_codes_sent_since(subject, now - 86_400)
            .await?
            < MAX_CODES_PER_SUBJECT_PER_DAY)
    }

    fn dsr_params(&self, kind: DsrKind, input: &DsrInput) -> Result<Value, CoreError> {
        let mut params = json!({});
        if matches!(kind, DsrKind::Deletion | DsrKind::Cancellation) {
            let ground = input.ground.as_deref().unwrap_or("subject_request");
            if !ERASURE_GROUNDS.contains(&ground) {
                return Err(CoreError::invalid(
                    "ground",
                    "unknown_ground",
                    "ground is one of PIPL Art. 47 / policy §7.1: subject_request, purpose_achieved, service_ended, retention_expired, consent_withdrawn, unlawful_processing, no_consent, breach_of_agreement",
                ));
            }
            params["ground"] = json!(ground);
        } else if input.ground.is_some() {
            return Err(CoreError::invalid(
                "ground",
                "ground_not_applicable",
                "only deletion and cancellation take a ground",
            ));
        }
        if !input.purposes.is_empty() {
            if kind != DsrKind::Withdrawal {
                return Err(CoreError::invalid(
                    "purposes",
                    "purposes_not_applicable",
                    "only withdrawal takes purposes",
                ));
            }
            for (i, p) in input.purposes.iter().enumerate() {
                let purpose = self.policy().purpose(p).ok_or_else(|| {
                    CoreError::invalid(
                        format!("purposes[{i}]"),
                        "unknown_purpose",
                        "purpose is not declared in the policy",
                    )
                })?;
                if purpose.legal_basis != LegalBasis::Consent {
                    return Err(CoreError::invalid(
                        format!("purposes[{i}]"),
                        "purpose_not_consent_based",
                        "only consent-based purposes can be withdrawn (PIPL Art. 15)",
                    ));
                }
            }
            params["purposes"] = json!(input.purposes);
        }
        if !input.corrections.is_empty() && kind != DsrKind::Correction {
            return Err(CoreError::invalid(
                "corrections",
                "corrections_not_applicable",
                "only correction takes corrections",
            ));
        }
        Ok(params)
    }

    /// Sends a request's code to the account's own address. Failures are logged (request id
    /// and error code only) and leave the request waiting for a resend.
    async fn send_code(
        &self,
        id: &str,
        subject: &str,
        kind: DsrKind,
        channel: Channel,
        code: &str,
    ) {
        let Some(sender) = self.code_sender() else {
            warn!(dsr = %id, "no code sender configured; the code was not sent");
            return;
        };
        let (to, hint) = match self.contact_of(subject, channel).await {
            Ok(x) => x,
            Err(e) => {
                warn!(dsr = %id, error = %e, "could not open the contact address");
                return;
            }
        };
        let Some(to) = to else {
            warn!(dsr = %id, channel = channel.as_str(), "the account has no address on this channel");
            return;
        };
        let ttl = self.policy().dsr().code_ttl_seconds / 60;
        let account = hint.unwrap_or_else(|| "-".into());
        let body = Zeroizing::new(format!(
            "您的个人信息请求（{kind}，账号 {account}）验证码：{code}，{ttl} 分钟内有效。\n\
             Your verification code is {code} (personal information request: {kind}, account \
             {account}). It expires in {ttl} minutes.\n\
             Request: {id}\n\
             If you did not make this request, ignore this message.\n",
            kind = kind.as_str()
        ));
        match sender
            .send(channel, &to, "pivault: verification code / 验证码", &body)
            .await
        {
            Ok(()) => info!(dsr = %id, channel = channel.as_str(), "verification code sent"),
            Err(code) => {
                warn!(dsr = %id, channel = channel.as_str(), error = code, "verification code not sent")
            }
        }
    }

    /// Loads a request and checks the requester's token in constant time.
    async fn dsr_for_requester(&self, id: &str, token: &str) -> Result<DsrRow, CoreError> {
        let row = self.store().dsr(id).await?;
        // Same answer for an unknown id and a wrong token: ids are not secrets to probe.
        match row {
            Some(r) if ct_eq(&r.token_hash, &token_hash(token)) => Ok(r),
            _ => Err(CoreError::Forbidden {
                code: "dsr_token_invalid",
                message: "unknown request or wrong request token",
            }),
        }
    }

    /// Checks a one-time code (policy §7.2): at most `code_attempts` tries, valid
    /// `code_ttl_seconds`, compared in constant time. A request already verified (or past
    /// verification, or marked duplicate and verified) answers with its view: verifying twice
    /// is not an error.
    ///
    /// # Errors
    /// `Forbidden` (`dsr_token_invalid`) for a wrong token; `Invalid` (`code_mismatch`,
    /// `code_expired`, `code_exhausted`, `code_malformed`); `Conflict` for a rejected request.
    pub async fn dsr_verify(
        &self,
        id: &str,
        token: &str,
        code: &str,
    ) -> Result<DsrView, CoreError> {
        let row = self.dsr_for_requester(id, token).await?;
        let now = self.now().unix_timestamp();
        match state_of(&row)? {
            DsrState::IdentityUnverified | DsrState::Received => {}
            DsrState::Rejected => return Err(CoreError::Conflict("dsr_rejected")),
            _ => return Ok(self.dsr_view(&row, false, now)),
        }
        if code.len() != CODE_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CoreError::invalid(
                "code",
                "code_malformed",
                "the code is 6 digits",
            ));
        }
        let mut tx = self.store().begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)? != DsrState::IdentityUnverified {
            drop(tx);
            return Ok(self.dsr_view(&row, false, now));
        }
        let Some(c) = tx.dsr_code(id).await? else {
            return Err(CoreError::invalid(
                "code",
                "code_exhausted",
                "no valid code: request a new one",
            ));
        };
        if c.attempts_left <= 0 {
            return Err(CoreError::invalid(
                "code",
                "code_exhausted",
                "no attempts left: request a new code",
            ));
        }
        if c.expires_at <= now {
            return Err(CoreError::invalid(
                "code",
                "code_expired",
                "the code has expired: request a new one",
            ));
        }
        let ok = ct_eq(&self.keys().code_digest(id, code), &c.digest);
        if !ok {
            let left = c.attempts_left - 1;
            tx.set_code_attempts(id, left, left <= 0).await?;
            let mut rec = self.dsr_audit(SUBJECT_ACTOR, "verify_failed", &row, now);
            rec.outcome = "deny".into();
            rec.detail = rec.detail.map(|d| format!("{d} attempts_left={left}"));
            tx.audit(rec);
            tx.commit().await?;
            return Err(CoreError::invalid(
                "code",
                "code_mismatch",
                "the code does not match",
            ));
        }
        tx.set_code_attempts(id, 0, true).await?;
        // An earlier verified request of the same kind and parameters makes this one its
        // duplicate (checked here too: the earlier one may have been verified after this one
        // was filed).
        let window = i64::from(self.policy().dsr().duplicate_window_days) * 86_400;
        if row.duplicate_of.is_none() && window > 0 && row.kind != DsrKind::Correction.as_str() {
            if let Some(subject) = row.subject_id.clone() {
                row.duplicate_of = tx
                    .dsr_first_since(
                        &subject,
                        &row.kind,
                        &row.params,
                        row.received_at - window,
                        id,
                    )
                    .await?
                    .filter(|o| o.received_at <= row.received_at)
                    .map(|o| o.id);
            }
        }
        self.transition(
            &mut tx,
            &mut row,
            DsrState::Verified,
            SUBJECT_ACTOR,
            "verified",
            now,
        )?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, false, now))
    }

    /// Sends a fresh code (the old one stops working), at most 5 sends per request.
    ///
    /// # Errors
    /// `Forbidden` for a wrong token; `Conflict` when not waiting for verification, or
    /// (`code_send_limit`) after 5 sends.
    pub async fn dsr_resend(&self, id: &str, token: &str) -> Result<DsrView, CoreError> {
        let row = self.dsr_for_requester(id, token).await?;
        let now = self.now().unix_timestamp();
        if state_of(&row)? != DsrState::IdentityUnverified {
            return Err(CoreError::Conflict("dsr_not_awaiting_verification"));
        }
        let subject = row.subject_id.clone();
        let settings = self.policy().dsr();
        let code = Zeroizing::new(pivault_crypto::generate_code(CODE_DIGITS));
        let mut tx = self.store().begin(now).await?;
        let sends = tx.dsr_code(id).await?.map_or(0, |c| c.sends);
        if sends >= MAX_CODE_SENDS {
            return Err(CoreError::Conflict("code_send_limit"));
        }
        tx.put_dsr_code(&DsrCodeRow {
            request_id: id.to_string(),
            digest: self.keys().code_digest(id, &code).to_vec(),
            expires_at: now + i64::from(settings.code_ttl_seconds),
            attempts_left: i64::from(settings.code_attempts),
            sends: sends + 1,
            sent_at: now,
        })
        .await?;
        tx.audit(self.dsr_audit(SUBJECT_ACTOR, "code_resent", &row, now));
        tx.commit().await?;
        let channel = Channel::of(&row.channel);
        // Nothing matched the claimed identity: the code is kept but goes nowhere.
        if let Some(subject) = subject {
            if self.code_quota_left(&subject, now).await? {
                self.send_code(id, &subject, kind_of(&row)?, channel, &code)
                    .await;
            } else {
                warn!(dsr = %id, "code send limit reached for this person; code not sent");
            }
        }
        Ok(self.dsr_view(&row, false, now))
    }

    /// The requester's view of their request.
    ///
    /// # Errors
    /// `Forbidden` for a wrong token.
    pub async fn dsr_status(&self, id: &str, token: &str) -> Result<DsrView, CoreError> {
        let row = self.dsr_for_requester(id, token).await?;
        Ok(self.dsr_view(&row, false, self.now().unix_timestamp()))
    }

    /// A request as staff see it.
    ///
    /// # Errors
    /// `Forbidden` without the admin or dpo role; `NotFound`.
    pub async fn dsr_show(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let row = self
            .store()
            .dsr(id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        Ok(self.dsr_view(&row, true, self.now().unix_timestamp()))
    }

    /// Requests matching `f` (with `due_before`: open requests due before it — overdue and
    /// near-due queues).
    ///
    /// # Errors
    /// `Forbidden` without the admin or dpo role.
    pub async fn dsr_list(&self, p: &Principal, f: &DsrFilter) -> Result<Vec<DsrView>, CoreError> {
        Self::require_dsr_staff(p)?;
        let now = self.now().unix_timestamp();
        Ok(self
            .store()
            .dsr_list(f)
            .await?
            .iter()
            .map(|r| self.dsr_view(r, true, now))
            .collect())
    }

    /// Accepts a verified request for execution (`verified → in_progress`).
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` from any other state.
    pub async fn dsr_approve(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store().begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)? == DsrState::InProgress {
            drop(tx);
            return Ok(self.dsr_view(&row, true, now));
        }
        if state_of(&row)? != DsrState::Verified {
            return Err(CoreError::Conflict("dsr_not_verified"));
        }
        self.transition(
            &mut tx,
            &mut row,
            DsrState::InProgress,
            &p.name,
            "approved",
            now,
        )?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Refuses a request with a reason from [`REJECTION_REASONS`] (PIPL Art. 50).
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Invalid` (`unknown_reason`); `Conflict` for a request that is
    /// completed, rejected or executing.
    pub async fn dsr_reject(
        &self,
        p: &Principal,
        id: &str,
        reason: &str,
    ) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        if rejection(reason).is_none() {
            return Err(CoreError::invalid(
                "reason",
                "unknown_reason",
                "reason is one of identity_not_verified, no_matching_subject, manifestly_unfounded, legal_obligation, national_security_or_public_interest, criminal_proceedings, harms_others, trade_secret",
            ));
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store().begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if !can_transition(state_of(&row)?, DsrState::Rejected) {
            return Err(CoreError::Conflict("dsr_cannot_be_rejected"));
        }
        row.reason = Some(reason.to_string());
        tx.dsr_code(id).await?;
        self.transition(
            &mut tx,
            &mut row,
            DsrState::Rejected,
            &p.name,
            "rejected",
            now,
        )?;
        tx.set_code_attempts(id, 0, true).await?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Extends an open request's deadline by its jurisdiction's extension (GDPR Art. 12(3):
    /// two further months, with notice to the requester within the first month), and sends the
    /// notice.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` (`no_extension` where the jurisdiction has none,
    /// `already_extended`, `dsr_closed`).
    pub async fn dsr_extend(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let mut tx = self.store().begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)?.is_terminal() {
            return Err(CoreError::Conflict("dsr_closed"));
        }
        if row.extended_due_at.is_some() {
            return Err(CoreError::Conflict("already_extended"));
        }
        // GDPR Art. 12(3): the requester is told of the extension within the first period.
        if now > row.due_at {
            return Err(CoreError::Conflict("extension_too_late"));
        }
        let received = time::OffsetDateTime::from_unix_timestamp(row.received_at)
            .map_err(|_| CoreError::Conflict("dsr_time_corrupt"))?;
        let ext = self
            .policy()
            .jurisdiction(&row.jurisdiction)
            .and_then(|j| j.extended_due(received))
            .ok_or(CoreError::Conflict("no_extension"))?;
        row.extended_due_at = Some(ext.unix_timestamp());
        row.updated_at = now;
        let mut rec = self.dsr_audit(&p.name, "extended", &row, now);
        rec.detail = rec
            .detail
            .map(|d| format!("{d} due={}", format_timestamp(ext.unix_timestamp())));
        tx.audit(rec);
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        if let (Some(s), Some(sender)) = (&row.subject_id, self.code_sender()) {
            let channel = Channel::of(&row.channel);
            if let Ok((Some(to), _)) = self.contact_of(s, channel).await {
                let body = format!(
                    "Your personal information request {id} needs more time; we will answer by {} (GDPR Art. 12(3)).\n",
                    format_timestamp(ext.unix_timestamp())
                );
                if let Err(code) = sender
                    .send(channel, &to, "pivault: request extended", &body)
                    .await
                {
                    warn!(dsr = %id, error = code, "extension notice not sent");
                }
            }
        }
        Ok(self.dsr_view(&row, true, now))
    }

    /// Executes an approved (or failed, to resume it) request's remaining steps, each in its
    /// own transaction with its progress and audit entry. A duplicate is never executed: it is
    /// completed with a link to the request it duplicates. A failing step leaves the request
    /// `failed(step)` and runs no later step; running it again resumes at that step.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` for a request not approved; `Conflict`
    /// (`fault_injected`) when an injected halt stops execution.
    pub async fn dsr_run(&self, p: &Principal, id: &str) -> Result<DsrView, CoreError> {
        Self::require_dsr_staff(p)?;
        let row = self
            .store()
            .dsr(id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        let kind = kind_of(&row)?;
        let now = self.now().unix_timestamp();
        match state_of(&row)? {
            DsrState::InProgress => {}
            DsrState::Failed => {
                let mut tx = self.store().begin(now).await?;
                let mut r = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
                if state_of(&r)? == DsrState::Failed {
                    r.failed_step = None;
                    self.transition(
                        &mut tx,
                        &mut r,
                        DsrState::InProgress,
                        &p.name,
                        "resumed",
                        now,
                    )?;
                    tx.update_dsr(&r).await?;
                    tx.commit().await?;
                }
            }
            DsrState::Completed => return Ok(self.dsr_view(&row, true, now)),
            _ => return Err(CoreError::Conflict("dsr_not_approved")),
        }
        if row.duplicate_of.is_some() {
            let mut tx = self.store().begin(now).await?;
            let mut r = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
            if state_of(&r)? == DsrState::InProgress {
                r.step_results = json!({ "duplicate_of": r.duplicate_of }).to_string();
                self.transition(
                    &mut tx,
                    &mut r,
                    DsrState::Completed,
                    &p.name,
                    "completed_as_duplicate",
                    now,
                )?;
                tx.update_dsr(&r).await?;
                tx.commit().await?;
            }
            return Ok(self.dsr_view(&r, true, now));
        }
        let steps = steps_of(kind);
        // The request as this run last saw it: each step returns the row it committed, so no
        // step needs a read of its own before it (`run_step` re-reads under the write lock).
        let mut cur = row;
        if state_of(&cur)? == DsrState::Failed {
            cur = self
                .store()
                .dsr(id)
                .await?
                .ok_or(CoreError::NotFound("dsr"))?;
        }
        for (i, step) in steps.iter().enumerate() {
            if steps_done(&cur).iter().any(|s| s == step) {
                continue;
            }
            let last = i + 1 == steps.len();
            let fault = self.fault();
            let res = if fault == Some(Fault::FailAt((*step).to_string())) {
                Err(CoreError::Conflict("fault_injected"))
            } else {
                self.run_step(&p.name, id, step, last).await
            };
            match res {
                Err(e) => {
                    warn!(dsr = %id, step = *step, error = %e, "request step failed");
                    return self.mark_failed(&p.name, id, step).await;
                }
                Ok(Some(r)) => cur = r,
                // Another run moved the request meanwhile: follow it.
                Ok(None) => {
                    cur = self
                        .store()
                        .dsr(id)
                        .await?
                        .ok_or(CoreError::NotFound("dsr"))?;
                    if state_of(&cur)? != DsrState::InProgress {
                        return Ok(self.dsr_view(&cur, true, self.now().unix_timestamp()));
                    }
                }
            }
            match fault {
                Some(Fault::HaltAfter(s)) if s == *step => {
                    return Err(CoreError::Conflict("fault_injected"));
                }
                Some(Fault::AbortAfter(s)) if s == *step => std::process::abort(),
                _ => {}
            }
        }
        Ok(self.dsr_view(&cur, true, self.now().unix_timestamp()))
    }

    async fn mark_failed(&self, actor: &str, id: &str, step: &str) -> Result<DsrView, CoreError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store().begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        row.failed_step = Some(step.to_string());
        self.transition(&mut tx, &mut row, DsrState::Failed, actor, "failed", now)?;
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        Ok(self.dsr_view(&row, true, now))
    }

    /// Runs one step in one transaction: re-reads the request under the write lock (a
    /// concurrent run may have done the step), stages the step's change, records the step and
    /// its results (completing the request after the last step) and its audit entry, commits.
    async fn run_step(
        &self,
        actor: &str,
        id: &str,
        step: &str,
        last: bool,
    ) -> Result<Option<DsrRow>, CoreError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store().begin(now).await?;
        let mut row = tx.dsr(id).await?.ok_or(CoreError::NotFound("dsr"))?;
        if state_of(&row)? != DsrState::InProgress || steps_done(&row).iter().any(|s| s == step) {
            return Ok(None);
        }
        let subject = row
            .subject_id
            .clone()
            .ok_or(CoreError::Conflict("dsr_without_subject"))?;
        let mut shredded = false;
        let mut rec = self.dsr_audit(actor, &format!("step.{step}"), &row, now);
        let results: Value = match step {
            "package" => self.step_package(&mut tx, &row, &subject, now).await?,
            "explain" => self.step_explain(&mut tx, &row, &subject, now).await?,
            "correct" => {
                let (n, cats) = self.step_correct(&mut tx, &row, &subject, now).await?;
                row.sealed_params = None;
                rec.categories = AuditRecord::join_categories(cats.iter().map(String::as_str));
                json!({ "fields": n })
            }
            "withdraw" => self.step_withdraw(&mut tx, &row, &subject, now).await?,
            "restrict_retained" => {
                let dek = self.dek_in(&mut tx, &subject, SCOPE_PRIMARY).await?;
                match dek {
                    Some(dek)
                        if tx.subject_status(&subject).await?.as_deref() == Some("active") =>
                    {
                        let rows = tx.fields(&subject).await?;
                        let (_, retained) = self
                            .stage_restrict(&mut tx, &subject, &dek, rows, now)
                            .await?;
                        rec.categories = AuditRecord::join_categories(
                            retained.iter().map(|r| r.category.as_str()),
                        );
                        json!({ "retained": retained.iter().map(|r| json!({
                            "category": r.category, "fields": r.fields, "until": format_timestamp(r.until),
                            "basis": r.basis, "clause": r.clause,
                        })).collect::<Vec<_>>() })
                    }
                    _ => json!({ "retained": [], "already_erased": true }),
                }
            }
            "shred" => {
                let dek = self.dek_in(&mut tx, &subject, SCOPE_PRIMARY).await?;
                match dek {
                    Some(dek)
                        if tx.subject_status(&subject).await?.as_deref() == Some("active") =>
                    {
                        let rows = tx.fields(&subject).await?;
                        let out = self
                            .stage_shred(&mut tx, &subject, &dek, &rows, now)
                            .await?;
                        shredded = true;
                        rec.categories = AuditRecord::join_categories(
                            out.deleted_categories.iter().map(String::as_str),
                        );
                        json!({
                            "destroyed_key_id": out.destroyed_key_id,
                            "deleted_fields": out.deleted_fields,
                            "deleted_categories": out.deleted_categories,
                            "blind_index_entries_removed": out.blind_index_entries_removed,
                        })
                    }
                    _ => json!({ "already_erased": true }),
                }
            }
            "notify_recipients" => {
                self.step_notify(&mut tx, &row, &subject, actor, now)
                    .await?
            }
            "receipt" => self.step_receipt(&mut tx, &mut row, &subject, now).await?,
            _ => return Err(CoreError::Conflict("dsr_step_unknown")),
        };
        let mut all: BTreeMap<String, Value> =
            serde_json::from_str(&row.step_results).unwrap_or_default();
        all.insert(step.to_string(), results);
        row.step_results = serde_json::to_string(&all).unwrap_or_else(|_| "{}".into());
        if !row.steps_done.is_empty() {
            row.steps_done.push(',');
        }
        row.steps_done.push_str(step);
        row.updated_at = now;
        tx.audit(rec);
        if last {
            self.transition(
                &mut tx,
                &mut row,
                DsrState::Completed,
                actor,
                "completed",
                now,
            )?;
        }
        tx.update_dsr(&row).await?;
        tx.commit().await?;
        if shredded {
            self.shredded(&subject);
        } else if matches!(step, "correct" | "withdraw") {
            self.facts_changed(&subject);
        }
        Ok(Some(row))
    }

    /// The subject's primary DEK inside a step's transaction (cache, else read through `tx`).
    async fn primary_dek(&self, tx: &mut WriteTx, subject: &str) -> Result<Arc<Dek>, CoreError> {
        self.dek_in(tx, subject, SCOPE_PRIMARY)
            .await?
            .ok_or(CoreError::Conflict("subject_key_missing"))
    }

    /// Access and copy (PIPL Art. 45): every field of the subject opened, by record, with the
    /// purposes, legal bases, retention and recipients of each category, the consent ledger
    /// and the disclosure ledger — sealed under the subject's DEK until downloaded.
    async fn step_package(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let dek = self.primary_dek(tx, subject).await?;
        let fields = tx.fields(subject).await?;
        let consents = tx.consent_events(subject).await?;
        let disclosures = tx.disclosures(Some(subject), i64::MIN, i64::MAX).await?;
        let mut records: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut cats: BTreeSet<&str> = BTreeSet::new();
        let mut n = 0;
        for r in fields.iter().filter(|r| r.restricted_until.is_none()) {
            let v = Self::open_row(&dek, r)?;
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
            "categories": categories,
            "consents": consents.iter().map(consent_json).collect::<Vec<_>>(),
            "disclosures": disclosures.iter().map(|d| json!({
                "action": d.action, "recipient": d.recipient, "purpose": d.purpose,
                "categories": d.categories, "legal_basis": d.legal_basis, "region": d.region,
                "at": format_timestamp(d.at),
            })).collect::<Vec<_>>(),
        });
        self.seal_result(tx, row, subject, &dek, &pkg).await?;
        Ok(
            json!({ "fields": n, "categories": cats.len(), "consents": consents.len(), "disclosures": disclosures.len() }),
        )
    }

    async fn seal_result(
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
    fn category_explanation(
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
            "retention": c.retention.as_ref().map(|r| json!({ "min_days": r.min_days, "basis": r.basis, "clause": r.clause })),
            "storage_region": policy.storage_region(),
            "recipients": recipients,
            "disclosures": disclosed,
        })
    }

    /// Explanation of the processing rules (PIPL Art. 48): for each category held about the
    /// subject, why, on which basis, how long and to whom; no PI values.
    async fn step_explain(
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
    async fn step_correct(
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
    async fn step_withdraw(
        &self,
        tx: &mut WriteTx,
        row: &DsrRow,
        subject: &str,
        now: i64,
    ) -> Result<Value, CoreError> {
        let params: Value = serde_json::from_str(&row.params).unwrap_or_default();
        let (_, state) = Self::consent_state_in(tx, subject, self.now()).await?;
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
    async fn step_notify(
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
        for (r, cats) in &by {
            let joined = AuditRecord::join_categories(cats.iter().copied());
            tx.insert_erasure_notice(&row.id, r, subject, &joined, now)
                .await?;
            let mut rec = self.dsr_audit(actor, "recipient_notified", row, now);
            rec.action = "recipient.erasure_notice".into();
            rec.categories = joined;
            rec.detail = rec.detail.map(|d| format!("{d} recipient={r}"));
            tx.audit(rec);
        }
        Ok(json!({ "recipients": by.keys().collect::<Vec<_>>() }))
    }

    /// The signed deletion receipt: refuses (the step fails) while anything of the subject is
    /// left outside retention — a half-deleted subject is never reported complete.
    async fn step_receipt(
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
        let signer = self.keys().receipt_signer();
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
            .store()
            .dsr(id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        self.dsr_result_of(&row, &p.name, format).await
    }

    async fn dsr_result_of(
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
                .store()
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
            .store()
            .dsr_result(&row.id)
            .await?
            .ok_or(CoreError::Conflict("result_shredded"))?;
        let dek = self
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
        self.append_audit(vec![rec]).await?;
        match format {
            ResultFormat::Json => Ok((plain[..].to_vec(), "application/json")),
            ResultFormat::Csv => {
                let v: Value = serde_json::from_slice(&plain[..])
                    .map_err(|_| CoreError::Conflict("package_corrupt"))?;
                Ok((package_csv(&v)?, "text/csv; charset=utf-8"))
            }
        }
    }

    /// Open requests per jurisdiction: overdue, and due within `near_due_days` (for the
    /// metric).
    ///
    /// # Errors
    /// Store failure.
    pub async fn dsr_due_counts(&self) -> Result<Vec<pivault_store::DueCount>, CoreError> {
        let now = self.now().unix_timestamp();
        let near = now + i64::from(self.policy().dsr().near_due_days) * 86_400;
        Ok(self.store().dsr_due_counts(now, near).await?)
    }

    /// Logs a warning for each open request overdue or due within `near_due_days` (ids, kind
    /// and state only); returns how many. Run periodically by the server.
    ///
    /// # Errors
    /// Store failure.
    pub async fn dsr_due_scan(&self) -> Result<usize, CoreError> {
        let now = self.now().unix_timestamp();
        let near = now + i64::from(self.policy().dsr().near_due_days) * 86_400;
        let due = self
            .store()
            .dsr_list(&DsrFilter {
                due_before: Some(near),
                limit: 1000,
                ..DsrFilter::default()
            })
            .await?;
        for r in &due {
            let d = r.extended_due_at.unwrap_or(r.due_at);
            if d < now {
                warn!(dsr = %r.id, kind = %r.kind, state = %r.state, due_at = %format_timestamp(d), "data subject request overdue");
            } else {
                warn!(dsr = %r.id, kind = %r.kind, state = %r.state, due_at = %format_timestamp(d), "data subject request near its due date");
            }
        }
        Ok(due.len())
    }
}

fn to_field_input(c: &CorrectionInput) -> FieldInput {
    FieldInput {
        category: c.category.clone(),
        name: c.name.clone(),
        record: c.record.clone(),
        value: c.value.clone(),
    }
}

fn consent_json(c: &ConsentRow) -> Value {
    json!({
        "purpose": c.purpose, "action": c.action, "at": format_timestamp(c.at),
        "given_by": c.given_by, "method": c.method, "separate": c.separate,
        "policy_version": c.policy_version, "recipient": c.recipient,
    })
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
