//! `pivault retention …`, `pivault hold …` and `pivault export …`: the retention sweep,
//! legal holds, and exports of the anonymized sets (issue 12; policy §4.2, §8.2; PIPL Art. 47,
//! 73(4)).

use anyhow::Result;
use clap::{Subcommand, ValueEnum};
use pivault_core::values::format_timestamp;
use pivault_core::{CoreError, HoldInput, HoldRow, Principal, SweepOptions, SweepProgress, Vault};
use pivault_domain::policy::AnonymizedSet;
use std::path::PathBuf;

/// The `retention` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum RetentionCmd {
    /// Delete or anonymize what is past its retention (resumable; one instance at a time).
    Sweep {
        /// List what would happen, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Records per transaction (1-5000).
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u16).range(1..=5000))]
        batch: u16,
        /// Stop after this many records (drills; run again to resume).
        #[arg(long)]
        limit: Option<u64>,
        /// Pause between batches, in milliseconds (to spare a busy database).
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
}

/// The `hold` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum HoldCmd {
    /// Set a legal hold on a subject or a whole category.
    Set {
        /// The subject held.
        #[arg(
            long,
            conflicts_with = "category",
            required_unless_present = "category"
        )]
        subject: Option<String>,
        /// The category held (every subject's).
        #[arg(long)]
        category: Option<String>,
        /// Why (kept with the hold, not in the audit log).
        #[arg(long)]
        reason: String,
        /// Case, order or ticket number (1-64 of A-Z a-z 0-9 _ . : / -).
        #[arg(long)]
        reference: String,
    },
    /// Release a legal hold; the next sweep acts on what it held.
    Release {
        /// Hold id.
        id: String,
    },
    /// List legal holds.
    List {
        /// Include released holds.
        #[arg(long)]
        all: bool,
    },
}

/// Which anonymized set to export.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum AnonKindArg {
    /// Web-log lines past their period: network prefix, browser, path without PI, hour.
    Weblog,
    /// Orders past their period: month, product, amount.
    Orders,
}

/// The `export` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum ExportCmd {
    /// Write an anonymized set as CSV; refused (exit 3, `k_anonymity_too_low`) when its k is
    /// below the policy's `k_min`, unless --suppress leaves out the small classes.
    Anonymized {
        /// Which set.
        #[arg(long)]
        kind: AnonKindArg,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Leave out rows of classes smaller than k_min instead of refusing.
        #[arg(long)]
        suppress: bool,
    },
}

fn show_hold(h: &HoldRow) -> String {
    format!(
        "{}  {}  reference={} set_by={} set_at={}{}",
        h.id,
        match (&h.subject_id, &h.category) {
            (Some(s), _) => format!("subject={s}"),
            (_, Some(c)) => format!("category={c}"),
            _ => "-".into(),
        },
        h.reference,
        h.set_by,
        format_timestamp(h.set_at),
        h.released_at
            .map(|t| format!(
                " released_at={} by={}",
                format_timestamp(t),
                h.released_by.as_deref().unwrap_or("-")
            ))
            .unwrap_or_default()
    )
}

/// Runs one `retention` subcommand; returns the exit status (3: another instance sweeps).
pub(crate) async fn run_retention(vault: Vault, cmd: RetentionCmd) -> Result<i32> {
    let RetentionCmd::Sweep {
        dry_run,
        batch,
        limit,
        pause_ms,
    } = cmd;
    sweep(
        &vault,
        dry_run,
        usize::from(batch),
        limit,
        pause_ms,
        "cli:sweep",
    )
    .await
}

/// The sweep with a progress bar on a terminal (indicatif hides itself otherwise), then its
/// report: counts per category and action, and what holds kept back.
pub(crate) async fn sweep(
    vault: &Vault,
    dry_run: bool,
    batch: usize,
    limit: Option<u64>,
    pause_ms: u64,
    actor: &str,
) -> Result<i32> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} sweep {pos} records ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let b = bar.clone();
    let opts = SweepOptions {
        dry_run,
        batch,
        actor: actor.into(),
        limit,
        pause_ms,
    };
    let on = move |p: SweepProgress| b.set_position(p.done);
    let rep = match vault.sweep(&opts, &on).await {
        Err(CoreError::Conflict("sweep_busy")) => {
            bar.abandon();
            eprintln!("error: sweep_busy: another instance is running the retention sweep");
            return Ok(3);
        }
        r => r?,
    };
    bar.finish_and_clear();
    if dry_run {
        // A dry run counts the records it would act on; the field rows are known only once
        // the records are opened and deleted, so no count is claimed for them.
        println!(
            "retention sweep (dry run, nothing changed) would act on {} record(s)",
            rep.total()
        );
    } else {
        println!(
            "retention sweep acted on {} record(s); {} field row(s) deleted",
            rep.total(),
            rep.fields_deleted
        );
    }
    for (cat, actions) in &rep.acted {
        for (action, n) in actions {
            println!("  {cat:<36} {action:<18} {n}");
        }
    }
    for (cat, reasons) in &rep.held {
        for (why, n) in reasons {
            println!("  held back: {cat:<25} {why:<20} {n}");
        }
    }
    if rep.unreadable > 0 {
        println!(
            "  {} record(s) failed authentication and were deleted without an anonymized row (audited)",
            rep.unreadable
        );
    }
    Ok(0)
}

/// Runs one `hold` subcommand as the CLI operator.
pub(crate) async fn run_hold(vault: Vault, cmd: HoldCmd) -> Result<i32> {
    let op = Principal::operator("hold", vault.policy());
    match cmd {
        HoldCmd::Set {
            subject,
            category,
            reason,
            reference,
        } => {
            let h = vault
                .hold_set(
                    &op,
                    HoldInput {
                        subject_id: subject,
                        category,
                        reason,
                        reference,
                    },
                )
                .await?;
            println!("{}", show_hold(&h));
        }
        HoldCmd::Release { id } => {
            let h = vault.hold_release(&op, &id).await?;
            println!("{}", show_hold(&h));
        }
        HoldCmd::List { all } => {
            for h in vault.hold_list(&op, !all).await? {
                println!("{}", show_hold(&h));
            }
        }
    }
    Ok(0)
}

/// Runs one `export` subcommand; exit 3 when the k-anonymity check refuses the export.
pub(crate) async fn run_export(vault: Vault, cmd: ExportCmd) -> Result<i32> {
    let ExportCmd::Anonymized {
        kind,
        out,
        suppress,
    } = cmd;
    let set = match kind {
        AnonKindArg::Weblog => AnonymizedSet::Weblog,
        AnonKindArg::Orders => AnonymizedSet::Order,
    };
    // Written to a buffer first: a refused export leaves no partial file.
    let mut buf = Vec::new();
    let rep = match vault
        .export_anonymized(set, suppress, "cli:export", &mut buf)
        .await
    {
        Err(CoreError::Conflict("k_anonymity_too_low")) => {
            let k = vault.anon_k(set).await?;
            eprintln!(
                "error: k_anonymity_too_low: the {} set reaches k = {} over its quasi-identifiers, below the policy's k_min = {} ({} rows in smaller classes); nothing written. Use --suppress to leave those rows out.",
                set.as_str(),
                k.k,
                k.k_min,
                k.rows_below
            );
            return Ok(3);
        }
        r => r?,
    };
    match out {
        Some(path) => std::fs::write(&path, &buf)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&buf)?;
        }
    }
    eprintln!(
        "exported {} anonymized {} row(s); k = {} over [{}] (k_min {}), {} suppressed",
        rep.rows,
        rep.set,
        rep.k_written,
        rep.quasi_identifiers.join(", "),
        rep.k_min,
        rep.suppressed
    );
    Ok(0)
}

/// The `deidentify` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum DeidentifyCmd {
    /// Reverse de-identification tokens (`pz1.…`) with the vault's key: the key holder only,
    /// audited (count, never values). The output is personal information.
    Reverse {
        /// account_id, mobile, email, id_card or guardian_mobile.
        #[arg(long)]
        kind: String,
        /// Tokens.
        #[arg(required = true)]
        tokens: Vec<String>,
    },
}

/// Runs one `deidentify` subcommand as the CLI operator; exit 2 for a token this key did not
/// make.
pub(crate) async fn run_deidentify(vault: Vault, cmd: DeidentifyCmd) -> Result<i32> {
    let DeidentifyCmd::Reverse { kind, tokens } = cmd;
    let Some(k) = pivault_domain::identifiers::IdentifierKind::parse_name(&kind) else {
        eprintln!("error: --kind is account_id, mobile, email, id_card or guardian_mobile");
        return Ok(2);
    };
    let op = Principal::operator("deidentify", vault.policy());
    match vault.reidentify(&op, k, &tokens).await {
        Ok(values) => {
            for v in values {
                println!("{v}");
            }
            Ok(0)
        }
        Err(CoreError::Invalid { field, code, .. }) => {
            eprintln!("error: {code}: {field} was not made by this vault's key for {kind}");
            Ok(2)
        }
        Err(e) => Err(e.into()),
    }
}
