//! Issue 15 through the real binary: `audit key`, `audit checkpoint`, `audit proof`, `audit
//! consistency`, `audit verify-proof` (offline: no database), the `audit verify` line with
//! shards and checkpoints, `--audit-shards` on every command, and `serve`'s checkpoint task.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::bin::PivaultBin;
use std::path::Path;
use std::process::Output;

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

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{:?}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A vault in `dir` holding the first 10 users of the data set and their orders.
fn imported(dir: &Path, extra: &[&str]) {
    let slice = pivault_testkit::write_slice(&dir.join("slice"), 10, &["orders.csv"]);
    let mut args = extra.to_vec();
    args.extend(["import", slice.to_str().unwrap()]);
    ok(&pivault(dir, &args));
}

/// Changes one base64 character (so one byte) in the middle of the bundle's `leaf`.
fn with_changed_leaf(bundle: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(bundle).unwrap();
    let leaf = v["leaf"].as_str().unwrap().to_string();
    let i = leaf.len() / 2;
    let c = leaf.as_bytes()[i];
    let swapped = if c == b'A' { 'B' } else { 'A' };
    v["leaf"] = format!("{}{swapped}{}", &leaf[..i], &leaf[i + 1..]).into();
    v.to_string()
}

#[test]
fn checkpoints_and_proofs_from_the_cli_verify_offline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    imported(d, &[]);
    let key = ok(&pivault(d, &["audit", "key"])).trim().to_string();
    assert!(key.starts_with("pivault/audit/"), "{key}");
    std::fs::write(d.join("audit.key"), format!("{key}\n")).unwrap();

    // A checkpoint: its number, size and signed note.
    let out = ok(&pivault(d, &["audit", "checkpoint"]));
    let first = out.lines().next().unwrap();
    assert!(first.starts_with("checkpoint 1: "), "{out}");
    assert!(
        out.contains(&format!("\n{}\n", key.split('+').next().unwrap())),
        "{out}"
    );
    assert!(out.contains("\n\n— "), "the note's signature line: {out}");

    // The inclusion proof of entry 3, written to a file, checks offline with the key (given
    // as the key or as its file) and prints the decoded entry.
    let out = pivault(d, &["audit", "proof", "3", "--out", "p.json"]);
    ok(&out);
    assert!(text(&out.stderr).contains("wrote the inclusion proof of entry 3"));
    for k in [key.as_str(), "audit.key"] {
        let out = ok(&pivault(
            d,
            &["audit", "verify-proof", "p.json", "--key", k],
        ));
        assert!(
            out.starts_with("inclusion proof ok: shard 0 entry 2 is in checkpoint pivault/audit/"),
            "{out}"
        );
        assert!(
            out.contains("(audit entry 3)") && out.contains("\"seq\": 3"),
            "{out}"
        );
    }
    // On standard output without --out, against a named checkpoint.
    let stdout = ok(&pivault(d, &["audit", "proof", "3", "--checkpoint", "1"]));
    let b: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(b["index"], 2);

    // One byte of the entry changed: exit 2, and the reason.
    let bundle = std::fs::read_to_string(d.join("p.json")).unwrap();
    std::fs::write(d.join("bad.json"), with_changed_leaf(&bundle)).unwrap();
    let out = pivault(d, &["audit", "verify-proof", "bad.json", "--key", &key]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        text(&out.stderr).contains("proof does NOT verify"),
        "{out:?}"
    );
    // Not a bundle: 2; an unreadable file or a bad key: 1.
    std::fs::write(d.join("junk.json"), "{\"x\": 1}").unwrap();
    let out = pivault(d, &["audit", "verify-proof", "junk.json", "--key", &key]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = pivault(d, &["audit", "verify-proof", "missing.json", "--key", &key]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = pivault(
        d,
        &["audit", "verify-proof", "p.json", "--key", "not-a-key"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    // A proof against checkpoint 1 of an entry appended later: refused.
    ok(&pivault(
        d,
        &[
            "keys",
            "create",
            "--principal",
            "x",
            "--roles",
            "app",
            "--purposes",
            "service",
        ],
    ));
    let head = ok(&pivault(d, &["audit", "checkpoint"]));
    let size: i64 = head.split_whitespace().nth(2).unwrap().parse().unwrap();
    let out = pivault(
        d,
        &["audit", "proof", &size.to_string(), "--checkpoint", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("entry_not_in_checkpoint"),
        "{out:?}"
    );

    // The consistency proof from checkpoint 1 to 2 checks offline too.
    let out = pivault(
        d,
        &[
            "audit",
            "consistency",
            "--from",
            "1",
            "--to",
            "2",
            "--out",
            "c.json",
        ],
    );
    ok(&out);
    let out = ok(&pivault(
        d,
        &["audit", "verify-proof", "c.json", "--key", "audit.key"],
    ));
    assert!(out.starts_with("consistency proof ok: "), "{out}");
    assert!(out.contains("shard 0: size "), "{out}");
    // Checkpoint 2 presented as the old one of a bundle it does not extend: exit 2.
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("c.json")).unwrap()).unwrap();
    let old = c["old"].clone();
    c["old"] = c["new"].clone();
    c["new"] = old;
    std::fs::write(d.join("swapped.json"), c.to_string()).unwrap();
    let out = pivault(d, &["audit", "verify-proof", "swapped.json", "--key", &key]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    // `audit verify` counts shards and checkpoints.
    let out = ok(&pivault(d, &["audit", "verify"]));
    assert!(
        out.contains(&format!(
            "audit chain ok: {size} entries in 1 shard(s), 2 checkpoint(s) verified"
        )),
        "{out}"
    );

    // verify-proof opens no database: in an empty directory nothing is created.
    let empty = tempfile::tempdir().unwrap();
    std::fs::copy(d.join("p.json"), empty.path().join("p.json")).unwrap();
    let out = ok(&pivault(
        empty.path(),
        &["audit", "verify-proof", "p.json", "--key", &key],
    ));
    assert!(out.starts_with("inclusion proof ok"), "{out}");
    assert!(
        !empty.path().join("data").exists(),
        "verify-proof touched a database"
    );
}

#[test]
fn audit_shards_applies_to_every_command_that_opens_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Out of range: a configuration error naming the setting.
    for (env, flag) in [("0", "--audit-shards=0"), ("1025", "--audit-shards=x")] {
        let out = bin()
            .in_dir(d)
            .env("PIVAULT_AUDIT_SHARDS", env)
            .args(["audit", "key"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(text(&out.stderr).contains("audit_shards"), "{out:?}");
        let out = pivault(d, &[flag, "audit", "key"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
    }
    // `config show`: unset by default, and where it was set.
    let out = ok(&pivault(d, &["config", "show"]));
    assert!(out.contains("# audit_shards is not set"), "{out}");
    assert!(
        out.contains("checkpoint_interval_secs = 60  # default"),
        "{out}"
    );
    let out = ok(&pivault(
        d,
        &[
            "config",
            "show",
            "--audit-shards",
            "4",
            "--checkpoint-interval-secs",
            "0",
        ],
    ));
    assert!(
        out.contains("audit_shards = 4  # flag --audit-shards"),
        "{out}"
    );
    assert!(
        out.contains("checkpoint_interval_secs = 0  # flag --checkpoint-interval-secs"),
        "{out}"
    );

    // A new database imported with 4 shards: the entries spread over them, and the later
    // commands (without the setting) keep the 4.
    imported(d, &["--audit-shards", "4"]);
    let out = ok(&pivault(d, &["audit", "checkpoint"]));
    let size: i64 = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    let shard_lines: Vec<&str> = out.lines().filter(|l| l.starts_with("shard ")).collect();
    assert_eq!(shard_lines.len(), 4, "{out}");
    let used = shard_lines
        .iter()
        .filter(|l| l.split_whitespace().nth(2) != Some("0"))
        .count();
    assert!(
        used >= 2,
        "the subjects' entries spread over the shards: {out}"
    );
    let out = ok(&pivault(d, &["audit", "verify"]));
    assert!(
        out.contains(" entries in 4 shard(s), 1 checkpoint(s) verified"),
        "{out}"
    );
    // Asking for fewer later changes nothing (shards are never removed).
    let out = ok(&bin()
        .in_dir(d)
        .env("PIVAULT_AUDIT_SHARDS", "2")
        .args(["audit", "verify"])
        .output()
        .unwrap());
    assert!(out.contains(" in 4 shard(s)"), "{out}");
    // Every shard's proof checks.
    let key = ok(&pivault(d, &["audit", "key"])).trim().to_string();
    for seq in [1, size / 2, size] {
        ok(&pivault(
            d,
            &["audit", "proof", &seq.to_string(), "--out", "p.json"],
        ));
        ok(&pivault(
            d,
            &["audit", "verify-proof", "p.json", "--key", &key],
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_signs_a_checkpoint_at_its_interval_and_publishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    imported(d, &[]);
    let mut cmd = bin().in_dir(d);
    cmd.env("PIVAULT_CHECKPOINT_INTERVAL_SECS", "1");
    let server = pivault_testkit::bin::serve(cmd);
    let http = reqwest::Client::new();
    let key: serde_json::Value = http
        .get(format!("{}/v1/audit/key", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cli_key = ok(&pivault(d, &["audit", "key"])).trim().to_string();
    assert_eq!(key["key"], cli_key.as_str());
    let mut latest = None;
    for _ in 0..100 {
        let r = http
            .get(format!("{}/v1/audit/checkpoints/latest", server.base))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            latest = Some(r.json::<serde_json::Value>().await.unwrap());
            break;
        }
        assert_eq!(r.status(), 404);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let latest = latest.expect("serve signed no checkpoint within 10 s");
    assert!(latest["size"].as_i64().unwrap() > 0, "{latest}");
    // The log did not grow: the next ticks sign nothing new.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let again: serde_json::Value = http
        .get(format!("{}/v1/audit/checkpoints/latest", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["id"], latest["id"],
        "a checkpoint per tick although nothing changed"
    );
}
