//! The consent ledger model and its fold into the current consent state.
//!
//! Invariants (PIPL Art. 14–16; policy §7.2):
//! - The ledger is append-only: a withdrawal is a new event, never an edit of the grant, so
//!   earlier decisions stay explainable ("withdrawal does not affect processing before it").
//! - The state for a purpose is the one set by its latest event by event time; events with the
//!   same time are ordered by ledger sequence. Folding is order-independent.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identifiers::InvalidValue;

/// Grant or withdraw. Wire and storage name: [`as_str`](Self::as_str), also
/// the serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentAction {
    /// Consent given (PIPL Art. 14).
    Grant,
    /// Consent withdrawn (PIPL Art. 15).
    Withdraw,
}

impl ConsentAction {
    /// Both actions.
    pub const ALL: [ConsentAction; 2] = [ConsentAction::Grant, ConsentAction::Withdraw];
    /// Wire name: `grant` | `withdraw`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Withdraw => "withdraw",
        }
    }
    /// Parses the wire name; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "grant" => Some(Self::Grant),
            "withdraw" => Some(Self::Withdraw),
            _ => None,
        }
    }
}

/// Who gave the consent: the PI subject, or the guardian of a minor (PIPL Art. 31).
/// Wire and storage name: [`as_str`](Self::as_str), also the serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GivenBy {
    /// The PI subject themself (`self` on the wire).
    #[serde(rename = "self")]
    Subject,
    /// A parent or guardian (`guardian`).
    Guardian,
}

impl GivenBy {
    /// Both givers.
    pub const ALL: [GivenBy; 2] = [GivenBy::Subject, GivenBy::Guardian];
    /// Wire name: `self` | `guardian`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subject => "self",
            Self::Guardian => "guardian",
        }
    }
    /// Parses the wire name; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "self" => Some(Self::Subject),
            "guardian" => Some(Self::Guardian),
            _ => None,
        }
    }
}

impl fmt::Display for ConsentAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for GivenBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a consent was collected, recorded with it so the handler can prove the
/// consent was given, and given explicitly and on full information (PIPL
/// Art. 14 para. 1; GB/T 35273-2020 §5.4 on obtaining authorised consent and
/// §10.1 on keeping records of it). Wire and storage name:
/// [`as_str`](Self::as_str), also the serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// `web`: on a web page, e.g. the service website the policy covers.
    Web,
    /// `app`: in a client application.
    App,
    /// `api`: submitted by an application service through the API.
    Api,
    /// `import`: imported in bulk from records kept elsewhere.
    Import,
    /// `paper`: a signed paper form.
    Paper,
    /// `phone`: by telephone.
    Phone,
    /// `email`: by email.
    Email,
    /// `dsr`: recorded by a data subject request, e.g. the withdrawal a
    /// withdrawal or account cancellation request makes (PIPL Art. 15;
    /// policy §7.2).
    Dsr,
}

impl ConsentMethod {
    /// Every method, in the order of pivault-core's `CONSENT_METHODS`.
    pub const ALL: [ConsentMethod; 8] = [
        ConsentMethod::Web,
        ConsentMethod::App,
        ConsentMethod::Api,
        ConsentMethod::Import,
        ConsentMethod::Paper,
        ConsentMethod::Phone,
        ConsentMethod::Email,
        ConsentMethod::Dsr,
    ];

    /// `web`, `app`, `api`, `import`, `paper`, `phone`, `email` or `dsr`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::App => "app",
            Self::Api => "api",
            Self::Import => "import",
            Self::Paper => "paper",
            Self::Phone => "phone",
            Self::Email => "email",
            Self::Dsr => "dsr",
        }
    }

    /// The method spelled as [`as_str`](Self::as_str) does; `None` otherwise.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for ConsentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConsentMethod {
    type Err = InvalidValue;

    /// The method spelled as [`as_str`](Self::as_str) does.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `unknown_method` (the code pivault-core
    /// already answers with) for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(InvalidValue {
            code: "unknown_method",
            reason: "not a consent collection method",
        })
    }
}

/// One ledger row, as the decision needs it (ids and times; no PI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvent {
    /// Ledger sequence number: a tie-breaker for events with the same `at`.
    pub seq: i64,
    /// Purpose id from the policy.
    pub purpose: String,
    /// Grant or withdraw.
    pub action: ConsentAction,
    /// When the subject acted (UTC, seconds).
    pub at: OffsetDateTime,
    /// Who acted.
    pub given_by: GivenBy,
    /// Whether this consent was collected as a separate consent (PIPL Art. 29/23/25/39).
    pub separate: bool,
    /// Policy version shown to the subject when they acted.
    pub policy_version: String,
    /// The recipient this consent names, if any: sharing with another handler (PIPL Art. 23)
    /// and cross-border transfer (Art. 39) need a consent that names the recipient.
    pub recipient: Option<String>,
}

/// The consent in force for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveConsent {
    /// Who gave it.
    pub given_by: GivenBy,
    /// Whether it is a separate consent.
    pub separate: bool,
    /// When it was given.
    pub at: OffsetDateTime,
    /// Policy version it was given under.
    pub policy_version: String,
}

#[derive(Debug, Clone)]
struct Latest {
    at: OffsetDateTime,
    seq: i64,
    action: ConsentAction,
    consent: ActiveConsent,
}

#[derive(Debug, Clone, Default)]
struct PurposeState {
    general: Option<Latest>,
    by_recipient: HashMap<String, Option<Latest>>,
}

/// The current consent state of one subject: per purpose (and per named recipient), the
/// effect of its latest event.
#[derive(Debug, Clone, Default)]
pub struct ConsentState {
    latest: HashMap<String, PurposeState>,
}

impl ConsentState {
    /// Folds ledger events (in any order) into the state as of `now`; events after `now` are
    /// ignored, so a decision at time t sees exactly the ledger as it stood at t.
    #[must_use]
    pub fn fold<'a>(
        events: impl IntoIterator<Item = &'a ConsentEvent>,
        now: OffsetDateTime,
    ) -> Self {
        let mut s = Self::default();
        for e in events {
            if e.at <= now {
                s.apply(e);
            }
        }
        s
    }

    /// Applies one event; keeps it only if it is later (by time, then sequence) than what is held
    /// for the same purpose and recipient.
    pub fn apply(&mut self, e: &ConsentEvent) {
        let ps = self.latest.entry(e.purpose.clone()).or_default();
        let slot = match &e.recipient {
            None => &mut ps.general,
            Some(r) => ps.by_recipient.entry(r.clone()).or_default(),
        };
        if slot.as_ref().is_none_or(|l| (e.at, e.seq) > (l.at, l.seq)) {
            *slot = Some(Latest::from(e));
        }
    }

    /// The general consent in force for `purpose` (one that names no recipient), if its latest
    /// event is a grant.
    #[must_use]
    pub fn active(&self, purpose: &str) -> Option<&ActiveConsent> {
        self.latest
            .get(purpose)
            .and_then(|p| p.general.as_ref())
            .filter(|l| l.action == ConsentAction::Grant)
            .map(|l| &l.consent)
    }

    /// The consent in force for `purpose` that names `recipient`, if its latest event is a grant.
    #[must_use]
    pub fn active_for(&self, purpose: &str, recipient: &str) -> Option<&ActiveConsent> {
        self.latest
            .get(purpose)
            .and_then(|p| p.by_recipient.get(recipient))
            .and_then(Option::as_ref)
            .filter(|l| l.action == ConsentAction::Grant)
            .map(|l| &l.consent)
    }

    /// True when the latest general event for `purpose` is a withdrawal.
    #[must_use]
    pub fn withdrawn(&self, purpose: &str) -> bool {
        self.latest
            .get(purpose)
            .and_then(|p| p.general.as_ref())
            .is_some_and(|l| l.action == ConsentAction::Withdraw)
    }

    /// True when the latest event for `purpose` naming `recipient` is a withdrawal.
    #[must_use]
    pub fn withdrawn_for(&self, purpose: &str, recipient: &str) -> bool {
        self.latest
            .get(purpose)
            .and_then(|p| p.by_recipient.get(recipient))
            .and_then(Option::as_ref)
            .is_some_and(|l| l.action == ConsentAction::Withdraw)
    }

    /// Purposes with a general consent in force, sorted.
    #[must_use]
    pub fn active_purposes(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .latest
            .iter()
            .filter(|(_, p)| {
                p.general
                    .as_ref()
                    .is_some_and(|l| l.action == ConsentAction::Grant)
            })
            .map(|(k, _)| k.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// (purpose, recipient) pairs with a recipient-specific consent in force, sorted.
    #[must_use]
    pub fn active_recipient_consents(&self) -> Vec<(&str, &str, &ActiveConsent)> {
        let mut v: Vec<(&str, &str, &ActiveConsent)> = self
            .latest
            .iter()
            .flat_map(|(p, ps)| {
                ps.by_recipient
                    .iter()
                    .filter_map(|(r, l)| l.as_ref().map(|l| (r, l)))
                    .filter(|(_, l)| l.action == ConsentAction::Grant)
                    .map(move |(r, l)| (p.as_str(), r.as_str(), &l.consent))
            })
            .collect();
        v.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        v
    }
}

impl From<&ConsentEvent> for Latest {
    fn from(e: &ConsentEvent) -> Self {
        Self {
            at: e.at,
            seq: e.seq,
            action: e.action,
            consent: ActiveConsent {
                given_by: e.given_by,
                separate: e.separate,
                at: e.at,
                policy_version: e.policy_version.clone(),
            },
        }
    }
}

/// Earliest plausible consent time: 1990-01-01T00:00:00Z (unix seconds). No consent to online
/// processing predates it (the web opened in 1991); a time before it is a data error, such as a
/// zero date (`0001-01-01T00:00:00Z`).
pub const MIN_CONSENT_TIME: i64 = 631_152_000;

/// How far a consent time may run ahead of the clock, in seconds (client clock skew).
pub const MAX_CONSENT_CLOCK_SKEW_SECS: i64 = 300;

/// Checks that a consent event is plausible before it enters the ledger (PIPL Art. 14: a
/// consent is a real act of an informed person; Art. 31: a guardian consents for a minor).
///
/// - `at` (unix seconds) is not before [`MIN_CONSENT_TIME`], not before the subject's
///   `birth` date when known, and not more than [`MAX_CONSENT_CLOCK_SKEW_SECS`] after `now`;
/// - a consent `given_by` a guardian is for a subject under `minor_age` **at `at`** (a
///   guardian's consent given while the subject was a child stays valid later). With no birth
///   date known the age cannot be checked and the consent is taken.
///
/// # Errors
/// [`InvalidValue`] with code `consent_time_implausible`, `consent_time_in_future` or
/// `guardian_for_adult`; never echoing the time or the date.
///
/// ```
/// use pivault_domain::consent::{check_plausible, GivenBy};
/// let born = time::macros::date!(1990 - 06 - 01);
/// let now = 1_700_000_000;
/// assert!(check_plausible(now - 60, now, Some(born), GivenBy::Subject, 14).is_ok());
/// assert_eq!(check_plausible(-62_135_596_800, now, None, GivenBy::Subject, 14).unwrap_err().code,
///            "consent_time_implausible");
/// assert_eq!(check_plausible(now, now, Some(born), GivenBy::Guardian, 14).unwrap_err().code,
///            "guardian_for_adult");
/// ```
pub fn check_plausible(
    at: i64,
    now: i64,
    birth: Option<time::Date>,
    given_by: GivenBy,
    minor_age: u8,
) -> Result<(), InvalidValue> {
    let implausible = || InvalidValue {
        code: "consent_time_implausible",
        reason: "the consent time is before 1990-01-01 or before the subject was born",
    };
    if at < MIN_CONSENT_TIME {
        return Err(implausible());
    }
    if at > now.saturating_add(MAX_CONSENT_CLOCK_SKEW_SECS) {
        return Err(InvalidValue {
            code: "consent_time_in_future",
            reason: "a consent cannot be recorded ahead of time",
        });
    }
    let Some(birth) = birth else {
        return Ok(());
    };
    let day = OffsetDateTime::from_unix_timestamp(at)
        .map_err(|_| implausible())?
        .date();
    if day < birth {
        return Err(implausible());
    }
    if given_by == GivenBy::Guardian && crate::decision::age_on(birth, day) >= i32::from(minor_age)
    {
        return Err(InvalidValue {
            code: "guardian_for_adult",
            reason: "a guardian consents only for a subject under 14 at the time (PIPL Art. 31)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn implausible_consents_are_refused() {
        use super::{check_plausible, GivenBy, MIN_CONSENT_TIME};
        let now = 1_700_000_000; // 2023-11-14
        let born = time::macros::date!(2012 - 03 - 10);
        let ok = |at, g| check_plausible(at, now, Some(born), g, 14);
        // Issue 11 defect 8: the year 1, a time far ahead, a guardian for an adult.
        assert_eq!(
            check_plausible(-62_135_596_800, now, None, GivenBy::Subject, 14)
                .unwrap_err()
                .code,
            "consent_time_implausible"
        );
        assert_eq!(
            check_plausible(MIN_CONSENT_TIME - 1, now, None, GivenBy::Subject, 14)
                .unwrap_err()
                .code,
            "consent_time_implausible"
        );
        assert_eq!(
            ok(now + 301, GivenBy::Subject).unwrap_err().code,
            "consent_time_in_future"
        );
        assert!(ok(now + 300, GivenBy::Subject).is_ok(), "within clock skew");
        // Born 2012-03-10: before that day is implausible; 11 years old, a guardian may act.
        assert_eq!(
            ok(1_331_337_600 - 86_400, GivenBy::Subject)
                .unwrap_err()
                .code,
            "consent_time_implausible"
        );
        assert!(ok(now, GivenBy::Guardian).is_ok());
        // 14 on 2026-03-10: a guardian's consent after that is for an adult (Art. 31).
        let later = 1_773_100_800 + 86_400; // 2026-03-11
        assert_eq!(
            check_plausible(later, later, Some(born), GivenBy::Guardian, 14)
                .unwrap_err()
                .code,
            "guardian_for_adult"
        );
        assert!(check_plausible(later, later, Some(born), GivenBy::Subject, 14).is_ok());
        assert!(check_plausible(now, now, None, GivenBy::Guardian, 14).is_ok());
    }

    use super::*;
    use time::macros::datetime;

    fn ev(seq: i64, purpose: &str, action: ConsentAction, at: OffsetDateTime) -> ConsentEvent {
        ConsentEvent {
            seq,
            purpose: purpose.into(),
            action,
            at,
            given_by: GivenBy::Subject,
            separate: false,
            policy_version: "2024-12-04".into(),
            recipient: None,
        }
    }

    #[test]
    fn latest_event_by_time_wins_regardless_of_arrival_order() {
        let g = ev(
            2,
            "marketing",
            ConsentAction::Grant,
            datetime!(2025-01-01 0:00 UTC),
        );
        let w = ev(
            1,
            "marketing",
            ConsentAction::Withdraw,
            datetime!(2025-06-01 0:00 UTC),
        );
        let now = datetime!(2026-01-01 0:00 UTC);
        for order in [[&g, &w], [&w, &g]] {
            let s = ConsentState::fold(order, now);
            assert!(s.active("marketing").is_none());
            assert!(s.withdrawn("marketing"));
        }
    }

    #[test]
    fn events_after_the_decision_time_are_not_seen() {
        let g = ev(
            1,
            "marketing",
            ConsentAction::Grant,
            datetime!(2025-01-01 0:00 UTC),
        );
        let w = ev(
            2,
            "marketing",
            ConsentAction::Withdraw,
            datetime!(2025-06-01 0:00 UTC),
        );
        let s = ConsentState::fold([&g, &w], datetime!(2025-03-01 0:00 UTC));
        assert!(s.active("marketing").is_some());
    }

    #[test]
    fn a_recipient_consent_is_separate_from_the_general_one() {
        let t = datetime!(2025-01-01 0:00 UTC);
        let mut g = ev(1, "share_with_partners", ConsentAction::Grant, t);
        let s = ConsentState::fold([&g], t);
        assert!(s
            .active_for("share_with_partners", "cloud-partner")
            .is_none());
        g.recipient = Some("cloud-partner".into());
        let mut w = ev(
            2,
            "share_with_partners",
            ConsentAction::Withdraw,
            datetime!(2025-02-01 0:00 UTC),
        );
        w.recipient = Some("other".into());
        let s = ConsentState::fold([&g, &w], datetime!(2025-03-01 0:00 UTC));
        assert!(s
            .active_for("share_with_partners", "cloud-partner")
            .is_some());
        assert!(s.withdrawn_for("share_with_partners", "other"));
        assert!(s.active("share_with_partners").is_none());
    }

    #[test]
    fn same_time_events_are_ordered_by_sequence() {
        let t = datetime!(2025-01-01 0:00 UTC);
        let g = ev(5, "ads", ConsentAction::Grant, t);
        let w = ev(4, "ads", ConsentAction::Withdraw, t);
        let s = ConsentState::fold([&g, &w], t);
        assert!(s.active("ads").is_some());
        assert_eq!(s.active_purposes(), vec!["ads"]);
    }

    /// pivault-core's `CONSENT_METHODS`, copied: the wire forms must not drift.
    const CORE_CONSENT_METHODS: [&str; 8] = [
        "web", "app", "api", "import", "paper", "phone", "email", "dsr",
    ];

    #[test]
    fn consent_method_wire_names_match_core_in_order() {
        let names: Vec<&str> = ConsentMethod::ALL.iter().map(|m| m.as_str()).collect();
        assert_eq!(names, CORE_CONSENT_METHODS);
    }

    #[test]
    fn consent_methods_round_trip_through_parse_from_str_display_and_serde() {
        use crate::testutil::{from_serde_name, serde_name};
        for m in ConsentMethod::ALL {
            assert_eq!(ConsentMethod::parse(m.as_str()), Some(m));
            assert_eq!(m.as_str().parse::<ConsentMethod>(), Ok(m));
            assert_eq!(m.to_string(), m.as_str());
            assert_eq!(serde_name(m), m.as_str());
            assert_eq!(from_serde_name::<ConsentMethod>(m.as_str()), Some(m));
        }
        for s in ["", "Web", "sms", "web ", "DSR"] {
            assert_eq!(ConsentMethod::parse(s), None, "{s:?}");
            assert_eq!(
                s.parse::<ConsentMethod>().unwrap_err().code,
                "unknown_method"
            );
            assert_eq!(from_serde_name::<ConsentMethod>(s), None, "{s:?}");
        }
    }

    #[test]
    fn consent_actions_and_givers_round_trip_through_display_and_serde() {
        use crate::testutil::{from_serde_name, serde_name};
        let actions: Vec<&str> = ConsentAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(actions, ["grant", "withdraw"]);
        for a in ConsentAction::ALL {
            assert_eq!(ConsentAction::parse(a.as_str()), Some(a));
            assert_eq!(a.to_string(), a.as_str());
            assert_eq!(serde_name(a), a.as_str());
            assert_eq!(from_serde_name::<ConsentAction>(a.as_str()), Some(a));
        }
        let givers: Vec<&str> = GivenBy::ALL.iter().map(|g| g.as_str()).collect();
        assert_eq!(givers, ["self", "guardian"]);
        for g in GivenBy::ALL {
            assert_eq!(GivenBy::parse(g.as_str()), Some(g));
            assert_eq!(g.to_string(), g.as_str());
            assert_eq!(serde_name(g), g.as_str());
            assert_eq!(from_serde_name::<GivenBy>(g.as_str()), Some(g));
        }
        assert_eq!(from_serde_name::<GivenBy>("subject"), None);
    }
}
