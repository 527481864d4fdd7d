//! Micro-measure of the retention sweep's hot path on SQLite: `WriteTx::delete_records` plus
//! one audit entry per deleted record, committed in batches, over 100,000 records of three
//! sealed fields each. Not a pass/fail test (timings depend on the machine); run with
//! `cargo test -p pivault-store --release --test retention_throughput -- --ignored --nocapture`.
//! `PIVAULT_SWEEP_BATCH` sets the records per transaction (default 1,000) and
//! `PIVAULT_SWEEP_RECORDS` the records (default 100,000), `PIVAULT_SWEEP_AUDIT` the audit entries
//! (`record`: one per record, the default; `batch`: one per transaction; `none`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_domain::audit::AuditRecord;
use pivault_store::{FieldRow, RetentionItem, Store};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test: run with --ignored --nocapture (release)"]
async fn delete_records_throughput() {
    let records = env_usize("PIVAULT_SWEEP_RECORDS", 100_000);
    let batch = env_usize("PIVAULT_SWEEP_BATCH", 1_000);
    let audit = std::env::var("PIVAULT_SWEEP_AUDIT").unwrap_or_else(|_| "record".into());
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sweep.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.set_audit_key(pivault_testkit::keys::key_ring(9).audit_chain_key());

    // Setup: `records` order records over records/4 subjects, three fields each (60-byte
    // ciphertexts, like a sealed short value), each registered as a retention item.
    let pairs: Vec<(String, String)> = (0..records)
        .map(|i| {
            (
                format!("{:08x}-0000-4000-8000-{:012x}", i / 4, i / 4),
                format!("order:o{i:08}"),
            )
        })
        .collect();
    let setup = Instant::now();
    for chunk in pairs.chunks(10_000) {
        let mut tx = store.begin(1).await.unwrap();
        let fields: Vec<FieldRow> = chunk
            .iter()
            .flat_map(|(s, r)| {
                ["amount_cny", "paid_at", "address"].map(|n| FieldRow {
                    subject_id: s.clone(),
                    record: r.clone(),
                    name: n.into(),
                    category: "order.transaction".into(),
                    key_id: "dek-1".into(),
                    ciphertext: vec![0xA5; 60],
                    restricted_until: None,
                    updated_at: 1,
                })
            })
            .collect();
        tx.insert_fields_if_absent(&fields).await.unwrap();
        let items: Vec<RetentionItem> = chunk
            .iter()
            .enumerate()
            .map(|(i, (s, r))| RetentionItem {
                subject_id: s.clone(),
                record: r.clone(),
                category: "order.transaction".into(),
                event_at: i64::try_from(i).unwrap(),
            })
            .collect();
        tx.insert_retention_items(&items).await.unwrap();
        tx.commit().await.unwrap();
    }
    let setup = setup.elapsed();

    // The sweep: page through due items, delete each batch with an audit entry per record.
    let started = Instant::now();
    let mut deleted_fields = 0;
    let mut deleted_records = 0;
    let (mut t_page, mut t_delete, mut t_commit) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    loop {
        let t = Instant::now();
        let page = store
            .due_items_by_subject(
                "order.transaction",
                i64::MAX,
                None,
                i64::try_from(batch).unwrap(),
                &[],
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        let recs: Vec<(String, String)> =
            page.into_iter().map(|i| (i.subject_id, i.record)).collect();
        t_page += t.elapsed();
        let mut tx = store.begin(2).await.unwrap();
        let t = Instant::now();
        deleted_fields += tx.delete_records(&recs).await.unwrap();
        t_delete += t.elapsed();
        let audited = match audit.as_str() {
            "none" => &recs[..0],
            "batch" => &recs[..1],
            _ => &recs[..],
        };
        for (s, r) in audited {
            tx.audit(AuditRecord {
                at: 2,
                actor: "retention".into(),
                action: "retention.delete".into(),
                subject_id: Some(s.clone()),
                categories: "order.transaction".into(),
                outcome: "ok".into(),
                reason: Some("retention_expired".into()),
                legal_basis: Some("PIPL Art. 47".into()),
                policy_version: "v1".into(),
                detail: Some(r.clone()),
                ..AuditRecord::default()
            });
        }
        let t = Instant::now();
        tx.commit().await.unwrap();
        t_commit += t.elapsed();
        deleted_records += recs.len();
    }
    let took = started.elapsed();
    assert_eq!(deleted_records, records);
    assert_eq!(deleted_fields, 3 * records as u64);
    assert_eq!(store.count("fields").await.unwrap(), 0);
    #[allow(clippy::cast_precision_loss)]
    let rate = records as f64 / took.as_secs_f64();
    println!(
        "delete_records: {records} records ({deleted_fields} fields) in batches of {batch}, audit entries per \
         {audit}: {took:.2?} = {rate:.0} records/s (setup {setup:.2?}; \
         due_items {t_page:.2?}, delete_records {t_delete:.2?}, audit append + commit \
         {t_commit:.2?})"
    );
    store.close().await;
}
