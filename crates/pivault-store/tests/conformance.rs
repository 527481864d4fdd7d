//! The store conformance suite: one set of test bodies that every backend must pass.
//!
//! Each body runs twice: in `sqlite::…` on a fresh SQLite file, and in `postgres::…` on a fresh
//! PostgreSQL database created through `PIVAULT_TEST_DATABASE_URL` and dropped afterwards. When
//! that variable is unset the PostgreSQL variants print a `SKIPPED` line and return (`.ci/run`
//! always sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_domain::audit::AuditRecord;
use pivault_store::{
    AnonOrderRow, AnonWeblogRow, ApiKeyRow, ConsentRow, FieldRow, HoldRow, KeyGenRow, KeyJobRow,
    KeyRow, PolicyVersionRow, PolicyVersionUpsert, RetentionItem, RetentionStat, Store, StoreError,
    SubjectRow, SweepRunRow,
};
use pivault_testkit::TestDatabase;

/// The audit chain key the suite appends with (the vault derives it from its master key).
fn chain_key() -> pivault_crypto::AuditChainKey {
    pivault_testkit::keys::key_ring(9).audit_chain_key()
}

async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let store = Store::connect(&url).await.unwrap();
    store.set_audit_key(chain_key());
    (store, dir)
}

async fn postgres_store(test: &str) -> Option<(Store, TestDatabase)> {
    let db = TestDatabase::for_test(&format!("postgres::{test}")).await?;
    let store = Store::connect_with(db.url(), Some(8)).await.unwrap();
    store.set_audit_key(chain_key());
    Some((store, db))
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((store, _db)) = super::postgres_store(stringify!($name)).await else {
                        return;
                    };
                    assert_eq!(store.backend(), pivault_store::Backend::Postgres);
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

conformance!(
    migrations_are_idempotent_and_start_an_empty_chain,
    subjects_insert_once_and_unknown_ids_read_as_none,
    a_second_dek_for_the_same_subject_and_scope_is_not_stored,
    field_upsert_replaces_and_insert_if_absent_keeps_the_first,
    erasure_deletes_unrestricted_fields_and_the_sweep_deletes_expired_restricted_ones,
    fields_in_reads_exactly_the_named_categories_and_live_categories_skip_restricted_ones,
    blind_index_returns_every_match_sorted_and_forgets_by_kind,
    consent_events_skip_repeated_refs_and_keep_ledger_order,
    api_keys_round_trip_with_null_revocation,
    key_lifecycle_rows_round_trip_and_jobs_resume,
    audit_entries_chain_from_genesis_and_move_the_head,
    bulk_probes_answer_across_chunk_boundaries,
    count_counts_rows_and_refuses_unknown_tables,
    a_transaction_dropped_without_commit_leaves_nothing,
    concurrent_writers_serialize_on_the_audit_head,
    status_and_lookup_inside_a_transaction_see_committed_writes,
    reads_inside_a_write_transaction_go_through_it_and_see_its_own_writes,
    a_task_holding_a_write_transaction_is_refused_the_pool,
    the_head_carries_a_mac_and_a_moved_head_refuses_appends,
    vault_meta_starts_unchecked_and_round_trips,
    legal_holds_insert_release_and_list,
    retention_items_insert_idempotently,
    due_items_page_in_order_after_the_cursor_and_skip_held_subjects,
    delete_records_removes_exactly_those_fields_and_items,
    anonymized_rows_insert_and_page,
    the_sweep_lease_is_exclusive_and_taken_over_after_expiry,
    the_expired_restricted_batch_skips_held_subjects_and_categories,
    retention_stats_count_items_due_and_restricted_fields,
    sweep_runs_upsert_and_list_newest_first,
    subject_clocks_close_touch_and_list,
    the_outbox_is_exactly_once_leased_to_one_holder_and_counts_attempts,
    a_published_policy_version_is_stored_once_and_never_rewritten,
    audit_shards_route_by_subject_and_their_stored_trees_give_rfc_9162_proofs,
    writers_on_different_shards_commit_side_by_side_and_each_chain_stays_one,
);

fn subject(id: &str) -> SubjectRow {
    SubjectRow {
        id: id.into(),
        kind: "account".into(),
        status: "active".into(),
        created_at: 1_700_000_000,
        erased_at: None,
        home_region: None,
        lock_case: None,
        lang: None,
    }
}

fn key(subject: &str, scope: &str, key_id: &str, wrapped: &[u8]) -> KeyRow {
    KeyRow {
        subject_id: subject.into(),
        scope: scope.into(),
        key_id: key_id.into(),
        kek_id: "kek1".into(),
        wrapped: wrapped.to_vec(),
        created_at: 1_700_000_000,
    }
}

fn field(subject: &str, record: &str, name: &str, ct: &[u8], until: Option<i64>) -> FieldRow {
    FieldRow {
        subject_id: subject.into(),
        record: record.into(),
        name: name.into(),
        category: "user.name".into(),
        key_id: "k1".into(),
        ciphertext: ct.to_vec(),
        restricted_until: until,
        updated_at: 1_700_000_000,
    }
}

fn consent(event_ref: &str, subject: &str, at: i64, separate: bool) -> ConsentRow {
    ConsentRow {
        seq: 0,
        event_ref: event_ref.into(),
        subject_id: subject.into(),
        purpose: "marketing".into(),
        action: "grant".into(),
        at,
        given_by: "self".into(),
        method: "web".into(),
        separate,
        policy_version: "2024-12-04".into(),
        recorded_at: at,
        recipient: None,
    }
}

fn rec(action: &str, subject: Option<&str>) -> AuditRecord {
    AuditRecord {
        at: 1_700_000_000,
        actor: "test".into(),
        action: action.into(),
        subject_id: subject.map(str::to_string),
        outcome: "ok".into(),
        policy_version: "v".into(),
        ..AuditRecord::default()
    }
}

async fn migrations_are_idempotent_and_start_an_empty_chain(store: Store) {
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let (seq, hash) = store.audit_head().await.unwrap();
    assert_eq!((seq, hash), (0, vec![0u8; 32]));
    assert_eq!(store.count("subjects").await.unwrap(), 0);
    store
        .record_policy_version("v1", "h", 1_700_000_000)
        .await
        .unwrap();
    store
        .record_policy_version("v1", "h", 1_700_000_000)
        .await
        .unwrap();
}

async fn subjects_insert_once_and_unknown_ids_read_as_none(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subject(&subject("s1")).await.unwrap();
    assert!(matches!(
        tx.insert_subject(&subject("s1")).await,
        Err(StoreError::Conflict(_))
    ));
    tx.insert_subjects(&[subject("s2"), subject("s3")])
        .await
        .unwrap();
    tx.mark_erased("s3", 1_800_000_000).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.subject("s1").await.unwrap(), Some(subject("s1")));
    let s3 = store.subject("s3").await.unwrap().unwrap();
    assert_eq!(
        (s3.status.as_str(), s3.erased_at),
        ("erased", Some(1_800_000_000))
    );
    assert_eq!(store.subject("nope").await.unwrap(), None);
    assert_eq!(store.subject_key("nope", "primary").await.unwrap(), None);
    assert_eq!(store.api_key("nope").await.unwrap(), None);
    assert!(store.fields("nope").await.unwrap().is_empty());
    assert!(store.consent_events("nope").await.unwrap().is_empty());
    assert!(!store.consent_ref_exists("nope").await.unwrap());
}

async fn a_second_dek_for_the_same_subject_and_scope_is_not_stored(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    assert_eq!(
        tx.insert_keys(&[key("s1", "primary", "dekA", &[1, 2, 3])])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        tx.insert_keys(&[
            key("s1", "primary", "dekB", &[9, 9]),
            key("s1", "restricted", "dekC", &[7])
        ])
        .await
        .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let k = store.subject_key("s1", "primary").await.unwrap().unwrap();
    assert_eq!((k.key_id.as_str(), k.wrapped), ("dekA", vec![1, 2, 3]));
    assert_eq!(store.subject_keys("s1").await.unwrap().len(), 2);
    let mut tx = store.begin(2).await.unwrap();
    assert_eq!(tx.delete_key("s1", "primary").await.unwrap(), 1);
    assert_eq!(tx.delete_key("s1", "primary").await.unwrap(), 0);
    tx.commit().await.unwrap();
    assert_eq!(store.subject_key("s1", "primary").await.unwrap(), None);
}

async fn field_upsert_replaces_and_insert_if_absent_keeps_the_first(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.upsert_fields(&[
        field("s1", "profile", "name", b"one", None),
        field("s1", "profile", "mobile", b"m", None),
    ])
    .await
    .unwrap();
    tx.upsert_fields(&[field("s1", "profile", "name", b"two", None)])
        .await
        .unwrap();
    assert_eq!(
        tx.insert_fields_if_absent(&[
            field("s1", "profile", "name", b"three", None),
            field("s1", "order:1", "amount", &[0, 255, 0], Some(5)),
        ])
        .await
        .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let f = store.fields("s1").await.unwrap();
    let got: Vec<(&str, &str, &[u8], Option<i64>)> = f
        .iter()
        .map(|r| {
            (
                r.record.as_str(),
                r.name.as_str(),
                r.ciphertext.as_slice(),
                r.restricted_until,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("order:1", "amount", &[0u8, 255, 0][..], Some(5)),
            ("profile", "mobile", &b"m"[..], None),
            ("profile", "name", &b"two"[..], None),
        ]
    );
}

async fn erasure_deletes_unrestricted_fields_and_the_sweep_deletes_expired_restricted_ones(
    store: Store,
) {
    let mut tx = store.begin(1).await.unwrap();
    tx.upsert_fields(&[
        field("s1", "profile", "name", b"n", None),
        field("s1", "order:1", "amount", b"a", Some(100)),
        field("s1", "order:2", "amount", b"b", Some(300)),
        field("s2", "order:9", "amount", b"c", Some(50)),
        field("s2", "order:9", "paid_at", b"d", Some(50)),
    ])
    .await
    .unwrap();
    assert_eq!(tx.delete_unrestricted_fields("s1").await.unwrap(), 1);
    tx.commit().await.unwrap();
    let mut tx = store.begin(2).await.unwrap();
    assert_eq!(
        tx.delete_expired_restricted(100).await.unwrap(),
        vec![("s1".to_string(), 1), ("s2".to_string(), 2)]
    );
    assert!(tx.delete_expired_restricted(100).await.unwrap().is_empty());
    tx.commit().await.unwrap();
    let left = store.fields("s1").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].restricted_until, Some(300));
    assert!(store.fields("s2").await.unwrap().is_empty());
}

/// Issue 16: what an erasure step reads instead of every field. Three categories named, so a
/// placeholder bound to the wrong value drops one (sqlx numbers SQLite's `?` apart from `$N`).
async fn fields_in_reads_exactly_the_named_categories_and_live_categories_skip_restricted_ones(
    store: Store,
) {
    let of = |record: &str, name: &str, category: &str, until: Option<i64>| FieldRow {
        category: category.into(),
        ..field("s1", record, name, b"x", until)
    };
    let mut tx = store.begin(1).await.unwrap();
    tx.upsert_fields(&[
        of("profile", "name", "user.name", None),
        of("profile", "account", "user.account_id", None),
        of("order:1", "amount", "user.transaction.amount", Some(100)),
        of("order:1", "paid_at", "user.transaction.paid_at", None),
        of("order:2", "paid_at", "user.transaction.paid_at", None),
        FieldRow {
            category: "user.transaction.paid_at".into(),
            ..field("s2", "order:9", "paid_at", b"y", None)
        },
    ])
    .await
    .unwrap();
    let got = tx
        .fields_in(
            "s1",
            &[
                "user.transaction.amount",
                "user.account_id",
                "user.transaction.paid_at",
            ],
        )
        .await
        .unwrap();
    let keys: Vec<(&str, &str)> = got
        .iter()
        .map(|f| (f.record.as_str(), f.name.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("order:1", "amount"),
            ("order:1", "paid_at"),
            ("order:2", "paid_at"),
            ("profile", "account")
        ]
    );
    assert!(got.iter().all(|f| f.subject_id == "s1"));
    assert!(tx.fields_in("s1", &[]).await.unwrap().is_empty());
    assert!(tx
        .fields_in("nobody", &["user.name"])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        tx.live_categories("s1").await.unwrap(),
        ["user.account_id", "user.name", "user.transaction.paid_at"]
    );
    tx.commit().await.unwrap();
}

async fn blind_index_returns_every_match_sorted_and_forgets_by_kind(store: Store) {
    let shared = [7u8; 32];
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_blind_index(
        1,
        &[
            ("email", shared, "s3"),
            ("email", shared, "s1"),
            ("email", shared, "s2"),
            ("email", shared, "s1"),
            ("mobile", shared, "s1"),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.lookup("email", &shared).await.unwrap(),
        vec!["s1", "s2", "s3"]
    );
    assert!(store.lookup("email", &[8u8; 32]).await.unwrap().is_empty());
    let mut tx = store.begin(2).await.unwrap();
    assert_eq!(tx.delete_blind_index("s1", Some("email")).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(store.lookup("mobile", &shared).await.unwrap(), vec!["s1"]);
    assert_eq!(
        store.lookup("email", &shared).await.unwrap(),
        vec!["s2", "s3"]
    );
    let mut tx = store.begin(3).await.unwrap();
    assert_eq!(tx.delete_blind_index("s1", None).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert!(store.lookup("mobile", &shared).await.unwrap().is_empty());
}

async fn consent_events_skip_repeated_refs_and_keep_ledger_order(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    assert_eq!(
        tx.insert_consents(&[
            consent("e2", "s1", 200, true),
            consent("e1", "s1", 100, false)
        ])
        .await
        .unwrap(),
        2
    );
    assert_eq!(
        tx.insert_consents(&[
            consent("e1", "s1", 100, false),
            consent("e3", "s1", 50, false)
        ])
        .await
        .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let rows = store.consent_events("s1").await.unwrap();
    let refs: Vec<&str> = rows.iter().map(|r| r.event_ref.as_str()).collect();
    assert_eq!(refs, vec!["e2", "e1", "e3"]);
    assert!(rows[0].separate && !rows[1].separate);
    assert!(rows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(store.consent_ref_exists("e3").await.unwrap());
    let mut found = store
        .existing_consent_refs(&["e1", "x", "e3"])
        .await
        .unwrap();
    found.sort();
    assert_eq!(found, vec!["e1", "e3"]);
}

async fn api_keys_round_trip_with_null_revocation(store: Store) {
    let k = ApiKeyRow {
        key_id: "0123456789abcdef".into(),
        principal: "billing".into(),
        roles: "app".into(),
        purposes: "service,legal_obligation".into(),
        token_hash: vec![0xAB; 32],
        created_at: 1_700_000_000,
        revoked_at: None,
        expires_at: None,
        replaced_by: None,
    };
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_api_key(&k).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.api_key(&k.key_id).await.unwrap(), Some(k));
}

/// Issue 11: API-key lifecycle columns, the keys epoch, key generations, job progress, the
/// rewrap compare-and-set and the per-generation blind-index counts.
async fn key_lifecycle_rows_round_trip_and_jobs_resume(store: Store) {
    let k = ApiKeyRow {
        key_id: "00000000000000aa".into(),
        principal: "billing".into(),
        roles: "app".into(),
        purposes: "service".into(),
        token_hash: vec![1; 32],
        created_at: 10,
        revoked_at: None,
        expires_at: Some(1_000),
        replaced_by: None,
    };
    let epoch0 = store.keys_epoch().await.unwrap();
    let mut tx = store.begin(11).await.unwrap();
    tx.insert_api_key(&k).await.unwrap();
    assert_eq!(
        tx.set_api_key_lifecycle(&k.key_id, Some(12), Some(1_000), Some("00000000000000bb"))
            .await
            .unwrap(),
        1
    );
    tx.bump_keys_epoch().await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.keys_epoch().await.unwrap(), epoch0 + 1);
    let got = store.api_key(&k.key_id).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(12));
    assert_eq!(got.replaced_by.as_deref(), Some("00000000000000bb"));
    assert_eq!(store.api_keys().await.unwrap(), vec![got]);

    let g = KeyGenRow {
        kind: "kek".into(),
        generation: 2,
        key_id: "kek-0011223344556677".into(),
        salt: vec![7; 32],
        state: "current".into(),
        created_at: 13,
        retired_at: None,
    };
    let job = KeyJobRow {
        kind: "rewrap".into(),
        generation: 2,
        state: "running".into(),
        cursor_subject: "s1".into(),
        cursor_scope: "primary".into(),
        done: 1,
        total: 2,
        started_at: 13,
        updated_at: 13,
    };
    let mut tx = store.begin(13).await.unwrap();
    tx.insert_key_generation(&g).await.unwrap();
    tx.set_key_generation_state("kek", 2, "retired", Some(14))
        .await
        .unwrap();
    tx.put_key_job(&job).await.unwrap();
    tx.put_key_job(&KeyJobRow {
        done: 2,
        ..job.clone()
    })
    .await
    .unwrap();
    let keys = ["s1", "s2", "s3"].map(|s| KeyRow {
        subject_id: s.into(),
        scope: "primary".into(),
        key_id: format!("dek-{s}"),
        kek_id: "kek-old".into(),
        wrapped: vec![0; 60],
        created_at: 1,
    });
    tx.insert_keys(&keys).await.unwrap();
    tx.insert_blind_index(
        1,
        &[("email", [1; 32], "s1"), ("erased_account_id", [2; 32], "")],
    )
    .await
    .unwrap();
    tx.insert_blind_index(2, &[("email", [3; 32], "s1")])
        .await
        .unwrap();
    // resume after (s1, primary): s2 and s3
    let after = tx.keys_after("s1", "primary", 10).await.unwrap();
    assert_eq!(
        after
            .iter()
            .map(|k| k.subject_id.as_str())
            .collect::<Vec<_>>(),
        ["s2", "s3"]
    );
    let moved = KeyRow {
        kek_id: "kek-new".into(),
        wrapped: vec![1; 60],
        ..after[0].clone()
    };
    assert_eq!(tx.rewrap_key("kek-old", &moved).await.unwrap(), 1);
    // compare-and-set: a second rewrap from the old KEK changes nothing
    assert_eq!(tx.rewrap_key("kek-old", &moved).await.unwrap(), 0);
    assert_eq!(tx.count_keys_not_under("kek-new").await.unwrap(), 2);
    assert_eq!(tx.count_keys_under("kek-new").await.unwrap(), 1);
    assert_eq!(tx.count_index_not_under(2).await.unwrap(), 1);
    assert_eq!(tx.index_subjects_after(2, "", 10).await.unwrap(), ["s1"]);
    assert!(tx.index_subjects_missing(2).await.unwrap().is_empty());
    assert_eq!(
        tx.lookup_any("email", &[[1; 32], [3; 32]]).await.unwrap(),
        ["s1"]
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store
            .lookup_any("email", &[[1; 32], [3; 32]])
            .await
            .unwrap(),
        ["s1"]
    );
    assert_eq!(
        store.index_rows_per_generation().await.unwrap(),
        vec![(1, 1, 1), (2, 1, 0)]
    );
    assert_eq!(
        store.wrapped_keys_per_kek().await.unwrap(),
        vec![("kek-new".to_string(), 1), ("kek-old".to_string(), 2)]
    );
    let gens = store.key_generations().await.unwrap();
    assert_eq!(gens.len(), 1);
    assert_eq!(
        (gens[0].state.as_str(), gens[0].retired_at),
        ("retired", Some(14))
    );
    assert_eq!(store.key_job("rewrap").await.unwrap().unwrap().done, 2);
    let mut tx = store.begin(15).await.unwrap();
    assert_eq!(tx.delete_index_not_under(2).await.unwrap(), 1);
    tx.commit().await.unwrap();
    // the suppression list of erased accounts stays under its generation
    assert_eq!(
        store.index_rows_per_generation().await.unwrap(),
        vec![(1, 0, 1), (2, 1, 0)]
    );
}

async fn audit_entries_chain_from_genesis_and_move_the_head(store: Store) {
    let mut tx = store.begin(10).await.unwrap();
    tx.audit(rec("a", Some("s1")));
    tx.audit(rec("b", None));
    assert_eq!(tx.commit().await.unwrap(), 2);
    let mut tx = store.begin(11).await.unwrap();
    tx.audit(rec("c", Some("s1")));
    assert_eq!(tx.commit().await.unwrap(), 3);
    // a transaction without audit entries leaves the head alone (and appends nothing: 0)
    assert_eq!(store.begin(12).await.unwrap().commit().await.unwrap(), 0);
    let page = store.audit_page(0, 100).await.unwrap();
    assert_eq!(page.len(), 3);
    let mut prev = vec![0u8; 32];
    for (i, row) in page.iter().enumerate() {
        assert_eq!(row.record.seq, i64::try_from(i).unwrap() + 1);
        assert_eq!(row.prev_hash, prev);
        assert_eq!(
            row.hash,
            chain_key()
                .link(
                    &prev.clone().try_into().unwrap(),
                    &row.record.canonical_bytes()
                )
                .to_vec()
        );
        prev.clone_from(&row.hash);
    }
    assert_eq!(store.audit_head().await.unwrap(), (3, prev));
    assert_eq!(store.audit_page(1, 1).await.unwrap()[0].record.action, "b");
    let mine = store.audit_for_subject("s1", 10).await.unwrap();
    assert_eq!(
        mine.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![3, 1],
        "newest first"
    );
    store.tamper_audit_action(2, "x").await.unwrap();
    assert_eq!(store.audit_page(1, 1).await.unwrap()[0].record.action, "x");
}

async fn bulk_probes_answer_across_chunk_boundaries(store: Store) {
    // 1,000 rows: more than two chunks of 400 bound rows each.
    let ids: Vec<String> = (0..1000).map(|i| format!("s{i:04}")).collect();
    let digests: Vec<[u8; 32]> = (0..1000u32)
        .map(|i| {
            let mut d = [0u8; 32];
            d[..4].copy_from_slice(&i.to_be_bytes());
            d
        })
        .collect();
    let mut tx = store.begin(1).await.unwrap();
    let subjects: Vec<SubjectRow> = ids.iter().map(|i| subject(i)).collect();
    tx.insert_subjects(&subjects).await.unwrap();
    let keys: Vec<KeyRow> = ids
        .iter()
        .step_by(2)
        .map(|i| key(i, "primary", &format!("dek-{i}"), i.as_bytes()))
        .collect();
    assert_eq!(tx.insert_keys(&keys).await.unwrap(), 500);
    let idx: Vec<(&str, [u8; 32], &str)> = ids
        .iter()
        .zip(&digests)
        .step_by(3)
        .map(|(i, d)| ("account_id", *d, i.as_str()))
        .collect();
    tx.insert_blind_index(1, &idx).await.unwrap();
    let fields: Vec<FieldRow> = ids
        .iter()
        .step_by(5)
        .flat_map(|i| {
            [
                field(i, "profile", "name", b"x", None),
                field(i, "profile", "mobile", b"y", None),
            ]
        })
        .collect();
    assert_eq!(tx.insert_fields_if_absent(&fields).await.unwrap(), 400);
    tx.commit().await.unwrap();

    let found = store.lookup_many("account_id", &digests).await.unwrap();
    assert_eq!(found.len(), 334);
    assert!(found
        .iter()
        .all(|(d, s)| d.len() == 32 && digests[s[1..].parse::<usize>().unwrap()].as_slice() == d));

    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let keys = store.subject_keys_many(&refs, "primary").await.unwrap();
    assert_eq!(keys.len(), 500);
    assert!(keys.iter().all(|k| k.wrapped == k.subject_id.as_bytes()));
    assert!(store
        .subject_keys_many(&refs, "restricted")
        .await
        .unwrap()
        .is_empty());

    let pairs: Vec<(&str, &str)> = ids
        .iter()
        .flat_map(|i| [(i.as_str(), "profile"), (i.as_str(), "order:1")])
        .collect();
    let mut existing = store.existing_records(&pairs).await.unwrap();
    existing.sort();
    assert_eq!(
        existing.len(),
        200,
        "one row per (subject, record), not per field"
    );
    assert_eq!(existing[0], ("s0000".to_string(), "profile".to_string()));
    assert_eq!(store.count("fields").await.unwrap(), 400);
}

async fn count_counts_rows_and_refuses_unknown_tables(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subjects(&[subject("a"), subject("b")])
        .await
        .unwrap();
    tx.audit(rec("x", None));
    tx.commit().await.unwrap();
    assert_eq!(store.count("subjects").await.unwrap(), 2);
    assert_eq!(store.count("audit_log").await.unwrap(), 1);
    assert_eq!(store.count("api_keys").await.unwrap(), 0);
    assert!(matches!(
        store.count("pg_class").await,
        Err(StoreError::Conflict(_))
    ));
}

async fn a_transaction_dropped_without_commit_leaves_nothing(store: Store) {
    {
        let mut tx = store.begin(1).await.unwrap();
        tx.insert_subject(&subject("s1")).await.unwrap();
        tx.audit(rec("a", Some("s1")));
    }
    // the next writer gets the head lock (the dropped one released it)
    let mut tx = store.begin(2).await.unwrap();
    tx.audit(rec("b", None));
    assert_eq!(tx.commit().await.unwrap(), 1);
    assert_eq!(store.subject("s1").await.unwrap(), None);
}

async fn concurrent_writers_serialize_on_the_audit_head(store: Store) {
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..25 {
                let mut tx = store.begin(i).await.unwrap();
                tx.insert_consents(&[consent(&format!("t{t}-{i}"), "s1", i, false)])
                    .await
                    .unwrap();
                tx.audit(rec("consent.grant", Some("s1")));
                tx.audit(rec("extra", None));
                tx.commit().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let page = store.audit_page(0, 1000).await.unwrap();
    assert_eq!(page.len(), 400);
    let mut prev = vec![0u8; 32];
    for (i, row) in page.iter().enumerate() {
        assert_eq!(row.record.seq, i64::try_from(i).unwrap() + 1);
        assert_eq!(row.prev_hash, prev, "fork at {}", row.record.seq);
        prev.clone_from(&row.hash);
    }
    assert_eq!(store.audit_head().await.unwrap(), (400, prev));
    assert_eq!(store.consent_events("s1").await.unwrap().len(), 200);
}

async fn status_and_lookup_inside_a_transaction_see_committed_writes(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subject(&subject("s1")).await.unwrap();
    tx.insert_blind_index(1, &[("account_id", [1u8; 32], "s1")])
        .await
        .unwrap();
    assert_eq!(
        tx.subject_status("s1").await.unwrap().as_deref(),
        Some("active")
    );
    tx.commit().await.unwrap();
    // a second pool (another instance) erases; the first one's next transaction sees it
    let mut tx = store.begin(2).await.unwrap();
    tx.mark_erased("s1", 2).await.unwrap();
    tx.delete_blind_index("s1", None).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin(3).await.unwrap();
    assert_eq!(
        tx.subject_status("s1").await.unwrap().as_deref(),
        Some("erased")
    );
    assert_eq!(tx.subject_status("s2").await.unwrap(), None);
    assert!(tx
        .lookup("account_id", &[1u8; 32])
        .await
        .unwrap()
        .is_empty());
}

/// A task that holds a write transaction gets `NestedAcquire` from every `Store` method (debug
/// builds panic with it at the call): in a spawned task (`tokio::task::try_id`).
fn expect_refused<T: std::fmt::Debug>(r: Result<Result<T, StoreError>, tokio::task::JoinError>) {
    match r {
        Err(e) if cfg!(debug_assertions) && e.is_panic() => {
            let p = e.into_panic();
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            assert!(msg.contains("NestedAcquire"), "{msg}");
        }
        Ok(Err(StoreError::NestedAcquire)) if !cfg!(debug_assertions) => {}
        other => panic!("a pool acquire inside a write transaction was not refused: {other:?}"),
    }
}

async fn reads_inside_a_write_transaction_go_through_it_and_see_its_own_writes(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subject(&subject("s1")).await.unwrap();
    tx.upsert_fields(&[field("s1", "profile", "name", b"n", None)])
        .await
        .unwrap();
    tx.insert_keys(&[key("s1", "primary", "k1", &[1])])
        .await
        .unwrap();
    tx.insert_consents(&[consent("e1", "s1", 100, false)])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // Inside a transaction, every read goes through it, its own writes included.
    let mut tx = store.begin(2).await.unwrap();
    assert_eq!(tx.subject("s1").await.unwrap(), Some(subject("s1")));
    assert_eq!(tx.subject("nope").await.unwrap(), None);
    assert_eq!(tx.fields("s1").await.unwrap(), store_fields_expected());
    let k = tx.subject_key("s1", "primary").await.unwrap().unwrap();
    assert_eq!((k.key_id.as_str(), k.wrapped), ("k1", vec![1]));
    assert_eq!(tx.subject_key("s1", "restricted").await.unwrap(), None);
    tx.insert_keys(&[key("s1", "restricted", "k2", &[2])])
        .await
        .unwrap();
    assert!(tx.subject_key("s1", "restricted").await.unwrap().is_some());
    assert_eq!(tx.consent_events("s1").await.unwrap().len(), 1);
    assert!(tx
        .disclosures(Some("s1"), i64::MIN, i64::MAX)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(tx.erasure_leftovers("s1").await.unwrap(), (1, 1, 0));
    tx.delete_key("s1", "primary").await.unwrap();
    tx.delete_unrestricted_fields("s1").await.unwrap();
    assert_eq!(tx.erasure_leftovers("s1").await.unwrap(), (0, 0, 0));
    assert_eq!(
        tx.dsr_first_since("s1", "deletion", "{}", 0, "x")
            .await
            .unwrap(),
        None
    );
    drop(tx);
    assert_eq!(store.fields("s1").await.unwrap(), store_fields_expected());
    assert_eq!(
        store.subject_keys("s1").await.unwrap().len(),
        1,
        "rolled back"
    );
}

async fn a_task_holding_a_write_transaction_is_refused_the_pool(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subject(&subject("s1")).await.unwrap();
    tx.upsert_fields(&[field("s1", "profile", "name", b"n", None)])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // A task holding a write transaction that asks the pool is refused — whether or not a
    // connection is free — for reads, for a second transaction, and for closing the pool.
    let s = store.clone();
    expect_refused(
        tokio::spawn(async move {
            let _tx = s.begin(3).await.unwrap();
            s.fields("s1").await
        })
        .await,
    );
    let s = store.clone();
    expect_refused(
        tokio::spawn(async move {
            let _tx = s.begin(3).await.unwrap();
            s.begin(4).await.map(|_| ())
        })
        .await,
    );
    let s = store.clone();
    expect_refused(
        tokio::spawn(async move {
            let mut tx = s.begin(3).await.unwrap();
            tx.insert_subject(&subject("s2")).await.unwrap();
            s.subject_key("s2", "primary").await
        })
        .await,
    );

    // The guard is per task: another task reads while this one holds the lock, and the holder
    // reads through the pool again once its transaction ended.
    let mut tx = store.begin(5).await.unwrap();
    tx.insert_subject(&subject("s3")).await.unwrap();
    let s = store.clone();
    let seen = tokio::spawn(async move { s.subject("s3").await.unwrap() })
        .await
        .unwrap();
    assert_eq!(seen, None, "not committed yet");
    tx.commit().await.unwrap();
    assert_eq!(store.subject("s3").await.unwrap(), Some(subject("s3")));
    assert_eq!(
        store.fields("s1").await.unwrap(),
        store_fields_expected(),
        "the refused transactions rolled back"
    );
    assert_eq!(store.subject("s2").await.unwrap(), None);
}

fn store_fields_expected() -> Vec<FieldRow> {
    vec![field("s1", "profile", "name", b"n", None)]
}

/// Outside any task (the future `block_on` drives: `#[tokio::test]` bodies, the CLI), the
/// blocking thread is the holder.
#[tokio::test]
#[cfg_attr(debug_assertions, should_panic(expected = "NestedAcquire"))]
async fn outside_a_task_the_blocking_thread_holding_a_transaction_is_refused_too() {
    let (store, _dir) = sqlite_store().await;
    let _tx = store.begin(1).await.unwrap();
    assert!(matches!(
        store.subject("s1").await,
        Err(StoreError::NestedAcquire)
    ));
}

async fn the_head_carries_a_mac_and_a_moved_head_refuses_appends(store: Store) {
    // a store never opened by a vault starts at the genesis head without a MAC
    let head = store.audit_head_sealed().await.unwrap();
    assert_eq!(
        (head.seq, head.hash.clone(), head.mac),
        (0, vec![0u8; 32], None)
    );
    let mut tx = store.begin(10).await.unwrap();
    tx.audit(rec("a", None));
    tx.audit(rec("b", None));
    assert_eq!(tx.commit().await.unwrap(), 2);
    let head = store.audit_head_sealed().await.unwrap();
    assert!(chain_key().verify_head(2, &head.hash, head.mac.as_deref().unwrap()));
    // move the head back over entry 2, as a writer without the key would
    let first = store.audit_page(0, 1).await.unwrap().remove(0);
    pivault_store::testing::move_head_without_key(&store, 1, &first.hash)
        .await
        .unwrap();
    let mut tx = store.begin(11).await.unwrap();
    tx.audit(rec("c", None));
    assert!(matches!(
        tx.commit().await,
        Err(StoreError::AuditHeadMismatch)
    ));
    assert_eq!(
        store.audit_head().await.unwrap().0,
        1,
        "nothing was appended"
    );
    // a transaction without entries still commits
    assert_eq!(store.begin(12).await.unwrap().commit().await.unwrap(), 0);
}

async fn vault_meta_starts_unchecked_and_round_trips(store: Store) {
    let m = store.vault_meta().await.unwrap().unwrap();
    assert_eq!(m.key_check, None);
    assert_eq!(m.chain_format, "sha256-v0");
    assert!(!store.is_populated().await.unwrap());
    let mut tx = store.begin(5).await.unwrap();
    let mut m2 = m.clone();
    m2.key_check = Some(vec![7; 32]);
    m2.kek_ids = Some("kek-1".into());
    m2.chain_format = "hmac-sha256-v1".into();
    m2.updated_at = 5;
    tx.put_vault_meta(&m2).await.unwrap();
    tx.insert_subject(&subject("s1")).await.unwrap();
    assert!(tx.is_populated().await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(store.vault_meta().await.unwrap(), Some(m2));
    assert!(store.is_populated().await.unwrap());
    // with a key check recorded, a head without a MAC is no longer the genesis of a new store
    let mut tx = store.begin(6).await.unwrap();
    tx.audit(rec("a", None));
    assert!(matches!(
        tx.commit().await,
        Err(StoreError::AuditHeadMismatch)
    ));
}

#[tokio::test]
async fn appending_without_an_audit_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("k.db").display());
    let store = Store::connect(&url).await.unwrap();
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subject(&subject("s1")).await.unwrap();
    tx.audit(rec("subject.create", Some("s1")));
    assert!(matches!(
        tx.commit().await,
        Err(StoreError::AuditKeyMissing)
    ));
    assert_eq!(store.count("subjects").await.unwrap(), 0);
    assert_eq!(store.begin(2).await.unwrap().commit().await.unwrap(), 0);
    store.close().await;
}

/// PostgreSQL connections carry a lock timeout: a writer stuck behind the audit-chain head
/// longer than that gives up with `Busy` (503 `storage_busy`) instead of waiting as long as the
/// holder holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_writer_stuck_behind_the_head_lock_gives_up_busy() {
    let Some((store, _db)) = postgres_store("a_writer_stuck_behind_the_head_lock").await else {
        return;
    };
    let holder = store.begin(1).await.unwrap();
    let s = store.clone();
    let started = std::time::Instant::now();
    let waiter = tokio::spawn(async move { s.begin(2).await.map(|_| ()) })
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(matches!(waiter, Err(StoreError::Busy(_))), "{waiter:?}");
    assert!(
        waited >= std::time::Duration::from_secs(5) && waited < std::time::Duration::from_secs(14),
        "gave up after {waited:?}"
    );
    holder.commit().await.unwrap();
    // the pool is fine afterwards
    store.begin(3).await.unwrap().commit().await.unwrap();
    store.close().await;
}

// ---- Issue 12: retention lifecycle, legal holds, anonymization (migration 0008) ----

fn hold(id: &str, subject: Option<&str>, category: Option<&str>, at: i64) -> HoldRow {
    HoldRow {
        id: id.into(),
        subject_id: subject.map(str::to_string),
        category: category.map(str::to_string),
        reason: "litigation".into(),
        reference: "case-1".into(),
        set_by: "dpo".into(),
        set_at: at,
        released_by: None,
        released_at: None,
    }
}

fn item(subject: &str, record: &str, category: &str, event_at: i64) -> RetentionItem {
    RetentionItem {
        subject_id: subject.into(),
        record: record.into(),
        category: category.into(),
        event_at,
    }
}

fn pair(subject: &str, record: &str) -> (String, String) {
    (subject.into(), record.into())
}

fn keys_of(items: &[RetentionItem]) -> Vec<(i64, &str, &str)> {
    items
        .iter()
        .map(|i| (i.event_at, i.subject_id.as_str(), i.record.as_str()))
        .collect()
}

async fn legal_holds_insert_release_and_list(store: Store) {
    let mut tx = store.begin(10).await.unwrap();
    tx.insert_hold(&hold("h1", Some("s1"), None, 10))
        .await
        .unwrap();
    tx.insert_hold(&hold("h2", None, Some("order.transaction"), 11))
        .await
        .unwrap();
    assert!(matches!(
        tx.insert_hold(&hold("h1", None, Some("x"), 12)).await,
        Err(StoreError::Conflict(_))
    ));
    tx.commit().await.unwrap();
    let mut tx = store.begin(11).await.unwrap();
    // exactly one of subject / category
    for bad in [
        hold("h3", Some("s1"), Some("c"), 12),
        hold("h4", None, None, 12),
    ] {
        assert!(matches!(
            tx.insert_hold(&bad).await,
            Err(StoreError::Conflict(_))
        ));
    }
    tx.commit().await.unwrap();
    let all = store.holds(false).await.unwrap();
    assert_eq!(
        all.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["h1", "h2"]
    );
    assert_eq!(all[0], hold("h1", Some("s1"), None, 10));

    let mut tx = store.begin(20).await.unwrap();
    assert!(tx.release_hold("h1", "dpo2", 20).await.unwrap());
    assert!(
        !tx.release_hold("h1", "dpo3", 21).await.unwrap(),
        "released"
    );
    assert!(
        !tx.release_hold("nope", "dpo", 21).await.unwrap(),
        "unknown"
    );
    // the transaction sees its own release
    assert_eq!(tx.holds(true).await.unwrap().len(), 1);
    tx.commit().await.unwrap();
    let h1 = store.hold("h1").await.unwrap().unwrap();
    assert_eq!(
        (h1.released_by.as_deref(), h1.released_at),
        (Some("dpo2"), Some(20)),
        "the first release is kept"
    );
    assert_eq!(store.hold("nope").await.unwrap(), None);
    let active = store.holds(true).await.unwrap();
    assert_eq!(
        active,
        vec![hold("h2", None, Some("order.transaction"), 11)]
    );
    assert_eq!(store.holds(false).await.unwrap().len(), 2);
    assert_eq!(store.count("legal_holds").await.unwrap(), 2);
}

async fn retention_items_insert_idempotently(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    assert_eq!(
        tx.insert_retention_items(&[
            item("s1", "order:1", "order", 100),
            item("s1", "log:1", "weblog", 50)
        ])
        .await
        .unwrap(),
        2
    );
    // the same record again (even with another category / clock) keeps the first
    assert_eq!(
        tx.insert_retention_items(&[
            item("s1", "order:1", "weblog", 1),
            item("s2", "order:2", "order", 100)
        ])
        .await
        .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(store.count("retention_items").await.unwrap(), 3);
    let got = store
        .due_items_by_subject("order", 100, None, 10, &[])
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            item("s1", "order:1", "order", 100),
            item("s2", "order:2", "order", 100)
        ]
    );
    // 1,000 rows: several chunks
    let many: Vec<RetentionItem> = (0..1000)
        .map(|i| item(&format!("m{i:04}"), "log:1", "weblog", i))
        .collect();
    let mut tx = store.begin(2).await.unwrap();
    assert_eq!(tx.insert_retention_items(&many).await.unwrap(), 1000);
    assert_eq!(tx.insert_retention_items(&many).await.unwrap(), 0);
    tx.commit().await.unwrap();
    assert_eq!(store.count("retention_items").await.unwrap(), 1003);
}

async fn due_items_page_in_order_after_the_cursor_and_skip_held_subjects(store: Store) {
    let items = vec![
        item("s2", "order:b", "order", 100),
        item("s1", "order:a", "order", 100),
        item("s1", "order:c", "order", 100),
        item("s3", "order:d", "order", 50),
        item("s4", "order:e", "order", 200),
        item("s5", "order:f", "order", 201), // after the cutoff
        item("s1", "log:1", "weblog", 10),   // another category
    ];
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_retention_items(&items).await.unwrap();
    tx.commit().await.unwrap();
    // subject by subject, record by record (the primary key's order)
    let all = store
        .due_items_by_subject("order", 200, None, 100, &[])
        .await
        .unwrap();
    assert_eq!(
        keys_of(&all),
        [
            (100, "s1", "order:a"),
            (100, "s1", "order:c"),
            (100, "s2", "order:b"),
            (50, "s3", "order:d"),
            (200, "s4", "order:e"),
        ]
    );
    // keyset pages of 2 walk the same sequence
    let mut walked = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .due_items_by_subject("order", 200, after.clone(), 2, &[])
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        let last = page.last().unwrap();
        after = Some((last.subject_id.clone(), last.record.clone()));
        walked.extend(page);
    }
    assert_eq!(walked, all);
    // held subjects are skipped, also across pages
    let held = vec!["s1".to_string(), "s4".to_string()];
    let got = store
        .due_items_by_subject("order", 200, None, 100, &held)
        .await
        .unwrap();
    assert_eq!(
        keys_of(&got),
        [(100, "s2", "order:b"), (50, "s3", "order:d")]
    );
    let got = store
        .due_items_by_subject(
            "order",
            200,
            Some(("s2".into(), "order:b".into())),
            1,
            &held,
        )
        .await
        .unwrap();
    assert_eq!(keys_of(&got), [(50, "s3", "order:d")]);
    assert!(store
        .due_items_by_subject("order", 49, None, 100, &[])
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .due_items_by_subject("nope", i64::MAX, None, 100, &[])
        .await
        .unwrap()
        .is_empty());
}

async fn delete_records_removes_exactly_those_fields_and_items(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.upsert_fields(&[
        field("s1", "order:1", "amount", b"a", None),
        field("s1", "order:1", "paid_at", b"b", Some(500)),
        field("s1", "order:2", "amount", b"c", None),
        field("s1", "profile", "name", b"n", None),
        field("s2", "order:1", "amount", b"d", None),
    ])
    .await
    .unwrap();
    tx.insert_retention_items(&[
        item("s1", "order:1", "order", 10),
        item("s1", "order:2", "order", 10),
        item("s2", "order:1", "order", 10),
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let got = store
        .fields_of_records(&[
            pair("s2", "order:1"),
            pair("s1", "order:1"),
            pair("s9", "x"),
        ])
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|f| (f.subject_id.as_str(), f.record.as_str(), f.name.as_str()))
            .collect::<Vec<_>>(),
        [
            ("s1", "order:1", "amount"),
            ("s1", "order:1", "paid_at"),
            ("s2", "order:1", "amount")
        ]
    );
    assert_eq!(got[1], field("s1", "order:1", "paid_at", b"b", Some(500)));

    let mut tx = store.begin(2).await.unwrap();
    assert_eq!(
        tx.fields_of_records(&[pair("s1", "order:1")])
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        tx.delete_records(&[pair("s1", "order:1"), pair("s9", "nothing")])
            .await
            .unwrap(),
        2,
        "restricted or not, every field of the record"
    );
    assert!(tx
        .fields_of_records(&[pair("s1", "order:1")])
        .await
        .unwrap()
        .is_empty());
    tx.audit(rec("retention.delete", Some("s1")));
    tx.commit().await.unwrap();
    let left: Vec<(String, String)> = store
        .fields("s1")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.record, f.name))
        .collect();
    assert_eq!(left, [pair("order:2", "amount"), pair("profile", "name")]);
    assert_eq!(store.fields("s2").await.unwrap().len(), 1);
    let items = store
        .due_items_by_subject("order", 10, None, 10, &[])
        .await
        .unwrap();
    assert_eq!(
        keys_of(&items),
        [(10, "s1", "order:2"), (10, "s2", "order:1")]
    );

    // 1,000 records across chunks
    let mut tx = store.begin(3).await.unwrap();
    let fields: Vec<FieldRow> = (0..1000)
        .flat_map(|i| {
            let s = format!("b{i:04}");
            [
                field(&s, "log:1", "ip", b"x", None),
                field(&s, "log:1", "ua", b"y", None),
            ]
        })
        .collect();
    tx.upsert_fields(&fields).await.unwrap();
    let items: Vec<RetentionItem> = (0..1000)
        .map(|i| item(&format!("b{i:04}"), "log:1", "weblog", 1))
        .collect();
    tx.insert_retention_items(&items).await.unwrap();
    tx.commit().await.unwrap();
    let pairs: Vec<(String, String)> = (0..1000)
        .map(|i| pair(&format!("b{i:04}"), "log:1"))
        .collect();
    assert_eq!(store.fields_of_records(&pairs).await.unwrap().len(), 2000);
    let mut tx = store.begin(4).await.unwrap();
    assert_eq!(tx.delete_records(&pairs[..999]).await.unwrap(), 1998);
    tx.commit().await.unwrap();
    assert_eq!(store.count("fields").await.unwrap(), 3 + 2);
    assert_eq!(store.count("retention_items").await.unwrap(), 2 + 1);
}

async fn anonymized_rows_insert_and_page(store: Store) {
    let web = |i: i64| AnonWeblogRow {
        hour: 1_700_000_000 - 1_700_000_000 % 3600 + i * 3600,
        client_net: "203.0.113.0/24".into(),
        method: "GET".into(),
        path: "/v1/orders/{id}".into(),
        status: 200,
        bytes: 5_000_000_000 + i,
        ua_family: "Firefox".into(),
        ua_major: if i % 2 == 0 { Some(120) } else { None },
    };
    let order = |i: i64| AnonOrderRow {
        month: format!("2021-{:02}", i % 12 + 1),
        product: format!("p{i}"),
        amount: "100-200".into(),
    };
    let weblog: Vec<AnonWeblogRow> = (0..1000).map(web).collect();
    let orders: Vec<AnonOrderRow> = (0..5).map(order).collect();
    let mut tx = store.begin(1_800_000_000).await.unwrap();
    assert_eq!(tx.insert_anon_weblog(&weblog).await.unwrap(), 1000);
    assert_eq!(tx.insert_anon_orders(&orders).await.unwrap(), 5);
    tx.commit().await.unwrap();
    assert_eq!(store.anon_counts().await.unwrap(), (1000, 5));
    assert_eq!(store.count("anon_weblog").await.unwrap(), 1000);
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page = store.anon_weblog_page(after, 300).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.0;
        got.extend(page);
    }
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "by id");
    assert_eq!(got.into_iter().map(|(_, r)| r).collect::<Vec<_>>(), weblog);
    let page = store.anon_orders_page(0, 3).await.unwrap();
    assert_eq!(
        page.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        orders[..3]
    );
    let rest = store.anon_orders_page(page[2].0, 10).await.unwrap();
    assert_eq!(
        rest.into_iter().map(|(_, r)| r).collect::<Vec<_>>(),
        orders[3..]
    );
    // anonymized rows carry no subject id or key: the tables have no such column
    let bytes = pivault_store::testing::visible_bytes(&store).await.unwrap();
    assert!(bytes.windows(8).any(|w| w == b"100-200\0"));
}

async fn the_sweep_lease_is_exclusive_and_taken_over_after_expiry(store: Store) {
    assert_eq!(store.sweep_lease().await.unwrap(), (None, 0));
    assert!(store.try_sweep_lease("a", 1000, 60).await.unwrap());
    assert!(
        !store.try_sweep_lease("b", 1010, 60).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.try_sweep_lease("a", 1030, 60).await.unwrap(),
        "a renews"
    );
    assert_eq!(store.sweep_lease().await.unwrap(), (Some("a".into()), 1090));
    assert!(
        !store.try_sweep_lease("b", 1090, 60).await.unwrap(),
        "still a's at its end"
    );
    assert!(
        store.try_sweep_lease("b", 1091, 60).await.unwrap(),
        "expired: b takes over"
    );
    assert!(!store.release_sweep_lease("a").await.unwrap(), "a lost it");
    assert!(!store.try_sweep_lease("a", 1092, 60).await.unwrap());
    assert!(store.release_sweep_lease("b").await.unwrap());
    assert_eq!(store.sweep_lease().await.unwrap(), (None, 0));
    // many contenders at once (two pools on PostgreSQL would behave the same: one row, one
    // UPDATE): exactly one wins
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.try_sweep_lease(&format!("c{i}"), 2000, 60).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += i32::from(t.await.unwrap());
    }
    assert_eq!(won, 1);
}

async fn the_expired_restricted_batch_skips_held_subjects_and_categories(store: Store) {
    let f = |s: &str, r: &str, n: &str, c: &str, until: i64| {
        let mut x = field(s, r, n, b"x", Some(until));
        x.category = c.into();
        x
    };
    let rows = vec![
        f("s1", "order:1", "amount", "order.amount", 10),
        f("s1", "order:1", "paid_at", "order.time", 20),
        f("s2", "order:2", "amount", "order.amount", 30),
        f("s3", "order:3", "amount", "order.amount", 40),
        f("s3", "order:3", "paid_at", "order.time", 50),
        f("s4", "order:4", "amount", "order.amount", 500), // not expired
    ];
    let mut tx = store.begin(1).await.unwrap();
    tx.upsert_fields(&rows).await.unwrap();
    tx.upsert_fields(&[field("s1", "profile", "name", b"n", None)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin(2).await.unwrap();
    let held_s = vec!["s2".to_string()];
    let held_c = vec!["order.time".to_string()];
    // a batch of 1: the earliest end first
    assert_eq!(
        tx.delete_expired_restricted_batch(100, 1, &held_s, &held_c)
            .await
            .unwrap(),
        [("s1".into(), "order:1".into(), "order.amount".into())]
    );
    assert_eq!(
        tx.delete_expired_restricted_batch(100, 10, &held_s, &held_c)
            .await
            .unwrap(),
        [(
            "s3".to_string(),
            "order:3".to_string(),
            "order.amount".to_string()
        )]
    );
    assert!(tx
        .delete_expired_restricted_batch(100, 10, &held_s, &held_c)
        .await
        .unwrap()
        .is_empty());
    tx.commit().await.unwrap();
    assert_eq!(store.fields("s2").await.unwrap().len(), 1, "held subject");
    assert_eq!(
        store.fields("s1").await.unwrap().len(),
        2,
        "held category + unrestricted"
    );
    // without holds the rest goes; the old unbatched form still works
    let mut tx = store.begin(3).await.unwrap();
    assert_eq!(
        tx.delete_expired_restricted_batch(100, 10, &[], &[])
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        tx.delete_expired_restricted(1000).await.unwrap(),
        vec![("s4".to_string(), 1)]
    );
    tx.commit().await.unwrap();
    assert_eq!(store.count("fields").await.unwrap(), 1);
}

async fn retention_stats_count_items_due_and_restricted_fields(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_retention_items(&[
        item("s1", "order:1", "order", 100),
        item("s1", "order:2", "order", 300),
        item("s2", "log:1", "weblog", 50),
    ])
    .await
    .unwrap();
    let mut r = field("s3", "order:9", "amount", b"x", Some(1000));
    r.category = "order".into();
    let mut r2 = field("s3", "order:9", "paid_at", b"x", Some(5000));
    r2.category = "order".into();
    tx.upsert_fields(&[r, r2, field("s3", "profile", "name", b"n", Some(10))])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stats = store
        .retention_stats(2000, &[("order".into(), 200), ("nothing".into(), 5)])
        .await
        .unwrap();
    assert_eq!(
        stats,
        vec![
            RetentionStat {
                category: "order".into(),
                items: 2,
                oldest_event_at: Some(100),
                due_before: 1,
                restricted_fields: 2,
                restricted_due_before: 1,
            },
            RetentionStat {
                category: "user.name".into(),
                items: 0,
                oldest_event_at: None,
                due_before: 0,
                restricted_fields: 1,
                restricted_due_before: 1,
            },
            RetentionStat {
                category: "weblog".into(),
                items: 1,
                oldest_event_at: Some(50),
                due_before: 0,
                restricted_fields: 0,
                restricted_due_before: 0,
            },
        ]
    );
}

async fn sweep_runs_upsert_and_list_newest_first(store: Store) {
    let run = |id: &str, started: i64| SweepRunRow {
        id: id.into(),
        started_at: started,
        finished_at: None,
        dry_run: true,
        actor: "scheduler".into(),
        state: "running".into(),
        counts: "{}".into(),
        updated_at: started,
    };
    let mut tx = store.begin(1).await.unwrap();
    tx.upsert_sweep_run(&run("r1", 10)).await.unwrap();
    tx.upsert_sweep_run(&run("r2", 20)).await.unwrap();
    let done = SweepRunRow {
        finished_at: Some(30),
        dry_run: false,
        state: "done".into(),
        counts: r#"{"order":{"deleted":3}}"#.into(),
        updated_at: 30,
        ..run("r1", 10)
    };
    tx.upsert_sweep_run(&done).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.sweep_run("r1").await.unwrap(), Some(done.clone()));
    assert_eq!(store.sweep_run("nope").await.unwrap(), None);
    assert_eq!(
        store.last_sweep_runs(10).await.unwrap(),
        vec![run("r2", 20), done]
    );
    assert_eq!(store.last_sweep_runs(1).await.unwrap().len(), 1);
    // the schema refuses an unknown state
    let mut tx = store.begin(2).await.unwrap();
    assert!(tx
        .upsert_sweep_run(&SweepRunRow {
            state: "paused".into(),
            ..run("r3", 40)
        })
        .await
        .is_err());
}

async fn subject_clocks_close_touch_and_list(store: Store) {
    let mut tx = store.begin(1).await.unwrap();
    tx.insert_subjects(&[subject("a"), subject("b"), subject("c"), subject("d")])
        .await
        .unwrap();
    assert!(tx.set_closed_at("a", 100).await.unwrap());
    assert!(tx.set_closed_at("c", 300).await.unwrap());
    assert!(tx.set_closed_at("d", 50).await.unwrap());
    assert!(!tx.set_closed_at("nope", 1).await.unwrap());
    tx.mark_erased("d", 60).await.unwrap();
    assert_eq!(
        tx.touch_last_active(&[
            ("a".into(), 10),
            ("b".into(), 500),
            ("b".into(), 400),
            ("a".into(), 20),
            ("nope".into(), 1),
        ])
        .await
        .unwrap(),
        2
    );
    // the maximum is kept
    assert_eq!(
        tx.touch_last_active(&[("a".into(), 15), ("b".into(), 600)])
            .await
            .unwrap(),
        1
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.subject_clocks("a").await.unwrap(),
        Some((Some(100), Some(20)))
    );
    assert_eq!(
        store.subject_clocks("b").await.unwrap(),
        Some((None, Some(600)))
    );
    assert_eq!(store.subject_clocks("nope").await.unwrap(), None);
    assert_eq!(store.subject("a").await.unwrap(), Some(subject("a")));
    // closed (active subjects only; the erased one is left out), keyset by id
    assert_eq!(
        store.subjects_closed_before(300, None, 10).await.unwrap(),
        ["a", "c"]
    );
    assert_eq!(
        store.subjects_closed_before(300, None, 1).await.unwrap(),
        ["a"]
    );
    assert_eq!(
        store
            .subjects_closed_before(300, Some("a"), 10)
            .await
            .unwrap(),
        ["c"]
    );
    assert_eq!(
        store.subjects_closed_before(299, None, 10).await.unwrap(),
        ["a"]
    );
    // inactive: never-touched subjects (c) are not listed
    assert_eq!(
        store.subjects_inactive_before(600, None, 10).await.unwrap(),
        ["a", "b"]
    );
    assert_eq!(
        store.subjects_inactive_before(599, None, 10).await.unwrap(),
        ["a"]
    );
    assert!(store
        .subjects_inactive_before(600, Some("b"), 10)
        .await
        .unwrap()
        .is_empty());
    let mut tx = store.begin(2).await.unwrap();
    assert!(tx.clear_closed_at("a").await.unwrap());
    tx.commit().await.unwrap();
    assert_eq!(
        store.subjects_closed_before(300, None, 10).await.unwrap(),
        ["c"]
    );
}

fn outbox_row(id: &str, subject: &str, cause: &str, now: i64) -> pivault_store::OutboxRow {
    pivault_store::OutboxRow {
        id: id.into(),
        kind: "incident_notice".into(),
        subject_id: Some(subject.into()),
        target: "subject".into(),
        cause: cause.into(),
        dedup_key: format!("incident_notice|subject|{subject}|{cause}"),
        lang: "zh-CN".into(),
        payload: Some(vec![1, 2, 3]),
        state: "pending".into(),
        channel: None,
        channel_index: 0,
        attempts: 0,
        next_at: now,
        created_at: now,
        done_at: None,
        last_error: None,
    }
}

async fn the_outbox_is_exactly_once_leased_to_one_holder_and_counts_attempts(store: Store) {
    let now = 1_000;
    let mut tx = store.begin(now).await.unwrap();
    let rows: Vec<_> = (0..600)
        .map(|i| outbox_row(&format!("ob-{i:04}"), &format!("s{i:04}"), "inc-1", now))
        .collect();
    assert_eq!(tx.enqueue(&rows).await.unwrap(), 600);
    // The same notices again (new ids): nothing is added.
    let again: Vec<_> = (0..600)
        .map(|i| outbox_row(&format!("ob-x{i:04}"), &format!("s{i:04}"), "inc-1", now))
        .collect();
    assert_eq!(tx.enqueue(&again).await.unwrap(), 0);
    tx.commit().await.unwrap();
    let c = store
        .outbox_counts("inc-1", "incident_notice")
        .await
        .unwrap();
    assert_eq!(c.pending, 600);

    // Two holders claim: no message is leased to both.
    let mut tx = store.begin(now).await.unwrap();
    let a = tx
        .claim_outbox("A", now, now + 60, 500, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin(now).await.unwrap();
    let b = tx
        .claim_outbox("B", now, now + 60, 500, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!((a.len(), b.len()), (500, 100));
    let ids: std::collections::BTreeSet<_> = a.iter().chain(&b).map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 600);
    assert_eq!(a[0].payload, Some(vec![1, 2, 3]));

    // B's outcome is recorded only while B holds the lease; attempts are numbered 1, 2, …
    let mut m = b[0].clone();
    m.attempts = 1;
    m.next_at = now + 30;
    m.last_error = Some("smtp_unavailable".into());
    let att = |outcome: &str| pivault_store::OutboxAttemptRow {
        outbox_id: m.id.clone(),
        n: 0,
        at: now,
        channel: "email".into(),
        outcome: outcome.into(),
        status: Some(451),
    };
    let mut tx = store.begin(now).await.unwrap();
    assert!(!tx
        .record_attempt("A", &m, &[att("smtp_unavailable")])
        .await
        .unwrap());
    assert!(tx
        .record_attempt("B", &m, &[att("smtp_unavailable")])
        .await
        .unwrap());
    tx.commit().await.unwrap();
    // Not due before its retry time; due after, to anyone.
    let mut tx = store.begin(now).await.unwrap();
    assert!(tx
        .claim_outbox("C", now + 10, now + 70, 10, Some(&m.id))
        .await
        .unwrap()
        .is_empty());
    let again = tx
        .claim_outbox("C", now + 30, now + 90, 10, Some(&m.id))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    let mut done = again[0].clone();
    done.state = "delivered".into();
    done.done_at = Some(now + 30);
    let mut ok = att("delivered");
    ok.status = None;
    assert!(tx.record_attempt("C", &done, &[ok]).await.unwrap());
    tx.commit().await.unwrap();
    let hist = store.outbox_attempts(&m.id).await.unwrap();
    assert_eq!(
        hist.iter()
            .map(|h| (h.n, h.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "smtp_unavailable"), (2, "delivered")]
    );
    let item = store.outbox_item(&m.id).await.unwrap().unwrap();
    assert_eq!(item.state, "delivered");
    assert_eq!(
        item.payload, None,
        "the sealed payload goes once the message is settled"
    );
    // A's leases run out: after them, what A held is due again.
    let mut tx = store.begin(now).await.unwrap();
    assert!(tx
        .claim_outbox("D", now + 30, now + 90, 1000, None)
        .await
        .unwrap()
        .is_empty());
    let back = tx
        .claim_outbox("D", now + 61, now + 120, 1000, None)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(back.len(), 599);
}

async fn a_published_policy_version_is_stored_once_and_never_rewritten(store: Store) {
    let row = |v: &str, date: &str, sha: &str, text: Option<&str>| PolicyVersionRow {
        version: v.into(),
        published_at: date.into(),
        sha256: sha.into(),
        text: text.map(Into::into),
        changes: "[]".into(),
        stored_at: 5,
    };
    let mut tx = store.begin(5).await.unwrap();
    assert_eq!(
        tx.upsert_policy_version(&row("2024-12-04", "2024-12-04", "b", None))
            .await
            .unwrap(),
        PolicyVersionUpsert::Inserted
    );
    assert_eq!(
        tx.upsert_policy_version(&row("2023-06-01", "2023-06-01", "a", None))
            .await
            .unwrap(),
        PolicyVersionUpsert::Inserted
    );
    tx.commit().await.unwrap();
    let mut tx = store.begin(6).await.unwrap();
    // Same hash: unchanged, a missing text filled in.
    assert_eq!(
        tx.upsert_policy_version(&row("2024-12-04", "2024-12-04", "b", Some("TEXT")))
            .await
            .unwrap(),
        PolicyVersionUpsert::Unchanged
    );
    // Another hash: refused, nothing written.
    assert_eq!(
        tx.upsert_policy_version(&row("2023-06-01", "2023-06-02", "z", Some("X")))
            .await
            .unwrap(),
        PolicyVersionUpsert::Rewritten
    );
    tx.commit().await.unwrap();
    let all = store.policy_history().await.unwrap();
    let got: Vec<(&str, &str, Option<&str>)> = all
        .iter()
        .map(|r| (r.version.as_str(), r.sha256.as_str(), r.text.as_deref()))
        .collect();
    assert_eq!(
        got,
        [("2023-06-01", "a", None), ("2024-12-04", "b", Some("TEXT"))]
    );
    assert_eq!(all[0].published_at, "2023-06-01");
    assert_eq!(all[0].stored_at, 5);
}

/// Every shard's rows in chain order, as leaf hashes; asserts the indexes are 0..n.
async fn shard_leaves(store: &Store, shard: u32) -> Vec<[u8; 32]> {
    let rows = store.audit_shard_page(shard, 0, 100_000).await.unwrap();
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            assert_eq!(r.record.idx, i64::try_from(i).unwrap());
            assert_eq!(r.record.shard, shard);
            pivault_verify::merkle::leaf_hash(&r.record.canonical_bytes())
        })
        .collect()
}

async fn audit_shards_route_by_subject_and_their_stored_trees_give_rfc_9162_proofs(store: Store) {
    use pivault_verify::merkle::{
        fold_subtrees, inclusion_proof, inclusion_ranges, perfect_subtrees, root,
    };
    assert_eq!(store.ensure_audit_shards(4).await.unwrap(), 4);
    for batch in 0..7 {
        let mut tx = store.begin_audit(10 + batch).await.unwrap();
        for i in 0..(batch * 11 + 3) {
            let s = format!("s{}", (i * 7 + batch) % 23);
            tx.audit(rec("fields.read", if i % 5 == 0 { None } else { Some(&s) }));
        }
        tx.commit().await.unwrap();
    }
    let heads = store.audit_shard_heads().await.unwrap();
    assert_eq!(heads.len(), 4);
    let mut total = 0;
    for h in &heads {
        let leaves = shard_leaves(&store, h.shard).await;
        assert_eq!(i64::try_from(leaves.len()).unwrap(), h.size);
        assert_eq!(h.tree_size, h.size);
        assert_eq!(h.root(), Some(root(&leaves)), "shard {}", h.shard);
        assert!(h.size > 0, "every shard gets entries");
        total += h.size;
        // the proof from the stored subtrees is the RFC's proof, for every leaf
        let n = u64::try_from(leaves.len()).unwrap();
        for (i, _) in leaves.iter().enumerate() {
            let ranges = inclusion_ranges(u64::try_from(i).unwrap(), n).unwrap();
            let keys: Vec<(u32, u64)> = ranges
                .iter()
                .flat_map(|&(a, b)| perfect_subtrees(a, b))
                .collect();
            let nodes = store.audit_nodes(h.shard, &keys).await.unwrap();
            let proof: Vec<[u8; 32]> = ranges
                .iter()
                .map(|&(a, b)| {
                    let hs: Vec<[u8; 32]> =
                        perfect_subtrees(a, b).iter().map(|k| nodes[k]).collect();
                    fold_subtrees(&hs).unwrap()
                })
                .collect();
            assert_eq!(
                Some(proof),
                inclusion_proof(&leaves, i),
                "shard {} leaf {i}",
                h.shard
            );
        }
    }
    assert_eq!(store.audit_len().await.unwrap(), total);
    // entries of one subject all go to one shard
    let mine = store.audit_for_subject("s3", 1_000).await.unwrap();
    assert!(mine.len() > 1);
    assert!(mine.iter().all(|r| r.shard == mine[0].shard));
    // numbers are unique across shards
    let mut seqs: Vec<i64> = store
        .audit_page(0, 100_000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.record.seq)
        .collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n);
}

async fn writers_on_different_shards_commit_side_by_side_and_each_chain_stays_one(store: Store) {
    store.ensure_audit_shards(8).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let store = store.clone();
        tasks.spawn(async move {
            for i in 0..20 {
                let mut tx = store.begin_audit(100).await.unwrap();
                tx.audit(rec("decision", Some(&format!("w{w}-{}", i % 5))));
                tx.audit(rec("decision", Some(&format!("w{w}-{}", i % 3))));
                tx.commit().await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let key = chain_key();
    let mut total = 0;
    for h in store.audit_shard_heads().await.unwrap() {
        let rows = store.audit_shard_page(h.shard, 0, 100_000).await.unwrap();
        let mut prev = [0u8; 32];
        let mut last_seq = 0;
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.record.idx, i64::try_from(i).unwrap());
            // entry numbers grow with the chain (drawn only once the heads are locked)
            assert!(r.record.seq > last_seq, "shard {} idx {i}", h.shard);
            last_seq = r.record.seq;
            assert_eq!(r.prev_hash, prev.to_vec());
            assert!(key.verify_link(&prev, &r.record.canonical_bytes(), &r.hash));
            prev.copy_from_slice(&r.hash);
        }
        assert_eq!(h.hash, prev.to_vec());
        assert!(
            key.verify_shard_head(h.shard, h.size, &h.hash, h.mac.as_deref().unwrap_or(&[]))
                || h.size == 0
        );
        total += rows.len();
    }
    assert_eq!(total, 16 * 20 * 2);
}
