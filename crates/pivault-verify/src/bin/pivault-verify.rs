//! `pivault-verify`: checks an audit-log proof offline.
//!
//! ```text
//! pivault-verify inclusion BUNDLE.json --key KEY      # an entry is in its shard of a signed checkpoint
//! pivault-verify consistency BUNDLE.json --key KEY    # every shard of a later checkpoint extends the earlier
//! pivault-verify checkpoint NOTE --key KEY            # a checkpoint's signature
//! ```
//!
//! KEY is the log's verifier key (`<name>+<id>+<base64 key>`, from `GET /v1/audit/key`) or a
//! file holding it. Exit 0 when the proof holds, 1 when it does not, 2 on a usage error.
//!
//! `inclusion` prints `ok: shard S entry I is in ORIGIN at size N` (N the checkpoint's size,
//! over all shards), then the entry as pretty JSON when it decodes as a pivault audit entry;
//! `consistency` prints one `ok:` line per shard of the later checkpoint; a failure prints
//! `FAILED: <reason>`.

use pivault_verify::{Checkpoint, ConsistencyBundle, InclusionBundle, NoteVerifier};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: pivault-verify inclusion|consistency|checkpoint FILE --key KEY|KEYFILE");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(cmd), Some(file)) = (args.first(), args.get(1)) else {
        return usage();
    };
    let Some(key) = args
        .iter()
        .position(|a| a == "--key")
        .and_then(|i| args.get(i + 1))
    else {
        return usage();
    };
    let key_text = std::fs::read_to_string(key).unwrap_or_else(|_| key.clone());
    let verifier = match NoteVerifier::parse(&key_text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(input) = std::fs::read_to_string(file) else {
        eprintln!("error: cannot read {file}");
        return ExitCode::from(2);
    };
    let outcome = match cmd.as_str() {
        "inclusion" => InclusionBundle::from_json(&input)
            .and_then(|b| b.verify(&verifier))
            .map(|v| {
                let mut out = format!(
                    "ok: shard {} entry {} is in {} at size {}",
                    v.shard, v.index, v.checkpoint.origin, v.checkpoint.size
                );
                if let Some(json) = v
                    .entry
                    .as_ref()
                    .and_then(|e| serde_json::to_string_pretty(e).ok())
                {
                    out.push('\n');
                    out.push_str(&json);
                }
                out
            }),
        "consistency" => ConsistencyBundle::from_json(&input)
            .and_then(|b| b.verify(&verifier))
            .and_then(|(o, n)| {
                let old = o.shards()?;
                let lines: Vec<String> = n
                    .shards()?
                    .iter()
                    .map(|h| match old.iter().find(|x| x.shard == h.shard) {
                        Some(x) => format!(
                            "ok: shard {} size {} extends size {} of {}",
                            h.shard, h.size, x.size, o.origin
                        ),
                        None => format!(
                            "ok: shard {} size {} is new in {}",
                            h.shard, h.size, o.origin
                        ),
                    })
                    .collect();
                Ok(lines.join("\n"))
            }),
        "checkpoint" => Checkpoint::open(&input, &verifier)
            .map_err(Into::into)
            .map(|c| {
                format!(
                    "ok: {} size {} signed by {}",
                    c.origin,
                    c.size,
                    verifier.name()
                )
            }),
        _ => return usage(),
    };
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e}");
            ExitCode::from(1)
        }
    }
}
