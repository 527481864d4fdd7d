//! One-time codes for identity verification of data subject requests (policy §7.2).
//!
//! The code itself is uniformly random decimal digits from the OS CSPRNG; the vault stores
//! only [`KeyRing::code_digest`](crate::KeyRing::code_digest) of it (HMAC-SHA256 under a
//! key derived from the master secret, bound to the request id), and compares digests with
//! [`digests_equal`] in constant time. Expiry (10 minutes) and the attempt limit (3) are
//! the caller's job: this module is pure computation.

use subtle::ConstantTimeEq;

use crate::secret::os_random;

/// HKDF info for the one-time-code HMAC key.
pub const HKDF_INFO_OTP: &str = "pivault otp v1";

/// Fewest digits [`generate_code`] accepts (policy §7.2: at least 6).
pub const OTP_MIN_DIGITS: u32 = 6;
/// Most digits [`generate_code`] accepts (10⁹ still fits a `u32` draw).
pub const OTP_MAX_DIGITS: u32 = 9;

/// A new one-time code: exactly `digits` ASCII decimal digits (leading zeros kept), drawn
/// uniformly from `0 ..= 10^digits − 1` with the OS CSPRNG.
///
/// Uniformity comes from rejection sampling: 32-bit draws at or above the largest multiple
/// of `10^digits` below 2³² are thrown away, so no value is more likely than another
/// (no modulo bias).
///
/// # Panics
/// If `digits` is outside `6..=9` ([`OTP_MIN_DIGITS`]..=[`OTP_MAX_DIGITS`]), or if the
/// OS random number generator fails.
pub fn generate_code(digits: u32) -> String {
    assert!(
        (OTP_MIN_DIGITS..=OTP_MAX_DIGITS).contains(&digits),
        "one-time codes have 6 to 9 digits"
    );
    let modulus: u32 = 10u32.pow(digits);
    // Largest multiple of `modulus` that fits in 2^32; draws at or above it are rejected.
    let limit = (1u64 << 32) - ((1u64 << 32) % u64::from(modulus));
    loop {
        let mut b = zeroize::Zeroizing::new([0u8; 4]);
        os_random(&mut b[..]);
        let x = u32::from_le_bytes(*b);
        if u64::from(x) < limit {
            return format!("{:0width$}", x % modulus, width = digits as usize);
        }
    }
}

/// Constant-time equality of two digests (time independent of the bytes' contents;
/// different lengths compare unequal, and the length itself is not hidden).
pub fn digests_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
