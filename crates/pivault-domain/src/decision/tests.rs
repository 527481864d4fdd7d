//! `decide` on consents given before a material policy change (PIPL Art. 14 para. 2;
//! policy §X).

use time::macros::datetime;

use super::{decide, AccessRequest, Action, Reason, SubjectFacts};
use crate::consent::{ConsentAction, ConsentEvent, ConsentState, GivenBy};
use crate::policy::Policy;

const POLICY: &str = r#"
[policy]
id = "demo"
version = "2025-06-01"
title = "Demo"
storage_region = "cn"
minor_age = 14
dsr_deadline_days = 10

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
id = "newsletter"
name = "Newsletter"
clause = "§2.2.5"
legal_basis = "consent"
categories = ["user.contact.email"]

[[purpose]]
id = "service"
name = "Service"
clause = "§2.2.1"
legal_basis = "contract"
categories = ["user.contact.mobile"]

[[recipient]]
id = "partner"
name = "Partner"
kind = "supplier"
entrusted = false
region = "cn"
purposes = ["marketing"]
categories = ["user.contact.mobile"]
clause = "§5.1.1"

[[policy_version]]
version = "2024-12-04"
published = "2024-12-04"

[[policy_version]]
version = "2025-06-01"
published = "2025-06-01"

[[policy_version.change]]
summary = "Promotion by SMS to the mobile number"
material = true
purposes = ["marketing"]

[[policy_version.change]]
summary = "Mobile numbers kept for a year"
material = false
categories = ["user.contact.mobile"]
"#;

fn grant(seq: i64, purpose: &str, version: &str, recipient: Option<&str>) -> ConsentEvent {
    ConsentEvent {
        seq,
        purpose: purpose.into(),
        action: ConsentAction::Grant,
        at: datetime!(2025-01-01 0:00 UTC) + time::Duration::days(seq),
        given_by: GivenBy::Subject,
        separate: recipient.is_some(),
        policy_version: version.into(),
        recipient: recipient.map(Into::into),
    }
}

fn run(
    policy: &Policy,
    events: &[ConsentEvent],
    action: Action,
    purpose: &str,
    recipient: Option<&str>,
) -> (bool, Reason, String, &'static str) {
    let now = datetime!(2025-07-01 0:00 UTC);
    let state = ConsentState::fold(events, now);
    let facts = SubjectFacts {
        consent: &state,
        birth_date: None,
        erased: false,
        home_region: None,
    };
    let purposes = vec![purpose.to_string()];
    let mut req = AccessRequest::use_of(purpose, &[], &purposes);
    req.action = action;
    req.recipient = recipient;
    let d = decide(policy, &facts, &req, now);
    (d.allowed, d.reason, d.explanation(), d.article())
}

#[test]
fn a_consent_older_than_a_material_change_is_outdated_and_explained() {
    let p = Policy::parse(POLICY).unwrap();
    let old = [grant(1, "marketing", "2024-12-04", None)];
    let (allowed, reason, why, article) = run(&p, &old, Action::Use, "marketing", None);
    assert!(!allowed);
    assert_eq!(reason, Reason::ConsentOutdated);
    assert_eq!(reason.as_str(), "consent_outdated");
    assert_eq!(article, "PIPL Art. 14");
    assert_eq!(reason.clause(), "§X");
    assert!(
        why.contains("consent_outdated (PIPL Art. 14, policy §X)"),
        "{why}"
    );
    assert!(
        why.contains("given under policy version 2024-12-04"),
        "{why}"
    );
    assert!(
        why.contains("version 2025-06-01 changed this purpose materially: Promotion by SMS to the mobile number"),
        "{why}"
    );

    // A fresh grant under the new version counts again.
    let regranted = [
        grant(1, "marketing", "2024-12-04", None),
        grant(2, "marketing", "2025-06-01", None),
    ];
    let (allowed, reason, _, _) = run(&p, &regranted, Action::Use, "marketing", None);
    assert!(allowed, "{reason:?}");

    // Another consent purpose the change does not touch keeps its older consent (the
    // non-material change of the mobile category does not count either).
    let other = [grant(1, "newsletter", "2024-12-04", None)];
    assert!(run(&p, &other, Action::Use, "newsletter", None).0);

    // A purpose on another basis needs no consent, so nothing is outdated.
    assert!(run(&p, &[], Action::Use, "service", None).0);
}

#[test]
fn a_consent_naming_a_recipient_is_outdated_too() {
    let p = Policy::parse(POLICY).unwrap();
    let old = [grant(1, "marketing", "2024-12-04", Some("partner"))];
    let (allowed, reason, why, _) = run(&p, &old, Action::Share, "marketing", Some("partner"));
    assert!(!allowed);
    assert_eq!(reason, Reason::ConsentOutdated, "{why}");
    let new = [grant(1, "marketing", "2025-06-01", Some("partner"))];
    let (allowed, reason, why, _) = run(&p, &new, Action::Share, "marketing", Some("partner"));
    assert!(allowed, "{reason:?} {why}");
}

#[test]
fn withdrawal_and_absence_still_come_first() {
    let p = Policy::parse(POLICY).unwrap();
    assert_eq!(
        run(&p, &[], Action::Use, "marketing", None).1,
        Reason::ConsentMissing
    );
    let mut w = grant(2, "marketing", "2025-06-01", None);
    w.action = ConsentAction::Withdraw;
    let events = [grant(1, "marketing", "2024-12-04", None), w];
    assert_eq!(
        run(&p, &events, Action::Use, "marketing", None).1,
        Reason::ConsentWithdrawn
    );
}

#[test]
fn without_a_history_nothing_is_outdated() {
    let src = POLICY.split("[[policy_version]]").next().unwrap();
    let p = Policy::parse(src).unwrap();
    let old = [grant(1, "marketing", "2019-01-01", None)];
    assert!(run(&p, &old, Action::Use, "marketing", None).0);
}
