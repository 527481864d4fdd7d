//! Security incidents: their grading ([`Severity`]), how affected people are reached
//! ([`Channel`], [`RetrySettings`]), the regulators' reporting deadlines ([`Deadline`]), all
//! configured by the policy's `[incident]` table ([`IncidentPolicy`]; policy §8.3–§8.4,
//! PIPL Art. 57, GDPR Art. 33).
//!
//! Pure: times are unix seconds (UTC) supplied by the caller.

use serde::Serialize;

/// The grade of a network security incident, as graded by the 网络安全事件分级指南 annexed to
/// the 国家网络安全事件报告管理办法 (CAC, 2025-09-11, in force 2025-11-01), which follows
/// GB/T 20986-2023 (信息安全技术 网络安全事件分类分级指南): 特别重大, 重大, 较大, 一般.
/// The measures' Art. 4 makes reporting mandatory from 较大 (relatively major) upwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// 特别重大网络安全事件 (`especially_major`).
    EspeciallyMajor,
    /// 重大网络安全事件 (`major`).
    Major,
    /// 较大网络安全事件 (`relatively_major`).
    RelativelyMajor,
    /// 一般网络安全事件 (`general`).
    General,
}

impl Severity {
    /// Every grade, most severe first.
    pub const ALL: [Severity; 4] = [
        Severity::EspeciallyMajor,
        Severity::Major,
        Severity::RelativelyMajor,
        Severity::General,
    ];

    /// `especially_major`, `major`, `relatively_major` or `general`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::EspeciallyMajor => "especially_major",
            Severity::Major => "major",
            Severity::RelativelyMajor => "relatively_major",
            Severity::General => "general",
        }
    }

    /// The grade [`as_str`](Self::as_str) spells `s`, if any (the API answers
    /// `severity_unknown` otherwise).
    #[must_use]
    pub fn parse_name(s: &str) -> Option<Severity> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The Chinese name of the grade: 特别重大, 重大, 较大 or 一般.
    #[must_use]
    pub const fn name_zh(self) -> &'static str {
        match self {
            Severity::EspeciallyMajor => "特别重大",
            Severity::Major => "重大",
            Severity::RelativelyMajor => "较大",
            Severity::General => "一般",
        }
    }
}

/// A way to reach a person with a notice (policy §8.3: "by email, letter, telephone, push
/// notification, etc."; the telephone number is reached by SMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail to the account's address.
    Email,
    /// Text message to the account's mobile number.
    Sms,
    /// Push notification to the account's app or console.
    Push,
    /// Letter by post.
    Letter,
}

impl Channel {
    /// Every channel, in the default order of [`IncidentPolicy::channels`].
    pub const ALL: [Channel; 4] = [Channel::Email, Channel::Sms, Channel::Push, Channel::Letter];

    /// `email`, `sms`, `push` or `letter`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Letter => "letter",
        }
    }

    /// The channel [`as_str`](Self::as_str) spells `s`, if any.
    #[must_use]
    pub fn parse_name(s: &str) -> Option<Channel> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// How the notice outbox retries a failed delivery: exponential backoff from `base_secs`,
/// doubling per failure, capped at `max_backoff_secs`, giving up after `max_attempts`
/// attempts on one channel (then the next channel of [`IncidentPolicy::channels`] is tried).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RetrySettings {
    /// Attempts per channel before it is given up, 1–100 (default 8).
    pub max_attempts: u32,
    /// Seconds before the first retry, 1–86,400 (default 30).
    pub base_secs: u64,
    /// The longest wait between attempts in seconds, `base_secs`–604,800 (default 3,600).
    pub max_backoff_secs: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 8,
            base_secs: 30,
            max_backoff_secs: 3600,
        }
    }
}

impl RetrySettings {
    /// Seconds to wait after the `failures`-th failed attempt (1-based) before the next:
    /// `min(base_secs × 2^(failures − 1), max_backoff_secs)`; `failures` of 0 waits 0.
    /// Never overflows.
    #[must_use]
    pub fn backoff_secs(&self, failures: u32) -> u64 {
        if failures == 0 {
            return 0;
        }
        let factor = 1u64.checked_shl(failures - 1).unwrap_or(u64::MAX);
        self.base_secs
            .saturating_mul(factor)
            .min(self.max_backoff_secs)
    }

    /// Whether a channel that failed `failures` times is given up.
    #[must_use]
    pub fn exhausted(&self, failures: u32) -> bool {
        failures >= self.max_attempts
    }
}

/// A regulator's reporting deadline, counted from discovery (`[[incident.deadline]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deadline {
    /// Which regulator's rule: a slug such as `gdpr` or `cn`.
    pub regime: String,
    /// The grade it applies to; `None` (`"any"` in the file) applies to every grade.
    pub severity: Option<Severity>,
    /// Hours from discovery, ≥ 1.
    pub hours: u32,
    /// The rule, e.g. `GDPR Art. 33(1)`.
    pub source: String,
}

/// The `[incident]` table of a policy (policy §8.3–§8.4); [`Default`] for what a file leaves
/// out, so a policy without the table still loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncidentPolicy {
    /// How people reach us about an incident, shown in every notice (PIPL Art. 57(3)); empty
    /// by default (the notices then show a placeholder).
    pub contact: String,
    /// More affected subjects than this and individual notice is impracticable: only the
    /// announcement is made (policy §8.3). Default 1,000,000.
    pub announcement_threshold: u64,
    /// Channels in order of preference, never empty, no repeats: each subject is reached
    /// through the first that works. Default email, sms, push, letter.
    pub channels: Vec<Channel>,
    /// The outbox's backoff.
    pub retry: RetrySettings,
    /// Reporting deadlines, in file order; default [`IncidentPolicy::default_deadlines`].
    pub deadlines: Vec<Deadline>,
}

impl Default for IncidentPolicy {
    fn default() -> Self {
        IncidentPolicy {
            contact: String::new(),
            announcement_threshold: 1_000_000,
            channels: Channel::ALL.to_vec(),
            retry: RetrySettings::default(),
            deadlines: Self::default_deadlines(),
        }
    }
}

/// The source of the PRC deadlines.
const CN_SOURCE: &str =
    "国家网络安全事件报告管理办法 Art. 4 (other network operators: provincial CAC within 4 h)";

impl IncidentPolicy {
    /// The deadlines of a file without `[[incident.deadline]]`: GDPR Art. 33(1), 72 hours for
    /// any grade; and the 国家网络安全事件报告管理办法 (CAC, in force 2025-11-01) Art. 4: a
    /// network operator that is neither critical information infrastructure nor a central
    /// state organ reports a 较大, 重大 or 特别重大 incident to the provincial CAC within
    /// 4 hours (一般 incidents have no mandatory report there).
    #[must_use]
    pub fn default_deadlines() -> Vec<Deadline> {
        let mut out = vec![Deadline {
            regime: "gdpr".to_owned(),
            severity: None,
            hours: 72,
            source: "GDPR Art. 33(1)".to_owned(),
        }];
        for s in [
            Severity::EspeciallyMajor,
            Severity::Major,
            Severity::RelativelyMajor,
        ] {
            out.push(Deadline {
                regime: "cn".to_owned(),
                severity: Some(s),
                hours: 4,
                source: CN_SOURCE.to_owned(),
            });
        }
        out
    }

    /// The deadline of `regime` for an incident of grade `severity`: `(hours from discovery,
    /// source)`. A deadline naming the grade wins over one for `any`; `None` when the regime
    /// sets none for this grade (e.g. `cn` for [`Severity::General`]).
    #[must_use]
    pub fn deadline_hours(&self, regime: &str, severity: Severity) -> Option<(u32, &str)> {
        let of_regime = || self.deadlines.iter().filter(|d| d.regime == regime);
        of_regime()
            .find(|d| d.severity == Some(severity))
            .or_else(|| of_regime().find(|d| d.severity.is_none()))
            .map(|d| (d.hours, d.source.as_str()))
    }

    /// The regimes with a deadline, each once, in file order.
    #[must_use]
    pub fn regimes(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for d in &self.deadlines {
            if !out.contains(&d.regime.as_str()) {
                out.push(&d.regime);
            }
        }
        out
    }

    /// Whether `affected` subjects are too many to notify one by one, so only the
    /// announcement is made (policy §8.3): `affected > announcement_threshold`.
    #[must_use]
    pub fn announce_only(&self, affected: u64) -> bool {
        affected > self.announcement_threshold
    }
}
