//! The audit log as a transparency log (issue 15): signed checkpoints, inclusion proofs and
//! consistency proofs, in the formats `pivault-verify` checks offline.
//!
//! - A **checkpoint** is a C2SP `tlog-checkpoint` signed note: origin, the entries over all
//!   shards, the RFC 9162 root over the shard heads, and one extension line per shard
//!   (`shard K SIZE ROOT`). It is signed with Ed25519 (RFC 8032) under a key derived from the
//!   master secret ([`pivault_crypto::CheckpointSigner`]); the verifier key is published at
//!   `GET /v1/audit/key`. Checkpoints are kept (`audit_checkpoints`), made at an interval by
//!   `serve` and on demand.
//! - An **inclusion proof** of an entry is its canonical bytes, its shard and leaf index, the
//!   audit path in its shard's tree (RFC 9162 §2.1.3) and a checkpoint that covers it; the
//!   path's nodes are read from the stored perfect subtrees, O(log n) rows in one query.
//! - A **consistency proof** between two checkpoints holds one RFC 9162 §2.1.4 proof per shard.
//!
//! Signing a checkpoint is not audited: it changes no PI and decides nothing, and an entry per
//! checkpoint would make every checkpoint stale at once.

use crate::error::CoreError;
use crate::vault::Vault;
use base64::Engine;
use pivault_store::CheckpointRow;
use pivault_verify::merkle::{
    consistency_ranges, fold_subtrees, inclusion_ranges, perfect_subtrees, Hash,
};
use pivault_verify::{
    Checkpoint, ConsistencyBundle, InclusionBundle, NoteVerifier, ShardHead, ShardProof,
};

/// The origin line (and the verifier key's name) of this vault's checkpoints:
/// `pivault/audit/` and the first 16 hex digits of the checkpoint public key, so two vaults'
/// logs are never confused.
fn origin(public: &[u8; 32]) -> String {
    format!("pivault/audit/{}", hex::encode(&public[..8]))
}

/// The checkpoint verifier of the vault whose key ring is `keys`.
pub(crate) fn verifier_for(keys: &pivault_crypto::KeyRing) -> Result<NoteVerifier, CoreError> {
    let signer = keys.checkpoint_signer();
    let public = signer.signing_key().verifying_key();
    NoteVerifier::new(&origin(&public.to_bytes()), public)
        .map_err(|_| CoreError::Conflict("audit_key_unusable"))
}

/// The hashes of the given leaf ranges of `shard`, each folded from its stored perfect
/// subtrees (one query for all of them).
async fn range_hashes(
    vault: &Vault,
    shard: u32,
    ranges: &[(u64, u64)],
) -> Result<Vec<Hash>, CoreError> {
    let keys: Vec<(u32, u64)> = ranges
        .iter()
        .flat_map(|&(a, b)| perfect_subtrees(a, b))
        .collect();
    let nodes = vault.store.audit_nodes(shard, &keys).await?;
    fold_ranges(ranges, &nodes)
}

/// Each range's hash folded from `nodes`, its stored perfect subtrees (RFC 9162 §2.1.1).
fn fold_ranges(
    ranges: &[(u64, u64)],
    nodes: &std::collections::HashMap<(u32, u64), Hash>,
) -> Result<Vec<Hash>, CoreError> {
    ranges
        .iter()
        .map(|&(a, b)| {
            let hs = perfect_subtrees(a, b)
                .iter()
                .map(|k| nodes.get(k).copied())
                .collect::<Option<Vec<Hash>>>()
                .ok_or(CoreError::Conflict("audit_tree_incomplete"))?;
            fold_subtrees(&hs).ok_or(CoreError::Conflict("audit_tree_incomplete"))
        })
        .collect()
}

fn hexes(hs: &[Hash]) -> Vec<String> {
    hs.iter().map(hex::encode).collect()
}

impl Vault {
    /// This vault's checkpoint verifier key in C2SP note form, `<name>+<key id>+<base64>`
    /// (`GET /v1/audit/key`; what `pivault-verify --key` takes). Public.
    ///
    /// # Errors
    /// `Conflict` (`audit_key_unusable`) if the key cannot be named (never for a derived key).
    pub fn audit_verifier_key(&self) -> Result<String, CoreError> {
        Ok(self.audit_verifier()?.encode())
    }

    fn audit_verifier(&self) -> Result<NoteVerifier, CoreError> {
        verifier_for(self.sealer.keys())
    }

    /// Signs and keeps a checkpoint of every shard's current head (after bringing lagging
    /// trees up to date). With `only_if_grown`, nothing is signed when the latest checkpoint
    /// already covers as many entries (the interval task); returns that one then.
    ///
    /// # Errors
    /// Store failure; `Conflict` (`audit_tree_mismatch`) when a shard's stored frontier does
    /// not decode.
    pub async fn sign_checkpoint(&self, only_if_grown: bool) -> Result<CheckpointRow, CoreError> {
        let now = self.clock.now().unix_timestamp();
        let mut heads = self.store.audit_shard_heads().await?;
        if heads.iter().any(|h| h.tree_size != h.size) {
            self.store.build_audit_trees(now).await?;
            heads = self.store.audit_shard_heads().await?;
        }
        let total: i64 = heads.iter().map(|h| h.tree_size).sum();
        if only_if_grown {
            if let Some(last) = self.store.latest_checkpoint().await? {
                if last.size == total {
                    return Ok(last);
                }
            }
        }
        let mut list = Vec::with_capacity(heads.len());
        for h in &heads {
            let root = h.root().ok_or(CoreError::Conflict("audit_tree_mismatch"))?;
            list.push(ShardHead {
                shard: h.shard,
                size: u64::try_from(h.tree_size).unwrap_or(0),
                root,
            });
        }
        // Shards are numbered 0..n; a gap (never made) is an empty shard.
        let n = list.iter().map(|h| h.shard + 1).max().unwrap_or(1);
        for s in 0..n {
            if !list.iter().any(|h| h.shard == s) {
                list.push(ShardHead {
                    shard: s,
                    size: 0,
                    root: pivault_verify::merkle::root(&[]),
                });
            }
        }
        let v = self.audit_verifier()?;
        let cp = Checkpoint::for_shards(v.name(), &list);
        let signer = self.sealer.keys().checkpoint_signer();
        let note = pivault_verify::note::sign_note(&cp.text(), v.name(), signer.signing_key())
            .map_err(|_| CoreError::Conflict("audit_checkpoint_unsignable"))?;
        let mut tx = self.store.begin_audit(now).await?;
        let id = tx.put_checkpoint(now, total, &note).await?;
        tx.commit().await?;
        Ok(CheckpointRow {
            id,
            at: now,
            size: total,
            note,
        })
    }

    /// The newest checkpoint, if one was signed.
    ///
    /// # Errors
    /// Store failure.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRow>, CoreError> {
        Ok(self.store.latest_checkpoint().await?)
    }

    /// The inclusion proof of audit entry `seq` against checkpoint `checkpoint` (its number),
    /// or, without one, against the newest checkpoint that covers it, signing a new one when
    /// none does yet. No authorization here: the caller decides who may see which entries.
    ///
    /// # Errors
    /// `NotFound` (`audit_entry`, `audit_checkpoint`); `Conflict`
    /// (`entry_not_in_checkpoint`) when the named checkpoint is older than the entry;
    /// store failure.
    pub async fn inclusion_proof(
        &self,
        seq: i64,
        checkpoint: Option<i64>,
    ) -> Result<InclusionBundle, CoreError> {
        let v = self.audit_verifier()?;
        let mut cp = match checkpoint {
            Some(id) => Some(
                self.store
                    .audit_checkpoint(id)
                    .await?
                    .ok_or(CoreError::NotFound("audit_checkpoint"))?,
            ),
            None => self.latest_checkpoint().await?,
        };
        // At most twice: without a named checkpoint, a newer one is signed when the newest
        // does not cover the entry yet.
        for _ in 0..2 {
            let heads = match &cp {
                Some(c) => open_shards(&v, c)?,
                None => Vec::new(),
            };
            let size_of = |shard: u32| {
                heads
                    .iter()
                    .find(|h| h.shard == shard)
                    .map_or(0, |h| h.size)
            };
            // The entry and its path's stored nodes on one connection.
            let (entry, nodes) = self
                .store
                .audit_entry_with_nodes(seq, |e| {
                    let index = u64::try_from(e.idx).unwrap_or(0);
                    inclusion_ranges(index, size_of(e.shard))
                        .unwrap_or_default()
                        .iter()
                        .flat_map(|&(a, b)| perfect_subtrees(a, b))
                        .collect()
                })
                .await?
                .ok_or(CoreError::NotFound("audit_entry"))?;
            let index = u64::try_from(entry.idx).unwrap_or(0);
            let size = size_of(entry.shard);
            let Some(ranges) = inclusion_ranges(index, size) else {
                if checkpoint.is_some() {
                    return Err(CoreError::Conflict("entry_not_in_checkpoint"));
                }
                cp = Some(self.sign_checkpoint(false).await?);
                continue;
            };
            let path = fold_ranges(&ranges, &nodes)?;
            let note = cp.map(|c| c.note).unwrap_or_default();
            return Ok(InclusionBundle {
                leaf: base64::engine::general_purpose::STANDARD.encode(entry.canonical_bytes()),
                shard: entry.shard,
                index,
                proof: hexes(&path),
                checkpoint: note,
            });
        }
        Err(CoreError::Conflict("entry_not_in_checkpoint"))
    }

    /// The consistency proof that checkpoint `to` extends checkpoint `from` (numbers; `from`
    /// ≤ `to`), one RFC 9162 §2.1.4 proof per shard of `from`.
    ///
    /// # Errors
    /// `NotFound` (`audit_checkpoint`); `Invalid` (`checkpoint_order`) when `from` > `to`;
    /// `Conflict` (`audit_checkpoint_shrunk`) when a shard of `to` is smaller than in `from`;
    /// store failure.
    pub async fn consistency_proof(
        &self,
        from: i64,
        to: i64,
    ) -> Result<ConsistencyBundle, CoreError> {
        if from > to {
            return Err(CoreError::invalid(
                "from",
                "checkpoint_order",
                "`from` must not be after `to`",
            ));
        }
        let get = |id| async move {
            self.store
                .audit_checkpoint(id)
                .await?
                .ok_or(CoreError::NotFound("audit_checkpoint"))
        };
        let (old, new) = (get(from).await?, get(to).await?);
        let v = self.audit_verifier()?;
        let old_heads = open_shards(&v, &old)?;
        let new_heads = open_shards(&v, &new)?;
        let mut proofs = Vec::with_capacity(old_heads.len());
        for o in &old_heads {
            let n = new_heads
                .iter()
                .find(|h| h.shard == o.shard)
                .map_or(0, |h| h.size);
            let ranges = consistency_ranges(o.size, n)
                .ok_or(CoreError::Conflict("audit_checkpoint_shrunk"))?;
            proofs.push(ShardProof {
                shard: o.shard,
                proof: hexes(&range_hashes(self, o.shard, &ranges).await?),
            });
        }
        Ok(ConsistencyBundle {
            old: old.note,
            new: new.note,
            proofs,
        })
    }
}

/// The shard heads of a kept checkpoint, its signature checked.
fn open_shards(v: &NoteVerifier, cp: &CheckpointRow) -> Result<Vec<ShardHead>, CoreError> {
    Checkpoint::open(&cp.note, v)
        .and_then(|c| c.shards())
        .map_err(|_| CoreError::Conflict("audit_checkpoint_invalid"))
}
