//! Cipher suites for field encryption.

use std::fmt;
use std::str::FromStr;

use crate::CryptoError;

/// AEAD cipher suite used to seal fields with a [`Dek`](crate::Dek).
///
/// Every sealed field starts with the suite's one-byte id ([`Suite::id`]) so a reader
/// knows which cipher to use.
///
/// * [`Suite::Aes256Gcm`] — AES-256 (FIPS 197) in GCM (NIST SP 800-38D), 256-bit key,
///   96-bit nonce, 128-bit tag. Suite byte `0x01`. The default.
/// * [`Suite::Sm4Gcm`] — SM4 (GB/T 32907-2016, 128-bit block and key) in GCM
///   (NIST SP 800-38D; also GB/T 36624-2018), 96-bit nonce, 128-bit tag, for deployments
///   that must use Chinese commercial cryptography. Suite byte `0x02`. The 128-bit SM4
///   key is derived from the 256-bit DEK with HKDF-SHA256 (RFC 5869, info
///   `"pivault sm4-gcm dek v1"`), so the same DEK never keys two ciphers with the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Suite {
    /// AES-256-GCM (suite byte `0x01`, name `"aes-256-gcm"`).
    #[default]
    Aes256Gcm,
    /// SM4-GCM (suite byte `0x02`, name `"sm4-gcm"`).
    Sm4Gcm,
}

impl Suite {
    /// Both suites, in suite-byte order.
    pub const ALL: [Suite; 2] = [Suite::Aes256Gcm, Suite::Sm4Gcm];

    /// Stable lower-case name: `"aes-256-gcm"` or `"sm4-gcm"` (used in config files).
    pub fn as_str(self) -> &'static str {
        match self {
            Suite::Aes256Gcm => "aes-256-gcm",
            Suite::Sm4Gcm => "sm4-gcm",
        }
    }

    /// Parses a name produced by [`Suite::as_str`] (ASCII case-insensitive, surrounding
    /// whitespace ignored). Returns `None` for anything else.
    pub fn parse(name: &str) -> Option<Suite> {
        let name = name.trim();
        Suite::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }

    /// The one-byte suite id written as byte 0 of every sealed field
    /// (`0x01` AES-256-GCM, `0x02` SM4-GCM).
    pub fn id(self) -> u8 {
        match self {
            Suite::Aes256Gcm => 0x01,
            Suite::Sm4Gcm => 0x02,
        }
    }

    /// Inverse of [`Suite::id`]; `None` for an unknown byte.
    pub fn from_id(id: u8) -> Option<Suite> {
        match id {
            0x01 => Some(Suite::Aes256Gcm),
            0x02 => Some(Suite::Sm4Gcm),
            _ => None,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Suite {
    type Err = CryptoError;

    /// Same as [`Suite::parse`].
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if the name is neither `"aes-256-gcm"` nor `"sm4-gcm"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Suite::parse(s).ok_or(CryptoError::Malformed(
            "unknown cipher suite (expected \"aes-256-gcm\" or \"sm4-gcm\")",
        ))
    }
}
