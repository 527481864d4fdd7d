//! `pivault-verify`: checks what pivault's audit log shows, offline, with only the log's
//! public key. No database, no network: a regulator or a PI subject can build this crate
//! alone and check that an audit entry they were shown is in the log (an inclusion proof),
//! and that a later checkpoint extends an earlier one (a consistency proof), against
//! Ed25519-signed checkpoints (issue 15; PIPL Art. 54 compliance audits; policy §8.1).
//!
//! - [`merkle`]: RFC 9162 §2.1 hashing, inclusion and consistency proofs.
//! - [`note`]: C2SP signed notes and checkpoints.
//! - [`InclusionBundle`]: the JSON a log hands out with an entry, checked by
//!   [`InclusionBundle::verify`].

pub mod merkle;
pub mod note;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

pub use merkle::{Hash, ProofError};
pub use note::{Checkpoint, NoteError, NoteVerifier};

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bundle's JSON or one of its encodings is malformed.
    #[error("the bundle is malformed: {0}")]
    Malformed(&'static str),
    /// The checkpoint's signature or body was refused.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The proof does not lead to the checkpoint's root.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// An audit entry with the proof that it is in the log: the leaf's bytes as the log hashed
/// them, its index, the audit path, and the signed checkpoint whose root it leads to.
/// Serialized as JSON: `{"leaf": base64, "index": n, "proof": [hex, …], "checkpoint": note}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionBundle {
    /// The leaf's bytes (standard base64), exactly as hashed into the tree.
    pub leaf: String,
    /// Its index in the tree (0-based).
    pub index: u64,
    /// The audit path from the leaf up, each hash as 64 hex digits.
    pub proof: Vec<String>,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
}

/// What a verified bundle establishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The checkpoint the entry is in.
    pub checkpoint: Checkpoint,
    /// The entry's index.
    pub index: u64,
    /// The entry's bytes.
    pub leaf: Vec<u8>,
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

impl InclusionBundle {
    /// Parses a bundle from JSON.
    ///
    /// # Errors
    /// [`VerifyError::Malformed`].
    pub fn from_json(s: &str) -> Result<Self, VerifyError> {
        serde_json::from_str(s).map_err(|_| VerifyError::Malformed("json"))
    }

    /// Checks the checkpoint's signature by `verifier`, then that the leaf's hash and the
    /// audit path lead to its root at its size (RFC 9162 §2.1.3.2).
    ///
    /// # Errors
    /// [`VerifyError`] naming the part that failed.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<Verified, VerifyError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier)?;
        let leaf = B64
            .decode(&self.leaf)
            .map_err(|_| VerifyError::Malformed("leaf"))?;
        let proof = hashes(&self.proof)?;
        merkle::verify_inclusion(
            self.index,
            checkpoint.size,
            &merkle::leaf_hash(&leaf),
            &proof,
            &checkpoint.root,
        )?;
        Ok(Verified {
            checkpoint,
            index: self.index,
            leaf,
        })
    }
}

/// A consistency proof between two signed checkpoints of one log:
/// `{"old": note, "new": note, "proof": [hex, …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyBundle {
    /// The earlier checkpoint.
    pub old: String,
    /// The later checkpoint.
    pub new: String,
    /// The consistency proof, each hash as 64 hex digits.
    pub proof: Vec<String>,
}

impl ConsistencyBundle {
    /// Checks both signatures, that both name the same origin, and that the later tree extends
    /// the earlier one (RFC 9162 §2.1.4.2): a log truncated and regrown fails here.
    ///
    /// # Errors
    /// [`VerifyError`] naming the part that failed.
    pub fn verify(&self, verifier: &NoteVerifier) -> Result<(Checkpoint, Checkpoint), VerifyError> {
        let old = Checkpoint::open(&self.old, verifier)?;
        let new = Checkpoint::open(&self.new, verifier)?;
        if old.origin != new.origin {
            return Err(VerifyError::Malformed("origins differ"));
        }
        merkle::verify_consistency(
            old.size,
            new.size,
            &old.root,
            &new.root,
            &hashes(&self.proof)?,
        )?;
        Ok((old, new))
    }
}
