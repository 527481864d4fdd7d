//! Issue 13 through the real binary: an API key reads three subjects, the incident is opened,
//! scoped to that principal and window, notified, and `outbox deliver` sends one mail per
//! affected subject to a real SMTP sink; the regulator report holds no contact data; a service
//! cessation then refuses collection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::{start_serve, PivaultBin};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn bin() -> PivaultBin {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault"))
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = bin().in_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

/// Runs a command that must succeed and print JSON.
fn json(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> serde_json::Value {
    let out = run(dir, env, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Whether `s` holds something shaped like a mainland mobile number (11 digits from 1).
fn has_mobile(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(11).enumerate().any(|(i, w)| {
        w[0] == b'1'
            && w.iter().all(u8::is_ascii_digit)
            && (i == 0 || !b[i - 1].is_ascii_digit())
            && b.get(i + 11).is_none_or(|c| !c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_scoped_to_a_principal_is_notified_once_per_subject_then_cessation_refuses_import()
{
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slice = pivault_testkit::write_slice(&d.join("slice"), 20, &[]);
    let out = run(d, &[], &["import", slice.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(
        d,
        &[],
        &[
            "keys",
            "create",
            "--principal",
            "leaky",
            "--roles",
            "app",
            "--purposes",
            "service",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();

    // The compromised principal reads three subjects through the API.
    let start = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut server = start_serve(bin().in_dir(d));
    let http = reqwest::Client::new();
    let mut read = BTreeSet::new();
    for account in ["u100000", "u100001", "u100002"] {
        let v: serde_json::Value = http
            .post(format!("{}/v1/lookup", server.base))
            .bearer_auth(&key)
            .json(&serde_json::json!({"by": "account_id", "value": account, "purpose": "service"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let s = v["subjects"][0].as_str().unwrap().to_string();
        let r = http
            .get(format!(
                "{}/v1/subjects/{s}/fields?purpose=service",
                server.base
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{s}");
        read.insert(s);
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    let inc = json(
        d,
        &[],
        &[
            "incident",
            "open",
            "--severity",
            "major",
            "--what",
            "An API key of the billing integration was published in a public repository.",
            "--occurred-at",
            &(start - 60).to_string(),
            "--discovered-at",
            &now.to_string(),
            "--category",
            "user.contact.email",
            "--impact",
            "Contact data may be used for phishing.",
        ],
    );
    let id = inc["id"].as_str().unwrap().to_string();
    assert_eq!(inc["state"], "open");

    // bad input: a time that is neither form, an unknown incident
    let out = run(
        d,
        &[],
        &["incident", "scope", &id, "--from", "yesterday", "--to", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = run(d, &[], &["incident", "show", "inc-nope"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("incident_not_found"),
        "{out:?}"
    );

    let scoped = json(
        d,
        &[],
        &[
            "incident",
            "scope",
            &id,
            "--from",
            &(start - 60).to_string(),
            "--to",
            &(now + 1).to_string(),
            "--principal",
            "leaky",
        ],
    );
    assert_eq!(scoped["affected"], 3, "{scoped}");
    let ids = json(d, &[], &["incident", "subjects", &id]);
    let ids: BTreeSet<String> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, read);

    let n = json(d, &[], &["incident", "notify", &id]);
    assert_eq!(n["enqueued"], 3, "{n}");
    // idempotent
    let n = json(d, &[], &["incident", "notify", &id]);
    assert_eq!(n["enqueued"], 0, "{n}");

    let sink = pivault_notify::testing::SmtpSink::start().await;
    let smtp = sink.url();
    let env = [("PIVAULT_SMTP_URL", smtp.as_str())];
    let rep = json(
        d,
        &env,
        &["outbox", "deliver", "--workers", "3", "--max", "2"],
    );
    assert_eq!(rep["processed"], 3, "{rep}");
    assert_eq!(rep["delivered"], 3, "{rep}");
    let mails = sink.messages();
    assert_eq!(mails.len(), 3);
    let message_ids: BTreeSet<String> = mails.iter().map(|m| m.message_id().unwrap()).collect();
    assert_eq!(message_ids.len(), 3, "one Message-ID per notice");
    let rcpts: BTreeSet<String> = mails.iter().map(|m| m.rcpt_to.join(",")).collect();
    assert_eq!(rcpts.len(), 3, "one mail per affected subject");
    // nothing left to do
    let rep = json(d, &env, &["outbox", "deliver"]);
    assert_eq!(rep["processed"], 0, "{rep}");
    let status = json(d, &[], &["outbox", "status"]);
    assert_eq!(status["delivered"], 3, "{status}");

    let out = run(d, &[], &["incident", "report", &id, "--format", "json"]);
    assert!(out.status.success(), "{out:?}");
    let report = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str::<serde_json::Value>(&report).unwrap();
    assert!(!report.contains('@'), "an email address in the report");
    assert!(!has_mobile(&report), "a mobile number in the report");
    for r in &rcpts {
        assert!(!report.contains(r.as_str()));
    }

    let c = json(d, &env, &["cessation", "start"]);
    assert_ne!(c["state"], "none", "{c}");
    let out = run(d, &[], &["import", slice.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("service_ceased"),
        "{out:?}"
    );
    let out = run(d, &[], &["cessation", "start"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cessation_already_started"));
}

#[test]
fn has_mobile_finds_eleven_digit_runs_only() {
    assert!(has_mobile("call 13319917325."));
    assert!(!has_mobile("id 130501196509157909"));
    assert!(!has_mobile("1700000000"));
}
