//! The one error type of this crate.

/// Everything that can go wrong in `pivault-crypto`.
///
/// No variant ever carries plaintext, ciphertext or key bytes: messages name only
/// key ids (which are public labels), file paths and fixed descriptions, so an error
/// can be logged or returned to a client without leaking personal information.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Authenticated decryption failed: wrong key, wrong associated data, or the
    /// ciphertext / tag was tampered with. AEAD gives no finer distinction
    /// (NIST SP 800-38D §7.2 returns only FAIL), and neither do we.
    #[error("decryption failed (wrong key, wrong associated data, or tampered ciphertext)")]
    Decrypt,
    /// The key id named by a ciphertext or wrapped key is not held by this key ring or DEK.
    #[error("unknown key id {key_id:?}")]
    UnknownKey {
        /// The key id that was asked for (a public label such as `kek-…` or `dek-…`).
        key_id: String,
    },
    /// A key file could not be read, created or parsed. The message names the path and
    /// the problem, never the key bytes.
    #[error("key file {0}")]
    KeyFile(String),
    /// A signature (Ed25519, RFC 8032) did not verify: wrong key, or the message or
    /// signature was altered.
    #[error("signature verification failed")]
    BadSignature,
    /// Input has the wrong shape (too short, unknown suite byte, bad length, …).
    #[error("malformed input: {0}")]
    Malformed(&'static str),
}
