//! Issue 11, defect 5, through the real binary: `pivault audit verify --fields` opens every
//! sealed field of every subject. On an untouched vault it exits 0; after two fields'
//! ciphertexts are swapped with SQL (someone who can write the database but holds no key), it
//! exits 2 and names the count and the two fields (subject id and path, never a value).
//!
//! SQLite always; the `postgres` case needs `PIVAULT_TEST_DATABASE_URL` (CI sets it) and prints
//! `SKIPPED` without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use pivault_testkit::TestDatabase;
use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use std::path::Path;
use std::process::Output;

/// Accounts imported (with their consent events and orders).
const USERS: usize = 12;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn run(dir: &Path, url: &str, args: &[&str]) -> Output {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault"))
        .with_db(url, &dir.join("master.key"))
        .current_dir(dir)
        .env_remove("PIVAULT_SUITE")
        .args(args)
        .output()
        .unwrap()
}

async fn swapped_fields_fail_verification(url: &str, dir: &Path) {
    let slice = pivault_testkit::write_slice(
        &dir.join("slice"),
        USERS,
        &["consent_events.csv", "orders.csv"],
    );
    let (u, d) = (url.to_string(), dir.to_path_buf());
    let out =
        tokio::task::spawn_blocking(move || run(&d, &u, &["import", slice.to_str().unwrap()]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let verify = |url: &str, dir: &Path| run(dir, url, &["audit", "verify", "--fields"]);
    let out = verify(url, dir);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let checked: u64 = stdout
        .split("fields ok: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no field count: {stdout}"));
    assert!(checked > (USERS * 10) as u64, "{stdout}");
    assert!(stdout.contains("audit chain ok"), "{stdout}");

    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let subject: String = sqlx::query(
        "SELECT subject_id FROM fields WHERE record = 'profile' AND name = 'mobile' \
         ORDER BY subject_id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
    .get(0);
    let get = |name: &'static str| {
        let pool = pool.clone();
        let subject = subject.clone();
        async move {
            sqlx::query(
                "SELECT ciphertext FROM fields WHERE subject_id = $1 AND record = 'profile' \
                 AND name = $2",
            )
            .bind(subject)
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
            .get::<Vec<u8>, _>(0)
        }
    };
    let (mobile, email) = (get("mobile").await, get("email").await);
    for (c, name) in [(email, "mobile"), (mobile, "email")] {
        sqlx::query(
            "UPDATE fields SET ciphertext = $1 WHERE subject_id = $2 AND record = 'profile' \
             AND name = $3",
        )
        .bind(c)
        .bind(&subject)
        .bind(name)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    let out = verify(url, dir);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}{err}", text(&out.stdout));
    assert!(
        err.contains(&format!("2 of {checked} checked failed authentication")),
        "{err}"
    );
    assert!(
        err.contains(&format!("subject {subject} field profile/mobile")),
        "{err}"
    );
    assert!(
        err.contains(&format!("subject {subject} field profile/email")),
        "{err}"
    );
    // the chain itself is still fine, and plain `audit verify` does not open fields
    assert!(text(&out.stdout).contains("audit chain ok"));
    let out = run(dir, url, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_verify_fields_finds_swapped_ciphertexts() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v.db").display());
    swapped_fields_fail_verification(&url, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audit_verify_fields_finds_swapped_ciphertexts() {
    let Some(db) = TestDatabase::for_test(
        "field_integrity::postgres_audit_verify_fields_finds_swapped_ciphertexts",
    )
    .await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    swapped_fields_fail_verification(db.url(), dir.path()).await;
}
