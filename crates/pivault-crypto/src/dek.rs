//! Data-encryption keys and field sealing.

use std::fmt;
use std::sync::OnceLock;

use pivault_sm4::aead::{AeadInPlace, KeyInit, Nonce, Tag};
use pivault_sm4::Sm4Gcm;
use rand::RngCore;
use ring::aead::{self, LessSafeKey, UnboundKey, AES_256_GCM};
use ring::hkdf;
use zeroize::Zeroizing;

use crate::plaintext::Plaintext;

use crate::{CryptoError, Suite};

/// DEK length in bytes (256 bits).
pub const DEK_LEN: usize = 32;
/// GCM nonce length in bytes (96 bits, NIST SP 800-38D §8.2.2 random construction).
pub const NONCE_LEN: usize = 12;
/// GCM authentication tag length in bytes (128 bits).
pub const TAG_LEN: usize = 16;
/// Bytes a sealed field adds to its plaintext: suite byte + nonce + tag = 29.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// Bytes of an [`Aad`] that fit the stack buffer used on the hot path.
const AAD_STACK: usize = 256;
const HKDF_INFO_SM4: &[u8] = b"pivault sm4-gcm dek v1";

/// Writes `n` as unsigned LEB128 (7 bits per byte, low group first, high bit set on
/// every byte but the last) into `buf`, returning the number of bytes used (1..=10).
fn leb128(mut n: u64, buf: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            buf[i] = low;
            return i + 1;
        }
        buf[i] = low | 0x80;
        i += 1;
    }
}

/// Length of the canonical encoding of `parts` (see [`encode_parts`]).
fn encoded_len(parts: &[&[u8]]) -> usize {
    parts
        .iter()
        .map(|p| leb128(p.len() as u64, &mut [0u8; 10]) + p.len())
        .sum()
}

/// Appends the canonical length-prefixed encoding of `parts`: for each part, its byte
/// length as an unsigned LEB128 varint (1 byte for lengths below 128) followed by its
/// bytes. A length prefix is self-delimiting, so the encoding is injective: no two
/// different tuples encode the same. Short prefixes keep the GCM AAD small (ring's GHASH
/// of the AAD is a visible share of the cost of sealing a short field).
pub(crate) fn encode_parts(parts: &[&[u8]], out: &mut Vec<u8>) {
    let mut len = [0u8; 10];
    for p in parts {
        let n = leb128(p.len() as u64, &mut len);
        out.extend_from_slice(&len[..n]);
        out.extend_from_slice(p);
    }
}

/// Runs `f` over the encoding of `parts`, using a stack buffer when it fits.
pub(crate) fn with_encoded<R>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> R) -> R {
    let total = encoded_len(parts);
    if total <= AAD_STACK {
        let mut buf = [0u8; AAD_STACK];
        let mut len = [0u8; 10];
        let mut at = 0;
        for p in parts {
            let n = leb128(p.len() as u64, &mut len);
            buf[at..at + n].copy_from_slice(&len[..n]);
            at += n;
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        f(&buf[..at])
    } else {
        let mut v = Vec::with_capacity(total);
        encode_parts(parts, &mut v);
        f(&v)
    }
}

/// Associated data for one sealed field (authenticated, not encrypted).
///
/// It binds a ciphertext to its place: moving a sealed value to another subject,
/// category or field, or relabelling its key id, makes [`Dek::open`] fail.
///
/// Encoding (see [`Aad::to_bytes`]): for each of `subject_id`, `category`, `field`,
/// `key_id` in that order, its UTF-8 byte length as an unsigned LEB128 varint (one byte
/// for lengths below 128) followed by the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aad<'a> {
    /// The subject (person) the value belongs to.
    pub subject_id: &'a str,
    /// PI category, e.g. `"user.contact.email"`.
    pub category: &'a str,
    /// Field id within the record.
    pub field: &'a str,
    /// Id of the DEK that seals the field (`dek-…`); must equal [`Dek::key_id`].
    pub key_id: &'a str,
}

impl Aad<'_> {
    fn parts(&self) -> [&[u8]; 4] {
        [
            self.subject_id.as_bytes(),
            self.category.as_bytes(),
            self.field.as_bytes(),
            self.key_id.as_bytes(),
        ]
    }

    /// The exact bytes passed to GCM as additional authenticated data:
    /// `leb128(len) ‖ subject_id ‖ leb128(len) ‖ category ‖ leb128(len) ‖ field ‖ leb128(len) ‖ key_id`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(encoded_len(&self.parts()));
        encode_parts(&self.parts(), &mut v);
        v
    }
}

/// A 256-bit data-encryption key for one subject (and scope), zeroized on drop.
///
/// Holds the raw key bytes in a [`Zeroizing`] buffer plus the cipher state built once
/// at creation for its own suite (for AES a pre-expanded `ring::aead::LessSafeKey`), so
/// sealing a field does no key setup. The other suite's state is built lazily on the
/// first [`Dek::open`] of a field sealed under it (this lets a deployment switch suites
/// without re-encrypting).
///
/// SM4-GCM is `pivault_sm4::Sm4Gcm`: SM4 (GB/T 32907-2016) on GFNI or AES-NI where the CPU
/// has them, in GCM (NIST SP 800-38D, as RFC 8998 uses it), byte for byte what the RustCrypto
/// `sm4` crate in `aes_gcm::AesGcm` produced before, so values sealed then still open.
///
/// Zeroization limits: the raw bytes, the SM4 round keys and (with PCLMULQDQ) the GHASH key
/// powers are wiped on drop, but *ring* does not zeroize its expanded AES key schedule; that is
/// a known limitation of that library.
///
/// No `Clone`; `Debug` prints only the key id and suite.
pub struct Dek {
    key_id: String,
    suite: Suite,
    raw: Zeroizing<[u8; DEK_LEN]>,
    aes: OnceLock<LessSafeKey>,
    sm4: OnceLock<Sm4Gcm>,
}

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dek")
            .field("key_id", &self.key_id)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Dek {
    /// Builds a DEK from its id, the suite it seals with, and 32 raw key bytes.
    ///
    /// Normally DEKs come from [`KeyRing::generate_dek`](crate::KeyRing::generate_dek) or
    /// [`KeyRing::unwrap_dek`](crate::KeyRing::unwrap_dek); this is for tests and tools.
    pub fn from_bytes(key_id: impl Into<String>, suite: Suite, bytes: [u8; DEK_LEN]) -> Self {
        Self::from_zeroizing(key_id.into(), suite, Zeroizing::new(bytes))
    }

    pub(crate) fn from_zeroizing(
        key_id: String,
        suite: Suite,
        raw: Zeroizing<[u8; DEK_LEN]>,
    ) -> Self {
        let dek = Dek {
            key_id,
            suite,
            raw,
            aes: OnceLock::new(),
            sm4: OnceLock::new(),
        };
        // Build the cipher for the DEK's own suite now, off the hot path.
        match suite {
            Suite::Aes256Gcm => {
                dek.aes_key();
            }
            Suite::Sm4Gcm => {
                dek.sm4_cipher();
            }
        }
        dek
    }

    /// The key id, `"dek-"` followed by 24 lower-case hex characters (96 random bits).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The suite [`Dek::seal`] uses.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    pub(crate) fn raw(&self) -> &[u8; DEK_LEN] {
        &self.raw
    }

    fn aes_key(&self) -> &LessSafeKey {
        self.aes.get_or_init(|| {
            // A 32-byte key always fits AES-256; ring only rejects wrong lengths.
            let unbound = UnboundKey::new(&AES_256_GCM, &self.raw[..])
                .unwrap_or_else(|_| unreachable!("32-byte key is valid for AES-256-GCM"));
            LessSafeKey::new(unbound)
        })
    }

    fn sm4_cipher(&self) -> &Sm4Gcm {
        self.sm4.get_or_init(|| {
            let mut k = Zeroizing::new([0u8; 16]);
            hkdf_expand(&self.raw[..], HKDF_INFO_SM4, &mut k[..]);
            Sm4Gcm::new(pivault_sm4::aead::Key::<Sm4Gcm>::from_slice(&k[..]))
        })
    }

    /// Seals `plaintext` for the place described by `aad`.
    ///
    /// Output layout (length = plaintext length + 29):
    /// `[suite byte (1)] [nonce (12)] [ciphertext (= plaintext length)] [tag (16)]`.
    ///
    /// The 96-bit nonce is drawn from the thread-local CSPRNG (`rand::rng()`, ChaCha
    /// seeded from the OS), not a syscall per field. NIST SP 800-38D §8.3 limits one key to
    /// 2^32 random-nonce invocations; per-subject DEKs stay far below that.
    /// `aad.key_id` must be this DEK's [`key_id`](Dek::key_id) or the field will not open.
    ///
    /// # Panics
    /// Only if `plaintext` exceeds GCM's limit of 2^36 − 32 bytes (NIST SP 800-38D §5.2.1.1);
    /// use [`Dek::try_seal`] to get an error instead.
    pub fn seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
        match self.try_seal(aad, plaintext) {
            Ok(v) => v,
            Err(_) => panic!("plaintext too long for GCM"),
        }
    }

    /// Like [`Dek::seal`] but returns an error instead of panicking.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] if `plaintext` exceeds GCM's limit of 2^36 − 32 bytes
    /// (NIST SP 800-38D §5.2.1.1).
    pub fn try_seal(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        const TOO_LONG: CryptoError = CryptoError::Malformed("plaintext too long for GCM");
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);

        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.push(self.suite.id());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag: [u8; TAG_LEN] = with_encoded(&aad.parts(), |aad| {
            let body = &mut out[1 + NONCE_LEN..];
            match self.suite {
                Suite::Aes256Gcm => self
                    .aes_key()
                    .seal_in_place_separate_tag(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aead::Aad::from(aad),
                        body,
                    )
                    .map_err(|_| TOO_LONG)
                    .and_then(|t| t.as_ref().try_into().map_err(|_| TOO_LONG)),
                Suite::Sm4Gcm => self
                    .sm4_cipher()
                    .encrypt_in_place_detached(Nonce::<Sm4Gcm>::from_slice(&nonce), aad, body)
                    .map(Into::into)
                    .map_err(|_| TOO_LONG),
            }
        })?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens a value produced by [`Dek::seal`] (of either suite) for the same `aad`.
    ///
    /// The plaintext is returned as a [`Plaintext`] that wipes itself on drop.
    ///
    /// # Errors
    /// * [`CryptoError::Malformed`] if `sealed` is shorter than 29 bytes or its first
    ///   byte is not a known suite id.
    /// * [`CryptoError::UnknownKey`] if `aad.key_id` is not this DEK's id.
    /// * [`CryptoError::Decrypt`] if authentication fails (tampered bytes, wrong AAD,
    ///   wrong key).
    pub fn open(&self, aad: &Aad<'_>, sealed: &[u8]) -> Result<Plaintext, CryptoError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(CryptoError::Malformed("sealed value too short"));
        }
        let suite =
            Suite::from_id(sealed[0]).ok_or(CryptoError::Malformed("unknown cipher suite byte"))?;
        if aad.key_id != self.key_id {
            return Err(CryptoError::UnknownKey {
                key_id: aad.key_id.to_owned(),
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let (ct, tag) = sealed[1 + NONCE_LEN..].split_at(sealed.len() - SEAL_OVERHEAD);
        let mut buf = Plaintext::new(ct.to_vec());
        with_encoded(&aad.parts(), |aad| match suite {
            Suite::Aes256Gcm => {
                let tag = aead::Tag::try_from(tag).map_err(|_| CryptoError::Decrypt)?;
                self.aes_key()
                    .open_in_place_separate_tag(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aead::Aad::from(aad),
                        tag,
                        &mut buf[..],
                        0..,
                    )
                    .map(|_| ())
                    .map_err(|_| CryptoError::Decrypt)
            }
            Suite::Sm4Gcm => self
                .sm4_cipher()
                .decrypt_in_place_detached(
                    Nonce::<Sm4Gcm>::from_slice(&nonce),
                    aad,
                    &mut buf[..],
                    Tag::<Sm4Gcm>::from_slice(tag),
                )
                .map_err(|_| CryptoError::Decrypt),
        })?;
        Ok(buf)
    }
}

/// Output-length marker for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (RFC 5869) with an empty salt (§2.2: treated as HashLen zero bytes),
/// writing `out.len()` bytes of output keying material for `info`.
pub(crate) fn hkdf_expand(ikm: &[u8], info: &[u8], out: &mut [u8]) {
    hkdf_salted(ikm, &[], info, out);
}

/// HKDF-SHA256 (RFC 5869) with `salt`, writing `out.len()` bytes for `info`.
pub(crate) fn hkdf_salted(ikm: &[u8], salt: &[u8], info: &[u8], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let infos = [info];
    // Output lengths here are 16 or 32 bytes, far below the 255·HashLen limit.
    let okm = prk
        .expand(&infos, Len(out.len()))
        .unwrap_or_else(|_| unreachable!("HKDF output length within RFC 5869 limit"));
    okm.fill(out)
        .unwrap_or_else(|_| unreachable!("HKDF output length matches"));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Before pivault-sm4, SM4-GCM was `aes_gcm::AesGcm<sm4::Sm4, U12>` (RustCrypto). A value
    /// sealed by it, in `Dek::seal`'s layout with the same key derivation and AAD, must open.
    #[test]
    fn a_value_sealed_with_the_rustcrypto_sm4_gcm_still_opens() {
        use aes_gcm::aead::consts::U12;
        use aes_gcm::aead::{AeadInPlace as _, KeyInit as _};

        let raw = [0x17u8; DEK_LEN];
        let dek = Dek::from_bytes("dek-0123456789abcdef01234567", Suite::Sm4Gcm, raw);
        let aad = Aad {
            subject_id: "s-1",
            category: "user.contact.email",
            field: "email",
            key_id: dek.key_id(),
        };
        let mut k = [0u8; 16];
        hkdf_expand(&raw, HKDF_INFO_SM4, &mut k);
        let legacy = aes_gcm::AesGcm::<sm4::Sm4, U12>::new(&k.into());
        for len in [0usize, 1, 15, 16, 17, 100, 1024, 4099] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let nonce = [len as u8; NONCE_LEN];
            let mut body = pt.clone();
            let tag = with_encoded(&aad.parts(), |a| {
                legacy
                    .encrypt_in_place_detached(&nonce.into(), a, &mut body)
                    .unwrap()
            });
            let mut sealed = vec![Suite::Sm4Gcm.id()];
            sealed.extend_from_slice(&nonce);
            sealed.extend_from_slice(&body);
            sealed.extend_from_slice(&tag);
            assert_eq!(
                &dek.open(&aad, &sealed).unwrap()[..],
                &pt[..],
                "{len} bytes"
            );

            // And the other way: what the new code seals, the old one opens.
            let ours = dek.seal(&aad, &pt);
            let (n, rest) = ours[1..].split_at(NONCE_LEN);
            let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
            let mut back = ct.to_vec();
            with_encoded(&aad.parts(), |a| {
                legacy
                    .decrypt_in_place_detached(
                        aes_gcm::Nonce::<U12>::from_slice(n),
                        a,
                        &mut back,
                        aes_gcm::Tag::<aes_gcm::aead::consts::U16>::from_slice(tag),
                    )
                    .unwrap()
            });
            assert_eq!(back, pt, "{len} bytes");
        }
    }
}
