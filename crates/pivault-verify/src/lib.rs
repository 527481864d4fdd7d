//! `pivault-verify`: checks what pivault's audit log shows, offline, with only the log's
//! public key. No database, no network: a regulator or a PI subject can build this crate
//! alone and check that an audit entry they were shown is in the log (an inclusion proof),
//! and that a later checkpoint extends an earlier one (a consistency proof), against
//! Ed25519-signed checkpoints (issue 15; PIPL Art. 54 compliance audits; policy §8.1).
//!
//! The log is sharded: shards `0..n`, each an append-only RFC 9162 Merkle tree of audit
//! entries. One signed C2SP checkpoint commits to every shard's head `(shard, size, root)`
//! through extension lines `shard <k> <size> <base64 root>` and a root over the heads (see
//! [`shards`]); a checkpoint without shard lines is one tree, shard 0. An entry's inclusion is
//! proven in its shard's tree at the size and root the checkpoint states for that shard; a
//! later checkpoint extends an earlier one when every shard of the earlier one extends.
//!
//! - [`merkle`]: RFC 9162 §2.1 hashing, inclusion and consistency proofs, and the arithmetic
//!   of a log that stores its perfect subtrees ([`merkle::Frontier`],
//!   [`merkle::inclusion_ranges`], [`merkle::consistency_ranges`]).
//! - [`note`]: C2SP signed notes and checkpoints.
//! - [`shards`]: sharded checkpoints ([`ShardHead`], [`Checkpoint::for_shards`],
//!   [`Checkpoint::shards`]).
//! - [`entry`]: the decoder of pivault's audit-entry bytes ([`AuditLeaf`]).
//! - [`InclusionBundle`] and [`ConsistencyBundle`]: the JSON a log hands out, checked by
//!   their `verify`.

pub mod entry;
pub mod merkle;
pub mod note;
pub mod shards;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use entry::AuditLeaf;
pub use merkle::{Frontier, Hash, ProofError};
pub use note::{Checkpoint, NoteError, NoteVerifier};
pub use shards::{shard_head_leaf, shards_root, ShardHead};

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bundle's JSON or one of its encodings is malformed, or it does not match its
    /// checkpoints (a shard they do not hold, a missing shard proof).
    #[error("the bundle is malformed: {0}")]
    Malformed(&'static str),
    /// The checkpoint's signature or body (including its shard lines) was refused.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The proof does not lead to the checkpoint's root.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// An audit entry with the proof that it is in the log: the leaf's bytes as the log hashed
/// them, its shard and its index in that shard, the audit path, and the signed checkpoint
/// whose head of that shard it leads to. Serialized as JSON:
/// `{"leaf": base64, "shard": k, "index": n, "proof": [hex, …], "checkpoint": note}`
/// (`shard` may be absent: shard 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionBundle {
    /// The leaf's bytes (standard base64), exactly as hashed into the tree.
    pub leaf: String,
    /// The shard whose tree holds the leaf (0 when absent from the JSON).
    #[serde(default)]
    pub shard: u32,
    /// Its leaf index in that shard's tree (0-based).
    pub index: u64,
    /// The audit path from the leaf up (RFC 9162 §2.1.3), each hash as 64 hex digits.
    pub proof: Vec<String>,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
}

/// What a verified [`InclusionBundle`] establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The checkpoint the entry is in.
    pub checkpoint: Checkpoint,
    /// The shard whose tree holds the entry.
    pub shard: u32,
    /// The entry's leaf index in that shard.
    pub index: u64,
    /// The entry's bytes.
    pub leaf: Vec<u8>,
    /// The entry decoded ([`AuditLeaf::decode`]), `None` when the bytes are not a pivault
    /// audit entry.
    pub entry: Option<AuditLeaf>,
}

fn hashes(hex_list: &[String]) -> Result<Vec<Hash>, VerifyError> {
    hex_list
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or(VerifyError::Malformed("proof hash"))
        })
        .collect()
}

fn head(heads: &[ShardHead], shard: u32) -> Option<&ShardHead> {
    heads.iter().find(|h| h.shard == shard)
}

impl InclusionBundle {
    /// Parses a bundle from JSON.
    ///
    /// # Errors
    /// [`VerifyError::Malformed`].
    pub fn from_json(s: &str) -> Result<Self, VerifyError> {
        serde_json::from_str(s).map_err(|_| VerifyError::Malformed("json"))
    }

    /// Checks the checkpoint's signature by `verifier`, takes the head of shard `shard` from
    /// it ([`Checkpoint::shards`]), then checks that the leaf's hash and the audit path lead
    /// to that shard's root at its size (RFC 9162 §2.1.3.2). When the leaf decodes as an
    /// [`AuditLeaf`], its own shard and index (the encoding's suffix) must be the bundle's.
    ///
    /// # Errors
    /// [`VerifyError`] naming the part that failed: [`VerifyError::Note`] for the signature or
    /// the shard lines, [`VerifyError::Malformed`]`("shard not in checkpoint")`,
    /// `("entry names another shard")` or `("entry names another index")`,
    /// [`VerifyError::Proof`] for the path.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<Verified, VerifyError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier)?;
        let heads = checkpoint.shards()?;
        let shard =
            *head(&heads, self.shard).ok_or(VerifyError::Malformed("shard not in checkpoint"))?;
        let leaf = B64
            .decode(&self.leaf)
            .map_err(|_| VerifyError::Malformed("leaf"))?;
        let proof = hashes(&self.proof)?;
        merkle::verify_inclusion(
            self.index,
            shard.size,
            &merkle::leaf_hash(&leaf),
            &proof,
            &shard.root,
        )?;
        let entry = AuditLeaf::decode(&leaf);
        if let Some(e) = &entry {
            if e.shard != self.shard {
                return Err(VerifyError::Malformed("entry names another shard"));
            }
            if e.idx.is_some_and(|i| i != self.index) {
                return Err(VerifyError::Malformed("entry names another index"));
            }
        }
        Ok(Verified {
            checkpoint,
            shard: self.shard,
            index: self.index,
            leaf,
            entry,
        })
    }
}

/// The consistency proof of one shard's tree between two checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardProof {
    /// The shard.
    pub shard: u32,
    /// The RFC 9162 §2.1.4 consistency proof from the shard's size in the old checkpoint to
    /// its size in the new one, each hash as 64 hex digits.
    pub proof: Vec<String>,
}

/// A consistency proof between two signed checkpoints of one sharded log, one proof per shard:
/// `{"old": note, "new": note, "proofs": [{"shard": k, "proof": [hex, …]}, …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyBundle {
    /// The earlier checkpoint.
    pub old: String,
    /// The later checkpoint.
    pub new: String,
    /// One consistency proof per shard of the earlier checkpoint (proofs for other shards are
    /// ignored).
    pub proofs: Vec<ShardProof>,
}

impl ConsistencyBundle {
    /// Parses a bundle from JSON.
    ///
    /// # Errors
    /// [`VerifyError::Malformed`].
    pub fn from_json(s: &str) -> Result<Self, VerifyError> {
        serde_json::from_str(s).map_err(|_| VerifyError::Malformed("json"))
    }

    /// Checks both signatures, that both name the same origin, that the later checkpoint holds
    /// every shard of the earlier one, and that each such shard's later tree extends its
    /// earlier tree (RFC 9162 §2.1.4.2, sizes and roots from [`Checkpoint::shards`]): a shard
    /// truncated and regrown fails here. Shards new in the later checkpoint need no proof.
    /// Returns the (earlier, later) checkpoints.
    ///
    /// # Errors
    /// [`VerifyError`] naming the part that failed: [`VerifyError::Note`] for a signature or
    /// shard lines; [`VerifyError::Malformed`]`("origins differ")`,
    /// `("shard missing from new checkpoint")`, `("missing shard proof")` or
    /// `("duplicate shard proof")`; [`VerifyError::Proof`] for a shard's proof.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<(Checkpoint, Checkpoint), VerifyError> {
        let old = Checkpoint::open(&self.old, verifier)?;
        let new = Checkpoint::open(&self.new, verifier)?;
        if old.origin != new.origin {
            return Err(VerifyError::Malformed("origins differ"));
        }
        let new_heads = new.shards()?;
        for o in old.shards()? {
            let n = head(&new_heads, o.shard)
                .ok_or(VerifyError::Malformed("shard missing from new checkpoint"))?;
            let mut found = self.proofs.iter().filter(|p| p.shard == o.shard);
            let p = found
                .next()
                .ok_or(VerifyError::Malformed("missing shard proof"))?;
            if found.next().is_some() {
                return Err(VerifyError::Malformed("duplicate shard proof"));
            }
            merkle::verify_consistency(o.size, n.size, &o.root, &n.root, &hashes(&p.proof)?)?;
        }
        Ok((old, new))
    }
}
