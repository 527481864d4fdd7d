//! `pivault audit …`: verify the log, its key, checkpoints, and proofs (issue 15).
//!
//! `verify-proof` is the one command that opens no database: it needs only the bundle and the
//! verifier key, like the standalone `pivault-verify`.

use crate::cli::AuditCmd;
use crate::vault_open::{open_vault, Ctx};
use anyhow::{Context, Result};
use pivault_verify::{Checkpoint, ConsistencyBundle, InclusionBundle, NoteVerifier};
use std::path::Path;

/// Exit status of `audit verify` (a broken or inconsistent log, a field that fails
/// authentication) and `audit verify-proof` (a proof that does not hold).
pub const EXIT_BROKEN: i32 = 2;

/// Runs a `pivault audit …` command; its exit status.
pub async fn run_audit(ctx: &Ctx, cmd: AuditCmd) -> Result<i32> {
    match cmd {
        AuditCmd::Verify { fields } => verify(ctx, fields).await,
        AuditCmd::Key => {
            println!("{}", open_vault(ctx).await?.audit_verifier_key()?);
            Ok(0)
        }
        AuditCmd::Checkpoint => {
            let vault = open_vault(ctx).await?;
            let c = vault.sign_checkpoint(false).await?;
            println!(
                "checkpoint {}: {} entries, signed {}",
                c.id,
                c.size,
                pivault_core::values::format_timestamp(c.at)
            );
            print!("{}", c.note);
            if !c.note.ends_with('\n') {
                println!();
            }
            Ok(0)
        }
        AuditCmd::Proof {
            seq,
            checkpoint,
            out,
        } => {
            let vault = open_vault(ctx).await?;
            let b = vault.inclusion_proof(seq, checkpoint).await?;
            let what = format!(
                "the inclusion proof of entry {seq} (shard {}, index {})",
                b.shard, b.index
            );
            write_json(&serde_json::to_string_pretty(&b)?, out.as_deref(), &what)?;
            Ok(0)
        }
        AuditCmd::Consistency { from, to, out } => {
            let vault = open_vault(ctx).await?;
            let b = vault.consistency_proof(from, to).await?;
            let what = format!("the consistency proof from checkpoint {from} to {to}");
            write_json(&serde_json::to_string_pretty(&b)?, out.as_deref(), &what)?;
            Ok(0)
        }
        AuditCmd::VerifyProof { file, key } => verify_proof(&file, &key),
    }
}

/// Writes `json` to `out` (saying so on stderr) or to standard output.
fn write_json(json: &str, out: Option<&Path>, what: &str) -> Result<()> {
    match out {
        Some(path) => {
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {what} to {}", path.display());
        }
        None => println!("{json}"),
    }
    Ok(())
}

/// `audit verify`: every shard's chain and tree, the checkpoints, the contents; `--fields`.
async fn verify(ctx: &Ctx, fields: bool) -> Result<i32> {
    let vault = open_vault(ctx).await?;
    let r = vault.verify_audit().await?;
    if let Some((seq, why)) = &r.first_broken {
        // `why` names the shard ("shard K: …").
        eprintln!("audit chain BROKEN at entry {seq}: {why}");
        return Ok(EXIT_BROKEN);
    }
    if let Some((seq, why)) = &r.inconsistent {
        eprintln!("audit log INCONSISTENT with the vault after entry {seq}: {why}");
        return Ok(EXIT_BROKEN);
    }
    println!(
        "audit chain ok: {} entries in {} shard(s), {} checkpoint(s) verified, head {}, format {}{}",
        r.entries,
        r.shards,
        r.checkpoints,
        r.head_seq,
        r.chain_format,
        r.migrated_from
            .as_deref()
            .map(|m| format!(" (re-keyed at first open from {m})"))
            .unwrap_or_default()
    );
    let fields_ok = !fields || verify_fields(&vault).await?;
    Ok(if fields_ok { 0 } else { EXIT_BROKEN })
}

/// `audit verify --fields`: opens every sealed field with a progress bar; prints the counts
/// and the first failures (subject id and field path, never a value). Whether all opened.
async fn verify_fields(vault: &pivault_core::Vault) -> Result<bool> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("fields [{bar:40}] {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let r = vault
        .verify_fields(&|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    if r.ok() {
        println!("fields ok: {} checked, 0 failed authentication", r.checked);
        return Ok(true);
    }
    eprintln!(
        "fields FAILED: {} of {} checked failed authentication (field_integrity_failed)",
        r.failed, r.checked
    );
    for (subject, field) in &r.first_failures {
        eprintln!("  subject {subject} field {field}");
    }
    Ok(false)
}

/// The verifier key given as `--key`: the key itself, or a file holding it.
fn load_key(key: &str) -> Result<NoteVerifier> {
    let path = Path::new(key);
    let text = if !key.contains('+') && path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading the key file {key}"))?
    } else {
        key.to_string()
    };
    NoteVerifier::parse(text.trim()).map_err(|e| {
        anyhow::anyhow!(
            "--key: not a verifier key (`<origin>+<key id>+<base64>`, from `pivault audit key` \
             or GET /v1/audit/key), nor a file holding one: {e}"
        )
    })
}

/// `audit verify-proof FILE --key KEY`: no database. 0 when the proof holds, 2 when not.
fn verify_proof(file: &Path, key: &str) -> Result<i32> {
    let verifier = load_key(key)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match check_bundle(&text, &verifier) {
        Ok(report) => {
            println!("{report}");
            Ok(0)
        }
        Err(why) => {
            eprintln!("proof does NOT verify: {why}");
            Ok(EXIT_BROKEN)
        }
    }
}

/// Checks `text` (an inclusion bundle, a consistency bundle, or a signed checkpoint) with
/// `verifier`: the report to print, or why it does not hold.
fn check_bundle(text: &str, verifier: &NoteVerifier) -> Result<String, String> {
    let value: Option<serde_json::Value> = serde_json::from_str(text).ok();
    let has = |k: &str| value.as_ref().is_some_and(|v| v.get(k).is_some());
    if has("leaf") {
        let v = InclusionBundle::from_json(text)
            .and_then(|b| b.verify(verifier))
            .map_err(|e| e.to_string())?;
        let mut out = format!(
            "inclusion proof ok: shard {} entry {} is in checkpoint {} at size {}",
            v.shard, v.index, v.checkpoint.origin, v.checkpoint.size
        );
        match &v.entry {
            Some(e) => {
                out.push_str(&format!(" (audit entry {})\n", e.seq));
                out.push_str(&serde_json::to_string_pretty(e).map_err(|e| e.to_string())?);
            }
            None => out.push_str("\n(the leaf is not a pivault audit entry; not decoded)"),
        }
        Ok(out)
    } else if has("old") && has("new") {
        let (old, new) = ConsistencyBundle::from_json(text)
            .and_then(|b| b.verify(verifier))
            .map_err(|e| e.to_string())?;
        let old_heads = old.shards().map_err(|e| e.to_string())?;
        let mut out = format!(
            "consistency proof ok: checkpoint of {} at size {} extends the one at size {}",
            new.origin, new.size, old.size
        );
        for h in new.shards().map_err(|e| e.to_string())? {
            match old_heads.iter().find(|o| o.shard == h.shard) {
                Some(o) => out.push_str(&format!(
                    "\n  shard {}: size {} extends size {}",
                    h.shard, h.size, o.size
                )),
                None => out.push_str(&format!("\n  shard {}: size {} (new)", h.shard, h.size)),
            }
        }
        Ok(out)
    } else if value.is_none() && text.contains("\n\n") {
        let c = Checkpoint::open(text, verifier).map_err(|e| e.to_string())?;
        Ok(format!(
            "checkpoint ok: {} at size {} signed by {}",
            c.origin,
            c.size,
            verifier.name()
        ))
    } else {
        Err(
            "neither an inclusion bundle ({\"leaf\", …}), a consistency bundle ({\"old\", \
             \"new\", …}) nor a signed checkpoint"
                .into(),
        )
    }
}
