//! Cryptography for pivault: the key ring, field sealing, blind indexes, API tokens and
//! the audit hash chain. Pure computation plus reading/writing the master-secret file;
//! no database, HTTP or async runtime.
//!
//! # What it owns
//!
//! * [`MasterSecret`] — the 256-bit root secret, loaded from a hex file.
//! * [`KeyRing`] — derives (HKDF-SHA256, RFC 5869) a key-encryption key (KEK) and a
//!   blind-index key from the master secret; generates per-subject data keys ([`Dek`]) and
//!   wraps/unwraps them under the KEK with AES-256-GCM, or SM4-GCM under the SM4 suite
//!   (envelope encryption, [`WrappedDek`]). Retired
//!   master secrets can be added so old wraps still open during rotation.
//! * [`Dek`] — seals and opens field values with AES-256-GCM or SM4-GCM
//!   (NIST SP 800-38D; SM4 per GB/T 32907-2016), random 96-bit nonce, and associated
//!   data [`Aad`] binding subject, category, field and key id.
//! * [`DekCache`] — a bounded LRU of unwrapped DEKs.
//! * [`KeyRing::blind_index`] — HMAC-SHA256 (RFC 2104) of an already-normalized value for
//!   exact-match lookup.
//! * [`KeyRing::receipt_signer`], [`ReceiptSigner`], [`verify_receipt`] — Ed25519
//!   (RFC 8032) signatures on deletion receipts, key derived from the master secret; with
//!   [`ReceiptSigner::sign_webhook`] / [`verify_webhook`] the same key signs outgoing
//!   webhooks over a domain-separated input ([`webhook_signing_input`]).
//! * [`KeyRing::outbox_sealer`], [`OutboxSealer`] — AES-256-GCM sealing of the durable
//!   outbox's message payloads under their own derived key.
//! * [`generate_code`], [`KeyRing::code_digest`], [`digests_equal`] — one-time codes for
//!   DSR identity verification (policy §7.2): uniform random digits, stored only as a keyed
//!   digest bound to the request, compared in constant time.
//! * [`new_api_token`], [`token_hash`], [`ct_eq`] — API tokens.
//! * [`AuditChainKey`], [`GENESIS`] — the audit chain, keyed: HMAC-SHA256 (RFC 2104) links
//!   and head MAC under a key derived from the master secret, so that a writer without the
//!   key cannot rewrite it; [`chain_hash`] — the unkeyed SHA-256 chain of before, kept to
//!   verify and re-key old chains.
//! * [`KeyRing::pseudonymizer`], [`Pseudonymizer`] — de-identification (GB/T 35273-2020
//!   §3.15): keyed, deterministic, reversible tokens `pz1.…` (SIV-style AES-256-GCM, nonce
//!   from HMAC-SHA256), so joins still work. Not anonymization: the key holder reverses them.
//! * [`KeyRing::key_check_value`] — the value the database records so that a wrong master
//!   key is refused before anything is written.
//!
//! # Invariants
//!
//! * Secrets (master secret, KEK, DEKs, opened plaintext) live in zeroizing buffers and have
//!   no `Clone`/`Debug`/`Display`/serde impls that could copy or print them. (Exception,
//!   documented on [`Dek`]: *ring* does not zeroize its expanded AES key schedule.)
//! * No error message, `Debug` output or panic contains key bytes, plaintext or
//!   ciphertext; only key ids, paths and fixed text.
//! * Every sealed field is `suite byte ‖ nonce (12) ‖ ciphertext ‖ tag (16)` and opens only
//!   with the same DEK and the same [`Aad`]. Every wrapped DEK names its KEK id.
//! * Long-lived secrets come from the OS CSPRNG; per-field nonces from the thread-local
//!   CSPRNG (seeded from the OS), never from a syscall per field.
//! * Crypto-shredding: destroying a subject's wrapped DEK (and evicting it from every
//!   [`DekCache`]) makes all its sealed fields unreadable. Blind indexes are computed under
//!   a global key and must be deleted separately on erasure.

mod cache;
mod chain;
mod dek;
mod error;
mod keyring;
mod otp;
mod outbox;
mod plaintext;
mod pseudonym;
mod receipt;
mod secret;
mod suite;
mod token;

pub use cache::DekCache;
pub use chain::{
    chain_hash, AuditChainKey, CheckpointSigner, CHAIN_FORMAT, GENESIS, HKDF_INFO_AUDIT_CHAIN,
    HKDF_INFO_CHECKPOINT, LEGACY_CHAIN_FORMAT,
};
pub use dek::{Aad, Dek, DEK_LEN, NONCE_LEN, SEAL_OVERHEAD, TAG_LEN};
pub use error::CryptoError;
pub use keyring::{
    GenerationState, KeyGeneration, KeyKind, KeyRing, WrappedDek, HKDF_INFO_BLIND_INDEX,
    HKDF_INFO_BLIND_INDEX_GENERATIONS, HKDF_INFO_KEK, HKDF_INFO_KEK_GENERATIONS, HKDF_INFO_KEK_SM4,
    HKDF_INFO_KEY_CHECK, WRAPPED_DEK_LEN, WRAPPED_DEK_SM4_LEN,
};
pub use otp::{digests_equal, generate_code, HKDF_INFO_OTP, OTP_MAX_DIGITS, OTP_MIN_DIGITS};
pub use outbox::{OutboxSealer, HKDF_INFO_OUTBOX, OUTBOX_SEAL_OVERHEAD};
pub use plaintext::{wipe_vec, Plaintext};
pub use pseudonym::{Pseudonymizer, HKDF_INFO_PSEUDONYM, PSEUDONYM_PREFIX};
pub use receipt::{
    verify_receipt, verify_webhook, webhook_signing_input, ReceiptSigner,
    HKDF_INFO_RECEIPT_SIGNING, RECEIPT_PUBLIC_KEY_LEN, RECEIPT_SIGNATURE_LEN,
    WEBHOOK_SIGNING_LABEL,
};
pub use secret::{MasterSecret, MASTER_SECRET_LEN};
pub use suite::Suite;
pub use token::{ct_eq, new_api_token, token_hash, try_random_bytes, API_TOKEN_PREFIX};

/// Re-export so callers can name the buffer type returned by [`Dek::open`].
pub use zeroize::Zeroizing;
