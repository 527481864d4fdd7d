//! The outbox: every message pivault sends (policy §7.2 one-time codes, §8.3 incident notices,
//! §8.6 cessation notices, §8.7 misuse notices, PIPL Art. 39 cross-border notices, Art. 47
//! erasure notices to recipients) is a row written in the transaction of the change that
//! causes it, and delivered from here with retries and exponential backoff.
//!
//! - **Exactly once per (kind, recipient, cause).** The row's `dedup_key` is unique, so
//!   enqueueing the same notice twice (a retried request, a second instance, a resumed
//!   cessation) adds nothing.
//! - **Delivery.** A worker leases a batch of due rows under the audit-head lock, delivers
//!   each, and commits its outcome, its attempt rows and one audit entry (no value) per
//!   message before the next. A person is reached through the first channel of the policy's
//!   order (`[incident] channels`) that has an address and is configured; a permanent failure
//!   moves to the next channel at once, a transient one is retried with backoff. With no
//!   channel left the message is `announced` (covered by the public announcement) or, for
//!   a one-time code, `failed`.
//! - **Crashes.** A message sent but not yet recorded when the process dies is sent again
//!   after its lease runs out, under the same id: the email's `Message-ID` and the webhooks'
//!   `Idempotency-Key` let the receiver drop the copy. At most one message per worker is in
//!   that window.
//! - **No PI at rest.** Addresses are opened from the subject's sealed fields at delivery; the
//!   only secret payload (a one-time code) is sealed under the outbox key with the id as AAD.

use base64::Engine;
use pivault_domain::identifiers::IdentifierKind;
use pivault_domain::notice::{self, Lang, Rendered};
use pivault_domain::policy::localized;
use pivault_store::{OutboxAttemptRow, OutboxCounts, OutboxRow};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, warn};
use zeroize::Zeroizing;

use crate::error::CoreError;
use crate::messages::{kind, Enqueue};
use crate::ports::{Channel, Outgoing, SignedPost};
use crate::services::principals::Principals;
use crate::services::sealer::{Sealer, SCOPE_PRIMARY};
use crate::values::FieldValue;
use crate::{Principal, Vault};

/// Rows a worker leases at once.
const CLAIM_BATCH: i64 = 32;
/// How long a lease lasts (seconds): a worker that dies frees its rows after this.
const LEASE_SECS: i64 = 60;

/// What one delivery run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// Messages processed.
    pub processed: u64,
    /// Delivered on an individual channel.
    pub delivered: u64,
    /// Queued for the letter batch.
    pub letters: u64,
    /// Covered by the announcement (no channel reached the person).
    pub announced: u64,
    /// Given up.
    pub failed: u64,
    /// Left for a retry after a transient failure.
    pub retrying: u64,
}

/// One outbox message as the privacy office sees it: no address, no text, no payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxView {
    /// Id (also the idempotency key).
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Subject id.
    pub subject_id: Option<String>,
    /// `subject` or `recipient:<id>`.
    pub target: String,
    /// Cause id.
    pub cause: String,
    /// State.
    pub state: String,
    /// Channel that delivered it (or is being tried).
    pub channel: Option<String>,
    /// Attempts on the current channel.
    pub attempts: i64,
    /// Unix seconds.
    pub next_at: i64,
    /// Last error code.
    pub last_error: Option<String>,
    /// Every attempt: `(n, at, channel, outcome, status)`.
    pub history: Vec<AttemptView>,
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    /// 1, 2, …
    pub n: i64,
    /// Unix seconds.
    pub at: i64,
    /// Channel.
    pub channel: String,
    /// `delivered` or an error code.
    pub outcome: String,
    /// SMTP reply code or HTTP status.
    pub status: Option<i64>,
}

/// One letter to print (policy §8.3 "letter"). Holds PI (name, address): hand it only to
/// the letter renderer. `Debug` shows the reference only.
#[derive(Clone)]
pub struct PrintLetter {
    /// The outbox id.
    pub reference: String,
    /// The addressee's name.
    pub name: String,
    /// The postal address.
    pub address: String,
    /// Title.
    pub subject: String,
    /// Text.
    pub body: String,
}

impl std::fmt::Debug for PrintLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrintLetter")
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// A subject's contact data, opened for one delivery. Zeroized on drop.
#[derive(Default)]
pub(crate) struct Contacts {
    pub email: Option<Zeroizing<String>>,
    pub mobile: Option<Zeroizing<String>>,
    pub device: Option<Zeroizing<String>>,
    pub name: Option<Zeroizing<String>>,
    pub address: Option<Zeroizing<String>>,
    pub account_hint: Option<String>,
}

impl Contacts {
    fn for_channel(&self, c: Channel) -> Option<&str> {
        match c {
            Channel::Email => self.email.as_deref().map(String::as_str),
            Channel::Sms => self.mobile.as_deref().map(String::as_str),
            Channel::Push => self.device.as_deref().map(String::as_str),
        }
    }
}

/// The outbox target of a message to a minor's guardian (policy §IX): delivered to the
/// guardian's mobile on the minor's record, never to the minor's own contacts.
pub(crate) const GUARDIAN_TARGET: &str = "guardian";

/// The category a channel's address comes from (for the audit entry).
fn channel_category(c: &str) -> &'static str {
    match c {
        "email" => "user.contact.email",
        "sms" => "user.contact.mobile",
        "push" => "user.device.id",
        _ => "user.contact.address,user.name",
    }
}

impl Vault {
    /// Builds the outbox row of `e` at `now`, sealing its parameters under the outbox key.
    pub(crate) fn outbox_row(&self, e: &Enqueue, now: i64) -> Result<OutboxRow, CoreError> {
        let id = format!("ob-{}", uuid::Uuid::new_v4().simple());
        let payload = match &e.params {
            Some(v) => {
                let bytes = Zeroizing::new(serde_json::to_vec(v).unwrap_or_default());
                Some(
                    self.sealer
                        .keys()
                        .outbox_sealer()
                        .seal(id.as_bytes(), &bytes)?,
                )
            }
            None => None,
        };
        Ok(OutboxRow {
            dedup_key: format!(
                "{}|{}|{}|{}",
                e.kind,
                e.target,
                e.subject_id.as_deref().unwrap_or("-"),
                e.cause
            ),
            id,
            kind: e.kind.to_string(),
            subject_id: e.subject_id.clone(),
            target: e.target.clone(),
            cause: e.cause.clone(),
            lang: e.lang.clone(),
            payload,
            state: "pending".into(),
            channel: None,
            channel_index: 0,
            attempts: 0,
            next_at: now,
            created_at: now,
            done_at: None,
            last_error: None,
        })
    }

    fn open_params(&self, row: &OutboxRow) -> Result<Value, CoreError> {
        let Some(sealed) = &row.payload else {
            return Ok(Value::Null);
        };
        let plain = self
            .sealer
            .keys()
            .outbox_sealer()
            .open(row.id.as_bytes(), sealed)?;
        Ok(serde_json::from_slice(&plain).unwrap_or(Value::Null))
    }

    /// A subject's contact data, opened for one delivery (primary scope only: restricted
    /// fields are kept for a legal obligation, not for contacting the person). For a message
    /// to a minor's guardian (`guardian`; policy §9.1, §9.2, PIPL Art. 31) only the guardian's
    /// mobile as the minor's record holds it, and the minor's masked account for the message:
    /// no other field is opened.
    pub(crate) async fn contacts(
        &self,
        subject_id: &str,
        guardian: bool,
    ) -> Result<Contacts, CoreError> {
        let mut c = Contacts::default();
        let Some(dek) = self.sealer.dek(subject_id, SCOPE_PRIMARY).await? else {
            return Ok(c);
        };
        for r in self.store.fields(subject_id).await? {
            if r.restricted_until.is_some() {
                continue;
            }
            let ident = self
                .policy()
                .category(&r.category)
                .and_then(|c| c.identifier);
            // An account's own address first; a business contact's work address is theirs.
            let slot = match (ident, r.category.as_str()) {
                (Some(IdentifierKind::AccountId), _) => {
                    if let Ok(FieldValue::Text(s)) = Sealer::open_row(&dek, &r) {
                        c.account_hint = Some(crate::dsr::mask_account(&s));
                    }
                    continue;
                }
                (Some(IdentifierKind::GuardianMobile), _) if guardian => &mut c.mobile,
                _ if guardian => continue,
                (
                    Some(IdentifierKind::Email),
                    "user.contact.email" | "user.business_contact.email",
                ) => &mut c.email,
                (
                    Some(IdentifierKind::Mobile),
                    "user.contact.mobile" | "user.business_contact.mobile",
                ) => &mut c.mobile,
                (_, "user.device.id") => &mut c.device,
                (_, "user.name" | "user.business_contact.name") => &mut c.name,
                (_, "user.contact.address") => &mut c.address,
                _ => continue,
            };
            if slot.is_none() {
                if let Ok(FieldValue::Text(s)) = Sealer::open_row(&dek, &r) {
                    if !s.is_empty() {
                        *slot = Some(Zeroizing::new(s));
                    }
                }
            }
        }
        Ok(c)
    }

    /// Delivers due outbox messages until none is due (or `max` were processed): leases a
    /// batch, delivers each message, records its outcome. Run it from several tasks for
    /// concurrency: leases keep them apart.
    ///
    /// # Errors
    /// Store failure (a message's own delivery failure is recorded, not returned).
    pub async fn deliver_outbox(&self, max: u64) -> Result<DeliveryReport, CoreError> {
        let mut report = DeliveryReport::default();
        while report.processed < max {
            let limit = i64::try_from(max - report.processed)
                .unwrap_or(CLAIM_BATCH)
                .min(CLAIM_BATCH);
            let batch = self.claim(None, limit).await?;
            if batch.is_empty() {
                break;
            }
            for row in batch {
                self.deliver_row(row, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Delivers the given messages now if they are due (right after the transaction that
    /// enqueued them), leaving any failure to the workers' retries. Never fails the caller.
    pub(crate) async fn deliver_now(&self, ids: &[String]) {
        if self.code_sender().is_none() {
            return;
        }
        let mut report = DeliveryReport::default();
        for id in ids {
            match self.claim(Some(id), 1).await {
                Ok(rows) => {
                    for row in rows {
                        if let Err(e) = self.deliver_row(row, &mut report).await {
                            warn!(outbox = %id, error = %e, "outbox delivery not recorded");
                        }
                    }
                }
                Err(e) => warn!(outbox = %id, error = %e, "outbox claim failed"),
            }
        }
    }

    async fn claim(&self, only: Option<&str>, limit: i64) -> Result<Vec<OutboxRow>, CoreError> {
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let rows = tx
            .claim_outbox(
                self.outbox_holder.as_str(),
                now,
                now + LEASE_SECS,
                limit,
                only,
            )
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Delivers one leased message and commits its outcome with an audit entry.
    async fn deliver_row(
        &self,
        mut row: OutboxRow,
        report: &mut DeliveryReport,
    ) -> Result<(), CoreError> {
        let now = self.now().unix_timestamp();
        let mut attempts = Vec::new();
        let outcome = match self.attempt(&mut row, now, &mut attempts).await {
            Ok(()) => row.state.clone(),
            Err(e) => {
                // Could not even prepare the message (its subject's key is gone, the payload
                // does not open): give up on it, with the reason.
                warn!(outbox = %row.id, error = %e, "outbox message cannot be prepared");
                row.state = "failed".into();
                row.done_at = Some(now);
                row.last_error = Some(
                    match e {
                        CoreError::Crypto(_) => "payload_unreadable",
                        CoreError::NotFound(_) => "cause_not_found",
                        _ => "prepare_failed",
                    }
                    .to_string(),
                );
                "failed".into()
            }
        };
        report.processed += 1;
        match outcome.as_str() {
            "delivered" => report.delivered += 1,
            "letter" => report.letters += 1,
            "announced" => report.announced += 1,
            "pending" => report.retrying += 1,
            _ => report.failed += 1,
        }
        let mut tx = self.store.begin(now).await?;
        let mut rec = self.auditor.base("outbox", "outbox.deliver", now, None);
        rec.subject_id.clone_from(&row.subject_id);
        rec.categories = match row.channel.as_deref() {
            Some("sms") if row.target == GUARDIAN_TARGET && !attempts.is_empty() => {
                "user.guardian.mobile"
            }
            Some(c) if row.target == "subject" && !attempts.is_empty() => channel_category(c),
            _ => "",
        }
        .to_string();
        rec.outcome = if row.state == "delivered" {
            "ok"
        } else {
            "fail"
        }
        .into();
        rec.detail = Some(format!(
            "outbox={} kind={} state={} channel={} attempts={}",
            row.id,
            row.kind,
            row.state,
            row.channel.as_deref().unwrap_or("-"),
            attempts.len()
        ));
        rec.reason.clone_from(&row.last_error);
        let recorded = tx
            .record_attempt(self.outbox_holder.as_str(), &row, &attempts)
            .await?;
        if recorded {
            tx.audit(rec);
        }
        if row.state == "announced" {
            self.ensure_announcement(&mut tx, &row, now).await?;
        }
        tx.commit().await?;
        self.metrics.outbox_outcome(&row.kind, &row.state);
        info!(outbox = %row.id, kind = %row.kind, state = %row.state,
              channel = row.channel.as_deref().unwrap_or("-"), "outbox message processed");
        Ok(())
    }

    /// Tries the channels from the row's position; sets state, channel, position, attempts,
    /// next time and last error on `row`, and pushes each attempt.
    async fn attempt(
        &self,
        row: &mut OutboxRow,
        now: i64,
        attempts: &mut Vec<OutboxAttemptRow>,
    ) -> Result<(), CoreError> {
        let Some(transport) = self.code_sender().cloned() else {
            // Nothing configured to deliver with: leave it pending, check again later.
            row.next_at = now + 60;
            row.last_error = Some("no_channel".into());
            return Ok(());
        };
        let lang = Lang::parse(&row.lang).unwrap_or_default();
        let params = self.open_params(row)?;
        if let Some(recipient) = row.target.strip_prefix("recipient:") {
            let recipient = recipient.to_string();
            return self
                .attempt_webhook(row, &recipient, &params, now, attempts, &*transport)
                .await;
        }
        let subject = row.subject_id.clone().unwrap_or_default();
        let contacts = self
            .contacts(&subject, row.target == GUARDIAN_TARGET)
            .await?;
        let text = self.render(row, lang, &params, &contacts).await?;
        let order: Vec<String> = if row.kind == kind::DSR_CODE || row.kind == kind::DSR_NOTICE {
            vec![params["channel"].as_str().unwrap_or("email").to_string()]
        } else {
            self.policy()
                .incident()
                .channels
                .iter()
                .map(|c| c.as_str().to_string())
                .collect()
        };
        let configured = transport.channels();
        let retry = self.policy().incident().retry;
        loop {
            let idx = usize::try_from(row.channel_index).unwrap_or(usize::MAX);
            let Some(ch) = order.get(idx) else {
                row.state = if matches!(row.kind.as_str(), kind::INCIDENT | kind::CESSATION) {
                    "announced".into()
                } else {
                    "failed".into()
                };
                row.done_at = Some(now);
                if row.last_error.is_none() {
                    row.last_error = Some("no_contact".into());
                }
                return Ok(());
            };
            row.channel = Some(ch.clone());
            if ch == "letter" {
                if contacts.address.is_some() && contacts.name.is_some() {
                    row.state = "letter".into();
                    return Ok(());
                }
                row.channel_index += 1;
                row.attempts = 0;
                continue;
            }
            let channel = Channel::of(ch);
            let to = contacts.for_channel(channel);
            let (Some(to), true) = (to, configured.contains(&channel)) else {
                row.channel_index += 1;
                row.attempts = 0;
                continue;
            };
            row.attempts += 1;
            let result = transport
                .send(Outgoing {
                    id: &row.id,
                    channel,
                    to,
                    subject: &text.subject,
                    body: &text.body,
                })
                .await;
            attempts.push(OutboxAttemptRow {
                outbox_id: row.id.clone(),
                n: 0,
                at: now,
                channel: ch.clone(),
                outcome: match &result {
                    Ok(()) => "delivered".into(),
                    Err(f) => f.code.into(),
                },
                status: result.as_ref().err().and_then(|f| f.status).map(i64::from),
            });
            match result {
                Ok(()) => {
                    row.state = "delivered".into();
                    row.done_at = Some(now);
                    row.last_error = None;
                    return Ok(());
                }
                Err(f) => {
                    row.last_error = Some(f.code.into());
                    if f.permanent || row.attempts >= i64::from(retry.max_attempts) {
                        row.channel_index += 1;
                        row.attempts = 0;
                        continue;
                    }
                    row.next_at = now
                        + i64::try_from(
                            retry.backoff_secs(u32::try_from(row.attempts).unwrap_or(u32::MAX)),
                        )
                        .unwrap_or(i64::MAX);
                    return Ok(());
                }
            }
        }
    }

    async fn attempt_webhook(
        &self,
        row: &mut OutboxRow,
        recipient: &str,
        params: &Value,
        now: i64,
        attempts: &mut Vec<OutboxAttemptRow>,
        transport: &dyn crate::ports::CodeSender,
    ) -> Result<(), CoreError> {
        row.channel = Some("webhook".into());
        if !transport.has_webhook(recipient) {
            row.state = "failed".into();
            row.done_at = Some(now);
            row.last_error = Some("no_webhook".into());
            return Ok(());
        }
        let body = serde_json::to_vec(&json!({
            "type": "pivault.erasure-notice/1",
            "id": row.id,
            "recipient": recipient,
            "request_id": row.cause,
            "subject_id": row.subject_id,
            "categories": params.get("categories").cloned().unwrap_or(Value::Null),
            "erased_at": params.get("erased_at").cloned().unwrap_or(Value::Null),
            "rule": "PIPL Art. 47; GB/T 35273-2020 §8.3: delete the personal information received",
        }))
        .unwrap_or_default();
        let signer = self.sealer.keys().receipt_signer();
        let sig = signer.sign_webhook(now, &body);
        let sig_b64 = base64::engine::general_purpose::STANDARD.encode(sig);
        let key_id = signer.key_id();
        row.attempts += 1;
        let result = transport
            .post_webhook(
                recipient,
                SignedPost {
                    id: &row.id,
                    body: &body,
                    timestamp: now,
                    key_id: &key_id,
                    signature_b64: &sig_b64,
                },
            )
            .await;
        attempts.push(OutboxAttemptRow {
            outbox_id: row.id.clone(),
            n: 0,
            at: now,
            channel: "webhook".into(),
            outcome: match &result {
                Ok(()) => "delivered".into(),
                Err(f) => f.code.into(),
            },
            status: result.as_ref().err().and_then(|f| f.status).map(i64::from),
        });
        let retry = self.policy().incident().retry;
        match result {
            Ok(()) => {
                row.state = "delivered".into();
                row.done_at = Some(now);
                row.last_error = None;
            }
            Err(f) => {
                row.last_error = Some(f.code.into());
                if f.permanent || row.attempts >= i64::from(retry.max_attempts) {
                    row.state = "failed".into();
                    row.done_at = Some(now);
                } else {
                    row.next_at = now
                        + i64::try_from(
                            retry.backoff_secs(u32::try_from(row.attempts).unwrap_or(u32::MAX)),
                        )
                        .unwrap_or(i64::MAX);
                }
            }
        }
        Ok(())
    }

    /// The text of a message to a person, in their language.
    async fn render(
        &self,
        row: &OutboxRow,
        lang: Lang,
        params: &Value,
        contacts: &Contacts,
    ) -> Result<Rendered, CoreError> {
        let contact = self.policy().incident().contact.clone();
        let policy = self.policy();
        let zh = lang == Lang::ZhCn;
        let name = |k: &str| -> String { policy.category_name(k, zh) };
        Ok(match row.kind.as_str() {
            kind::DSR_CODE => {
                // The requester's language is not known before they prove who they are: the
                // code goes in Chinese and English (Chinese first), as it always has.
                let one = |l: Lang| {
                    notice::dsr_code(
                        l,
                        params["kind"].as_str().unwrap_or("-"),
                        contacts.account_hint.as_deref().unwrap_or("-"),
                        params["code"].as_str().unwrap_or(""),
                        params["ttl_minutes"].as_u64().unwrap_or(10),
                        params["request"].as_str().unwrap_or("-"),
                    )
                };
                if lang == Lang::En {
                    one(Lang::En)
                } else {
                    let (zh, en) = (one(Lang::ZhCn), one(Lang::En));
                    Rendered {
                        subject: format!("{} / {}", zh.subject, en.subject),
                        body: format!("{}\n{}", zh.body, en.body),
                    }
                }
            }
            kind::DSR_NOTICE => Rendered {
                subject: "pivault: request extended / 请求处理期限延长".into(),
                body: format!(
                    "您的个人信息请求 {id} 需要更多时间处理，我们将在 {due} 前答复。\n\
                     Your personal information request {id} needs more time; we will answer by \
                     {due} (GDPR Art. 12(3)).\n",
                    id = params["request"].as_str().unwrap_or("-"),
                    due = params["due"].as_str().unwrap_or("-"),
                ),
            },
            kind::INCIDENT => {
                let inc = self
                    .store
                    .incident(&row.cause)
                    .await?
                    .ok_or(CoreError::NotFound("incident"))?;
                let mut n = crate::incidents::notice_of(&inc, &contact);
                if n.categories.is_empty() {
                    // No categories declared: the subject's own affected categories.
                    if let Some(c) = self
                        .store
                        .incident_subject_categories(
                            &inc.id,
                            row.subject_id.as_deref().unwrap_or(""),
                        )
                        .await?
                    {
                        n.categories = c
                            .split(',')
                            .filter(|x| !x.is_empty())
                            .map(str::to_string)
                            .collect();
                    }
                }
                notice::incident_notice(lang, &n, &name)
            }
            kind::CESSATION => {
                let c = self.store.cessation().await?;
                notice::cessation_notice(
                    lang,
                    &crate::cessation::notice_of(&c, &contact, self.policy()),
                )
            }
            kind::CROSS_BORDER => {
                let cats: Vec<String> = params["categories"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let rid = params["recipient"].as_str().unwrap_or("-");
                let (rname, region) =
                    self.policy()
                        .recipient(rid)
                        .map_or((rid.to_string(), "-".to_string()), |r| {
                            (
                                localized(&r.name, r.name_zh.as_deref(), zh).to_string(),
                                r.region.clone(),
                            )
                        });
                let purpose = params["purpose"].as_str().unwrap_or("-");
                let pname = self.policy().purpose(purpose).map_or_else(
                    || purpose.to_string(),
                    |p| localized(&p.name, p.name_zh.as_deref(), zh).to_string(),
                );
                notice::cross_border_notice(lang, &rname, &region, &pname, &cats, &contact, &name)
            }
            kind::MISUSE => notice::misuse_lock_notice(lang, &row.cause, &contact),
            kind::POLICY_CHANGE => self.render_policy_change(lang, &row.cause, params),
            _ => {
                return Err(CoreError::NotFound("outbox_item"));
            }
        })
    }

    /// Publishes the announcement that covers a message no channel delivered, if its cause
    /// has none yet (one per cause).
    async fn ensure_announcement(
        &self,
        tx: &mut pivault_store::WriteTx,
        row: &OutboxRow,
        now: i64,
    ) -> Result<(), CoreError> {
        match row.kind.as_str() {
            kind::INCIDENT => {
                if let Some(inc) = tx.incident(&row.cause).await? {
                    self.publish_incident_announcement(tx, &inc, now).await?;
                }
            }
            kind::CESSATION => {
                let c = tx.cessation().await?;
                self.publish_cessation_announcement(tx, &c, now).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Outbox messages counted by state (every cause).
    ///
    /// # Errors
    /// `Forbidden` without the admin, dpo or security role; store failure.
    pub async fn outbox_totals(&self, p: &Principal) -> Result<OutboxCounts, CoreError> {
        Self::require_office(p)?;
        Ok(self.store.outbox_totals().await?)
    }

    /// One message and every attempt (no address, no text).
    ///
    /// # Errors
    /// `Forbidden` without the admin, dpo or security role; `NotFound` (`outbox_item`).
    pub async fn outbox_item(&self, p: &Principal, id: &str) -> Result<OutboxView, CoreError> {
        Self::require_office(p)?;
        let row = self
            .store
            .outbox_item(id)
            .await?
            .ok_or(CoreError::NotFound("outbox_item"))?;
        let history = self
            .store
            .outbox_attempts(id)
            .await?
            .into_iter()
            .map(|a| AttemptView {
                n: a.n,
                at: a.at,
                channel: a.channel,
                outcome: a.outcome,
                status: a.status,
            })
            .collect();
        Ok(OutboxView {
            id: row.id,
            kind: row.kind,
            subject_id: row.subject_id,
            target: row.target,
            cause: row.cause,
            state: row.state,
            channel: row.channel,
            attempts: row.attempts,
            next_at: row.next_at,
            last_error: row.last_error,
            history,
        })
    }

    /// The letters waiting to be printed, opened for the letter renderer, marked printed
    /// (audited, one entry per letter, no value). Names and addresses are opened here.
    ///
    /// # Errors
    /// `Forbidden` without the admin, dpo or security role; store failure.
    pub async fn print_letters(
        &self,
        p: &Principal,
        limit: i64,
    ) -> Result<Vec<PrintLetter>, CoreError> {
        Self::require_office(p)?;
        let rows = self.store.letters_to_print(limit).await?;
        let mut letters = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        let now = self.now().unix_timestamp();
        let mut audit = Vec::with_capacity(rows.len());
        for row in &rows {
            let subject = row.subject_id.clone().unwrap_or_default();
            let contacts = self.contacts(&subject, false).await?;
            let (Some(name), Some(address)) = (&contacts.name, &contacts.address) else {
                continue;
            };
            let lang = Lang::parse(&row.lang).unwrap_or_default();
            let params = self.open_params(row)?;
            let text = self.render(row, lang, &params, &contacts).await?;
            letters.push(PrintLetter {
                reference: row.id.clone(),
                name: name.to_string(),
                address: address.to_string(),
                subject: text.subject,
                body: text.body,
            });
            ids.push(row.id.clone());
            let mut rec = self.auditor.base(&p.name, "outbox.letter", now, None);
            rec.subject_id = Some(subject);
            rec.categories = "user.contact.address,user.name".into();
            rec.detail = Some(format!("outbox={} kind={}", row.id, row.kind));
            audit.push(rec);
        }
        let mut tx = self.store.begin(now).await?;
        tx.mark_letters_printed(&ids, now).await?;
        for r in audit {
            tx.audit(r);
        }
        tx.commit().await?;
        Ok(letters)
    }

    /// Records the language a subject's notices are written in (`zh-CN` or `en`; policy §8.3
    /// notices, PIPL Art. 57), audited. The app that collected the subject's data sets it.
    ///
    /// # Errors
    /// `Forbidden` without the app role; `Invalid` (`lang_unknown`); `NotFound` (`subject`).
    pub async fn set_subject_lang(
        &self,
        p: &Principal,
        subject_id: &str,
        lang: &str,
    ) -> Result<String, CoreError> {
        Principals::require_role(p, crate::ROLE_APP)?;
        let l = Lang::parse(lang)
            .ok_or_else(|| CoreError::invalid("lang", "lang_unknown", "lang is zh-CN or en"))?;
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        if !tx.set_subject_lang(subject_id, Some(l.as_str())).await? {
            return Err(CoreError::NotFound("subject"));
        }
        let mut rec = self.auditor.base(&p.name, "subject.lang", now, None);
        rec.subject_id = Some(subject_id.to_string());
        rec.detail = Some(format!("lang={}", l.as_str()));
        tx.audit(rec);
        tx.commit().await?;
        Ok(l.as_str().to_string())
    }

    /// `Ok` for the privacy office: admin, dpo or security.
    pub(crate) fn require_office(p: &Principal) -> Result<(), CoreError> {
        if ["admin", "dpo", "security"].iter().any(|r| p.has_role(r)) {
            Ok(())
        } else {
            Principals::require_role(p, "dpo")
        }
    }

    /// Enqueues `messages` in `tx` at `now`; returns the ids of those added (the rest were
    /// already in the outbox).
    pub(crate) async fn enqueue(
        &self,
        tx: &mut pivault_store::WriteTx,
        messages: &[Enqueue],
        now: i64,
    ) -> Result<Vec<String>, CoreError> {
        let rows: Vec<OutboxRow> = messages
            .iter()
            .map(|m| self.outbox_row(m, now))
            .collect::<Result<_, _>>()?;
        tx.enqueue(&rows).await?;
        Ok(rows.into_iter().map(|r| r.id).collect())
    }
}
