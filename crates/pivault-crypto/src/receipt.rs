//! Deletion-receipt signatures: Ed25519 (RFC 8032) under a key derived from the master
//! secret, so a PI subject can check a receipt offline with the published public key.
//!
//! Invariants: the 32-byte seed is HKDF-derived (RFC 5869, info
//! [`HKDF_INFO_RECEIPT_SIGNING`]) and lives only inside `ed25519_dalek::SigningKey`,
//! which zeroizes it on drop; no `Debug`/`Display`/serde impl prints it. Verification is
//! strict (RFC 8032 §5.1.7 plus rejection of small-order keys and non-canonical `R`), so a
//! receipt has exactly one valid signature encoding per key.
//!
//! The same key signs outgoing webhooks (erasure notices to other PI handlers, PIPL
//! Art. 47) over a domain-separated input ([`webhook_signing_input`]) that starts with a
//! label no receipt starts with, so a webhook signature can never be passed off as a
//! receipt signature or the other way round.

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
/// Label that starts every webhook signing input, newline included.
pub const WEBHOOK_SIGNING_LABEL: &[u8] = b"pivault-webhook v1\n";

/// The exact bytes a webhook signature covers:
/// `"pivault-webhook v1\n" ‖ timestamp in decimal ASCII (optional `-`, no leading zeros,
/// no `+`) ‖ "\n" ‖ body`.
///
/// `timestamp` is the Unix time in seconds sent in the `X-Pivault-Timestamp` header;
/// `body` the request body byte for byte. A recipient rebuilds this from the header and
/// the raw body, then checks the signature with [`verify_webhook`]. Binding the timestamp
/// lets it refuse replays older than its tolerance. The label domain-separates these
/// signatures from deletion-receipt signatures made with the same key (receipt payloads
/// are JSON objects, which start with `{`, never with `p`).
pub fn webhook_signing_input(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let ts = timestamp.to_string();
    let mut v = Vec::with_capacity(WEBHOOK_SIGNING_LABEL.len() + ts.len() + 1 + body.len());
    v.extend_from_slice(WEBHOOK_SIGNING_LABEL);
    v.extend_from_slice(ts.as_bytes());
    v.push(b'\n');
    v.extend_from_slice(body);
    v
}

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

    /// Ed25519 signature (RFC 8032 §5.1.6, 64 bytes `R ‖ S`) of
    /// [`webhook_signing_input`]`(timestamp, body)`, for the `X-Pivault-Signature` header
    /// of a webhook (base64 it there). Same key as receipts; the input's label keeps the
    /// two uses apart. Deterministic.
    pub fn sign_webhook(&self, timestamp: i64, body: &[u8]) -> [u8; RECEIPT_SIGNATURE_LEN] {
        self.sign(&webhook_signing_input(timestamp, body))
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

/// Checks a webhook signature made by [`ReceiptSigner::sign_webhook`]: strict Ed25519
/// verification (as [`verify_receipt`]) of `sig` over
/// [`webhook_signing_input`]`(timestamp, body)`. Checking that `timestamp` is recent is the
/// caller's job.
///
/// # Errors
/// * [`CryptoError::Malformed`] if `public_key` is not a valid compressed Edwards point.
/// * [`CryptoError::BadSignature`] if the signature does not verify (wrong key, altered
///   body, timestamp or signature, or a receipt signature presented as a webhook one).
pub fn verify_webhook(
    public_key: &[u8; RECEIPT_PUBLIC_KEY_LEN],
    timestamp: i64,
    body: &[u8],
    sig: &[u8; RECEIPT_SIGNATURE_LEN],
) -> Result<(), CryptoError> {
    verify_receipt(public_key, &webhook_signing_input(timestamp, body), sig)
}
