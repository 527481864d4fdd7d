//! Policy versions and re-consent (policy §X; PIPL Art. 14 para. 2), run as an operator would:
//! consents imported under the default policy (versions 2023-06-01 and 2024-12-04), then the
//! vault opened with a fixture policy whose new version 2025-06-01 changes `marketing`
//! materially. A consent given before it no longer counts (`consent_outdated`), a fresh grant
//! under the new version counts again, `policy diff` counts the affected subjects (checked
//! against a count made from the data set's CSV here), and each affected subject gets exactly
//! one policy-change notice however often the vault is opened.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use pivault_testkit::{MATERIAL_CHANGE_SUMMARY, MATERIAL_CHANGE_VERSION};
use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Command, Output};

/// Accounts in the slice (with their consent events).
const SLICE_USERS: usize = 300;

fn bin() -> PivaultBin {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `pivault ARGS` in `dir` (its database and key inside `dir`) under the policy `policy`, or
/// the repository's default policy.
fn pivault(dir: &Path, policy: Option<&Path>, args: &[&str]) -> Output {
    let mut c: Command = bin().in_dir(dir);
    if let Some(p) = policy {
        c.env("PIVAULT_POLICY", p);
    }
    c.args(args).output().unwrap()
}

/// Of the slice's `consent_events.csv` rows the importer took (its rejects file read back),
/// the latest `marketing` event of each account by (`at`, line), kept when it is a grant:
/// account id → (event id, policy version). Made from the CSV alone, not from pivault's fold.
fn active_marketing_from_csv(slice: &Path, rejects: &Path) -> HashMap<String, (String, String)> {
    let rejected: HashSet<u64> = std::fs::read_to_string(rejects)
        .map(|s| {
            s.lines()
                .skip(1)
                .filter_map(|l| l.split(',').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut r = csv::Reader::from_path(slice.join("consent_events.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    let (ev, acct, purpose, action, at, version) = (
        col("event_id"),
        col("account_id"),
        col("purpose"),
        col("action"),
        col("at"),
        col("policy_version"),
    );
    // account → ((at, line), action, event, version)
    let mut latest: HashMap<String, ((String, u64), String, String, String)> = HashMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let line = rec.position().unwrap().line();
        if rejected.contains(&line) || &rec[purpose] != "marketing" {
            continue;
        }
        let key = (rec[at].to_string(), line);
        let e = latest.entry(rec[acct].to_string()).or_insert_with(|| {
            (
                (String::new(), 0),
                String::new(),
                String::new(),
                String::new(),
            )
        });
        if key > e.0 {
            *e = (
                key,
                rec[action].to_string(),
                rec[ev].to_string(),
                rec[version].to_string(),
            );
        }
    }
    latest
        .into_iter()
        .filter(|(_, (_, a, _, _))| a == "grant")
        .map(|(acct, (_, _, ev, v))| (acct, (ev, v)))
        .collect()
}

/// `policy diff --json` → the changes' (version, material, subjects_affected).
fn diff(dir: &Path, policy: &Path, old: &str, new: &str) -> Vec<(String, bool, u64)> {
    let out = pivault(dir, Some(policy), &["policy", "diff", old, new, "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["version"].as_str().unwrap().to_string(),
                c["material"].as_bool().unwrap(),
                c["subjects_affected"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_material_change_outdates_older_consents_until_they_are_given_again() {
    let dir = tempfile::tempdir().unwrap();
    let slice = pivault_testkit::write_slice(
        &dir.path().join("slice"),
        SLICE_USERS,
        &["consent_events.csv"],
    );
    let out = pivault(dir.path(), None, &["import", slice.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let active = active_marketing_from_csv(
        &slice,
        &dir.path()
            .join("data/rejects/consent_events.csv.rejects.csv"),
    );
    assert!(active.len() > 10, "the slice holds marketing consents");
    assert!(
        active.values().any(|(_, v)| v == "2023-06-01")
            && active.values().any(|(_, v)| v == "2024-12-04"),
        "consents under both earlier versions"
    );
    let expected = active.len() as u64;

    // Under the default policy nothing is outdated: explain allows a marketing use of an
    // adult's mobile number (a minor's PI would need a separate consent, PIPL Art. 28-29).
    let births: HashMap<String, String> = pivault_testkit::read_csv(&slice.join("users.csv"))
        .into_iter()
        .map(|r| (r["account_id"].clone(), r["birth_date"].clone()))
        .collect();
    let (account, (event, _)) = active
        .iter()
        .filter(|(a, _)| {
            births
                .get(*a)
                .is_some_and(|b| !b.is_empty() && b.as_str() < "2000")
        })
        .min()
        .unwrap();
    sqlx::any::install_default_drivers();
    let url = format!("sqlite://{}", dir.path().join("data/pivault.db").display());
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    let subject: String = sqlx::query("SELECT subject_id FROM consent_events WHERE event_ref = $1")
        .bind(event)
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("subject_id")
        .unwrap();
    pool.close().await;
    let explain = |policy: Option<&Path>| {
        pivault(
            dir.path(),
            policy,
            &[
                "policy",
                "explain",
                "--subject",
                &subject,
                "--purpose",
                "marketing",
                "--categories",
                "user.contact.mobile",
            ],
        )
    };
    let out = explain(None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // The fixture policy: version 2025-06-01 changes marketing materially.
    let fixture = pivault_testkit::write_material_change_policy(&dir.path().join("fixture"));
    let changes = diff(dir.path(), &fixture, "2024-12-04", MATERIAL_CHANGE_VERSION);
    assert_eq!(
        changes,
        [(MATERIAL_CHANGE_VERSION.to_string(), true, expected)],
        "policy diff counts every subject with an active marketing consent from before"
    );
    assert_eq!(
        diff(dir.path(), &fixture, "2023-06-01", MATERIAL_CHANGE_VERSION),
        changes,
        "2024-12-04 recorded no change"
    );

    // One notice per affected subject, also after the vault was opened again.
    let notices = || async {
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT subject_id) AS d FROM outbox \
             WHERE kind = 'policy_change_notice' AND cause = $1",
        )
        .bind(MATERIAL_CHANGE_VERSION)
        .fetch_one(&pool)
        .await
        .unwrap();
        let n: (i64, i64) = (r.try_get("n").unwrap(), r.try_get("d").unwrap());
        let published: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'policy.version_published'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
        let stored: Vec<(String, Option<String>)> =
            sqlx::query("SELECT version, text FROM policy_history ORDER BY version")
                .fetch_all(&pool)
                .await
                .unwrap()
                .iter()
                .map(|r| (r.try_get("version").unwrap(), r.try_get("text").unwrap()))
                .collect();
        pool.close().await;
        (n, published, stored)
    };
    let (n, published, stored) = notices().await;
    assert_eq!(n, (expected as i64, expected as i64));
    assert_eq!(
        published, 3,
        "each version recorded once, with its audit entry"
    );
    let versions: Vec<&str> = stored.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        versions,
        ["2023-06-01", "2024-12-04", MATERIAL_CHANGE_VERSION]
    );
    assert!(stored[0].1.is_none(), "no text on file for 2023-06-01");
    assert!(stored[1]
        .1
        .as_deref()
        .unwrap()
        .starts_with("Inspur Cloud Legal Statement"));

    // The notices are delivered like any other message, in the subject's language.
    let sink = pivault_notify::testing::SmtpSink::start().await;
    let out = bin()
        .in_dir(dir.path())
        .env("PIVAULT_POLICY", &fixture)
        .env("PIVAULT_SMTP_URL", sink.url())
        .args(["outbox", "deliver"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mails = sink.messages();
    assert!(!mails.is_empty(), "{}", text(&out.stdout));
    let rcpts: HashSet<String> = mails.iter().map(|m| m.rcpt_to.join(",")).collect();
    assert_eq!(rcpts.len(), mails.len(), "one mail per subject");
    for m in &mails {
        let body = m.text_body().unwrap();
        assert!(body.contains(MATERIAL_CHANGE_VERSION), "{body}");
        assert!(body.contains("PIPL Art. 14 / policy §X"), "{body}");
        assert!(
            body.contains(MATERIAL_CHANGE_SUMMARY),
            "the change's summary: {body}"
        );
    }

    // Decide denies the older consent, naming the change.
    let out = explain(Some(&fixture));
    let said = text(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{said}{}", text(&out.stderr));
    assert!(said.contains("consent_outdated"), "{said}");
    assert!(said.contains("PIPL Art. 14"), "{said}");
    assert!(said.contains(&format!("version {MATERIAL_CHANGE_VERSION} changed this purpose materially: {MATERIAL_CHANGE_SUMMARY}")), "{said}");

    // A fresh grant under the new version counts again.
    let regrant = dir.path().join("regrant");
    std::fs::create_dir_all(&regrant).unwrap();
    let at = time_now_rfc3339();
    std::fs::write(
        regrant.join("consent_events.csv"),
        format!(
            "event_id,account_id,purpose,action,at,policy_version,method,given_by\r\n\
             re-{account},{account},marketing,grant,{at},{MATERIAL_CHANGE_VERSION},web,self\r\n"
        ),
    )
    .unwrap();
    let out = pivault(
        dir.path(),
        Some(&fixture),
        &["import", regrant.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = explain(Some(&fixture));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        diff(dir.path(), &fixture, "2024-12-04", MATERIAL_CHANGE_VERSION),
        [(MATERIAL_CHANGE_VERSION.to_string(), true, expected - 1)]
    );

    // Opened several more times: still one notice per subject, each version recorded once.
    let (n2, published2, _) = notices().await;
    assert_eq!((n2, published2), (n, published));

    // Back to the default policy: the vault opens (2025-06-01 stays recorded) and nothing is
    // outdated by it any more.
    let out = explain(None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn a_published_version_is_never_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = pivault_testkit::write_material_change_policy(&dir.path().join("fixture"));
    let out = pivault(
        dir.path(),
        Some(&fixture),
        &["policy", "diff", "2023-06-01", MATERIAL_CHANGE_VERSION],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(MATERIAL_CHANGE_SUMMARY),
        "{}",
        text(&out.stdout)
    );
    // The same version label with another change: refused.
    let src = std::fs::read_to_string(&fixture).unwrap();
    std::fs::write(&fixture, src.replace("material = true", "material = false")).unwrap();
    let out = pivault(
        dir.path(),
        Some(&fixture),
        &["policy", "diff", "2023-06-01", MATERIAL_CHANGE_VERSION],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("policy_version_rewritten"),
        "{}",
        text(&out.stderr)
    );
    // Unknown versions and the wrong order are refused too.
    std::fs::write(&fixture, src).unwrap();
    let out = pivault(
        dir.path(),
        Some(&fixture),
        &["policy", "diff", "2020-01-01", MATERIAL_CHANGE_VERSION],
    );
    assert!(!out.status.success());
    let out = pivault(
        dir.path(),
        Some(&fixture),
        &["policy", "diff", MATERIAL_CHANGE_VERSION, "2023-06-01"],
    );
    assert!(!out.status.success());
}

/// Now, one minute ago, as `YYYY-MM-DDTHH:MM:SSZ` (a consent time the importer takes).
fn time_now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
