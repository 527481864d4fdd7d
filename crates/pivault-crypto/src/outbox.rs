//! Sealing of outbox payloads: messages waiting in the durable outbox (DSR codes, notices,
//! erasure notices to recipients) hold PI — addresses, names, bodies, one-time codes — and
//! are stored encrypted at rest under a key of their own.
//!
//! Invariants: the 32-byte key is HKDF-derived (RFC 5869, info [`HKDF_INFO_OUTBOX`]) from
//! the master secret, kept in a zeroizing buffer and printed by no `Debug`. Each sealing
//! draws a fresh random 96-bit nonce (NIST SP 800-38D §8.2.2).

use std::fmt;

use rand::RngCore;
use ring::aead::{self, LessSafeKey, UnboundKey, AES_256_GCM};
use zeroize::Zeroizing;

use crate::dek::{hkdf_expand, NONCE_LEN, TAG_LEN};
use crate::{CryptoError, MasterSecret};

/// HKDF info for the outbox sealing key.
pub const HKDF_INFO_OUTBOX: &str = "pivault outbox v1";
/// Bytes [`OutboxSealer::seal`] adds to the plaintext: nonce (12) + tag (16) = 28.
pub const OUTBOX_SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Seals and opens outbox payloads with AES-256-GCM (FIPS 197, NIST SP 800-38D) under a
/// 256-bit key derived from the master secret.
///
/// Obtained from [`KeyRing::outbox_sealer`](crate::KeyRing::outbox_sealer). The key is a
/// pure function of the master secret, so payloads sealed before a restart still open;
/// after a master-secret change they no longer do (the outbox is short-lived state).
/// `Send + Sync`; deliberately not `Clone`, and `Debug` prints no key material. The raw
/// key is zeroized on drop (*ring*'s expanded AES key schedule is not, as for
/// [`Dek`](crate::Dek)).
pub struct OutboxSealer {
    raw: Zeroizing<[u8; 32]>,
    key: LessSafeKey,
}

impl fmt::Debug for OutboxSealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxSealer").finish_non_exhaustive()
    }
}

impl OutboxSealer {
    pub(crate) fn derive(master: &MasterSecret) -> OutboxSealer {
        let mut raw = Zeroizing::new([0u8; 32]);
        hkdf_expand(master.bytes(), HKDF_INFO_OUTBOX.as_bytes(), &mut raw[..]);
        OutboxSealer::from_raw(raw)
    }

    fn from_raw(raw: Zeroizing<[u8; 32]>) -> OutboxSealer {
        let key = UnboundKey::new(&AES_256_GCM, &raw[..])
            .unwrap_or_else(|_| unreachable!("32-byte key is valid for AES-256-GCM"));
        OutboxSealer {
            raw,
            key: LessSafeKey::new(key),
        }
    }

    /// A second handle on the same key (its copy is zeroized on its own drop).
    pub(crate) fn duplicate(&self) -> OutboxSealer {
        OutboxSealer::from_raw(Zeroizing::new(*self.raw))
    }

    /// Seals `plaintext`, authenticating `aad` with it (e.g. the outbox row id and kind, so
    /// a sealed payload cannot be moved to another row).
    ///
    /// Output (length = plaintext length + [`OUTBOX_SEAL_OVERHEAD`]):
    /// `nonce (12) ‖ ciphertext (= plaintext length) ‖ tag (16)`. The nonce is drawn from
    /// the thread-local CSPRNG (`rand::rng()`, seeded from the OS); NIST SP 800-38D §8.3
    /// allows 2^32 random-nonce sealings per key.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if `plaintext` exceeds GCM's limit of 2^36 − 32 bytes
    /// (NIST SP 800-38D §5.2.1.1).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(plaintext.len() + OUTBOX_SEAL_OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut out[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Malformed("plaintext too long for GCM"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a value made by [`OutboxSealer::seal`] with the same `aad`. The plaintext
    /// comes back in a buffer that is zeroized on drop.
    ///
    /// # Errors
    /// * [`CryptoError::Malformed`] if `sealed` is shorter than [`OUTBOX_SEAL_OVERHEAD`].
    /// * [`CryptoError::Decrypt`] if authentication fails: other `aad`, another key (a key
    ///   ring from another master secret), or altered bytes.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < OUTBOX_SEAL_OVERHEAD {
            return Err(CryptoError::Malformed("sealed outbox payload too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce =
            aead::Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Decrypt)?;
        let tag = aead::Tag::try_from(tag).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        self.key
            .open_in_place_separate_tag(nonce, aead::Aad::from(aad), tag, &mut buf[..], 0..)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(buf)
    }
}
