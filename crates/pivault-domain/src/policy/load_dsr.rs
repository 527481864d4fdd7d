//! Reading the `[dsr]` table and `[[jurisdiction]]` entries of a policy file
//! into [`DsrSettings`] and [`Jurisdiction`]s (deadlines, extensions, working
//! days, offsets), and the legacy `cn` jurisdiction of a file without any.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use super::diagnostics::line_of;
use super::read::{is_slug, Ctx, Table};
use super::tree::Node;
use crate::dsr::{DayKind, DsrSettings, Jurisdiction, Period};

pub(super) const DSR_FIELDS: &[&str] = &[
    "default_jurisdiction",
    "duplicate_window_days",
    "near_due_days",
    "code_ttl_seconds",
    "code_attempts",
    "intake_per_address_per_minute",
    "intake_per_identity_per_hour",
    "unverified_expiry_hours",
];
pub(super) const JURISDICTION_FIELDS: &[&str] = &[
    "key",
    "deadline_days",
    "deadline_months",
    "extension_days",
    "extension_months",
    "day_kind",
    "holidays",
    "extra_workdays",
    "utc_offset",
    "clause",
];

/// What `[dsr]` yielded: the settings if all were valid, and the default
/// jurisdiction key (with where it was written) if that was, so it is checked
/// even when another setting is wrong.
pub(super) struct DsrConfig {
    pub(super) settings: Option<DsrSettings>,
    pub(super) default_key: Option<String>,
    pub(super) default_span: Option<Range<usize>>,
}

pub(super) fn read_dsr(ctx: &mut Ctx, node: &serde_spanned::Spanned<Node>) -> Option<DsrConfig> {
    let t = Table::open(ctx, node, "[dsr]", DSR_FIELDS)?;
    let defaults = DsrSettings::default();
    let mut ok = true;
    let given = t.get("default_jurisdiction").is_some();
    let default = t.opt_string(ctx, "default_jurisdiction");
    if let Some(d) = &default {
        if !is_slug(&d.value) {
            ok = false;
            ctx.error(
                d.span.clone(),
                format!(
                    "default_jurisdiction `{}` must be a jurisdiction key (^[a-z][a-z0-9_-]*$)",
                    d.value
                ),
            );
        }
    }
    ok &= !given || default.is_some();
    let mut number = |name: &str, range: Range<i64>, fallback: u32| -> Option<u32> {
        let given = t.get(name).is_some();
        match t.opt_integer(ctx, name, range) {
            Some(n) => u32::try_from(n.value).ok(),
            None if given => None,
            None => Some(fallback),
        }
    };
    // A year at most: a longer window would merge unrelated requests.
    let window = number(
        "duplicate_window_days",
        0..366,
        defaults.duplicate_window_days,
    );
    let near = number("near_due_days", 0..366, defaults.near_due_days);
    let ttl = number("code_ttl_seconds", 60..3601, defaults.code_ttl_seconds);
    let attempts = number("code_attempts", 1..11, defaults.code_attempts);
    let per_address = number(
        "intake_per_address_per_minute",
        1..10_001,
        defaults.intake_per_address_per_minute,
    );
    let per_identity = number(
        "intake_per_identity_per_hour",
        1..1001,
        defaults.intake_per_identity_per_hour,
    );
    let expiry = number(
        "unverified_expiry_hours",
        1..721,
        defaults.unverified_expiry_hours,
    );
    let default_span = default.as_ref().map(|d| d.span.clone());
    let default_key = ok.then(|| default.map_or(defaults.default_jurisdiction, |d| d.value));
    let settings = (|| {
        Some(DsrSettings {
            default_jurisdiction: default_key.clone()?,
            duplicate_window_days: window?,
            near_due_days: near?,
            code_ttl_seconds: ttl?,
            code_attempts: attempts?,
            intake_per_address_per_minute: per_address?,
            intake_per_identity_per_hour: per_identity?,
            unverified_expiry_hours: expiry?,
        })
    })();
    Some(DsrConfig {
        settings,
        default_key,
        default_span,
    })
}

/// The default jurisdiction must be declared; without `[[jurisdiction]]` the
/// synthesized `cn` is the only one.
pub(super) fn check_default_jurisdiction(
    ctx: &mut Ctx,
    dsr: &DsrConfig,
    declared: &HashMap<String, Range<usize>>,
    nodes: &[serde_spanned::Spanned<Node>],
    dsr_node: Option<&serde_spanned::Spanned<Node>>,
) {
    let Some(key) = &dsr.default_key else {
        return;
    };
    let known = if nodes.is_empty() {
        key == LEGACY_JURISDICTION
    } else {
        declared.contains_key(key)
    };
    if known {
        return;
    }
    // Point at the value if it was written, else at the [dsr] table, else at
    // the first jurisdiction (the default `cn` is implied).
    let at = dsr
        .default_span
        .clone()
        .or_else(|| dsr_node.map(serde_spanned::Spanned::span))
        .or_else(|| nodes.first().map(serde_spanned::Spanned::span))
        .unwrap_or(0..0);
    let mut names: Vec<&str> = declared.keys().map(String::as_str).collect();
    names.sort_unstable();
    if nodes.is_empty() {
        names.push(LEGACY_JURISDICTION);
    }
    ctx.error(
        at,
        format!(
            "default_jurisdiction `{key}` is not declared by any [[jurisdiction]] (declared: {})",
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        ),
    );
}

/// The key of the jurisdiction built from `dsr_deadline_days` when a file
/// declares none.
pub(super) const LEGACY_JURISDICTION: &str = "cn";

/// Policy §XI: "we will reply to your request within 10 days" — calendar days,
/// counted in China Standard Time.
pub(super) fn legacy_jurisdiction(days: u32) -> Jurisdiction {
    Jurisdiction {
        key: LEGACY_JURISDICTION.to_owned(),
        deadline: Period::Days(days),
        extension: None,
        day_kind: DayKind::Calendar,
        holidays: BTreeSet::new(),
        extra_workdays: BTreeSet::new(),
        utc_offset: time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC),
        clause: "§XI".to_owned(),
    }
}

pub(super) fn read_jurisdiction(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    seen: &mut HashMap<String, Range<usize>>,
    readable_keys: &mut usize,
    source: &str,
) -> Option<Jurisdiction> {
    let t = Table::open(ctx, node, "[[jurisdiction]]", JURISDICTION_FIELDS)?;
    let key = t.string(ctx, "key");
    let mut ok = key.is_some();
    if let Some(k) = &key {
        if is_slug(&k.value) {
            *readable_keys += 1;
        }
        if !is_slug(&k.value) {
            ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "jurisdiction key `{}` must be lower-case, ^[a-z][a-z0-9_-]*$ (e.g. `cn`, `eu`)",
                    k.value
                ),
            );
        } else if let Some(first) = seen.get(&k.value) {
            ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "duplicate jurisdiction key `{}` (first declared on line {})",
                    k.value,
                    line_of(source, first)
                ),
            );
        } else {
            seen.insert(k.value.clone(), k.span.clone());
        }
    }
    let deadline = read_period(ctx, &t, "deadline", true);
    let extension = read_period(ctx, &t, "extension", false);
    let day_kind_given = t.get("day_kind").is_some();
    let day_kind = t.opt_enum(ctx, "day_kind", &DayKind::ALL, DayKind::as_str);
    ok &= !day_kind_given || day_kind.is_some();
    let holidays = read_dates(ctx, &t, "holidays");
    let extra = read_dates(ctx, &t, "extra_workdays");
    if let (Some(h), Some(e)) = (&holidays, &extra) {
        for (date, span) in e {
            if h.iter().any(|(d, _)| d == date) {
                ok = false;
                ctx.error(
                    span.clone(),
                    format!("{date} is listed both in `holidays` and in `extra_workdays`"),
                );
            }
        }
    }
    let offset = t.string(ctx, "utc_offset");
    let utc_offset = offset.as_ref().and_then(|o| {
        let parsed = parse_offset(&o.value);
        if parsed.is_none() {
            ctx.error(
                o.span.clone(),
                format!(
                    "utc_offset `{}` must be `+HH:MM` or `-HH:MM`, e.g. \"+08:00\"",
                    o.value
                ),
            );
        }
        parsed
    });
    let clause = t.string(ctx, "clause");
    if !ok {
        return None;
    }
    Some(Jurisdiction {
        key: key?.value,
        deadline: deadline??,
        extension: extension?,
        day_kind: day_kind.map_or(DayKind::Calendar, |d| d.value),
        holidays: holidays?.into_iter().map(|(d, _)| d).collect(),
        extra_workdays: extra?.into_iter().map(|(d, _)| d).collect(),
        utc_offset: utc_offset?,
        clause: clause?.value,
    })
}

/// `{prefix}_days` xor `{prefix}_months`: `Some(None)` when neither is given
/// and that is allowed, `None` after an error.
pub(super) fn read_period(
    ctx: &mut Ctx,
    t: &Table<'_>,
    prefix: &str,
    required: bool,
) -> Option<Option<Period>> {
    let days_name = format!("{prefix}_days");
    let months_name = format!("{prefix}_months");
    // One year, or twelve months: no DSR law in scope gives longer.
    let days = t.opt_integer(ctx, &days_name, 1..367);
    let months = t.opt_integer(ctx, &months_name, 1..13);
    match (t.get(&days_name), t.get(&months_name)) {
        (Some(a), Some(b)) => {
            // Point at whichever of the two comes second in the file.
            let second = if a.span().start > b.span().start {
                a
            } else {
                b
            };
            ctx.error(
                second.span(),
                format!(
                    "set either `{days_name}` or `{months_name}` in {}, not both",
                    t.what
                ),
            );
            None
        }
        (None, None) if required => {
            ctx.error(
                t.span.clone(),
                format!(
                    "missing field `{days_name}` or `{months_name}` in {}",
                    t.what
                ),
            );
            None
        }
        (None, None) => Some(None),
        (Some(_), None) => Some(Some(Period::Days(u32::try_from(days?.value).ok()?))),
        (None, Some(_)) => Some(Some(Period::Months(u32::try_from(months?.value).ok()?))),
    }
}

/// An optional array of `"YYYY-MM-DD"` strings (empty when absent).
pub(super) fn read_dates(
    ctx: &mut Ctx,
    t: &Table<'_>,
    field: &str,
) -> Option<Vec<(time::Date, Range<usize>)>> {
    let Some(node) = t.get(field) else {
        return Some(Vec::new());
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(
            ctx,
            field,
            "an array of \"YYYY-MM-DD\" strings",
            node.get_ref(),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(s) => match parse_date(s) {
                Some(d) => out.push((d, item.span())),
                None => {
                    ok = false;
                    ctx.error(
                        item.span(),
                        format!("`{s}` in `{field}` is not a date of the form YYYY-MM-DD"),
                    );
                }
            },
            other => {
                ok = false;
                let hint = if matches!(other, Node::Datetime) {
                    " (quote it)"
                } else {
                    ""
                };
                ctx.error(
                    item.span(),
                    format!(
                        "`{field}` holds \"YYYY-MM-DD\" strings, found {}{hint}",
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// `YYYY-MM-DD`, exactly, naming a real day.
pub(super) fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    let digits = |r: Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
}

/// `+HH:MM` or `-HH:MM`, hours 00..=23, minutes 00..=59.
pub(super) fn parse_offset(s: &str) -> Option<time::UtcOffset> {
    let b = s.as_bytes();
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign: i8 = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let two = |i: usize| -> Option<i8> {
        let (hi, lo) = (b[i], b[i + 1]);
        (hi.is_ascii_digit() && lo.is_ascii_digit())
            .then(|| i8::try_from((hi - b'0') * 10 + (lo - b'0')).ok())
            .flatten()
    };
    let (hours, minutes) = (two(1)?, two(4)?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    time::UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()
}
