//! Layered, typed configuration.
//!
//! Every setting has one name, used alike as the TOML key (`bind`), the environment variable
//! (`PIVAULT_BIND`) and the flag (`--bind`). Sources, each overriding the one before:
//!
//! 1. built-in defaults;
//! 2. a TOML file: `--config PATH` (or `PIVAULT_CONFIG`), else `./pivault.toml` when present.
//!    Unknown keys and values of the wrong type are refused with `file:line:col`;
//! 3. `PIVAULT_*` environment variables (`RUST_LOG` too, for `log_level`, below
//!    `PIVAULT_LOG_LEVEL`);
//! 4. command-line flags.
//!
//! Settings that can hold a secret (`database_url`, `smtp_url`, `sms_webhook_token`) can also be
//! read from a file: `smtp_url_file = "/run/secrets/smtp"` in TOML, `PIVAULT_SMTP_URL_FILE`,
//! `--smtp-url-file`. The file's content, less its trailing newline, is the value; setting both
//! forms in one layer is an error. Relative paths are relative to the working directory.
//!
//! Every value remembers its [`Source`], so an error names where a bad value came from and
//! `pivault config show` prints each value's source, with secrets redacted.

use pivault_crypto::Suite;
use serde::Deserialize;
use serde_spanned::Spanned;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// A key of the TOML file, at this (1-based) line.
    File {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: usize,
    },
    /// An environment variable.
    Env(String),
    /// A command-line flag (`--bind`).
    Flag(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::File { path, line } => write!(f, "{}:{line}", path.display()),
            Self::Env(v) => write!(f, "env {v}"),
            Self::Flag(n) => write!(f, "flag {n}"),
        }
    }
}

/// How a value is shown by `config show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shown {
    /// As it is.
    Clear,
    /// Entirely replaced by `<redacted>` (credentials, bearer tokens).
    Secret,
    /// A URL whose `user:password@` password is replaced by `***`.
    UrlPassword,
}

/// One setting: its name (TOML key; `PIVAULT_` + upper case for the environment; `--` +
/// kebab case for the flag), its default, whether a `_file` form exists, how it is shown.
struct Spec {
    name: &'static str,
    default: Option<&'static str>,
    file_form: bool,
    shown: Shown,
}

/// Every setting, in `config show` order. A new setting is a row here, a field of [`FileConfig`]
/// and of [`Config`], a line in `pivault.example.toml` (a test checks the file) and a flag.
const SPECS: &[Spec] = &[
    spec(
        "database_url",
        Some("sqlite://./data/pivault.db"),
        true,
        Shown::UrlPassword,
    ),
    spec("policy", Some("policies/default.toml"), false, Shown::Clear),
    spec(
        "staff_policy",
        Some("policies/staff.cedar"),
        false,
        Shown::Clear,
    ),
    spec(
        "master_key_file",
        Some("./data/master.key"),
        false,
        Shown::Clear,
    ),
    spec("suite", Some("aes-256-gcm"), false, Shown::Clear),
    // No fixed default: the store's (1).
    spec("audit_shards", None, false, Shown::Clear),
    spec("bind", Some("127.0.0.1:8080"), false, Shown::Clear),
    spec("tls_cert", None, false, Shown::Clear),
    spec("tls_key", None, false, Shown::Clear),
    spec("shutdown_timeout_secs", Some("30"), false, Shown::Clear),
    spec("dsr_scan_secs", Some("300"), false, Shown::Clear),
    spec("sweep_interval_secs", Some("3600"), false, Shown::Clear),
    spec("checkpoint_interval_secs", Some("60"), false, Shown::Clear),
    spec("log_format", Some("text"), false, Shown::Clear),
    spec("log_level", Some("info,sqlx=warn"), false, Shown::Clear),
    spec("smtp_url", None, true, Shown::Secret),
    spec("sms_webhook_url", None, false, Shown::UrlPassword),
    spec("sms_webhook_token", None, true, Shown::Secret),
    spec("push_webhook_url", None, false, Shown::UrlPassword),
    spec("push_webhook_token", None, true, Shown::Secret),
    spec("outbox_workers", Some("4"), false, Shown::Clear),
];

/// The `[recipient_webhooks]` table: not a [`Spec`] row (a table of policy recipient id →
/// URL, from the file and `--recipient-webhook ID=URL`; no environment form).
pub const RECIPIENT_WEBHOOKS: &str = "recipient_webhooks";

const fn spec(
    name: &'static str,
    default: Option<&'static str>,
    file_form: bool,
    shown: Shown,
) -> Spec {
    Spec {
        name,
        default,
        file_form,
        shown,
    }
}

/// The environment variable of setting `name`.
pub fn env_var(name: &str) -> String {
    format!("PIVAULT_{}", name.to_ascii_uppercase())
}

/// The TOML file: every key optional, unknown keys refused. Spans give `file:line`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<Spanned<String>>,
    database_url_file: Option<Spanned<String>>,
    policy: Option<Spanned<String>>,
    staff_policy: Option<Spanned<String>>,
    master_key_file: Option<Spanned<String>>,
    suite: Option<Spanned<String>>,
    audit_shards: Option<Spanned<u64>>,
    bind: Option<Spanned<String>>,
    tls_cert: Option<Spanned<String>>,
    tls_key: Option<Spanned<String>>,
    shutdown_timeout_secs: Option<Spanned<u64>>,
    dsr_scan_secs: Option<Spanned<u64>>,
    sweep_interval_secs: Option<Spanned<u64>>,
    checkpoint_interval_secs: Option<Spanned<u64>>,
    log_format: Option<Spanned<String>>,
    log_level: Option<Spanned<String>>,
    smtp_url: Option<Spanned<String>>,
    smtp_url_file: Option<Spanned<String>>,
    sms_webhook_url: Option<Spanned<String>>,
    sms_webhook_token: Option<Spanned<String>>,
    sms_webhook_token_file: Option<Spanned<String>>,
    push_webhook_url: Option<Spanned<String>>,
    push_webhook_token: Option<Spanned<String>>,
    push_webhook_token_file: Option<Spanned<String>>,
    outbox_workers: Option<Spanned<u64>>,
    recipient_webhooks: Option<BTreeMap<String, Spanned<String>>>,
}

/// A raw value of one layer: the text, or the file to read it from (a `_file` form).
#[derive(Clone, Debug)]
enum Raw {
    Text(String),
    FromFile(PathBuf),
}

#[derive(Clone, Debug)]
struct Entry {
    raw: Raw,
    source: Source,
}

/// A value and its source (and, for a value read from a `_file` form, that file).
#[derive(Clone, Debug)]
pub struct Sourced<T> {
    /// The value.
    pub value: T,
    /// Where it was set.
    pub source: Source,
    /// The file it was read from, for a `_file` form.
    pub from_file: Option<PathBuf>,
}

impl<T> Sourced<T> {
    /// `source`, and ` (read from FILE)` for a `_file` form.
    pub fn origin(&self) -> String {
        match &self.from_file {
            Some(p) => format!("{} (read from {})", self.source, p.display()),
            None => self.source.to_string(),
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (tracing's default format), span fields in the prefix.
    Text,
    /// One JSON object per line, with the current span's fields (`span.request_id`) and the
    /// list of spans.
    Json,
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The TOML file that was read, if any.
    pub file: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`.
    pub database_url: Sourced<String>,
    /// Policy (TOML).
    pub policy: Sourced<PathBuf>,
    /// Staff access policy (Cedar).
    pub staff_policy: Sourced<PathBuf>,
    /// Master key file (64 hex characters).
    pub master_key_file: Sourced<PathBuf>,
    /// Field cipher suite.
    pub suite: Sourced<Suite>,
    /// Shards of the audit log (1–1024) every command that opens the vault asks the store for
    /// (`Store::want_audit_shards`); unset: the store's default, 1.
    /// A database never gets fewer shards than it has.
    pub audit_shards: Option<Sourced<u64>>,
    /// `HOST:PORT` that `serve` listens on.
    pub bind: Sourced<String>,
    /// PEM certificate chain: `serve` speaks TLS when set (with `tls_key`).
    pub tls_cert: Option<Sourced<PathBuf>>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<Sourced<PathBuf>>,
    /// Longest drain of requests in flight on SIGTERM / Ctrl-C, in seconds.
    pub shutdown_timeout_secs: Sourced<u64>,
    /// Period of the overdue-request scan, in seconds (≥ 1).
    pub dsr_scan_secs: Sourced<u64>,
    /// Period of the scheduled retention sweep in `serve`, in seconds (0: off). One instance
    /// sweeps at a time when several share a database.
    pub sweep_interval_secs: Sourced<u64>,
    /// Period of the audit-log checkpoint `serve` signs (when the log grew), in seconds (0:
    /// off).
    pub checkpoint_interval_secs: Sourced<u64>,
    /// Log line format.
    pub log_format: Sourced<LogFormat>,
    /// Log filter (tracing-subscriber `EnvFilter` directives).
    pub log_level: Sourced<String>,
    /// SMTP URL for one-time codes (holds credentials).
    pub smtp_url: Option<Sourced<String>>,
    /// HTTPS webhook for SMS codes.
    pub sms_webhook_url: Option<Sourced<String>>,
    /// Bearer token of the SMS webhook.
    pub sms_webhook_token: Option<Sourced<String>>,
    /// HTTPS webhook for app push notices.
    pub push_webhook_url: Option<Sourced<String>>,
    /// Bearer token of the push webhook.
    pub push_webhook_token: Option<Sourced<String>>,
    /// Outbox delivery tasks `serve` runs (1–64).
    pub outbox_workers: Sourced<u64>,
    /// Signed webhook URL per policy recipient id (erasure notices, PIPL Art. 47). The ids
    /// are checked against the policy when the vault is opened.
    pub recipient_webhooks: BTreeMap<String, Sourced<String>>,
}

/// A configuration error; the message names the source of the bad value.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

/// The inputs: which config file (and who named it), the environment, and the flags given.
pub struct Inputs<'a> {
    /// `--config PATH`, if given.
    pub config_flag: Option<PathBuf>,
    /// Reads an environment variable (the process's, or a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Flags given: `(setting name, flag as typed, value)`; a `_file` form is named
    /// `NAME_file`.
    pub flags: Vec<(&'static str, &'static str, String)>,
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

/// Which file to read: `--config`, else `PIVAULT_CONFIG`, else `./pivault.toml` if present.
fn config_path(inp: &Inputs<'_>) -> Result<Option<(PathBuf, String)>, ConfigError> {
    if let Some(p) = &inp.config_flag {
        return Ok(Some((p.clone(), "flag --config".into())));
    }
    if let Some(p) = (inp.env)("PIVAULT_CONFIG").filter(|s| !s.is_empty()) {
        return Ok(Some((PathBuf::from(p), "env PIVAULT_CONFIG".into())));
    }
    let default = PathBuf::from("./pivault.toml");
    Ok(default.is_file().then(|| (default, "default".into())))
}

/// Reads the TOML file into entries.
fn file_layer(path: &Path, named_by: &str) -> Result<FileLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(format!(
            "config file {} (named by {named_by}): {e}",
            path.display()
        ))
    })?;
    let parsed: FileConfig = toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
        ConfigError(format!(
            "{}:{line}:{col}: {}",
            path.display(),
            e.message().trim_end()
        ))
    })?;
    let mut out = BTreeMap::new();
    let mut put = |name: &str, v: Option<(Range<usize>, String)>, from_file: bool| {
        if let Some((span, v)) = v {
            let (line, _) = line_col(&text, span.start);
            let key = if from_file {
                format!("{name}_file")
            } else {
                name.to_string()
            };
            let raw = if from_file {
                Raw::FromFile(PathBuf::from(v))
            } else {
                Raw::Text(v)
            };
            let source = Source::File {
                path: path.to_path_buf(),
                line,
            };
            out.insert(key, Entry { raw, source });
        }
    };
    let st = |v: Option<Spanned<String>>| {
        v.map(|v| {
            let span = v.span();
            (span, v.into_inner())
        })
    };
    let num = |v: Option<Spanned<u64>>| {
        v.map(|v| {
            let span = v.span();
            (span, v.into_inner().to_string())
        })
    };
    let f = parsed;
    put("database_url", st(f.database_url), false);
    put("database_url", st(f.database_url_file), true);
    put("policy", st(f.policy), false);
    put("staff_policy", st(f.staff_policy), false);
    put("master_key_file", st(f.master_key_file), false);
    put("suite", st(f.suite), false);
    put("audit_shards", num(f.audit_shards), false);
    put("bind", st(f.bind), false);
    put("tls_cert", st(f.tls_cert), false);
    put("tls_key", st(f.tls_key), false);
    put("shutdown_timeout_secs", num(f.shutdown_timeout_secs), false);
    put("dsr_scan_secs", num(f.dsr_scan_secs), false);
    put("sweep_interval_secs", num(f.sweep_interval_secs), false);
    put(
        "checkpoint_interval_secs",
        num(f.checkpoint_interval_secs),
        false,
    );
    put("log_format", st(f.log_format), false);
    put("log_level", st(f.log_level), false);
    put("smtp_url", st(f.smtp_url), false);
    put("smtp_url", st(f.smtp_url_file), true);
    put("sms_webhook_url", st(f.sms_webhook_url), false);
    put("sms_webhook_token", st(f.sms_webhook_token), false);
    put("sms_webhook_token", st(f.sms_webhook_token_file), true);
    put("push_webhook_url", st(f.push_webhook_url), false);
    put("push_webhook_token", st(f.push_webhook_token), false);
    put("push_webhook_token", st(f.push_webhook_token_file), true);
    put("outbox_workers", num(f.outbox_workers), false);
    let recipients = f
        .recipient_webhooks
        .unwrap_or_default()
        .into_iter()
        .map(|(id, url)| {
            let (line, _) = line_col(&text, url.span().start);
            let source = Source::File {
                path: path.to_path_buf(),
                line,
            };
            (
                id,
                Sourced {
                    value: url.into_inner(),
                    source,
                    from_file: None,
                },
            )
        })
        .collect();
    Ok((out, recipients))
}

/// A file layer: its settings, and its `[recipient_webhooks]` table.
type FileLayer = (BTreeMap<String, Entry>, BTreeMap<String, Sourced<String>>);

/// Whether `url` is `https://…`, or `http://` to a loopback host (tests).
fn webhook_url_ok(url: &str) -> bool {
    if url.len() > "https://".len() && url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The environment layer: `PIVAULT_NAME` and, for secrets, `PIVAULT_NAME_FILE`.
fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for s in SPECS {
        let var = env_var(s.name);
        let value = env(&var).map(|v| (var.clone(), v)).or_else(|| {
            (s.name == "log_level")
                .then(|| env("RUST_LOG").map(|v| ("RUST_LOG".to_string(), v)))
                .flatten()
        });
        if let Some((var, v)) = value {
            out.insert(
                s.name.to_string(),
                Entry {
                    raw: Raw::Text(v),
                    source: Source::Env(var),
                },
            );
        }
        if s.file_form {
            let var = format!("{var}_FILE");
            if let Some(v) = env(&var) {
                out.insert(
                    format!("{}_file", s.name),
                    Entry {
                        raw: Raw::FromFile(PathBuf::from(v)),
                        source: Source::Env(var),
                    },
                );
            }
        }
    }
    out
}

fn flag_layer(flags: &[(&'static str, &'static str, String)]) -> BTreeMap<String, Entry> {
    flags
        .iter()
        .map(|(name, flag, v)| {
            let raw = match name.strip_suffix("_file") {
                Some(_) if *name != "master_key_file" => Raw::FromFile(PathBuf::from(v)),
                _ => Raw::Text(v.clone()),
            };
            (
                (*name).to_string(),
                Entry {
                    raw,
                    source: Source::Flag((*flag).to_string()),
                },
            )
        })
        .collect()
}

/// The winning entry of `name` over the layers (later wins). Within one layer, a value and its
/// `_file` form together are an error.
fn pick(layers: &[BTreeMap<String, Entry>], s: &Spec) -> Result<Option<Entry>, ConfigError> {
    let mut won = None;
    for layer in layers {
        let direct = layer.get(s.name);
        let file = s
            .file_form
            .then(|| layer.get(&format!("{}_file", s.name)))
            .flatten();
        match (direct, file) {
            (Some(a), Some(b)) => {
                return err(format!(
                    "{} is set twice: by {} and, as a file, by {}; set one",
                    s.name, a.source, b.source
                ))
            }
            (Some(e), None) | (None, Some(e)) => won = Some(e.clone()),
            (None, None) => {}
        }
    }
    Ok(won)
}

/// Resolves an entry into its text (reading a `_file` form) and source.
fn resolve(name: &str, e: Entry) -> Result<Sourced<String>, ConfigError> {
    match e.raw {
        Raw::Text(value) => Ok(Sourced {
            value,
            source: e.source,
            from_file: None,
        }),
        Raw::FromFile(path) => {
            let text = std::fs::read_to_string(&path).map_err(|io| {
                ConfigError(format!(
                    "{name}: cannot read the file {} (set by {}): {io}",
                    path.display(),
                    e.source
                ))
            })?;
            let value = text.strip_suffix('\n').unwrap_or(&text);
            let value = value.strip_suffix('\r').unwrap_or(value).to_string();
            if value.is_empty() {
                return err(format!(
                    "{name}: the file {} (set by {}) is empty",
                    path.display(),
                    e.source
                ));
            }
            Ok(Sourced {
                value,
                source: e.source,
                from_file: Some(path),
            })
        }
    }
}

fn bad<T>(name: &str, v: &Sourced<String>, why: &str) -> Result<T, ConfigError> {
    let shown = match SPECS.iter().find(|s| s.name == name).map(|s| s.shown) {
        Some(Shown::Clear) => format!(" {:?}", v.value),
        _ => String::new(),
    };
    err(format!("{name}{shown} (from {}): {why}", v.origin()))
}

fn map<T, U>(v: Sourced<T>, f: impl FnOnce(T) -> U) -> Sourced<U> {
    Sourced {
        value: f(v.value),
        source: v.source,
        from_file: v.from_file,
    }
}

fn parse_u64(
    name: &str,
    v: Sourced<String>,
    min: u64,
    max: u64,
) -> Result<Sourced<u64>, ConfigError> {
    match v.value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(map(v, |_| n)),
        _ => bad(name, &v, &format!("not a whole number from {min} to {max}")),
    }
}

/// Checks `HOST:PORT` (an IP address, `[v6]`, or a host name; port 0–65535).
fn valid_bind(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    match s.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty()
                && !host.contains(':')
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                && port.parse::<u16>().is_ok()
        }
        None => false,
    }
}

impl Config {
    /// Loads the layers and checks every value.
    ///
    /// # Errors
    /// [`ConfigError`]: an unreadable or invalid file (`file:line:col`), a value and its `_file`
    /// form set in one layer, an unreadable secret file, a bad value (naming its source).
    pub fn load(inp: &Inputs<'_>) -> Result<Self, ConfigError> {
        let mut layers = vec![BTreeMap::new()];
        let file = config_path(inp)?;
        let mut recipient_webhooks = BTreeMap::new();
        if let Some((path, by)) = &file {
            let (settings, recipients) = file_layer(path, by)?;
            layers.push(settings);
            recipient_webhooks = recipients;
        }
        layers.push(env_layer(inp.env));
        let (recipient_flags, flags): (Vec<_>, Vec<_>) = inp
            .flags
            .iter()
            .cloned()
            .partition(|(name, _, _)| *name == RECIPIENT_WEBHOOKS);
        for (_, flag, v) in recipient_flags {
            let Some((id, url)) = v.split_once('=') else {
                return err(format!(
                    "{flag} {:?}: use ID=URL (a policy recipient id and its webhook URL)",
                    redact_url_password(&v)
                ));
            };
            recipient_webhooks.insert(
                id.trim().to_string(),
                Sourced {
                    value: url.trim().to_string(),
                    source: Source::Flag(flag.to_string()),
                    from_file: None,
                },
            );
        }
        for (id, url) in &recipient_webhooks {
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !id_ok {
                return err(format!(
                    "{RECIPIENT_WEBHOOKS}: recipient id {id:?} (from {}) is not a policy \
                     recipient id (1-64 of A-Z a-z 0-9 - _ .)",
                    url.origin()
                ));
            }
            if !webhook_url_ok(&url.value) {
                return err(format!(
                    "{RECIPIENT_WEBHOOKS}.{id} {:?} (from {}): use an https:// URL (http:// \
                     only to a loopback host)",
                    redact_url_password(&url.value),
                    url.origin()
                ));
            }
        }
        layers.push(flag_layer(&flags));
        let mut v: BTreeMap<&'static str, Sourced<String>> = BTreeMap::new();
        for s in SPECS {
            let entry = match pick(&layers, s)? {
                Some(e) => Some(e),
                None => s.default.map(|d| Entry {
                    raw: Raw::Text(d.to_string()),
                    source: Source::Default,
                }),
            };
            if let Some(e) = entry {
                v.insert(s.name, resolve(s.name, e)?);
            }
        }
        let mut take = |name: &str| v.remove(name);
        let req =
            |o: Option<Sourced<String>>| o.ok_or_else(|| ConfigError("missing default".into()));

        let database_url = req(take("database_url"))?;
        let scheme_ok = ["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.value.starts_with(p) && database_url.value.len() > p.len());
        if !scheme_ok {
            return bad(
                "database_url",
                &database_url,
                "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB",
            );
        }
        let suite_raw = req(take("suite"))?;
        let Some(suite) = Suite::parse(&suite_raw.value) else {
            return bad(
                "suite",
                &suite_raw,
                "unknown suite: use aes-256-gcm or sm4-gcm",
            );
        };
        let bind = req(take("bind"))?;
        if !valid_bind(bind.value.trim()) {
            return bad(
                "bind",
                &bind,
                "not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8443)",
            );
        }
        let log_format_raw = req(take("log_format"))?;
        let log_format = match log_format_raw.value.trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => return bad("log_format", &log_format_raw, "use text or json"),
        };
        let log_level = req(take("log_level"))?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_level.value) {
            return bad("log_level", &log_level, &format!("not a log filter: {e}"));
        }
        let tls_cert = take("tls_cert").map(|s| map(s, PathBuf::from));
        let tls_key = take("tls_key").map(|s| map(s, PathBuf::from));
        match (&tls_cert, &tls_key) {
            (Some(c), None) => {
                return err(format!(
                    "tls_cert is set (from {}) but tls_key is not: TLS needs both",
                    c.origin()
                ))
            }
            (None, Some(k)) => {
                return err(format!(
                    "tls_key is set (from {}) but tls_cert is not: TLS needs both",
                    k.origin()
                ))
            }
            _ => {}
        }
        let sms_webhook_token = take("sms_webhook_token");
        let sms_webhook_url = take("sms_webhook_url");
        if let (Some(t), None) = (&sms_webhook_token, &sms_webhook_url) {
            return err(format!(
                "sms_webhook_token is set (from {}) but sms_webhook_url is not",
                t.origin()
            ));
        }
        let push_webhook_token = take("push_webhook_token");
        let push_webhook_url = take("push_webhook_url");
        if let (Some(t), None) = (&push_webhook_token, &push_webhook_url) {
            return err(format!(
                "push_webhook_token is set (from {}) but push_webhook_url is not",
                t.origin()
            ));
        }
        Ok(Self {
            file: file.map(|(p, _)| p),
            database_url,
            policy: map(req(take("policy"))?, PathBuf::from),
            staff_policy: map(req(take("staff_policy"))?, PathBuf::from),
            master_key_file: map(req(take("master_key_file"))?, PathBuf::from),
            suite: map(suite_raw, |_| suite),
            audit_shards: take("audit_shards")
                .map(|v| parse_u64("audit_shards", v, 1, 1_024))
                .transpose()?,
            bind: map(bind, |b| b.trim().to_string()),
            tls_cert,
            tls_key,
            shutdown_timeout_secs: parse_u64(
                "shutdown_timeout_secs",
                req(take("shutdown_timeout_secs"))?,
                0,
                3_600,
            )?,
            dsr_scan_secs: parse_u64("dsr_scan_secs", req(take("dsr_scan_secs"))?, 1, 86_400)?,
            sweep_interval_secs: parse_u64(
                "sweep_interval_secs",
                req(take("sweep_interval_secs"))?,
                0,
                7 * 86_400,
            )?,
            checkpoint_interval_secs: parse_u64(
                "checkpoint_interval_secs",
                req(take("checkpoint_interval_secs"))?,
                0,
                7 * 86_400,
            )?,
            log_format: map(log_format_raw, |_| log_format),
            log_level,
            smtp_url: take("smtp_url"),
            sms_webhook_url,
            sms_webhook_token,
            push_webhook_url,
            push_webhook_token,
            outbox_workers: parse_u64("outbox_workers", req(take("outbox_workers"))?, 1, 64)?,
            recipient_webhooks,
        })
    }

    /// The effective configuration as TOML, one `key = value  # source` line per setting
    /// (a setting with no value is a comment), secrets redacted: `smtp_url` and
    /// `sms_webhook_token` are `"<redacted>"`, and a URL's password is `***`.
    pub fn show(&self) -> String {
        /// A `config show` row: key, `(value, source)` if set, whether it is a secret.
        type ShowRow<'a> = (&'a str, Option<(String, String)>, bool);
        let text = |s: &Sourced<String>| (s.value.clone(), s.origin());
        let path = |s: &Sourced<PathBuf>| (s.value.display().to_string(), s.origin());
        let mut rows: Vec<ShowRow<'_>> = vec![
            ("database_url", Some(text(&self.database_url)), false),
            ("policy", Some(path(&self.policy)), false),
            ("staff_policy", Some(path(&self.staff_policy)), false),
            ("master_key_file", Some(path(&self.master_key_file)), false),
            (
                "suite",
                Some((self.suite.value.as_str().to_string(), self.suite.origin())),
                false,
            ),
        ];
        let num = |s: &Sourced<u64>| (s.value.to_string(), s.origin());
        rows.push(("audit_shards", self.audit_shards.as_ref().map(num), true));
        rows.push(("bind", Some(text(&self.bind)), false));
        rows.push(("tls_cert", self.tls_cert.as_ref().map(path), false));
        rows.push(("tls_key", self.tls_key.as_ref().map(path), false));
        rows.push((
            "shutdown_timeout_secs",
            Some(num(&self.shutdown_timeout_secs)),
            true,
        ));
        rows.push(("dsr_scan_secs", Some(num(&self.dsr_scan_secs)), true));
        rows.push((
            "sweep_interval_secs",
            Some(num(&self.sweep_interval_secs)),
            true,
        ));
        rows.push((
            "checkpoint_interval_secs",
            Some(num(&self.checkpoint_interval_secs)),
            true,
        ));
        let fmt_name = match self.log_format.value {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        rows.push((
            "log_format",
            Some((fmt_name.to_string(), self.log_format.origin())),
            false,
        ));
        rows.push(("log_level", Some(text(&self.log_level)), false));
        rows.push(("smtp_url", self.smtp_url.as_ref().map(text), false));
        rows.push((
            "sms_webhook_url",
            self.sms_webhook_url.as_ref().map(text),
            false,
        ));
        rows.push((
            "sms_webhook_token",
            self.sms_webhook_token.as_ref().map(text),
            false,
        ));
        rows.push((
            "push_webhook_url",
            self.push_webhook_url.as_ref().map(text),
            false,
        ));
        rows.push((
            "push_webhook_token",
            self.push_webhook_token.as_ref().map(text),
            false,
        ));
        rows.push(("outbox_workers", Some(num(&self.outbox_workers)), true));
        let recipients = (!self.recipient_webhooks.is_empty()).then(|| {
            let mut origins: Vec<String> = Vec::new();
            let items: Vec<String> = self
                .recipient_webhooks
                .iter()
                .map(|(id, url)| {
                    if !origins.contains(&url.origin()) {
                        origins.push(url.origin());
                    }
                    format!(
                        "{} = {}",
                        toml::Value::String(id.clone()),
                        toml::Value::String(redact_url_password(&url.value))
                    )
                })
                .collect();
            (format!("{{ {} }}", items.join(", ")), origins.join(", "))
        });
        rows.push((RECIPIENT_WEBHOOKS, recipients, true));
        let mut out = String::new();
        out.push_str(&format!(
            "# pivault effective configuration; file: {}\n",
            self.file
                .as_ref()
                .map_or("(none)".to_string(), |p| p.display().to_string())
        ));
        for (name, value, numeric) in rows {
            let shown = SPECS.iter().find(|s| s.name == name).map_or(
                if name == RECIPIENT_WEBHOOKS {
                    Shown::Clear
                } else {
                    Shown::Secret
                },
                |s| s.shown,
            );
            match value {
                None => out.push_str(&format!("# {name} is not set\n")),
                Some((v, origin)) => {
                    let v = match shown {
                        Shown::Clear => v,
                        Shown::Secret => "<redacted>".to_string(),
                        Shown::UrlPassword => redact_url_password(&v),
                    };
                    let v = if numeric {
                        v
                    } else {
                        toml::Value::String(v).to_string()
                    };
                    out.push_str(&format!("{name} = {v}  # {origin}\n"));
                }
            }
        }
        out
    }
}

/// `scheme://user:password@host…` with the password replaced by `***`; also any query
/// parameter named like a credential (`password`, `token`, `secret`, `key`).
pub fn redact_url_password(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(start) = url.find("://").map(|i| i + 3) {
        let authority_end = url[start..]
            .find(['/', '?', '#'])
            .map_or(url.len(), |i| start + i);
        if let Some(at) = url[start..authority_end].rfind('@') {
            let userinfo = &url[start..start + at];
            if let Some(colon) = userinfo.find(':') {
                out = format!("{}***{}", &url[..start + colon + 1], &url[start + at..]);
            }
        }
    }
    if let Some((base, query)) = out.clone().split_once('?') {
        let q: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _))
                    if ["password", "pass", "token", "secret", "key", "sig"]
                        .iter()
                        .any(|w| k.to_ascii_lowercase().contains(w)) =>
                {
                    format!("{k}=***")
                }
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{base}?{}", q.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a = 1\nbb = 2\n", 6), (2, 1));
        assert_eq!(line_col("a = 1\nbb = 2\n", 9), (2, 4));
        assert_eq!(line_col("x", 0), (1, 1));
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("postgres://u:hunter2@db/x?sslmode=require"),
            "postgres://u:***@db/x?sslmode=require"
        );
        assert_eq!(
            redact_url_password("postgres://u@db/x"),
            "postgres://u@db/x"
        );
        assert_eq!(
            redact_url_password("https://h/send?token=abc&x=1"),
            "https://h/send?token=***&x=1"
        );
    }

    #[test]
    fn bind_addresses() {
        for ok in ["127.0.0.1:8080", "[::1]:0", "localhost:80", "0.0.0.0:65535"] {
            assert!(valid_bind(ok), "{ok}");
        }
        for bad in ["127.0.0.1", ":80", "host:99999", "a b:1", "::1:80", ""] {
            assert!(!valid_bind(bad), "{bad}");
        }
    }

    #[test]
    fn every_spec_has_a_file_key() {
        // A TOML file naming every setting (and each `_file` form) parses: the struct and the
        // table agree.
        for s in SPECS {
            let v = if s.name.ends_with("_secs")
                || s.name.ends_with("_workers")
                || s.name.ends_with("_shards")
            {
                "1"
            } else {
                "\"x\""
            };
            let t = format!("{} = {v}\n", s.name);
            toml::from_str::<FileConfig>(&t).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            if s.file_form {
                let t = format!("{}_file = \"x\"\n", s.name);
                toml::from_str::<FileConfig>(&t).unwrap_or_else(|e| panic!("{}: {e}", s.name));
            }
        }
    }
}
