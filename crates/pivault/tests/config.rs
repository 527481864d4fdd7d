//! Layered configuration, through the real binary's `pivault config show`: precedence of the
//! layers, unknown keys with file:line:col, `_FILE` secrets, redaction, bad values naming their
//! source, and the checked-in `pivault.example.toml`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_testkit::repo_root;
use std::path::Path;
use std::process::{Command, Output};

/// `pivault ARGS` in `dir` with exactly the environment `env` (nothing inherited).
fn pivault(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pivault"));
    c.current_dir(dir).env_clear().args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn show(dir: &Path, env: &[(&str, &str)], flags: &[&str]) -> String {
    let mut args = vec!["config", "show"];
    args.extend_from_slice(flags);
    let out = pivault(dir, env, &args);
    assert!(
        out.status.success(),
        "config show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `(value, source)` of `key` in `config show` output.
fn entry(shown: &str, key: &str) -> (String, String) {
    let line = shown
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{key} not in:\n{shown}"));
    let rest = &line[key.len() + 3..];
    let (v, src) = rest.split_once("  # ").unwrap();
    (v.trim_matches('"').to_string(), src.to_string())
}

fn error_of(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn each_layer_overrides_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // defaults
    let s = show(d, &[], &[]);
    assert!(
        s.starts_with("# pivault effective configuration; file: (none)"),
        "{s}"
    );
    assert_eq!(
        entry(&s, "bind"),
        ("127.0.0.1:8080".into(), "default".into())
    );
    assert_eq!(entry(&s, "dsr_scan_secs"), ("300".into(), "default".into()));
    assert_eq!(entry(&s, "log_format"), ("text".into(), "default".into()));
    assert!(s.contains("# tls_cert is not set"), "{s}");

    // the file (./pivault.toml, found in the working directory)
    std::fs::write(
        d.join("pivault.toml"),
        "# comment\nbind = \"127.0.0.1:1001\"\n\nlog_format = \"json\"\ndsr_scan_secs = 7\nsuite = \"sm4-gcm\"\n",
    )
    .unwrap();
    let s = show(d, &[], &[]);
    assert!(s.contains("file: ./pivault.toml"), "{s}");
    assert_eq!(
        entry(&s, "bind"),
        ("127.0.0.1:1001".into(), "./pivault.toml:2".into())
    );
    assert_eq!(
        entry(&s, "log_format"),
        ("json".into(), "./pivault.toml:4".into())
    );
    assert_eq!(
        entry(&s, "dsr_scan_secs"),
        ("7".into(), "./pivault.toml:5".into())
    );
    assert_eq!(entry(&s, "suite").1, "./pivault.toml:6");
    assert_eq!(entry(&s, "policy").1, "default");

    // the environment over the file
    let env = [
        ("PIVAULT_BIND", "127.0.0.1:1002"),
        ("PIVAULT_DSR_SCAN_SECS", "8"),
    ];
    let s = show(d, &env, &[]);
    assert_eq!(
        entry(&s, "bind"),
        ("127.0.0.1:1002".into(), "env PIVAULT_BIND".into())
    );
    assert_eq!(
        entry(&s, "dsr_scan_secs"),
        ("8".into(), "env PIVAULT_DSR_SCAN_SECS".into())
    );
    assert_eq!(entry(&s, "log_format").1, "./pivault.toml:4");

    // flags over the environment
    let s = show(
        d,
        &env,
        &["--bind", "127.0.0.1:1003", "--log-format", "text"],
    );
    assert_eq!(
        entry(&s, "bind"),
        ("127.0.0.1:1003".into(), "flag --bind".into())
    );
    assert_eq!(
        entry(&s, "log_format"),
        ("text".into(), "flag --log-format".into())
    );
    assert_eq!(entry(&s, "dsr_scan_secs").1, "env PIVAULT_DSR_SCAN_SECS");

    // --config names another file, which replaces ./pivault.toml; PIVAULT_CONFIG too
    std::fs::write(d.join("other.toml"), "bind = \"127.0.0.1:1004\"\n").unwrap();
    let s = show(d, &[], &["--config", "other.toml"]);
    assert_eq!(
        entry(&s, "bind"),
        ("127.0.0.1:1004".into(), "other.toml:1".into())
    );
    assert_eq!(entry(&s, "log_format").1, "default");
    let s = show(d, &[("PIVAULT_CONFIG", "other.toml")], &[]);
    assert_eq!(entry(&s, "bind").1, "other.toml:1");

    // RUST_LOG still sets the log filter, below PIVAULT_LOG_LEVEL
    let s = show(d, &[("RUST_LOG", "debug")], &[]);
    assert_eq!(
        entry(&s, "log_level"),
        ("debug".into(), "env RUST_LOG".into())
    );
    let s = show(
        d,
        &[("RUST_LOG", "debug"), ("PIVAULT_LOG_LEVEL", "warn")],
        &[],
    );
    assert_eq!(
        entry(&s, "log_level"),
        ("warn".into(), "env PIVAULT_LOG_LEVEL".into())
    );
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("pivault.toml"),
        "bind = \"127.0.0.1:1\"\n\n  bnid = \"127.0.0.1:2\"\n",
    )
    .unwrap();
    let e = error_of(&pivault(d, &[], &["config", "show"]));
    assert!(
        e.contains("./pivault.toml:3:3: unknown field `bnid`"),
        "{e}"
    );
    // the refusal is the same for every command, before anything is opened
    let e = error_of(&pivault(d, &[], &["migrate"]));
    assert!(e.contains("./pivault.toml:3:3"), "{e}");
    assert!(!d.join("data").exists(), "nothing was created");

    std::fs::write(d.join("pivault.toml"), "shutdown_timeout_secs = \"soon\"\n").unwrap();
    let e = error_of(&pivault(d, &[], &["config", "show"]));
    assert!(e.contains("./pivault.toml:1:25:"), "{e}");

    let e = error_of(&pivault(
        d,
        &[],
        &["--config", "missing.toml", "config", "show"],
    ));
    assert!(
        e.contains("config file missing.toml (named by flag --config)"),
        "{e}"
    );
}

#[test]
fn bad_values_name_their_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let e = error_of(&pivault(d, &[], &["config", "show", "--bind", "localhost"]));
    assert!(
        e.contains("bind \"localhost\" (from flag --bind): not HOST:PORT"),
        "{e}"
    );
    let e = error_of(&pivault(
        d,
        &[("PIVAULT_SUITE", "rot13")],
        &["config", "show"],
    ));
    assert!(
        e.contains("suite \"rot13\" (from env PIVAULT_SUITE): unknown suite"),
        "{e}"
    );
    std::fs::write(d.join("pivault.toml"), "\nlog_format = \"xml\"\n").unwrap();
    let e = error_of(&pivault(d, &[], &["config", "show"]));
    assert!(
        e.contains("log_format \"xml\" (from ./pivault.toml:2): use text or json"),
        "{e}"
    );
    std::fs::remove_file(d.join("pivault.toml")).unwrap();
    let e = error_of(&pivault(
        d,
        &[("PIVAULT_DATABASE_URL", "mysql://x")],
        &["config", "show"],
    ));
    assert!(
        e.contains("database_url (from env PIVAULT_DATABASE_URL)"),
        "{e}"
    );
    let e = error_of(&pivault(
        d,
        &[("PIVAULT_TLS_CERT", "c.pem")],
        &["config", "show"],
    ));
    assert!(
        e.contains("tls_cert is set (from env PIVAULT_TLS_CERT) but tls_key is not"),
        "{e}"
    );
    let e = error_of(&pivault(
        d,
        &[],
        &["config", "show", "--shutdown-timeout-secs=-1"],
    ));
    assert!(
        e.contains("shutdown_timeout_secs \"-1\" (from flag --shutdown-timeout-secs)"),
        "{e}"
    );
}

#[test]
fn secrets_come_from_files_and_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let smtp = "smtp+starttls://mailer:Sm7pS3cret@mail.example.com:587?from=privacy@example.com";
    let token = "T0kenS3cretValue";
    let db_password = "Pg9Passw0rd";
    std::fs::write(d.join("smtp.secret"), format!("{smtp}\n")).unwrap();
    std::fs::write(d.join("token.secret"), format!("{token}\n")).unwrap();
    std::fs::write(
        d.join("pivault.toml"),
        "sms_webhook_url = \"https://sms.example.com/send\"\nsms_webhook_token_file = \"token.secret\"\n",
    )
    .unwrap();
    let db = format!("postgres://pivault:{db_password}@db.example.com/pivault");
    let out = pivault(
        d,
        &[
            ("PIVAULT_SMTP_URL_FILE", "smtp.secret"),
            ("PIVAULT_DATABASE_URL", &db),
        ],
        &["config", "show"],
    );
    assert!(out.status.success(), "{out:?}");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [smtp, "Sm7pS3cret", token, db_password] {
        assert!(!all.contains(secret), "secret {secret:?} shown:\n{all}");
    }
    let s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        entry(&s, "smtp_url"),
        (
            "<redacted>".into(),
            "env PIVAULT_SMTP_URL_FILE (read from smtp.secret)".into()
        )
    );
    assert_eq!(
        entry(&s, "sms_webhook_token"),
        (
            "<redacted>".into(),
            "./pivault.toml:2 (read from token.secret)".into()
        )
    );
    assert_eq!(
        entry(&s, "database_url").0,
        "postgres://pivault:***@db.example.com/pivault"
    );
    assert_eq!(
        entry(&s, "sms_webhook_url").0,
        "https://sms.example.com/send"
    );

    // a flag's _file form overrides the file's direct value
    std::fs::write(d.join("pivault.toml"), format!("smtp_url = \"{smtp}\"\n")).unwrap();
    let s = show(d, &[], &["--smtp-url-file", "smtp.secret"]);
    assert_eq!(
        entry(&s, "smtp_url").1,
        "flag --smtp-url-file (read from smtp.secret)"
    );
    assert!(!s.contains("Sm7pS3cret"));
    let s = show(d, &[], &[]);
    assert_eq!(
        entry(&s, "smtp_url"),
        ("<redacted>".into(), "./pivault.toml:1".into())
    );

    // an unreadable secret file, and a value set twice in one layer
    let e = error_of(&pivault(
        d,
        &[
            ("PIVAULT_SMS_WEBHOOK_TOKEN_FILE", "nope.secret"),
            ("PIVAULT_SMS_WEBHOOK_URL", "https://x/"),
        ],
        &["config", "show"],
    ));
    assert!(
        e.contains("sms_webhook_token: cannot read the file nope.secret (set by env PIVAULT_SMS_WEBHOOK_TOKEN_FILE)"),
        "{e}"
    );
    let e = error_of(&pivault(
        d,
        &[
            ("PIVAULT_SMTP_URL", smtp),
            ("PIVAULT_SMTP_URL_FILE", "smtp.secret"),
        ],
        &["config", "show"],
    ));
    assert!(e.contains("smtp_url is set twice"), "{e}");
    assert!(!e.contains("Sm7pS3cret"), "{e}");
}

#[test]
fn the_example_file_is_valid_and_names_every_key() {
    let example = repo_root().join("pivault.example.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // as checked in
    let s = show(d, &[], &["--config", example.to_str().unwrap()]);
    for l in s.lines().filter(|l| !l.starts_with('#')) {
        let src = l.split_once("  # ").unwrap().1;
        assert!(
            src.contains("pivault.example.toml:"),
            "{l}: every default is written out"
        );
    }
    // every setting `config show` knows appears in the file, set or commented out
    let keys: Vec<String> = s
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
                .or_else(|| l.split_once(" = ").map(|(k, _)| k))
                .map(str::to_string)
        })
        .filter(|k| !k.contains(' '))
        .collect();
    assert!(keys.len() >= 15, "{keys:?}");
    for k in &keys {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{k} = ")) || l.starts_with(&format!("# {k} = "))),
            "{k} is missing from pivault.example.toml"
        );
    }
    // with every commented-out key switched on (secret paths pointing at real files, and the
    // direct forms replaced by their _file forms)
    std::fs::write(
        d.join("secret"),
        "smtp://127.0.0.1:2525?from=a@example.com\n",
    )
    .unwrap();
    let secret = d.join("secret").display().to_string();
    std::fs::write(d.join("db_secret"), "sqlite://./data/from-secret-file.db\n").unwrap();
    let db_secret = d.join("db_secret").display().to_string();
    let mut on = Vec::new();
    for l in text.lines() {
        let uncommented = l.strip_prefix("# ").filter(|r| {
            r.split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        });
        let line = uncommented.unwrap_or(l);
        let key = line.split_once(" = ").map(|(k, _)| k.to_string());
        if let Some(k) = &key {
            if [
                "database_url",
                "smtp_url",
                "sms_webhook_token",
                "push_webhook_token",
            ]
            .contains(&k.as_str())
            {
                continue;
            }
            if k == "database_url_file" {
                on.push(format!("{k} = \"{db_secret}\""));
                continue;
            }
            if k.ends_with("_file") && k != "master_key_file" {
                on.push(format!("{k} = \"{secret}\""));
                continue;
            }
        }
        on.push(line.to_string());
    }
    std::fs::write(d.join("all.toml"), on.join("\n")).unwrap();
    let s = show(d, &[], &["--config", "all.toml"]);
    assert!(!s.contains("is not set"), "{s}");
    assert!(entry(&s, "tls_cert").1.starts_with("all.toml:"));
}
