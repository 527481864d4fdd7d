//! Pseudonyms: keyed, deterministic, reversible tokens for identifiers (GB/T 35273-2020
//! §3.15 de-identification). See [`Pseudonymizer`] for the rules and the construction.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::aead::{self, LessSafeKey, UnboundKey, AES_256_GCM};
use ring::hmac;
use zeroize::Zeroizing;

use crate::dek::{hkdf_expand, with_encoded, NONCE_LEN, TAG_LEN};
use crate::{CryptoError, MasterSecret};

/// HKDF info of the pseudonym keys (`k_mac ‖ k_enc`, 64 bytes).
pub const HKDF_INFO_PSEUDONYM: &str = "pivault pseudonym v1";
/// Prefix of every token: names the construction (version 1).
pub const PSEUDONYM_PREFIX: &str = "pz1.";

/// Keyed, deterministic, reversible pseudonyms of identifiers (de-identification,
/// GB/T 35273-2020 §3.15: information that cannot identify a person *without additional
/// information*; here the additional information is the key).
///
/// A pseudonym is **not** anonymization (GB/T 35273-2020 §3.14, PIPL Art. 73(4): "cannot be
/// restored"): whoever holds the master secret turns a token back into the value with
/// [`Pseudonymizer::reidentify`], so pseudonymized data is still personal information and
/// keeps every duty attached to it (PIPL Art. 4, 51(3)). What it buys is that the same value
/// always gives the same token, so records can still be joined and counted without the
/// value in the clear.
///
/// Construction (deterministic authenticated encryption in the style of SIV, RFC 5297 §1.3.2,
/// with AES-256-GCM as the cipher):
///
/// ```text
/// k_mac ‖ k_enc = HKDF-SHA256(master secret, salt = "", info = "pivault pseudonym v1", L = 64)
/// nonce = HMAC-SHA256(k_mac, leb128(len kind) ‖ kind ‖ leb128(len value) ‖ value)[..12]
/// ct ‖ tag = AES-256-GCM(k_enc, nonce, plaintext = value, aad = kind)
/// token = "pz1." ‖ base64url-no-pad(nonce ‖ ct ‖ tag)
/// ```
///
/// The MAC input is length-prefixed (the crate's canonical encoding, as in [`crate::Aad`])
/// rather than `kind ‖ 0x00 ‖ value`, so it is injective for every `kind`, NUL bytes
/// included: two different `(kind, value)` pairs never share a nonce except by an HMAC
/// collision on 96 bits (a birthday bound of about 2⁴⁸ values per key). On reidentification
/// the nonce is recomputed from the opened value and compared in constant time, so only the
/// one token [`Pseudonymizer::pseudonymize`] gives opens (no malleable variants).
///
/// Invariants: the key bytes live in [`Zeroizing`] buffers until they are expanded into
/// *ring*'s HMAC and AES key schedules, which *ring* does not zeroize (the same documented
/// exception as [`Dek`](crate::Dek)). [`Pseudonymizer`] has no `Clone`, serde, or `Debug`
/// output of key material; [`CryptoError`]s it returns carry no value, token or key.
///
/// Obtained from [`KeyRing::pseudonymizer`](crate::KeyRing::pseudonymizer); its keys are a
/// pure function of the master secret, so tokens are stable across restarts and instances
/// and change (old tokens stop opening) only when the master secret does. `Send + Sync`.
pub struct Pseudonymizer {
    mac: hmac::Key,
    enc: LessSafeKey,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

impl Pseudonymizer {
    pub(crate) fn derive(master: &MasterSecret) -> Pseudonymizer {
        let mut okm = Zeroizing::new([0u8; 64]);
        hkdf_expand(master.bytes(), HKDF_INFO_PSEUDONYM.as_bytes(), &mut okm[..]);
        let mac = hmac::Key::new(hmac::HMAC_SHA256, &okm[..32]);
        let enc = UnboundKey::new(&AES_256_GCM, &okm[32..])
            .unwrap_or_else(|_| unreachable!("32-byte key is valid for AES-256-GCM"));
        Pseudonymizer {
            mac,
            enc: LessSafeKey::new(enc),
        }
    }

    /// The synthetic nonce of `(kind, value)`: the first 12 bytes of
    /// HMAC-SHA256(k_mac, leb128(len kind) ‖ kind ‖ leb128(len value) ‖ value).
    fn nonce(&self, kind: &str, value: &[u8]) -> [u8; NONCE_LEN] {
        let tag = with_encoded(&[kind.as_bytes(), value], |msg| hmac::sign(&self.mac, msg));
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag.as_ref()[..NONCE_LEN]);
        nonce
    }

    /// The pseudonym of `value` of kind `kind` (e.g. `"mobile"`, `"account_id"`; the kind is
    /// bound into the token as AES-GCM associated data, so a token opens only as its kind):
    /// `"pz1."` followed by base64url without padding (RFC 4648 §5) of
    /// `nonce (12) ‖ ciphertext (len value) ‖ tag (16)`, i.e. 4 + ⌈(28 + len)·4/3⌉ characters.
    ///
    /// Deterministic: the same key, kind and value always give the same token, so tokens can
    /// be joined and counted. Equal values therefore stay visibly equal; normalize the value
    /// first (e.g. E.164 for mobiles) if spellings should not matter.
    ///
    /// This is pseudonymization (GB/T 35273-2020 §3.15), reversible with
    /// [`reidentify`](Self::reidentify) by whoever holds the master secret: the token is
    /// still personal information.
    pub fn pseudonymize(&self, kind: &str, value: &str) -> String {
        let nonce = self.nonce(kind, value.as_bytes());
        let mut buf = Zeroizing::new(Vec::with_capacity(NONCE_LEN + value.len() + TAG_LEN));
        buf.extend_from_slice(&nonce);
        buf.extend_from_slice(value.as_bytes());
        let tag = self
            .enc
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(kind.as_bytes()),
                &mut buf[NONCE_LEN..],
            )
            .unwrap_or_else(|_| unreachable!("a &str is within the GCM plaintext limit"));
        buf.extend_from_slice(tag.as_ref());
        let mut token = String::with_capacity(PSEUDONYM_PREFIX.len() + buf.len() * 4 / 3 + 3);
        token.push_str(PSEUDONYM_PREFIX);
        URL_SAFE_NO_PAD.encode_string(&buf[..], &mut token);
        token
    }

    /// The value behind `token`, made by [`pseudonymize`](Self::pseudonymize) with the same
    /// key and the same `kind`. The decoded token is wiped after use; the returned value is
    /// personal information, the caller's to handle (e.g. wrap it in [`Zeroizing`]).
    ///
    /// # Errors
    /// * [`CryptoError::Malformed`] if `token` does not start with `"pz1."`, is not base64url
    ///   without padding, or is shorter than a nonce and a tag.
    /// * [`CryptoError::Decrypt`] for a token made under another key (master secret) or for
    ///   another kind, or altered in any way (authentication fails, or the opened value does
    ///   not give back the token's nonce).
    ///
    /// No error carries the token, the value or key bytes.
    pub fn reidentify(&self, kind: &str, token: &str) -> Result<String, CryptoError> {
        let body = token
            .strip_prefix(PSEUDONYM_PREFIX)
            .ok_or(CryptoError::Malformed("pseudonym does not start with pz1."))?;
        let mut bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(body)
                .map_err(|_| CryptoError::Malformed("pseudonym is not base64url"))?,
        );
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed("pseudonym is too short"));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .enc
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(kind.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| CryptoError::Decrypt)?;
        // SIV check: the nonce must be the one this value gives (else the token was not
        // made by `pseudonymize`).
        if !crate::ct_eq(&self.nonce(kind, plain), &nonce) {
            return Err(CryptoError::Decrypt);
        }
        let value = std::str::from_utf8(plain).map_err(|_| CryptoError::Decrypt)?;
        Ok(value.to_owned())
    }
}
