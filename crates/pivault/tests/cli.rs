//! The operator CLI, run as a user would: the real binary, a temp working directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use pivault_testkit::{data_dir as data, repo_root as repo};
use std::path::{Path, PathBuf};
use std::process::Output;

/// The binary under test.
fn bin() -> PivaultBin {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault"))
}

/// `pivault ARGS` in `dir`, with its database and key inside `dir`.
fn pivault(dir: &Path, args: &[&str]) -> Output {
    bin().in_dir(dir).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// (imported, rejected, skipped) per file from the import report.
fn counts(stdout: &str) -> Vec<(String, u64, u64, u64)> {
    stdout
        .lines()
        .filter(|l| l.contains(".csv") || l.contains(".jsonl") || l.starts_with("access.log"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn policy_check_passes_the_default_policy() {
    let out = pivault(&repo(), &["policy", "check", "policies/default.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok — policy inspur-cloud version 2024-12-04"));
}

#[test]
fn policy_check_reports_every_error_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[policy]\nid = \"x\"\nversion = \"1\"\ntitle = \"t\"\nstorage_region = \"cn\"\nminor_age = 14\ndsr_deadline_days = 10\n\n\
         [[category]]\nkey = \"user.name\"\nname = \"Name\"\nsensitivity = \"secret\"\nvalue_type = \"text\"\nclause = \"§1\"\n\n\
         [[purpose]]\nid = \"service\"\nname = \"S\"\nclause = \"§2\"\nlegal_basis = \"contract\"\ncategories = [\"user.name\", \"user.nope\"]\n",
    )
    .unwrap();
    let out = pivault(dir.path(), &["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(": error:")).collect();
    assert!(lines.len() >= 2, "{err}");
    assert!(
        lines.iter().any(|l| l.contains("bad.toml:12:")),
        "sensitivity error is on line 12: {err}"
    );
    assert!(
        lines.iter().any(|l| l.contains("bad.toml:21:")),
        "unknown category is on line 21: {err}"
    );
}

#[test]
fn unknown_database_schemes_and_bare_paths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for url in ["mysql://localhost/x", "./data/pivault.db"] {
        let out = pivault(dir.path(), &["--database-url", url, "migrate"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).contains("unsupported database URL"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn first_start_generates_a_development_master_key_with_mode_0600_and_warns() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = pivault(
        dir.path(),
        &[
            "keys",
            "create",
            "--principal",
            "billing",
            "--purposes",
            "service,legal_obligation",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("pvk."));
    assert!(text(&out.stderr).contains("development-only master key"));
    let mode = std::fs::metadata(dir.path().join("data/master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let again = pivault(
        dir.path(),
        &[
            "keys",
            "create",
            "--principal",
            "x",
            "--purposes",
            "marketing",
        ],
    );
    assert!(!text(&again.stderr).contains("development-only master key"));
    assert!(
        !text(&again.stderr).contains("chmod 600"),
        "mode 0600 is not warned about"
    );
    // A key file its group or others can read is warned about on every start, not refused.
    let key = dir.path().join("data/master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shared = pivault(dir.path(), &["keys", "list"]);
    assert!(shared.status.success(), "{}", text(&shared.stderr));
    assert!(
        text(&shared.stderr).contains("has mode 644") && text(&shared.stderr).contains("chmod 600"),
        "{}",
        text(&shared.stderr)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let bad = pivault(
        dir.path(),
        &["keys", "create", "--principal", "x", "--purposes", "spying"],
    );
    assert!(!bad.status.success());
}

#[test]
fn full_data_set_imports_once_then_skips_and_the_audit_chain_catches_an_altered_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = data();
    let out = pivault(dir.path(), &["import", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = counts(&text(&out.stdout));
    let expect = [
        ("users.csv", 10_000),
        ("consent_events.csv", 42_933),
        ("orders.csv", 18_352),
        ("face_templates.csv", 2_070),
        ("business_contacts.csv", 500),
        ("icp_filings.csv", 1_000),
        // every one of the 2,000 tickets names an account in users.csv
        ("tickets.jsonl", 2_000),
        // every web-log line names an account as its remote user (§2.1.2)
        ("access.log", 50_000),
    ];
    assert_eq!(first.len(), expect.len(), "{}", text(&out.stdout));
    for ((file, imported, rejected, skipped), (want_file, want)) in first.iter().zip(expect) {
        assert_eq!(
            (file.as_str(), *imported, *rejected, *skipped),
            (want_file, want, 0, 0)
        );
    }
    let out = pivault(dir.path(), &["import", data.to_str().unwrap()]);
    let second = counts(&text(&out.stdout));
    for ((_, imported, rejected, skipped), (_, want)) in second.iter().zip(expect) {
        assert_eq!(
            (*imported, *rejected, *skipped),
            (0, 0, want),
            "a second import must not duplicate"
        );
    }

    let ok = pivault(dir.path(), &["audit", "verify"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    // 126,855 import entries and the two policy versions recorded at the first open
    // (`policy.version_published`, policy §X)
    assert!(
        text(&ok.stdout).contains("audit chain ok: 126857 entries"),
        "{}",
        text(&ok.stdout)
    );

    // alter one row by hand, as an operator with database access could
    let url = format!("sqlite://{}", dir.path().join("data/pivault.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = pivault_store::Store::connect(&url).await.unwrap();
        store
            .tamper_audit_action(31_337, "subject.read")
            .await
            .unwrap();
        store.close().await;
    });
    let bad = pivault(dir.path(), &["audit", "verify"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("BROKEN at entry 31337"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn bad_rows_go_to_a_reject_file_with_line_numbers_and_good_rows_still_land() {
    rejects_case("\n");
}

#[test]
fn reject_line_numbers_are_physical_lines_in_crlf_files_too() {
    // the data set's own files are CRLF (Python's csv module)
    rejects_case("\r\n");
}

fn rejects_case(sep: &str) {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(data().join("users.csv")).unwrap();
    let mut lines = src.lines();
    let header = lines.next().unwrap();
    let rows: Vec<String> = lines.take(5).map(str::to_string).collect();
    let bad_mobile = rows[1].replacen(
        &rows[1].split(',').nth(4).unwrap().to_string(),
        "1390000",
        1,
    );
    let id = rows[3].split(',').nth(2).unwrap().to_string();
    let flipped = format!("{}{}", &id[..17], if id.ends_with('0') { '1' } else { '0' });
    let bad_id = rows[3].replacen(&id, &flipped, 1);
    let body = [
        header.to_string(),
        rows[0].clone(),                  // line 2: good
        bad_mobile,                       // line 3: mobile too short
        rows[2].clone(),                  // line 4: good
        "u1,too,few,columns".to_string(), // line 5: malformed CSV
        bad_id,                           // line 6: wrong ID check digit
        rows[4].clone(),                  // line 7: good
    ]
    .join(sep);
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("users.csv"), body + sep).unwrap();
    let out = pivault(dir.path(), &["import", "in"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        counts(&text(&out.stdout)),
        vec![("users.csv".to_string(), 3, 3, 0)]
    );
    let rejects =
        std::fs::read_to_string(dir.path().join("data/rejects/users.csv.rejects.csv")).unwrap();
    let r: Vec<&str> = rejects.lines().collect();
    assert_eq!(r[0], "line,column,code,reason");
    assert!(r[1].starts_with("3,mobile,mobile_too_short,"), "{rejects}");
    assert!(r[2].starts_with("5,,csv_malformed,"), "{rejects}");
    assert!(
        r[3].starts_with("6,id_card_number,id_card_check_digit,"),
        "{rejects}"
    );
    assert!(
        !rejects.contains("1390000") && !rejects.contains(&flipped),
        "a reject file must not hold PI"
    );
}

#[test]
fn bad_ticket_lines_go_to_a_reject_file_with_physical_line_numbers_and_no_ticket_text() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(data().join("users.csv")).unwrap();
    let users: Vec<&str> = src.lines().take(3).collect();
    let account = |i: usize| users[i].split(',').next().unwrap().to_string();
    let ticket = |id: &str, acc: &str, at: &str, text: &str| {
        serde_json::json!({"ticket_id": id, "account_id": acc, "created_at": at, "text": text,
                           "spans": [[3, 14, "PHONE_NUMBER"]]})
        .to_string()
    };
    let at = "2025-07-17T19:36:37Z";
    let long = "机密".repeat(40_000);
    let lines = [
        ticket("t1", &account(1), at, "我的号13900001111，请回电") + "\n", // 1: good
        "{\"ticket_id\": \"t2\", \"account_id\": \"u1\", \"text\": \"半行".to_string() + "\n", // 2: broken JSON
        ticket("t3", "u999999", at, "号码13900003333丢了") + "\n", // 3: unknown account
        ticket("t4", &account(2), "2025-07-17 19:36", "号码13900004444") + "\n", // 4: bad timestamp
        ticket("t5", &account(2), at, "退款到13900005555") + "\r\n", // 5: good, CRLF
        ticket("t6", &account(1), at, &long) + "\r\n",             // 6: text over 64 KiB
        ticket("t7", &account(1), at, "第七行13900007777"),        // 7: good, no final newline
    ];
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("users.csv"), users.join("\r\n") + "\r\n").unwrap();
    std::fs::write(input.join("tickets.jsonl"), lines.concat()).unwrap();

    let out = pivault(dir.path(), &["import", "in"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        counts(&text(&out.stdout)),
        vec![
            ("users.csv".to_string(), 2, 0, 0),
            ("tickets.jsonl".to_string(), 3, 4, 0)
        ]
    );
    let rejects =
        std::fs::read_to_string(dir.path().join("data/rejects/tickets.jsonl.rejects.csv")).unwrap();
    let r: Vec<&str> = rejects.lines().collect();
    assert_eq!(r.len(), 5, "{rejects}");
    assert_eq!(r[0], "line,column,code,reason");
    assert!(r[1].starts_with("2,,json_malformed,"), "{rejects}");
    assert!(
        r[2].starts_with("3,account_id,unknown_account,"),
        "{rejects}"
    );
    assert!(
        r[3].starts_with("4,created_at,timestamp_malformed,"),
        "{rejects}"
    );
    assert!(r[4].starts_with("6,text,value_too_long,"), "{rejects}");
    for pi in ["1390000", "半行", "机密", "u999999", "2025-07-17"] {
        assert!(
            !rejects.contains(pi),
            "a reject file must not hold PI: {rejects}"
        );
    }

    // a second run lands nothing new and rejects the same lines
    let out = pivault(dir.path(), &["import", "in"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        counts(&text(&out.stdout))[1],
        ("tickets.jsonl".to_string(), 0, 4, 3)
    );
    let ok = pivault(dir.path(), &["audit", "verify"]);
    assert!(
        // 5 import entries and the two policy versions recorded at the first open, in the one
        // shard of a SQLite database, no checkpoint signed yet
        text(&ok.stdout)
            .contains("audit chain ok: 7 entries in 1 shard(s), 0 checkpoint(s) verified"),
        "{}",
        text(&ok.stdout)
    );
}

/// A data set folder holding the first `n` users of the shared data set and their orders.
fn small_slice(dir: &Path, n: usize) -> PathBuf {
    pivault_testkit::write_slice(&dir.join("slice"), n, &["orders.csv"])
}

/// The real process crashes (abort) right after a deletion step commits; the next `pivault dsr
/// run` resumes from the following step, and the signed receipt verifies with the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dsr_cli_resumes_after_a_real_crash_between_steps() {
    let dir = tempfile::tempdir().unwrap();
    let slice = small_slice(dir.path(), 30);
    let out = pivault(dir.path(), &["import", slice.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sink = pivault_notify::testing::SmtpSink::start().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = bin()
        .in_dir(dir.path())
        .env("PIVAULT_SMTP_URL", sink.url())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up, "server did not start");
    // u100001 is the second user of the data set
    let email = "JMAO@example.org";
    let v: serde_json::Value = http
        .post(format!("{base}/v1/dsr"))
        .json(&serde_json::json!({"kind": "deletion", "email": email}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = v["requests"][0]["id"].as_str().unwrap().to_string();
    let token = v["requests"][0]["token"].as_str().unwrap().to_string();
    let mails = sink.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(mails[0].rcpt_to, vec!["jmao@example.org".to_string()]);
    let body = mails[0].text_body().unwrap();
    let at = body.find("code is ").unwrap() + "code is ".len();
    let code: String = body[at..].chars().take(6).collect();
    let r = http
        .post(format!("{base}/v1/dsr/{id}/verify"))
        .header("x-dsr-token", &token)
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.kill().unwrap();
    server.wait().unwrap();

    // the queue shows the verified request
    let out = pivault(dir.path(), &["dsr", "list", "--state", "verified"]);
    assert!(text(&out.stdout).contains(&id), "{}", text(&out.stdout));
    // crash the process right after `shred` commits
    let out = bin()
        .in_dir(dir.path())
        .env("PIVAULT_DSR_FAULT", "abort:shred")
        .env("RUST_LOG", "error")
        .args(["dsr", "approve", &id, "--run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "the process was killed by SIGABRT");
    let out = pivault(dir.path(), &["dsr", "show", &id]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "in_progress");
    assert_eq!(
        v["steps_done"],
        serde_json::json!(["restrict_retained", "shred"])
    );
    assert!(
        v.get("receipt").is_none(),
        "a half-done erasure has no receipt"
    );
    // resume
    let out = pivault(dir.path(), &["dsr", "run", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["state"], "completed");
    assert_eq!(
        v["steps_done"],
        serde_json::json!(["restrict_retained", "shred", "notify_recipients", "receipt"])
    );
    // the receipt verifies; a tampered one does not
    let receipt = dir.path().join("receipt.json");
    std::fs::write(&receipt, v["receipt"].to_string()).unwrap();
    let out = pivault(
        dir.path(),
        &["dsr", "verify-receipt", receipt.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut t = v["receipt"].clone();
    t["payload"] = serde_json::Value::String(
        t["payload"]
            .as_str()
            .unwrap()
            .replace("subject_request", "purpose_achieved"),
    );
    std::fs::write(&receipt, t.to_string()).unwrap();
    let out = pivault(
        dir.path(),
        &["dsr", "verify-receipt", receipt.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    // reject with an unknown reason: exit 1 with a code, not a panic
    let out = pivault(dir.path(), &["dsr", "reject", &id, "--reason", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown_reason") || text(&out.stderr).contains("reason"));
    // the audit chain is intact after the crash
    let out = pivault(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn bad_web_log_lines_are_rejected_with_their_line_numbers_and_the_rest_land() {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(data().join("users.csv")).unwrap();
    let users: Vec<&str> = src.lines().take(3).collect();
    let account = |i: usize| users[i].split(',').next().unwrap().to_string();
    let log = std::fs::read_to_string(data().join("access.log")).unwrap();
    // Real lines of the data set, re-attributed to the two imported accounts.
    let real: Vec<String> = log
        .lines()
        .take(3)
        .enumerate()
        .map(|(i, l)| {
            let mut parts: Vec<&str> = l.splitn(4, ' ').collect();
            let a = account(1 + i % 2);
            parts[2] = &a;
            parts.join(" ")
        })
        .collect();
    let lines = [
        real[0].clone(),                       // 1: good
        real[1].replace("[", "[99/Foo/2026:"), // 2: bad time
        "300.1.2.3 - u100001 [02/Oct/2026:04:24:02 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\""
            .into(), // 3: bad address
        real[2].clone() + "\r",                // 4: good, CRLF
        real[0].replacen(&account(1), "-", 1), // 5: no account linked
        "13800138000 typed into a terminal by mistake".into(), // 6: not a log line
        real[1].clone(),                       // 7: good
    ];
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("users.csv"), users.join("\n") + "\n").unwrap();
    std::fs::write(input.join("access.log"), lines.join("\n") + "\n").unwrap();

    let out = pivault(dir.path(), &["import", "in"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        counts(&text(&out.stdout)),
        vec![
            ("users.csv".to_string(), 2, 0, 0),
            ("access.log".to_string(), 3, 4, 0)
        ]
    );
    let rejects =
        std::fs::read_to_string(dir.path().join("data/rejects/access.log.rejects.csv")).unwrap();
    let r: Vec<&str> = rejects.lines().collect();
    assert_eq!(r.len(), 5, "{rejects}");
    assert!(r[1].starts_with("2,,weblog_"), "{rejects}");
    assert!(r[2].starts_with("3,,weblog_bad_address,"), "{rejects}");
    assert!(r[3].starts_with("5,remote_user,no_account,"), "{rejects}");
    assert!(r[4].starts_with("6,,weblog_"), "{rejects}");
    assert!(
        !rejects.contains("13800138000") && !rejects.contains("300.1.2.3"),
        "a reject file must not hold PI: {rejects}"
    );
    // a second run lands nothing new
    let out = pivault(dir.path(), &["import", "in"]);
    assert_eq!(
        counts(&text(&out.stdout))[1],
        ("access.log".to_string(), 0, 4, 3)
    );
}
