//! Reading the `[incident]` table of a policy file (its `retry` table and
//! `[[incident.deadline]]` entries) into an [`IncidentPolicy`]; what the table leaves out
//! keeps [`IncidentPolicy::default`].

use std::ops::Range;

use super::read::{is_slug, At, Ctx, Table};
use super::tree::Node;
use crate::incident::{Channel, Deadline, IncidentPolicy, RetrySettings, Severity};

pub(super) const INCIDENT_FIELDS: &[&str] = &[
    "contact",
    "announcement_threshold",
    "channels",
    "retry",
    "deadline",
];
pub(super) const RETRY_FIELDS: &[&str] = &["max_attempts", "base_secs", "max_backoff_secs"];
pub(super) const DEADLINE_FIELDS: &[&str] = &["regime", "severity", "hours", "source"];

/// The longest deadline accepted: a year of hours.
const MAX_HOURS: i64 = 8760;

/// The `[incident]` table, or `None` when any part of it is wrong (every problem reported).
pub(super) fn read_incident(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
) -> Option<IncidentPolicy> {
    let t = Table::open(ctx, node, "[incident]", INCIDENT_FIELDS)?;
    let defaults = IncidentPolicy::default();
    let mut ok = true;

    let contact = match (t.get("contact"), t.opt_string(ctx, "contact")) {
        (_, Some(c)) => c.value.trim().to_owned(),
        (None, None) => defaults.contact.clone(),
        (Some(_), None) => {
            ok = false;
            String::new()
        }
    };

    let threshold = match (
        t.get("announcement_threshold"),
        t.opt_integer(ctx, "announcement_threshold", 0..i64::MAX),
    ) {
        (_, Some(n)) => u64::try_from(n.value).unwrap_or(defaults.announcement_threshold),
        (None, None) => defaults.announcement_threshold,
        (Some(_), None) => {
            ok = false;
            0
        }
    };

    let channels = match t.get("channels") {
        None => Some(defaults.channels.clone()),
        Some(node) => read_channels(ctx, &t, node),
    };
    ok &= channels.is_some();

    let retry = match t.get("retry") {
        None => Some(defaults.retry),
        Some(node) => read_retry(ctx, node),
    };
    ok &= retry.is_some();

    let deadlines = match t.get("deadline") {
        None => Some(defaults.deadlines.clone()),
        Some(node) => match node.get_ref() {
            Node::Array(items) => read_deadlines(ctx, items),
            other => {
                ctx.error(
                    node.span(),
                    format!(
                        "`deadline` in [incident] must be an array of tables ([[incident.deadline]]), found {}",
                        other.type_name()
                    ),
                );
                None
            }
        },
    };
    ok &= deadlines.is_some();

    if !ok {
        return None;
    }
    Some(IncidentPolicy {
        contact,
        announcement_threshold: threshold,
        channels: channels?,
        retry: retry?,
        deadlines: deadlines?,
    })
}

/// `channels`: a non-empty array of known channel names, each once.
fn read_channels(
    ctx: &mut Ctx,
    t: &Table,
    node: &serde_spanned::Spanned<Node>,
) -> Option<Vec<Channel>> {
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(ctx, "channels", "an array of strings", node.get_ref());
        return None;
    };
    if items.is_empty() {
        ctx.error(
            node.span(),
            "`channels` in [incident] must name at least one channel (policy §8.3: people must be reachable), expected some of: email, sms, push, letter",
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        let Node::String(s) = item.get_ref() else {
            ok = false;
            ctx.error(
                item.span(),
                format!(
                    "`channels` in [incident] must hold strings, found {}",
                    item.get_ref().type_name()
                ),
            );
            continue;
        };
        match Channel::parse_name(s) {
            Some(c) if out.contains(&c) => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("channel `{s}` is listed twice in [incident] `channels`"),
                );
            }
            Some(c) => out.push(c),
            None => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!(
                        "unknown channel `{s}` in [incident], expected one of: email, sms, push, letter"
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// `retry = { max_attempts, base_secs, max_backoff_secs }`, each optional.
fn read_retry(ctx: &mut Ctx, node: &serde_spanned::Spanned<Node>) -> Option<RetrySettings> {
    let t = Table::open(ctx, node, "[incident] `retry`", RETRY_FIELDS)?;
    let d = RetrySettings::default();
    let mut number = |name: &str, range: Range<i64>, fallback: u64| -> Option<At<u64>> {
        let given = t.get(name).is_some();
        match t.opt_integer(ctx, name, range) {
            Some(n) => u64::try_from(n.value).ok().map(|value| At {
                value,
                span: n.span,
            }),
            None if given => None,
            None => Some(At {
                value: fallback,
                span: t.span.clone(),
            }),
        }
    };
    let attempts = number("max_attempts", 1..101, u64::from(d.max_attempts));
    let base = number("base_secs", 1..86_401, d.base_secs);
    let max = number("max_backoff_secs", 1..604_801, d.max_backoff_secs);
    let (attempts, base, max) = (attempts?, base?, max?);
    if max.value < base.value {
        ctx.error(
            max.span,
            format!(
                "`max_backoff_secs` ({}) in [incident] `retry` must be at least `base_secs` ({})",
                max.value, base.value
            ),
        );
        return None;
    }
    Some(RetrySettings {
        max_attempts: u32::try_from(attempts.value).ok()?,
        base_secs: base.value,
        max_backoff_secs: max.value,
    })
}

fn read_deadlines(ctx: &mut Ctx, items: &[serde_spanned::Spanned<Node>]) -> Option<Vec<Deadline>> {
    let mut out: Vec<Deadline> = Vec::with_capacity(items.len());
    let mut ok = true;
    for node in items {
        match read_deadline(ctx, node) {
            Some((d, span)) => {
                if out
                    .iter()
                    .any(|o| o.regime == d.regime && o.severity == d.severity)
                {
                    ok = false;
                    ctx.error(
                        span,
                        format!(
                            "a second [[incident.deadline]] for regime `{}` and severity `{}`",
                            d.regime,
                            d.severity.map_or("any", Severity::as_str)
                        ),
                    );
                } else {
                    out.push(d);
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// One `[[incident.deadline]]`, with the span of its severity (or table) for the duplicate
/// check.
fn read_deadline(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
) -> Option<(Deadline, Range<usize>)> {
    let t = Table::open(ctx, node, "[[incident.deadline]]", DEADLINE_FIELDS)?;
    let regime = t.string(ctx, "regime");
    let mut ok = true;
    if let Some(r) = &regime {
        if !is_slug(&r.value) {
            ok = false;
            ctx.error(
                r.span.clone(),
                format!(
                    "regime `{}` in [[incident.deadline]] must match ^[a-z][a-z0-9_-]*$, e.g. \"gdpr\" or \"cn\"",
                    r.value
                ),
            );
        }
    }
    let severity = t.string(ctx, "severity").and_then(|s| {
        if s.value == "any" {
            return Some((None, s.span));
        }
        match Severity::parse_name(&s.value) {
            Some(v) => Some((Some(v), s.span)),
            None => {
                ctx.error(
                    s.span.clone(),
                    format!(
                        "unknown severity `{}` in [[incident.deadline]], expected one of: any, especially_major, major, relatively_major, general",
                        s.value
                    ),
                );
                None
            }
        }
    });
    let hours = match t.get("hours").map(|n| (n.get_ref(), n.span())) {
        Some((Node::Integer(0), span)) => {
            ctx.error(
                span,
                "`hours` in [[incident.deadline]] must be at least 1: a deadline of 0 hours cannot be met",
            );
            None
        }
        _ => t.integer(ctx, "hours", 1..MAX_HOURS + 1),
    };
    let source = t.string(ctx, "source");
    let (severity, span) = severity?;
    if !ok {
        return None;
    }
    Some((
        Deadline {
            regime: regime?.value,
            severity,
            hours: u32::try_from(hours?.value).ok()?,
            source: source?.value,
        },
        span,
    ))
}
