//! Speed of staff decisions for a support agent reading contact data for `service`:
//! `authorize` (one category: builds entities, asks Cedar for `read` then `read_masked`),
//! `authorize_all` (5 categories, one entity set), and Cedar's `is_authorized` alone on the
//! equivalent prebuilt request (`StaffPolicy::bench_request`).
//!
//! Run: `cargo bench -p pivault-staff --bench authorize`.
//!
//! Measured on the 2-core dev machine while other builds ran (load average 3–6, so
//! treat as upper bounds), cedar-policy 4.14.1, release profile:
//!
//! | bench | latency (median) | decisions/s |
//! |---|---|---|
//! | `authorize`, 1 category (2 Cedar calls: `read` denied, `read_masked` allowed) | 15.7 µs | 63 k |
//! | `authorize_all`, 5 categories | 71.8 µs | 70 k categories/s |
//! | Cedar `is_authorized` alone, prebuilt request (`bench_request`) | 5.6 µs | 177 k |
//! | `StaffPolicy::load` of `policies/staff.cedar` (parse, derive schema, validate) | 477 µs | — |
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pivault_domain::policy::Policy;
use pivault_staff::cedar_policy::Authorizer;
use pivault_staff::StaffPolicy;

fn bench(c: &mut Criterion) {
    let policy = Policy::parse(include_str!("../../../policies/default.toml")).unwrap();
    let staff = StaffPolicy::load(
        include_str!("../../../policies/staff.cedar"),
        "policies/staff.cedar",
        &policy,
    )
    .unwrap();
    let support = vec!["support".to_owned()];
    let five = [
        "user.contact.mobile",
        "user.contact.email",
        "user.name",
        "user.account.id",
        "user.government_id.id_card",
    ];

    let mut group = c.benchmark_group("staff");
    group.throughput(Throughput::Elements(1));
    group.bench_function("authorize/support/user.contact.mobile/service", |b| {
        b.iter(|| {
            staff.authorize(
                black_box("li.lei"),
                black_box(&support),
                black_box("user.contact.mobile"),
                black_box("service"),
            )
        });
    });
    group.throughput(Throughput::Elements(five.len() as u64));
    group.bench_function("authorize_all/support/5 categories/service", |b| {
        b.iter(|| {
            staff.authorize_all(
                black_box("li.lei"),
                black_box(&support),
                &five,
                black_box("service"),
            )
        });
    });
    let (request, entities, policies) = staff
        .bench_request("li.lei", &support, "user.contact.mobile", "service")
        .unwrap();
    let authorizer = Authorizer::new();
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        "cedar is_authorized/support/user.contact.mobile/service",
        |b| {
            b.iter(|| authorizer.is_authorized(black_box(&request), policies, &entities));
        },
    );
    group.bench_function("load/staff.cedar", |b| {
        b.iter(|| {
            StaffPolicy::load(
                black_box(include_str!("../../../policies/staff.cedar")),
                "p",
                &policy,
            )
            .unwrap()
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
