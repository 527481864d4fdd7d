//! `pivault dsr …`: the privacy office's queue of data subject requests (PIPL Art. 44–50;
//! policy §VII, §XI).

use crate::vault_open::{open_vault, Ctx};
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum DsrCmd {
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

fn print_dsr(v: &pivault_core::dsr::DsrView) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs a `pivault dsr …` command; its exit status.
pub async fn run_dsr(ctx: &Ctx, cmd: DsrCmd) -> Result<i32> {
    let vault = open_vault(ctx).await?;
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
