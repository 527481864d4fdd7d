//! Deletion-receipt signatures: Ed25519 (RFC 8032) under a key derived from the master
//! secret, so a PI subject can check a receipt offline with the published public key.
//!
//! Invariants: the 32-byte seed is HKDF-derived (RFC 5869, info
//! [`HKDF_INFO_RECEIPT_SIGNING`]) and lives only inside `ed25519_dalek::SigningKey`,
//! which zeroizes it on drop; no `Debug`/`Display`/serde impl prints it. Verification is
//! strict (RFC 8032 §5.1.7 plus rejection of small-order keys and non-canonical `R`), so a
//! receipt has exactly one valid signature encoding per key.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ring::digest;
use zeroize::Zeroizing;

use crate::dek::hkdf_expand;
use crate::{CryptoError, MasterSecret};

/// HKDF info for the receipt-signing seed.
pub const HKDF_INFO_RECEIPT_SIGNING: &str = "pivault receipt-signing v1";

/// Length of an Ed25519 public key in bytes (RFC 8032 §5.1.5).
pub const RECEIPT_PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature in bytes (RFC 8032 §5.1.6).
pub const RECEIPT_SIGNATURE_LEN: usize = 64;

/// Signs deletion receipts with Ed25519 (RFC 8032, PureEdDSA, no pre-hash, no context).
///
/// Obtained from [`KeyRing::receipt_signer`](crate::KeyRing::receipt_signer). The key is
/// a pure function of the master secret, so it survives restarts and changes only when
/// the master secret does. The secret seed is zeroized when the signer is dropped.
/// `Send + Sync`; deliberately not `Clone` or `Debug`-printing the key.
pub struct ReceiptSigner {
    key: SigningKey,
}

impl ReceiptSigner {
    pub(crate) fn derive(master: &MasterSecret) -> ReceiptSigner {
        let mut seed = Zeroizing::new([0u8; 32]);
        hkdf_expand(
            master.bytes(),
            HKDF_INFO_RECEIPT_SIGNING.as_bytes(),
            &mut seed[..],
        );
        ReceiptSigner {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// A second handle on the same key (the copy is zeroized on its own drop).
    pub(crate) fn duplicate(&self) -> ReceiptSigner {
        ReceiptSigner {
            key: self.key.clone(),
        }
    }

    /// Ed25519 signature of `msg` (RFC 8032 §5.1.6): 64 bytes `R ‖ S`. Deterministic —
    /// the same key and message always give the same signature.
    pub fn sign(&self, msg: &[u8]) -> [u8; RECEIPT_SIGNATURE_LEN] {
        self.key.sign(msg).to_bytes()
    }

    /// The 32-byte compressed Edwards point public key (RFC 8032 §5.1.5) that
    /// [`verify_receipt`] takes. Safe to publish.
    pub fn public_key(&self) -> [u8; RECEIPT_PUBLIC_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// Public label of the key: the first 16 lower-case hex characters (64 bits) of
    /// SHA-256 (FIPS 180-4) of [`ReceiptSigner::public_key`]. Put it in every receipt so
    /// the subject can pick the right published key after a rotation.
    pub fn key_id(&self) -> String {
        let d = digest::digest(&digest::SHA256, &self.public_key());
        hex::encode(&d.as_ref()[..8])
    }
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiptSigner")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// Checks an Ed25519 signature made by [`ReceiptSigner::sign`] (RFC 8032 §5.1.7, strict:
/// small-order public keys and non-canonical signatures are refused as well).
///
/// `public_key` is 32 bytes as from [`ReceiptSigner::public_key`]; `sig` is 64 bytes.
///
/// # Errors
/// * [`CryptoError::Malformed`] if `public_key` is not a valid compressed Edwards point.
/// * [`CryptoError::BadSignature`] if the signature does not verify for `msg` under
///   `public_key` (wrong key, altered message or signature).
pub fn verify_receipt(
    public_key: &[u8; RECEIPT_PUBLIC_KEY_LEN],
    msg: &[u8],
    sig: &[u8; RECEIPT_SIGNATURE_LEN],
) -> Result<(), CryptoError> {
    let vk = VerifyingKey::from_bytes(public_key)
        .map_err(|_| CryptoError::Malformed("receipt public key is not an Ed25519 point"))?;
    let sig = Signature::from_bytes(sig);
    vk.verify_strict(msg, &sig)
        .map_err(|_| CryptoError::BadSignature)
}
