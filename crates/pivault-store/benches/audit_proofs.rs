//! Issue 15 "inclusion proof generation p99 ≤ 2 ms at 10 million entries", on SQLite.
//!
//! Not a test: `cargo test` does not run it. Appends `--entries` audit entries (default 10
//! million) through the real commit path (`WriteTx::commit`: keyed links, the shard's Merkle
//! frontier, and in each entry the perfect subtrees its leaf completes), 5,000 per
//! transaction, into one shard of a
//! SQLite file kept between runs (`$TMPDIR/pivault-audit-proofs-<entries>.db`; delete it to
//! rebuild). Then times `--reps` inclusion proofs of random entries against the shard's
//! current size, each what `Vault::inclusion_proof` does after it has its checkpoint: the
//! entry by number and the subtrees of its RFC 9162 audit path, from the entries that carry
//! them, read on one pooled connection (`Store::audit_entry_with_nodes`), then the folds. Every 100th proof is checked with `pivault_verify::merkle::verify_inclusion`
//! against the head's root (not timed). Prints the append rate, and p50 / p99 / max.
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-bench cargo bench -p pivault-store --bench audit_proofs -- [--entries N] [--reps N]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use pivault_domain::audit::AuditRecord;
use pivault_store::Store;
use pivault_verify::merkle::{
    fold_subtrees, inclusion_ranges, leaf_hash, perfect_subtrees, verify_inclusion,
};
use std::time::Instant;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn key() -> pivault_crypto::AuditChainKey {
    pivault_crypto::KeyRing::new(
        pivault_crypto::MasterSecret::from_bytes([7u8; 32]),
        pivault_crypto::Suite::Aes256Gcm,
    )
    .audit_chain_key()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let entries = arg("--entries", 10_000_000);
    let reps = arg("--reps", 10_000);
    let path = std::env::temp_dir().join(format!("pivault-audit-proofs-{entries}.db"));
    let store = Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.set_audit_key(key());
    let have = u64::try_from(store.audit_len().await.unwrap()).unwrap();
    if have < entries {
        let started = Instant::now();
        let mut n = have;
        while n < entries {
            let batch = (entries - n).min(5_000);
            let mut tx = store.begin_audit(1_700_000_000).await.unwrap();
            for i in 0..batch {
                tx.audit(AuditRecord {
                    at: 1_700_000_000 + i64::try_from(n + i).unwrap(),
                    actor: "billing".into(),
                    action: "fields.read".into(),
                    subject_id: Some(format!("subject-{}", (n + i) % 100_003)),
                    purpose: Some("service".into()),
                    categories: "user.contact.mobile,user.name".into(),
                    outcome: "allow".into(),
                    reason: Some("contract".into()),
                    legal_basis: Some("contract".into()),
                    policy_version: "2024-12-04".into(),
                    ..AuditRecord::default()
                });
            }
            tx.commit().await.unwrap();
            n += batch;
            if n % 1_000_000 == 0 {
                eprintln!("  {n} entries");
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "appended {} entries in {secs:.1} s ({:.0} entries/s through WriteTx::commit)",
            entries - have,
            (entries - have) as f64 / secs
        );
    }
    let head = store.audit_shard_heads().await.unwrap().remove(0);
    let size = u64::try_from(head.size).unwrap();
    let root = head.root().unwrap();
    println!("shard 0: {size} entries; timing {reps} inclusion proofs");
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut times = Vec::with_capacity(usize::try_from(reps).unwrap());

    for r in 0..reps {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let seq = i64::try_from(rng % size).unwrap() + 1;
        let t = Instant::now();
        // What `Vault::inclusion_proof` does once it holds its checkpoint: the entry and its
        // path's stored subtrees on one connection, then the folds.
        let (entry, nodes) = store
            .audit_entry_with_nodes(seq, |e| {
                inclusion_ranges(u64::try_from(e.idx).unwrap(), size)
                    .unwrap()
                    .iter()
                    .flat_map(|&(a, b)| perfect_subtrees(a, b))
                    .collect()
            })
            .await
            .unwrap()
            .unwrap();
        let index = u64::try_from(entry.idx).unwrap();
        let proof: Vec<[u8; 32]> = inclusion_ranges(index, size)
            .unwrap()
            .iter()
            .map(|&(a, b)| {
                let hs: Vec<[u8; 32]> = perfect_subtrees(a, b).iter().map(|k| nodes[k]).collect();
                fold_subtrees(&hs).unwrap()
            })
            .collect();
        let bytes = entry.canonical_bytes();
        times.push(t.elapsed());
        if r % 100 == 0 {
            verify_inclusion(index, size, &leaf_hash(&bytes), &proof, &root).unwrap();
        }
    }
    times.sort();

    let q = |p: f64| times[((times.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;

    println!(
        "inclusion proof at {size} entries: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} proofs, path length {})",
        q(0.5),
        q(0.99),
        q(1.0),
        times.len(),
        inclusion_ranges(0, size).unwrap().len()
    );
}
