//! Audit hash chain: the keyed format (HMAC-SHA256, issue 9) and the unkeyed SHA-256 format
//! of before, kept so that chains written before can be verified and re-keyed.

use ring::{digest, hmac};
use zeroize::Zeroizing;

use crate::dek::hkdf_expand;
use crate::MasterSecret;

/// The `prev` hash of the first entry of every audit chain: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// Name of the keyed chain format, as recorded in the database (`vault_meta.chain_format`).
pub const CHAIN_FORMAT: &str = "hmac-sha256-v1";
/// Name of the unkeyed format of before issue 9 ([`chain_hash`]).
pub const LEGACY_CHAIN_FORMAT: &str = "sha256-v0";
/// HKDF info for the audit chain key.
pub const HKDF_INFO_AUDIT_CHAIN: &str = "pivault audit-chain v1";

/// Domain label that starts the HMAC input of every chain link.
const LINK_LABEL: &[u8] = b"pivault audit link v1";
/// Domain label that starts the HMAC input of every head MAC (same length as [`LINK_LABEL`],
/// so neither input can be read as the other).
const HEAD_LABEL: &[u8] = b"pivault audit head v1";

/// Next link of the **legacy, unkeyed** audit chain (format [`LEGACY_CHAIN_FORMAT`]):
/// `SHA-256(prev (32 bytes) ‖ u64 big-endian byte length of entry (8 bytes) ‖ entry)`.
///
/// Anyone who can write the database can recompute it, so it proves nothing against them; it
/// is kept only to verify chains written before issue 9 before they are re-keyed with
/// [`AuditChainKey::link`]. New entries never use it.
pub fn chain_hash(prev: &[u8; 32], entry: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(prev);
    ctx.update(&(entry.len() as u64).to_be_bytes());
    ctx.update(entry);
    let d = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The audit chain key: an HMAC-SHA256 key (RFC 2104) derived from the master secret with
/// HKDF-SHA256 (RFC 5869, empty salt, info `"pivault audit-chain v1"`), see
/// [`KeyRing::audit_chain_key`](crate::KeyRing::audit_chain_key).
///
/// Chain links and the head MAC are computed under it, so someone who can write the database
/// but does not hold the master secret cannot recompute the chain after changing, removing or
/// reordering entries, nor move the head. Cloning copies the key schedule (as
/// [`ring::hmac::Key`] does); there is no `Debug` output of key bytes.
#[derive(Clone)]
pub struct AuditChainKey(hmac::Key);

impl std::fmt::Debug for AuditChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditChainKey(..)")
    }
}

impl AuditChainKey {
    pub(crate) fn derive(master: &MasterSecret) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        hkdf_expand(master.bytes(), HKDF_INFO_AUDIT_CHAIN.as_bytes(), &mut k[..]);
        AuditChainKey(hmac::Key::new(hmac::HMAC_SHA256, &k[..]))
    }

    /// Next link of the keyed chain (format [`CHAIN_FORMAT`]):
    /// `HMAC-SHA256(chain key, "pivault audit link v1" ‖ prev (32) ‖ u64 BE length of entry ‖
    /// entry)` (RFC 2104). Start from [`GENESIS`]; `entry` is the record's canonical encoding.
    pub fn link(&self, prev: &[u8; 32], entry: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(LINK_LABEL);
        ctx.update(prev);
        ctx.update(&(entry.len() as u64).to_be_bytes());
        ctx.update(entry);
        to_32(ctx.sign().as_ref())
    }

    /// Whether `stored` is the keyed link of `entry` after `prev`, compared in constant time.
    pub fn verify_link(&self, prev: &[u8; 32], entry: &[u8], stored: &[u8]) -> bool {
        crate::ct_eq(&self.link(prev, entry), stored)
    }

    /// MAC of the chain head: `HMAC-SHA256(chain key, "pivault audit head v1" ‖ seq as i64 BE
    /// ‖ u64 BE length of hash ‖ hash)` (RFC 2104). Stored beside the head, it makes moving
    /// the head (e.g. back over deleted entries) detectable without an outside anchor — except
    /// by putting back a head row copied earlier, which only a checkpoint kept outside the
    /// database can reveal.
    pub fn head_mac(&self, seq: i64, hash: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(HEAD_LABEL);
        ctx.update(&seq.to_be_bytes());
        ctx.update(&(hash.len() as u64).to_be_bytes());
        ctx.update(hash);
        to_32(ctx.sign().as_ref())
    }

    /// Whether `mac` is [`AuditChainKey::head_mac`] of (`seq`, `hash`), in constant time.
    pub fn verify_head(&self, seq: i64, hash: &[u8], mac: &[u8]) -> bool {
        crate::ct_eq(&self.head_mac(seq, hash), mac)
    }
}

impl AuditChainKey {
    /// MAC of audit shard `shard`'s head (issue 15): for shard 0 exactly
    /// [`AuditChainKey::head_mac`] of (`size`, `hash`), so the linear chain's head of before
    /// stays valid as shard 0's; for any other shard
    /// `HMAC-SHA256(chain key, "pivault audit head v1" ‖ size i64 BE ‖ u64 BE length of hash ‖
    /// hash ‖ "shard" ‖ shard u32 BE)`, so a head cannot be moved to another shard.
    pub fn shard_head_mac(&self, shard: u32, size: i64, hash: &[u8]) -> [u8; 32] {
        if shard == 0 {
            return self.head_mac(size, hash);
        }
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(HEAD_LABEL);
        ctx.update(&size.to_be_bytes());
        ctx.update(&(hash.len() as u64).to_be_bytes());
        ctx.update(hash);
        ctx.update(b"shard");
        ctx.update(&shard.to_be_bytes());
        to_32(ctx.sign().as_ref())
    }

    /// Whether `mac` is [`AuditChainKey::shard_head_mac`] of (`shard`, `size`, `hash`), in
    /// constant time.
    pub fn verify_shard_head(&self, shard: u32, size: i64, hash: &[u8], mac: &[u8]) -> bool {
        crate::ct_eq(&self.shard_head_mac(shard, size, hash), mac)
    }

    /// The audit shard of a PI subject among `shards` (≥ 1): the first 8 bytes, big-endian,
    /// of `HMAC-SHA256(chain key, "pivault audit shard v1" ‖ subject id)` modulo `shards`.
    /// Keyed, so nobody without the master secret can aim a subject at a chosen shard.
    pub fn shard_of(&self, subject_id: &str, shards: u32) -> u32 {
        if shards <= 1 {
            return 0;
        }
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(b"pivault audit shard v1");
        ctx.update(subject_id.as_bytes());
        let tag = ctx.sign();
        let mut b = [0u8; 8];
        b.copy_from_slice(&tag.as_ref()[..8]);
        u32::try_from(u64::from_be_bytes(b) % u64::from(shards)).unwrap_or(0)
    }
}

/// HKDF info for the audit checkpoint signing key.
pub const HKDF_INFO_CHECKPOINT: &str = "pivault audit checkpoint v1";

/// The Ed25519 key (RFC 8032) that signs audit checkpoints (C2SP signed notes, issue 15):
/// its 32-byte seed is derived from the master secret with HKDF-SHA256 (RFC 5869, info
/// `"pivault audit checkpoint v1"`), so it survives restarts and every instance of one vault
/// signs with the same key. Not `Debug`-printing the key.
pub struct CheckpointSigner {
    key: ed25519_dalek::SigningKey,
}

impl CheckpointSigner {
    pub(crate) fn derive(master: &MasterSecret) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        hkdf_expand(
            master.bytes(),
            HKDF_INFO_CHECKPOINT.as_bytes(),
            &mut seed[..],
        );
        Self {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// The signing key, for `pivault_verify::note::sign_note`.
    pub fn signing_key(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    /// A second handle on the same key.
    pub(crate) fn duplicate(&self) -> Self {
        Self {
            key: self.key.clone(),
        }
    }
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointSigner(..)")
    }
}

fn to_32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(b);
    out
}
