//! Issue 13: a delivering process killed with SIGKILL mid-batch and restarted tells each
//! affected person exactly once. Notices are queued for every account of a 400-account slice
//! (an incident scoped to the whole store), `pivault outbox deliver` is killed while it sends to
//! a real SMTP sink, and a second run (after the killed run's leases have run out) finishes.
//!
//! What "exactly once" means over SMTP: the outbox row of each notice is delivered once; a
//! message the killed process had handed to the SMTP server but not yet recorded is sent again
//! under the same `Message-ID`, which the receiver drops as a copy (RFC 5322 §3.6.4). At most
//! one such message per worker can exist at a kill.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

const NOW: i64 = 1_796_000_000;

fn bin() -> PivaultBin {
    PivaultBin::new(env!("CARGO_BIN_EXE_pivault"))
}

fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = bin().in_dir(dir);
    c.env("PIVAULT_FAKE_NOW", NOW.to_string());
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

fn json(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> serde_json::Value {
    let out = run(dir, env, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_killed_mid_batch_and_restarted_tells_everyone_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slice = pivault_testkit::write_slice(&d.join("slice"), 400, &[]);
    let out = run(d, &[], &["import", slice.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inc = json(
        d,
        &[],
        &[
            "incident",
            "open",
            "--severity",
            "especially_major",
            "--what",
            "The database backup bucket was readable from the internet.",
            "--occurred-at",
            &(NOW - 86_400).to_string(),
            "--discovered-at",
            &(NOW - 3_600).to_string(),
            "--category",
            "user.contact.email",
        ],
    );
    let id = inc["id"].as_str().unwrap().to_string();
    let scoped = json(
        d,
        &[],
        &[
            "incident",
            "scope",
            &id,
            "--from",
            "0",
            "--to",
            &NOW.to_string(),
            "--store",
            "--category",
            "user.contact.email",
        ],
    );
    let affected = scoped["affected"].as_u64().unwrap();
    assert!(affected >= 390, "{scoped}");
    let n = json(d, &[], &["incident", "notify", &id]);
    assert_eq!(n["enqueued"].as_u64(), Some(affected));

    let sink = pivault_notify::testing::SmtpSink::start().await;
    let smtp = sink.url();
    // First run: killed with SIGKILL once a quarter of the notices went out.
    let mut c = bin().in_dir(d);
    c.env("PIVAULT_FAKE_NOW", NOW.to_string())
        .env("PIVAULT_SMTP_URL", &smtp)
        .args(["outbox", "deliver", "--workers", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    let started = Instant::now();
    while sink.messages().len() < (affected / 4) as usize {
        assert!(started.elapsed() < Duration::from_secs(120), "no delivery");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = sink.messages().len();
    assert!(
        (at_kill as u64) < affected,
        "killed mid-batch: {at_kill} of {affected} sent"
    );
    // Second run, after the killed run's leases (60 s) ran out.
    let later = (NOW + 120).to_string();
    let rep = json(
        d,
        &[("PIVAULT_SMTP_URL", &smtp), ("PIVAULT_FAKE_NOW", &later)],
        &["outbox", "deliver", "--workers", "2"],
    );
    assert!(
        rep["delivered"].as_u64().unwrap() + (at_kill as u64) >= affected,
        "{rep}"
    );
    let status = json(d, &[], &["outbox", "status"]);
    assert_eq!(status["delivered"].as_u64(), Some(affected), "{status}");
    assert_eq!(status["pending"], 0, "{status}");

    let mails = sink.messages();
    let mut copies: BTreeMap<String, usize> = BTreeMap::new();
    for m in &mails {
        *copies
            .entry(m.message_id().expect("a Message-ID"))
            .or_default() += 1;
    }
    assert_eq!(
        copies.len() as u64,
        affected,
        "one notice per affected subject"
    );
    let resent: usize = copies.values().map(|c| c - 1).sum();
    eprintln!("{affected} notices; {at_kill} sent before SIGKILL; {resent} sent twice");
    assert!(
        resent <= 2,
        "{resent} messages sent twice: at most one per worker may be in flight at the kill"
    );
    // The copies are the same notice: same recipient and same text.
    let mut by_id: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for m in &mails {
        by_id
            .entry(m.message_id().unwrap())
            .or_default()
            .insert((m.rcpt_to.join(","), m.text_body().unwrap_or_default()));
    }
    assert!(by_id.values().all(|v| v.len() == 1), "a copy differs");
    // Every attempt is recorded, and the audit log holds one delivery entry per notice.
    let out = run(d, &[], &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
