//! Reading the `[[policy_version]]` entries of a policy file, with their
//! `[[policy_version.change]]` entries, into the version history ([`PolicyVersion`]).

use std::collections::HashMap;
use std::ops::Range;

use super::diagnostics::line_of;
use super::history::{PolicyChange, PolicyVersion};
use super::load_dsr::parse_date;
use super::read::{At, Ctx, Table};
use super::tree::Node;

pub(super) const VERSION_FIELDS: &[&str] =
    &["version", "published", "text", "text_sha256", "change"];
pub(super) const CHANGE_FIELDS: &[&str] = &["summary", "material", "purposes", "categories"];

/// The history, or `None` when any entry is wrong (every problem reported). `header_version`
/// is `[policy] version` (with its span when known): the last entry must be it.
pub(super) fn read_history(
    ctx: &mut Ctx,
    nodes: &[serde_spanned::Spanned<Node>],
    header_version: Option<&str>,
    purposes: &HashMap<String, Range<usize>>,
    categories: &HashMap<String, Range<usize>>,
    source: &str,
) -> Option<Vec<PolicyVersion>> {
    let mut out: Vec<PolicyVersion> = Vec::with_capacity(nodes.len());
    let mut spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut ok = true;
    let mut last_span = None;
    let mut previous: Option<(time::Date, String)> = None;
    for node in nodes {
        match read_version(ctx, node, purposes, categories) {
            Some((v, version_span, published_span)) => {
                if let Some(first) = spans.get(&v.version) {
                    ok = false;
                    ctx.error(
                        version_span.clone(),
                        format!(
                            "duplicate policy version `{}` (first declared on line {})",
                            v.version,
                            line_of(source, first)
                        ),
                    );
                } else {
                    spans.insert(v.version.clone(), version_span.clone());
                }
                if let Some((date, label)) = &previous {
                    if v.published <= *date {
                        ok = false;
                        ctx.error(
                            published_span,
                            format!(
                                "policy version `{}` is published on {}, not after version `{label}` ({date}): [[policy_version]] entries are listed oldest first, each published later than the one before",
                                v.version, v.published
                            ),
                        );
                    }
                }
                previous = Some((v.published, v.version.clone()));
                last_span = Some(version_span);
                out.push(v);
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    if let (Some(last), Some(span), Some(header)) = (out.last(), last_span, header_version) {
        if last.version != header {
            ctx.error(
                span,
                format!(
                    "the last [[policy_version]] is `{}`, but [policy] version is `{header}`: the history ends with the version in force",
                    last.version
                ),
            );
            return None;
        }
    }
    Some(out)
}

/// One `[[policy_version]]`, with the spans of its `version` and `published`.
fn read_version(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    purposes: &HashMap<String, Range<usize>>,
    categories: &HashMap<String, Range<usize>>,
) -> Option<(PolicyVersion, Range<usize>, Range<usize>)> {
    let t = Table::open(ctx, node, "[[policy_version]]", VERSION_FIELDS)?;
    let version = t.string(ctx, "version");
    let published = t.string(ctx, "published");
    let date = published.as_ref().and_then(|p| {
        let d = parse_date(p.value.trim());
        if d.is_none() {
            ctx.error(
                p.span.clone(),
                format!(
                    "`published` in [[policy_version]] is a date of the form YYYY-MM-DD, found `{}`",
                    p.value
                ),
            );
        }
        d
    });
    let text_given = t.get("text").is_some();
    let text = t.opt_string(ctx, "text");
    let mut ok = !text_given || text.is_some();
    if let Some(p) = &text {
        if !is_relative_path(&p.value) {
            ok = false;
            ctx.error(
                p.span.clone(),
                "`text` in [[policy_version]] is a path relative to the policy file, without `..` (e.g. \"text/2024-12-04.txt\")",
            );
        }
    }
    let sha_given = t.get("text_sha256").is_some();
    let sha = t.opt_string(ctx, "text_sha256");
    ok &= !sha_given || sha.is_some();
    if let Some(s) = &sha {
        if !(s.value.len() == 64
            && s.value
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            ok = false;
            ctx.error(
                s.span.clone(),
                "`text_sha256` in [[policy_version]] is 64 lower-case hex digits (the SHA-256 of the text file)",
            );
        }
    }
    match (&text, &sha) {
        (Some(p), None) if !sha_given => {
            ok = false;
            ctx.error(
                p.span.clone(),
                "a [[policy_version]] with `text` needs `text_sha256`, the SHA-256 of the text, so a published text cannot change unnoticed",
            );
        }
        (None, Some(s)) if !text_given => {
            ok = false;
            ctx.error(
                s.span.clone(),
                "`text_sha256` without `text` in [[policy_version]]: name the text file too",
            );
        }
        _ => {}
    }
    let changes = match t.get("change") {
        None => Some(Vec::new()),
        Some(n) => match n.get_ref() {
            Node::Array(items) => {
                let mut list = Vec::with_capacity(items.len());
                let mut all = true;
                for item in items {
                    match read_change(ctx, item, purposes, categories) {
                        Some(c) => list.push(c),
                        None => all = false,
                    }
                }
                all.then_some(list)
            }
            other => {
                ctx.error(
                    n.span(),
                    format!(
                        "`change` in [[policy_version]] must be an array of tables ([[policy_version.change]]), found {}",
                        other.type_name()
                    ),
                );
                None
            }
        },
    };
    if !ok {
        return None;
    }
    let version = version?;
    let published = published?;
    Some((
        PolicyVersion {
            version: version.value,
            published: date?,
            text_path: text.map(|p| p.value),
            text_sha256: sha.map(|s| s.value),
            text: None,
            changes: changes?,
        },
        version.span,
        published.span,
    ))
}

/// One `[[policy_version.change]]`: a summary, `material`, and at least one purpose or
/// category, each declared in the policy.
fn read_change(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    purposes: &HashMap<String, Range<usize>>,
    categories: &HashMap<String, Range<usize>>,
) -> Option<PolicyChange> {
    let t = Table::open(ctx, node, "[[policy_version.change]]", CHANGE_FIELDS)?;
    let summary = t.string(ctx, "summary");
    let material = match t.opt_bool(ctx, "material") {
        Some(m) => Some(m.value),
        None => {
            if t.get("material").is_none() {
                t.missing(ctx, "material");
            }
            None
        }
    };
    let ps = opt_key_list(ctx, &t, "purposes", "purpose", purposes);
    let cs = opt_key_list(ctx, &t, "categories", "category", categories);
    let (ps, cs) = (ps?, cs?);
    if ps.is_empty() && cs.is_empty() {
        ctx.error(
            t.span.clone(),
            "a [[policy_version.change]] names the `purposes` and/or `categories` it touches (at least one)",
        );
        return None;
    }
    Some(PolicyChange {
        summary: summary?.value.trim().to_string(),
        material: material?,
        purposes: ps,
        categories: cs,
    })
}

/// An optional array of strings, each a known `what` named once; empty when absent.
fn opt_key_list(
    ctx: &mut Ctx,
    t: &Table<'_>,
    field: &str,
    what: &str,
    known: &HashMap<String, Range<usize>>,
) -> Option<Vec<String>> {
    let Some(node) = t.get(field) else {
        return Some(Vec::new());
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(ctx, field, "an array of strings", node.get_ref());
        return None;
    };
    let mut out: Vec<At<String>> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(key) if !known.contains_key(key) => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("unknown {what} `{key}` in [[policy_version.change]]"),
                );
            }
            Node::String(key) if out.iter().any(|a| &a.value == key) => {
                ok = false;
                ctx.error(item.span(), format!("{what} `{key}` is listed twice"));
            }
            Node::String(key) => out.push(At {
                value: key.clone(),
                span: item.span(),
            }),
            other => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("`{field}` holds strings, found {}", other.type_name()),
                );
            }
        }
    }
    ok.then(|| out.into_iter().map(|a| a.value).collect())
}

/// A relative path without `..`, absolute roots or backslashes.
fn is_relative_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\\')
        && !p.contains(':')
        && p.split('/').all(|s| !s.is_empty() && s != "..")
}
