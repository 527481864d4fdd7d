use std::path::PathBuf;

use proptest::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::dsr::{DayKind, Period};

fn repo_file(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn default_source() -> String {
    repo_file("../../policies/default.toml")
}

fn default_policy() -> Policy {
    let source = default_source();
    match Policy::parse(&source) {
        Ok(p) => p,
        Err(e) => panic!(
            "default.toml is invalid:\n{}",
            e.render("policies/default.toml")
        ),
    }
}

/// A valid minimal policy; tests append to it or edit it.
const HEADER: &str = r#"[policy]
id = "demo"
version = "2024-12-04"
title = "Demo"
storage_region = "cn"
minor_age = 14
dsr_deadline_days = 10
"#;

const MOBILE: &str = r#"
[[category]]
key = "user.contact.mobile"
name = "Mobile"
sensitivity = "personal"
value_type = "text"
identifier = "mobile"
clause = "§2.2.1"
"#;

fn errors(source: &str) -> Vec<Diagnostic> {
    match Policy::parse(source) {
        Ok(_) => panic!("expected errors for:\n{source}"),
        Err(e) => e.0,
    }
}

/// `(line, column, message)` of the only error.
fn only_error(source: &str) -> (usize, usize, String) {
    let errs = errors(source);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    let d = &errs[0];
    (d.line, d.column, d.message.clone())
}

#[test]
fn default_policy_parses_with_the_header_of_the_seed_policy() {
    let p = default_policy();
    assert_eq!(p.id(), "inspur-cloud");
    assert_eq!(p.version(), "2024-12-04");
    assert_eq!(p.title(), "Inspur Cloud Legal Statement and Privacy Policy");
    assert_eq!(p.storage_region(), "cn");
    assert_eq!(p.minor_age(), 14);
    assert_eq!(p.dsr_deadline_days(), 10);
    assert_eq!(p.hash().len(), 64);
    // The one warning is deliberate: a general marketing opt-in is not a separate consent, so
    // marketing reads withhold the (sensitive) email unless a separate consent was given.
    assert_eq!(p.warnings().len(), 1, "{:#?}", p.warnings());
    assert!(p.warnings()[0].message.contains("marketing"));
}

#[test]
fn default_policy_declares_every_required_category() {
    let p = default_policy();
    let required = [
        "user.account.id",
        "user.name",
        "user.contact.mobile",
        "user.contact.email",
        "user.contact.address",
        "user.contact.province",
        "user.demographic.date_of_birth",
        "user.government_id.id_card",
        "user.biometric.face",
        "user.device.id",
        "user.device.model",
        "user.device.os",
        "user.network.ip",
        "user.financial.bank_card",
        "user.account.registered_at",
        "user.location.region",
        "user.guardian.name",
        "user.guardian.mobile",
        "user.transaction.order",
        "user.transaction.amount",
        "user.transaction.paid_at",
        "user.transaction.invoice",
        "user.behavior.web_log",
        "user.support.ticket",
        "user.icp.filing",
        "user.business_contact.name",
        "user.business_contact.mobile",
        "user.business_contact.email",
        "user.business_contact.title",
    ];
    for key in required {
        assert!(p.category(key).is_some(), "{key} missing");
    }
    use Sensitivity::*;
    let expect = [
        ("user.contact.email", Sensitive),
        ("user.government_id.id_card", Sensitive),
        ("user.biometric.face", Sensitive),
        ("user.device.id", Sensitive),
        ("user.network.ip", Sensitive),
        ("user.financial.bank_card", Sensitive),
        ("user.device.model", NonPersonal),
        ("user.device.os", NonPersonal),
        ("user.account.id", Personal),
        ("user.contact.mobile", Personal),
    ];
    for (key, s) in expect {
        assert_eq!(p.category(key).unwrap().sensitivity, s, "{key}");
    }
    assert_eq!(
        p.category("user.biometric.face").unwrap().value_type,
        ValueType::Binary
    );
    assert_eq!(
        p.category("user.transaction.amount").unwrap().value_type,
        ValueType::Number
    );
    assert_eq!(
        p.category("user.transaction.paid_at").unwrap().value_type,
        ValueType::Timestamp
    );
}

#[test]
fn default_policy_keeps_transactions_three_years_and_logs_six_months() {
    let p = default_policy();
    for key in [
        "user.transaction.order",
        "user.transaction.amount",
        "user.transaction.paid_at",
        "user.transaction.invoice",
    ] {
        let r = p.category(key).unwrap().retention.as_ref().unwrap();
        assert_eq!(
            (r.legal_minimum.map(RetentionPeriod::days), r.clock, r.end),
            (
                Some(1096),
                RetentionClock::Transaction,
                EndAction::Anonymize
            ),
            "{key}"
        );
        assert!(r.basis.contains("E-Commerce Law Art. 31"));
        assert_eq!(
            p.anonymization_for(key).map(|a| a.set),
            Some(AnonymizedSet::Order)
        );
    }
    let log = p
        .category("user.behavior.web_log")
        .unwrap()
        .retention
        .as_ref()
        .unwrap();
    assert_eq!(
        (
            log.legal_minimum.map(RetentionPeriod::days),
            log.clock,
            log.end
        ),
        (Some(183), RetentionClock::Collected, EndAction::Anonymize)
    );
    let weblog = p.anonymization(AnonymizedSet::Weblog).unwrap();
    assert_eq!(weblog.k_min, 5);
    // Every category has a rule (issue 12: real periods for every category), and only the
    // legally retained ones survive an erasure.
    for c in p.categories() {
        let r = c.retention.as_ref().unwrap_or_else(|| panic!("{}", c.key));
        assert!(
            r.keep_for >= r.legal_minimum.unwrap_or(r.keep_for),
            "{}",
            c.key
        );
        assert!(!r.basis.is_empty() && !r.clause.is_empty(), "{}", c.key);
    }
    let mobile = p.category("user.contact.mobile").unwrap();
    assert!(mobile.legal_minimum().is_none());
    assert_eq!(
        mobile.retention.as_ref().unwrap().clock,
        RetentionClock::AccountClosed
    );
}

#[test]
fn default_policy_maps_each_identifier_kind_to_its_category() {
    let p = default_policy();
    let expect = [
        (IdentifierKind::AccountId, "user.account.id"),
        (IdentifierKind::Mobile, "user.contact.mobile"),
        (IdentifierKind::Email, "user.contact.email"),
        (IdentifierKind::IdCard, "user.government_id.id_card"),
        (IdentifierKind::GuardianMobile, "user.guardian.mobile"),
    ];
    for (kind, key) in expect {
        assert_eq!(p.identifier_category(kind).unwrap().key, key);
    }
}

#[test]
fn default_policy_purposes_have_the_right_legal_basis() {
    let p = default_policy();
    use LegalBasis::*;
    let expect = [
        ("service", Contract, false),
        ("maintenance", Contract, false),
        ("security", LegalObligation, false),
        ("legal_obligation", LegalObligation, false),
        ("icp_filing", LegalObligation, false),
        ("marketing", Consent, false),
        ("personalised_ads", Consent, true),
        ("biometric_login", Consent, true),
        ("share_with_partners", Consent, true),
        ("cross_border_transfer", Consent, true),
    ];
    for (id, basis, separate) in expect {
        let purpose = p.purpose(id).unwrap_or_else(|| panic!("{id} missing"));
        assert_eq!(
            (purpose.legal_basis, purpose.separate_consent),
            (basis, separate),
            "{id}"
        );
    }
    assert_eq!(p.purposes().len(), expect.len());
    let marketing = p.purpose("marketing").unwrap();
    assert!(marketing.allows("user.contact.email"));
    assert!(!marketing.allows("user.government_id.id_card"));
    let bio = p.purpose("biometric_login").unwrap();
    assert!(bio.allows("user.biometric.face") && bio.allows("user.account.id"));
    let legal = p.purpose("legal_obligation").unwrap();
    for key in [
        "user.government_id.id_card",
        "user.name",
        "user.transaction.order",
        "user.icp.filing",
        "user.behavior.web_log",
    ] {
        assert!(legal.allows(key), "{key}");
    }
}

#[test]
fn every_consent_purpose_in_the_seed_data_is_declared() {
    let p = default_policy();
    let events = repo_file("../../../shared/data/zh_CN-10k/consent_events.csv");
    for line in events.lines().skip(1) {
        let purpose = line.split(',').nth(2).unwrap();
        assert!(p.purpose(purpose).is_some(), "{purpose}");
    }
}

#[test]
fn fides_uses_exist_in_the_fideslang_taxonomy() {
    let uses = repo_file("../../../shared/data/fideslang-3.1.4/data_uses.csv");
    let keys: Vec<&str> = uses
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .collect();
    for purpose in default_policy().purposes() {
        if let Some(f) = &purpose.fides_use {
            assert!(keys.contains(&f.as_str()), "{}: {f}", purpose.id);
        }
    }
}

#[test]
fn hash_is_the_sha256_of_the_source() {
    let source = format!("{HEADER}{MOBILE}");
    let p = Policy::parse(&source).unwrap();
    // sha256 of the text, independently computed.
    assert_eq!(p.hash(), hex::encode(Sha256::digest(source.as_bytes())));
    let edited = Policy::parse(&format!("{source}\n# edited\n")).unwrap();
    assert_ne!(p.hash(), edited.hash());
}

#[test]
fn a_minimal_policy_needs_no_categories_or_purposes() {
    let p = Policy::parse(HEADER).unwrap();
    assert!(p.categories().is_empty() && p.purposes().is_empty());
    assert!(p.identifier_category(IdentifierKind::Mobile).is_none());
    assert!(p.category("user.contact.mobile").is_none());
}

#[test]
fn syntax_errors_point_at_the_offending_spot() {
    let (line, col, msg) = only_error("[policy]\nid = \"demo\nversion = 1\n");
    assert_eq!((line, col), (2, 11), "{msg}");
    let (line, col, _) = only_error("[policy]\nminor_age = = 3\n");
    assert_eq!((line, col), (2, 13));
}

#[test]
fn unknown_fields_are_reported_at_their_key() {
    let src = format!("{HEADER}colour = \"red\"\n");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (8, 1));
    assert!(msg.contains("unknown field `colour` in [policy]"), "{msg}");

    let src = format!("{HEADER}{MOBILE}  sensitive = true\n");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (16, 3));
    assert!(
        msg.contains("unknown field `sensitive` in [[category]]"),
        "{msg}"
    );

    let (line, col, msg) = only_error(&format!("{HEADER}[extra]\n"));
    assert_eq!((line, col), (8, 2), "{msg}");
}

#[test]
fn bad_enum_values_are_reported_at_the_value() {
    let src = format!("{HEADER}{}", MOBILE.replace("\"personal\"", "\"secret\""));
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (12, 15));
    assert!(msg.contains("unknown sensitivity `secret`"), "{msg}");
    assert!(msg.contains("sensitive, personal, non_personal"), "{msg}");

    let src = format!("{HEADER}{}", MOBILE.replace("\"mobile\"", "\"phone\""));
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (14, 14));
    assert!(msg.contains("unknown identifier `phone`"), "{msg}");

    let src = format!(
        "{HEADER}{MOBILE}\n[[purpose]]\nid = \"p\"\nname = \"P\"\nclause = \"§1\"\nlegal_basis = \"vibes\"\ncategories = [\"user.contact.mobile\"]\n"
    );
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (21, 15));
    assert!(msg.contains("unknown legal_basis `vibes`"), "{msg}");
}

#[test]
fn missing_fields_point_at_their_table_header() {
    let src = format!("{HEADER}\n[[category]]\nkey = \"user.name\"\n");
    let errs = errors(&src);
    let missing: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(errs.len(), 4, "{missing:#?}");
    for d in &errs {
        assert_eq!((d.line, d.column), (9, 1));
    }
    for f in ["name", "sensitivity", "value_type", "clause"] {
        assert!(missing.iter().any(|m| m.contains(&format!("`{f}`"))), "{f}");
    }
    let (line, col, msg) = only_error("# nothing\n");
    assert_eq!((line, col), (1, 1));
    assert!(msg.contains("missing [policy]"));
}

#[test]
fn wrong_types_are_reported_with_what_was_found() {
    let src = HEADER.replace("minor_age = 14", "minor_age = \"14\"");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (6, 13));
    assert!(msg.contains("must be an integer, found string"), "{msg}");

    let src = HEADER.replace("\"2024-12-04\"", "2024-12-04");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (3, 11));
    assert!(msg.contains("found datetime (quote it)"), "{msg}");
}

#[test]
fn duplicate_category_keys_point_at_the_duplicate() {
    let src = format!(
        "{HEADER}{MOBILE}{}",
        MOBILE.replace("identifier = \"mobile\"\n", "")
    );
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (18, 7));
    assert!(
        msg.contains("duplicate category key `user.contact.mobile` (first declared on line 10)"),
        "{msg}"
    );
}

fn purpose(id: &str, basis: &str, categories: &str, extra: &str) -> String {
    format!(
        "\n[[purpose]]\nid = \"{id}\"\nname = \"P\"\nclause = \"§2.2\"\nlegal_basis = \"{basis}\"\ncategories = {categories}\n{extra}"
    )
}

#[test]
fn duplicate_purpose_ids_point_at_the_duplicate() {
    let p = purpose("service", "contract", "[\"user.contact.mobile\"]", "");
    let src = format!("{HEADER}{MOBILE}{p}{p}");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (25, 6));
    assert!(
        msg.contains("duplicate purpose id `service` (first declared on line 18)"),
        "{msg}"
    );
}

#[test]
fn unknown_categories_in_a_purpose_point_at_the_string() {
    let p = purpose(
        "service",
        "contract",
        "[\"user.contact.mobile\", \"user.contact.fax\", \"user.contact.mobile\"]",
        "",
    );
    let src = format!("{HEADER}{MOBILE}{p}");
    let errs = errors(&src);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert_eq!((errs[0].line, errs[0].column), (22, 38));
    assert!(errs[0]
        .message
        .contains("unknown category `user.contact.fax`"));
    assert_eq!((errs[1].line, errs[1].column), (22, 58));
    assert!(errs[1].message.contains("listed twice"));
}

#[test]
fn malformed_dotted_keys_are_rejected() {
    for bad in [
        "User.name",
        "user..name",
        "user.name.",
        ".user",
        "user.1name",
        "user-name",
        "user.na me",
        "用户",
    ] {
        let src = format!("{HEADER}{}", MOBILE.replace("user.contact.mobile", bad));
        let (line, col, msg) = only_error(&src);
        assert_eq!((line, col), (10, 7), "{bad}");
        assert!(msg.contains("must be a dotted key"), "{msg}");
    }
    for good in ["user", "user.name", "user.a_1.b2"] {
        let src = format!("{HEADER}{}", MOBILE.replace("user.contact.mobile", good));
        assert!(Policy::parse(&src).is_ok(), "{good}");
    }
}

#[test]
fn one_identifier_kind_on_two_categories_is_rejected() {
    let second = MOBILE.replace("user.contact.mobile", "user.guardian.mobile");
    let src = format!("{HEADER}{MOBILE}{second}");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (22, 14));
    assert!(
        msg.contains("identifier `mobile` is already on the category of line 14"),
        "{msg}"
    );
}

#[test]
fn an_identifier_category_must_hold_text() {
    let src = format!("{HEADER}{}", MOBILE.replace("\"text\"", "\"binary\""));
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (13, 14));
    assert!(msg.contains("holds text, not binary"), "{msg}");
}

#[test]
fn minor_age_must_be_between_1_and_18() {
    for bad in ["0", "19", "-1", "255", "99999999999"] {
        let src = HEADER.replace("minor_age = 14", &format!("minor_age = {bad}"));
        let (line, col, msg) = only_error(&src);
        assert_eq!((line, col), (6, 13), "{bad}");
        assert!(msg.contains("between 1 and 18"), "{msg}");
    }
    for good in ["1", "14", "18"] {
        let src = HEADER.replace("minor_age = 14", &format!("minor_age = {good}"));
        assert_eq!(Policy::parse(&src).unwrap().minor_age().to_string(), good);
    }
}

fn with_retention(fields: &str) -> String {
    format!("{HEADER}{MOBILE}retention = {{ {fields} }}\n")
}

#[test]
fn retention_periods_parse_in_days_weeks_and_years() {
    for (text, days) in [("0d", 0), ("183d", 183), ("26w", 182), ("3y", 1095)] {
        assert_eq!(RetentionPeriod::parse(text).unwrap().days(), days, "{text}");
    }
    let p = Policy::parse(&with_retention(
        r#"keep_for = "2y", legal_minimum = "183d", clock = "last_activity", end = "delete", basis = "law", clause = "§4.2""#,
    ))
    .unwrap();
    let r = p
        .category("user.contact.mobile")
        .unwrap()
        .retention
        .clone()
        .unwrap();
    assert_eq!(r.keep_for.days(), 730);
    assert_eq!(r.legal_minimum_seconds(), Some(183 * 86_400));
}

#[test]
fn bad_retention_is_refused_with_its_position() {
    // Line 16 is the retention line; columns point at the offending value.
    let cases = [
        (
            r#"keep_for = "-30d", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "cannot be negative",
        ),
        (
            r#"keep_for = -30, clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "cannot be negative",
        ),
        (
            r#"keep_for = "six months", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "whole number followed by d, w or y",
        ),
        (
            r#"keep_for = "30", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "needs a unit",
        ),
        (
            r#"keep_for = "3mo", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "unknown period unit",
        ),
        (
            r#"keep_for = "200y", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "at most 36500 days",
        ),
        (
            r#"keep_for = "30d", clock = "deletion", end = "delete", basis = "law", clause = "§4.2""#,
            "unknown clock `deletion`",
        ),
        (
            r#"keep_for = "30d", clock = "collected", end = "archive", basis = "law", clause = "§4.2""#,
            "unknown end `archive`",
        ),
        (
            r#"keep_for = "30d", legal_minimum = "183d", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "shorter than `legal_minimum`",
        ),
        (
            r#"keep_for = "30d", clock = "collected", end = "anonymize", basis = "law", clause = "§4.2""#,
            "no [[anonymization]] rule lists this category",
        ),
        (
            r#"min_days = 30, keep_for = "30d", clock = "collected", end = "delete", basis = "law", clause = "§4.2""#,
            "unknown field `min_days` in retention",
        ),
    ];
    for (fields, want) in cases {
        let src = with_retention(fields);
        let (line, col, msg) = only_error(&src);
        assert_eq!(line, 16, "{fields}: {msg}");
        assert!(col > 13, "{fields}: column {col}");
        assert!(msg.contains(want), "{fields}: {msg}");
    }
}

#[test]
fn an_anonymization_rule_names_known_categories_and_columns() {
    let base = with_retention(
        r#"keep_for = "30d", clock = "collected", end = "anonymize", basis = "law", clause = "§4.2""#,
    );
    let ok = format!(
        "{base}\n[[anonymization]]\nset = \"weblog\"\ncategories = [\"user.contact.mobile\"]\nquasi_identifiers = [\"client_net\"]\nclause = \"§4.2\"\n"
    );
    let p = Policy::parse(&ok).unwrap();
    assert_eq!(p.anonymization(AnonymizedSet::Weblog).unwrap().k_min, 5);
    let (_, _, msg) = only_error(&ok.replace("\"client_net\"", "\"mobile\""));
    assert!(msg.contains("not a column of the `weblog` set"), "{msg}");
    let (_, _, msg) = only_error(&ok.replace("\"weblog\"", "\"faces\""));
    assert!(msg.contains("unknown set `faces`"), "{msg}");
    let (_, _, msg) =
        only_error(&ok.replace("clause = \"§4.2\"\n", "clause = \"§4.2\"\nk_min = 1\n"));
    assert!(msg.contains("`k_min`"), "{msg}");
}

#[test]
fn separate_consent_on_a_non_consent_purpose_is_rejected() {
    let p = purpose(
        "service",
        "contract",
        "[\"user.contact.mobile\"]",
        "separate_consent = true\n",
    );
    let src = format!("{HEADER}{MOBILE}{p}");
    let (line, col, msg) = only_error(&src);
    assert_eq!((line, col), (23, 20));
    assert!(msg.contains("needs `legal_basis = \"consent\"`"), "{msg}");

    let p = purpose(
        "marketing",
        "consent",
        "[\"user.contact.mobile\"]",
        "separate_consent = true\n",
    );
    assert!(
        Policy::parse(&format!("{HEADER}{MOBILE}{p}"))
            .unwrap()
            .purpose("marketing")
            .unwrap()
            .separate_consent
    );
    let p = purpose(
        "marketing",
        "consent",
        "[\"user.contact.mobile\"]",
        "separate_consent = false\n",
    );
    assert!(
        !Policy::parse(&format!("{HEADER}{MOBILE}{p}"))
            .unwrap()
            .purpose("marketing")
            .unwrap()
            .separate_consent
    );
}

#[test]
fn sensitive_pi_on_plain_consent_is_a_warning_not_an_error() {
    let sensitive = MOBILE.replace("\"personal\"", "\"sensitive\"");
    let p = purpose("marketing", "consent", "[\"user.contact.mobile\"]", "");
    let policy = Policy::parse(&format!("{HEADER}{sensitive}{p}")).unwrap();
    let w = policy.warnings();
    assert_eq!(w.len(), 1, "{w:#?}");
    assert_eq!((w[0].line, w[0].column), (17, 1));
    assert!(w[0].message.contains("PIPL Art. 29"));
    assert!(w[0]
        .render("x.toml", "warning")
        .starts_with("x.toml:17:1: warning: "));
}

#[test]
fn every_error_in_a_file_is_reported_at_once_in_order() {
    let src = "\
[policy]
id = \"Demo Policy\"
version = \"2024-12-04\"
storage_region = \"China\"
minor_age = 21
dsr_deadline_days = 0
owner = \"me\"

[[category]]
key = \"user.contact.mobile\"
name = \"Mobile\"
sensitivity = \"personal\"
value_type = \"string\"
identifier = \"mobile\"
clause = \"§2.2.1\"

[[category]]
key = \"user.contact.mobile\"
name = \"Mobile again\"
sensitivity = \"personal\"
value_type = \"text\"
identifier = \"mobile\"
clause = \"§2.2.1\"

[[purpose]]
id = \"service\"
name = \"Service\"
clause = \"§2.2.1\"
legal_basis = \"contract\"
categories = [\"user.contact.mobile\", \"user.contact.pager\"]
separate_consent = true
";
    let errs = errors(src);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        vec![
            (1, 1),
            (2, 6),
            (4, 18),
            (5, 13),
            (6, 21),
            (7, 1),
            (13, 14),
            (18, 7),
            (22, 14),
            (30, 38),
            (31, 20)
        ],
        "{}",
        PolicyErrors(errs.clone())
    );
    let rendered = PolicyErrors(errs).render("policies/bad.toml");
    assert_eq!(rendered.lines().count(), 11);
    assert!(
        rendered.starts_with("policies/bad.toml:1:1: error: missing field `title` in [policy]\n")
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let src = format!(
        "{HEADER}{}",
        MOBILE.replace(
            "name = \"Mobile\"",
            "name = \"手机号码\"  \nsensitivity2 = 1"
        )
    );
    let src = src.replace("clause = \"§2.2.1\"", "clause = \"§2.2.1\"; x = 1");
    let (line, col, _) = only_error(&src);
    // The TOML parser stops at the first syntax error: `;` after `"§2.2.1"`.
    assert_eq!((line, col), (16, 18));
}

#[test]
fn errors_display_one_per_line() {
    let e = PolicyErrors(vec![
        Diagnostic {
            line: 1,
            column: 2,
            message: "a".into(),
        },
        Diagnostic {
            line: 3,
            column: 4,
            message: "b".into(),
        },
    ]);
    assert_eq!(e.to_string(), "1:2: a\n3:4: b");
    assert_eq!(
        e.render("f.toml"),
        "f.toml:1:2: error: a\nf.toml:3:4: error: b\n"
    );
}

#[test]
fn legal_bases_name_their_pipl_article() {
    let articles: Vec<&str> = LegalBasis::ALL.iter().map(|b| b.pipl_article()).collect();
    assert_eq!(articles[0], "PIPL Art. 13(1)");
    assert_eq!(articles[6], "PIPL Art. 13(7)");
    for b in LegalBasis::ALL {
        assert_eq!(LegalBasis::parse_name(b.as_str()), Some(b));
    }
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = Policy::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_mangled_default_policy(cut in 0usize..12_000, insert in "[\\[\\]=\"{}., a-z0-9\n#]{0,6}") {
        let source = default_source();
        let mut at = cut.min(source.len());
        while !source.is_char_boundary(at) {
            at -= 1;
        }
        let mangled = format!("{}{insert}{}", &source[..at], &source[at..]);
        if let Err(e) = Policy::parse(&mangled) {
            prop_assert!(!e.0.is_empty());
            for d in &e.0 {
                prop_assert!(d.line >= 1 && d.column >= 1);
                prop_assert!(d.line <= mangled.lines().count() + 1);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_toml_shaped_lines(lines in prop::collection::vec(
        "(\\[policy\\]|\\[\\[category\\]\\]|\\[\\[purpose\\]\\]|[a-z_]{1,12} = (\"[a-z._]{0,12}\"|[0-9-]{1,4}|true|\\[\"[a-z.]{1,10}\"\\]|\\{ min_days = [0-9] \\}))",
        0..30,
    )) {
        let _ = Policy::parse(&lines.join("\n"));
    }
}

// ---------------------------------------------------------------------------
// Data subject requests: [dsr] and [[jurisdiction]]

/// A valid jurisdiction; after HEADER it spans lines 9–13.
const CN: &str = r#"
[[jurisdiction]]
key = "cn"
deadline_days = 10
utc_offset = "+08:00"
clause = "§XI"
"#;

#[test]
fn a_file_without_jurisdictions_gets_cn_from_dsr_deadline_days() {
    let p =
        Policy::parse(&HEADER.replace("dsr_deadline_days = 10", "dsr_deadline_days = 15")).unwrap();
    assert_eq!(p.dsr(), &crate::dsr::DsrSettings::default());
    assert_eq!(p.jurisdictions().len(), 1);
    let cn = p.jurisdiction("cn").unwrap();
    assert_eq!(cn.deadline, Period::Days(15));
    assert_eq!(cn.extension, None);
    assert_eq!(cn.day_kind, DayKind::Calendar);
    assert_eq!(cn.utc_offset, time::macros::offset!(+8));
    assert_eq!(cn.clause, "§XI");
    assert!(cn.holidays.is_empty() && cn.extra_workdays.is_empty());
    assert!(p.jurisdiction("eu").is_none());
}

#[test]
fn dsr_settings_and_jurisdictions_are_read_with_every_field() {
    let src = format!(
        r#"{HEADER}
[dsr]
default_jurisdiction = "eu"
duplicate_window_days = 14
near_due_days = 3
code_ttl_seconds = 300
code_attempts = 5

[[jurisdiction]]
key = "eu"
deadline_months = 1
extension_months = 2
utc_offset = "+01:00"
clause = "GDPR Art. 12(3)"

[[jurisdiction]]
key = "cn-working"
deadline_days = 15
extension_days = 5
day_kind = "working"
holidays = ["2026-10-01", "2026-10-02"]
extra_workdays = ["2026-10-10"]
utc_offset = "-05:30"
clause = "§XI"
"#
    );
    let p = Policy::parse(&src).unwrap_or_else(|e| panic!("{e}"));
    let dsr = p.dsr();
    assert_eq!(dsr.default_jurisdiction, "eu");
    assert_eq!(
        (
            dsr.duplicate_window_days,
            dsr.near_due_days,
            dsr.code_ttl_seconds,
            dsr.code_attempts
        ),
        (14, 3, 300, 5)
    );
    let keys: Vec<&str> = p.jurisdictions().iter().map(|j| j.key.as_str()).collect();
    assert_eq!(keys, ["eu", "cn-working"]);
    let eu = p.jurisdiction("eu").unwrap();
    assert_eq!(
        (eu.deadline, eu.extension),
        (Period::Months(1), Some(Period::Months(2)))
    );
    assert_eq!(eu.utc_offset, time::macros::offset!(+1));
    assert_eq!(eu.clause, "GDPR Art. 12(3)");
    let w = p.jurisdiction("cn-working").unwrap();
    assert_eq!(
        (w.deadline, w.extension),
        (Period::Days(15), Some(Period::Days(5)))
    );
    assert_eq!(w.day_kind, DayKind::Working);
    assert_eq!(w.utc_offset, time::macros::offset!(-5:30));
    assert!(w.holidays.contains(&time::macros::date!(2026 - 10 - 02)));
    assert_eq!(w.extra_workdays.len(), 1);
}

#[test]
fn default_policy_declares_cn_and_eu_deadlines() {
    use time::macros::{date, datetime, offset};
    let p = default_policy();
    assert_eq!(p.dsr(), &crate::dsr::DsrSettings::default());
    let cn = p.jurisdiction("cn").unwrap();
    assert_eq!((cn.deadline, cn.extension), (Period::Days(10), None));
    assert_eq!(cn.day_kind, DayKind::Calendar);
    assert_eq!(cn.utc_offset, offset!(+8));
    assert_eq!(cn.clause, "§XI");
    // Spring Festival 2026, with the worked Saturday before it.
    assert!(!cn.is_working_day(date!(2026 - 02 - 16)));
    assert!(cn.is_working_day(date!(2026 - 02 - 14)));
    assert_eq!(
        cn.due(datetime!(2026-09-30 12:00 +8)),
        datetime!(2026-10-10 23:59:59 +8)
    );
    let eu = p.jurisdiction("eu").unwrap();
    assert_eq!(
        (eu.deadline, eu.extension),
        (Period::Months(1), Some(Period::Months(2)))
    );
    assert_eq!(eu.utc_offset, offset!(+1));
    assert!(eu.clause.contains("GDPR Art. 12(3)"));
}

#[test]
fn unknown_fields_in_dsr_and_jurisdiction_are_reported_at_their_key() {
    let (line, col, msg) = only_error(&format!("{HEADER}\n[dsr]\ncode_atempts = 3\n"));
    assert_eq!((line, col), (10, 1));
    assert!(
        msg.contains("unknown field `code_atempts` in [dsr]"),
        "{msg}"
    );

    let (line, col, msg) = only_error(&format!("{HEADER}{CN}deadline = 10\n"));
    assert_eq!((line, col), (14, 1));
    assert!(
        msg.contains("unknown field `deadline` in [[jurisdiction]]"),
        "{msg}"
    );

    let (line, col, msg) = only_error(&format!("jurisdiction = \"cn\"\n{HEADER}"));
    assert_eq!((line, col), (1, 1));
    assert!(
        msg.contains("must be an array of tables ([[jurisdiction]])"),
        "{msg}"
    );
}

#[test]
fn duplicate_jurisdiction_keys_point_at_the_duplicate() {
    let (line, col, msg) = only_error(&format!("{HEADER}{CN}{CN}"));
    assert_eq!((line, col), (16, 7));
    assert!(
        msg.contains("duplicate jurisdiction key `cn` (first declared on line 10)"),
        "{msg}"
    );
}

#[test]
fn jurisdiction_keys_must_be_lower_case_ids() {
    let (line, col, msg) = only_error(&format!("{HEADER}{}", CN.replace("\"cn\"", "\"CN\"")));
    assert_eq!((line, col), (10, 7));
    assert!(
        msg.contains("jurisdiction key `CN` must be lower-case"),
        "{msg}"
    );
}

#[test]
fn a_deadline_needs_exactly_one_of_days_and_months() {
    let (line, col, msg) = only_error(&format!("{HEADER}{CN}deadline_months = 1\n"));
    assert_eq!((line, col), (14, 19));
    assert!(
        msg.contains(
            "set either `deadline_days` or `deadline_months` in [[jurisdiction]], not both"
        ),
        "{msg}"
    );

    let (line, col, msg) = only_error(&format!(
        "{HEADER}{}",
        CN.replace("deadline_days = 10\n", "")
    ));
    assert_eq!((line, col), (9, 1));
    assert!(
        msg.contains("missing field `deadline_days` or `deadline_months` in [[jurisdiction]]"),
        "{msg}"
    );

    let (line, col, msg) = only_error(&format!(
        "{HEADER}{CN}extension_days = 5\nextension_months = 1\n"
    ));
    assert_eq!((line, col), (15, 20));
    assert!(
        msg.contains("`extension_days` or `extension_months`"),
        "{msg}"
    );

    let (line, col, msg) = only_error(&format!(
        "{HEADER}{}",
        CN.replace("deadline_days = 10", "deadline_days = 0")
    ));
    assert_eq!((line, col), (11, 17));
    assert!(
        msg.contains("`deadline_days` in [[jurisdiction]] must be between 1 and 366"),
        "{msg}"
    );
}

#[test]
fn holidays_must_be_quoted_real_dates() {
    let src = format!("{HEADER}{CN}holidays = [\"2026-02-30\", \"2026-2-01\", 2026-10-01, 7]\n");
    let errs = errors(&src);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(got, [(14, 13), (14, 27), (14, 40), (14, 52)], "{errs:#?}");
    assert!(errs[0]
        .message
        .contains("`2026-02-30` in `holidays` is not a date of the form YYYY-MM-DD"));
    assert!(
        errs[2].message.contains("found datetime (quote it)"),
        "{}",
        errs[2].message
    );
    assert!(
        errs[3].message.contains("found integer"),
        "{}",
        errs[3].message
    );

    let (line, col, msg) = only_error(&format!("{HEADER}{CN}extra_workdays = \"2026-10-10\"\n"));
    assert_eq!((line, col), (14, 18));
    assert!(
        msg.contains("`extra_workdays` in [[jurisdiction]] must be an array"),
        "{msg}"
    );
}

#[test]
fn a_date_cannot_be_both_holiday_and_extra_workday() {
    let (line, col, msg) = only_error(&format!(
        "{HEADER}{CN}holidays = [\"2026-10-01\"]\nextra_workdays = [\"2026-10-01\"]\n"
    ));
    assert_eq!((line, col), (15, 19));
    assert!(
        msg.contains("2026-10-01 is listed both in `holidays` and in `extra_workdays`"),
        "{msg}"
    );
}

#[test]
fn utc_offsets_must_be_signed_hours_and_minutes() {
    for bad in ["+8", "08:00", "+24:00", "+08:60", "+0800", "UTC", "+08:0a"] {
        let (line, col, msg) = only_error(&format!("{HEADER}{}", CN.replace("+08:00", bad)));
        assert_eq!((line, col), (12, 14), "{bad}");
        assert!(
            msg.contains(&format!("utc_offset `{bad}` must be `+HH:MM`")),
            "{msg}"
        );
    }
    let (line, col, msg) = only_error(&format!(
        "{HEADER}{}",
        CN.replace("utc_offset = \"+08:00\"\n", "")
    ));
    assert_eq!((line, col), (9, 1));
    assert!(msg.contains("missing field `utc_offset`"), "{msg}");
}

#[test]
fn the_default_jurisdiction_must_be_declared() {
    let (line, col, msg) = only_error(&format!(
        "{HEADER}{CN}\n[dsr]\ndefault_jurisdiction = \"eu\"\n"
    ));
    assert_eq!((line, col), (16, 24));
    assert!(
        msg.contains(
            "default_jurisdiction `eu` is not declared by any [[jurisdiction]] (declared: cn)"
        ),
        "{msg}"
    );

    // The implied default `cn` is missing when a file declares only `eu`.
    let (line, col, msg) = only_error(&format!("{HEADER}{}", CN.replace("\"cn\"", "\"eu\"")));
    assert_eq!((line, col), (9, 1));
    assert!(
        msg.contains("default_jurisdiction `cn` is not declared"),
        "{msg}"
    );

    // Without [[jurisdiction]], only the synthesized `cn` exists.
    let (line, col, msg) = only_error(&format!("{HEADER}\n[dsr]\ndefault_jurisdiction = \"eu\"\n"));
    assert_eq!((line, col), (10, 24));
    assert!(msg.contains("(declared: cn)"), "{msg}");
}

#[test]
fn dsr_numbers_are_range_checked() {
    let cases = [
        ("code_attempts = 0", 17, "between 1 and 10"),
        ("code_attempts = 11", 17, "between 1 and 10"),
        ("code_ttl_seconds = 59", 20, "between 60 and 3600"),
        ("code_ttl_seconds = 3601", 20, "between 60 and 3600"),
        ("near_due_days = -1", 17, "between 0 and 365"),
        ("duplicate_window_days = 366", 25, "between 0 and 365"),
        (
            "intake_per_address_per_minute = 0",
            33,
            "between 1 and 10000",
        ),
        (
            "intake_per_identity_per_hour = 1001",
            32,
            "between 1 and 1000",
        ),
        ("unverified_expiry_hours = 0", 27, "between 1 and 720"),
        (
            "code_attempts = \"3\"",
            17,
            "must be an integer, found string",
        ),
    ];
    for (line_text, col, expected) in cases {
        let (line, column, msg) = only_error(&format!("{HEADER}\n[dsr]\n{line_text}\n"));
        assert_eq!((line, column), (10, col), "{line_text}");
        assert!(msg.contains(expected), "{line_text}: {msg}");
    }
    let p = Policy::parse(&format!(
        "{HEADER}\n[dsr]\ncode_attempts = 10\ncode_ttl_seconds = 60\n"
    ))
    .unwrap();
    assert_eq!((p.dsr().code_attempts, p.dsr().code_ttl_seconds), (10, 60));
    assert_eq!(p.dsr().default_jurisdiction, "cn");
    // issue 11: the intake's limits and the verification deadline, with their defaults
    let d = p.dsr();
    assert_eq!(
        (
            d.intake_per_address_per_minute,
            d.intake_per_identity_per_hour,
            d.unverified_expiry_hours
        ),
        (10, 5, 72)
    );
    let p = Policy::parse(&format!(
        "{HEADER}\n[dsr]\nintake_per_address_per_minute = 100\nunverified_expiry_hours = 24\n"
    ))
    .unwrap();
    assert_eq!(
        (
            p.dsr().intake_per_address_per_minute,
            p.dsr().unverified_expiry_hours
        ),
        (100, 24)
    );
}

#[test]
fn every_dsr_error_is_reported_at_once_in_order() {
    let src = format!(
        r#"{HEADER}
[dsr]
default_jurisdiction = "us"
code_attempts = 99

[[jurisdiction]]
key = "cn"
deadline_days = 10
deadline_months = 1
holidays = ["2026-13-01"]
utc_offset = "+8"
clause = "§XI"

[[jurisdiction]]
key = "cn"
day_kind = "lunar"
colour = "red"
"#
    );
    let errs = errors(&src);
    let got: Vec<(usize, usize)> = errs.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        [
            (10, 24),
            (11, 17),
            (16, 19),
            (17, 13),
            (18, 14),
            (21, 1),
            (21, 1),
            (21, 1),
            (22, 7),
            (23, 12),
            (24, 1)
        ],
        "{}",
        PolicyErrors(errs.clone())
    );
}

// ---------------------------------------------------------------------------
// [incident]

#[test]
fn a_file_without_incident_gets_the_defaults() {
    let p = Policy::parse(HEADER).unwrap();
    let i = p.incident();
    assert_eq!(i, &IncidentPolicy::default());
    assert_eq!(i.announcement_threshold, 1_000_000);
    assert_eq!(i.channels, Channel::ALL.to_vec());
    assert_eq!(i.retry, RetrySettings::default());
    assert_eq!(i.retry.max_attempts, 8);
    assert_eq!(
        i.deadline_hours("gdpr", Severity::General).map(|d| d.0),
        Some(72)
    );
    assert_eq!(
        i.deadline_hours("cn", Severity::Major).map(|d| d.0),
        Some(4)
    );
    assert_eq!(i.deadline_hours("cn", Severity::General), None);
}

#[test]
fn default_policy_declares_the_incident_table() {
    let p = default_policy();
    let i = p.incident();
    assert_eq!(i.contact, "cloudkf@inspur.com");
    assert_eq!(i.announcement_threshold, 1_000_000);
    assert_eq!(
        i.channels,
        vec![Channel::Email, Channel::Sms, Channel::Push, Channel::Letter]
    );
    assert_eq!(
        i.retry,
        RetrySettings {
            max_attempts: 8,
            base_secs: 30,
            max_backoff_secs: 3600
        }
    );
    assert_eq!(i.regimes(), vec!["gdpr", "cn"]);
    for s in Severity::ALL {
        let (h, src) = i.deadline_hours("gdpr", s).unwrap();
        assert_eq!((h, src), (72, "GDPR Art. 33(1)"));
    }
    for s in [
        Severity::EspeciallyMajor,
        Severity::Major,
        Severity::RelativelyMajor,
    ] {
        let (h, src) = i.deadline_hours("cn", s).unwrap();
        assert_eq!(h, 4);
        assert!(src.contains("国家网络安全事件报告管理办法 Art. 4"), "{src}");
    }
    assert_eq!(i.deadline_hours("cn", Severity::General), None);
    assert_eq!(i.deadline_hours("us", Severity::Major), None);
    // The file states what the code defaults to.
    assert_eq!(i.deadlines, IncidentPolicy::default_deadlines());
}

#[test]
fn incident_settings_are_read_with_every_field() {
    let src = format!(
        "{HEADER}
[incident]
contact = \"dpo@example.cn\"
announcement_threshold = 0
channels = [\"letter\", \"email\"]
retry = {{ max_attempts = 3, base_secs = 10, max_backoff_secs = 10 }}

[[incident.deadline]]
regime = \"x\"
severity = \"any\"
hours = 24
source = \"any\"

[[incident.deadline]]
regime = \"x\"
severity = \"general\"
hours = 48
source = \"general\"
"
    );
    let p = Policy::parse(&src).unwrap_or_else(|e| panic!("{}", e.render("x.toml")));
    let i = p.incident();
    assert_eq!(i.contact, "dpo@example.cn");
    assert!(i.announce_only(1));
    assert!(!i.announce_only(0));
    assert_eq!(i.channels, vec![Channel::Letter, Channel::Email]);
    assert_eq!(i.retry.backoff_secs(5), 10);
    // The specific one wins whatever the file order; `any` covers the rest.
    assert_eq!(
        i.deadline_hours("x", Severity::General),
        Some((48, "general"))
    );
    assert_eq!(i.deadline_hours("x", Severity::Major), Some((24, "any")));
    assert!(
        i.deadline_hours("gdpr", Severity::Major).is_none(),
        "a file's deadlines replace the defaults"
    );
}

#[test]
fn an_incident_table_with_only_some_keys_keeps_the_other_defaults() {
    let p = Policy::parse(&format!("{HEADER}\n[incident]\ncontact = \"c\"\n")).unwrap();
    let i = p.incident();
    assert_eq!(i.contact, "c");
    assert_eq!(i.channels, Channel::ALL.to_vec());
    assert_eq!(i.deadlines, IncidentPolicy::default_deadlines());
    let p = Policy::parse(&format!("{HEADER}\n[incident.retry]\nbase_secs = 5\n")).unwrap();
    assert_eq!(p.incident().retry.base_secs, 5);
    assert_eq!(p.incident().retry.max_attempts, 8);
}

#[test]
fn incident_errors_are_reported_at_their_position() {
    let cases: &[(&str, (usize, usize), &str)] = &[
        (
            "[incident]\nchannels = [\"email\", \"fax\"]\n",
            (10, 22),
            "unknown channel `fax`",
        ),
        ("[incident]\nchannels = []\n", (10, 12), "at least one channel"),
        (
            "[incident]\nchannels = [\"sms\", \"sms\"]\n",
            (10, 20),
            "listed twice",
        ),
        (
            "[[incident.deadline]]\nregime = \"cn\"\nseverity = \"critical\"\nhours = 4\nsource = \"s\"\n",
            (11, 12),
            "unknown severity `critical`",
        ),
        (
            "[[incident.deadline]]\nregime = \"cn\"\nseverity = \"major\"\nhours = 0\nsource = \"s\"\n",
            (12, 9),
            "at least 1",
        ),
        (
            "[[incident.deadline]]\nregime = \"cn\"\nseverity = \"any\"\nhours = 9000\nsource = \"s\"\n",
            (12, 9),
            "between 1 and 8760",
        ),
        (
            "[[incident.deadline]]\nregime = \"C N\"\nseverity = \"any\"\nhours = 1\nsource = \"s\"\n",
            (10, 10),
            "regime `C N`",
        ),
        (
            "[incident]\nretry = { base_secs = 60, max_backoff_secs = 30 }\n",
            (10, 46),
            "at least `base_secs`",
        ),
        (
            "[incident]\nretry = { attempts = 3 }\n",
            (10, 11),
            "unknown field `attempts`",
        ),
        (
            "[incident]\nannouncement_threshold = -1\n",
            (10, 26),
            "announcement_threshold",
        ),
        ("[incident]\nfax = 1\n", (10, 1), "unknown field `fax` in [incident]"),
    ];
    let base_lines = HEADER.lines().count() + 1;
    assert_eq!(base_lines, 8);
    for (section, (line, col), needle) in cases {
        let src = format!("{HEADER}\n{section}");
        let errs = errors(&src);
        assert_eq!(errs.len(), 1, "{section}: {errs:#?}");
        let d = &errs[0];
        assert!(d.message.contains(needle), "{section}: {}", d.message);
        assert_eq!(
            (d.line, d.column),
            (*line, *col),
            "{section}: {}",
            d.message
        );
    }
    // The rendered form is `pivault policy check`'s.
    let src = format!("{HEADER}\n[incident]\nchannels = [\"pigeon\"]\n");
    let rendered = Policy::parse(&src).unwrap_err().render("policies/p.toml");
    assert!(
        rendered.starts_with("policies/p.toml:10:13: error: unknown channel `pigeon`"),
        "{rendered}"
    );
}

#[test]
fn duplicate_incident_deadlines_are_rejected() {
    let d =
        "[[incident.deadline]]\nregime = \"cn\"\nseverity = \"major\"\nhours = 4\nsource = \"s\"\n";
    let src = format!("{HEADER}\n{d}{d}");
    let (line, _, msg) = only_error(&src);
    assert_eq!(line, 16);
    assert!(msg.contains("a second [[incident.deadline]]"), "{msg}");
}

// ---------------------------------------------------------------------------
// Version history (policy §X; PIPL Art. 14 para. 2)

const HISTORY_BASE: &str = r#"
[[category]]
key = "user.contact.mobile"
name = "Mobile"
sensitivity = "personal"
value_type = "text"
identifier = "mobile"
clause = "§2.2.1"

[[category]]
key = "user.contact.email"
name = "Email"
sensitivity = "personal"
value_type = "text"
clause = "§2.2.1"

[[purpose]]
id = "marketing"
name = "Promotion"
clause = "§2.2.3"
legal_basis = "consent"
categories = ["user.contact.mobile"]

[[purpose]]
id = "maintenance"
name = "Maintenance"
clause = "§2.2.2"
legal_basis = "contract"
categories = ["user.contact.email"]
"#;

/// HEADER at `version`, the base entries, then `history`.
fn with_history(version: &str, history: &str) -> String {
    HEADER.replace("2024-12-04", version) + HISTORY_BASE + history
}

const THREE_VERSIONS: &str = r#"
[[policy_version]]
version = "2023-06-01"
published = "2023-06-01"

[[policy_version]]
version = "2024-12-04"
published = "2024-12-04"

[[policy_version.change]]
summary = "Wording of §2.2.2"
material = false
purposes = ["maintenance"]

[[policy_version.change]]
summary = "Email used for maintenance notices"
material = true
categories = ["user.contact.email"]

[[policy_version]]
version = "2025-06-01"
published = "2025-06-01"

[[policy_version.change]]
summary = "Promotion by SMS to the mobile number"
material = true
purposes = ["marketing"]
"#;

#[test]
fn the_default_policy_has_its_history_without_a_material_change() {
    let p = default_policy();
    let labels: Vec<&str> = p.versions().iter().map(|v| v.version.as_str()).collect();
    assert_eq!(labels, ["2023-06-01", "2024-12-04"]);
    let old = &p.versions()[0];
    assert_eq!(old.text_path, None, "the 2023-06-01 text is not on file");
    let cur = p.policy_version("2024-12-04").unwrap();
    assert_eq!(cur.text_path.as_deref(), Some("text/2024-12-04.txt"));
    let text = repo_file("../../policies/text/2024-12-04.txt");
    assert_eq!(
        cur.text_sha256.as_deref(),
        Some(hex::encode(Sha256::digest(text.as_bytes())).as_str())
    );
    assert!(
        text.starts_with("Inspur Cloud Legal Statement and Privacy Policy\nUpdated: 2024-12-4\n")
    );
    for purpose in p.purposes() {
        assert!(
            p.last_material_change(&purpose.id).is_none(),
            "{}",
            purpose.id
        );
    }
    let p = p.with_version_text("2024-12-04", text).unwrap();
    assert!(p.policy_version("2024-12-04").unwrap().text.is_some());
}

#[test]
fn a_history_parses_and_finds_the_last_material_change_per_purpose() {
    let p = Policy::parse(&with_history("2025-06-01", THREE_VERSIONS)).unwrap();
    assert_eq!(p.versions().len(), 3);
    assert_eq!(
        p.versions()[1].published,
        time::macros::date!(2024 - 12 - 04)
    );
    let (v, c) = p.last_material_change("marketing").unwrap();
    assert_eq!(v.version, "2025-06-01");
    assert_eq!(c.summary, "Promotion by SMS to the mobile number");
    // maintenance: touched through its category, by the material change of 2024-12-04 (the
    // non-material one naming it does not count).
    let (v, c) = p.last_material_change("maintenance").unwrap();
    assert_eq!(v.version, "2024-12-04");
    assert_eq!(c.summary, "Email used for maintenance notices");
    assert!(p.last_material_change("unknown").is_none());
    // Outdated: a consent given before the change; not one given under or after it; an
    // unknown version is treated as older.
    assert!(p.consent_outdated_by("marketing", "2024-12-04").is_some());
    assert!(p.consent_outdated_by("marketing", "2023-06-01").is_some());
    assert!(p.consent_outdated_by("marketing", "2025-06-01").is_none());
    assert!(p.consent_outdated_by("marketing", "1999-01-01").is_some());
    assert!(p.consent_outdated_by("maintenance", "2025-06-01").is_none());
    assert!(p.is_older_version("2023-06-01", "2025-06-01"));
    assert!(!p.is_older_version("2025-06-01", "2025-06-01"));
}

#[test]
fn diff_lists_the_changes_between_two_versions() {
    let p = Policy::parse(&with_history("2025-06-01", THREE_VERSIONS)).unwrap();
    let d = p.diff("2023-06-01", "2025-06-01").unwrap();
    let got: Vec<(&str, &str, bool)> = d
        .iter()
        .map(|(v, c)| (v.version.as_str(), c.summary.as_str(), c.material))
        .collect();
    assert_eq!(
        got,
        [
            ("2024-12-04", "Wording of §2.2.2", false),
            ("2024-12-04", "Email used for maintenance notices", true),
            ("2025-06-01", "Promotion by SMS to the mobile number", true),
        ]
    );
    assert_eq!(p.diff("2024-12-04", "2025-06-01").unwrap().len(), 1);
    assert!(p.diff("2025-06-01", "2025-06-01").unwrap().is_empty());
    assert_eq!(
        p.diff("2025-06-01", "2023-06-01").unwrap_err(),
        DiffError::NotOlder {
            old: "2025-06-01".into(),
            new: "2023-06-01".into()
        }
    );
    assert_eq!(
        p.diff("2022-01-01", "2025-06-01").unwrap_err(),
        DiffError::UnknownVersion("2022-01-01".into())
    );
}

#[test]
fn the_record_hash_covers_the_changes_not_whether_the_text_was_attached() {
    let p = Policy::parse(&with_history("2025-06-01", THREE_VERSIONS)).unwrap();
    let v = &p.versions()[2];
    assert_eq!(v.record_hash().len(), 64);
    let mut edited = v.clone();
    edited.changes[0].material = false;
    assert_ne!(edited.record_hash(), v.record_hash());
    let mut texted = v.clone();
    texted.text = Some("anything".into());
    assert_eq!(texted.record_hash(), v.record_hash());
    assert_ne!(p.versions()[0].record_hash(), p.versions()[1].record_hash());
}

#[test]
fn a_text_must_match_its_pinned_hash() {
    let sha = hex::encode(Sha256::digest(b"TEXT"));
    let src = with_history(
        "2024-12-04",
        &format!(
            "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\ntext = \"text/a.txt\"\ntext_sha256 = \"{sha}\"\n"
        ),
    );
    let p = Policy::parse(&src).unwrap();
    assert!(p
        .clone()
        .with_version_text("2024-12-04", "TEXT".into())
        .is_ok());
    let e = p
        .clone()
        .with_version_text("2024-12-04", "EDITED".into())
        .unwrap_err();
    assert!(e.contains("never edited"), "{e}");
    assert!(p.with_version_text("2023-01-01", "TEXT".into()).is_err());
}

#[test]
fn history_mistakes_are_reported_where_they_are() {
    // The last version is not the one in force.
    let (line, _, m) = only_error(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2023-06-01\"\npublished = \"2023-06-01\"\n",
    ));
    assert!(m.contains("[policy] version is `2024-12-04`"), "{m}");
    assert_eq!(
        line,
        HEADER.lines().count() + HISTORY_BASE.lines().count() + 2
    );

    // Dates not increasing.
    let (_, _, m) = only_error(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2023-06-01\"\npublished = \"2024-12-04\"\n\
         [[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\n",
    ));
    assert!(m.contains("not after version `2023-06-01`"), "{m}");

    // A repeated version.
    let errs = errors(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2023-06-01\"\n\
         [[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\n",
    ));
    assert!(
        errs.iter()
            .any(|d| d.message.contains("duplicate policy version")),
        "{errs:#?}"
    );

    // A malformed date, an unquoted one.
    let (_, _, m) = only_error(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"4 Dec 2024\"\n",
    ));
    assert!(m.contains("YYYY-MM-DD"), "{m}");
    let (_, _, m) = only_error(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = 2024-12-04\n",
    ));
    assert!(m.contains("quote it"), "{m}");

    // Unknown purpose and category in a change; a change naming neither; no `material`.
    let errs = errors(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\n\
         [[policy_version.change]]\nsummary = \"a\"\nmaterial = true\npurposes = [\"nope\"]\ncategories = [\"user.nope\"]\n\
         [[policy_version.change]]\nsummary = \"b\"\nmaterial = true\n\
         [[policy_version.change]]\nsummary = \"c\"\npurposes = [\"marketing\"]\n",
    ));
    let msgs: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter().any(|m| m.contains("unknown purpose `nope`")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("unknown category `user.nope`")),
        "{msgs:#?}"
    );
    assert!(msgs.iter().any(|m| m.contains("at least one")), "{msgs:#?}");
    assert!(
        msgs.iter().any(|m| m.contains("missing field `material`")),
        "{msgs:#?}"
    );

    // A text without its hash, a path leaving the policy's directory, a bad hash.
    let (_, _, m) = only_error(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\ntext = \"t.txt\"\n",
    ));
    assert!(m.contains("needs `text_sha256`"), "{m}");
    let errs = errors(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\ntext = \"../t.txt\"\ntext_sha256 = \"ABC\"\n",
    ));
    let msgs: Vec<&str> = errs.iter().map(|d| d.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("relative to the policy file")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("64 lower-case hex")),
        "{msgs:#?}"
    );

    // Unknown fields.
    let (_, _, m) = only_error(&with_history(
        "2024-12-04",
        "[[policy_version]]\nversion = \"2024-12-04\"\npublished = \"2024-12-04\"\nnote = \"x\"\n",
    ));
    assert!(
        m.contains("unknown field `note` in [[policy_version]]"),
        "{m}"
    );

    // No history at all is fine (the history is optional).
    assert!(Policy::parse(&with_history("2024-12-04", ""))
        .unwrap()
        .versions()
        .is_empty());
}
