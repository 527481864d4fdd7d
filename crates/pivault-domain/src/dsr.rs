//! Data subject requests (DSR): the kinds of request a PI subject may make
//! (PIPL Art. 44–50), the life cycle of one request, and when it is due.
//!
//! Everything here is pure: the caller supplies the instant of receipt and the
//! [`Jurisdiction`] (from the policy file, see
//! [`Policy::jurisdictions`](crate::policy::Policy::jurisdictions)); nothing
//! reads a clock or a calendar service.
//!
//! Invariants:
//! - [`can_transition`] is the only rule for moving a request between
//!   [`DsrState`]s; nothing leaves a terminal state ([`DsrState::is_terminal`]);
//! - [`Jurisdiction::due`] never panics, is never before the receipt, and never
//!   moves earlier when the receipt moves later; instants are UTC with second
//!   precision, and a deadline always ends at the end of a local day.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

use crate::identifiers::InvalidValue;

// ---------------------------------------------------------------------------
// Kinds

/// What a PI subject asks for. The rights are those of PIPL Chapter IV
/// (Art. 44–50); the handler must offer a channel for them and answer in time
/// (Art. 50; policy §XI: "within 10 days").
///
/// Wire and storage name: [`as_str`](Self::as_str), also the serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrKind {
    /// See what PI we hold and how it is processed (PIPL Art. 45 para. 1).
    Access,
    /// Receive a copy of the PI, or have it transferred to another handler
    /// (PIPL Art. 45 para. 1 for the copy, para. 3 for portability).
    Copy,
    /// Correct or complete inaccurate or incomplete PI (PIPL Art. 46).
    Correction,
    /// Delete PI (PIPL Art. 47; policy §7.1 lists the grounds).
    Deletion,
    /// Withdraw consent; earlier processing stays lawful (PIPL Art. 15;
    /// policy §7.2).
    Withdrawal,
    /// Cancel (close) the account, which ends the service and so triggers
    /// deletion (PIPL Art. 47 para. 1(2)).
    Cancellation,
    /// Have the processing rules explained (PIPL Art. 48).
    Explanation,
    /// Report suspected misuse of the account (policy §8.7: "if you find that your personal
    /// information has been leaked or used abnormally, contact us and we will take security
    /// measures"; PIPL Art. 51(4) security measures). Once the identity is verified, the
    /// subject's PI is locked at once (no approval: it is a security measure) and a security
    /// case is opened. Wire name `misuse_report`.
    MisuseReport,
    /// A question or complaint about the processing of one's PI (policy §XI: "we will reply to
    /// your request within 10 days"; PIPL Art. 50: the handler establishes a convenient
    /// mechanism to accept and handle applications). Queued with the same deadline as any
    /// request; the text is sealed under the subject's key. Wire name `inquiry`.
    Inquiry,
    /// Sign-in to the privacy center: identity verification by one-time code, the same path as
    /// any request (policy §7.2), completed on verification with no step; the page opens a
    /// session on it. Not a right of its own, so not in the office's queue. Wire name
    /// `sign_in`.
    SignIn,
}

impl DsrKind {
    /// Every kind, in the order of PIPL Chapter IV.
    pub const ALL: [DsrKind; 10] = [
        DsrKind::Access,
        DsrKind::Copy,
        DsrKind::Correction,
        DsrKind::Deletion,
        DsrKind::Withdrawal,
        DsrKind::Cancellation,
        DsrKind::Explanation,
        DsrKind::MisuseReport,
        DsrKind::Inquiry,
        DsrKind::SignIn,
    ];

    /// `access`, `copy`, `correction`, `deletion`, `withdrawal`,
    /// `cancellation` or `explanation`.
    pub fn as_str(self) -> &'static str {
        match self {
            DsrKind::Access => "access",
            DsrKind::Copy => "copy",
            DsrKind::Correction => "correction",
            DsrKind::Deletion => "deletion",
            DsrKind::Withdrawal => "withdrawal",
            DsrKind::Cancellation => "cancellation",
            DsrKind::Explanation => "explanation",
            DsrKind::MisuseReport => "misuse_report",
            DsrKind::Inquiry => "inquiry",
            DsrKind::SignIn => "sign_in",
        }
    }

    /// The PIPL article granting the right, e.g. `"PIPL Art. 47"` for deletion.
    pub fn article(&self) -> &'static str {
        match self {
            DsrKind::Access => "PIPL Art. 45",
            DsrKind::Copy => "PIPL Art. 45 paras. 1 and 3",
            DsrKind::Correction => "PIPL Art. 46",
            DsrKind::Deletion | DsrKind::Cancellation => "PIPL Art. 47",
            DsrKind::Withdrawal => "PIPL Art. 15",
            DsrKind::Explanation => "PIPL Art. 48",
            DsrKind::MisuseReport => "PIPL Art. 51",
            DsrKind::Inquiry | DsrKind::SignIn => "PIPL Art. 50",
        }
    }

    /// The clause of the privacy policy (2024-12-04) that covers the request:
    /// `§7.1` (deletion), `§7.2` (withdrawal). The policy has no clause of its
    /// own for access, copy, correction, account cancellation or explanation
    /// (§VII ends at §7.2), so those name `§XI`, the contact channel with its
    /// 10-day answer.
    pub fn policy_section(&self) -> &'static str {
        match self {
            DsrKind::Deletion => "§7.1",
            DsrKind::Withdrawal => "§7.2",
            DsrKind::MisuseReport => "§8.7",
            DsrKind::Access
            | DsrKind::Copy
            | DsrKind::Correction
            | DsrKind::Cancellation
            | DsrKind::Explanation
            | DsrKind::Inquiry
            | DsrKind::SignIn => "§XI",
        }
    }
}

impl fmt::Display for DsrKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DsrKind {
    type Err = InvalidValue;

    /// The kind spelled as [`as_str`](Self::as_str) does.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `dsr_kind_unknown` for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(InvalidValue {
                code: "dsr_kind_unknown",
                reason: "not a DSR kind",
            })
    }
}

// ---------------------------------------------------------------------------
// Steps

/// One step of carrying out a request. Each kind runs its steps in the order
/// [`steps`](DsrStep::steps) gives; each step commits its change, its progress
/// and its audit entry together, so a request resumes at its first step not
/// done, and a failed step (`failed(step)`) stops every later one.
///
/// Wire and storage name: [`as_str`](Self::as_str), also the serde form (the
/// `steps_done` of a request and the audit action `step.<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrStep {
    /// `package`: assemble what we hold on the subject and how it is processed,
    /// for access or as a copy (PIPL Art. 45 paras. 1 and 3).
    Package,
    /// `explain`: explain the processing rules (PIPL Art. 48).
    Explain,
    /// `correct`: apply the corrections asked for (PIPL Art. 46).
    Correct,
    /// `withdraw`: record the withdrawal of consents; processing before it
    /// stays lawful (PIPL Art. 15; policy §7.2).
    Withdraw,
    /// `restrict_retained`: categories still under a legal retention period are
    /// kept, restricted to storage and protection, until it ends (PIPL Art. 47
    /// para. 2; policy §4.2).
    RestrictRetained,
    /// `shred`: delete everything else by destroying the subject's key (PIPL
    /// Art. 47 para. 1; policy §7.1).
    Shred,
    /// `notify_recipients`: tell the parties the PI was provided to that it is
    /// deleted (GB/T 35273-2020 §8.3 b)–c); PIPL Art. 21, 23).
    NotifyRecipients,
    /// `receipt`: answer the subject with what was done (PIPL Art. 50; policy
    /// §XI, within the deadline).
    Receipt,
    /// `lock`: lock the subject's PI against every principal but the security role, open a
    /// security case with the recent access history, acknowledge to the subject (policy
    /// §8.7).
    Lock,
}

impl DsrStep {
    /// Every step, in the order a request may meet them.
    pub const ALL: [DsrStep; 9] = [
        DsrStep::Package,
        DsrStep::Explain,
        DsrStep::Correct,
        DsrStep::Withdraw,
        DsrStep::RestrictRetained,
        DsrStep::Shred,
        DsrStep::NotifyRecipients,
        DsrStep::Receipt,
        DsrStep::Lock,
    ];

    /// `package`, `explain`, `correct`, `withdraw`, `restrict_retained`,
    /// `shred`, `notify_recipients` or `receipt`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            DsrStep::Package => "package",
            DsrStep::Explain => "explain",
            DsrStep::Correct => "correct",
            DsrStep::Withdraw => "withdraw",
            DsrStep::RestrictRetained => "restrict_retained",
            DsrStep::Shred => "shred",
            DsrStep::NotifyRecipients => "notify_recipients",
            DsrStep::Receipt => "receipt",
            DsrStep::Lock => "lock",
        }
    }

    /// The step spelled as [`as_str`](Self::as_str) does; `None` otherwise.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The steps of a request of `kind`, in execution order: access and copy
    /// `package`; explanation `explain`; correction `correct`; withdrawal
    /// `withdraw`; deletion `restrict_retained`, `shred`, `notify_recipients`,
    /// `receipt`; cancellation `withdraw` and then deletion's steps (it ends
    /// the service, PIPL Art. 47 para. 1(2)).
    #[must_use]
    pub fn steps(kind: DsrKind) -> &'static [DsrStep] {
        use DsrStep::{
            Correct, Explain, Lock, NotifyRecipients, Package, Receipt, RestrictRetained, Shred,
            Withdraw,
        };
        match kind {
            DsrKind::Access | DsrKind::Copy => &[Package],
            DsrKind::Explanation => &[Explain],
            DsrKind::Correction => &[Correct],
            DsrKind::Withdrawal => &[Withdraw],
            DsrKind::Deletion => &[RestrictRetained, Shred, NotifyRecipients, Receipt],
            DsrKind::Cancellation => {
                &[Withdraw, RestrictRetained, Shred, NotifyRecipients, Receipt]
            }
            DsrKind::MisuseReport => &[Lock],
            // An inquiry is answered by the office (approve, then run, completes it); a
            // sign-in completes on verification.
            DsrKind::Inquiry | DsrKind::SignIn => &[],
        }
    }
}

impl fmt::Display for DsrStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DsrStep {
    type Err = InvalidValue;

    /// The step spelled as [`as_str`](Self::as_str) does.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `dsr_step_unknown` (the code pivault-core
    /// already answers with) for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(InvalidValue {
            code: "dsr_step_unknown",
            reason: "not a DSR step",
        })
    }
}

// ---------------------------------------------------------------------------
// States

/// Where a request is in its life cycle. Moves are allowed by
/// [`can_transition`] only.
///
/// Wire and storage name: [`as_str`](Self::as_str), also the serde form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DsrState {
    /// Recorded; the deadline runs from here.
    Received,
    /// Waiting for the requester to prove who they are (policy §7.2).
    IdentityUnverified,
    /// Identity proven; ready to be carried out.
    Verified,
    /// Being carried out.
    InProgress,
    /// Done and answered. Terminal.
    Completed,
    /// Refused, with a reason given to the requester (PIPL Art. 50 para. 1).
    /// Terminal.
    Rejected,
    /// Carrying out failed; it may be resumed or rejected.
    Failed,
    /// Never verified within `unverified_expiry_hours` (policy `[dsr]`): closed
    /// without being carried out, and never counted as overdue. Terminal.
    Expired,
}

impl DsrState {
    /// Every state, in life-cycle order.
    pub const ALL: [DsrState; 8] = [
        DsrState::Received,
        DsrState::IdentityUnverified,
        DsrState::Verified,
        DsrState::InProgress,
        DsrState::Completed,
        DsrState::Rejected,
        DsrState::Failed,
        DsrState::Expired,
    ];

    /// `received`, `identity_unverified`, `verified`, `in_progress`,
    /// `completed`, `rejected`, `failed` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            DsrState::Received => "received",
            DsrState::IdentityUnverified => "identity_unverified",
            DsrState::Verified => "verified",
            DsrState::InProgress => "in_progress",
            DsrState::Completed => "completed",
            DsrState::Rejected => "rejected",
            DsrState::Failed => "failed",
            DsrState::Expired => "expired",
        }
    }

    /// Whether nothing can follow: `completed`, `rejected` and `expired`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            DsrState::Completed | DsrState::Rejected | DsrState::Expired
        )
    }
}

impl fmt::Display for DsrState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DsrState {
    type Err = InvalidValue;

    /// The state spelled as [`as_str`](Self::as_str) does.
    ///
    /// # Errors
    /// [`InvalidValue`] with code `dsr_state_unknown` for any other text.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(InvalidValue {
                code: "dsr_state_unknown",
                reason: "not a DSR state",
            })
    }
}

/// Whether a request in state `from` may move to state `to`:
///
/// | from                  | to                                  |
/// |-----------------------|-------------------------------------|
/// | `received`            | `identity_unverified`, `rejected`   |
/// | `identity_unverified` | `verified`, `rejected`, `expired`   |
/// | `verified`            | `in_progress`, `rejected`           |
/// | `in_progress`         | `completed`, `failed`               |
/// | `failed`              | `in_progress` (resume), `rejected`  |
/// | `completed`           | —                                   |
/// | `rejected`            | —                                   |
/// | `expired`             | —                                   |
///
/// Identity is checked before anything is done (policy §7.2); a request can be
/// refused until work starts, and after a failure, but not while it runs.
///
/// ```
/// use pivault_domain::dsr::{can_transition, DsrState};
/// assert!(can_transition(DsrState::Failed, DsrState::InProgress));
/// assert!(!can_transition(DsrState::Completed, DsrState::InProgress));
/// ```
pub fn can_transition(from: DsrState, to: DsrState) -> bool {
    use DsrState::{
        Completed, Expired, Failed, IdentityUnverified, InProgress, Received, Rejected, Verified,
    };
    matches!(
        (from, to),
        (Received, IdentityUnverified | Rejected)
            | (IdentityUnverified, Expired)
            | (IdentityUnverified | Verified, Rejected)
            | (IdentityUnverified, Verified)
            | (Verified | Failed, InProgress)
            | (InProgress, Completed | Failed)
            | (Failed, Rejected)
    )
}

// ---------------------------------------------------------------------------
// Deadlines

/// A length of time in whole calendar units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Whole days, counted as [`DayKind`] says.
    Days(u32),
    /// Whole calendar months: the same day of the month, clamped to the
    /// month's last day (GDPR Art. 12(3) counts in months).
    Months(u32),
}

/// Which days count towards a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// Every day counts (policy §XI: "within 10 days").
    #[default]
    Calendar,
    /// Only working days count: Monday to Friday except holidays, plus the
    /// adjusted working days (调休, e.g. a Saturday worked before National Day).
    Working,
}

impl DayKind {
    /// Every kind.
    pub const ALL: [DayKind; 2] = [DayKind::Calendar, DayKind::Working];

    /// `calendar` or `working`.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Calendar => "calendar",
            DayKind::Working => "working",
        }
    }
}

/// The deadline rules of one legal order, as declared by a `[[jurisdiction]]`
/// of the policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Jurisdiction {
    /// Lower-case id, e.g. `cn`, `eu`.
    pub key: String,
    /// Time to answer, from receipt.
    pub deadline: Period,
    /// Further time the handler may take (GDPR Art. 12(3): two further
    /// months); `None` where the law allows none.
    pub extension: Option<Period>,
    /// Which days count for [`Period::Days`], and whether a month deadline on a
    /// day off moves to the next working day.
    pub day_kind: DayKind,
    /// Public holidays (local dates) that are not working days.
    pub holidays: BTreeSet<Date>,
    /// Local dates that are working days even if they fall on a weekend or are
    /// listed as holidays (China's adjusted working days, 调休).
    pub extra_workdays: BTreeSet<Date>,
    /// The offset whose local calendar counts (`+08:00` for China).
    pub utc_offset: UtcOffset,
    /// Where the deadline comes from, e.g. `§XI` or `GDPR Art. 12(3)`.
    pub clause: String,
}

impl Jurisdiction {
    /// The instant a request received at `received` must be answered by: the
    /// end (23:59:59 local) of the local day the [`deadline`](Self::deadline)
    /// lands on, in UTC.
    ///
    /// Counting starts from the local date of `received` in
    /// [`utc_offset`](Self::utc_offset): `Days(n)` on a calendar is that date
    /// plus `n` days; on working days, the `n`-th working day after it;
    /// `Months(n)` is the same day of the month `n` months later, clamped to
    /// the month's end, then moved to the next working day if `day_kind` is
    /// working. Dates beyond the calendar's range (year 9999) saturate.
    ///
    /// ```
    /// use std::collections::BTreeSet;
    /// use pivault_domain::dsr::{DayKind, Jurisdiction, Period};
    /// use time::macros::{datetime, offset};
    /// let cn = Jurisdiction {
    ///     key: "cn".into(),
    ///     deadline: Period::Days(10),
    ///     extension: None,
    ///     day_kind: DayKind::Calendar,
    ///     holidays: BTreeSet::new(),
    ///     extra_workdays: BTreeSet::new(),
    ///     utc_offset: offset!(+8),
    ///     clause: "§XI".into(),
    /// };
    /// // 2026-03-02 01:00 in Beijing; due at the end of 2026-03-12, Beijing time.
    /// assert_eq!(cn.due(datetime!(2026-03-01 17:00 UTC)), datetime!(2026-03-12 15:59:59 UTC));
    /// ```
    pub fn due(&self, received: OffsetDateTime) -> OffsetDateTime {
        let start = self.local_date(received);
        self.end_of_local_day(self.add(start, self.deadline))
    }

    /// The due instant when the handler takes the [`extension`](Self::extension)
    /// too, or `None` if there is none: the deadline plus the extension,
    /// counted from the receipt. Periods of the same unit are added up first
    /// (GDPR: one month plus two further months is three months from receipt,
    /// so 31 January gives 30 April, not 28 April); mixed units are applied one
    /// after the other.
    pub fn extended_due(&self, received: OffsetDateTime) -> Option<OffsetDateTime> {
        let extension = self.extension?;
        let start = self.local_date(received);
        let date = match (self.deadline, extension) {
            (Period::Days(a), Period::Days(b)) => {
                self.add(start, Period::Days(a.saturating_add(b)))
            }
            (Period::Months(a), Period::Months(b)) => {
                self.add(start, Period::Months(a.saturating_add(b)))
            }
            (first, then) => self.add(self.add(start, first), then),
        };
        Some(self.end_of_local_day(date))
    }

    /// Whether `date` (local) is a working day: Monday to Friday and not a
    /// holiday, or listed in [`extra_workdays`](Self::extra_workdays).
    pub fn is_working_day(&self, date: Date) -> bool {
        self.extra_workdays.contains(&date)
            || (!matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
                && !self.holidays.contains(&date))
    }

    fn local_date(&self, at: OffsetDateTime) -> Date {
        at.checked_to_offset(self.utc_offset).unwrap_or(at).date()
    }

    fn end_of_local_day(&self, date: Date) -> OffsetDateTime {
        let local =
            date.midnight().assume_offset(self.utc_offset) + (Duration::DAY - Duration::SECOND);
        local.checked_to_offset(UtcOffset::UTC).unwrap_or(local)
    }

    fn add(&self, from: Date, period: Period) -> Date {
        match (period, self.day_kind) {
            (Period::Days(n), DayKind::Calendar) => from
                .checked_add(Duration::days(i64::from(n)))
                .unwrap_or(Date::MAX),
            (Period::Days(n), DayKind::Working) => self.add_working_days(from, n),
            (Period::Months(n), kind) => {
                let date = add_months(from, n);
                match kind {
                    DayKind::Calendar => date,
                    DayKind::Working => self.next_working_day(date),
                }
            }
        }
    }

    fn add_working_days(&self, from: Date, n: u32) -> Date {
        let mut date = from;
        let mut left = n;
        while left > 0 {
            let Some(next) = date.next_day() else {
                return date;
            };
            date = next;
            if self.is_working_day(date) {
                left -= 1;
            }
        }
        date
    }

    /// `date` if it is a working day, else the first working day after it.
    fn next_working_day(&self, date: Date) -> Date {
        let mut date = date;
        while !self.is_working_day(date) {
            match date.next_day() {
                Some(next) => date = next,
                None => break,
            }
        }
        date
    }
}

/// The same day of the month `n` months after `from`, clamped to that month's
/// last day (31 January + 1 month = 28 or 29 February).
fn add_months(from: Date, n: u32) -> Date {
    let index = i64::from(from.year()) * 12 + i64::from(u8::from(from.month())) - 1 + i64::from(n);
    let Ok(year) = i32::try_from(index.div_euclid(12)) else {
        return Date::MAX;
    };
    let Ok(month) = u8::try_from(index.rem_euclid(12) + 1).map(Month::try_from) else {
        return Date::MAX;
    };
    let Ok(month) = month else {
        return Date::MAX;
    };
    let day = from.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(Date::MAX)
}

// ---------------------------------------------------------------------------
// Settings

/// How the vault handles requests, from the policy file's `[dsr]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DsrSettings {
    /// Key of the [`Jurisdiction`] used when a request names none (`cn`).
    pub default_jurisdiction: String,
    /// A request of the same kind by the same subject within this many whole
    /// days of an open one is a duplicate of it (default 30).
    pub duplicate_window_days: u32,
    /// A request is near due when at most this many whole days are left
    /// (default 2), so staff are warned before the deadline passes.
    pub near_due_days: u32,
    /// Lifetime of an identity-verification code in seconds, 60..=3600
    /// (default 600).
    pub code_ttl_seconds: u32,
    /// Wrong codes allowed before the verification fails, 1..=10 (default 3).
    pub code_attempts: u32,
    /// Requests filed without a key that one client address may make per minute,
    /// 1..=10000 (default 10). Over it, intake answers 429 `dsr_rate_limited`.
    pub intake_per_address_per_minute: u32,
    /// Requests that one claimed identity (email or mobile) may be named in per
    /// hour, 1..=1000 (default 5): the code is sent to that identity, so this
    /// also bounds the messages a stranger can trigger towards a person.
    pub intake_per_identity_per_hour: u32,
    /// A request still waiting for identity verification after this many hours
    /// expires (state `expired`, audited), 1..=720 (default 72). It never
    /// counts as overdue: the deadline runs only for a person who proved who
    /// they are (policy §7.2).
    pub unverified_expiry_hours: u32,
}

impl Default for DsrSettings {
    /// `cn`, 30 days, 2 days, 600 s, 3 attempts, 10 per address per minute, 5 per
    /// identity per hour, 72 hours to verify.
    fn default() -> Self {
        DsrSettings {
            default_jurisdiction: "cn".to_owned(),
            duplicate_window_days: 30,
            near_due_days: 2,
            code_ttl_seconds: 600,
            code_attempts: 3,
            intake_per_address_per_minute: 10,
            intake_per_identity_per_hour: 5,
            unverified_expiry_hours: 72,
        }
    }
}

#[cfg(test)]
mod tests;
