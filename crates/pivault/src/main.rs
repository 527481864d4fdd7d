//! `pivault`: the PI vault's server and operator CLI.
//!
//! Configuration: built-in defaults → environment (`PIVAULT_DATABASE_URL`, `PIVAULT_POLICY`,
//! `PIVAULT_MASTER_KEY_FILE`, `PIVAULT_BIND`, `PIVAULT_SUITE`) → command-line flags.
//!
//! Exit status: 0 success; 1 error; 2 `audit verify` found the chain broken or inconsistent
//! with the vault (also: `dsr run` left the request failed, `dsr verify-receipt` refused the
//! receipt); 3 `policy explain` decided deny; 4 the master key was refused
//! ([`EXIT_KEY_REFUSED`]: `master_key_mismatch`, `master_key_missing`,
//! `master_key_unverifiable`, `master_key_unreadable` on stderr) — before anything was written.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
#[cfg(feature = "testing")]
use pivault_core::dsr::Fault;
use pivault_core::import::{import_dir, Progress};
use pivault_core::keycheck::{self, KeyState};
use pivault_core::{CoreError, Vault};
use pivault_crypto::{KeyRing, MasterSecret, Suite};
use pivault_domain::clock::SystemClock;
use pivault_domain::policy::Policy;
use pivault_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Parser, Debug)]
#[command(
    name = "pivault",
    version,
    about = "Personal-information vault and privacy operations"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Debug, Clone)]
struct Global {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "PIVAULT_DATABASE_URL",
        default_value = "sqlite://./data/pivault.db"
    )]
    database_url: String,
    /// Policy file (TOML).
    #[arg(
        long,
        global = true,
        env = "PIVAULT_POLICY",
        default_value = "policies/default.toml"
    )]
    policy: PathBuf,
    /// Master key file (64 hex chars). Created with mode 0600 if missing and the database is
    /// new and empty — for development only; production provisions it from a KMS/HSM. A missing
    /// or different key on a database with data is refused (exit 4).
    #[arg(
        long,
        global = true,
        env = "PIVAULT_MASTER_KEY_FILE",
        default_value = "./data/master.key"
    )]
    master_key_file: PathBuf,
    /// Staff (operator) access policy in Cedar, loaded beside the policy file (§8.1).
    #[arg(
        long,
        global = true,
        env = "PIVAULT_STAFF_POLICY",
        default_value = "policies/staff.cedar"
    )]
    staff_policy: PathBuf,
    /// Field cipher suite: aes-256-gcm or sm4-gcm (GB/T 32907).
    #[arg(
        long,
        global = true,
        env = "PIVAULT_SUITE",
        default_value = "aes-256-gcm"
    )]
    suite: String,
    /// SMTP server for data subject requests' one-time codes (policy §7.2):
    /// smtp://HOST:PORT?from=ADDR (loopback only), smtp+starttls://USER:PASS@HOST:587?from=…
    /// or smtps://…:465?from=….
    #[arg(long, global = true, env = "PIVAULT_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// HTTPS webhook that sends SMS codes: POST {"to","text"}.
    #[arg(long, global = true, env = "PIVAULT_SMS_WEBHOOK_URL")]
    sms_webhook_url: Option<String>,
    /// Bearer token for the SMS webhook.
    #[arg(
        long,
        global = true,
        env = "PIVAULT_SMS_WEBHOOK_TOKEN",
        hide_env_values = true
    )]
    sms_webhook_token: Option<String>,
    /// Fault injected into request execution, for tests: fail:STEP, halt:STEP or abort:STEP.
    /// Only in builds with the `testing` feature (the crate's own tests); a release build
    /// has no such flag.
    #[cfg(feature = "testing")]
    #[arg(long, global = true, env = "PIVAULT_DSR_FAULT", hide = true)]
    dsr_fault: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the HTTP API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "PIVAULT_BIND", default_value = "127.0.0.1:8080")]
        bind: String,
    },
    /// Apply database migrations.
    Migrate,
    /// Policy as code.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// Import a data set directory (users.csv, consent_events.csv, orders.csv, …, tickets.jsonl).
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
    /// Delete restricted data whose legal retention period has ended (policy §4.2).
    Sweep,
    /// Data subject requests: the privacy office's queue (PIPL Art. 44–50; §VII, §XI).
    Dsr {
        #[command(subcommand)]
        cmd: DsrCmd,
    },
}

#[derive(Subcommand, Debug)]
enum DsrCmd {
    /// List requests, oldest due first.
    List {
        /// Only this state (received, identity_unverified, verified, in_progress, completed,
        /// rejected, failed).
        #[arg(long)]
        state: Option<String>,
        /// Only this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Only open requests due before this RFC 3339 instant, or `overdue` for now.
        #[arg(long)]
        due_before: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one request (JSON).
    Show {
        /// Request id.
        id: String,
    },
    /// Approve a verified request (verified → in_progress).
    Approve {
        /// Request id.
        id: String,
        /// Run it right away.
        #[arg(long)]
        run: bool,
    },
    /// Reject a request with a reason (PIPL Art. 50).
    Reject {
        /// Request id.
        id: String,
        /// identity_not_verified, no_matching_subject, manifestly_unfounded,
        /// legal_obligation, national_security_or_public_interest, criminal_proceedings,
        /// harms_others or trade_secret.
        #[arg(long)]
        reason: String,
    },
    /// Execute (or resume) an approved request.
    Run {
        /// Request id.
        id: String,
    },
    /// Extend a request's deadline where its jurisdiction allows (GDPR Art. 12(3)).
    Extend {
        /// Request id.
        id: String,
    },
    /// Verify a signed deletion receipt (JSON file) against this vault's receipt key.
    VerifyReceipt {
        /// The receipt file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum PolicyCmd {
    /// Parse and validate a policy file; print every error as file:line:column.
    Check {
        /// The file.
        file: PathBuf,
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
enum AuditCmd {
    /// Walk the keyed hash chain, check its head and the vault's contents against it; exit 2
    /// names the first broken entry.
    Verify,
}

#[derive(Subcommand, Debug)]
enum KeysCmd {
    /// Create an API key; the key is printed once.
    Create {
        /// Principal name (e.g. billing).
        #[arg(long)]
        principal: String,
        /// Comma-separated purposes it may use.
        #[arg(long, value_delimiter = ',')]
        purposes: Vec<String>,
        /// Comma-separated roles: app, admin.
        #[arg(long, value_delimiter = ',', default_value = "app")]
        roles: Vec<String>,
    },
}

fn load_policy(path: &Path) -> Result<Policy> {
    let src = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy {}", path.display()))?;
    match Policy::parse(&src) {
        Ok(p) => Ok(p),
        Err(e) => bail!(
            "policy {} is invalid:\n{}",
            path.display(),
            e.render(&path.display().to_string())
        ),
    }
}

/// Exit status of a command refused because of its master key (nothing was written).
const EXIT_KEY_REFUSED: u8 = 4;

fn key_refused(code: &'static str, message: String) -> anyhow::Error {
    CoreError::KeyRefused { code, message }.into()
}

/// Loads the master key. A missing key file is generated (development only) when the
/// database is new and empty; on any other database it is refused (`master_key_missing`).
fn load_keys(g: &Global, state: KeyState) -> Result<KeyRing> {
    let suite = Suite::parse(&g.suite)
        .with_context(|| format!("unknown suite {:?}: use aes-256-gcm or sm4-gcm", g.suite))?;
    let path = &g.master_key_file;
    let exists = match std::fs::metadata(path) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(key_refused(
                keycheck::MASTER_KEY_UNREADABLE,
                format!("master key file {}: {e}", path.display()),
            ))
        }
    };
    if exists {
        let master = MasterSecret::load(path)
            .map_err(|e| key_refused(keycheck::MASTER_KEY_UNREADABLE, e.to_string()))?;
        return Ok(KeyRing::new(master, suite));
    }
    if state != KeyState::New {
        return Err(key_refused(
            keycheck::MASTER_KEY_MISSING,
            format!(
                "no master key file at {}, and this database is not new (it holds data{}); a \
                 development key is made only for a new, empty database. Refusing to open it, \
                 nothing was written. Point PIVAULT_MASTER_KEY_FILE at the database's key",
                path.display(),
                if state == KeyState::Checked {
                    " and records its key's check value"
                } else {
                    ""
                }
            ),
        ));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (master, created) = MasterSecret::load_or_create(path)
        .with_context(|| format!("master key file {}", path.display()))?;
    if created {
        tracing::warn!(
            path = %g.master_key_file.display(),
            "generated a DEVELOPMENT master key (mode 0600). It is for development only: in \
             production provision the key file from a KMS/HSM and set PIVAULT_MASTER_KEY_FILE. \
             Losing it makes every field unreadable."
        );
        eprintln!(
            "WARNING: generated a development-only master key at {} (mode 0600). Do not use it in production.",
            g.master_key_file.display()
        );
    }
    Ok(KeyRing::new(master, suite))
}

/// Opens the database, then the master key: refused (exit 4) when it is missing on a
/// database that is not new, or does not match (checked in [`Vault::new`] before any write).
async fn open_vault(g: &Global) -> Result<Vault> {
    let policy = load_policy(&g.policy)?;
    let staff_src = std::fs::read_to_string(&g.staff_policy)
        .with_context(|| format!("reading staff policy {}", g.staff_policy.display()))?;
    let staff = match pivault_staff::StaffPolicy::load(
        &staff_src,
        &g.staff_policy.display().to_string(),
        &policy,
    ) {
        Ok(s) => s,
        Err(e) => bail!("staff policy {} is invalid:\n{e}", g.staff_policy.display()),
    };
    let store = Store::connect(&g.database_url)
        .await
        .context("opening the database")?;
    let keys = load_keys(g, keycheck::key_state(&store).await?)?;
    let mut vault = Vault::new(store, keys, policy, Arc::new(SystemClock))
        .await?
        .with_staff_policy(staff);
    let email = g
        .smtp_url
        .as_deref()
        .map(|u| {
            pivault_notify::SmtpConfig::from_url(u).and_then(pivault_notify::SmtpNotifier::new)
        })
        .transpose()
        .map_err(|e| anyhow::anyhow!("PIVAULT_SMTP_URL: {e}"))?;
    let sms = g
        .sms_webhook_url
        .as_ref()
        .map(|u| {
            pivault_notify::SmsWebhook::new(pivault_notify::SmsConfig {
                url: u.clone(),
                bearer_token: g.sms_webhook_token.clone(),
                timeout: std::time::Duration::from_secs(10),
            })
        })
        .transpose()
        .map_err(|e| anyhow::anyhow!("PIVAULT_SMS_WEBHOOK_URL: {e}"))?;
    if email.is_some() || sms.is_some() {
        vault = vault.with_code_sender(Arc::new(pivault_server::dsr::NotifySender(
            pivault_notify::Notifiers::new(email, sms),
        )));
    }
    #[cfg(feature = "testing")]
    if let Some(f) = &g.dsr_fault {
        let fault = Fault::parse(f).with_context(|| {
            format!("PIVAULT_DSR_FAULT {f:?}: use fail:STEP, halt:STEP or abort:STEP")
        })?;
        tracing::warn!(fault = %f, "a fault is injected into data subject request execution");
        vault.inject_fault(Some(fault));
    }
    Ok(vault)
}

fn print_dsr(v: &pivault_core::dsr::DsrView) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

async fn run_dsr(g: &Global, cmd: DsrCmd) -> Result<i32> {
    let vault = open_vault(g).await?;
    let p = pivault_core::Principal::operator("dsr", vault.policy());
    match cmd {
        DsrCmd::List {
            state,
            kind,
            due_before,
            limit,
        } => {
            let due_before = match due_before.as_deref() {
                None => None,
                Some("overdue") => Some(vault.now().unix_timestamp()),
                Some(d) => Some(
                    pivault_core::values::parse_timestamp(d)
                        .ok()
                        .context("--due-before is an RFC 3339 instant or `overdue`")?,
                ),
            };
            let f = pivault_store::DsrFilter {
                state,
                kind,
                subject_id: None,
                due_before,
                limit,
            };
            let items = vault.dsr_list(&p, &f).await?;
            println!(
                "{:<36} {:<12} {:<19} {:<4} {:<20} flags",
                "id", "kind", "state", "jur", "due"
            );
            for v in &items {
                let mut flags = Vec::new();
                if v.overdue {
                    flags.push("OVERDUE".to_string());
                }
                if let Some(d) = &v.duplicate_of {
                    flags.push(format!("duplicate_of={d}"));
                }
                if let Some(s) = &v.failed_step {
                    flags.push(format!("failed_step={s}"));
                }
                println!(
                    "{:<36} {:<12} {:<19} {:<4} {:<20} {}",
                    v.id,
                    v.kind,
                    v.state,
                    v.jurisdiction,
                    v.due_at,
                    flags.join(" ")
                );
            }
            eprintln!("{} request(s)", items.len());
        }
        DsrCmd::Show { id } => print_dsr(&vault.dsr_show(&p, &id).await?)?,
        DsrCmd::Approve { id, run } => {
            let v = vault.dsr_approve(&p, &id).await?;
            if run {
                print_dsr(&vault.dsr_run(&p, &id).await?)?;
            } else {
                print_dsr(&v)?;
            }
        }
        DsrCmd::Reject { id, reason } => print_dsr(&vault.dsr_reject(&p, &id, &reason).await?)?,
        DsrCmd::Run { id } => {
            let v = vault.dsr_run(&p, &id).await?;
            print_dsr(&v)?;
            if v.state == "failed" {
                return Ok(2);
            }
        }
        DsrCmd::Extend { id } => print_dsr(&vault.dsr_extend(&p, &id).await?)?,
        DsrCmd::VerifyReceipt { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let key = vault.receipt_key();
            return Ok(
                match pivault_core::dsr::verify_receipt_json(&text, &key.public_key) {
                    Ok(()) => {
                        println!("receipt signature ok (key {})", key.key_id);
                        0
                    }
                    Err(why) => {
                        eprintln!("receipt does NOT verify: {why}");
                        2
                    }
                },
            );
        }
    }
    Ok(0)
}

struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn start(&self, file: &str, total: u64) {
        self.0.reset();
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.set_message(file.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

async fn run(cli: Cli) -> Result<i32> {
    let g = cli.global.clone();
    match cli.cmd {
        Cmd::Policy {
            cmd: PolicyCmd::Check { file },
        } => {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match Policy::parse(&src) {
                Ok(p) => {
                    for w in p.warnings() {
                        println!("{}", w.render(&file.display().to_string(), "warning"));
                    }
                    println!(
                        "{}: ok — policy {} version {} ({} categories, {} purposes), sha256 {}",
                        file.display(),
                        p.id(),
                        p.version(),
                        p.categories().len(),
                        p.purposes().len(),
                        p.hash()
                    );
                    Ok(0)
                }
                Err(e) => {
                    eprint!("{}", e.render(&file.display().to_string()));
                    eprintln!("{}: {} error(s)", file.display(), e.0.len());
                    Ok(1)
                }
            }
        }
        Cmd::Policy {
            cmd:
                PolicyCmd::Explain {
                    subject,
                    purpose,
                    action,
                    categories,
                    recipient,
                    region,
                },
        } => {
            let vault = open_vault(&g).await?;
            let operator = pivault_core::Principal::operator("policy-explain", vault.policy());
            let input = pivault_core::decisions::DecisionInput {
                action,
                purpose,
                subject_id: subject,
                categories,
                recipient,
                region,
                exception: None,
            };
            let d = vault.decide_for(&operator, &input, None).await?;
            println!("{}", d.explanation);
            println!(
                "  decision:   {} ({})",
                if d.allowed { "allow" } else { "deny" },
                d.reason
            );
            println!(
                "  rule:       {} · policy {} · version {}",
                d.article, d.clause, d.policy_version
            );
            if let Some(b) = d.legal_basis {
                println!("  basis:      {b}");
            }
            if !d.allowed_categories.is_empty() {
                println!("  categories: {}", d.allowed_categories.join(", "));
            }
            for (c, why) in &d.withheld {
                println!("  withheld:   {c} ({why})");
            }
            if !d.obligations.is_empty() {
                println!("  obligations: {}", d.obligations.join(", "));
            }
            Ok(if d.allowed { 0 } else { 3 })
        }
        Cmd::Migrate => {
            let store = Store::connect(&g.database_url)
                .await
                .context("opening the database")?;
            store.migrate().await?;
            println!("migrations applied ({:?})", store.backend());
            Ok(0)
        }
        Cmd::Serve { bind } => {
            let vault = Arc::new(open_vault(&g).await?);
            // Overdue and near-due requests are warned about in the log every 5 minutes
            // (PIVAULT_DSR_SCAN_SECS).
            let every = std::env::var("PIVAULT_DSR_SCAN_SECS")
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(300)
                .max(1);
            let scan = Arc::clone(&vault);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
                loop {
                    tick.tick().await;
                    if let Err(e) = scan.dsr_due_scan().await {
                        tracing::warn!(error = %e, "overdue request scan failed");
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind(&bind)
                .await
                .with_context(|| format!("binding {bind}"))?;
            tracing::info!(addr = %listener.local_addr()?, policy = vault.policy().version(), "pivault serving");
            eprintln!("pivault listening on http://{}", listener.local_addr()?);
            let shutdown = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            pivault_server::serve(listener, pivault_server::AppState { vault }, shutdown).await?;
            Ok(0)
        }
        Cmd::Import { dir, rejects } => {
            let vault = open_vault(&g).await?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>22} [{bar:40}] {pos}/{len} rows ({per_sec})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            // indicatif hides itself when stderr is not a terminal.
            let report = import_dir(&vault, &dir, &rejects, &Bar(bar)).await?;
            if report.files.is_empty() {
                eprintln!(
                    "error: {} holds none of users.csv, consent_events.csv, orders.csv, face_templates.csv, \
                     business_contacts.csv, icp_filings.csv, tickets.jsonl",
                    dir.display()
                );
                return Ok(1);
            }
            println!(
                "{:<24} {:>9} {:>9} {:>9} {:>9}",
                "file", "imported", "rejected", "skipped", "seconds"
            );
            for f in &report.files {
                println!(
                    "{:<24} {:>9} {:>9} {:>9} {:>9.2}",
                    f.file,
                    f.imported,
                    f.rejected,
                    f.skipped,
                    f.elapsed.as_secs_f64()
                );
            }
            let secs = report.elapsed.as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let rate = report.rows() as f64 / secs.max(1e-9);
            println!(
                "{} rows in {secs:.2} s ({rate:.0} rows/s); {}",
                report.rows(),
                report.rejects_note()
            );
            Ok(0)
        }
        Cmd::Audit {
            cmd: AuditCmd::Verify,
        } => {
            let vault = open_vault(&g).await?;
            let r = vault.verify_audit().await?;
            if let Some((seq, why)) = &r.first_broken {
                eprintln!("audit chain BROKEN at entry {seq}: {why}");
                return Ok(2);
            }
            if let Some((seq, why)) = &r.inconsistent {
                eprintln!("audit log INCONSISTENT with the vault after entry {seq}: {why}");
                return Ok(2);
            }
            println!(
                "audit chain ok: {} entries, head {}, format {}{}",
                r.entries,
                r.head_seq,
                r.chain_format,
                r.migrated_from
                    .as_deref()
                    .map(|m| format!(" (re-keyed at first open from {m})"))
                    .unwrap_or_default()
            );
            Ok(0)
        }
        Cmd::Keys {
            cmd:
                KeysCmd::Create {
                    principal,
                    purposes,
                    roles,
                },
        } => {
            let vault = open_vault(&g).await?;
            let token = vault
                .create_api_key("cli:keys", &principal, &roles, &purposes)
                .await?;
            println!("{token}");
            eprintln!(
                "API key for principal {principal} (roles {}; purposes {}). It is shown once.",
                roles.join(","),
                purposes.join(",")
            );
            Ok(0)
        }
        Cmd::Dsr { cmd } => run_dsr(&g, cmd).await,
        Cmd::Sweep => {
            let vault = open_vault(&g).await?;
            let n = vault.retention_sweep("cli:sweep").await?;
            println!("retention sweep deleted {n} field(s) past their retention period");
            Ok(0)
        }
    }
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            if let Some(CoreError::KeyRefused { code, message }) = e.downcast_ref::<CoreError>() {
                eprintln!("error: {code}: {message}");
                return std::process::ExitCode::from(EXIT_KEY_REFUSED);
            }
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
