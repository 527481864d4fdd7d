//! Sharded checkpoints: one signed checkpoint over several independent RFC 9162 trees.
//!
//! pivault appends audit entries to `n` shards (shards `0..n`, each its own append-only
//! Merkle tree) so that writers do not contend on one tree. A checkpoint then commits to every
//! shard's head `(shard, size, root)`:
//!
//! - each head is a leaf, [`shard_head_leaf`]:
//!   `"pivault shard head v1" || shard (u32 BE) || size (u64 BE) || root (32 bytes)`;
//! - the checkpoint's root is [`shards_root`], the RFC 9162 §2.1.1 Merkle tree hash of those
//!   leaves' [`leaf_hash`]es, heads in shard order; its size is the sum of the shard sizes;
//! - one extension line per shard, in shard order (C2SP tlog-checkpoint extension lines):
//!   `shard <k> <size> <root, standard base64>`.
//!
//! A checkpoint with no `shard ` line is a single tree: shard 0, with the checkpoint's own size
//! and root, so plain C2SP checkpoints still verify.

use crate::merkle::{leaf_hash, root, Hash};
use crate::note::{Checkpoint, NoteError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The domain-separation prefix of a shard-head leaf.
const SHARD_HEAD_V1: &[u8] = b"pivault shard head v1";

/// One shard's head in a checkpoint: its number, its tree size (leaves) and its RFC 9162 root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardHead {
    /// The shard number (shards of a checkpoint are numbered `0..n`).
    pub shard: u32,
    /// The number of leaves in the shard's tree.
    pub size: u64,
    /// The shard tree's Merkle tree hash (RFC 9162 §2.1.1).
    pub root: Hash,
}

/// The leaf bytes committing to a shard head (hashed with [`leaf_hash`] into
/// [`shards_root`]): `b"pivault shard head v1" || shard (u32 BE) || size (u64 BE) || root`,
/// 21 + 4 + 8 + 32 = 65 bytes.
#[must_use]
pub fn shard_head_leaf(h: &ShardHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(SHARD_HEAD_V1.len() + 4 + 8 + 32);
    out.extend_from_slice(SHARD_HEAD_V1);
    out.extend_from_slice(&h.shard.to_be_bytes());
    out.extend_from_slice(&h.size.to_be_bytes());
    out.extend_from_slice(&h.root);
    out
}

fn sorted(heads: &[ShardHead]) -> Vec<ShardHead> {
    let mut v = heads.to_vec();
    v.sort_by_key(|h| h.shard);
    v
}

/// The root of a sharded checkpoint: the RFC 9162 §2.1.1 Merkle tree hash over
/// `leaf_hash(shard_head_leaf(h))` for the heads sorted by shard (SHA-256 of the empty string
/// for no head). Does not check the numbering; [`Checkpoint::shards`] does.
#[must_use]
pub fn shards_root(heads: &[ShardHead]) -> Hash {
    let leaves: Vec<Hash> = sorted(heads)
        .iter()
        .map(|h| leaf_hash(&shard_head_leaf(h)))
        .collect();
    root(&leaves)
}

/// Parses a decimal without sign or leading zero (as the checkpoint size line).
fn decimal<T: std::str::FromStr>(s: &str) -> Option<T> {
    (!s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0')))
    .then(|| s.parse().ok())
    .flatten()
}

fn parse_line(line: &str) -> Option<ShardHead> {
    let mut it = line.strip_prefix("shard ")?.split(' ');
    let (Some(shard), Some(size), Some(r), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    Some(ShardHead {
        shard: decimal(shard)?,
        size: decimal(size)?,
        root: B64
            .decode(r)
            .ok()
            .and_then(|r| <[u8; 32]>::try_from(r.as_slice()).ok())?,
    })
}

impl Checkpoint {
    /// The checkpoint (unsigned: sign [`Checkpoint::text`] with [`crate::note::sign_note`]) of
    /// a log of shards with heads `heads` (any order): size the sum of the shard sizes
    /// (saturating at `u64::MAX`), root [`shards_root`], and one extension line per shard in
    /// shard order, `shard <k> <size> <base64 root>`. The heads should be numbered `0..n`
    /// without gap or duplicate, or [`Checkpoint::shards`] refuses the result.
    #[must_use]
    pub fn for_shards(origin: &str, heads: &[ShardHead]) -> Checkpoint {
        let heads = sorted(heads);
        Checkpoint {
            origin: origin.to_string(),
            size: heads.iter().fold(0u64, |a, h| a.saturating_add(h.size)),
            root: shards_root(&heads),
            extensions: heads
                .iter()
                .map(|h| format!("shard {} {} {}", h.shard, h.size, B64.encode(h.root)))
                .collect(),
        }
    }

    /// The shard heads the checkpoint commits to, in shard order, from its extension lines
    /// `shard <k> <size> <base64 root>` (other extension lines are ignored), checked against
    /// the checkpoint: shards numbered `0..n` in ascending order, without gap or duplicate,
    /// sizes summing to `size`, and [`shards_root`] equal to `root`.
    ///
    /// A checkpoint with no `shard ` line is one tree: `[ShardHead { shard: 0, size, root }]`.
    ///
    /// # Errors
    /// [`NoteError::CheckpointMalformed`]`("shard line")` for a line that is not
    /// `shard <u32> <u64> <base64 of 32 bytes>` (decimals without leading zeros);
    /// [`NoteError::ShardsMismatch`] naming the check that failed.
    pub fn shards(&self) -> Result<Vec<ShardHead>, NoteError> {
        let heads = self
            .extensions
            .iter()
            .filter(|e| e.starts_with("shard "))
            .map(|e| parse_line(e).ok_or(NoteError::CheckpointMalformed("shard line")))
            .collect::<Result<Vec<_>, _>>()?;
        if heads.is_empty() {
            return Ok(vec![ShardHead {
                shard: 0,
                size: self.size,
                root: self.root,
            }]);
        }
        for w in heads.windows(2) {
            if w[1].shard == w[0].shard {
                return Err(NoteError::ShardsMismatch("duplicate shard"));
            }
            if w[1].shard < w[0].shard {
                return Err(NoteError::ShardsMismatch("shards not in ascending order"));
            }
        }
        let mut total = 0u64;
        for (i, h) in heads.iter().enumerate() {
            if u64::from(h.shard) != i as u64 {
                return Err(NoteError::ShardsMismatch("shards not numbered 0..n"));
            }
            total = total
                .checked_add(h.size)
                .ok_or(NoteError::ShardsMismatch("shard sizes overflow"))?;
        }
        if total != self.size {
            return Err(NoteError::ShardsMismatch(
                "shard sizes do not sum to the checkpoint size",
            ));
        }
        if shards_root(&heads) != self.root {
            return Err(NoteError::ShardsMismatch(
                "shards root differs from the checkpoint root",
            ));
        }
        Ok(heads)
    }
}
