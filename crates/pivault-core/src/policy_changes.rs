//! Policy versions and re-consent (policy §X "Updates to this Privacy Policy"; PIPL Art. 14
//! para. 2: a change of the purpose or manner of processing needs consent again).
//!
//! When a vault opens, the policy's version history (`[[policy_version]]`) is recorded in
//! `policy_history`, each new version with its audit entry (`policy.version_published`) in one
//! transaction. A version already recorded with other contents is refused
//! (`policy_version_rewritten`): a published version is never rewritten. A newly recorded
//! version with material changes enqueues, in the same transaction, one `policy_change_notice`
//! per subject holding an active consent the changes affect (given under an older version, to
//! a purpose a material change touches), exactly once per (kind, subject, version).
//!
//! From then on `decide` no longer counts such a consent (`consent_outdated`); this room also
//! answers which of a subject's consents are outdated ([`Vault::outdated_consents`]) and how
//! many subjects each change between two versions affects ([`Vault::policy_diff_counts`]).

use std::collections::{BTreeMap, BTreeSet};

use pivault_domain::consent::{ActiveConsent, ConsentState};
use pivault_domain::notice::{self, Lang, PolicyChangeNotice, Rendered};
use pivault_domain::policy::{localized, DiffError, Policy, PolicyChange, PolicyVersion};
use pivault_store::{ConsentRow, PolicyVersionRow, PolicyVersionUpsert};
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::CoreError;
use crate::messages::{kind, Enqueue};
use crate::services::facts::consent_event;
use crate::Vault;

/// Subjects read per page by the scans of the consent ledger.
const PAGE: i64 = 2_000;

/// The audit actor of what the vault records by itself when it opens.
const ACTOR: &str = "vault";

/// An active consent that no longer counts because of a material policy change (PIPL Art. 14
/// para. 2; policy §X): `decide` denies its purpose with `consent_outdated` until the subject
/// consents again under the new version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutdatedConsent {
    /// The purpose id the consent is for.
    pub purpose: String,
    /// The policy version it was given under.
    pub given_under: String,
    /// The version that made the material change.
    pub change_version: String,
    /// The change's summary.
    pub change_summary: String,
}

/// One change between two policy versions and how many subjects it affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeImpact {
    /// The version that made the change.
    pub version: String,
    /// The change's summary.
    pub summary: String,
    /// Whether it is material (consents given before it no longer count).
    pub material: bool,
    /// Purpose ids it names.
    pub purposes: Vec<String>,
    /// Category keys it names.
    pub categories: Vec<String>,
    /// Active (not erased) subjects holding an active consent, given under a version older
    /// than `version`, to a purpose the change touches (names, or uses a category it names).
    pub subjects_affected: u64,
}

/// Every consent in force of a subject: the general ones and those naming a recipient, as
/// (purpose, consent).
fn active_consents(state: &ConsentState) -> Vec<(&str, &ActiveConsent)> {
    let mut out: Vec<(&str, &ActiveConsent)> = state
        .active_purposes()
        .into_iter()
        .filter_map(|p| state.active(p).map(|c| (p, c)))
        .collect();
    out.extend(
        state
            .active_recipient_consents()
            .into_iter()
            .map(|(p, _, c)| (p, c)),
    );
    out
}

/// Whether a consent to `purpose` given under `given_under` is affected by `change` of
/// `version`: the change touches the purpose and the consent predates the version.
fn affects(
    policy: &Policy,
    version: &PolicyVersion,
    change: &PolicyChange,
    purpose: &str,
    given_under: &str,
) -> bool {
    policy.change_touches(change, purpose) && policy.is_older_version(given_under, &version.version)
}

/// The purposes of a subject's consents that the material changes of `version` affect, sorted.
fn materially_affected(
    policy: &Policy,
    version: &PolicyVersion,
    state: &ConsentState,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (purpose, c) in active_consents(state) {
        if version
            .changes
            .iter()
            .any(|ch| ch.material && affects(policy, version, ch, purpose, &c.policy_version))
        {
            out.insert(purpose.to_string());
        }
    }
    out
}

/// The row recorded for a history entry.
fn version_row(v: &PolicyVersion, now: i64) -> PolicyVersionRow {
    let changes: Vec<Value> = v
        .changes
        .iter()
        .map(|c| {
            json!({
                "summary": c.summary,
                "material": c.material,
                "purposes": c.purposes,
                "categories": c.categories,
            })
        })
        .collect();
    PolicyVersionRow {
        version: v.version.clone(),
        published_at: v.published.to_string(),
        sha256: v.record_hash(),
        text: v.text.clone(),
        changes: Value::Array(changes).to_string(),
        stored_at: now,
    }
}

/// The contents of a policy-change notice for a subject whose `purposes` (ids) the material
/// changes of `version` touch (policy §X), the purposes named in Chinese when `zh`.
pub(crate) fn notice_of(
    policy: &Policy,
    version: &str,
    purposes: &[String],
    contact: &str,
    zh: bool,
) -> PolicyChangeNotice {
    let v = policy.policy_version(version);
    let changes = v
        .map(|v| {
            v.changes
                .iter()
                .filter(|c| c.material && purposes.iter().any(|p| policy.change_touches(c, p)))
                .map(|c| c.summary.clone())
                .collect()
        })
        .unwrap_or_default();
    PolicyChangeNotice {
        version: version.to_string(),
        published: v.map(|v| v.published.to_string()).unwrap_or_default(),
        changes,
        purposes: purposes
            .iter()
            .map(|p| {
                policy.purpose(p).map_or_else(
                    || p.clone(),
                    |x| localized(&x.name, x.name_zh.as_deref(), zh).to_string(),
                )
            })
            .collect(),
        contact: contact.to_string(),
    }
}

impl Vault {
    /// The policy's version history, oldest first (`[[policy_version]]`; policy §X): each
    /// version's label, publication date, text (when on file and attached by the caller) and
    /// changes. Empty when the policy file declares none.
    #[must_use]
    pub fn policy_versions(&self) -> &[PolicyVersion] {
        self.policy.versions()
    }

    /// Calls `visit(subject_id, lang, consent state now)` for every active subject with at
    /// least one consent event, page by page in id order. Reads only (never inside a write
    /// transaction).
    async fn scan_consents(
        &self,
        mut visit: impl FnMut(&str, Option<&str>, &ConsentState),
    ) -> Result<(), CoreError> {
        let now = self.now();
        let mut cursor = String::new();
        loop {
            let page = self.store.active_subjects_after(&cursor, PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(());
            };
            cursor.clone_from(&last.0);
            let ids: Vec<String> = page.iter().map(|(s, _)| s.clone()).collect();
            let rows = self.store.consent_events_of(&ids).await?;
            let mut by_subject: BTreeMap<&str, Vec<&ConsentRow>> = BTreeMap::new();
            for r in &rows {
                by_subject.entry(r.subject_id.as_str()).or_default().push(r);
            }
            for (id, lang) in &page {
                let Some(events) = by_subject.get(id.as_str()) else {
                    continue;
                };
                let events: Vec<_> = events.iter().filter_map(|r| consent_event(r)).collect();
                let state = ConsentState::fold(&events, now);
                visit(id, lang.as_deref(), &state);
            }
        }
    }

    /// Records the policy's version history (called by [`Vault::new`]): each version not yet
    /// recorded is stored with its audit entry `policy.version_published`, and, when it has
    /// material changes, one `policy_change_notice` per affected subject is enqueued in the
    /// same transaction (policy §X; PIPL Art. 14 para. 2). Opening again records nothing new
    /// and enqueues nothing (the outbox keeps one message per kind, subject and version).
    ///
    /// # Errors
    /// `Conflict` (`policy_version_rewritten`) when a version is recorded with other contents
    /// (nothing is written then); store failure.
    pub(crate) async fn record_policy_history(&self) -> Result<(), CoreError> {
        let versions = self.policy.versions();
        if versions.is_empty() {
            return Ok(());
        }
        // version → (hash, whether its text is stored)
        let stored: BTreeMap<String, (String, bool)> = self
            .store
            .policy_history()
            .await?
            .into_iter()
            .map(|r| (r.version, (r.sha256, r.text.is_some())))
            .collect();
        let recorded = |v: &PolicyVersion| {
            stored.get(&v.version).is_some_and(|(h, has_text)| {
                *h == v.record_hash() && (*has_text || v.text.is_none())
            })
        };
        if versions.iter().all(recorded) {
            return Ok(());
        }
        // The subjects to notify, per new version with material changes, read before the write
        // transaction (no pool connection may be taken while one is held).
        let mut notices: BTreeMap<&str, Vec<Enqueue>> = BTreeMap::new();
        let fresh: Vec<&PolicyVersion> = versions
            .iter()
            .filter(|v| !stored.contains_key(&v.version) && v.has_material_change())
            .collect();
        if !fresh.is_empty() {
            let policy = &self.policy;
            self.scan_consents(|subject, lang, state| {
                for v in &fresh {
                    let purposes = materially_affected(policy, v, state);
                    if purposes.is_empty() {
                        continue;
                    }
                    let mut e = Enqueue::to_subject(kind::POLICY_CHANGE, subject, &v.version, lang);
                    e.params = Some(json!({ "purposes": purposes }));
                    notices.entry(v.version.as_str()).or_default().push(e);
                }
            })
            .await?;
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        let mut kicked = false;
        for v in versions {
            let row = version_row(v, now);
            match tx.upsert_policy_version(&row).await? {
                PolicyVersionUpsert::Rewritten => {
                    return Err(CoreError::Conflict("policy_version_rewritten"));
                }
                PolicyVersionUpsert::Unchanged => {}
                PolicyVersionUpsert::Inserted => {
                    let msgs = notices.remove(v.version.as_str()).unwrap_or_default();
                    let rows = msgs
                        .iter()
                        .map(|m| self.outbox_row(m, now))
                        .collect::<Result<Vec<_>, _>>()?;
                    let queued = tx.enqueue(&rows).await?;
                    kicked |= queued > 0;
                    let mut rec = self
                        .auditor
                        .base(ACTOR, "policy.version_published", now, None);
                    rec.detail = Some(format!(
                        "version={} published={} sha256={} material_changes={} notices={queued}",
                        v.version,
                        v.published,
                        row.sha256,
                        v.changes.iter().filter(|c| c.material).count(),
                    ));
                    tx.audit(rec);
                }
            }
        }
        tx.commit().await?;
        if kicked {
            self.outbox_kick.notify_waiters();
        }
        Ok(())
    }

    /// The subject's active consents that no longer count because a material policy change
    /// touched their purpose after they were given (PIPL Art. 14 para. 2; policy §X): for
    /// each, the purpose, the version it was given under, and the change's version and
    /// summary. General consents and consents naming a recipient alike; one entry per purpose
    /// and version given under. Empty when none is outdated.
    ///
    /// # Errors
    /// `NotFound` (`subject`); store failure.
    pub async fn outdated_consents(
        &self,
        subject_id: &str,
    ) -> Result<Vec<OutdatedConsent>, CoreError> {
        if self.store.subject(subject_id).await?.is_none() {
            return Err(CoreError::NotFound("subject"));
        }
        let (_, state) = self.facts.consent_state(subject_id, self.now()).await?;
        let mut out: Vec<OutdatedConsent> = Vec::new();
        for (purpose, c) in active_consents(&state) {
            let Some((v, ch)) = self.policy.consent_outdated_by(purpose, &c.policy_version) else {
                continue;
            };
            if out
                .iter()
                .any(|o| o.purpose == purpose && o.given_under == c.policy_version)
            {
                continue;
            }
            out.push(OutdatedConsent {
                purpose: purpose.to_string(),
                given_under: c.policy_version.clone(),
                change_version: v.version.clone(),
                change_summary: ch.summary.clone(),
            });
        }
        Ok(out)
    }

    /// The changes made after policy version `old` up to `new` (oldest first, see
    /// `Policy::diff`), each with the number of active subjects it affects: those holding an
    /// active consent, given under a version older than the change's, to a purpose the change
    /// touches (policy §X; PIPL Art. 14 para. 2). Reads the whole consent ledger, page by page.
    ///
    /// # Errors
    /// `NotFound` (`policy_version`) for a version the history does not have; `Invalid`
    /// (`policy_version_order`) when `old` is not older than `new`; store failure.
    pub async fn policy_diff_counts(
        &self,
        old: &str,
        new: &str,
    ) -> Result<Vec<ChangeImpact>, CoreError> {
        let changes = self.policy.diff(old, new).map_err(|e| match e {
            DiffError::UnknownVersion(_) => CoreError::NotFound("policy_version"),
            DiffError::NotOlder { .. } => CoreError::invalid(
                "old",
                "policy_version_order",
                "the first policy version must be older than the second",
            ),
        })?;
        let mut counts = vec![0u64; changes.len()];
        if !changes.is_empty() {
            let policy = &self.policy;
            self.scan_consents(|_, _, state| {
                let consents = active_consents(state);
                for (i, (v, ch)) in changes.iter().enumerate() {
                    if consents
                        .iter()
                        .any(|(p, c)| affects(policy, v, ch, p, &c.policy_version))
                    {
                        counts[i] += 1;
                    }
                }
            })
            .await?;
        }
        Ok(changes
            .iter()
            .zip(counts)
            .map(|((v, ch), n)| ChangeImpact {
                version: v.version.clone(),
                summary: ch.summary.clone(),
                material: ch.material,
                purposes: ch.purposes.clone(),
                categories: ch.categories.clone(),
                subjects_affected: n,
            })
            .collect())
    }

    /// The text of a policy-change notice (outbox kind `policy_change_notice`, cause = the
    /// version), for the purposes its sealed parameters name.
    pub(crate) fn render_policy_change(
        &self,
        lang: Lang,
        version: &str,
        params: &Value,
    ) -> Rendered {
        let purposes: Vec<String> = params["purposes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let contact = self.policy.incident().contact.clone();
        let n = notice_of(
            &self.policy,
            version,
            &purposes,
            &contact,
            lang == Lang::ZhCn,
        );
        notice::policy_change_notice(lang, &n)
    }
}
