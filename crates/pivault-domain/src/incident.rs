//! Security incidents: their grading ([`Severity`]), how affected people are reached
//! ([`Channel`], [`RetrySettings`]), the regulators' reporting deadlines ([`Deadline`]), all
//! configured by the policy's `[incident]` table ([`IncidentPolicy`]; policy §8.3–§8.4,
//! PIPL Art. 57, GDPR Art. 33); and the report to the regulator ([`RegulatorReport`], its
//! [`deadline_status`] and printable HTML, [`render_report_html`]).
//!
//! Pure: times are unix seconds (UTC) supplied by the caller. The report holds ids, counts and
//! the security team's free text only, never a person's PI (PIPL Art. 57 asks for the
//! categories of PI and the harm, not for the people).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::notice::{utc_minute, Lang};

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

// ---------------------------------------------------------------------------
// The report to the regulator (policy §8.4)

/// How one regulator's deadline stands for an incident (see [`deadline_status`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlineStatus {
    /// The regime, e.g. `gdpr` or `cn`.
    pub regime: String,
    /// Hours from discovery the regime allows.
    pub hours: u32,
    /// The rule, e.g. `GDPR Art. 33(1)`.
    pub source: String,
    /// `discovered_at + hours × 3600`: unix seconds, UTC.
    pub due_at: i64,
    /// Whether the report was made by `due_at` (inclusive); `None` while unreported.
    pub met: Option<bool>,
    /// Unreported and `now` is past `due_at`.
    pub overdue: bool,
    /// Hours from discovery to the report (fractional); `None` while unreported.
    pub hours_from_discovery: Option<f64>,
}

/// One dated event of the incident's handling (discovered, scope fixed, notices queued,
/// reported, closed …); `event` is a short description without PI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TimelineEntry {
    /// Unix seconds, UTC.
    pub at: i64,
    /// What happened then.
    pub event: String,
}

/// How the notices to affected people stand (policy §8.3), counted over the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct NoticeCounts {
    /// Waiting in the outbox (including those awaiting a retry).
    pub queued: u64,
    /// Delivered on some channel.
    pub delivered: u64,
    /// Covered by the public announcement instead of an individual notice.
    pub announced: u64,
    /// Given up on every channel.
    pub failed: u64,
    /// Sent as letters (a subset of `delivered`).
    pub letters: u64,
}

/// The report of an incident to the regulator (policy §8.4; PIPL Art. 57 para. 1 "notify the
/// PI protection authority"; GDPR Art. 33(3) contents; 国家网络安全事件报告管理办法 Art. 4–5).
/// Ids, counts and free text only: no person's PI anywhere. Serializes to JSON as is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegulatorReport {
    /// The incident's id.
    pub incident_id: String,
    /// A one-line title.
    pub title: String,
    /// What happened.
    pub what_happened: String,
    /// The grade (see [`Severity`]).
    pub severity: Severity,
    /// When it happened or began: unix seconds, UTC.
    pub occurred_at: i64,
    /// When it was discovered: unix seconds, UTC; deadlines count from here.
    pub discovered_at: i64,
    /// When it was reported to the regulator: unix seconds, UTC; `None` until then.
    pub reported_at: Option<i64>,
    /// Keys of the policy categories of PI involved.
    pub categories: Vec<String>,
    /// The systems involved (names or ids).
    pub systems: Vec<String>,
    /// The cause, as far as known.
    pub cause: String,
    /// Measures taken.
    pub measures_taken: String,
    /// Measures planned.
    pub measures_planned: String,
    /// People affected.
    pub affected_total: u64,
    /// People affected per category key.
    pub affected_by_category: BTreeMap<String, u64>,
    /// People affected per region (e.g. a province code or an ISO 3166-1 code).
    pub affected_by_region: BTreeMap<String, u64>,
    /// The notices to affected people.
    pub notices: NoticeCounts,
    /// The handling, in time order.
    pub timeline: Vec<TimelineEntry>,
    /// Every regime's deadline for this grade (from [`deadline_status`]).
    pub deadlines: Vec<DeadlineStatus>,
}

/// Every deadline the `policy` sets for an incident of grade `severity` discovered at
/// `discovered_at`, one per regime in file order (a regime with none for the grade, like `cn`
/// for [`Severity::General`], is left out), as it stands at `now` given the report time
/// `reported_at` (all unix seconds, UTC). A report exactly at `due_at` meets it. Saturates
/// rather than overflows.
#[must_use]
pub fn deadline_status(
    policy: &IncidentPolicy,
    severity: Severity,
    discovered_at: i64,
    reported_at: Option<i64>,
    now: i64,
) -> Vec<DeadlineStatus> {
    policy
        .regimes()
        .into_iter()
        .filter_map(|regime| {
            let (hours, source) = policy.deadline_hours(regime, severity)?;
            let due_at = discovered_at.saturating_add(i64::from(hours).saturating_mul(3600));
            Some(DeadlineStatus {
                regime: regime.to_owned(),
                hours,
                source: source.to_owned(),
                due_at,
                met: reported_at.map(|r| r <= due_at),
                overdue: reported_at.is_none() && now > due_at,
                #[allow(clippy::cast_precision_loss)] // seconds well inside f64's exact range
                hours_from_discovery: reported_at
                    .map(|r| r.saturating_sub(discovered_at) as f64 / 3600.0),
            })
        })
        .collect()
}

/// `s` with `& < > " '` replaced by entities, safe in HTML text and quoted attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The labels of the report in one language.
struct Labels {
    heading: &'static str,
    incident: &'static str,
    title: &'static str,
    severity: &'static str,
    occurred: &'static str,
    discovered: &'static str,
    reported: &'static str,
    not_reported: &'static str,
    what: &'static str,
    cause: &'static str,
    categories: &'static str,
    systems: &'static str,
    taken: &'static str,
    planned: &'static str,
    affected: &'static str,
    total: &'static str,
    by_category: &'static str,
    by_region: &'static str,
    count: &'static str,
    notices: &'static str,
    queued: &'static str,
    delivered: &'static str,
    announced: &'static str,
    failed: &'static str,
    letters: &'static str,
    deadlines: &'static str,
    regime: &'static str,
    hours: &'static str,
    source: &'static str,
    due: &'static str,
    status: &'static str,
    met: &'static str,
    missed: &'static str,
    overdue: &'static str,
    pending: &'static str,
    timeline: &'static str,
    time: &'static str,
    event: &'static str,
    none: &'static str,
    footer: &'static str,
}

const ZH: Labels = Labels {
    heading: "个人信息安全事件报告",
    incident: "事件编号",
    title: "事件名称",
    severity: "事件级别",
    occurred: "发生时间",
    discovered: "发现时间",
    reported: "报告时间",
    not_reported: "尚未报告",
    what: "事件经过",
    cause: "原因",
    categories: "涉及的个人信息种类",
    systems: "涉及的系统",
    taken: "已采取的处置措施",
    planned: "拟采取的措施",
    affected: "影响范围",
    total: "受影响人数合计",
    by_category: "按个人信息种类",
    by_region: "按地区",
    count: "人数",
    notices: "告知情况",
    queued: "待发送",
    delivered: "已送达",
    announced: "以公告方式告知",
    failed: "送达失败",
    letters: "其中信函",
    deadlines: "报告时限",
    regime: "适用规则",
    hours: "时限（小时）",
    source: "依据",
    due: "截止时间",
    status: "状态",
    met: "按时报告",
    missed: "逾期报告",
    overdue: "已逾期未报告",
    pending: "未到期",
    timeline: "处置时间线",
    time: "时间",
    event: "事项",
    none: "无",
    footer: "本报告不含任何个人的个人信息，仅含编号与统计数字。依据：隐私政策第8.4条、《个人信息保护法》第五十七条（policy §8.4 / PIPL Art. 57）。",
};

const EN: Labels = Labels {
    heading: "Personal information security incident report",
    incident: "Incident",
    title: "Title",
    severity: "Severity",
    occurred: "Occurred",
    discovered: "Discovered",
    reported: "Reported",
    not_reported: "not yet reported",
    what: "What happened",
    cause: "Cause",
    categories: "Categories of personal information",
    systems: "Systems involved",
    taken: "Measures taken",
    planned: "Measures planned",
    affected: "Scope",
    total: "People affected in total",
    by_category: "By category",
    by_region: "By region",
    count: "People",
    notices: "Notices to affected people",
    queued: "Queued",
    delivered: "Delivered",
    announced: "Covered by announcement",
    failed: "Failed",
    letters: "Of which letters",
    deadlines: "Reporting deadlines",
    regime: "Regime",
    hours: "Hours",
    source: "Source",
    due: "Due",
    status: "Status",
    met: "met",
    missed: "missed",
    overdue: "overdue",
    pending: "pending",
    timeline: "Timeline",
    time: "Time",
    event: "Event",
    none: "none",
    footer: "This report holds no person's personal information, only ids and counts. Under policy §8.4 / PIPL Art. 57.",
};

fn row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(
        out,
        "<tr><th>{}</th><td>{}</td></tr>",
        esc(label),
        esc(value)
    );
}

fn list(l: &Labels, items: &[String]) -> String {
    if items.is_empty() {
        l.none.to_owned()
    } else {
        items.join(", ")
    }
}

fn counts(out: &mut String, l: &Labels, heading: &str, key: &str, map: &BTreeMap<String, u64>) {
    let _ = writeln!(out, "<h3>{}</h3>", esc(heading));
    let _ = writeln!(
        out,
        "<table><tr><th>{}</th><th>{}</th></tr>",
        esc(key),
        esc(l.count)
    );
    if map.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"2\">{}</td></tr>", esc(l.none));
    }
    for (k, n) in map {
        let _ = writeln!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(k));
    }
    out.push_str("</table>\n");
}

/// The report as one printable, self-contained HTML page (inline CSS, no scripts, no external
/// resources) with labels in `lang`; every value is HTML-escaped. Times are shown as
/// `YYYY-MM-DD HH:MM UTC`.
#[must_use]
pub fn render_report_html(r: &RegulatorReport, lang: Lang) -> String {
    let l = match lang {
        Lang::ZhCn => &ZH,
        Lang::En => &EN,
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{heading} {id}</title>\n<style>\n\
         body{{font-family:sans-serif;margin:2em;color:#000;background:#fff}}\n\
         table{{border-collapse:collapse;margin:0.5em 0 1em;width:100%}}\n\
         th,td{{border:1px solid #888;padding:0.3em 0.5em;text-align:left;vertical-align:top}}\n\
         th{{background:#eee;width:14em}}\n\
         .late{{color:#a00;font-weight:bold}}\n\
         @media print{{body{{margin:0}}h2{{page-break-after:avoid}}}}\n\
         </style>\n</head>\n<body>\n<h1>{heading}</h1>\n<table>\n",
        lang = lang.as_str(),
        heading = esc(l.heading),
        id = esc(&r.incident_id),
    );
    row(&mut out, l.incident, &r.incident_id);
    row(&mut out, l.title, &r.title);
    let severity = match lang {
        Lang::ZhCn => format!("{}（{}）", r.severity.name_zh(), r.severity.as_str()),
        Lang::En => format!("{} ({})", r.severity.as_str(), r.severity.name_zh()),
    };
    row(&mut out, l.severity, &severity);
    row(&mut out, l.occurred, &utc_minute(r.occurred_at));
    row(&mut out, l.discovered, &utc_minute(r.discovered_at));
    row(
        &mut out,
        l.reported,
        &r.reported_at
            .map_or_else(|| l.not_reported.to_owned(), utc_minute),
    );
    row(&mut out, l.what, &r.what_happened);
    row(&mut out, l.cause, &r.cause);
    row(&mut out, l.categories, &list(l, &r.categories));
    row(&mut out, l.systems, &list(l, &r.systems));
    row(&mut out, l.taken, &r.measures_taken);
    row(&mut out, l.planned, &r.measures_planned);
    out.push_str("</table>\n");

    let _ = writeln!(out, "<h2>{}</h2>\n<table>", esc(l.affected));
    row(&mut out, l.total, &r.affected_total.to_string());
    out.push_str("</table>\n");
    counts(
        &mut out,
        l,
        l.by_category,
        l.categories,
        &r.affected_by_category,
    );
    counts(&mut out, l, l.by_region, l.by_region, &r.affected_by_region);

    let _ = writeln!(out, "<h2>{}</h2>\n<table>", esc(l.notices));
    let n = &r.notices;
    for (label, v) in [
        (l.queued, n.queued),
        (l.delivered, n.delivered),
        (l.announced, n.announced),
        (l.failed, n.failed),
        (l.letters, n.letters),
    ] {
        row(&mut out, label, &v.to_string());
    }
    out.push_str("</table>\n");

    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        esc(l.deadlines),
        esc(l.regime),
        esc(l.hours),
        esc(l.source),
        esc(l.due),
        esc(l.status)
    );
    if r.deadlines.is_empty() {
        let _ = writeln!(out, "<tr><td colspan=\"5\">{}</td></tr>", esc(l.none));
    }
    for d in &r.deadlines {
        let (status, late) = match (d.met, d.overdue) {
            (Some(true), _) => (l.met.to_owned(), false),
            (Some(false), _) => (l.missed.to_owned(), true),
            (None, true) => (l.overdue.to_owned(), true),
            (None, false) => (l.pending.to_owned(), false),
        };
        let status = match d.hours_from_discovery {
            Some(h) => format!("{status} ({h:.1} h)"),
            None => status,
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>",
            esc(&d.regime),
            d.hours,
            esc(&d.source),
            esc(&utc_minute(d.due_at)),
            if late { " class=\"late\"" } else { "" },
            esc(&status)
        );
    }
    out.push_str("</table>\n");

    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>{}</th></tr>",
        esc(l.timeline),
        esc(l.time),
        esc(l.event)
    );
    let mut timeline: Vec<&TimelineEntry> = r.timeline.iter().collect();
    timeline.sort_by_key(|e| e.at);
    for e in timeline {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(&utc_minute(e.at)),
            esc(&e.event)
        );
    }
    out.push_str("</table>\n");
    let _ = writeln!(
        out,
        "<p><small>{}</small></p>\n</body>\n</html>",
        esc(l.footer)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const T0: i64 = 1_767_225_600; // 2026-01-01 00:00 UTC

    fn gdpr_only() -> IncidentPolicy {
        IncidentPolicy {
            deadlines: vec![Deadline {
                regime: "gdpr".into(),
                severity: None,
                hours: 72,
                source: "GDPR Art. 33(1)".into(),
            }],
            ..IncidentPolicy::default()
        }
    }

    #[test]
    fn the_72_hour_deadline_is_met_missed_pending_or_overdue() {
        let p = gdpr_only();
        let due = T0 + 72 * H;
        // Reported exactly at the deadline: met.
        let s = deadline_status(&p, Severity::General, T0, Some(due), due + 10 * H);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].due_at, due);
        assert_eq!(s[0].met, Some(true));
        assert!(!s[0].overdue);
        assert_eq!(s[0].hours_from_discovery, Some(72.0));
        // One second late: missed, and not "overdue" (it was reported).
        let s = deadline_status(&p, Severity::General, T0, Some(due + 1), due + 10 * H);
        assert_eq!(s[0].met, Some(false));
        assert!(!s[0].overdue);
        // Unreported: pending until the deadline, overdue after it.
        let s = deadline_status(&p, Severity::Major, T0, None, due);
        assert_eq!((s[0].met, s[0].overdue), (None, false));
        let s = deadline_status(&p, Severity::Major, T0, None, due + 1);
        assert_eq!((s[0].met, s[0].overdue), (None, true));
        assert_eq!(s[0].hours_from_discovery, None);
        // Reported after 30 minutes.
        let s = deadline_status(&p, Severity::Major, T0, Some(T0 + 1800), T0);
        assert_eq!(s[0].hours_from_discovery, Some(0.5));
        // Extreme times saturate.
        let s = deadline_status(&p, Severity::Major, i64::MAX - 5, Some(i64::MIN), i64::MAX);
        assert_eq!(s[0].due_at, i64::MAX);
        assert_eq!(s[0].met, Some(true));
    }

    #[test]
    fn prc_deadlines_are_chosen_by_severity() {
        let p = IncidentPolicy::default();
        for s in [
            Severity::EspeciallyMajor,
            Severity::Major,
            Severity::RelativelyMajor,
        ] {
            let st = deadline_status(&p, s, T0, None, T0 + 5 * H);
            let regimes: Vec<&str> = st.iter().map(|d| d.regime.as_str()).collect();
            assert_eq!(regimes, ["gdpr", "cn"], "{s:?}");
            let cn = &st[1];
            assert_eq!(cn.hours, 4);
            assert_eq!(cn.due_at, T0 + 4 * H);
            assert!(
                cn.overdue,
                "5 h after discovery the 4 h deadline has passed"
            );
            assert!(cn.source.contains("Art. 4"));
            assert!(!st[0].overdue, "the GDPR's 72 h are not up");
        }
        // 一般 incidents: no PRC report is due under the measures; the GDPR still applies.
        let st = deadline_status(&p, Severity::General, T0, None, T0 + 5 * H);
        let regimes: Vec<&str> = st.iter().map(|d| d.regime.as_str()).collect();
        assert_eq!(regimes, ["gdpr"]);
        // A specific entry wins over `any` in the same regime.
        let mut p = gdpr_only();
        p.deadlines.push(Deadline {
            regime: "gdpr".into(),
            severity: Some(Severity::EspeciallyMajor),
            hours: 24,
            source: "stricter".into(),
        });
        assert_eq!(
            p.deadline_hours("gdpr", Severity::EspeciallyMajor),
            Some((24, "stricter"))
        );
        assert_eq!(
            p.deadline_hours("gdpr", Severity::Major),
            Some((72, "GDPR Art. 33(1)"))
        );
        assert_eq!(
            deadline_status(&p, Severity::EspeciallyMajor, T0, None, T0)[0].hours,
            24
        );
    }

    #[test]
    fn severities_and_channels_round_trip() {
        for s in Severity::ALL {
            assert_eq!(Severity::parse_name(s.as_str()), Some(s));
        }
        assert_eq!(Severity::parse_name("any"), None);
        assert_eq!(Severity::Major.name_zh(), "重大");
        for c in Channel::ALL {
            assert_eq!(Channel::parse_name(c.as_str()), Some(c));
        }
        assert_eq!(Channel::parse_name("fax"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_never_overflows() {
        let r = RetrySettings::default();
        let waits: Vec<u64> = (0..9).map(|f| r.backoff_secs(f)).collect();
        assert_eq!(waits, [0, 30, 60, 120, 240, 480, 960, 1920, 3600]);
        assert_eq!(r.backoff_secs(u32::MAX), 3600);
        assert!(!r.exhausted(7));
        assert!(r.exhausted(8));
        assert!(IncidentPolicy::default().announce_only(1_000_001));
        assert!(!IncidentPolicy::default().announce_only(1_000_000));
    }

    fn report() -> RegulatorReport {
        let p = IncidentPolicy::default();
        RegulatorReport {
            incident_id: "inc-1".into(),
            title: "<script>alert(1)</script>".into(),
            what_happened: "a \"quoted\" & 'single' <b>thing</b>".into(),
            severity: Severity::Major,
            occurred_at: T0 - H,
            discovered_at: T0,
            reported_at: Some(T0 + 3 * H),
            categories: vec!["user.contact.mobile".into()],
            systems: vec!["console<img src=x>".into()],
            cause: "cause".into(),
            measures_taken: "taken".into(),
            measures_planned: "planned".into(),
            affected_total: 1200,
            affected_by_category: BTreeMap::from([("user.contact.mobile".into(), 1200)]),
            affected_by_region: BTreeMap::from([("<cn-37>".into(), 1200)]),
            notices: NoticeCounts {
                queued: 1,
                delivered: 1100,
                announced: 0,
                failed: 99,
                letters: 3,
            },
            timeline: vec![
                TimelineEntry {
                    at: T0 + 3 * H,
                    event: "reported".into(),
                },
                TimelineEntry {
                    at: T0,
                    event: "discovered </td>".into(),
                },
            ],
            deadlines: deadline_status(&p, Severity::Major, T0, Some(T0 + 3 * H), T0 + 4 * H),
        }
    }

    #[test]
    fn the_html_escapes_every_value() {
        for lang in [Lang::ZhCn, Lang::En] {
            let html = render_report_html(&report(), lang);
            assert!(!html.contains("<script"), "{html}");
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(html.contains("&quot;quoted&quot; &amp; &#39;single&#39; &lt;b&gt;"));
            assert!(!html.contains("<img"));
            assert!(!html.contains("discovered </td>"));
            assert!(html.contains("&lt;cn-37&gt;"));
            assert!(html.starts_with("<!DOCTYPE html>"));
            assert!(html.trim_end().ends_with("</html>"));
            assert!(
                !html.contains("http"),
                "self-contained: no external resources"
            );
            assert!(html.contains("2026-01-01 03:00 UTC"));
        }
        let zh = render_report_html(&report(), Lang::ZhCn);
        assert!(zh.contains("个人信息安全事件报告"));
        assert!(zh.contains("重大（major）"));
        assert!(zh.contains("按时报告 (3.0 h)"));
        let en = render_report_html(&report(), Lang::En);
        assert!(en.contains("met (3.0 h)"));
        // The timeline is printed in time order.
        let a = en.find("discovered &lt;/td&gt;").unwrap_or(usize::MAX);
        let b = en.find(">reported<").unwrap_or(0);
        assert!(a < b);
    }

    #[test]
    fn the_report_serializes_with_its_field_names_and_snake_case_severity() {
        let text = toml::to_string(&report()).unwrap_or_else(|e| panic!("{e}"));
        for field in [
            "incident_id",
            "severity = \"major\"",
            "reported_at",
            "affected_by_category",
            "affected_by_region",
            "hours_from_discovery",
            "[notices]",
            "letters = 3",
            "[[timeline]]",
            "[[deadlines]]",
        ] {
            assert!(text.contains(field), "{field} missing:\n{text}");
        }
    }

    #[test]
    fn an_empty_report_renders() {
        let r = RegulatorReport {
            incident_id: String::new(),
            title: String::new(),
            what_happened: String::new(),
            severity: Severity::General,
            occurred_at: i64::MIN,
            discovered_at: i64::MAX,
            reported_at: None,
            categories: vec![],
            systems: vec![],
            cause: String::new(),
            measures_taken: String::new(),
            measures_planned: String::new(),
            affected_total: 0,
            affected_by_category: BTreeMap::new(),
            affected_by_region: BTreeMap::new(),
            notices: NoticeCounts::default(),
            timeline: vec![],
            deadlines: vec![],
        };
        for lang in [Lang::ZhCn, Lang::En] {
            let html = render_report_html(&r, lang);
            assert!(html.contains("</html>"));
        }
    }
}
