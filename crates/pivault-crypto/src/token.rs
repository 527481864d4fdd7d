//! API tokens and constant-time comparison.

use ring::digest;
use subtle::ConstantTimeEq;

use crate::secret::os_random;

/// Prefix of every API token (lets secret scanners recognise leaked tokens).
pub const API_TOKEN_PREFIX: &str = "pv_";

/// A new API token: `"pv_"` followed by 64 lower-case hex characters encoding 32 bytes
/// (256 bits) from the OS CSPRNG; 67 characters in all.
///
/// Show it to its owner once and store only [`token_hash`] of it.
///
/// # Panics
/// If the OS random number generator fails.
pub fn new_api_token() -> String {
    let mut b = zeroize::Zeroizing::new([0u8; 32]);
    os_random(&mut b[..]);
    let mut s = String::with_capacity(API_TOKEN_PREFIX.len() + 64);
    s.push_str(API_TOKEN_PREFIX);
    s.push_str(&hex::encode(&b[..]));
    s
}

/// SHA-256 (FIPS 180-4) of the token's UTF-8 bytes, 32 bytes. Tokens carry 256 bits of
/// entropy, so a fast unsalted hash is enough; compare stored hashes with [`ct_eq`].
pub fn token_hash(token: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Constant-time equality of two byte strings (time independent of where they differ;
/// slices of different lengths are unequal, and the length itself is not hidden).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// `buf` filled from the OS CSPRNG.
///
/// # Errors
/// `None` when the operating system's random number generator fails (callers answer with an
/// internal error, `rng_unavailable`).
#[must_use]
pub fn try_random_bytes<const N: usize>() -> Option<[u8; N]> {
    use rand::TryRngCore as _;
    let mut b = [0u8; N];
    rand::rngs::OsRng.try_fill_bytes(&mut b).ok().map(|()| b)
}
