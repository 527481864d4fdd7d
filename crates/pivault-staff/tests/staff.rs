//! Decisions of the default staff policy (`policies/staff.cedar`) on the default pivault
//! policy, and refusal of broken staff policies with their positions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_domain::policy::Policy;
use pivault_staff::{schema_source, StaffAccess, StaffPolicy};

const DEFAULT_POLICY: &str = include_str!("../../../policies/default.toml");
const STAFF_POLICY: &str = include_str!("../../../policies/staff.cedar");
const STAFF_SCHEMA: &str = include_str!("../../../policies/staff.cedarschema");

fn policy() -> Policy {
    Policy::parse(DEFAULT_POLICY).unwrap()
}

fn staff() -> StaffPolicy {
    StaffPolicy::load(STAFF_POLICY, "policies/staff.cedar", &policy()).unwrap()
}

fn roles(r: &[&str]) -> Vec<String> {
    r.iter().map(|s| (*s).to_owned()).collect()
}

fn refused(source: &str) -> Vec<String> {
    StaffPolicy::load(source, "bad.cedar", &policy())
        .unwrap_err()
        .diagnostics
}

#[test]
fn the_default_staff_policy_loads() {
    let staff = staff();
    assert_eq!(
        StaffPolicy::roles(),
        ["support", "dpo", "security", "admin"]
    );
    assert!(format!("{staff:?}").contains("policies: 6"));
}

/// `PIVAULT_BLESS=1 cargo test -p pivault-staff` rewrites the file after a policy change.
#[test]
fn the_committed_schema_file_is_the_derived_schema() {
    let derived = schema_source(&policy());
    if std::env::var_os("PIVAULT_BLESS").is_some() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/staff.cedarschema"
        );
        std::fs::write(path, &derived).unwrap();
        return;
    }
    assert_eq!(STAFF_SCHEMA, derived, "run with PIVAULT_BLESS=1 to update");
}

#[test]
fn a_support_agent_reads_a_mobile_masked_for_service() {
    let staff = staff();
    let support = roles(&["support"]);
    for category in [
        "user.contact.mobile",
        "user.contact.email",
        "user.name",
        "user.account.id",
    ] {
        assert_eq!(
            staff.authorize("li.lei", &support, category, "service"),
            StaffAccess::Masked
        );
    }
}

#[test]
fn a_support_agent_is_denied_an_id_number_and_a_face_template_for_any_purpose() {
    let staff = staff();
    let policy = policy();
    for roles in [
        roles(&["support"]),
        roles(&["support", "admin"]),
        roles(&["support", "security"]),
    ] {
        for purpose in policy.purposes() {
            for category in [
                "user.government_id.id_card",
                "user.biometric.face",
                "user.financial.bank_card",
            ] {
                assert_eq!(
                    staff.authorize("li.lei", &roles, category, &purpose.id),
                    StaffAccess::Denied,
                    "{roles:?} {category} {}",
                    purpose.id
                );
            }
        }
    }
}

#[test]
fn support_for_marketing_is_denied() {
    let staff = staff();
    let support = roles(&["support"]);
    for category in ["user.contact.mobile", "user.name", "user.account.id"] {
        assert_eq!(
            staff.authorize("li.lei", &support, category, "marketing"),
            StaffAccess::Denied
        );
    }
}

#[test]
fn support_never_sees_data_outside_contact_and_account() {
    let staff = staff();
    let support = roles(&["support"]);
    for category in [
        "user.support.ticket",
        "user.network.ip",
        "user.guardian.mobile",
    ] {
        assert_eq!(
            staff.authorize("li.lei", &support, category, "service"),
            StaffAccess::Denied
        );
    }
}

#[test]
fn dpo_reads_id_number_clear_for_legal_obligation() {
    let staff = staff();
    let dpo = roles(&["dpo"]);
    assert_eq!(
        staff.authorize(
            "han.mei",
            &dpo,
            "user.government_id.id_card",
            "legal_obligation"
        ),
        StaffAccess::Clear
    );
    assert_eq!(
        staff.authorize("han.mei", &dpo, "user.government_id.id_card", "service"),
        StaffAccess::Masked
    );
}

#[test]
fn security_reads_the_technical_trail_clear_only_for_security() {
    let staff = staff();
    let security = roles(&["security"]);
    for category in [
        "user.network.ip",
        "user.device.id",
        "user.behavior.web_log",
        "user.account.id",
    ] {
        assert_eq!(
            staff.authorize("wei", &security, category, "security"),
            StaffAccess::Clear
        );
        assert_eq!(
            staff.authorize("wei", &security, category, "service"),
            StaffAccess::Denied
        );
    }
    assert_eq!(
        staff.authorize("wei", &security, "user.contact.mobile", "security"),
        StaffAccess::Denied
    );
}

#[test]
fn admin_reads_only_contact_masked_for_service() {
    let staff = staff();
    let admin = roles(&["admin"]);
    assert_eq!(
        staff.authorize("root", &admin, "user.contact.mobile", "service"),
        StaffAccess::Masked
    );
    assert_eq!(
        staff.authorize("root", &admin, "user.contact.mobile", "security"),
        StaffAccess::Denied
    );
    assert_eq!(
        staff.authorize("root", &admin, "user.network.ip", "service"),
        StaffAccess::Denied
    );
    assert_eq!(
        staff.authorize(
            "root",
            &admin,
            "user.government_id.id_card",
            "legal_obligation"
        ),
        StaffAccess::Denied
    );
}

#[test]
fn an_unknown_role_gets_denied_for_everything() {
    let staff = staff();
    let policy = policy();
    let intruder = roles(&["root", "Support", ""]);
    let categories: Vec<&str> = policy.categories().iter().map(|c| c.key.as_str()).collect();
    for purpose in policy.purposes() {
        let all = staff.authorize_all("mallory", &intruder, &categories, &purpose.id);
        assert_eq!(all, vec![StaffAccess::Denied; categories.len()]);
    }
    assert_eq!(
        staff.authorize("mallory", &[], "user.name", "service"),
        StaffAccess::Denied
    );
}

#[test]
fn unknown_categories_and_purposes_are_denied() {
    let staff = staff();
    let dpo = roles(&["dpo"]);
    assert_eq!(
        staff.authorize("han.mei", &dpo, "user.nope", "legal_obligation"),
        StaffAccess::Denied
    );
    assert_eq!(
        staff.authorize("han.mei", &dpo, "user.name", "curiosity"),
        StaffAccess::Denied
    );
}

#[test]
fn authorize_all_answers_each_category_in_order() {
    let staff = staff();
    let support = roles(&["support"]);
    let got = staff.authorize_all(
        "li.lei",
        &support,
        &[
            "user.contact.mobile",
            "user.government_id.id_card",
            "user.nope",
            "user.contact.mobile",
        ],
        "service",
    );
    assert_eq!(
        got,
        [
            StaffAccess::Masked,
            StaffAccess::Denied,
            StaffAccess::Denied,
            StaffAccess::Masked
        ]
    );
}

#[test]
fn a_policy_with_a_syntax_error_is_refused_with_path_line_col() {
    let source = "// staff\npermit (principal, action, resource)\nwhen { context.purpose == };\n";
    let diagnostics = refused(source);
    assert!(!diagnostics.is_empty());
    assert!(
        diagnostics[0].starts_with("bad.cedar:3:"),
        "{diagnostics:?}"
    );
    let rendered = StaffPolicy::load(source, "bad.cedar", &policy())
        .unwrap_err()
        .to_string();
    assert!(rendered.starts_with("bad.cedar:3:"), "{rendered}");
}

#[test]
fn a_policy_referencing_an_unknown_entity_type_is_refused_with_its_position() {
    let source = "permit (principal in Team::\"support\", action, resource);\n";
    let diagnostics = refused(source);
    assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
    assert!(
        diagnostics[0].starts_with("bad.cedar:1:22: "),
        "{diagnostics:?}"
    );
    assert!(diagnostics[0].contains("Team"), "{diagnostics:?}");
}

#[test]
fn a_policy_referencing_an_unknown_attribute_is_refused_with_its_position() {
    let source =
        "permit (principal, action, resource)\nwhen {\n  context.channel == \"phone\"\n};\n";
    let diagnostics = refused(source);
    assert!(
        diagnostics[0].starts_with("bad.cedar:3:3: "),
        "{diagnostics:?}"
    );
    assert!(diagnostics[0].contains("channel"), "{diagnostics:?}");
}

#[test]
fn misspelt_roles_groups_purposes_and_categories_are_refused() {
    let source = "\
permit (principal in Role::\"suport\", action, resource);
permit (principal, action, resource in CategoryGroup::\"user.contacts\");
permit (principal, action, resource) when { context.purpose == Purpose::\"servce\" };
forbid (principal, action, resource == Category::\"user.contact.mobil\");
";
    let diagnostics = refused(source);
    for (line, word) in [
        (1, "suport"),
        (2, "user.contacts"),
        (3, "servce"),
        (4, "user.contact.mobil"),
    ] {
        assert!(
            diagnostics
                .iter()
                .any(|d| d.starts_with(&format!("bad.cedar:{line}:")) && d.contains(word)),
            "{word}: {diagnostics:?}"
        );
    }
}

#[test]
fn a_purpose_compared_as_a_string_is_refused() {
    let source = "permit (principal, action, resource) when { context.purpose == \"service\" };";
    assert!(refused(source)[0].starts_with("bad.cedar:1:"));
}

#[test]
fn templates_are_refused() {
    let source = "permit (principal == ?principal, action, resource);";
    assert!(refused(source).iter().any(|d| d.contains("templates")));
}

#[test]
fn garbage_is_refused_without_panicking() {
    for source in [
        "",
        "permit",
        "\u{0}",
        "permit (principal, action, resource) when { 1 / };",
        "陈鹏",
    ] {
        let _ = StaffPolicy::load(source, "x.cedar", &policy());
    }
    // An empty policy set is valid and denies everything.
    let empty = StaffPolicy::load("", "x.cedar", &policy()).unwrap();
    assert_eq!(
        empty.authorize("a", &roles(&["dpo"]), "user.name", "legal_obligation"),
        StaffAccess::Denied
    );
}
