//! `pivault keys …`: API keys (create, list, revoke, rotate) and key rotation (rotate-kek,
//! rewrap, rotate-index, reindex, status). Issue 11, Deliver 6.

use anyhow::Result;
use clap::Subcommand;
use pivault_core::values::format_timestamp;
use pivault_core::{ApiKeyInfo, Expiry, KeyJobProgress, Principal, Vault};
use std::future::Future;
use std::time::Duration;

/// The `keys` subcommands.
#[derive(Subcommand, Debug)]
pub(crate) enum KeysCmd {
    /// Create an API key; the key is printed once.
    Create {
        /// Principal name (e.g. billing).
        #[arg(long)]
        principal: String,
        /// Comma-separated purposes it may use.
        #[arg(long, value_delimiter = ',')]
        purposes: Vec<String>,
        /// Comma-separated roles: app, admin, support, dpo, security.
        #[arg(long, value_delimiter = ',', default_value = "app")]
        roles: Vec<String>,
        /// Lifetime: a number and s, m, h or d (e.g. 90d).
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// Expiry instant, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List API keys (never their tokens).
    List,
    /// Revoke an API key: refused on every instance within 100 ms.
    Revoke {
        /// Key id (the middle part of the token `pvk.<id>.<secret>`).
        key_id: String,
    },
    /// Issue a new token for a key's principal and revoke the old one (after --grace).
    Rotate {
        /// Key id.
        key_id: String,
        /// How long the old token keeps working, e.g. 1h (default: revoked at once).
        #[arg(long)]
        grace: Option<String>,
        /// The new key's lifetime (default: the old key's lifetime again, or none).
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// The new key's expiry instant, RFC 3339.
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// Start a new key-encryption key (KEK); new DEKs are wrapped under it. Then run `rewrap`.
    RotateKek,
    /// Rewrap every wrapped DEK under the current KEK, in batches; resumable after a crash.
    Rewrap {
        /// Wrapped DEKs per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Pause between batches, in milliseconds (to spare a busy database).
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Start a new blind-index key; lookups answer from both until `reindex` completes.
    RotateIndex,
    /// Re-index every identifier under the current blind-index key; resumable after a crash.
    Reindex {
        /// Subjects per transaction.
        #[arg(long, default_value_t = 200)]
        batch: i64,
        /// Pause between batches, in milliseconds.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// Stop after this many batches (leaves the re-index half done; run again to resume).
        #[arg(long)]
        max_batches: Option<u64>,
    },
    /// Rows per key id: wrapped DEKs per KEK, blind-index rows per index key.
    Status,
}

fn show(k: &ApiKeyInfo) -> String {
    format!(
        "{}  {:<20} {:<8} roles={} purposes={} created={} expires={} revoked={}{}",
        k.key_id,
        k.principal,
        k.state,
        k.roles.join(","),
        k.purposes.join(","),
        format_timestamp(k.created_at),
        k.expires_at
            .map_or_else(|| "never".into(), format_timestamp),
        k.revoked_at.map_or_else(|| "-".into(), format_timestamp),
        k.replaced_by
            .as_deref()
            .map(|r| format!(" replaced_by={r}"))
            .unwrap_or_default()
    )
}

/// Runs `step` until it reports `finished`, with a progress bar on a terminal (indicatif hides
/// itself when stderr is not one).
async fn run_job<F, Fut>(
    what: &str,
    pause_ms: u64,
    max: Option<u64>,
    mut step: F,
) -> Result<KeyJobProgress>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<KeyJobProgress, pivault_core::CoreError>>,
{
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    let mut n = 0u64;
    loop {
        let p = step().await?;
        bar.set_length(u64::try_from(p.total).unwrap_or(0));
        bar.set_position(u64::try_from(p.done).unwrap_or(0));
        n += 1;
        if p.finished || max.is_some_and(|m| n >= m) {
            bar.finish();
            return Ok(p);
        }
        if pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
    }
}

/// Runs one `keys` subcommand on `vault`; returns the exit status.
pub(crate) async fn run(vault: Vault, cmd: KeysCmd) -> Result<i32> {
    const ACTOR: &str = "cli:keys";
    let op = Principal::operator("keys", vault.policy());
    match cmd {
        KeysCmd::Create {
            principal,
            purposes,
            roles,
            expires_in,
            expires_at,
        } => {
            let expiry = Expiry::from_fields(expires_in.as_deref(), expires_at.as_deref())?;
            let k = vault
                .create_api_key_with(ACTOR, &principal, &roles, &purposes, expiry)
                .await?;
            println!("{}", k.token);
            eprintln!(
                "API key {} for principal {principal} (roles {}; purposes {}; expires {}). It is \
                 shown once.",
                k.info.key_id,
                roles.join(","),
                purposes.join(","),
                k.info
                    .expires_at
                    .map_or_else(|| "never".into(), format_timestamp)
            );
        }
        KeysCmd::List => {
            for k in vault.list_api_keys(&op).await? {
                println!("{}", show(&k));
            }
        }
        KeysCmd::Revoke { key_id } => {
            let k = vault.revoke_api_key(&op, &key_id, None).await?;
            println!("{}", show(&k));
        }
        KeysCmd::Rotate {
            key_id,
            grace,
            expires_in,
            expires_at,
        } => {
            let grace = match grace.as_deref().map(Expiry::parse_in).transpose()? {
                Some(Expiry::In(s)) => s,
                _ => 0,
            };
            let expiry = Expiry::from_fields(expires_in.as_deref(), expires_at.as_deref())?;
            let k = vault
                .rotate_api_key(&op, &key_id, grace, expiry, None)
                .await?;
            println!("{}", k.token);
            eprintln!(
                "API key {} replaces {key_id} for principal {}; the old key {}. The new token is \
                 shown once.",
                k.info.key_id,
                k.info.principal,
                if grace == 0 {
                    "is revoked".to_string()
                } else {
                    format!("works {grace} s more")
                }
            );
        }
        KeysCmd::RotateKek => {
            let id = vault.rotate_kek(ACTOR).await?;
            println!("new KEK {id}: new data keys are wrapped under it; run `pivault keys rewrap`");
        }
        KeysCmd::RotateIndex => {
            let id = vault.rotate_index_key(ACTOR).await?;
            println!(
                "new blind-index key {id}: lookups answer from both keys until `pivault keys \
                 reindex` completes"
            );
        }
        KeysCmd::Rewrap { batch, pause_ms } => {
            let p = run_job("rewrap", pause_ms, None, || vault.rewrap_step(ACTOR, batch)).await?;
            println!(
                "rewrap finished: {} wrapped DEK(s) moved to {}",
                p.done, p.key_id
            );
        }
        KeysCmd::Reindex {
            batch,
            pause_ms,
            max_batches,
        } => {
            let p = run_job("reindex", pause_ms, max_batches, || {
                vault.reindex_step(ACTOR, batch)
            })
            .await?;
            if p.finished {
                println!(
                    "reindex finished: {} row(s) indexed under {}; old rows removed",
                    p.done, p.key_id
                );
            } else {
                println!(
                    "reindex paused: {}/{} row(s) indexed under {}; run again to resume",
                    p.done, p.total, p.key_id
                );
            }
        }
        KeysCmd::Status => {
            let s = vault.key_status().await?;
            println!("KEKs (wrapped DEKs per key id):");
            for g in &s.keks {
                println!(
                    "  {}  generation {}  {:<10} {} row(s)",
                    g.key_id, g.generation, g.state, g.rows
                );
            }
            println!("blind-index keys (identifier rows, suppression-list rows per key id):");
            for g in &s.index {
                println!(
                    "  {}  generation {}  {:<10} {} row(s), {} suppression row(s)",
                    g.key_id, g.generation, g.state, g.rows, g.suppression_rows
                );
            }
            for (job, state, done, total) in &s.jobs {
                println!("job {job}: {state}, {done}/{total}");
            }
        }
    }
    Ok(0)
}
