//! In-process decision throughput and latency for the default policy with a warm consent
//! state: `cargo bench -p pivault-core --bench decisions`.
//!
//! Prints decisions/s (tight loop) and p50/p99/p999 per-call latency (each call timed alone,
//! so the numbers include ~20 ns of clock overhead). Requests mix the shapes a service sends:
//! a contract-basis use, a consent-basis use, an entrusted share, a share needing a named
//! consent, a cross-border transfer and a denial.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::cast_precision_loss
)]

use pivault_domain::consent::{ConsentAction, ConsentEvent, ConsentState, GivenBy};
use pivault_domain::decision::{decide, AccessRequest, Action, SubjectFacts};
use pivault_domain::policy::Policy;
use std::hint::black_box;
use std::time::{Duration, Instant};
use time::macros::{date, datetime};

fn policy() -> Policy {
    pivault_testkit::data::load_policy()
}

fn ev(seq: i64, purpose: &str, recipient: Option<&str>) -> ConsentEvent {
    ConsentEvent {
        seq,
        purpose: purpose.into(),
        action: ConsentAction::Grant,
        at: datetime!(2024-01-01 0:00 UTC),
        given_by: GivenBy::Subject,
        separate: recipient.is_some(),
        policy_version: "2024-12-04".into(),
        recipient: recipient.map(str::to_string),
    }
}

/// One mix of requests for a quantile over mixed work.
pub fn mix<'a>(purposes: &'a [String], cats: &'a [&'a str]) -> Vec<AccessRequest<'a>> {
    let r = |action, purpose, categories, recipient, region| AccessRequest {
        action,
        purpose,
        categories,
        principal_purposes: purposes,
        recipient,
        region,
        exception: None,
    };
    vec![
        r(Action::Use, "service", &cats[0..3], None, None),
        r(Action::Use, "marketing", &[][..], None, None),
        r(
            Action::Share,
            "service",
            &cats[0..1],
            Some("sms-gateway"),
            None,
        ),
        r(
            Action::Share,
            "share_with_partners",
            &[][..],
            Some("cloud-partner"),
            None,
        ),
        r(
            Action::CrossBorderTransfer,
            "cross_border_transfer",
            &[][..],
            Some("overseas-support"),
            None,
        ),
        r(Action::Use, "personalised_ads", &[][..], None, None),
    ]
}

fn main() {
    let policy = policy();
    let events = [
        ev(1, "service", None),
        ev(2, "marketing", None),
        ev(3, "share_with_partners", Some("cloud-partner")),
        ev(4, "cross_border_transfer", Some("overseas-support")),
        ev(5, "biometric_login", None),
    ];
    let now = datetime!(2026-11-29 0:00 UTC);
    let state = ConsentState::fold(&events, now);
    let facts = SubjectFacts {
        consent: &state,
        birth_date: Some(date!(1990 - 05 - 17)),
        erased: false,
        home_region: None,
    };
    let purposes: Vec<String> = policy.purposes().iter().map(|p| p.id.clone()).collect();
    let cats = ["user.contact.mobile", "user.name", "user.contact.email"];
    let reqs = mix(&purposes, &cats);
    let allowed = reqs
        .iter()
        .filter(|r| decide(&policy, &facts, r, now).allowed)
        .count();

    // Throughput: tight loop for ~3 s, one core.
    let t = Instant::now();
    let mut n: u64 = 0;
    while t.elapsed() < Duration::from_secs(3) {
        for r in &reqs {
            black_box(decide(&policy, black_box(&facts), black_box(r), now));
        }
        n += reqs.len() as u64;
    }
    let per_sec = n as f64 / t.elapsed().as_secs_f64();

    // Latency: each call timed alone.
    let mut lat: Vec<u32> = Vec::with_capacity(600_000);
    for i in 0..600_000 {
        let r = &reqs[i % reqs.len()];
        let t = Instant::now();
        black_box(decide(&policy, black_box(&facts), black_box(r), now));
        lat.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
    }
    lat.sort_unstable();
    let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!("pivault decide(): {} request shapes ({allowed} allowed), default policy, warm consent state", reqs.len());
    println!("  throughput: {per_sec:.0} decisions/s (1 thread)");
    println!(
        "  latency:    p50 {} ns, p99 {} ns, p99.9 {} ns",
        q(0.50),
        q(0.99),
        q(0.999)
    );

    // The equivalent authorization in Cedar, same run: "may support agent X read
    // user.contact.mobile (masked) for service?" on the repository's staff policy.
    let staff_src = std::fs::read_to_string(pivault_testkit::staff_policy_path()).unwrap();
    let staff = pivault_staff::StaffPolicy::load(&staff_src, "staff.cedar", &policy).unwrap();
    let (creq, entities, pset) = staff
        .bench_request(
            "agent-007",
            &["support".into()],
            "user.contact.mobile",
            "service",
        )
        .unwrap();
    let authz = pivault_staff::cedar_policy::Authorizer::new();
    let t = Instant::now();
    let mut m: u64 = 0;
    while t.elapsed() < Duration::from_secs(3) {
        for _ in 0..64 {
            black_box(authz.is_authorized(black_box(&creq), pset, &entities));
        }
        m += 64;
    }
    let cedar_per_sec = m as f64 / t.elapsed().as_secs_f64();
    let mut clat: Vec<u32> = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t = Instant::now();
        black_box(authz.is_authorized(black_box(&creq), pset, &entities));
        clat.push(u32::try_from(t.elapsed().as_nanos()).unwrap_or(u32::MAX));
    }
    clat.sort_unstable();
    let cq = |p: f64| clat[((clat.len() as f64 * p) as usize).min(clat.len() - 1)];
    println!("cedar-policy Authorizer::is_authorized (support reads user.contact.mobile masked for service)");
    println!("  throughput: {cedar_per_sec:.0} decisions/s (1 thread)");
    println!(
        "  latency:    p50 {} ns, p99 {} ns, p99.9 {} ns",
        cq(0.50),
        cq(0.99),
        cq(0.999)
    );
    println!(
        "ratio pivault/cedar throughput: {:.1}x",
        per_sec / cedar_per_sec
    );
}
