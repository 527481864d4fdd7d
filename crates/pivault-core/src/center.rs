//! The privacy center's use cases (issue 14; policy §III, §VII, §IX, §XI; PIPL Art. 44–50): a
//! PI subject signs in by one-time code through the DSR intake (kind `sign_in`), and the
//! session then shows what is held, why and for how long, the consents, the disclosures, the
//! access history and the requests, and files requests, consent changes, misuse reports and
//! inquiries.
//!
//! No door of its own: filings become requests of the DSR queue (verified by the session's
//! sign-in), consent changes go through [`Vault::record_consent`] (same ledger rows and audit
//! shape as the API, actor [`CENTER_ACTOR`]), packages and receipts through the request's
//! result. The overview opens no sealed value: it lists categories and field names from the
//! field rows' metadata; values leave only in the access package (a decided, audited DSR step).

use crate::consents::ConsentInput;
use crate::dsr::{CreatedDsr, DsrInput, DsrView, ResultFormat, PARAMS_CATEGORY, SUBJECT_ACTOR};
use crate::error::CoreError;
use crate::values::format_timestamp;
use crate::vault::Vault;
use crate::Principal;
use crate::ROLE_APP;
use pivault_domain::dsr::{DsrKind, DsrState};
pub use pivault_domain::notice::Lang;
use pivault_domain::policy::{localized, LegalBasis};
pub use pivault_store::{ConsentRow, DisclosureRow};
use pivault_store::{DsrFilter, DsrRow};
use serde_json::json;
use std::collections::BTreeMap;

/// The audit actor of what a signed-in subject does in the privacy center.
pub const CENTER_ACTOR: &str = "center:subject";

/// The audit actor of what a minor's guardian does in the privacy center (policy §IX; PIPL
/// Art. 31).
pub const GUARDIAN_ACTOR: &str = "center:guardian";

/// How long a privacy-center session lasts from sign-in: 30 minutes (GB/T 35273-2020 §8.7:
/// verify identity before answering; a short session keeps a left-open browser from serving
/// the next person).
pub const SESSION_SECONDS: i64 = 30 * 60;

/// The policy category an inquiry's text is decided as: it is a consultation or complaint,
/// like a support ticket (policy §2.1.4, §XI).
pub const INQUIRY_CATEGORY: &str = "user.support.ticket";

/// The cookie categories of the banner (policy §III), `necessary` first: it is always on.
pub const COOKIE_CATEGORIES: [&str; 4] = ["necessary", "preferences", "analytics", "third_party"];

/// A signed-in subject (the session's owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CenterSession {
    /// The subject.
    pub subject_id: String,
    /// Ends at (unix seconds).
    pub expires_at: i64,
    /// The subject was erased during the session: it lasts only to see the requests and
    /// download the signed deletion receipt (PIPL Art. 47; GB/T 35273-2020 §8.3), nothing else.
    pub erased: bool,
    /// A minor's guardian signed in for the subject (policy §IX; PIPL Art. 31): the session
    /// reaches the minor's consents only, and consents given in it are `given_by = guardian`.
    pub guardian: bool,
}

impl CenterSession {
    /// The audit actor of the session: [`CENTER_ACTOR`] or [`GUARDIAN_ACTOR`].
    #[must_use]
    pub fn actor(&self) -> &'static str {
        if self.guardian {
            GUARDIAN_ACTOR
        } else {
            CENTER_ACTOR
        }
    }

    /// The subject's own session, for what only the subject may do (see their data, its
    /// access history and disclosures, file requests, download results).
    ///
    /// # Errors
    /// `Forbidden` (`guardian_session`) for a guardian's session.
    pub fn own(&self) -> Result<&Self, CoreError> {
        if self.guardian {
            Err(CoreError::Forbidden {
                code: "guardian_session",
                message: "a guardian's session manages the minor's consents only (policy §IX)",
            })
        } else {
            Ok(self)
        }
    }
}

/// One purpose a category is used for, with its legal basis and clause.
#[derive(Debug, Clone)]
pub struct CenterPurpose {
    /// Purpose id.
    pub id: String,
    /// Its name in the policy.
    pub name: String,
    /// `consent`, `contract`, `legal_obligation`, …
    pub legal_basis: &'static str,
    /// The policy clause.
    pub clause: String,
}

/// One category held about the subject, explained (PIPL Art. 17, 48): field names, never
/// values.
#[derive(Debug, Clone)]
pub struct CenterCategory {
    /// Category key.
    pub key: String,
    /// Its name in the policy.
    pub name: String,
    /// `sensitive`, `personal`, …
    pub sensitivity: String,
    /// The policy clause.
    pub clause: String,
    /// The field names held (sorted, distinct).
    pub fields: Vec<String>,
    /// How many records (e.g. orders) hold it.
    pub records: usize,
    /// Kept only for a legal period until then (unix seconds), when restricted.
    pub restricted_until: Option<i64>,
    /// The purposes it is used for.
    pub purposes: Vec<CenterPurpose>,
    /// How long it is kept, in days, when the policy says.
    pub keep_for_days: Option<i64>,
    /// What happens then (`delete`, `anonymize`).
    pub retention_end: Option<&'static str>,
    /// The rule behind the retention period.
    pub retention_basis: Option<String>,
    /// Declared recipients (their names).
    pub recipients: Vec<String>,
}

/// One consent-based purpose and where the subject stands on it.
#[derive(Debug, Clone)]
pub struct CenterConsent {
    /// Purpose id.
    pub purpose: String,
    /// Its name in the policy.
    pub name: String,
    /// The policy clause it rests on.
    pub clause: String,
    /// Needs a separate consent (PIPL Art. 29).
    pub separate: bool,
    /// In force now.
    pub granted: bool,
    /// The latest event (unix seconds), if any.
    pub at: Option<i64>,
    /// Given by the subject or a guardian.
    pub given_by: Option<String>,
    /// The policy version it was given under.
    pub policy_version: Option<String>,
    /// A consent given before a material change of its purpose no longer counts (policy §X;
    /// PIPL Art. 14 para. 2): the version that changed it and the change's summary. The page
    /// asks again.
    pub outdated: Option<(String, String)>,
}

/// One release of the subject's PI from the audit log: who (principal name), when, why.
#[derive(Debug, Clone)]
pub struct AccessEntry {
    /// Audit sequence number.
    pub seq: i64,
    /// When (unix seconds).
    pub at: i64,
    /// The principal (API key or role name; never a person's name).
    pub principal: String,
    /// `fields.read`, `disclosure.share`, …
    pub action: String,
    /// The purpose declared.
    pub purpose: Option<String>,
    /// The categories released (comma-separated keys).
    pub categories: String,
}

/// A request filed from the privacy center.
#[derive(Debug, Clone, Default)]
pub struct CenterFiling {
    /// Deletion or cancellation ground (PIPL Art. 47); default `subject_request`.
    pub ground: Option<String>,
    /// Withdrawal: the purposes.
    pub purposes: Vec<String>,
    /// Inquiry: the question or complaint (sealed under the subject's key).
    pub text: Option<String>,
}

/// The cookie choice in force for a visitor: per category, allowed or not, and how it was
/// made. `None` when no choice was made (the banner shows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieChoice {
    /// `(category, granted)` for each of [`COOKIE_CATEGORIES`].
    pub categories: Vec<(&'static str, bool)>,
    /// The method of the latest choice.
    pub method: String,
}

/// How a cookie choice was made (policy §III; the wire names of the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMethod {
    /// Every category allowed.
    AcceptAll,
    /// Only the strictly necessary.
    RejectAll,
    /// Saved from the settings page.
    Save,
    /// A `Sec-GPC: 1` request with no earlier choice: non-essential refused, server-side.
    Gpc,
    /// The banner dismissed: never changes a saved choice.
    Dismiss,
}

impl CookieMethod {
    /// The ledger's name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AcceptAll => "accept_all",
            Self::RejectAll => "reject_all",
            Self::Save => "save",
            Self::Gpc => "gpc",
            Self::Dismiss => "dismiss",
        }
    }
}

/// A visitor id is 32 lowercase hex digits (128 random bits), names nobody.
#[must_use]
pub fn valid_visitor_id(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh random visitor id (see [`valid_visitor_id`]).
///
/// # Errors
/// `Conflict` (`rng_unavailable`) if the OS generator fails.
pub fn new_visitor_id() -> Result<String, CoreError> {
    let b: [u8; 16] =
        pivault_crypto::try_random_bytes().ok_or(CoreError::Conflict("rng_unavailable"))?;
    Ok(hex::encode(b))
}

fn session_unauthenticated() -> CoreError {
    CoreError::Unauthenticated
}

impl Vault {
    /// The principal acting for a signed-in subject on their own consents: role `app` and
    /// every consent-based purpose, so [`Vault::record_consent`] applies the same checks and
    /// writes the same ledger row and audit entry as the API (actor [`CENTER_ACTOR`]).
    fn center_principal(&self, actor: &str) -> Principal {
        Principal {
            name: actor.into(),
            roles: vec![ROLE_APP.into()],
            purposes: self
                .policy()
                .purposes()
                .iter()
                .filter(|p| p.legal_basis == LegalBasis::Consent)
                .map(|p| p.id.clone())
                .collect(),
            key_id: None,
        }
    }

    /// Starts a sign-in: a `sign_in` request through the DSR intake (normalized identity,
    /// blind-index lookup, rate limits per client and per identity, one-time code through the
    /// outbox). The answer is the same whether or not the identity has an account. When
    /// several accounts share the identity, the first request is used.
    ///
    /// # Errors
    /// As [`Vault::dsr_create_from`]: `Invalid` (`identity_required`, a malformed email or
    /// mobile), `RateLimited`; store failures.
    pub async fn center_signin_start(
        &self,
        email: Option<&str>,
        mobile: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<CreatedDsr, CoreError> {
        let input = DsrInput {
            kind: DsrKind::SignIn.as_str().into(),
            email: email.map(str::to_string),
            mobile: mobile.map(str::to_string),
            ..DsrInput::default()
        };
        self.dsr_intake(&input, client, crate::dsr::Requester::Subject)
            .await?
            .into_iter()
            .next()
            .ok_or(CoreError::Conflict("dsr_not_awaiting_verification"))
    }

    /// Starts a guardian's sign-in (policy §IX; PIPL Art. 31): as
    /// [`Vault::center_signin_start`], by the guardian's own mobile, which finds the minors
    /// whose records hold it (blind index `guardian_mobile`); the code goes to that number.
    /// The answer is the same whether or not the number is on any record.
    ///
    /// # Errors
    /// As [`Vault::center_signin_start`].
    pub async fn center_guardian_signin_start(
        &self,
        mobile: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<CreatedDsr, CoreError> {
        let input = DsrInput {
            kind: DsrKind::SignIn.as_str().into(),
            mobile: Some(mobile.to_string()),
            ..DsrInput::default()
        };
        self.dsr_intake(&input, client, crate::dsr::Requester::Guardian)
            .await?
            .into_iter()
            .next()
            .ok_or(CoreError::Conflict("dsr_not_awaiting_verification"))
    }

    /// Verifies the sign-in code and opens a session (once per sign-in); links the visitor's
    /// earlier cookie choices to the subject. Returns the session token (shown once; only its
    /// SHA-256 is stored) and the session. A guardian's sign-in opens a guardian session
    /// while the minor is under the policy's `minor_age` (PIPL Art. 31), and links no cookie
    /// choice: the browser is the guardian's.
    ///
    /// # Errors
    /// As [`Vault::dsr_verify`] (`code_mismatch`, `code_expired`, `code_exhausted`,
    /// `dsr_token_invalid`); `Unauthenticated` (`session_invalid`) when the request is not a
    /// sign-in, matched no account, or already opened a session; `Invalid`
    /// (`guardian_for_adult`) for a guardian of a subject who is no longer a minor.
    pub async fn center_signin_verify(
        &self,
        id: &str,
        token: &str,
        code: &str,
        visitor: Option<&str>,
    ) -> Result<(String, CenterSession), CoreError> {
        self.dsr_verify(id, token, code).await?;
        // The requester's view hides the subject; the row, read after the token checked out,
        // names it.
        let row = self
            .store
            .dsr(id)
            .await?
            .ok_or_else(session_unauthenticated)?;
        if row.kind != DsrKind::SignIn.as_str() || row.state != DsrState::Completed.as_str() {
            return Err(session_unauthenticated());
        }
        let guardian = crate::dsr::by_guardian(&row);
        let subject = row.subject_id.ok_or_else(session_unauthenticated)?;
        let now_t = self.now();
        // The intake matched only children under 14; one may have turned 14 since the code.
        if guardian && !self.is_minor(&subject).await? {
            return Err(CoreError::invalid(
                "subject",
                "guardian_for_adult",
                "the account holder is 14 or older and manages their own consents (PIPL Art. 31)",
            ));
        }
        let session = crate::dsr::new_token()?.replacen("dsr_", "pvs_", 1);
        let now = now_t.unix_timestamp();
        let expires_at = now + SESSION_SECONDS;
        let mut tx = self.store.begin(now).await?;
        if tx.subject_status(&subject).await?.as_deref() != Some("active") {
            return Err(session_unauthenticated());
        }
        if !tx
            .insert_center_session(
                &crate::dsr::token_hash(&session),
                id,
                &subject,
                (now, expires_at),
                if guardian { "guardian" } else { "self" },
            )
            .await?
        {
            return Err(session_unauthenticated());
        }
        if let Some(v) = visitor.filter(|v| valid_visitor_id(v) && !guardian) {
            tx.link_cookie_visitor(v, &subject).await?;
        }
        let actor = if guardian {
            GUARDIAN_ACTOR
        } else {
            CENTER_ACTOR
        };
        let mut rec = self.auditor.base(actor, "center.signin", now, None);
        rec.subject_id = Some(subject.clone());
        rec.detail = Some(format!(
            "request={id} as={}",
            if guardian { "guardian" } else { "self" }
        ));
        tx.audit(rec);
        tx.commit().await?;
        Ok((
            session,
            CenterSession {
                subject_id: subject,
                expires_at,
                erased: false,
                guardian,
            },
        ))
    }

    /// The session of a token: open, not expired, its subject active and not locked.
    ///
    /// # Errors
    /// `Unauthenticated` (`session_invalid`) otherwise; store failures.
    pub async fn center_session(&self, token: &str) -> Result<CenterSession, CoreError> {
        if !token.starts_with("pvs_") || token.len() > 64 {
            return Err(session_unauthenticated());
        }
        let now = self.now().unix_timestamp();
        let row = self
            .store
            .center_session(&crate::dsr::token_hash(token))
            .await?
            .ok_or_else(session_unauthenticated)?;
        if row.ended_at.is_some() || row.expires_at <= now {
            return Err(session_unauthenticated());
        }
        let subject = self
            .store
            .subject(&row.subject_id)
            .await?
            .ok_or_else(session_unauthenticated)?;
        // An erasure ends every use of the session but one: the receipt of what was erased,
        // which is the subject's, not a guardian's: a guardian's session ends with it.
        let erased = subject.status != "active";
        if erased && row.acting_as == "guardian" {
            return Err(session_unauthenticated());
        }
        Ok(CenterSession {
            subject_id: row.subject_id,
            expires_at: row.expires_at,
            erased,
            guardian: row.acting_as == "guardian",
        })
    }

    /// Ends the session (sign-out), audited. Ending an unknown or ended session is not an
    /// error.
    ///
    /// # Errors
    /// Store failures.
    pub async fn center_signout(&self, token: &str) -> Result<(), CoreError> {
        let now = self.now().unix_timestamp();
        let hash = crate::dsr::token_hash(token);
        let Some(row) = self.store.center_session(&hash).await? else {
            return Ok(());
        };
        let mut tx = self.store.begin(now).await?;
        if tx.end_center_session(&hash, now).await? {
            let actor = if row.acting_as == "guardian" {
                GUARDIAN_ACTOR
            } else {
                CENTER_ACTOR
            };
            let mut rec = self.auditor.base(actor, "center.signout", now, None);
            rec.subject_id = Some(row.subject_id);
            tx.audit(rec);
        }
        tx.commit().await?;
        Ok(())
    }

    /// A form token bound to `binding` (a session token or visitor id): HMAC-SHA-256 under the
    /// vault's index key, domain-separated, 64 hex digits (the synchronizer-token pattern of
    /// the OWASP CSRF cheat sheet).
    #[must_use]
    pub fn center_csrf(&self, binding: &str) -> String {
        hex::encode(self.sealer.keys().blind_index("center_csrf", binding))
    }

    /// Checks a form token against [`Vault::center_csrf`] in constant time.
    #[must_use]
    pub fn center_csrf_ok(&self, binding: &str, token: &str) -> bool {
        pivault_crypto::ct_eq(self.center_csrf(binding).as_bytes(), token.as_bytes())
    }

    /// What is held about the subject, by category, with purposes, legal bases, retention and
    /// recipients (PIPL Art. 17, 44, 48), named in `lang` where the policy gives Chinese names
    /// (`name_zh`). Field names and counts only: no value is opened.
    ///
    /// # Errors
    /// Store failures.
    /// `Forbidden` (`guardian_session`) in a guardian's session.
    pub async fn center_overview(
        &self,
        s: &CenterSession,
        lang: Lang,
    ) -> Result<Vec<CenterCategory>, CoreError> {
        let zh = lang == Lang::ZhCn;
        let s = s.own()?;
        let policy = self.policy();
        let fields = self.store.fields(&s.subject_id).await?;
        // Per category: field names, records, and the latest restriction end.
        type Held<'a> = (Vec<&'a str>, Vec<&'a str>, Option<i64>);
        let mut by_cat: BTreeMap<&str, Held<'_>> = BTreeMap::new();
        for f in &fields {
            let e = by_cat.entry(f.category.as_str()).or_default();
            e.0.push(f.name.as_str());
            e.1.push(f.record.as_str());
            if let Some(u) = f.restricted_until {
                e.2 = Some(e.2.map_or(u, |x: i64| x.max(u)));
            }
        }
        let mut out = Vec::with_capacity(by_cat.len());
        for (key, (mut names, mut records, restricted_until)) in by_cat {
            names.sort_unstable();
            names.dedup();
            records.sort_unstable();
            records.dedup();
            let c = policy.category(key);
            out.push(CenterCategory {
                key: key.to_string(),
                name: c.map_or_else(
                    || key.to_string(),
                    |c| localized(&c.name, c.name_zh.as_deref(), zh).to_string(),
                ),
                sensitivity: c.map_or_else(String::new, |c| {
                    if c.is_sensitive() {
                        "sensitive"
                    } else {
                        "personal"
                    }
                    .to_string()
                }),
                clause: c.map_or_else(String::new, |c| c.clause.clone()),
                fields: names.into_iter().map(str::to_string).collect(),
                records: records.len(),
                restricted_until,
                purposes: policy
                    .purposes()
                    .iter()
                    .filter(|p| p.allows(key))
                    .map(|p| CenterPurpose {
                        id: p.id.clone(),
                        name: localized(&p.name, p.name_zh.as_deref(), zh).to_string(),
                        legal_basis: p.legal_basis.as_str(),
                        clause: p.clause.clone(),
                    })
                    .collect(),
                keep_for_days: c
                    .and_then(|c| c.retention.as_ref())
                    .map(|r| i64::from(r.keep_for.days())),
                retention_end: c.and_then(|c| c.retention.as_ref()).map(|r| r.end.as_str()),
                retention_basis: c
                    .and_then(|c| c.retention.as_ref())
                    .map(|r| r.basis.clone()),
                recipients: policy
                    .recipients()
                    .iter()
                    .filter(|r| r.receives(key))
                    .map(|r| localized(&r.name, r.name_zh.as_deref(), zh).to_string())
                    .collect(),
            });
        }
        Ok(out)
    }

    /// Every consent-based purpose of the policy and whether the subject's consent to it is in
    /// force, with the clause it rests on (policy §II, §7.2; PIPL Art. 14, 15, 29); purposes
    /// named in `lang`.
    ///
    /// # Errors
    /// `NotFound`; store failures.
    pub async fn center_consents(
        &self,
        s: &CenterSession,
        lang: Lang,
    ) -> Result<(Vec<CenterConsent>, Vec<ConsentRow>), CoreError> {
        let (rows, active) = self
            .consents(&self.center_principal(s.actor()), &s.subject_id)
            .await?;
        let outdated = self.outdated_consents(&s.subject_id).await?;
        let out = self
            .policy()
            .purposes()
            .iter()
            .filter(|p| p.legal_basis == LegalBasis::Consent)
            .map(|p| {
                let now = active.iter().find(|(id, _)| id == &p.id).map(|(_, a)| a);
                let stale = outdated
                    .iter()
                    .find(|o| {
                        o.purpose == p.id && now.is_some_and(|a| a.policy_version == o.given_under)
                    })
                    .map(|o| (o.change_version.clone(), o.change_summary.clone()));
                let last = rows
                    .iter()
                    .filter(|r| r.purpose == p.id && r.recipient.is_none())
                    .max_by_key(|r| (r.at, r.seq));
                CenterConsent {
                    purpose: p.id.clone(),
                    name: localized(&p.name, p.name_zh.as_deref(), lang == Lang::ZhCn).to_string(),
                    clause: p.clause.clone(),
                    separate: p.separate_consent,
                    granted: now.is_some() && stale.is_none(),
                    at: last.map(|r| r.at),
                    given_by: last.map(|r| r.given_by.clone()),
                    policy_version: now
                        .map(|a| a.policy_version.clone())
                        .or_else(|| last.map(|r| r.policy_version.clone())),
                    outdated: stale,
                }
            })
            .collect();
        Ok((out, rows))
    }

    /// Whether the subject is under the policy's `minor_age` today (by the birth date held;
    /// `false` when none is known).
    pub(crate) async fn is_minor(&self, subject: &str) -> Result<bool, CoreError> {
        let now_t = self.now();
        let facts = self.facts.cached(subject, now_t).await?;
        Ok(facts.birth_date.is_some_and(|b| {
            pivault_domain::decision::age_on(b, now_t.date()) < i32::from(self.policy().minor_age())
        }))
    }

    /// Grants or withdraws the subject's consent to `purpose` from the privacy center: the same
    /// use case as `POST /v1/subjects/{id}/consents` ([`Vault::record_consent`]), method `web`,
    /// under the policy version in force; `given_by = guardian` in a guardian's session
    /// (PIPL Art. 31; policy §IX), which the ledger checks against the minor's age.
    ///
    /// # Errors
    /// As [`Vault::record_consent`], which refuses a purpose that does not rest on consent
    /// (`purpose_not_consent_based`) and a grant by a child under 14 in their own session
    /// (`guardian_consent_required`).
    pub async fn center_set_consent(
        &self,
        s: &CenterSession,
        purpose: &str,
        grant: bool,
        request_id: Option<&str>,
    ) -> Result<ConsentRow, CoreError> {
        // The ledger refuses what the page must not take: a grant by a child under 14 in their
        // own session (`guardian_consent_required`) and a purpose that does not rest on consent
        // (`purpose_not_consent_based`), as it does for the API.
        let p = self.center_principal(s.actor());
        let input = ConsentInput {
            purpose: purpose.to_string(),
            action: if grant { "grant" } else { "withdraw" }.into(),
            given_by: if s.guardian { "guardian" } else { "self" }.into(),
            method: "web".into(),
            // A child's PI is sensitive (PIPL Art. 28): the guardian's page says so and takes
            // each consent on its own, purpose by purpose, which is a separate consent (Art.
            // 29, 31). A purpose that needs one is marked separate by the ledger anyway.
            separate: s.guardian,
            at: None,
            event_ref: None,
            policy_version: None,
            recipient: None,
        };
        self.record_consent(&p, &s.subject_id, &input, request_id)
            .await
    }

    /// The disclosure ledger of the subject: who received what, when, for which purpose (PIPL
    /// Art. 23, 25; policy §V).
    ///
    /// # Errors
    /// Store failures.
    /// `Forbidden` (`guardian_session`) in a guardian's session.
    pub async fn center_disclosures(
        &self,
        s: &CenterSession,
    ) -> Result<Vec<DisclosureRow>, CoreError> {
        Ok(self
            .store
            .disclosures(Some(&s.own()?.subject_id), i64::MIN, i64::MAX)
            .await?)
    }

    /// Who accessed the subject's PI, when and for which purpose, newest first, at most
    /// `limit` entries, from the audit log (PIPL Art. 45; policy §8.1). Principal names only.
    ///
    /// # Errors
    /// Store failures.
    /// `Forbidden` (`guardian_session`) in a guardian's session.
    pub async fn center_access_history(
        &self,
        s: &CenterSession,
        limit: i64,
    ) -> Result<Vec<AccessEntry>, CoreError> {
        let rows = self
            .store
            .releases_of_subject(&s.own()?.subject_id, limit.clamp(1, 1_000))
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| AccessEntry {
                seq: r.seq,
                at: r.at,
                principal: r.actor,
                action: r.action,
                purpose: r.purpose,
                categories: r.categories,
            })
            .collect())
    }

    /// The inclusion proof of one entry of the subject's access history (issue 15): the
    /// entry's bytes, its audit path and a signed checkpoint (see
    /// [`Vault::inclusion_proof`]), for the person to check offline with `pivault-verify` and
    /// the key at `GET /v1/audit/key` that what the page shows is what the log holds. Only
    /// entries about the session's own subject; the entry holds no PI value.
    ///
    /// # Errors
    /// `NotFound` (`audit_entry`) for an entry about anyone else (or none);
    /// `Forbidden` (`guardian_session`) in a guardian's session; store failures.
    pub async fn center_access_proof(
        &self,
        s: &CenterSession,
        seq: i64,
    ) -> Result<pivault_verify::InclusionBundle, CoreError> {
        let subject = &s.own()?.subject_id;
        match self.store.audit_entry(seq).await? {
            Some(e) if e.subject_id.as_deref() == Some(subject.as_str()) => {
                self.inclusion_proof(seq, None).await
            }
            _ => Err(CoreError::NotFound("audit_entry")),
        }
    }

    /// The subject's requests (not sign-ins), newest due last, with due dates.
    ///
    /// # Errors
    /// Store failures.
    /// `Forbidden` (`guardian_session`) in a guardian's session.
    pub async fn center_requests(&self, s: &CenterSession) -> Result<Vec<DsrView>, CoreError> {
        let s = s.own()?;
        let rows = self
            .store
            .dsr_list(&DsrFilter {
                subject_id: Some(s.subject_id.clone()),
                limit: 200,
                ..DsrFilter::default()
            })
            .await?;
        let now = self.now().unix_timestamp();
        Ok(rows
            .iter()
            .filter(|r| r.kind != DsrKind::SignIn.as_str())
            .map(|r| self.dsr_view(r, false, now))
            .collect())
    }

    /// Files a request for the signed-in subject. Their identity was verified by the sign-in
    /// code, so the request is filed `verified` (moves `received → identity_unverified →
    /// verified`, each audited, actor `dsr:requester`, detail `verified_by=sign_in`) and joins
    /// the office's queue with the jurisdiction's deadline. A misuse report is run at once
    /// (policy §8.7), as through `POST /v1/misuse`.
    ///
    /// # Errors
    /// `Invalid` for a kind the center does not file (`sign_in`), a missing or over-long
    /// `Forbidden` (`guardian_session`) in a guardian's session.
    /// inquiry text, a bad ground or purpose; store failures.
    pub async fn center_file(
        &self,
        s: &CenterSession,
        kind: DsrKind,
        filing: &CenterFiling,
    ) -> Result<DsrView, CoreError> {
        let s = s.own()?;
        if kind == DsrKind::SignIn || kind == DsrKind::Correction {
            return Err(CoreError::invalid(
                "kind",
                "dsr_kind_unknown",
                "the privacy center files access, copy, deletion, withdrawal, cancellation, explanation, misuse_report and inquiry requests",
            ));
        }
        let input = DsrInput {
            kind: kind.as_str().into(),
            ground: filing.ground.clone(),
            purposes: filing.purposes.clone(),
            ..DsrInput::default()
        };
        let mut params = self.dsr_params(kind, &input)?;
        let text =
            match (kind, filing.text.as_deref().map(str::trim)) {
                (DsrKind::Inquiry, Some(t))
                    if !t.is_empty()
                        && t.chars().count() <= 2_000
                        && !t
                            .chars()
                            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
                {
                    Some(t.to_string())
                }
                (DsrKind::Inquiry, _) => return Err(CoreError::invalid(
                    "text",
                    "inquiry_text_invalid",
                    "a question or complaint is 1 to 2,000 characters, without control characters",
                )),
                _ => None,
            };
        if text.is_some() {
            params["text"] = json!("sealed");
        }
        let jurisdiction = self.default_jurisdiction()?;
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let id = uuid::Uuid::new_v4().to_string();
        let sealed_params = match &text {
            Some(t) => {
                let dek = self
                    .sealer
                    .dek(&s.subject_id, crate::services::sealer::SCOPE_PRIMARY)
                    .await?
                    .ok_or(CoreError::Conflict("subject_key_missing"))?;
                Some(dek.seal(
                    &crate::dsr::aad(&s.subject_id, PARAMS_CATEGORY, &id, dek.key_id()),
                    t.as_bytes(),
                ))
            }
            None => None,
        };
        let mut row = DsrRow {
            id: id.clone(),
            subject_id: Some(s.subject_id.clone()),
            kind: kind.as_str().to_string(),
            state: DsrState::Received.as_str().to_string(),
            channel: crate::ports::Channel::Email.as_str().to_string(),
            jurisdiction: jurisdiction.key.clone(),
            received_at: now,
            due_at: jurisdiction.due(now_t).unix_timestamp(),
            token_hash: crate::dsr::token_hash(&crate::dsr::new_token()?),
            step_results: "{}".into(),
            params: params.to_string(),
            sealed_params,
            updated_at: now,
            ..DsrRow::default()
        };
        let mut tx = self.store.begin(now).await?;
        if tx.subject_status(&s.subject_id).await?.as_deref() != Some("active") {
            return Err(session_unauthenticated());
        }
        let mut rec = self.dsr_audit(SUBJECT_ACTOR, "received", &row, now);
        rec.detail = rec.detail.map(|d| format!("{d} via=center"));
        tx.audit(rec);
        for (to, what) in [
            (DsrState::IdentityUnverified, "identity_unverified"),
            (DsrState::Verified, "verified_by_sign_in"),
        ] {
            self.transition(&mut tx, &mut row, to, SUBJECT_ACTOR, what, now)?;
        }
        tx.insert_dsr(&row).await?;
        tx.commit().await?;
        if kind == DsrKind::MisuseReport {
            let security = Principal::operator("misuse", self.policy());
            self.dsr_approve(&security, &id).await?;
            self.dsr_run(&security, &id).await?;
        }
        let done = self
            .store
            .dsr(&id)
            .await?
            .ok_or(CoreError::NotFound("dsr"))?;
        Ok(self.dsr_view(&done, false, self.now().unix_timestamp()))
    }

    /// The question or complaint of an inquiry (policy §XI), for the privacy office to answer:
    /// a release of the subject's PI like any read, through the one access path. The text is
    /// decided as a use of [`INQUIRY_CATEGORY`] for `legal_obligation` (PIPL Art. 50: the
    /// handler must handle the subject's requests and complaints), narrowed by the staff
    /// policy (a `dpo` reads it in clear; a masked grant shows it masked; other roles get
    /// nothing), and audited (`dsr.inquiry_read`) before it is opened.
    ///
    /// # Errors
    /// `NotFound` when `id` is not an inquiry or its text is gone (the subject was erased);
    /// `Denied` (audited) when the decision or the staff policy refuses; store/crypto failures.
    pub async fn center_inquiry_text(
        &self,
        p: &Principal,
        id: &str,
        request_id: Option<&str>,
    ) -> Result<String, CoreError> {
        let row = self
            .store
            .dsr(id)
            .await?
            .filter(|r| r.kind == DsrKind::Inquiry.as_str())
            .ok_or(CoreError::NotFound("dsr"))?;
        let (Some(subject), Some(sealed)) =
            (row.subject_id.as_deref(), row.sealed_params.as_deref())
        else {
            return Err(CoreError::NotFound("dsr"));
        };
        let now_t = self.now();
        let now = now_t.unix_timestamp();
        let purpose = "legal_obligation";
        // Loaded fresh, as every read is (the decision cache may lag a lock by a moment).
        let f = self.facts.load(subject, now_t).await?;
        if f.locked {
            // A misuse report's lock (policy §8.7) holds here as on every read.
            self.refuse_locked(p, "dsr.inquiry_read", subject, purpose, now, request_id)
                .await?;
        }
        let cats = [INQUIRY_CATEGORY];
        let req = pivault_domain::decision::AccessRequest::use_of(purpose, &cats, &p.purposes);
        let d = self.decide_access(p, &req, &f.view(), now_t);
        self.audit_decision(
            p,
            "dsr.inquiry_read",
            Some(subject),
            purpose,
            &d,
            &cats,
            now,
            request_id,
        )
        .await?;
        if !d.allowed {
            return Err(CoreError::Denied(crate::access::denial(&d)));
        }
        let dek = f
            .dek
            .as_deref()
            .filter(|_| !f.erased)
            .ok_or(CoreError::NotFound("dsr"))?;
        let plain = dek.open(
            &crate::dsr::aad(subject, PARAMS_CATEGORY, id, dek.key_id()),
            sealed,
        )?;
        let text = String::from_utf8_lossy(&plain[..]).into_owned();
        let masked = d.obligations.iter().any(
            |o| matches!(o, pivault_domain::decision::Obligation::Mask(c) if *c == INQUIRY_CATEGORY),
        );
        Ok(if masked {
            pivault_staff::mask(INQUIRY_CATEGORY, &text)
        } else {
            text
        })
    }

    /// The result of one of the subject's own requests (access package, copy, explanation, or
    /// the signed deletion receipt), audited as a download by the requester.
    ///
    /// # Errors
    /// `NotFound` for a request of someone else; as [`Vault::dsr_result`].
    /// `Forbidden` (`guardian_session`) in a guardian's session.
    pub async fn center_result(
        &self,
        s: &CenterSession,
        id: &str,
        format: ResultFormat,
    ) -> Result<(Vec<u8>, &'static str), CoreError> {
        let s = s.own()?;
        let row = self
            .store
            .dsr(id)
            .await?
            .filter(|r| r.subject_id.as_deref() == Some(s.subject_id.as_str()))
            .ok_or(CoreError::NotFound("dsr"))?;
        self.dsr_result_of(&row, SUBJECT_ACTOR, format).await
    }

    /// The cookie choice in force for a visitor (or, signed in, for the subject: their latest
    /// choice on any device), or `None` when none was made.
    ///
    /// # Errors
    /// Store failures.
    pub async fn cookie_choice(
        &self,
        visitor: &str,
        subject: Option<&str>,
    ) -> Result<Option<CookieChoice>, CoreError> {
        let rows = self.store.cookie_choices(visitor, subject).await?;
        let Some(last) = rows.iter().max_by_key(|r| (r.at, r.seq)) else {
            return Ok(None);
        };
        let categories = COOKIE_CATEGORIES
            .iter()
            .map(|c| {
                let g = *c == "necessary"
                    || rows
                        .iter()
                        .filter(|r| r.category == *c)
                        .max_by_key(|r| (r.at, r.seq))
                        .is_some_and(|r| r.granted);
                (*c, g)
            })
            .collect();
        Ok(Some(CookieChoice {
            categories,
            method: last.method.clone(),
        }))
    }

    /// Records a cookie choice (policy §III) in the ledger, audited in the same transaction.
    /// `accept_all` allows every category, `reject_all` only the necessary, `save` takes
    /// `granted` (the categories allowed; `necessary` always is). `gpc` and `dismiss` are
    /// recorded only when no choice exists: a Global Privacy Control signal never overrides
    /// an explicit earlier choice, and dismissing never changes a saved one. Returns the
    /// choice in force.
    ///
    /// # Errors
    /// `Invalid` (`visitor_malformed`, `cookie_category_unknown`); store failures.
    pub async fn cookie_record(
        &self,
        visitor: &str,
        subject: Option<&str>,
        method: CookieMethod,
        granted: &[&str],
    ) -> Result<Option<CookieChoice>, CoreError> {
        if !valid_visitor_id(visitor) {
            return Err(CoreError::invalid(
                "visitor",
                "visitor_malformed",
                "a visitor id is 32 hex digits",
            ));
        }
        if granted.iter().any(|g| !COOKIE_CATEGORIES.contains(g)) {
            return Err(CoreError::invalid(
                "categories",
                "cookie_category_unknown",
                "categories are necessary, preferences, analytics and third_party",
            ));
        }
        if matches!(method, CookieMethod::Gpc | CookieMethod::Dismiss) {
            if let Some(existing) = self.cookie_choice(visitor, subject).await? {
                return Ok(Some(existing));
            }
        }
        let choices: Vec<(&str, bool)> = COOKIE_CATEGORIES
            .iter()
            .map(|c| {
                let g = match method {
                    CookieMethod::AcceptAll => true,
                    CookieMethod::RejectAll | CookieMethod::Gpc | CookieMethod::Dismiss => {
                        *c == "necessary"
                    }
                    CookieMethod::Save => *c == "necessary" || granted.contains(c),
                };
                (*c, g)
            })
            .collect();
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        tx.append_cookie_choices(
            visitor,
            subject,
            &choices,
            method.as_str(),
            self.policy().version(),
            now,
        )
        .await?;
        let mut rec = self.auditor.base(CENTER_ACTOR, "cookies.choice", now, None);
        rec.subject_id = subject.map(str::to_string);
        rec.detail = Some(format!(
            "method={} granted={}",
            method.as_str(),
            choices
                .iter()
                .filter(|(_, g)| *g)
                .map(|(c, _)| *c)
                .collect::<Vec<_>>()
                .join(",")
        ));
        tx.audit(rec);
        tx.commit().await?;
        self.cookie_choice(visitor, subject).await
    }

    /// Formats unix seconds as the API does (RFC 3339, UTC), for pages.
    #[must_use]
    pub fn center_time(at: i64) -> String {
        format_timestamp(at)
    }
}
