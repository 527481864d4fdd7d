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
pub use crate::fault::Fault;
pub use crate::ports::{Channel, CodeSender, SendFuture};
use crate::values::format_timestamp;
use crate::vault::Vault;
use crate::Principal;
use crate::ROLE_ADMIN;
use base64::Engine as _;
use pivault_crypto::Aad;
use pivault_domain::audit::AuditRecord;
use pivault_domain::dsr::{can_transition, DsrKind, DsrState};
use pivault_store::{DsrRow, WriteTx};
use serde::{Deserialize, Serialize};
use serde_json::Value;

mod group;
pub(crate) use group::StepQueue;
mod intake;
pub(crate) use intake::{by_guardian, Requester};
pub(crate) mod limits;
mod queue;
mod result;
mod run;
mod steps;

pub use result::verify_receipt_json;

/// Role of the privacy office's request handlers (besides `admin`).
pub const ROLE_DPO: &str = "dpo";

/// Actor name in audit rows for what the requester does (never their identity: PI).
pub(crate) const SUBJECT_ACTOR: &str = "dsr:requester";

/// Most codes sent for one request (first send plus resends).
pub(crate) const MAX_CODE_SENDS: i64 = 5;

/// Most codes sent for one person's requests in 24 hours, whatever the number of requests:
/// with 3 attempts each, at most 30 guesses a day at a 6-digit code, and no mailbox flooding.
pub(crate) const MAX_CODES_PER_SUBJECT_PER_DAY: i64 = 10;

/// Digits of a one-time code.
pub(crate) const CODE_DIGITS: u32 = 6;

/// AAD category of sealed request payloads (results, PI parameters).
pub(crate) const RESULT_CATEGORY: &str = "dsr.result";

pub(crate) const PARAMS_CATEGORY: &str = "dsr.params";

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
    /// Deletion: the ground (PIPL Art. 47; one of [`pivault_domain::erasure::ErasureGround`]); defaults to
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
    /// The corrected value, as sent (unparsed JSON, so a number keeps every digit; stored
    /// and replayed verbatim).
    pub value: Box<crate::values::RawValue>,
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

/// The steps of a request of `kind`, in order, as their stable names (see
/// [`pivault_domain::dsr::DsrStep::steps`]; the order decides resumption).
#[must_use]
pub fn steps_of(kind: DsrKind) -> Vec<&'static str> {
    pivault_domain::dsr::DsrStep::steps(kind)
        .iter()
        .map(|s| s.as_str())
        .collect()
}

/// The stored form of a request token: its SHA-256 (see `pivault_crypto::token_hash`).
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    pivault_crypto::token_hash(token).to_vec()
}

/// A new request token: `dsr_` and 32 random bytes (OS CSPRNG) in URL-safe base64.
pub(crate) fn new_token() -> Result<String, CoreError> {
    let b: [u8; 32] =
        pivault_crypto::try_random_bytes().ok_or(CoreError::Conflict("rng_unavailable"))?;
    Ok(format!(
        "dsr_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    ))
}

pub(crate) fn kind_of(row: &DsrRow) -> Result<DsrKind, CoreError> {
    row.kind
        .parse()
        .map_err(|_| CoreError::Conflict("dsr_kind_corrupt"))
}

pub(crate) fn state_of(row: &DsrRow) -> Result<DsrState, CoreError> {
    row.state
        .parse()
        .map_err(|_| CoreError::Conflict("dsr_state_corrupt"))
}

pub(crate) fn steps_done(row: &DsrRow) -> Vec<String> {
    row.steps_done
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub(crate) fn rejection(code: &str) -> Option<Rejection> {
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
pub(crate) fn mask_account(a: &str) -> String {
    let chars: Vec<char> = a.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let mut s: String = chars[..3].iter().collect();
    s.push_str(&"*".repeat(chars.len() - 5));
    s.extend(&chars[chars.len() - 2..]);
    s
}

pub(crate) fn aad<'a>(
    subject_id: &'a str,
    category: &'a str,
    id: &'a str,
    key_id: &'a str,
) -> Aad<'a> {
    Aad {
        subject_id,
        category,
        field: id,
        key_id,
    }
}

impl Vault {
    /// The policy's default jurisdiction (`[dsr] default_jurisdiction`), whose deadline a
    /// request filed without one takes.
    ///
    /// # Errors
    /// `Invalid` (`unknown_jurisdiction`) if the policy does not declare it.
    pub(crate) fn default_jurisdiction(
        &self,
    ) -> Result<&pivault_domain::dsr::Jurisdiction, CoreError> {
        self.policy()
            .jurisdiction(&self.policy().dsr().default_jurisdiction)
            .ok_or_else(|| {
                CoreError::invalid(
                    "jurisdiction",
                    "unknown_jurisdiction",
                    "jurisdiction is not declared in the policy",
                )
            })
    }

    pub(crate) fn require_dsr_staff(p: &Principal) -> Result<(), CoreError> {
        if p.has_role(ROLE_ADMIN) || p.has_role(ROLE_DPO) {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                code: "role_required",
                message: "request handling needs the admin or dpo role",
            })
        }
    }

    pub(crate) fn dsr_view(&self, row: &DsrRow, staff: bool, now: i64) -> DsrView {
        let kind = row.kind.parse::<DsrKind>().ok();
        let due = row.extended_due_at.unwrap_or(row.due_at);
        let open = !matches!(row.state.as_str(), "completed" | "rejected" | "expired");
        // The deadline runs for a person who proved who they are (policy §7.2): a request
        // waiting for verification is never overdue.
        let clock_running = !matches!(row.state.as_str(), "received" | "identity_unverified");
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
            overdue: open && clock_running && due < now,
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
            steps: kind.map(steps_of).unwrap_or_default(),
            receipt: row
                .receipt
                .as_deref()
                .and_then(|r| serde_json::from_str(r).ok()),
            completed_at: row.completed_at.map(format_timestamp),
        }
    }

    /// An audit entry of a request's life cycle: action `dsr.<what>`, the request id, kind and
    /// state in `detail` (no PI).
    pub(crate) fn dsr_audit(&self, actor: &str, what: &str, row: &DsrRow, now: i64) -> AuditRecord {
        let mut rec = self.auditor.base(actor, &format!("dsr.{what}"), now, None);
        rec.subject_id = row.subject_id.clone();
        rec.detail = Some(format!(
            "dsr={} kind={} state={}",
            row.id, row.kind, row.state
        ));
        rec
    }

    /// Moves `row` to `to` (checked by [`can_transition`]) and queues the audit entry.
    pub(crate) fn transition(
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
        if !matches!(to, DsrState::Received | DsrState::IdentityUnverified) {
            // Only a request waiting for verification can have filings folded into it.
            row.identity_digest = None;
        }
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
}
