//! Security incidents (policy §8.3, §8.4; PIPL Art. 57): open, scope, notify, report, close.
//!
//! - **Scope.** The affected subjects are computed, never typed in: everyone whose PI the
//!   audit log shows was released (`fields.read`, `disclosure.*`, outcome `allow`) within the
//!   window through a compromised API key (`key=<id>` in the entry) or principal, and, when the
//!   store itself is compromised, everyone holding a field of the affected categories. They are
//!   stored by id with their affected categories and region, and counted; never listed by value.
//! - **Notify.** One `incident_notice` per affected subject goes into the outbox, page by page
//!   (each page its own transaction, so a crash resumes where it stopped: the outbox's
//!   uniqueness leaves out what is already queued). With more subjects than the policy's
//!   `announcement_threshold`, individual notice is impracticable: only the announcement is
//!   published. Subjects no channel reaches are covered by the announcement too.
//! - **Report.** The regulator report (JSON, printable HTML) with the facts, counts, measures,
//!   timeline, and each configured deadline measured from discovery.
//!
//! Every step is for the `security` or `dpo` role (the CLI's operator holds both) and is
//! audited in its transaction.

use std::collections::{BTreeMap, BTreeSet};

use pivault_domain::audit::AuditRecord;
use pivault_domain::incident::{
    deadline_status, NoticeCounts, RegulatorReport, Severity, TimelineEntry,
};
use pivault_domain::notice::{self, IncidentNotice, Lang};
use pivault_store::{AnnouncementRow, IncidentRow, IncidentSubjectRow, WriteTx};
use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::messages::{kind, Enqueue};
use crate::{Principal, Vault};

/// Subjects per notify transaction.
const NOTIFY_PAGE: i64 = 5_000;
/// Audit entries read per page while scoping.
const SCOPE_PAGE: i64 = 10_000;

/// What the security team knows when it opens an incident. Free text must not hold PI.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentInput {
    /// `especially_major`, `major`, `relatively_major`, `general`.
    pub severity: String,
    /// What happened.
    pub what_happened: String,
    /// RFC 3339 or unix seconds as text: when it happened.
    pub occurred_at: i64,
    /// When it was discovered (unix seconds).
    pub discovered_at: i64,
    /// Category keys affected.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Systems affected.
    #[serde(default)]
    pub systems: Vec<String>,
    /// The cause.
    #[serde(default)]
    pub cause: String,
    /// Possible impact.
    #[serde(default)]
    pub possible_impact: String,
    /// Measures taken.
    #[serde(default)]
    pub measures_taken: String,
    /// Measures planned.
    #[serde(default)]
    pub measures_planned: String,
    /// What people can do themselves.
    #[serde(default)]
    pub self_help: String,
    /// Remedies offered.
    #[serde(default)]
    pub remedies: String,
}

/// An incident's scope: a time window and any of API keys, principals, categories or the
/// store itself.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IncidentScope {
    /// Window start, unix seconds (inclusive).
    pub from: i64,
    /// Window end, unix seconds (inclusive).
    pub to: i64,
    /// Compromised API key ids (16 hex digits).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Compromised principals.
    #[serde(default)]
    pub principals: Vec<String>,
    /// Only these categories count (empty: the incident's categories, or all).
    #[serde(default)]
    pub categories: Vec<String>,
    /// The store itself was exposed: every holder of the categories is affected.
    #[serde(default)]
    pub store: bool,
}

/// An incident as the privacy office sees it: facts, state, counts. No per-person data.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    /// Id.
    pub id: String,
    /// State.
    pub state: String,
    /// Severity.
    pub severity: String,
    /// What happened.
    pub what_happened: String,
    /// Unix seconds.
    pub occurred_at: i64,
    /// Unix seconds.
    pub discovered_at: i64,
    /// Category keys.
    pub categories: Vec<String>,
    /// Systems.
    pub systems: Vec<String>,
    /// Cause.
    pub cause: String,
    /// Possible impact.
    pub possible_impact: String,
    /// Measures taken.
    pub measures_taken: String,
    /// Measures planned.
    pub measures_planned: String,
    /// Self-help.
    pub self_help: String,
    /// Remedies.
    pub remedies: String,
    /// Scope, once scoped.
    pub scope: Option<IncidentScope>,
    /// Affected subjects.
    pub affected: i64,
    /// Affected subjects per category.
    pub by_category: BTreeMap<String, u64>,
    /// Affected subjects per region.
    pub by_region: BTreeMap<String, u64>,
    /// Notices by state.
    pub notices: NoticeCounts,
    /// Unix seconds.
    pub opened_at: i64,
    /// Unix seconds.
    pub reported_at: Option<i64>,
    /// Unix seconds.
    pub closed_at: Option<i64>,
    /// Timeline.
    pub timeline: Vec<TimelineEntry>,
}

/// What `notify` did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct NotifyOutcome {
    /// Notices added to the outbox now.
    pub enqueued: u64,
    /// Affected subjects.
    pub affected: u64,
    /// Whether only an announcement was made (more subjects than the threshold).
    pub announcement_only: bool,
    /// Whether an announcement is published for this incident.
    pub announced: bool,
}

/// One public announcement, both languages.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Announcement {
    /// Id.
    pub id: String,
    /// `incident` or `cessation`.
    pub kind: String,
    /// The incident or cessation id.
    pub reference: String,
    /// Unix seconds.
    pub published_at: i64,
    /// zh-CN title and body.
    pub zh_cn: AnnouncementText,
    /// English title and body.
    pub en: AnnouncementText,
}

/// An announcement's text in one language.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AnnouncementText {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The notice contents of an incident (PIPL Art. 57).
pub(crate) fn notice_of(inc: &IncidentRow, contact: &str) -> IncidentNotice {
    IncidentNotice {
        incident_id: inc.id.clone(),
        what_happened: inc.what_happened.clone(),
        occurred_at: inc.occurred_at,
        discovered_at: inc.discovered_at,
        categories: split_list(&inc.categories),
        possible_impact: inc.possible_impact.clone(),
        measures_taken: inc.measures_taken.clone(),
        measures_planned: inc.measures_planned.clone(),
        self_help: inc.self_help.clone(),
        remedies: inc.remedies.clone(),
        contact: contact.to_string(),
    }
}

fn timeline_of(inc: &IncidentRow) -> Vec<TimelineEntry> {
    serde_json::from_str(&inc.timeline).unwrap_or_default()
}

fn push_timeline(inc: &mut IncidentRow, at: i64, event: String) {
    let mut t = timeline_of(inc);
    t.push(TimelineEntry { at, event });
    // In time order (the occurrence and discovery come before the opening); stable, so
    // entries of one instant keep the order they happened in.
    t.sort_by_key(|e| e.at);
    inc.timeline = serde_json::to_string(&t).unwrap_or_else(|_| "[]".into());
}

/// Free text of an incident: at most 4,000 characters, no control characters but newlines, no
/// bidirectional formatting characters.
fn check_text(field: &str, s: &str) -> Result<(), CoreError> {
    if s.chars().count() > 4_000 {
        return Err(CoreError::invalid(
            field,
            "value_too_long",
            "at most 4,000 characters",
        ));
    }
    // Published to everyone affected: no controls but line breaks, no bidi overrides that
    // would make the notice read differently from what was approved.
    if s.chars().any(|c| {
        (c.is_control() && c != '\n')
            || (!c.is_control() && pivault_domain::text::is_forbidden_in_text(c))
    }) {
        return Err(CoreError::invalid(
            field,
            "text_malformed",
            "control and bidirectional formatting characters are not allowed",
        ));
    }
    if holds_pi(s) {
        return Err(CoreError::invalid(
            field,
            "text_holds_pi",
            "the text is published to everyone affected: no mobile numbers, emails or ID numbers",
        ));
    }
    Ok(())
}

/// Whether `s` holds something shaped like PI of an identifier kind: a token that parses as
/// an email address or a mainland mobile number (the checks the identifiers themselves use),
/// or digits anywhere in it that read as a mobile or resident ID number (GB 11643), see
/// [`embedded_pi`]. The facts of an incident go to every person affected and onto the public
/// announcement; a legal hold's reference goes into the audit log, where erasure cannot reach.
pub(crate) fn holds_pi(s: &str) -> bool {
    use pivault_domain::identifiers::{Email, Mobile};
    s.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ',' | ';'
                    | '('
                    | ')'
                    | '<'
                    | '>'
                    | '"'
                    | '\''
                    | '，'
                    | '；'
                    | '、'
                    | '：'
                    | '（'
                    | '）'
            )
    })
    .map(|t| t.trim_end_matches(['.', ':', '。']))
    .filter(|t| !t.is_empty())
    // an IPv4 address is not a mobile number, whatever its digits read as
    .filter(|t| t.parse::<std::net::Ipv4Addr>().is_err())
    .any(|t| (t.contains('@') && Email::parse(t).is_ok()) || Mobile::parse(t).is_ok())
        || embedded_pi(s)
}

/// Identifiers run into other text, which the token check above misses: written with no space
/// beside Chinese text (`身份证130501196509157909泄露`, `联系a@b.cn`), in full-width digits, or
/// with their digits grouped (`187 6519 5768`, `187-6519-5768`, `0086 187 6519 5768`). Reads
/// the digit groups that single spaces or hyphens join into a chain (an ID number's final `X`
/// ends its group) and tries every run of neighbouring groups, so a number beside the
/// identifier (`10:00 187 6519 5768 3 次`) does not hide it; dots do not join groups, so IP
/// addresses and version numbers are not read as one number. Also every run of email
/// characters around an `@`.
fn embedded_pi(s: &str) -> bool {
    use pivault_domain::identifiers::{Email, IdCardNumber};
    let email_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-' | '@');
    if s.split(|c: char| !email_char(c))
        .filter(|t| t.contains('@'))
        .any(|t| Email::parse(t.trim_matches(['.', '-'])).is_ok())
    {
        return true;
    }
    // full-width digits and X as ASCII
    let chars: Vec<char> = s
        .chars()
        .map(|c| match c {
            '０'..='９' => {
                char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c)
            }
            'Ｘ' | 'ｘ' => 'X',
            _ => c,
        })
        .collect();
    let is_pi = |w: &str| {
        (w.len() == 11 && w.starts_with('1') && !w.contains('X'))
            || (w.len() == 13 && w.starts_with("861") && !w.contains('X'))
            || (w.len() == 18 && IdCardNumber::parse(w).is_ok())
    };
    let chain_holds_pi = |groups: &[String]| {
        (0..groups.len()).any(|from| {
            let mut w = String::new();
            groups[from..].iter().any(|g| {
                w.push_str(g);
                w.len() <= 18 && is_pi(&w)
            })
        })
    };
    let mut groups: Vec<String> = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let next_is_digit = chars.get(i + 1).is_some_and(char::is_ascii_digit);
        match c {
            d if d.is_ascii_digit() => cur.push(d),
            'X' | 'x' if !cur.is_empty() => {
                cur.push('X');
                groups.push(std::mem::take(&mut cur));
            }
            ' ' | '-' | '\u{a0}' if !cur.is_empty() && next_is_digit => {
                groups.push(std::mem::take(&mut cur));
            }
            // a separator after an ID number's X, before the next group of the chain
            ' ' | '-' | '\u{a0}' if cur.is_empty() && !groups.is_empty() && next_is_digit => {}
            _ => {
                if !cur.is_empty() {
                    groups.push(std::mem::take(&mut cur));
                }
                if chain_holds_pi(&groups) {
                    return true;
                }
                groups.clear();
            }
        }
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    chain_holds_pi(&groups)
}

impl Vault {
    pub(crate) fn require_security(p: &Principal) -> Result<(), CoreError> {
        if p.has_role("security") || p.has_role("dpo") {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                code: "role_required",
                message: "incidents and security cases need the security or dpo role",
            })
        }
    }

    fn check_categories(&self, field: &str, cats: &[String]) -> Result<(), CoreError> {
        for (i, c) in cats.iter().enumerate() {
            if self.policy().category(c).is_none() {
                return Err(CoreError::invalid(
                    format!("{field}[{i}]"),
                    "unknown_category",
                    "category is not declared in the policy",
                ));
            }
        }
        Ok(())
    }

    /// Opens an incident (state `open`), audited.
    ///
    /// # Errors
    /// `Forbidden` without the security or dpo role; `Invalid` (`severity_unknown`,
    /// `incident_time_invalid`, `unknown_category`, `value_too_long`, `text_malformed`); store
    /// failure.
    pub async fn open_incident(
        &self,
        p: &Principal,
        input: &IncidentInput,
    ) -> Result<IncidentView, CoreError> {
        Self::require_security(p)?;
        let severity = Severity::parse_name(&input.severity).ok_or_else(|| {
            CoreError::invalid(
                "severity",
                "severity_unknown",
                "severity is especially_major, major, relatively_major or general",
            )
        })?;
        let now = self.now().unix_timestamp();
        if input.occurred_at <= 0
            || input.discovered_at < input.occurred_at
            || input.discovered_at > now + 300
        {
            return Err(CoreError::invalid(
                "discovered_at",
                "incident_time_invalid",
                "occurred_at <= discovered_at <= now (unix seconds)",
            ));
        }
        self.check_categories("categories", &input.categories)?;
        for (f, v) in [
            ("what_happened", &input.what_happened),
            ("cause", &input.cause),
            ("possible_impact", &input.possible_impact),
            ("measures_taken", &input.measures_taken),
            ("measures_planned", &input.measures_planned),
            ("self_help", &input.self_help),
            ("remedies", &input.remedies),
        ] {
            check_text(f, v)?;
        }
        for (i, s) in input.systems.iter().enumerate() {
            check_text(&format!("systems[{i}]"), s)?;
            if s.contains(',') {
                return Err(CoreError::invalid(
                    format!("systems[{i}]"),
                    "text_malformed",
                    "a system name has no comma",
                ));
            }
        }
        if input.what_happened.trim().is_empty() {
            return Err(CoreError::invalid(
                "what_happened",
                "text_malformed",
                "say what happened",
            ));
        }
        let id = format!("inc-{}", uuid::Uuid::new_v4().simple());
        let mut cats = input.categories.clone();
        cats.sort();
        cats.dedup();
        let mut inc = IncidentRow {
            id: id.clone(),
            state: "open".into(),
            severity: severity.as_str().into(),
            what_happened: input.what_happened.clone(),
            occurred_at: input.occurred_at,
            discovered_at: input.discovered_at,
            categories: cats.join(","),
            systems: input.systems.join(","),
            cause: input.cause.clone(),
            possible_impact: input.possible_impact.clone(),
            measures_taken: input.measures_taken.clone(),
            measures_planned: input.measures_planned.clone(),
            self_help: input.self_help.clone(),
            remedies: input.remedies.clone(),
            scope: None,
            affected: 0,
            opened_by: p.name.clone(),
            opened_at: now,
            reported_at: None,
            closed_at: None,
            timeline: "[]".into(),
            updated_at: now,
        };
        push_timeline(&mut inc, input.occurred_at, "occurred".into());
        push_timeline(&mut inc, input.discovered_at, "discovered".into());
        push_timeline(&mut inc, now, format!("opened by {}", p.name));
        let mut tx = self.store.begin(now).await?;
        tx.put_incident(&inc).await?;
        tx.audit(self.incident_audit(p, "incident.open", &inc, now, None));
        tx.commit().await?;
        self.incident_view(&inc).await
    }

    fn incident_audit(
        &self,
        p: &Principal,
        action: &str,
        inc: &IncidentRow,
        now: i64,
        detail: Option<String>,
    ) -> AuditRecord {
        let mut rec = self.auditor.base(&p.name, action, now, None);
        rec.categories = inc.categories.clone();
        rec.detail = Some(match detail {
            Some(d) => format!("incident={} {d}", inc.id),
            None => format!("incident={} severity={}", inc.id, inc.severity),
        });
        rec
    }

    async fn incident_row(&self, id: &str) -> Result<IncidentRow, CoreError> {
        self.store
            .incident(id)
            .await?
            .ok_or(CoreError::NotFound("incident"))
    }

    /// One incident, with its counts.
    ///
    /// # Errors
    /// `Forbidden` without the security or dpo role; `NotFound` (`incident_not_found`).
    pub async fn incident(&self, p: &Principal, id: &str) -> Result<IncidentView, CoreError> {
        Self::require_security(p)?;
        let inc = self.incident_row(id).await?;
        self.incident_view(&inc).await
    }

    /// Every incident, newest first.
    ///
    /// # Errors
    /// `Forbidden` without the security or dpo role; store failure.
    pub async fn incidents(&self, p: &Principal) -> Result<Vec<IncidentView>, CoreError> {
        Self::require_security(p)?;
        let mut out = Vec::new();
        for inc in self.store.incidents().await? {
            out.push(self.incident_view(&inc).await?);
        }
        Ok(out)
    }

    async fn incident_view(&self, inc: &IncidentRow) -> Result<IncidentView, CoreError> {
        let (by_category, by_region) = self.incident_counts(&inc.id).await?;
        let c = self.store.outbox_counts(&inc.id, kind::INCIDENT).await?;
        Ok(IncidentView {
            id: inc.id.clone(),
            state: inc.state.clone(),
            severity: inc.severity.clone(),
            what_happened: inc.what_happened.clone(),
            occurred_at: inc.occurred_at,
            discovered_at: inc.discovered_at,
            categories: split_list(&inc.categories),
            systems: split_list(&inc.systems),
            cause: inc.cause.clone(),
            possible_impact: inc.possible_impact.clone(),
            measures_taken: inc.measures_taken.clone(),
            measures_planned: inc.measures_planned.clone(),
            self_help: inc.self_help.clone(),
            remedies: inc.remedies.clone(),
            scope: inc
                .scope
                .as_deref()
                .and_then(|s| serde_json::from_str(s).ok()),
            affected: inc.affected,
            by_category,
            by_region,
            notices: NoticeCounts {
                queued: c.pending,
                delivered: c.delivered,
                announced: c.announced,
                failed: c.failed,
                letters: c.letter,
            },
            opened_at: inc.opened_at,
            reported_at: inc.reported_at,
            closed_at: inc.closed_at,
            timeline: timeline_of(inc),
        })
    }

    async fn incident_counts(
        &self,
        id: &str,
    ) -> Result<(BTreeMap<String, u64>, BTreeMap<String, u64>), CoreError> {
        let mut by_cat = BTreeMap::new();
        let mut by_region = BTreeMap::new();
        let mut after = String::new();
        loop {
            let page = self.store.incident_subjects(id, &after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.subject_id.clone();
            for r in &page {
                for c in split_list(&r.categories) {
                    *by_cat.entry(c).or_insert(0) += 1;
                }
                *by_region.entry(r.region.clone()).or_insert(0) += 1;
            }
        }
        Ok((by_cat, by_region))
    }

    /// The affected subjects, by id, with their affected categories and region (for the
    /// privacy office; never values), in id order after `after`, at most `limit`.
    ///
    /// # Errors
    /// `Forbidden` without the security or dpo role; `NotFound`.
    pub async fn incident_subjects(
        &self,
        p: &Principal,
        id: &str,
        after: &str,
        limit: i64,
    ) -> Result<Vec<IncidentSubjectRow>, CoreError> {
        Self::require_security(p)?;
        self.incident_row(id).await?;
        Ok(self
            .store
            .incident_subjects(id, after, limit.clamp(1, 10_000))
            .await?)
    }

    /// Scopes an incident: computes its affected subjects from the audit log (and the store,
    /// when `scope.store`), stores them and their counts. May be repeated until notices go
    /// out; each run replaces the last.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` (`incident_closed`, `incident_state_invalid` once
    /// notified); `Invalid` (`incident_scope_invalid`: an empty window, nothing compromised,
    /// a malformed key id; `unknown_category`); store failure.
    pub async fn scope_incident(
        &self,
        p: &Principal,
        id: &str,
        scope: &IncidentScope,
    ) -> Result<IncidentView, CoreError> {
        Self::require_security(p)?;
        let mut inc = self.incident_row(id).await?;
        match inc.state.as_str() {
            "open" | "scoped" => {}
            "closed" => return Err(CoreError::Conflict("incident_closed")),
            _ => return Err(CoreError::Conflict("incident_state_invalid")),
        }
        let scope_err = |field: &str, reason: &'static str| {
            CoreError::invalid(field, "incident_scope_invalid", reason)
        };
        if scope.from > scope.to || scope.from < 0 {
            return Err(scope_err("from", "the window needs 0 <= from <= to"));
        }
        if scope.keys.is_empty() && scope.principals.is_empty() && !scope.store {
            return Err(scope_err(
                "keys",
                "name the compromised keys or principals, or set store",
            ));
        }
        for (i, k) in scope.keys.iter().enumerate() {
            if k.len() != 16 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(scope_err(
                    &format!("keys[{i}]"),
                    "an API key id is 16 hex digits",
                ));
            }
        }
        for (i, s) in scope.principals.iter().enumerate() {
            if s.is_empty() || s.len() > 128 || s.chars().any(char::is_control) {
                return Err(scope_err(&format!("principals[{i}]"), "a principal name"));
            }
        }
        self.check_categories("categories", &scope.categories)?;
        // A typo must not scope nobody: every key and principal named must exist.
        let keys = self.store.api_keys().await?;
        for k in &scope.keys {
            if !keys.iter().any(|r| r.key_id == *k) {
                return Err(CoreError::NotFound("api_key"));
            }
        }
        for (i, pr) in scope.principals.iter().enumerate() {
            if !keys.iter().any(|r| r.principal == *pr) && !pr.starts_with("cli:") {
                return Err(CoreError::invalid(
                    format!("principals[{i}]"),
                    "principal_malformed",
                    "no API key has this principal",
                ));
            }
        }
        let only: BTreeSet<String> = if scope.categories.is_empty() {
            split_list(&inc.categories).into_iter().collect()
        } else {
            scope.categories.iter().cloned().collect()
        };
        let mut affected = self.affected_subjects(scope, &only).await?;
        let ids: Vec<String> = affected.keys().cloned().collect();
        // A release's audit entry names the categories the decision allowed; only those the
        // subject holds were released. (A subject erased since keeps what was recorded.)
        let held = self.store.categories_held(&ids).await?;
        for (s, cats) in &mut affected {
            if let Some(h) = held.get(s) {
                let both: BTreeSet<String> = cats.intersection(h).cloned().collect();
                if !both.is_empty() {
                    *cats = both;
                }
            }
        }
        let regions = self.store.home_regions(&ids).await?;
        let default_region = self.policy().storage_region().to_string();
        let rows: Vec<IncidentSubjectRow> = affected
            .into_iter()
            .map(|(s, cats)| IncidentSubjectRow {
                incident_id: inc.id.clone(),
                region: regions
                    .get(&s)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| default_region.clone()),
                subject_id: s,
                categories: cats.into_iter().collect::<Vec<_>>().join(","),
            })
            .collect();
        let now = self.now().unix_timestamp();
        inc.state = "scoped".into();
        inc.affected = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        inc.scope = Some(serde_json::to_string(scope).unwrap_or_default());
        inc.updated_at = now;
        push_timeline(&mut inc, now, format!("scoped: {} subjects", rows.len()));
        let mut tx = self.store.begin(now).await?;
        tx.replace_incident_subjects(&inc.id, &rows).await?;
        tx.put_incident(&inc).await?;
        tx.audit(self.incident_audit(
            p,
            "incident.scope",
            &inc,
            now,
            Some(format!(
                "affected={} keys={} principals={} store={}",
                rows.len(),
                scope.keys.len(),
                scope.principals.len(),
                scope.store
            )),
        ));
        tx.commit().await?;
        self.incident_view(&inc).await
    }

    /// subject → affected categories, from the audit log and (with `store`) the store.
    async fn affected_subjects(
        &self,
        scope: &IncidentScope,
        only: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, CoreError> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let keys: Vec<String> = scope.keys.iter().map(|k| format!("key={k}")).collect();
        if !scope.keys.is_empty() || !scope.principals.is_empty() {
            let mut after = 0;
            loop {
                let page = self
                    .store
                    .releases_between(scope.from, scope.to, after, SCOPE_PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in page {
                    let by_key = r
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.split(' ').any(|t| keys.iter().any(|k| k == t)));
                    if !by_key && !scope.principals.contains(&r.actor) {
                        continue;
                    }
                    let cats: BTreeSet<String> = split_list(&r.categories)
                        .into_iter()
                        .filter(|c| only.is_empty() || only.contains(c))
                        .collect();
                    if cats.is_empty() {
                        continue;
                    }
                    out.entry(r.subject_id).or_default().extend(cats);
                }
            }
        }
        if scope.store {
            let cats: Vec<String> = if only.is_empty() {
                self.policy()
                    .categories()
                    .iter()
                    .map(|c| c.key.clone())
                    .collect()
            } else {
                only.iter().cloned().collect()
            };
            let mut after = String::new();
            loop {
                let page = self.store.holders_of(&cats, &after, SCOPE_PAGE).await?;
                let Some(last) = page.last() else { break };
                after.clone_from(&last.0);
                for (s, c) in page {
                    out.entry(s).or_default().insert(c);
                }
            }
        }
        Ok(out)
    }

    /// Notifies the affected subjects through the outbox (or, above the threshold, by
    /// announcement only). Idempotent: run again after a crash, it adds only what is missing.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` (`incident_closed`, `incident_state_invalid` before
    /// scoping); store failure.
    pub async fn notify_incident(
        &self,
        p: &Principal,
        id: &str,
    ) -> Result<NotifyOutcome, CoreError> {
        Self::require_security(p)?;
        let mut inc = self.incident_row(id).await?;
        match inc.state.as_str() {
            "scoped" | "notified" | "reported" => {}
            "closed" => return Err(CoreError::Conflict("incident_closed")),
            _ => return Err(CoreError::Conflict("incident_state_invalid")),
        }
        let affected = u64::try_from(inc.affected).unwrap_or(0);
        let only_announce = self.policy().incident().announce_only(affected);
        let mut out = NotifyOutcome {
            affected,
            announcement_only: only_announce,
            ..NotifyOutcome::default()
        };
        if !only_announce {
            let mut after = String::new();
            loop {
                let now = self.now().unix_timestamp();
                let page = self
                    .store
                    .incident_targets(&inc.id, &after, NOTIFY_PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = last.0.clone();
                let msgs: Vec<Enqueue> = page
                    .iter()
                    .map(|(s, lang)| {
                        Enqueue::to_subject(kind::INCIDENT, s, &inc.id, lang.as_deref())
                    })
                    .collect();
                let mut tx = self.store.begin(now).await?;
                let added = tx
                    .enqueue(
                        &msgs
                            .iter()
                            .map(|m| self.outbox_row(m, now))
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                    .await?;
                out.enqueued += added;
                if added > 0 {
                    tx.audit(self.incident_audit(
                        p,
                        "incident.notify_batch",
                        &inc,
                        now,
                        Some(format!("enqueued={added}")),
                    ));
                }
                tx.commit().await?;
            }
        }
        let now = self.now().unix_timestamp();
        let mut tx = self.store.begin(now).await?;
        if only_announce {
            self.publish_incident_announcement(&mut tx, &inc, now)
                .await?;
        }
        if inc.state == "scoped" {
            inc.state = "notified".into();
        }
        inc.updated_at = now;
        if only_announce || out.enqueued > 0 {
            push_timeline(
                &mut inc,
                now,
                if only_announce {
                    format!(
                    "announcement published ({affected} subjects: individual notice impracticable)"
                )
                } else {
                    format!("{} notices queued", out.enqueued)
                },
            );
        }
        tx.put_incident(&inc).await?;
        tx.audit(self.incident_audit(
            p,
            "incident.notify",
            &inc,
            now,
            Some(format!(
                "affected={affected} enqueued={} announcement_only={only_announce}",
                out.enqueued
            )),
        ));
        tx.commit().await?;
        out.announced = self
            .store
            .announcements()
            .await?
            .iter()
            .any(|a| a.cause == inc.id);
        Ok(out)
    }

    /// Publishes the incident's announcement (once) in `tx`.
    pub(crate) async fn publish_incident_announcement(
        &self,
        tx: &mut WriteTx,
        inc: &IncidentRow,
        now: i64,
    ) -> Result<(), CoreError> {
        let contact = self.policy().incident().contact.clone();
        let n = notice_of(inc, &contact);
        let policy = self.policy();
        let affected = u64::try_from(inc.affected).unwrap_or(0);
        let zh = notice::incident_announcement(Lang::ZhCn, &n, affected, &|k| {
            policy.category_name(k, true)
        });
        let en = notice::incident_announcement(Lang::En, &n, affected, &|k| {
            policy.category_name(k, false)
        });
        let added = tx
            .publish_announcement(&AnnouncementRow {
                id: format!("ann-{}", uuid::Uuid::new_v4().simple()),
                kind: "incident".into(),
                cause: inc.id.clone(),
                published_at: now,
                title_zh: zh.subject,
                body_zh: zh.body,
                title_en: en.subject,
                body_en: en.body,
            })
            .await?;
        if added {
            let mut rec = self
                .auditor
                .base("outbox", "announcement.publish", now, None);
            rec.categories = inc.categories.clone();
            rec.detail = Some(format!("incident={}", inc.id));
            tx.audit(rec);
        }
        Ok(())
    }

    /// The regulator report (policy §8.4). With `mark`, records the first report time and a
    /// timeline entry (audited).
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; store failure.
    pub async fn report_incident(
        &self,
        p: &Principal,
        id: &str,
        mark: bool,
    ) -> Result<RegulatorReport, CoreError> {
        Self::require_security(p)?;
        let mut inc = self.incident_row(id).await?;
        let now = self.now().unix_timestamp();
        if mark && inc.state != "closed" {
            let first = inc.reported_at.is_none();
            if first {
                inc.reported_at = Some(now);
            }
            if matches!(inc.state.as_str(), "open" | "scoped" | "notified") {
                inc.state = "reported".into();
            }
            inc.updated_at = now;
            if first {
                push_timeline(&mut inc, now, "reported to the regulator".into());
            }
            let mut tx = self.store.begin(now).await?;
            tx.put_incident(&inc).await?;
            tx.audit(self.incident_audit(p, "incident.report", &inc, now, None));
            tx.commit().await?;
        }
        let view = self.incident_view(&inc).await?;
        let severity = Severity::parse_name(&inc.severity).unwrap_or(Severity::General);
        let deadlines = deadline_status(
            self.policy().incident(),
            severity,
            inc.discovered_at,
            inc.reported_at,
            now,
        );
        if deadlines.iter().any(|d| d.overdue) {
            tracing::warn!(incident = %inc.id, "incident report is overdue");
        }
        Ok(RegulatorReport {
            incident_id: inc.id.clone(),
            title: inc
                .what_happened
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect(),
            what_happened: inc.what_happened.clone(),
            severity,
            occurred_at: inc.occurred_at,
            discovered_at: inc.discovered_at,
            reported_at: inc.reported_at,
            categories: view.categories,
            systems: view.systems,
            cause: inc.cause.clone(),
            measures_taken: inc.measures_taken.clone(),
            measures_planned: inc.measures_planned.clone(),
            affected_total: u64::try_from(inc.affected).unwrap_or(0),
            affected_by_category: view.by_category,
            affected_by_region: view.by_region,
            notices: view.notices,
            timeline: view.timeline,
            deadlines,
        })
    }

    /// Closes an incident (audited). Notices already queued are still delivered.
    ///
    /// # Errors
    /// `Forbidden`; `NotFound`; `Conflict` (`incident_closed`); store failure.
    pub async fn close_incident(&self, p: &Principal, id: &str) -> Result<IncidentView, CoreError> {
        Self::require_security(p)?;
        let mut inc = self.incident_row(id).await?;
        if inc.state == "closed" {
            return Err(CoreError::Conflict("incident_closed"));
        }
        let now = self.now().unix_timestamp();
        inc.state = "closed".into();
        inc.closed_at = Some(now);
        inc.updated_at = now;
        push_timeline(&mut inc, now, format!("closed by {}", p.name));
        let mut tx = self.store.begin(now).await?;
        tx.put_incident(&inc).await?;
        tx.audit(self.incident_audit(p, "incident.close", &inc, now, None));
        tx.commit().await?;
        self.incident_view(&inc).await
    }

    /// Every published announcement (public: no key needed; no per-person data).
    ///
    /// # Errors
    /// Store failure.
    pub async fn announcements(&self) -> Result<Vec<Announcement>, CoreError> {
        Ok(self
            .store
            .announcements()
            .await?
            .into_iter()
            .map(|a| Announcement {
                id: a.id,
                kind: a.kind,
                reference: a.cause,
                published_at: a.published_at,
                zh_cn: AnnouncementText {
                    title: a.title_zh,
                    body: a.body_zh,
                },
                en: AnnouncementText {
                    title: a.title_en,
                    body: a.body_en,
                },
            })
            .collect())
    }

    /// Overdue regulator reports: incidents not closed, not reported, past a deadline.
    ///
    /// # Errors
    /// Store failure.
    pub async fn overdue_reports(&self) -> Result<Vec<String>, CoreError> {
        let now = self.now().unix_timestamp();
        let mut out = Vec::new();
        for inc in self.store.incidents().await? {
            if inc.state == "closed" || inc.reported_at.is_some() {
                continue;
            }
            let severity = Severity::parse_name(&inc.severity).unwrap_or(Severity::General);
            let overdue = deadline_status(
                self.policy().incident(),
                severity,
                inc.discovered_at,
                None,
                now,
            )
            .iter()
            .any(|d| d.overdue);
            if overdue {
                out.push(inc.id);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::holds_pi;

    #[test]
    fn identifiers_run_into_chinese_text_or_grouped_are_found() {
        for text in [
            "leak of 18765195768 by mchang@example.net",
            "陈鹏的身份证130501196509157909泄露",
            "phone 187 6519 5768 leaked",
            "手机187-6519-5768外泄",
            "电话+86 187 6519 5768",
            "联系mchang@example.net处理",
            "0086 187 6519 5768",
            "10:00 187 6519 5768",
            "phone 187 6519 5768 3 times",
            "身份证13050119650915795X 1 份",
            "手机１８７６５１９５７６８泄露",
        ] {
            assert!(holds_pi(text), "{text}");
        }
    }

    #[test]
    fn dates_counts_and_ticket_numbers_are_not_pi() {
        for text in [
            "2026-12-01 10:00 起，3 台数据库服务器被未授权访问，影响 12,345 名用户。",
            "Ticket 2026-120, version 1.2.3, 4,000 records",
            "事件编号 INC-2026-0042，已于 12 月 2 日修复",
            "主机 192.168.10.100 与 172.16.100.200 被入侵",
            "版本 10.2.1 1000000 条日志",
        ] {
            assert!(!holds_pi(text), "{text}");
        }
    }
}
