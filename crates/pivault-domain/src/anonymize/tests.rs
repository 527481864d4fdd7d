use proptest::prelude::*;

use super::*;
use crate::testutil::dataset;
use crate::weblog::{anonymize, parse_combined};

#[test]
fn orders_keep_product_and_exact_amount_and_coarsen_the_month() {
    let o = anonymize_order("RDS", "13881.60", 1_774_657_145); // 2026-03-28T00:19:05Z
    assert_eq!(
        o,
        AnonOrder {
            month: "2026-03".into(),
            product: "RDS".into(),
            amount: "13881.60".into(),
        }
    );
    // The amount's text is never re-formatted (no float: trailing zeros, long digits stay).
    let exact = "12345678901234567.10";
    assert_eq!(anonymize_order("ECS", exact, 0).amount, exact);
}

#[test]
fn utc_month_edges() {
    for (secs, month) in [
        (0, "1970-01"),
        (-1, "1969-12"),
        (951_782_399, "2000-02"), // 2000-02-28T23:59:59Z
        (951_868_799, "2000-02"), // 2000-02-29T23:59:59Z, leap
        (951_868_800, "2000-03"),
        (1_709_251_199, "2024-02"),
        (1_709_251_200, "2024-03"),
        (253_402_300_799, "9999-12"),
    ] {
        assert_eq!(utc_month(secs), month, "{secs}");
    }
    // No panic at the extremes.
    let _ = utc_month(i64::MIN);
    let _ = utc_month(i64::MAX);
}

proptest! {
    #[test]
    fn utc_month_agrees_with_the_time_crate(secs in -62_135_596_800i64..253_402_300_800) {
        let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
        let expected = format!("{:04}-{:02}", t.year(), u8::from(t.month()));
        prop_assert_eq!(utc_month(secs), expected);
    }

    #[test]
    fn suppression_leaves_k_at_least_k_min(
        rows in proptest::collection::vec(0u8..12, 0..200),
        k_min in 0usize..8,
    ) {
        let before = k_anonymity(&rows, k_min, |r| *r);
        let (kept, dropped) = suppress_below(rows.clone(), k_min, |r| *r);
        prop_assert_eq!(dropped, before.rows_below);
        prop_assert_eq!(kept.len() + dropped, rows.len());
        let after = k_anonymity(&kept, k_min, |r| *r);
        prop_assert!(kept.is_empty() || after.k >= k_min);
        prop_assert_eq!(after.rows_below, 0);
        // order kept
        let expected: Vec<u8> = rows.iter().copied().filter(|r| rows.iter().filter(|x| *x == r).count() >= k_min).collect();
        prop_assert_eq!(kept, expected);
    }
}

#[test]
fn k_anonymity_of_nothing_is_zero() {
    let rows: [u8; 0] = [];
    assert_eq!(
        k_anonymity(&rows, 5, |r| *r),
        KReport {
            rows: 0,
            classes: 0,
            k: 0,
            rows_below: 0
        }
    );
    let (kept, dropped) = suppress_below(Vec::<u8>::new(), 5, |r| *r);
    assert!(kept.is_empty());
    assert_eq!(dropped, 0);
}

#[test]
fn kinds_name_their_quasi_identifiers() {
    for kind in AnonKind::ALL {
        assert_eq!(AnonKind::parse_name(kind.as_str()), Some(kind));
        assert_eq!(crate::testutil::serde_name(kind), kind.as_str());
        assert_eq!(kind.to_string(), kind.as_str());
    }
    assert_eq!(AnonKind::parse_name("Weblog"), None);
    let line = parse_combined(
        r#"29.46.159.63 - u106057 [02/Oct/2026:04:24:02 +0000] "GET /pricing HTTP/1.1" 200 23029 "-" "curl/8.0""#,
    )
    .unwrap();
    let w = anonymize(&line);
    for name in AnonKind::Weblog.quasi_identifier_names() {
        assert!(qi_value_weblog(&w, name).is_some(), "{name}");
    }
    assert_eq!(qi_value_weblog(&w, "hour").as_deref(), Some("1790913600"));
    assert_eq!(qi_value_weblog(&w, "ua_major").as_deref(), Some("8"));
    assert_eq!(qi_value_weblog(&w, "bytes"), None);
    assert_eq!(qi_value_weblog(&w, "remote_user"), None);
    let o = anonymize_order("ECS", "1.00", 0);
    for name in AnonKind::Order.quasi_identifier_names() {
        assert!(qi_value_order(&o, name).is_some(), "{name}");
    }
    assert_eq!(qi_value_order(&o, "account_id"), None);
}

// ---------------------------------------------------------------------------
// Measured on the data set (`cargo test -p pivault-domain k_on_the_data_set -- --nocapture`)

fn weblog_rows() -> Vec<AnonWebLog> {
    let path = dataset("access.log");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|l| anonymize(&parse_combined(l).unwrap()))
        .collect()
}

fn order_rows() -> Vec<AnonOrder> {
    let path = dataset("orders.csv");
    let mut reader = csv::Reader::from_path(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let paid =
                time::OffsetDateTime::parse(&r[4], &time::format_description::well_known::Rfc3339)
                    .unwrap()
                    .unix_timestamp();
            anonymize_order(&r[2], &r[3], paid)
        })
        .collect()
}

/// Key of `names` through `value`; panics on an unknown name (a test bug).
fn key<R>(row: &R, names: &[&str], value: fn(&R, &str) -> Option<String>) -> Vec<String> {
    names.iter().map(|n| value(row, n).unwrap()).collect()
}

#[test]
fn k_on_the_data_set() {
    const K_MIN: usize = 5;
    let logs = weblog_rows();
    let orders = order_rows();
    let report = |what: &str, r: KReport| {
        println!(
            "{what}: rows {}, classes {}, k {}, rows in classes < {K_MIN}: {} ({:.1}%)",
            r.rows,
            r.classes,
            r.k,
            r.rows_below,
            100.0 * r.rows_below as f64 / r.rows.max(1) as f64
        );
    };
    let mut results = Vec::new();
    for names in [
        &["client_net", "ua_family", "ua_major"][..],
        &["hour", "client_net"][..],
        &["ua_family", "ua_major"][..],
        &["ua_family"][..],
        &["hour"][..],
        &["path", "status"][..],
    ] {
        let r = k_anonymity(&logs, K_MIN, |row| key(row, names, qi_value_weblog));
        report(&format!("weblog {names:?}"), r);
        let (kept, dropped) =
            suppress_below(logs.clone(), K_MIN, |row| key(row, names, qi_value_weblog));
        let after = k_anonymity(&kept, K_MIN, |row| key(row, names, qi_value_weblog));
        println!(
            "  suppress_below({K_MIN}): dropped {dropped}, kept {} with k {}",
            kept.len(),
            after.k
        );
        assert!(kept.is_empty() || after.k >= K_MIN);
        results.push(r);
    }
    for names in [
        &["product", "month"][..],
        &["product", "month", "amount"][..],
        &["product"][..],
    ] {
        let r = k_anonymity(&orders, K_MIN, |row| key(row, names, qi_value_order));
        report(&format!("order {names:?}"), r);
        results.push(r);
    }
    assert_eq!(results[0].rows, 50_000);
    // Every access.log client is a distinct /24 nearly everywhere: the address network
    // alone re-identifies, which is why a policy must not release it with fine columns.
    assert!(results[0].k < K_MIN);
}
