//! The command line (clap). Flags carry no defaults and read no environment themselves: the
//! layering (defaults → file → `PIVAULT_*` → flags) is [`crate::config`]'s, so a flag given
//! here always wins and `config show` can say where each value came from.

use crate::dsr_cmd::DsrCmd;
use crate::incident_cmd::{CessationCmd, IncidentCmd, MisuseCmd, OutboxCmd};
use crate::keys_cmd::KeysCmd;
use crate::retention_cmd::{DeidentifyCmd, ExportCmd, HoldCmd, RetentionCmd};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "pivault",
    version,
    about = "Personal-information vault and privacy operations",
    after_help = "Configuration: defaults, then a TOML file (--config, or ./pivault.toml when \
                  present), then PIVAULT_* environment variables, then flags. Every setting has \
                  one name: TOML key `bind`, env PIVAULT_BIND, flag --bind. Secrets also take a \
                  _file form (smtp_url_file, PIVAULT_SMTP_URL_FILE, --smtp-url-file). \
                  `pivault config show` prints the effective values and their sources; \
                  pivault.example.toml lists every key."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// Settings every command reads. Each doc line names the env variable and the default.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// Config file (TOML). [env: PIVAULT_CONFIG] [default: ./pivault.toml when present]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB. [env: PIVAULT_DATABASE_URL]
    /// [default: sqlite://./data/pivault.db]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// File holding the database URL (when it has a password). [env: PIVAULT_DATABASE_URL_FILE]
    #[arg(long, global = true, value_name = "PATH")]
    pub database_url_file: Option<String>,
    /// Policy file (TOML). [env: PIVAULT_POLICY] [default: policies/default.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub policy: Option<String>,
    /// Staff (operator) access policy in Cedar (§8.1). [env: PIVAULT_STAFF_POLICY]
    /// [default: policies/staff.cedar]
    #[arg(long, global = true, value_name = "PATH")]
    pub staff_policy: Option<String>,
    /// Master key file (64 hex chars). Created with mode 0600 if missing and the database is
    /// new and empty — for development only; production provisions it from a KMS/HSM. A missing
    /// or different key on a database with data is refused (exit 4).
    /// [env: PIVAULT_MASTER_KEY_FILE] [default: ./data/master.key]
    #[arg(long, global = true, value_name = "PATH")]
    pub master_key_file: Option<String>,
    /// Field cipher suite: aes-256-gcm or sm4-gcm (GB/T 32907). [env: PIVAULT_SUITE]
    /// [default: aes-256-gcm]
    #[arg(long, global = true)]
    pub suite: Option<String>,
    /// Shards of the audit log (1-1024): independent hash chains and Merkle trees that
    /// concurrent writers append to without waiting for each other (issue 15). Applies to every
    /// command that opens the vault; a database never gets fewer shards than it has.
    /// [env: PIVAULT_AUDIT_SHARDS] [default: 1]
    #[arg(long, global = true, value_name = "N")]
    pub audit_shards: Option<String>,
    /// SMTP server for data subject requests' one-time codes (policy §7.2):
    /// smtp://HOST:PORT?from=ADDR (loopback only), smtp+starttls://USER:PASS@HOST:587?from=…
    /// or smtps://…:465?from=…. Prefer --smtp-url-file: a flag is visible to other users.
    /// [env: PIVAULT_SMTP_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// File holding the SMTP URL. [env: PIVAULT_SMTP_URL_FILE]
    #[arg(long, global = true, value_name = "PATH")]
    pub smtp_url_file: Option<String>,
    /// HTTPS webhook that sends SMS codes: POST {"to","text"}. [env: PIVAULT_SMS_WEBHOOK_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub sms_webhook_url: Option<String>,
    /// Bearer token for the SMS webhook. [env: PIVAULT_SMS_WEBHOOK_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub sms_webhook_token: Option<String>,
    /// File holding the SMS webhook's bearer token. [env: PIVAULT_SMS_WEBHOOK_TOKEN_FILE]
    #[arg(long, global = true, value_name = "PATH")]
    pub sms_webhook_token_file: Option<String>,
    /// HTTPS webhook that sends app push notices (to a device id).
    /// [env: PIVAULT_PUSH_WEBHOOK_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub push_webhook_url: Option<String>,
    /// Bearer token for the push webhook. [env: PIVAULT_PUSH_WEBHOOK_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub push_webhook_token: Option<String>,
    /// File holding the push webhook's bearer token. [env: PIVAULT_PUSH_WEBHOOK_TOKEN_FILE]
    #[arg(long, global = true, value_name = "PATH")]
    pub push_webhook_token_file: Option<String>,
    /// A policy recipient's signed webhook for erasure notices, ID=URL (https; http only to
    /// loopback); repeatable. Overrides the id's entry of the file's [recipient_webhooks]
    /// table. No environment form.
    #[arg(long, global = true, value_name = "ID=URL")]
    pub recipient_webhook: Vec<String>,
    /// Log format: text or json (one object per line; span fields such as request_id
    /// included). [env: PIVAULT_LOG_FORMAT] [default: text]
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter (tracing EnvFilter directives, e.g. info,sqlx=warn).
    /// [env: PIVAULT_LOG_LEVEL, else RUST_LOG] [default: info,sqlx=warn]
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Fault injected into request execution, for tests: fail:STEP, halt:STEP or abort:STEP.
    /// Only in builds with the `testing` feature (the crate's own tests); a release build
    /// has no such flag.
    #[cfg(feature = "testing")]
    #[arg(long, global = true, env = "PIVAULT_DSR_FAULT", hide = true)]
    pub dsr_fault: Option<String>,
    /// The vault's clock stopped at this unix time (seconds), for tests that move time over the
    /// data set. Only in builds with the `testing` feature.
    #[cfg(feature = "testing")]
    #[arg(long, global = true, env = "PIVAULT_FAKE_NOW", hide = true)]
    pub fake_now: Option<i64>,
}

/// Settings of `serve` (also accepted by `config show`, to show what `serve` would use).
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT. [env: PIVAULT_BIND] [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    pub bind: Option<String>,
    /// PEM certificate chain (leaf first): serve HTTPS (TLS 1.2/1.3, rustls). Needs --tls-key.
    /// [env: PIVAULT_TLS_CERT]
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Option<String>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1). [env: PIVAULT_TLS_KEY]
    #[arg(long, value_name = "PATH")]
    pub tls_key: Option<String>,
    /// On SIGTERM or Ctrl-C, longest wait for requests in flight, in seconds.
    /// [env: PIVAULT_SHUTDOWN_TIMEOUT_SECS] [default: 30]
    #[arg(long, value_name = "SECS")]
    pub shutdown_timeout_secs: Option<String>,
    /// Period of the overdue data-subject-request scan, in seconds.
    /// [env: PIVAULT_DSR_SCAN_SECS] [default: 300]
    #[arg(long, value_name = "SECS")]
    pub dsr_scan_secs: Option<String>,
    /// Period of the scheduled retention sweep, in seconds (0: off).
    /// [env: PIVAULT_SWEEP_INTERVAL_SECS] [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub sweep_interval_secs: Option<String>,
    /// Outbox delivery tasks (1-64). [env: PIVAULT_OUTBOX_WORKERS] [default: 4]
    #[arg(long, value_name = "N")]
    pub outbox_workers: Option<String>,
    /// Period of the signed audit-log checkpoint, in seconds (0: off); a tick signs one only
    /// when the log grew since the last. [env: PIVAULT_CHECKPOINT_INTERVAL_SECS] [default: 60]
    #[arg(long, value_name = "SECS")]
    pub checkpoint_interval_secs: Option<String>,
}

impl Global {
    /// The flags given, as `(setting, flag, value)` for [`crate::config::Inputs`].
    pub fn flags(&self, serve: Option<&ServeArgs>) -> Vec<(&'static str, &'static str, String)> {
        let mut out = Vec::new();
        let mut put = |name: &'static str, flag: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((name, flag, v.clone()));
            }
        };
        put("database_url", "--database-url", &self.database_url);
        put(
            "database_url_file",
            "--database-url-file",
            &self.database_url_file,
        );
        put("policy", "--policy", &self.policy);
        put("staff_policy", "--staff-policy", &self.staff_policy);
        put(
            "master_key_file",
            "--master-key-file",
            &self.master_key_file,
        );
        put("suite", "--suite", &self.suite);
        put("audit_shards", "--audit-shards", &self.audit_shards);
        put("smtp_url", "--smtp-url", &self.smtp_url);
        put("smtp_url_file", "--smtp-url-file", &self.smtp_url_file);
        put(
            "sms_webhook_url",
            "--sms-webhook-url",
            &self.sms_webhook_url,
        );
        put(
            "sms_webhook_token",
            "--sms-webhook-token",
            &self.sms_webhook_token,
        );
        put(
            "sms_webhook_token_file",
            "--sms-webhook-token-file",
            &self.sms_webhook_token_file,
        );
        put(
            "push_webhook_url",
            "--push-webhook-url",
            &self.push_webhook_url,
        );
        put(
            "push_webhook_token",
            "--push-webhook-token",
            &self.push_webhook_token,
        );
        put(
            "push_webhook_token_file",
            "--push-webhook-token-file",
            &self.push_webhook_token_file,
        );
        for r in &self.recipient_webhook {
            put(
                crate::config::RECIPIENT_WEBHOOKS,
                "--recipient-webhook",
                &Some(r.clone()),
            );
        }
        put("log_format", "--log-format", &self.log_format);
        put("log_level", "--log-level", &self.log_level);
        if let Some(s) = serve {
            put("bind", "--bind", &s.bind);
            put("tls_cert", "--tls-cert", &s.tls_cert);
            put("tls_key", "--tls-key", &s.tls_key);
            put(
                "shutdown_timeout_secs",
                "--shutdown-timeout-secs",
                &s.shutdown_timeout_secs,
            );
            put("dsr_scan_secs", "--dsr-scan-secs", &s.dsr_scan_secs);
            put(
                "sweep_interval_secs",
                "--sweep-interval-secs",
                &s.sweep_interval_secs,
            );
            put("outbox_workers", "--outbox-workers", &s.outbox_workers);
            put(
                "checkpoint_interval_secs",
                "--checkpoint-interval-secs",
                &s.checkpoint_interval_secs,
            );
        }
        out
    }
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the HTTP API (HTTPS with --tls-cert/--tls-key). Holds the terminal until SIGTERM or
    /// Ctrl-C, then drains requests in flight and flushes the audit log.
    Serve {
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Apply database migrations.
    Migrate,
    /// The effective configuration.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Policy as code.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Import a data set directory (users.csv, consent_events.csv, orders.csv, …, tickets.jsonl, access.log).
    Import {
        /// Directory holding the data set files.
        dir: PathBuf,
        /// Where reject files go (default: ./data/rejects).
        #[arg(long, default_value = "./data/rejects")]
        rejects: PathBuf,
    },
    /// Audit chain.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// API keys.
    Keys {
        #[command(subcommand)]
        cmd: KeysCmd,
    },
    /// Run the retention sweep (same as `retention sweep`).
    Sweep {
        /// List what would happen, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Retention (policy §4.2, §8.2): the sweep that deletes or anonymizes what is past its
    /// period.
    Retention {
        #[command(subcommand)]
        cmd: RetentionCmd,
    },
    /// Legal holds: keep a subject's data or a category past retention and erasure.
    Hold {
        #[command(subcommand)]
        cmd: HoldCmd,
    },
    /// Exports of the anonymized sets (PIPL Art. 73(4)), checked for k-anonymity.
    Export {
        #[command(subcommand)]
        cmd: ExportCmd,
    },
    /// De-identification (pseudonymization, GB/T 35273-2020 §3.15): reverse tokens.
    Deidentify {
        #[command(subcommand)]
        cmd: DeidentifyCmd,
    },
    /// Data subject requests: the privacy office's queue (PIPL Art. 44–50; §VII, §XI).
    Dsr {
        #[command(subcommand)]
        cmd: DsrCmd,
    },
    /// Security incidents (policy §8.3, §8.4; PIPL Art. 57): open, scope, notify, report.
    Incident {
        #[command(subcommand)]
        cmd: IncidentCmd,
    },
    /// The outbox of every message pivault sends: deliver, status, letters to print.
    Outbox {
        #[command(subcommand)]
        cmd: OutboxCmd,
    },
    /// Service cessation (policy §8.6): stop collection, notify everyone, erase.
    Cessation {
        #[command(subcommand)]
        cmd: CessationCmd,
    },
    /// Misuse reports' security locks (policy §8.7).
    Misuse {
        #[command(subcommand)]
        cmd: MisuseCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Print the effective configuration as TOML, each value with its source (default,
    /// file:line, env VAR, flag), secrets redacted. Reads nothing but the configuration.
    Show {
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Parse and validate a policy file; print every error as file:line:column.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// List the changes between two policy versions of the history (`[[policy_version]]`,
    /// policy §X) with the number of subjects each affects: those holding an active consent,
    /// given under an older version, to a purpose the change touches (PIPL Art. 14 para. 2).
    Diff {
        /// The older version, e.g. 2024-12-04.
        old: String,
        /// The newer version, e.g. 2025-06-01.
        new: String,
        /// Print JSON: {"old", "new", "changes": [{version, summary, material, purposes,
        /// categories, subjects_affected}]}.
        #[arg(long)]
        json: bool,
    },
    /// Decide and explain one request for a subject, as `POST /v1/decisions` would (audited).
    Explain {
        /// Subject id.
        #[arg(long)]
        subject: String,
        /// Purpose id.
        #[arg(long)]
        purpose: String,
        /// collect, use, share, transfer, disclose or cross_border_transfer.
        #[arg(long, default_value = "use")]
        action: String,
        /// Comma-separated category keys (default: all the purpose allows).
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        /// Recipient id.
        #[arg(long)]
        recipient: Option<String>,
        /// Destination region.
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Walk every shard's keyed hash chain and Merkle tree, check their heads, the signed
    /// checkpoints and the vault's contents against them; exit 2 names the first broken entry
    /// and its shard.
    Verify {
        /// Also open every sealed field of every subject to check its authentication (AEAD
        /// tag); exit 2 with the counts when any fails.
        #[arg(long)]
        fields: bool,
    },
    /// Print the verifier key of the audit log's signed checkpoints (as `GET /v1/audit/key`):
    /// what `pivault-verify --key` and `audit verify-proof --key` take. Public.
    Key,
    /// Sign a checkpoint of the audit log now (as `POST /v1/audit/checkpoints`); print its
    /// number, size and signed note.
    Checkpoint,
    /// Write the inclusion proof of audit entry SEQ as JSON (an inclusion bundle, as
    /// `GET /v1/audit/entries/{seq}/proof`), for `pivault-verify inclusion`.
    Proof {
        /// The entry's sequence number.
        seq: i64,
        /// Prove it in this checkpoint (its number) [default: the newest that covers the
        /// entry; one is signed when none does].
        #[arg(long, value_name = "N")]
        checkpoint: Option<i64>,
        /// Write the bundle to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Write the consistency proof between checkpoints FROM and TO as JSON (as
    /// `GET /v1/audit/consistency`), for `pivault-verify consistency`.
    Consistency {
        /// The earlier checkpoint's number.
        #[arg(long)]
        from: i64,
        /// The later checkpoint's number.
        #[arg(long)]
        to: i64,
        /// Write the bundle to FILE instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Check an inclusion or consistency bundle offline, with only the log's verifier key
    /// (the kind is told by its JSON keys; a bare signed checkpoint is checked too). Opens no
    /// database. Prints the decoded entry of an inclusion proof. Exit 0 when it holds, 2 when
    /// it does not (1: the file or the key cannot be read).
    VerifyProof {
        /// The bundle (JSON) or signed checkpoint.
        file: PathBuf,
        /// The verifier key (`<origin>+<id>+<base64>`, from `pivault audit key` or
        /// `GET /v1/audit/key`), or a file holding it.
        #[arg(long, value_name = "KEY|KEYFILE")]
        key: String,
    },
}
