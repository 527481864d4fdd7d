//! Intake: filing a request, identity verification by one-time code (policy §7.2).

use crate::dsr::aad;
use crate::dsr::kind_of;
use crate::dsr::new_token;
use crate::dsr::state_of;
use crate::dsr::steps::to_field_input;
use crate::dsr::token_hash;
use crate::dsr::CreatedDsr;
use crate::dsr::DsrInput;
use crate::dsr::DsrView;
use crate::dsr::CODE_DIGITS;
use crate::dsr::MAX_CODES_PER_SUBJECT_PER_DAY;
use crate::dsr::MAX_CODE_SENDS;
use crate::dsr::PARAMS_CATEGORY;
use crate::dsr::SUBJECT_ACTOR;
use crate::error::CoreError;
use crate::ports::Channel;
use crate::services::sealer::SCOPE_PRIMARY;
use crate::values::format_timestamp;
use crate::vault::Vault;
use crate::FieldInput;
use crate::Principal;
use pivault_crypto::ct_eq;
use pivault_domain::dsr::{DsrKind, DsrState};
use pivault_domain::erasure::ErasureGround;
use pivault_domain::identifiers::IdentifierKind;
use pivault_domain::policy::LegalBasis;
use pivault_store::{DsrCodeRow, DsrRow};
use serde_json::{json, Value};
use tracing::warn;
use zeroize::Zeroizing;

/// Whether a request of `kind` is linked as the duplicate of an earlier verified one of the
/// same kind and parameters: not corrections (each names its own values), inquiries (each is
/// its own question) or sign-ins (each opens its own session).
fn links_duplicates(kind: DsrKind) -> bool {
    !matches!(
        kind,
        DsrKind::Correction | DsrKind::Inquiry | DsrKind::SignIn
    )
}

/// The actor of expiry moves in the audit log.
const EXPIRY_ACTOR: &str = "dsr:expiry";

/// The request parameter naming who asks (`"as": "guardian"`); absent for the PI subject.
pub(crate) const GUARDIAN_PARAM: &str = "as";

/// Who files a request through the intake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Requester {
    /// The PI subject, by the email or mobile of their own account.
    Subject,
    /// A minor's guardian, by the guardian's mobile on the minor's record (policy §IX; PIPL
    /// Art. 31). Only sign-ins are filed this way.
    Guardian,
}

/// Whether `row` was filed by a minor's guardian (see [`Requester::Guardian`]).
pub(crate) fn by_guardian(row: &DsrRow) -> bool {
    serde_json::from_str::<Value>(&row.params)
        .ok()
        .is_some_and(|p| p[GUARDIAN_PARAM] == "guardian")
}

impl Vault {
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
        self.dsr_create_from(input, None).await
    }

    /// [`Vault::dsr_create`] for a filing from client address `client` (the intake is
    /// keyless, so it is rate-limited; `None` when the address is not known, e.g. in-process
    /// callers). In order:
    /// - at most `[dsr] intake_per_address_per_minute` filings per client address (loopback
    ///   excepted: a local proxy must limit per client itself) and
    ///   `intake_per_identity_per_hour` valid filings naming one email or mobile (token
    ///   buckets in this process, see `dsr::limits`); beyond, 429 `dsr_rate_limited` with
    ///   `Retry-After`, whether or not the identity has an account;
    /// - requests never verified within `unverified_expiry_hours` are expired first (at most
    ///   once a minute per instance; the due scan does it too);
    /// - a filing identical to requests still waiting for verification (same identity, kind,
    ///   parameters, jurisdiction; corrections excepted) is **folded** into them: no new row,
    ///   the same answer shape with each request's id and a fresh token (the earlier token
    ///   stops working), and a new code only while the request's 5 sends last.
    ///
    /// # Errors
    /// Those of [`Vault::dsr_create`]; `RateLimited`.
    pub async fn dsr_create_from(
        &self,
        input: &DsrInput,
        client: Option<std::net::IpAddr>,
    ) -> Result<Vec<CreatedDsr>, CoreError> {
        // The privacy center's own kinds have their own door (`center_*`): a sign-in opens a
        // session there, and an inquiry carries text this shape has no field for.
        if matches!(input.kind.as_str(), "sign_in" | "inquiry") {
            return Err(CoreError::invalid(
                "kind",
                "dsr_kind_unknown",
                "kind is access, copy, correction, deletion, withdrawal, cancellation, explanation or misuse_report",
            ));
        }
        self.dsr_intake(input, client, Requester::Subject).await
    }

    /// The intake behind [`Vault::dsr_create_from`] and the privacy center's sign-in. A
    /// [`Requester::Guardian`] names their own mobile, which finds the minors whose records
    /// hold it as the guardian's (blind index `guardian_mobile`), and the code goes to that
    /// number; the request carries `"as": "guardian"` in its parameters.
    pub(crate) async fn dsr_intake(
        &self,
        input: &DsrInput,
        client: Option<std::net::IpAddr>,
        requester: Requester,
    ) -> Result<Vec<CreatedDsr>, CoreError> {
        let settings = self.policy().dsr();
        // A loopback peer is this machine: a local reverse proxy (which must do the per-client
        // limiting, as every client reaches us through its one address) or the operator.
        if let Some(addr) = client.filter(|a| !a.is_loopback()) {
            self.intake_limits
                .address(addr, settings.intake_per_address_per_minute)
                .map_err(|retry_after| CoreError::RateLimited { retry_after })?;
        }
        let kind: DsrKind = input.kind.parse().map_err(|_| {
            CoreError::invalid(
                "kind",
                "dsr_kind_unknown",
                "kind is access, copy, correction, deletion, withdrawal, cancellation, explanation or misuse_report",
            )
        })?;
        let guardian = requester == Requester::Guardian;
        let (ident, channel, raw) = match (&input.email, &input.mobile) {
            (None, Some(m)) if guardian => (IdentifierKind::GuardianMobile, Channel::Sms, m),
            _ if guardian => {
                return Err(CoreError::invalid(
                    "mobile",
                    "identity_required",
                    "a guardian signs in with the mobile on the minor's record",
                ))
            }
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
        // Domain-separated from the blind index, so it matches no blind_index row.
        let identity = self
            .sealer
            .keys()
            .blind_index(&format!("dsr_identity:{}", ident.as_str()), &norm);
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
        let mut params = self.dsr_params(kind, input)?;
        if guardian {
            params[GUARDIAN_PARAM] = json!("guardian");
        }
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

        // Counted once the filing is valid: a malformed one costs the identity nothing.
        self.intake_limits
            .identity(identity, settings.intake_per_identity_per_hour)
            .map_err(|retry_after| CoreError::RateLimited { retry_after })?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        self.expire_unverified_throttled(now).await?;
        if kind != DsrKind::Correction {
            let params_text = params.to_string();
            let key = (
                kind.as_str(),
                params_text.as_str(),
                jurisdiction.key.as_str(),
                channel.as_str(),
            );
            if let Some(folded) = self.dsr_fold(&identity, key, kind, channel, now).await? {
                return Ok(folded);
            }
        }
        let digests = self.sealer.keys().blind_indexes(ident.as_str(), &norm);
        let mut subjects = self.store.lookup_any(ident.as_str(), &digests).await?;
        if guardian {
            // A guardian acts only for a child still under 14 (PIPL Art. 31): an older one's
            // record matches nobody, so no code is sent that could never open a session.
            let mut minors = Vec::with_capacity(subjects.len());
            for s in subjects {
                if self.is_minor(&s).await? {
                    minors.push(s);
                }
            }
            subjects = minors;
        }
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
                Some(s) if window > 0 && links_duplicates(kind) => self
                    .store
                    .dsr_first_since(s, kind.as_str(), &params_text, now - window, &id)
                    .await?
                    .map(|r| r.id),
                _ => None,
            };
            let sealed_params = match (s, &corrections) {
                (Some(s), Some(c)) => {
                    let dek = self
                        .sealer
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
                identity_digest: Some(identity.to_vec()),
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
                digest: self.sealer.keys().code_digest(&id, &code).to_vec(),
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
        let mut tx = self.store.begin(now).await?;
        for r in &rows {
            tx.insert_dsr(r).await?;
        }
        for c in &codes {
            tx.put_dsr_code(c).await?;
        }
        for a in audits {
            tx.audit(a);
        }
        let msgs: Vec<_> = sends
            .iter()
            .map(|(id, subject, code)| {
                self.code_message(id, subject, kind, channel, code, 1, guardian)
            })
            .collect();
        let ids = self.enqueue(&mut tx, &msgs, now).await?;
        tx.commit().await?;
        self.deliver_now(&ids).await;
        Ok(out)
    }

    /// Folds an identical filing into the requests of the same identity still waiting for
    /// verification (see [`Vault::dsr_create_from`]). `None` when there are none.
    async fn dsr_fold(
        &self,
        identity: &[u8; 32],
        key: (&str, &str, &str, &str),
        kind: DsrKind,
        channel: Channel,
        now: i64,
    ) -> Result<Option<Vec<CreatedDsr>>, CoreError> {
        let settings = self.policy().dsr();
        let since = now - i64::from(settings.unverified_expiry_hours) * 3600;
        let mut tx = self.store.begin(now).await?;
        let rows = tx.dsr_unverified_same(identity, key, since).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut sends = Vec::new();
        for row in &rows {
            let token = new_token()?;
            tx.set_dsr_token(&row.id, &token_hash(&token)).await?;
            let sent = tx.dsr_code(&row.id).await?.map_or(0, |c| c.sends);
            let mut rec = self.dsr_audit(SUBJECT_ACTOR, "folded", row, now);
            if sent < MAX_CODE_SENDS {
                let code = Zeroizing::new(pivault_crypto::generate_code(CODE_DIGITS));
                tx.put_dsr_code(&DsrCodeRow {
                    request_id: row.id.clone(),
                    digest: self.sealer.keys().code_digest(&row.id, &code).to_vec(),
                    expires_at: now + i64::from(settings.code_ttl_seconds),
                    attempts_left: i64::from(settings.code_attempts),
                    sends: sent + 1,
                    sent_at: now,
                })
                .await?;
                if let Some(s) = &row.subject_id {
                    let quota = tx.dsr_codes_sent_since(s, now - 86_400).await?;
                    if quota < MAX_CODES_PER_SUBJECT_PER_DAY {
                        sends.push(self.code_message(
                            &row.id,
                            s,
                            kind,
                            channel,
                            &code,
                            sent + 1,
                            by_guardian(row),
                        ));
                    } else {
                        warn!(dsr = %row.id, "code send limit reached for this person; code not sent");
                    }
                }
            } else {
                rec.detail = rec.detail.map(|d| format!("{d} code=not_resent"));
            }
            tx.audit(rec);
            out.push(CreatedDsr {
                id: row.id.clone(),
                token,
                state: DsrState::IdentityUnverified.as_str(),
                due_at: format_timestamp(row.extended_due_at.unwrap_or(row.due_at)),
            });
        }
        let ids = self.enqueue(&mut tx, &sends, now).await?;
        tx.commit().await?;
        self.deliver_now(&ids).await;
        Ok(Some(out))
    }

    /// Expires the requests never verified within `[dsr] unverified_expiry_hours`, at most
    /// once a minute per instance (the intake calls it on every filing).
    async fn expire_unverified_throttled(&self, now: i64) -> Result<(), CoreError> {
        use std::sync::atomic::Ordering;
        let last = self.last_expiry_sweep.load(Ordering::Relaxed);
        if last != i64::MIN && now - last < 60 {
            return Ok(());
        }
        self.last_expiry_sweep.store(now, Ordering::Relaxed);
        self.dsr_expire_unverified().await.map(|_| ())
    }

    /// Moves every request still waiting for identity verification after
    /// `[dsr] unverified_expiry_hours` to `expired` (terminal, never overdue), burning its
    /// code, each move audited in the same transaction (actor `dsr:expiry`). Runs in batches
    /// of 500; returns how many expired.
    ///
    /// # Errors
    /// Store failures.
    pub async fn dsr_expire_unverified(&self) -> Result<usize, CoreError> {
        let now = self.now().unix_timestamp();
        let cutoff = now - i64::from(self.policy().dsr().unverified_expiry_hours) * 3600;
        let mut total = 0;
        loop {
            let mut tx = self.store.begin(now).await?;
            let rows = tx.dsr_unverified_before(cutoff, 500).await?;
            let n = rows.len();
            for mut row in rows {
                if state_of(&row)? != DsrState::IdentityUnverified {
                    continue;
                }
                self.transition(
                    &mut tx,
                    &mut row,
                    DsrState::Expired,
                    EXPIRY_ACTOR,
                    "expired",
                    now,
                )?;
                tx.update_dsr(&row).await?;
                tx.set_code_attempts(&row.id, 0, true).await?;
                total += 1;
            }
            tx.commit().await?;
            if n < 500 {
                return Ok(total);
            }
        }
    }

    /// Whether another code may be sent for `subject`'s requests within 24 hours.
    pub(crate) async fn code_quota_left(&self, subject: &str, now: i64) -> Result<bool, CoreError> {
        Ok(self
            .store
            .dsr_codes_sent_since(subject, now - 86_400)
            .await?
            < MAX_CODES_PER_SUBJECT_PER_DAY)
    }

    pub(crate) fn dsr_params(&self, kind: DsrKind, input: &DsrInput) -> Result<Value, CoreError> {
        let mut params = json!({});
        if matches!(kind, DsrKind::Deletion | DsrKind::Cancellation) {
            let ground = input.ground.as_deref().unwrap_or("subject_request");
            if ErasureGround::parse(ground).is_none() {
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

    /// The outbox message carrying send number `send` of a request's one-time code to the
    /// account's own address on `channel` (policy §7.2), or, for a guardian's request, to the
    /// guardian's mobile on the minor's record (policy §IX). The code travels sealed under
    /// the outbox key; the cause `<request>#<send>` makes each send exactly-once.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn code_message(
        &self,
        id: &str,
        subject: &str,
        kind: DsrKind,
        channel: Channel,
        code: &str,
        send: i64,
        guardian: bool,
    ) -> crate::messages::Enqueue {
        let mut m = crate::messages::Enqueue::to_subject(
            crate::messages::kind::DSR_CODE,
            subject,
            &format!("{id}#{send}"),
            None,
        );
        if guardian {
            crate::outbox::GUARDIAN_TARGET.clone_into(&mut m.target);
        }
        m.params = Some(json!({
            "request": id,
            "code": code,
            "kind": if guardian { "guardian_sign_in" } else { kind.as_str() },
            "channel": channel.as_str(),
            "ttl_minutes": self.policy().dsr().code_ttl_seconds / 60,
        }));
        m
    }

    /// Loads a request and checks the requester's token in constant time.
    pub(crate) async fn dsr_for_requester(
        &self,
        id: &str,
        token: &str,
    ) -> Result<DsrRow, CoreError> {
        let row = self.store.dsr(id).await?;
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
            DsrState::Expired => return Err(CoreError::Conflict("dsr_expired")),
            _ => return Ok(self.dsr_view(&row, false, now)),
        }
        if code.len() != CODE_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CoreError::invalid(
                "code",
                "code_malformed",
                "the code is 6 digits",
            ));
        }
        let mut tx = self.store.begin(now).await?;
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
        let ok = ct_eq(&self.sealer.keys().code_digest(id, code), &c.digest);
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
        if row.duplicate_of.is_none() && window > 0 && links_duplicates(kind_of(&row)?) {
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
        if row.kind == DsrKind::SignIn.as_str() {
            // A sign-in has no step and no queue: verified is done (the privacy center opens a
            // session on it, once).
            let center = Principal::operator("center", self.policy());
            self.dsr_approve(&center, id).await?;
            self.dsr_run(&center, id).await?;
            let done = self
                .store
                .dsr(id)
                .await?
                .ok_or(CoreError::NotFound("dsr"))?;
            return Ok(self.dsr_view(&done, false, self.now().unix_timestamp()));
        }
        if row.kind == DsrKind::MisuseReport.as_str() && row.duplicate_of.is_none() {
            // A security measure (policy §8.7): no approval queue, the lock takes effect now.
            let security = Principal::operator("misuse", self.policy());
            self.dsr_approve(&security, id).await?;
            self.dsr_run(&security, id).await?;
            let done = self
                .store
                .dsr(id)
                .await?
                .ok_or(CoreError::NotFound("dsr"))?;
            return Ok(self.dsr_view(&done, false, self.now().unix_timestamp()));
        }
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
        let mut tx = self.store.begin(now).await?;
        let sends = tx.dsr_code(id).await?.map_or(0, |c| c.sends);
        if sends >= MAX_CODE_SENDS {
            return Err(CoreError::Conflict("code_send_limit"));
        }
        tx.put_dsr_code(&DsrCodeRow {
            request_id: id.to_string(),
            digest: self.sealer.keys().code_digest(id, &code).to_vec(),
            expires_at: now + i64::from(settings.code_ttl_seconds),
            attempts_left: i64::from(settings.code_attempts),
            sends: sends + 1,
            sent_at: now,
        })
        .await?;
        tx.audit(self.dsr_audit(SUBJECT_ACTOR, "code_resent", &row, now));
        let channel = Channel::of(&row.channel);
        // Nothing matched the claimed identity: the code is kept but goes nowhere.
        let mut ids = Vec::new();
        if let Some(subject) = subject {
            if tx.dsr_codes_sent_since(&subject, now - 86_400).await?
                < MAX_CODES_PER_SUBJECT_PER_DAY
            {
                let m = self.code_message(
                    id,
                    &subject,
                    kind_of(&row)?,
                    channel,
                    &code,
                    sends + 1,
                    by_guardian(&row),
                );
                ids = self.enqueue(&mut tx, &[m], now).await?;
            } else {
                warn!(dsr = %id, "code send limit reached for this person; code not sent");
            }
        }
        tx.commit().await?;
        self.deliver_now(&ids).await;
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

    /// Files a deletion request on the privacy office's own authority (PIPL Art. 47 para 1:
    /// the handler deletes on its own initiative; `DELETE /v1/subjects/{id}`) for a known
    /// subject, approved by `p`: no identity check, no one-time code. The request moves
    /// `received → identity_unverified → verified → in_progress` in one transaction with an
    /// audit entry per move, so it runs the same steps as any deletion request and can be
    /// resumed from the queue if a step fails. Returns the request id.
    ///
    /// # Errors
    /// Store failures; `Invalid` if the policy declares no default jurisdiction.
    pub(crate) async fn dsr_file_erasure(
        &self,
        p: &Principal,
        subject_id: &str,
        ground: &str,
    ) -> Result<String, CoreError> {
        let jurisdiction = self.default_jurisdiction()?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let id = uuid::Uuid::new_v4().to_string();
        let mut row = DsrRow {
            id: id.clone(),
            subject_id: Some(subject_id.to_string()),
            kind: DsrKind::Deletion.as_str().to_string(),
            state: DsrState::Received.as_str().to_string(),
            channel: Channel::Email.as_str().to_string(),
            jurisdiction: jurisdiction.key.clone(),
            received_at: now,
            due_at: jurisdiction.due(now_t).unix_timestamp(),
            token_hash: token_hash(&new_token()?),
            step_results: "{}".into(),
            params: json!({ "ground": ground, "filed_by": "privacy_office" }).to_string(),
            updated_at: now,
            ..DsrRow::default()
        };
        let mut tx = self.store.begin(now).await?;
        tx.audit(self.dsr_audit(&p.name, "received", &row, now));
        for (to, what) in [
            (DsrState::IdentityUnverified, "identity_not_required"),
            (DsrState::Verified, "filed_by_privacy_office"),
            (DsrState::InProgress, "approved"),
        ] {
            self.transition(&mut tx, &mut row, to, &p.name, what, now)?;
        }
        tx.insert_dsr(&row).await?;
        tx.commit().await?;
        Ok(id)
    }
}
