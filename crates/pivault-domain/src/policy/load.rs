//! Building a [`Policy`] from the spanned TOML tree: the `[policy]` header,
//! `[[category]]`, `[[purpose]]` and `[[recipient]]` entries, the cross-checks
//! between them, and the lints. `[dsr]` and `[[jurisdiction]]` are read by
//! [`super::load_dsr`], `[incident]` by [`super::load_incident`].

use std::collections::HashMap;
use std::ops::Range;

use sha2::{Digest, Sha256};

use super::diagnostics::{diagnostics, line_of};
use super::load_dsr::{
    check_default_jurisdiction, legacy_jurisdiction, read_dsr, read_jurisdiction, DsrConfig,
};
use super::load_history::read_history;
use super::load_incident::read_incident;
use super::read::{is_dotted_key, is_segment, is_slug, At, Ctx, Table};
use super::tree::Node;
use super::{
    AnonymizationRule, AnonymizedSet, Category, EndAction, LegalBasis, Policy, Purpose, Recipient,
    RecipientKind, Retention, RetentionClock, RetentionPeriod, Sensitivity, ValueType,
};
use crate::dsr::{DsrSettings, Jurisdiction};
use crate::identifiers::IdentifierKind;
use crate::incident::IncidentPolicy;

pub(super) const POLICY_FIELDS: &[&str] = &[
    "id",
    "version",
    "title",
    "title_zh",
    "storage_region",
    "minor_age",
    "dsr_deadline_days",
];
pub(super) const CATEGORY_FIELDS: &[&str] = &[
    "key",
    "name",
    "name_zh",
    "sensitivity",
    "value_type",
    "identifier",
    "clause",
    "retention",
    "identifying",
    "business_data",
];
pub(super) const RECIPIENT_FIELDS: &[&str] = &[
    "id",
    "name",
    "name_zh",
    "kind",
    "entrusted",
    "region",
    "purposes",
    "categories",
    "clause",
];
pub(super) const RETENTION_FIELDS: &[&str] = &[
    "keep_for",
    "legal_minimum",
    "clock",
    "end",
    "basis",
    "clause",
];
pub(super) const ANONYMIZATION_FIELDS: &[&str] =
    &["set", "categories", "quasi_identifiers", "k_min", "clause"];
pub(super) const PURPOSE_FIELDS: &[&str] = &[
    "id",
    "name",
    "name_zh",
    "clause",
    "legal_basis",
    "categories",
    "fides_use",
    "separate_consent",
];

/// Walks the whole document, recording every problem; returns a policy only
/// when every part could be built (the caller still checks `ctx.errors`).
pub(super) fn build(ctx: &mut Ctx, root: &Node, source: &str) -> Option<Policy> {
    let Node::Table(entries) = root else {
        ctx.error(0..0, "a policy file is a TOML table");
        return None;
    };
    let mut header = None;
    let mut category_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut purpose_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut recipient_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut dsr_node = None;
    let mut incident_node = None;
    let mut jurisdiction_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut anonymization_nodes: &[serde_spanned::Spanned<Node>] = &[];
    let mut version_nodes: &[serde_spanned::Spanned<Node>] = &[];
    for entry in entries {
        let span = entry.key.span.clone().unwrap_or_else(|| entry.value.span());
        match (entry.key.name.as_str(), entry.value.get_ref()) {
            ("policy", _) => header = Some(&entry.value),
            ("category", Node::Array(items)) => category_nodes = items,
            ("purpose", Node::Array(items)) => purpose_nodes = items,
            ("recipient", Node::Array(items)) => recipient_nodes = items,
            ("dsr", _) => dsr_node = Some(&entry.value),
            ("incident", _) => incident_node = Some(&entry.value),
            ("jurisdiction", Node::Array(items)) => jurisdiction_nodes = items,
            ("anonymization", Node::Array(items)) => anonymization_nodes = items,
            ("policy_version", Node::Array(items)) => version_nodes = items,
            (
                name @ ("category" | "purpose" | "recipient" | "jurisdiction" | "anonymization"
                | "policy_version"),
                other,
            ) => ctx.error(
                span,
                format!(
                    "`{name}` must be an array of tables ([[{name}]]), found {}",
                    other.type_name()
                ),
            ),
            (other, _) => ctx.error(
                span,
                format!(
                    "unknown top-level key `{other}`, expected one of: policy, category, purpose, recipient, dsr, jurisdiction, anonymization, incident, policy_version"
                ),
            ),
        }
    }

    let header = match header {
        Some(node) => read_header(ctx, node),
        None => {
            ctx.error(0..0, "missing [policy] table");
            None
        }
    };

    let mut categories: Vec<Category> = Vec::new();
    let mut category_spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut identifier_spans: HashMap<IdentifierKind, Range<usize>> = HashMap::new();
    let mut all_categories_built = true;
    let mut anonymize_spans: Vec<(String, Range<usize>)> = Vec::new();
    for node in category_nodes {
        match read_category(
            ctx,
            node,
            &mut category_spans,
            &mut identifier_spans,
            &mut anonymize_spans,
            source,
        ) {
            Some(c) => categories.push(c),
            None => all_categories_built = false,
        }
    }

    let mut purposes: Vec<Purpose> = Vec::new();
    let mut purpose_spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut all_purposes_built = true;
    for node in purpose_nodes {
        match read_purpose(ctx, node, &category_spans, &mut purpose_spans, source) {
            Some(p) => purposes.push(p),
            None => all_purposes_built = false,
        }
    }

    let mut recipients: Vec<Recipient> = Vec::new();
    let mut all_recipients_built = true;
    for node in recipient_nodes {
        match read_recipient(ctx, node, &category_spans, &purpose_spans, &recipients) {
            Some(r) => recipients.push(r),
            None => all_recipients_built = false,
        }
    }

    let mut anonymization: Vec<AnonymizationRule> = Vec::new();
    let mut all_rules_built = true;
    for node in anonymization_nodes {
        match read_anonymization(ctx, node, &category_spans) {
            Some((rule, span)) => {
                for c in &rule.categories {
                    if let Some(other) = anonymization.iter().find(|r| r.categories.contains(c)) {
                        all_rules_built = false;
                        ctx.error(
                            span.clone(),
                            format!(
                                "category `{c}` is already anonymized by the `{}` rule",
                                other.set.as_str()
                            ),
                        );
                    }
                }
                anonymization.push(rule);
            }
            None => all_rules_built = false,
        }
    }
    if all_rules_built {
        // PIPL Art. 73(4): anonymizing needs a transformation; a category without one can only
        // be deleted.
        for (key, span) in &anonymize_spans {
            if !anonymization.iter().any(|r| r.categories.contains(key)) {
                ctx.error(
                    span.clone(),
                    format!(
                        "`end = \"anonymize\"` on `{key}`, but no [[anonymization]] rule lists this category: add one or use `end = \"delete\"`"
                    ),
                );
            }
        }
    }

    // Policy §X: the version history, checked against the purposes and categories above.
    let versions = read_history(
        ctx,
        version_nodes,
        header.as_ref().map(|h| h.version.as_str()),
        &purpose_spans,
        &category_spans,
        source,
    );

    let dsr = match dsr_node {
        Some(node) => read_dsr(ctx, node),
        None => Some(DsrConfig {
            settings: Some(DsrSettings::default()),
            default_key: Some(DsrSettings::default().default_jurisdiction),
            default_span: None,
        }),
    };
    let mut jurisdictions: Vec<Jurisdiction> = Vec::new();
    let mut jurisdiction_spans: HashMap<String, Range<usize>> = HashMap::new();
    let mut all_jurisdictions_built = true;
    let mut readable_keys = 0;
    for node in jurisdiction_nodes {
        match read_jurisdiction(
            ctx,
            node,
            &mut jurisdiction_spans,
            &mut readable_keys,
            source,
        ) {
            Some(j) => jurisdictions.push(j),
            None => all_jurisdictions_built = false,
        }
    }
    if let Some(d) = &dsr {
        // A jurisdiction whose key could not be read may be the one meant; its
        // own error is already reported.
        if readable_keys == jurisdiction_nodes.len() {
            check_default_jurisdiction(ctx, d, &jurisdiction_spans, jurisdiction_nodes, dsr_node);
        }
    }

    // Policy §8.3–§8.4: a file without `[incident]` gets the defaults.
    let incident = match incident_node {
        Some(node) => read_incident(ctx, node),
        None => Some(IncidentPolicy::default()),
    };

    let header = header?;
    let dsr = dsr?.settings?;
    let incident = incident?;
    let versions = versions?;
    if !all_categories_built
        || !all_purposes_built
        || !all_recipients_built
        || !all_jurisdictions_built
        || !all_rules_built
    {
        return None;
    }
    if jurisdictions.is_empty() {
        jurisdictions.push(legacy_jurisdiction(header.dsr_deadline_days));
    }
    lint_separate_consent(ctx, &categories, &purposes, purpose_nodes);

    let category_index = index(categories.iter().map(|c| c.key.clone()));
    let purpose_index = index(purposes.iter().map(|p| p.id.clone()));
    let identifier_index = categories
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.identifier.map(|k| (k, i)))
        .collect();
    let warnings = diagnostics(source, std::mem::take(&mut ctx.warnings));
    Some(Policy {
        id: header.id,
        version: header.version,
        title: header.title,
        title_zh: header.title_zh,
        storage_region: header.storage_region,
        minor_age: header.minor_age,
        dsr_deadline_days: header.dsr_deadline_days,
        hash: hex::encode(Sha256::digest(source.as_bytes())),
        categories,
        purposes,
        recipients,
        dsr,
        jurisdictions,
        anonymization,
        incident,
        versions,
        category_index,
        purpose_index,
        identifier_index,
        warnings,
    })
}

pub(super) fn index(keys: impl Iterator<Item = String>) -> HashMap<String, usize> {
    keys.enumerate().map(|(i, k)| (k, i)).collect()
}

pub(super) struct Header {
    id: String,
    version: String,
    title: String,
    title_zh: Option<String>,
    storage_region: String,
    minor_age: u8,
    dsr_deadline_days: u32,
}

pub(super) fn read_header(ctx: &mut Ctx, node: &serde_spanned::Spanned<Node>) -> Option<Header> {
    let t = Table::open(ctx, node, "[policy]", POLICY_FIELDS)?;
    let id = t.string(ctx, "id");
    if let Some(id) = &id {
        if !is_slug(&id.value) {
            ctx.error(
                id.span.clone(),
                "`id` in [policy] must match ^[a-z][a-z0-9_-]*$",
            );
        }
    }
    let version = t.string(ctx, "version");
    let title = t.string(ctx, "title");
    let title_zh = t.opt_string(ctx, "title_zh");
    let region = t.string(ctx, "storage_region");
    if let Some(r) = &region {
        if !(r.value.len() == 2 && r.value.bytes().all(|b| b.is_ascii_lowercase())) {
            ctx.error(
                r.span.clone(),
                "`storage_region` must be a lower-case ISO 3166-1 alpha-2 code, e.g. \"cn\"",
            );
        }
    }
    // PIPL Art. 31 sets 14; no law in scope sets a minor age above 18 (Civil
    // Code Art. 17), and 0 would make nobody a minor by accident.
    let minor_age = t.integer(ctx, "minor_age", 1..19);
    let dsr = t.integer(ctx, "dsr_deadline_days", 1..i64::from(u32::MAX) + 1);
    Some(Header {
        id: id?.value,
        version: version?.value,
        title: title?.value,
        title_zh: title_zh.map(|t| t.value),
        storage_region: region?.value,
        minor_age: u8::try_from(minor_age?.value).ok()?,
        dsr_deadline_days: u32::try_from(dsr?.value).ok()?,
    })
}

pub(super) fn read_category(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    seen: &mut HashMap<String, Range<usize>>,
    identifiers: &mut HashMap<IdentifierKind, Range<usize>>,
    anonymize_spans: &mut Vec<(String, Range<usize>)>,
    source: &str,
) -> Option<Category> {
    let t = Table::open(ctx, node, "[[category]]", CATEGORY_FIELDS)?;
    let key = t.string(ctx, "key");
    let mut key_ok = key.is_some();
    if let Some(k) = &key {
        if !is_dotted_key(&k.value) {
            key_ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "category key `{}` must be a dotted key like `user.contact.email` (^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$)",
                    k.value
                ),
            );
        } else if let Some(first) = seen.get(&k.value) {
            key_ok = false;
            ctx.error(
                k.span.clone(),
                format!(
                    "duplicate category key `{}` (first declared on line {})",
                    k.value,
                    line_of(source, first)
                ),
            );
        } else {
            seen.insert(k.value.clone(), k.span.clone());
        }
    }
    let name = t.string(ctx, "name");
    let name_zh = t.opt_string(ctx, "name_zh");
    let sensitivity = t.enumeration(ctx, "sensitivity", &Sensitivity::ALL, Sensitivity::as_str);
    let value_type = t.enumeration(ctx, "value_type", &ValueType::ALL, ValueType::as_str);
    let identifier_given = t.get("identifier").is_some();
    let identifier = t.opt_enum(
        ctx,
        "identifier",
        &IdentifierKind::ALL,
        IdentifierKind::as_str,
    );
    if let Some(id) = &identifier {
        if let Some(first) = identifiers.get(&id.value) {
            ctx.error(
                id.span.clone(),
                format!(
                    "identifier `{}` is already on the category of line {}; a blind-index kind belongs to one category",
                    id.value.as_str(),
                    line_of(source, first)
                ),
            );
        } else {
            identifiers.insert(id.value, id.span.clone());
        }
    }
    if let (Some(id), Some(vt)) = (&identifier, &value_type) {
        if vt.value != ValueType::Text {
            ctx.error(
                vt.span.clone(),
                format!(
                    "a category with `identifier = \"{}\"` holds text, not {}",
                    id.value.as_str(),
                    vt.value.as_str()
                ),
            );
        }
    }
    let identifying = t.opt_bool(ctx, "identifying");
    let business_data = t.opt_bool(ctx, "business_data");
    let clause = t.string(ctx, "clause");
    let retention = match t.get("retention") {
        None => Some(None),
        Some(r) => read_retention(ctx, r).map(Some),
    };
    if let (Some(Some(r)), Some(k)) = (&retention, &key) {
        if r.end == EndAction::Anonymize {
            let span = match t.get("retention").map(|n| (n, n.get_ref())) {
                Some((_, Node::Table(entries))) => entries
                    .iter()
                    .find(|e| e.key.name == "end")
                    .map_or(t.span.clone(), |e| e.value.span()),
                Some((n, _)) => n.span(),
                None => t.span.clone(),
            };
            anonymize_spans.push((k.value.clone(), span));
        }
    }
    if !key_ok || (identifier_given && identifier.is_none()) {
        return None;
    }
    Some(Category {
        key: key?.value,
        name: name?.value,
        name_zh: name_zh.map(|n| n.value),
        sensitivity: sensitivity?.value,
        value_type: value_type?.value,
        identifying: identifying.map_or(identifier.is_some(), |b| b.value),
        business_data: business_data.is_some_and(|b| b.value),
        identifier: identifier.map(|i| i.value),
        clause: clause?.value,
        retention: retention?,
    })
}

pub(super) fn read_retention(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
) -> Option<Retention> {
    let t = Table::open(ctx, node, "retention", RETENTION_FIELDS)?;
    let keep_for = read_period(ctx, &t, "keep_for", true);
    let legal_minimum = read_period(ctx, &t, "legal_minimum", false);
    let clock = t.enumeration(ctx, "clock", &RetentionClock::ALL, RetentionClock::as_str);
    let end = t.enumeration(ctx, "end", &EndAction::ALL, EndAction::as_str);
    let basis = t.string(ctx, "basis");
    let clause = t.string(ctx, "clause");
    let keep_for = keep_for?;
    let legal_minimum = legal_minimum?;
    if let (Some(keep), Some(min)) = (&keep_for, &legal_minimum) {
        if keep.value < min.value {
            // PIPL Art. 47 para. 2: a law's minimum cannot be cut short by the policy.
            ctx.error(
                keep.span.clone(),
                format!(
                    "`keep_for` ({} days) is shorter than `legal_minimum` ({} days): the law's minimum cannot be cut short",
                    keep.value.days(),
                    min.value.days()
                ),
            );
            return None;
        }
    }
    Some(Retention {
        keep_for: keep_for?.value,
        legal_minimum: legal_minimum.map(|m| m.value),
        clock: clock?.value,
        end: end?.value,
        basis: basis?.value,
        clause: clause?.value,
    })
}

/// A period field (`"183d"`, `"26w"`, `"3y"`). `Some(None)` when optional and absent; `None`
/// after reporting an error.
fn read_period(
    ctx: &mut Ctx,
    t: &Table,
    name: &str,
    required: bool,
) -> Option<Option<At<RetentionPeriod>>> {
    let Some(node) = t.get(name) else {
        if required {
            t.missing(ctx, name);
            return None;
        }
        return Some(None);
    };
    match node.get_ref() {
        Node::String(s) => match RetentionPeriod::parse(s) {
            Ok(p) => Some(Some(At {
                value: p,
                span: node.span(),
            })),
            Err(why) => {
                ctx.error(node.span(), format!("`{name}` in retention: {why}"));
                None
            }
        },
        Node::Integer(n) if *n < 0 => {
            ctx.error(
                node.span(),
                format!("`{name}` in retention: a period cannot be negative"),
            );
            None
        }
        other => {
            t.wrong_type(
                ctx,
                name,
                "a period string such as \"183d\", \"26w\" or \"3y\"",
                other,
            );
            None
        }
    }
}

/// One `[[anonymization]]` entry: the set, the categories it covers (each known to the
/// policy), its quasi-identifiers (columns of the set) and `k_min` (default 5, at least 2).
pub(super) fn read_anonymization(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    categories: &HashMap<String, Range<usize>>,
) -> Option<(AnonymizationRule, Range<usize>)> {
    let t = Table::open(ctx, node, "[[anonymization]]", ANONYMIZATION_FIELDS)?;
    let set = t.enumeration(ctx, "set", &AnonymizedSet::ALL, AnonymizedSet::as_str);
    let listed = read_category_list(ctx, &t, categories);
    let qi = read_string_list(ctx, &t, "quasi_identifiers");
    let k_min = t.opt_integer(ctx, "k_min", 2..1_000_001);
    let clause = t.string(ctx, "clause");
    let set = set?;
    let qi = qi?;
    let mut ok = true;
    for q in &qi {
        if !set.value.columns().contains(&q.value.as_str()) {
            ok = false;
            ctx.error(
                q.span.clone(),
                format!(
                    "`{}` is not a column of the `{}` set, expected one of: {}",
                    q.value,
                    set.value.as_str(),
                    set.value.columns().join(", ")
                ),
            );
        }
    }
    if qi.is_empty() {
        ok = false;
        ctx.error(
            t.span.clone(),
            "`quasi_identifiers` in [[anonymization]] must name at least one column",
        );
    }
    if !ok {
        return None;
    }
    Some((
        AnonymizationRule {
            set: set.value,
            categories: listed?,
            quasi_identifiers: qi.into_iter().map(|q| q.value).collect(),
            k_min: k_min.map_or(Some(5), |k| u32::try_from(k.value).ok())?,
            clause: clause?.value,
        },
        t.span.clone(),
    ))
}

/// A required array of non-empty strings, each with its span.
fn read_string_list(ctx: &mut Ctx, t: &Table, name: &str) -> Option<Vec<At<String>>> {
    let Some(node) = t.get(name) else {
        t.missing(ctx, name);
        return None;
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(ctx, name, "an array of strings", node.get_ref());
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(s) if !s.trim().is_empty() => out.push(At {
                value: s.clone(),
                span: item.span(),
            }),
            other => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!(
                        "`{name}` in {} must hold non-empty strings, found {}",
                        t.what,
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

pub(super) fn read_purpose(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    categories: &HashMap<String, Range<usize>>,
    seen: &mut HashMap<String, Range<usize>>,
    source: &str,
) -> Option<Purpose> {
    let t = Table::open(ctx, node, "[[purpose]]", PURPOSE_FIELDS)?;
    let id = t.string(ctx, "id");
    let mut id_ok = id.is_some();
    if let Some(i) = &id {
        if !is_segment(&i.value) {
            id_ok = false;
            ctx.error(
                i.span.clone(),
                format!("purpose id `{}` must match ^[a-z][a-z0-9_]*$", i.value),
            );
        } else if let Some(first) = seen.get(&i.value) {
            id_ok = false;
            ctx.error(
                i.span.clone(),
                format!(
                    "duplicate purpose id `{}` (first declared on line {})",
                    i.value,
                    line_of(source, first)
                ),
            );
        } else {
            seen.insert(i.value.clone(), i.span.clone());
        }
    }
    let name = t.string(ctx, "name");
    let name_zh = t.opt_string(ctx, "name_zh");
    let clause = t.string(ctx, "clause");
    let basis = t.enumeration(ctx, "legal_basis", &LegalBasis::ALL, LegalBasis::as_str);
    let listed = read_category_list(ctx, &t, categories);
    let fides_given = t.get("fides_use").is_some();
    let fides_use = t.opt_string(ctx, "fides_use");
    let mut fides_ok = !fides_given || fides_use.is_some();
    if let Some(f) = &fides_use {
        if !is_dotted_key(&f.value) {
            fides_ok = false;
            ctx.error(
                f.span.clone(),
                format!(
                    "fides_use `{}` must be a dotted key like `essential.service`",
                    f.value
                ),
            );
        }
    }
    let separate_given = t.get("separate_consent").is_some();
    let separate = t.opt_bool(ctx, "separate_consent");
    if let (Some(sep), Some(b)) = (&separate, &basis) {
        if sep.value && b.value != LegalBasis::Consent {
            ctx.error(
                sep.span.clone(),
                format!(
                    "`separate_consent = true` needs `legal_basis = \"consent\"`, not `{}`: separate consent is a kind of consent (PIPL Art. 14)",
                    b.value.as_str()
                ),
            );
            return None;
        }
    }
    if !id_ok || !fides_ok || (separate_given && separate.is_none()) {
        return None;
    }
    Some(Purpose {
        id: id?.value,
        name: name?.value,
        name_zh: name_zh.map(|n| n.value),
        clause: clause?.value,
        legal_basis: basis?.value,
        categories: listed?,
        fides_use: fides_use.map(|f| f.value),
        separate_consent: separate.is_some_and(|s| s.value),
    })
}

pub(super) fn read_recipient(
    ctx: &mut Ctx,
    node: &serde_spanned::Spanned<Node>,
    categories: &HashMap<String, Range<usize>>,
    purposes: &HashMap<String, Range<usize>>,
    earlier: &[Recipient],
) -> Option<Recipient> {
    let t = Table::open(ctx, node, "[[recipient]]", RECIPIENT_FIELDS)?;
    let id = t.string(ctx, "id");
    let mut ok = id.is_some();
    if let Some(i) = &id {
        if !is_slug(&i.value) {
            ok = false;
            ctx.error(
                i.span.clone(),
                format!("recipient id `{}` must match ^[a-z][a-z0-9_-]*$", i.value),
            );
        } else if earlier.iter().any(|r| r.id == i.value) {
            ok = false;
            ctx.error(
                i.span.clone(),
                format!("duplicate recipient id `{}`", i.value),
            );
        }
    }
    let name = t.string(ctx, "name");
    let name_zh = t.opt_string(ctx, "name_zh");
    let kind = t.enumeration(ctx, "kind", &RecipientKind::ALL, RecipientKind::as_str);
    let entrusted = t.opt_bool(ctx, "entrusted");
    let region = t.string(ctx, "region");
    if let Some(r) = &region {
        if r.value.len() != 2 || !r.value.bytes().all(|b| b.is_ascii_lowercase()) {
            ok = false;
            ctx.error(
                r.span.clone(),
                format!(
                    "region `{}` must be a lower-case 2-letter code like `cn`",
                    r.value
                ),
            );
        }
    }
    let clause = t.string(ctx, "clause");
    let purposes = read_key_list(ctx, &t, "purposes", "[[recipient]]", "purpose", purposes);
    let cats = read_key_list(
        ctx,
        &t,
        "categories",
        "[[recipient]]",
        "category",
        categories,
    );
    if !ok {
        return None;
    }
    Some(Recipient {
        id: id?.value,
        name: name?.value,
        name_zh: name_zh.map(|n| n.value),
        kind: kind?.value,
        entrusted: entrusted.is_some_and(|e| e.value),
        region: region?.value,
        purposes: purposes?,
        categories: cats?,
        clause: clause?.value,
    })
}

/// An array field of `table` whose strings must each name a known `what` (once).
pub(super) fn read_key_list(
    ctx: &mut Ctx,
    t: &Table<'_>,
    field: &str,
    table: &str,
    what: &str,
    known: &HashMap<String, Range<usize>>,
) -> Option<Vec<String>> {
    let Some(node) = t.get(field) else {
        t.missing(ctx, field);
        return None;
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(ctx, field, "an array of strings", node.get_ref());
        return None;
    };
    if items.is_empty() {
        ctx.error(
            node.span(),
            format!("`{field}` in {table} must name at least one {what}"),
        );
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(key) if !known.contains_key(key) => {
                ok = false;
                ctx.error(item.span(), format!("unknown {what} `{key}`"));
            }
            Node::String(key) if out.contains(key) => {
                ok = false;
                ctx.error(item.span(), format!("{what} `{key}` is listed twice"));
            }
            Node::String(key) => out.push(key.clone()),
            other => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("`{field}` holds strings, found {}", other.type_name()),
                );
            }
        }
    }
    ok.then_some(out)
}

/// The `categories` array of a purpose: each an existing category, each once.
pub(super) fn read_category_list(
    ctx: &mut Ctx,
    t: &Table<'_>,
    categories: &HashMap<String, Range<usize>>,
) -> Option<Vec<String>> {
    let Some(node) = t.get("categories") else {
        t.missing(ctx, "categories");
        return None;
    };
    let Node::Array(items) = node.get_ref() else {
        t.wrong_type(
            ctx,
            "categories",
            "an array of category keys",
            node.get_ref(),
        );
        return None;
    };
    if items.is_empty() {
        ctx.error(
            node.span(),
            "`categories` in [[purpose]] must name at least one category (PIPL Art. 6: a purpose uses some PI, the minimum necessary)",
        );
        return None;
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match item.get_ref() {
            Node::String(key) if !categories.contains_key(key) => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!("unknown category `{key}`: no [[category]] has this key"),
                );
            }
            Node::String(key) if out.contains(key) => {
                ok = false;
                ctx.error(item.span(), format!("category `{key}` is listed twice"));
            }
            Node::String(key) => out.push(key.clone()),
            other => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!(
                        "`categories` in [[purpose]] holds category keys (strings), found {}",
                        other.type_name()
                    ),
                );
            }
        }
    }
    ok.then_some(out)
}

/// PIPL Art. 29: sensitive PI processed on consent needs separate consent. Not
/// an error: the decision withholds each sensitive category until a separate
/// consent is on record, whatever the flag, so the flag only says whether the
/// purpose's other categories need one too. A warning says so.
pub(super) fn lint_separate_consent(
    ctx: &mut Ctx,
    categories: &[Category],
    purposes: &[Purpose],
    nodes: &[serde_spanned::Spanned<Node>],
) {
    for (purpose, node) in purposes.iter().zip(nodes) {
        if purpose.legal_basis != LegalBasis::Consent || purpose.separate_consent {
            continue;
        }
        let sensitive: Vec<&str> = purpose
            .categories
            .iter()
            .filter(|key| {
                categories
                    .iter()
                    .any(|c| &c.key == *key && c.is_sensitive())
            })
            .map(String::as_str)
            .collect();
        if !sensitive.is_empty() {
            ctx.warn(
                node.span(),
                format!(
                    "consent-based purpose `{}` uses sensitive PI ({}) without `separate_consent = true`: a general opt-in releases its other categories, and these only after a separate consent (PIPL Art. 29); set it if every use needs one",
                    purpose.id,
                    sensitive.join(", ")
                ),
            );
        }
    }
}
