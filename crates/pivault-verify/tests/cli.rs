//! The `pivault-verify` binary on files: exit 0 when the proof holds, 1 when it does not
//! (printing `FAILED`), 2 on a usage error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::{verifier, Log};
use pivault_verify::merkle::consistency_proof;
use pivault_verify::{ConsistencyBundle, InclusionBundle, ShardProof};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A temp file removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(contents: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pivault-verify-cli-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&p, contents).unwrap();
        Self(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the binary; (exit code, stdout).
fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pivault-verify"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn check(cmd: &str, json: &str, key: &Temp) -> (i32, String) {
    let f = Temp::new(json);
    run(&[cmd, f.path(), "--key", key.path()])
}

const SIZES: [u64; 3] = [4, 11, 7];

fn inclusion(log: &Log, shard: usize, index: u64) -> InclusionBundle {
    InclusionBundle {
        leaf: B64.encode(&log.shards[shard][index as usize]),
        shard: shard as u32,
        index,
        proof: log.inclusion(shard, index, &SIZES),
        checkpoint: log.signed(&SIZES),
    }
}

#[test]
fn inclusion_holds_prints_the_entry_and_fails_on_an_edit_or_a_bad_signature() {
    let log = Log::new(&SIZES, "reveal");
    let key = Temp::new(&verifier().encode());
    let b = inclusion(&log, 2, 5);
    let (code, out) = check("inclusion", &serde_json::to_string(&b).unwrap(), &key);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("ok: shard 2 entry 5 is in pivault.test/audit at size 22\n"),
        "{out}"
    );
    assert!(out.contains("\"action\": \"reveal-2-5\""), "{out}");
    assert!(out.contains("\"idx\": 5"), "{out}");
    // The key given inline rather than as a file.
    let f = Temp::new(&serde_json::to_string(&b).unwrap());
    let (code, _) = run(&["inclusion", f.path(), "--key", &verifier().encode()]);
    assert_eq!(code, 0);

    // One byte of the leaf changed.
    let mut leaf = log.shards[2][5].clone();
    let at = leaf.len() / 2;
    leaf[at] ^= 0x01;
    let edited = InclusionBundle {
        leaf: B64.encode(&leaf),
        ..b.clone()
    };
    let (code, out) = check("inclusion", &serde_json::to_string(&edited).unwrap(), &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED"), "{out}");

    // A signature byte changed.
    let sig_at = b.checkpoint.rfind(' ').unwrap() + 10;
    let mut cp = b.checkpoint.clone().into_bytes();
    cp[sig_at] = if cp[sig_at] == b'A' { b'B' } else { b'A' };
    let forged = InclusionBundle {
        checkpoint: String::from_utf8(cp).unwrap(),
        ..b.clone()
    };
    let (code, out) = check("inclusion", &serde_json::to_string(&forged).unwrap(), &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED"), "{out}");

    // Signed by another key.
    let other = pivault_verify::NoteVerifier::new(
        "pivault.test",
        ed25519_dalek::SigningKey::from_bytes(&[8u8; 32]).verifying_key(),
    )
    .unwrap();
    let other_key = Temp::new(&other.encode());
    let (code, out) = check("inclusion", &serde_json::to_string(&b).unwrap(), &other_key);
    assert_eq!((code, out.starts_with("FAILED")), (1, true), "{out}");

    // The checkpoint alone.
    let (code, out) = check("checkpoint", &b.checkpoint, &key);
    assert_eq!(code, 0, "{out}");
}

fn consistency(old_log: &Log, old: &[u64], new_log: &Log, new: &[u64]) -> ConsistencyBundle {
    ConsistencyBundle {
        old: old_log.signed(old),
        new: new_log.signed(new),
        proofs: (0..old.len())
            .map(|k| ShardProof {
                shard: k as u32,
                proof: consistency_proof(&new_log.leaf_hashes(k, new[k]), old[k] as usize)
                    .unwrap()
                    .iter()
                    .map(hex::encode)
                    .collect(),
            })
            .collect(),
    }
}

#[test]
fn consistency_holds_per_shard_and_fails_for_a_log_truncated_and_regrown() {
    let log = Log::new(&SIZES, "a");
    let key = Temp::new(&verifier().encode());
    let old = [2, 11, 3];
    let b = consistency(&log, &old, &log, &SIZES);
    let (code, out) = check("consistency", &serde_json::to_string(&b).unwrap(), &key);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "ok: shard 0 size 4 extends size 2 of pivault.test/audit\n\
         ok: shard 1 size 11 extends size 11 of pivault.test/audit\n\
         ok: shard 2 size 7 extends size 3 of pivault.test/audit\n"
    );

    // Shard 1 truncated to 6 and regrown to its old size 11 with other entries: same sizes,
    // another root.
    let other = Log::new(&SIZES, "b");
    let mut regrown = Log::new(&SIZES, "a");
    for i in 6..11 {
        regrown.shards[1][i] = other.shards[1][i].clone();
    }
    let b = consistency(&log, &SIZES, &regrown, &SIZES);
    let (code, out) = check("consistency", &serde_json::to_string(&b).unwrap(), &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAILED"), "{out}");
    // From an old checkpoint where shard 1 had 8 entries: the regrown tree's proof does not
    // lead back to the old root.
    let b = consistency(&log, &[2, 8, 3], &regrown, &SIZES);
    let (code, out) = check("consistency", &serde_json::to_string(&b).unwrap(), &key);
    assert_eq!(code, 1, "{out}");
    // While the untouched prefix of 6 still is one.
    let b = consistency(&log, &[2, 6, 3], &regrown, &SIZES);
    let (code, out) = check("consistency", &serde_json::to_string(&b).unwrap(), &key);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn garbage_arguments_are_a_usage_error() {
    let key = Temp::new(&verifier().encode());
    let f = Temp::new("{}");
    assert_eq!(run(&[]).0, 2);
    assert_eq!(run(&["inclusion"]).0, 2);
    assert_eq!(run(&["inclusion", f.path()]).0, 2);
    assert_eq!(run(&["frobnicate", f.path(), "--key", key.path()]).0, 2);
    assert_eq!(run(&["inclusion", f.path(), "--key", "not a key"]).0, 2);
    assert_eq!(
        run(&["inclusion", "/nonexistent/pivault", "--key", key.path()]).0,
        2
    );
    // Readable but not a bundle: the proof does not hold.
    let (code, out) = run(&["inclusion", f.path(), "--key", key.path()]);
    assert_eq!((code, out.starts_with("FAILED")), (1, true));
}
