//! Helpers shared by the integration tests: an audit-entry encoder written from the spec (the
//! crate only decodes), a fixed signing key, and a small sharded log.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::SigningKey;
use pivault_verify::merkle::{inclusion_proof, leaf_hash, Frontier, Hash};
use pivault_verify::note::{sign_note, Checkpoint, NoteVerifier};
use pivault_verify::{AuditLeaf, ShardHead};

/// Encodes `e` as pivault does: version 1, seq, at, the fields, and the shard suffix for
/// shards other than 0.
pub fn encode(e: &AuditLeaf) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as u64).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    fn o(out: &mut Vec<u8>, v: &Option<String>) {
        match v {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                s(out, v);
            }
        }
    }
    let mut out = vec![1u8];
    out.extend_from_slice(&e.seq.to_be_bytes());
    out.extend_from_slice(&e.at.to_be_bytes());
    s(&mut out, &e.actor);
    s(&mut out, &e.action);
    o(&mut out, &e.subject_id);
    o(&mut out, &e.purpose);
    s(&mut out, &e.categories);
    s(&mut out, &e.outcome);
    o(&mut out, &e.reason);
    o(&mut out, &e.legal_basis);
    s(&mut out, &e.policy_version);
    o(&mut out, &e.request_id);
    o(&mut out, &e.detail);
    if e.shard != 0 {
        out.extend_from_slice(&e.shard.to_be_bytes());
        out.extend_from_slice(&e.idx.unwrap().to_be_bytes());
    }
    out
}

/// A plausible entry: entry `idx` of shard `shard`, log-wide `seq`.
pub fn entry(seq: i64, shard: u32, idx: u64, action: &str) -> AuditLeaf {
    AuditLeaf {
        seq,
        at: 1_700_000_000 + seq,
        actor: format!("svc-{}", seq % 3),
        action: action.to_string(),
        subject_id: (seq % 2 == 0).then(|| format!("subj-{seq}")),
        purpose: Some("kyc".into()),
        categories: "name,id_number".into(),
        outcome: if seq % 5 == 0 { "deny" } else { "allow" }.into(),
        reason: None,
        legal_basis: (seq % 3 == 0).then(|| "PIPL Art. 13(2)".into()),
        policy_version: "v7".into(),
        request_id: Some(format!("req-{seq}")),
        detail: (seq % 4 == 1).then(|| "héllo \"quoted\"\nline".into()),
        shard,
        idx: (shard != 0).then_some(idx),
    }
}

pub const ORIGIN: &str = "pivault.test/audit";
pub const KEY_NAME: &str = "pivault.test";

pub fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

pub fn verifier() -> NoteVerifier {
    NoteVerifier::new(KEY_NAME, key().verifying_key()).unwrap()
}

/// A sharded log: each shard's entries' bytes.
pub struct Log {
    pub shards: Vec<Vec<Vec<u8>>>,
}

impl Log {
    /// `sizes[k]` entries in shard k, actions named after `tag`.
    pub fn new(sizes: &[u64], tag: &str) -> Self {
        let mut seq = 0;
        let shards = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                (0..n)
                    .map(|i| {
                        seq += 1;
                        encode(&entry(seq, k as u32, i, &format!("{tag}-{k}-{i}")))
                    })
                    .collect()
            })
            .collect();
        Self { shards }
    }

    pub fn leaf_hashes(&self, shard: usize, size: u64) -> Vec<Hash> {
        self.shards[shard][..size as usize]
            .iter()
            .map(|e| leaf_hash(e))
            .collect()
    }

    /// The heads at `sizes` (a prefix of each shard), roots through a [`Frontier`].
    pub fn heads(&self, sizes: &[u64]) -> Vec<ShardHead> {
        sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| {
                let mut f = Frontier::new();
                for h in self.leaf_hashes(k, n) {
                    f.push(h);
                }
                ShardHead {
                    shard: k as u32,
                    size: n,
                    root: f.root(),
                }
            })
            .collect()
    }

    pub fn signed(&self, sizes: &[u64]) -> String {
        let c = Checkpoint::for_shards(ORIGIN, &self.heads(sizes));
        sign_note(&c.text(), KEY_NAME, &key()).unwrap()
    }

    pub fn inclusion(&self, shard: usize, index: u64, sizes: &[u64]) -> Vec<String> {
        inclusion_proof(&self.leaf_hashes(shard, sizes[shard]), index as usize)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect()
    }
}
