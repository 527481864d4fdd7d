//! `pivault`: the PI vault's server and operator CLI.
//!
//! Configuration ([`config`]): built-in defaults → a TOML file (`--config`, or `./pivault.toml`
//! when present) → `PIVAULT_*` environment → command-line flags; `pivault config show` prints the
//! effective values and where each came from.
//!
//! Exit status: 0 success; 1 error (a configuration error included); 2 `audit verify` found the
//! chain broken or inconsistent with the vault (the message names the shard), or (`--fields`)
//! a sealed field that fails authentication (also: `audit verify-proof` found the proof does
//! not hold, `dsr run` left the request failed, `dsr verify-receipt` refused the receipt); 3 `policy explain` decided deny; 4 the master key was
//! refused ([`vault_open::EXIT_KEY_REFUSED`]: `master_key_mismatch`, `master_key_missing`,
//! `master_key_unverifiable`, `master_key_unreadable` on stderr) — before anything was written.
//!
//! Modules: [`cli`] (the clap command line), [`config`] (layers), [`vault_open`] (policy, key,
//! database), [`serve`] (`serve`: TLS, signals, drain), [`audit_cmd`] (`audit …`: verify, key,
//! checkpoints, proofs), [`keys_cmd`] (`keys …`), [`dsr_cmd`]
//! (`dsr …`), [`incident_cmd`] (`incident …`, `outbox …`, `cessation …`, `misuse …`); the
//! other commands are here.

mod audit_cmd;
mod cli;
mod config;
mod dsr_cmd;
mod incident_cmd;
mod keys_cmd;
mod retention_cmd;
mod serve;
mod vault_open;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{Cli, Cmd, ConfigCmd, PolicyCmd};
use config::{Config, Inputs, LogFormat};
use pivault_core::import::{import_dir, Progress};
use pivault_core::CoreError;
use pivault_domain::policy::Policy;
use vault_open::{attach_texts, open_store, open_vault, Ctx, EXIT_KEY_REFUSED};

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

async fn run(ctx: Ctx, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Policy {
            cmd: PolicyCmd::Check { file },
        } => {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            match Policy::parse(&src) {
                Ok(p) => {
                    if let Err(e) = attach_texts(p.clone(), &file) {
                        eprintln!("{}: error: {e:#}", file.display());
                        return Ok(1);
                    }
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
            cmd: PolicyCmd::Diff { old, new, json },
        } => {
            let vault = open_vault(&ctx).await?;
            let changes = vault.policy_diff_counts(&old, &new).await?;
            if json {
                let out = serde_json::json!({ "old": old, "new": new, "changes": changes });
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(0);
            }
            println!("policy {old} -> {new}: {} change(s)", changes.len());
            for c in &changes {
                let list = |v: &[String]| {
                    if v.is_empty() {
                        "-".to_string()
                    } else {
                        v.join(",")
                    }
                };
                println!(
                    "{}  {}  {}\n    purposes: {}  categories: {}  subjects affected: {}",
                    c.version,
                    if c.material { "material" } else { "minor   " },
                    c.summary,
                    list(&c.purposes),
                    list(&c.categories),
                    c.subjects_affected
                );
            }
            Ok(0)
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
            let vault = open_vault(&ctx).await?;
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
            let store = open_store(&ctx.cfg).await?;
            store.migrate().await?;
            println!("migrations applied ({:?})", store.backend());
            Ok(0)
        }
        Cmd::Serve { .. } => serve::run_serve(&ctx).await,
        Cmd::Config {
            cmd: ConfigCmd::Show { .. },
        } => {
            print!("{}", ctx.cfg.show());
            Ok(0)
        }
        Cmd::Import { dir, rejects } => {
            let vault = open_vault(&ctx).await?;
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
                     business_contacts.csv, icp_filings.csv, tickets.jsonl, access.log",
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
        Cmd::Audit { cmd } => audit_cmd::run_audit(&ctx, cmd).await,
        Cmd::Keys { cmd } => keys_cmd::run(open_vault(&ctx).await?, cmd).await,
        Cmd::Dsr { cmd } => dsr_cmd::run_dsr(&ctx, cmd).await,
        Cmd::Sweep { dry_run } => {
            let vault = open_vault(&ctx).await?;
            retention_cmd::sweep(&vault, dry_run, 2_000, None, 0, "cli:sweep").await
        }
        Cmd::Retention { cmd } => retention_cmd::run_retention(open_vault(&ctx).await?, cmd).await,
        Cmd::Hold { cmd } => retention_cmd::run_hold(open_vault(&ctx).await?, cmd).await,
        Cmd::Export { cmd } => retention_cmd::run_export(open_vault(&ctx).await?, cmd).await,
        Cmd::Incident { cmd } => incident_cmd::run_incident(open_vault(&ctx).await?, cmd).await,
        Cmd::Outbox { cmd } => incident_cmd::run_outbox(open_vault(&ctx).await?, cmd).await,
        Cmd::Cessation { cmd } => incident_cmd::run_cessation(open_vault(&ctx).await?, cmd).await,
        Cmd::Misuse { cmd } => incident_cmd::run_misuse(open_vault(&ctx).await?, cmd).await,
        Cmd::Deidentify { cmd } => {
            retention_cmd::run_deidentify(open_vault(&ctx).await?, cmd).await
        }
    }
}

/// Installs the log subscriber on stderr: `log_level` as its filter, `log_format` text or
/// JSON. JSON lines carry the current span's fields (`span.request_id` while a request is
/// served) and the list of spans.
fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level.value)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.log_format.value {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

/// mimalloc instead of glibc malloc: thread-local free lists without glibc's arena
/// consolidation and trimming, which took 10-13 % of a read's or decision's CPU (issue 16,
/// BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let serve_args = match &cli.cmd {
        Cmd::Serve { serve }
        | Cmd::Config {
            cmd: ConfigCmd::Show { serve },
        } => Some(serve),
        _ => None,
    };
    let env = |k: &str| std::env::var(k).ok();
    let inputs = Inputs {
        config_flag: cli.global.config.clone(),
        env: &env,
        flags: cli.global.flags(serve_args),
    };
    let cfg = match Config::load(&inputs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: configuration: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    if !matches!(cli.cmd, Cmd::Config { .. }) {
        init_logging(&cfg);
    }
    let ctx = Ctx {
        cfg,
        #[cfg(feature = "testing")]
        dsr_fault: cli.global.dsr_fault.clone(),
        #[cfg(feature = "testing")]
        fake_now: cli.global.fake_now,
    };
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
    let result = rt.block_on(run(ctx, cli.cmd));
    // Tasks still running (connections past the drain timeout) are dropped, not awaited.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
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
