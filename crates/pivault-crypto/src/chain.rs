//! Audit hash chain.

use ring::digest;

/// The `prev` hash of the first entry of every audit chain: 32 zero bytes.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// Next link of the audit chain:
/// `SHA-256(prev (32 bytes) ‖ u64 big-endian byte length of entry (8 bytes) ‖ entry)`.
///
/// The length prefix makes the encoding unambiguous. Start from [`GENESIS`]. A verifier
/// recomputes the chain entry by entry and compares with the stored hashes; changing,
/// inserting or removing any entry changes every later hash.
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
