//! Key ring: master secret → KEK and blind-index key; DEK generation and wrapping.

use pivault_sm4::aead::{AeadInPlace, KeyInit, Nonce, Tag};
use pivault_sm4::Sm4Gcm;
use rand::RngCore;
use ring::aead::{self, LessSafeKey, UnboundKey, AES_256_GCM};
use ring::{digest, hmac};
use zeroize::Zeroizing;

use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::dek::{hkdf_expand, hkdf_salted, with_encoded, DEK_LEN, NONCE_LEN, TAG_LEN};
use crate::otp::HKDF_INFO_OTP;
use crate::secret::os_random;
use crate::{
    AuditChainKey, CryptoError, Dek, MasterSecret, OutboxSealer, Pseudonymizer, ReceiptSigner,
    Suite,
};

/// Domain label that starts the HMAC input of every one-time-code digest.
const OTP_LABEL: &[u8] = b"pivault otp digest v1";

/// HKDF info for the key-encryption key.
pub const HKDF_INFO_KEK: &str = "pivault kek v1";
/// HKDF info for the blind-index key.
pub const HKDF_INFO_BLIND_INDEX: &str = "pivault blind-index v1";
/// HKDF info of the root from which KEKs of generation 2 and later are derived (each with its
/// own salt, see [`KeyRing::install_generations`]).
pub const HKDF_INFO_KEK_GENERATIONS: &str = "pivault kek generations v1";
/// HKDF info of the root from which blind-index keys of generation 2 and later are derived.
pub const HKDF_INFO_BLIND_INDEX_GENERATIONS: &str = "pivault blind-index generations v1";
/// HKDF info of one salted generation key, under either root.
const HKDF_INFO_GENERATION: &[u8] = b"pivault key generation v1";
/// HKDF info for the key-check key (see [`KeyRing::key_check_value`]).
pub const HKDF_INFO_KEY_CHECK: &str = "pivault key-check v1";
/// The message MACed by [`KeyRing::key_check_value`].
const KEY_CHECK_LABEL: &[u8] = b"pivault key check value v1";
/// Domain label that starts the AAD of every AES-256-GCM wrapped DEK.
const WRAP_LABEL: &[u8] = b"pivault dek wrap v1";
/// Domain label that starts the AAD of every SM4-GCM wrapped DEK.
const WRAP_LABEL_SM4: &[u8] = b"pivault dek wrap sm4-gcm v1";
/// HKDF info of the SM4 key derived from each KEK for SM4-GCM wraps (see [`WrappedDek`]).
pub const HKDF_INFO_KEK_SM4: &str = "pivault kek sm4 v1";
/// Length of an AES-256-GCM [`WrappedDek::bytes`] (the only form before SM4 wraps):
/// nonce (12) + wrapped key (32) + tag (16) = 60.
pub const WRAPPED_DEK_LEN: usize = NONCE_LEN + DEK_LEN + TAG_LEN;
/// Length of an SM4-GCM [`WrappedDek::bytes`]: suite byte `0x02` + the 60 bytes of the same
/// layout = 61.
pub const WRAPPED_DEK_SM4_LEN: usize = 1 + WRAPPED_DEK_LEN;

/// A DEK sealed under a KEK, as stored in the database (`subject_keys.wrapped`, a BLOB/BYTEA
/// of any length, so the second form below needed no schema change). Holds no secret in the
/// clear.
///
/// Two forms, told apart by length (and, for the second, its first byte):
///
/// * **AES-256-GCM, 60 bytes**: `nonce (12) ‖ ciphertext of the 32-byte DEK (32) ‖ tag (16)`
///   under the KEK itself. Every wrap before SM4 wraps existed, and every wrap of a ring
///   whose suite is [`Suite::Aes256Gcm`].
/// * **SM4-GCM, 61 bytes**: `0x02 (Suite::Sm4Gcm.id()) ‖ nonce (12) ‖ ciphertext (32) ‖
///   tag (16)`, SM4 (GB/T 32907-2016) in GCM (NIST SP 800-38D, as RFC 8998 and GM/T 0009
///   use it) under a 128-bit key derived from the KEK with HKDF-SHA256 (RFC 5869, info
///   `"pivault kek sm4 v1"`), so the KEK's bytes never key two ciphers. Made by rings whose
///   suite is [`Suite::Sm4Gcm`], so that under `--suite sm4-gcm` no AES is used for data
///   keys either.
///
/// In both forms the AAD binds the subject, scope and key id (under different domain labels);
/// any ring unwraps both forms, whatever its own suite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDek {
    /// The DEK's own id (`dek-` + 24 hex), the same as [`Dek::key_id`].
    pub key_id: String,
    /// Id of the KEK that wrapped it (`kek-` + 16 hex), see [`KeyRing::kek_id`].
    pub kek_id: String,
    /// 60 bytes (AES-256-GCM wrap) or 61 bytes starting `0x02` (SM4-GCM wrap), see above.
    pub bytes: Vec<u8>,
}

impl WrappedDek {
    /// The cipher that wrapped it, from the form of [`WrappedDek::bytes`]: 60 bytes is
    /// AES-256-GCM, 61 bytes starting `0x02` SM4-GCM; `None` for anything else.
    pub fn wrap_suite(&self) -> Option<Suite> {
        match (self.bytes.len(), self.bytes.first()) {
            (WRAPPED_DEK_LEN, _) => Some(Suite::Aes256Gcm),
            (WRAPPED_DEK_SM4_LEN, Some(&b)) if b == Suite::Sm4Gcm.id() => Some(Suite::Sm4Gcm),
            _ => None,
        }
    }
}

/// One key-encryption key: AES-256-GCM key, the SM4-GCM key derived from it, its public id and
/// generation.
struct Kek {
    id: String,
    generation: i64,
    key: LessSafeKey,
    sm4: Sm4Gcm,
}

impl Kek {
    fn derive(master: &MasterSecret) -> Kek {
        let mut bytes = Zeroizing::new([0u8; 32]);
        hkdf_expand(master.bytes(), HKDF_INFO_KEK.as_bytes(), &mut bytes[..]);
        Kek::from_bytes(&bytes, 1)
    }

    fn from_bytes(bytes: &[u8; 32], generation: i64) -> Kek {
        let id = format!("kek-{}", fingerprint(bytes));
        let key = UnboundKey::new(&AES_256_GCM, &bytes[..])
            .unwrap_or_else(|_| unreachable!("32-byte key is valid for AES-256-GCM"));
        let mut sm4 = Zeroizing::new([0u8; 16]);
        hkdf_expand(&bytes[..], HKDF_INFO_KEK_SM4.as_bytes(), &mut sm4[..]);
        Kek {
            id,
            generation,
            key: LessSafeKey::new(key),
            sm4: Sm4Gcm::new(pivault_sm4::aead::Key::<Sm4Gcm>::from_slice(&sm4[..])),
        }
    }
}

/// One blind-index key: HMAC-SHA256 key plus its public id and generation.
struct IndexKey {
    id: String,
    generation: i64,
    key: hmac::Key,
    /// Consulted by lookups of identifiers (current and active generations).
    lookups: bool,
}

impl IndexKey {
    fn from_bytes(bytes: &[u8; 32], generation: i64) -> IndexKey {
        IndexKey {
            id: format!("bix-{}", fingerprint(bytes)),
            generation,
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes[..]),
            lookups: true,
        }
    }

    fn with_lookups(&self, lookups: bool) -> IndexKey {
        IndexKey {
            id: self.id.clone(),
            generation: self.generation,
            key: self.key.clone(),
            lookups,
        }
    }

    fn digest(&self, kind: &str, normalized: &str) -> [u8; 32] {
        debug_assert!(
            !kind.contains('\0'),
            "blind index kind must not contain NUL"
        );
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(normalized.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// Public id of a key: the first 16 hex characters (64 bits) of SHA-256 of its bytes.
fn fingerprint(bytes: &[u8; 32]) -> String {
    let fp = digest::digest(&digest::SHA256, &bytes[..]);
    hex::encode(&fp.as_ref()[..8])
}

/// Which kind of rotating key a generation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Key-encryption keys, which wrap DEKs.
    Kek,
    /// Blind-index keys.
    BlindIndex,
}

/// The role of a key generation (as the database's `key_generations.state` records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerationState {
    /// New wraps (KEK) or new digests (blind index) use it.
    Current,
    /// Rows still use it: it unwraps, and (blind index) lookups consult it.
    Active,
    /// No row uses it any more. A KEK of this state still unwraps (nothing is lost if a row
    /// was missed); a blind-index key of this state answers only for suppression lists.
    Retired,
}

/// A key generation to load with [`KeyRing::install_generations`]: its number, its public HKDF
/// salt (RFC 5869; empty for generation 1, the key derived before any rotation) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGeneration {
    /// 1, 2, …
    pub generation: i64,
    /// Random salt recorded with the generation (not secret; the key also needs the master).
    pub salt: Vec<u8>,
    /// Its role.
    pub state: GenerationState,
}

/// The loaded generations, current first.
struct Generations {
    keks: Vec<Arc<Kek>>,
    index: Vec<Arc<IndexKey>>,
}

/// The key ring of one vault instance.
///
/// From the [`MasterSecret`] it derives, with HKDF-SHA256 (RFC 5869, empty salt):
/// * the **KEK** (32 bytes, info `"pivault kek v1"`), an AES-256-GCM key that wraps
///   per-subject DEKs (envelope encryption) and never touches the database; under
///   [`Suite::Sm4Gcm`] the wraps are SM4-GCM under a key derived from it (info
///   `"pivault kek sm4 v1"`, see [`WrappedDek`]);
/// * the **blind-index key** (32 bytes, info `"pivault blind-index v1"`), an HMAC-SHA256
///   key (RFC 2104) for exact-match lookup of normalized values;
/// * the **receipt-signing seed** (32 bytes, info `"pivault receipt-signing v1"`), an
///   Ed25519 key (RFC 8032) that signs deletion receipts, see [`KeyRing::receipt_signer`];
/// * the **one-time-code key** (32 bytes, info `"pivault otp v1"`), an HMAC-SHA256 key
///   for digests of DSR verification codes (policy §7.2), see [`KeyRing::code_digest`];
/// * the **key-check key** (32 bytes, info `"pivault key-check v1"`), used once to compute
///   the [`KeyRing::key_check_value`] that the database records, so that a wrong master key
///   is refused before anything is written;
/// * the **audit chain key** (32 bytes, info `"pivault audit-chain v1"`), an HMAC-SHA256
///   key for the audit chain's links and head MAC, see [`KeyRing::audit_chain_key`];
/// * the **pseudonym keys** (64 bytes, info `"pivault pseudonym v1"`): an HMAC-SHA256 key and
///   an AES-256-GCM key for deterministic, reversible pseudonyms (GB/T 35273-2020 §3.15), see
///   [`KeyRing::pseudonymizer`];
/// * the **outbox key** (32 bytes, info `"pivault outbox v1"`), an AES-256-GCM key that seals
///   the payloads of the durable message outbox, see [`KeyRing::outbox_sealer`].
///
/// The master secret itself is dropped (and zeroized) after derivation.
///
/// **Key generations** (issue 11): the KEK and the blind-index key rotate without changing the
/// master secret. Generation 1 of each is the key above; generation *n* ≥ 2 is
/// HKDF-SHA256(salt = the generation's random salt, IKM = a root derived from the master
/// secret with info `"pivault kek generations v1"` or `"pivault blind-index generations v1"`,
/// info `"pivault key generation v1"`). The database records each generation's salt and role
/// and [`KeyRing::install_generations`] loads them (at open, and whenever another instance
/// rotates), so every instance derives the same keys and they survive restarts. Every loaded
/// KEK unwraps; new wraps use the current one (see [`KeyRing::rewrap_dek`]).
///
/// Retired master secrets can also be added with [`KeyRing::add_retired`]: DEKs wrapped under
/// their KEKs still unwrap. The blind-index keys come from the current master only.
///
/// `Send + Sync`; share it behind an `Arc`.
pub struct KeyRing {
    suite: Suite,
    gens: RwLock<Generations>,
    first_kek: Arc<Kek>,
    first_index: Arc<IndexKey>,
    kek_root: Zeroizing<[u8; 32]>,
    index_root: Zeroizing<[u8; 32]>,
    retired: Vec<Arc<Kek>>,
    receipt: ReceiptSigner,
    outbox: OutboxSealer,
    otp_key: hmac::Key,
    key_check: [u8; 32],
    chain_key: AuditChainKey,
    checkpoint: crate::CheckpointSigner,
    pseudonymizer: Pseudonymizer,
}

impl KeyRing {
    /// Derives the KEK, blind-index key, receipt-signing key, outbox key, one-time-code key,
    /// key check value, audit chain key and pseudonym keys from `master`. `suite` is the cipher suite
    /// of the DEKs this ring generates and unwraps, and of the wraps it makes (see
    /// [`WrappedDek`]: AES-256-GCM under the KEK, or SM4-GCM under an SM4 key derived from it).
    pub fn new(master: MasterSecret, suite: Suite) -> Self {
        let first_kek = Arc::new(Kek::derive(&master));
        let mut ik = Zeroizing::new([0u8; 32]);
        hkdf_expand(
            master.bytes(),
            HKDF_INFO_BLIND_INDEX.as_bytes(),
            &mut ik[..],
        );
        let first_index = Arc::new(IndexKey::from_bytes(&ik, 1));
        let mut kek_root = Zeroizing::new([0u8; 32]);
        hkdf_expand(
            master.bytes(),
            HKDF_INFO_KEK_GENERATIONS.as_bytes(),
            &mut kek_root[..],
        );
        let mut index_root = Zeroizing::new([0u8; 32]);
        hkdf_expand(
            master.bytes(),
            HKDF_INFO_BLIND_INDEX_GENERATIONS.as_bytes(),
            &mut index_root[..],
        );
        let mut ok = Zeroizing::new([0u8; 32]);
        hkdf_expand(master.bytes(), HKDF_INFO_OTP.as_bytes(), &mut ok[..]);
        let otp_key = hmac::Key::new(hmac::HMAC_SHA256, &ok[..]);
        let mut kk = Zeroizing::new([0u8; 32]);
        hkdf_expand(master.bytes(), HKDF_INFO_KEY_CHECK.as_bytes(), &mut kk[..]);
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &kk[..]), KEY_CHECK_LABEL);
        let mut key_check = [0u8; 32];
        key_check.copy_from_slice(tag.as_ref());
        KeyRing {
            suite,
            gens: RwLock::new(Generations {
                keks: vec![Arc::clone(&first_kek)],
                index: vec![Arc::clone(&first_index)],
            }),
            first_kek,
            first_index,
            kek_root,
            index_root,
            retired: Vec::new(),
            receipt: ReceiptSigner::derive(&master),
            outbox: OutboxSealer::derive(&master),
            otp_key,
            key_check,
            chain_key: AuditChainKey::derive(&master),
            checkpoint: crate::CheckpointSigner::derive(&master),
            pseudonymizer: Pseudonymizer::derive(&master),
        }
    }

    /// Adds the KEK derived from a retired master secret, so [`KeyRing::unwrap_dek`]
    /// still accepts DEKs wrapped under it. Adding the current or an already-added
    /// secret is a no-op.
    pub fn add_retired(&mut self, old: MasterSecret) {
        let kek = Kek::derive(&old);
        if self.kek(&kek.id).is_none() {
            self.retired.push(Arc::new(kek));
        }
    }

    fn read_gens(&self) -> RwLockReadGuard<'_, Generations> {
        // Installing replaces whole vectors; a panic cannot leave them half-written.
        self.gens.read().unwrap_or_else(|p| p.into_inner())
    }

    fn current_kek(&self) -> Arc<Kek> {
        Arc::clone(&self.read_gens().keks[0])
    }

    fn current_index(&self) -> Arc<IndexKey> {
        Arc::clone(&self.read_gens().index[0])
    }

    /// Id of the current KEK: `"kek-"` + the first 16 hex characters (64 bits) of
    /// SHA-256 of the KEK bytes. Identifies the key without revealing it.
    pub fn kek_id(&self) -> String {
        self.current_kek().id.clone()
    }

    /// Generation of the current KEK (1 before any rotation).
    pub fn kek_generation(&self) -> i64 {
        self.current_kek().generation
    }

    fn derive_generation(&self, kind: KeyKind, salt: &[u8]) -> Zeroizing<[u8; 32]> {
        let root = match kind {
            KeyKind::Kek => &self.kek_root,
            KeyKind::BlindIndex => &self.index_root,
        };
        let mut out = Zeroizing::new([0u8; 32]);
        hkdf_salted(&root[..], salt, HKDF_INFO_GENERATION, &mut out[..]);
        out
    }

    /// The public id (`kek-…` or `bix-…`, a fingerprint) the key of `generation` with `salt`
    /// has, computed without loading it (to record a new generation before installing it).
    pub fn generation_key_id(&self, kind: KeyKind, generation: i64, salt: &[u8]) -> String {
        if generation <= 1 {
            return match kind {
                KeyKind::Kek => self.first_kek.id.clone(),
                KeyKind::BlindIndex => self.first_index.id.clone(),
            };
        }
        let bytes = self.derive_generation(kind, salt);
        match kind {
            KeyKind::Kek => format!("kek-{}", fingerprint(&bytes)),
            KeyKind::BlindIndex => format!("bix-{}", fingerprint(&bytes)),
        }
    }

    /// Loads the generations of `kind` the database records, replacing those loaded before.
    /// The one in state [`GenerationState::Current`] becomes current (none: generation 1).
    /// Generation 1 is always kept loaded. Safe to call while other threads use the ring.
    pub fn install_generations(&self, kind: KeyKind, gens: &[KeyGeneration]) {
        let mut sorted: Vec<&KeyGeneration> = gens.iter().collect();
        // current first, then the newest
        sorted.sort_by_key(|g| (g.state != GenerationState::Current, -g.generation));
        match kind {
            KeyKind::Kek => {
                let mut keks: Vec<Arc<Kek>> = sorted
                    .iter()
                    .map(|g| {
                        if g.generation <= 1 {
                            Arc::clone(&self.first_kek)
                        } else {
                            let b = self.derive_generation(kind, &g.salt);
                            Arc::new(Kek::from_bytes(&b, g.generation))
                        }
                    })
                    .collect();
                if !sorted
                    .first()
                    .is_some_and(|g| g.state == GenerationState::Current)
                {
                    keks.insert(0, Arc::clone(&self.first_kek));
                }
                keks.dedup_by(|a, b| a.id == b.id);
                if !keks.iter().any(|k| k.generation == 1) {
                    keks.push(Arc::clone(&self.first_kek));
                }
                self.gens.write().unwrap_or_else(|p| p.into_inner()).keks = keks;
            }
            KeyKind::BlindIndex => {
                let mut index: Vec<Arc<IndexKey>> = sorted
                    .iter()
                    .map(|g| {
                        let lookups = g.state != GenerationState::Retired;
                        if g.generation <= 1 {
                            Arc::new(self.first_index.with_lookups(lookups))
                        } else {
                            let b = self.derive_generation(kind, &g.salt);
                            let mut k = IndexKey::from_bytes(&b, g.generation);
                            k.lookups = lookups;
                            Arc::new(k)
                        }
                    })
                    .collect();
                if !sorted
                    .first()
                    .is_some_and(|g| g.state == GenerationState::Current)
                {
                    index.insert(0, Arc::clone(&self.first_index));
                }
                index.dedup_by(|a, b| a.id == b.id);
                if !index.iter().any(|k| k.generation == 1) {
                    index.push(Arc::new(self.first_index.with_lookups(false)));
                }
                self.gens.write().unwrap_or_else(|p| p.into_inner()).index = index;
            }
        }
    }

    /// Ids of the retired KEKs, in the order they were added.
    pub fn retired_kek_ids(&self) -> impl Iterator<Item = &str> {
        self.retired.iter().map(|k| k.id.as_str())
    }

    /// The suite of the DEKs this ring hands out.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn kek(&self, id: &str) -> Option<Arc<Kek>> {
        self.read_gens()
            .keks
            .iter()
            .chain(self.retired.iter())
            .find(|k| k.id == id)
            .cloned()
    }

    /// A fresh DEK: 32 random bytes from the OS CSPRNG and a new random key id
    /// `"dek-"` + 24 lower-case hex characters (96 bits), using the ring's suite.
    ///
    /// # Panics
    /// If the OS random number generator fails.
    pub fn generate_dek(&self) -> Dek {
        let mut raw = Zeroizing::new([0u8; DEK_LEN]);
        os_random(&mut raw[..]);
        let mut id = [0u8; 12];
        os_random(&mut id);
        Dek::from_zeroizing(format!("dek-{}", hex::encode(id)), self.suite, raw)
    }

    /// Wraps `dek` under the current KEK with the ring's suite: AES-256-GCM under the KEK
    /// (60 bytes) for [`Suite::Aes256Gcm`], SM4-GCM under the KEK's derived SM4 key (61 bytes,
    /// leading `0x02`) for [`Suite::Sm4Gcm`]; see [`WrappedDek`] for both forms. Random 96-bit
    /// nonce (NIST SP 800-38D §8.2.2). The AAD binds `subject_id`, `scope` (e.g. `"primary"`,
    /// `"restricted"`) and the DEK's key id, so a wrapped key cannot be moved to another
    /// subject or scope.
    pub fn wrap_dek(&self, subject_id: &str, scope: &str, dek: &Dek) -> WrappedDek {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let current = self.current_kek();
        let bytes = match self.suite {
            Suite::Aes256Gcm => {
                let mut bytes = Vec::with_capacity(WRAPPED_DEK_LEN);
                bytes.extend_from_slice(&nonce);
                bytes.extend_from_slice(dek.raw());
                let parts = wrap_aad_parts(WRAP_LABEL, subject_id, scope, dek.key_id());
                let tag = with_encoded(&parts, |aad| {
                    current.key.seal_in_place_separate_tag(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aead::Aad::from(aad),
                        &mut bytes[NONCE_LEN..],
                    )
                })
                .unwrap_or_else(|_| unreachable!("32-byte plaintext is within the GCM limit"));
                bytes.extend_from_slice(tag.as_ref());
                bytes
            }
            Suite::Sm4Gcm => {
                let mut bytes = Vec::with_capacity(WRAPPED_DEK_SM4_LEN);
                bytes.push(Suite::Sm4Gcm.id());
                bytes.extend_from_slice(&nonce);
                bytes.extend_from_slice(dek.raw());
                let parts = wrap_aad_parts(WRAP_LABEL_SM4, subject_id, scope, dek.key_id());
                let tag = with_encoded(&parts, |aad| {
                    current.sm4.encrypt_in_place_detached(
                        Nonce::<Sm4Gcm>::from_slice(&nonce),
                        aad,
                        &mut bytes[1 + NONCE_LEN..],
                    )
                })
                .unwrap_or_else(|_| unreachable!("32-byte plaintext is within the GCM limit"));
                bytes.extend_from_slice(&tag);
                bytes
            }
        };
        WrappedDek {
            key_id: dek.key_id().to_owned(),
            kek_id: current.id.clone(),
            bytes,
        }
    }

    /// Unwraps a DEK wrapped by [`KeyRing::wrap_dek`] under the current or a retired KEK, in
    /// either form ([`WrappedDek`]: 60-byte AES-256-GCM or 61-byte SM4-GCM), whatever this
    /// ring's suite: a vault switched to SM4 still opens the keys it wrapped with AES, and
    /// back. The DEK gets this ring's [`suite`](KeyRing::suite).
    ///
    /// # Errors
    /// * [`CryptoError::UnknownKey`] (with the KEK id) if no KEK with `wrapped.kek_id` is held.
    /// * [`CryptoError::Malformed`] if `wrapped.bytes` is neither 60 bytes nor 61 bytes
    ///   starting `0x02`.
    /// * [`CryptoError::Decrypt`] if `subject_id`, `scope` or `wrapped.key_id` differ from
    ///   the values used at wrap time, or the bytes were altered.
    pub fn unwrap_dek(
        &self,
        subject_id: &str,
        scope: &str,
        wrapped: &WrappedDek,
    ) -> Result<Dek, CryptoError> {
        let kek = self
            .kek(&wrapped.kek_id)
            .ok_or_else(|| CryptoError::UnknownKey {
                key_id: wrapped.kek_id.clone(),
            })?;
        let suite = wrapped.wrap_suite().ok_or(CryptoError::Malformed(
            "wrapped DEK must be 60 bytes (AES-256-GCM) or 61 bytes starting 0x02 (SM4-GCM)",
        ))?;
        let body = match suite {
            Suite::Aes256Gcm => &wrapped.bytes[..],
            Suite::Sm4Gcm => &wrapped.bytes[1..],
        };
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&body[..NONCE_LEN]);
        let mut raw = Zeroizing::new([0u8; DEK_LEN]);
        raw.copy_from_slice(&body[NONCE_LEN..NONCE_LEN + DEK_LEN]);
        let tag = &body[NONCE_LEN + DEK_LEN..];
        let opened = match suite {
            Suite::Aes256Gcm => {
                let tag = aead::Tag::try_from(tag)
                    .map_err(|_| CryptoError::Malformed("wrapped DEK tag"))?;
                let parts = wrap_aad_parts(WRAP_LABEL, subject_id, scope, &wrapped.key_id);
                with_encoded(&parts, |aad| {
                    kek.key
                        .open_in_place_separate_tag(
                            aead::Nonce::assume_unique_for_key(nonce),
                            aead::Aad::from(aad),
                            tag,
                            &mut raw[..],
                            0..,
                        )
                        .is_ok()
                })
            }
            Suite::Sm4Gcm => {
                let parts = wrap_aad_parts(WRAP_LABEL_SM4, subject_id, scope, &wrapped.key_id);
                with_encoded(&parts, |aad| {
                    kek.sm4
                        .decrypt_in_place_detached(
                            Nonce::<Sm4Gcm>::from_slice(&nonce),
                            aad,
                            &mut raw[..],
                            Tag::<Sm4Gcm>::from_slice(tag),
                        )
                        .is_ok()
                })
            }
        };
        if !opened {
            return Err(CryptoError::Decrypt);
        }
        Ok(Dek::from_zeroizing(wrapped.key_id.clone(), self.suite, raw))
    }

    /// Unwraps `wrapped` (under any held KEK, either form) and wraps it again under the
    /// current KEK in this ring's suite's form, keeping the DEK and its key id. Used by key
    /// rotation; existing field ciphertexts stay valid.
    ///
    /// # Errors
    /// Same as [`KeyRing::unwrap_dek`].
    pub fn rewrap_dek(
        &self,
        subject_id: &str,
        scope: &str,
        wrapped: &WrappedDek,
    ) -> Result<WrappedDek, CryptoError> {
        let dek = self.unwrap_dek(subject_id, scope, wrapped)?;
        Ok(self.wrap_dek(subject_id, scope, &dek))
    }

    /// Blind index of an already-normalized value: HMAC-SHA256 (RFC 2104) under the
    /// blind-index key over `kind ‖ 0x00 ‖ normalized`. 32 bytes.
    ///
    /// `kind` names the value's type (`"mobile"`, `"email"`, `"id_card"`,
    /// `"account_id"`, …) so equal strings of different kinds do not collide; it must not
    /// contain a NUL byte. Normalization (E.164 phones, lower-cased e-mail, …) is the
    /// caller's job: this function hashes exactly the bytes it is given.
    ///
    /// Uses the current blind-index key generation; store the digest with
    /// [`KeyRing::blind_index_current`]'s generation when the two must agree.
    pub fn blind_index(&self, kind: &str, normalized: &str) -> [u8; 32] {
        self.current_index().digest(kind, normalized)
    }

    /// [`KeyRing::blind_index`] and the generation of the key that computed it, read together
    /// (a rotation between two calls cannot split them).
    pub fn blind_index_current(&self, kind: &str, normalized: &str) -> (i64, [u8; 32]) {
        let k = self.current_index();
        (k.generation, k.digest(kind, normalized))
    }

    /// Generation of the current blind-index key (1 before any rotation).
    pub fn index_generation(&self) -> i64 {
        self.current_index().generation
    }

    /// The digest of `normalized` under every blind-index generation lookups consult: the
    /// current one first, then those still being re-indexed away from. During a rotation a
    /// lookup matches any of them.
    pub fn blind_indexes(&self, kind: &str, normalized: &str) -> Vec<[u8; 32]> {
        self.read_gens()
            .index
            .iter()
            .enumerate()
            .filter(|(i, k)| *i == 0 || k.lookups)
            .map(|(_, k)| k.digest(kind, normalized))
            .collect()
    }

    /// The digest under every loaded blind-index generation, retired ones included: for
    /// suppression lists whose plaintext is gone and which therefore keep the generation that
    /// computed them.
    pub fn blind_indexes_all(&self, kind: &str, normalized: &str) -> Vec<[u8; 32]> {
        self.read_gens()
            .index
            .iter()
            .map(|k| k.digest(kind, normalized))
            .collect()
    }

    /// Id (`bix-…`, a fingerprint) of the loaded blind-index key of `generation`.
    pub fn index_key_id(&self, generation: i64) -> Option<String> {
        self.read_gens()
            .index
            .iter()
            .find(|k| k.generation == generation)
            .map(|k| k.id.clone())
    }
}

impl KeyRing {
    /// The Ed25519 (RFC 8032) signer for deletion receipts. Its seed was derived once in
    /// [`KeyRing::new`] with HKDF-SHA256 (RFC 5869, info `"pivault receipt-signing v1"`)
    /// from the current master secret, so the public key is stable across restarts.
    ///
    /// Returns an owned handle (its copy of the seed is zeroized when it is dropped) so a
    /// service can hold it apart from the key ring.
    pub fn receipt_signer(&self) -> ReceiptSigner {
        self.receipt.duplicate()
    }

    /// The AES-256-GCM sealer for outbox payloads (messages waiting to be sent hold PI).
    /// Its key was derived once in [`KeyRing::new`] with HKDF-SHA256 (RFC 5869, info
    /// `"pivault outbox v1"`) from the current master secret, so it is stable across
    /// restarts; payloads sealed under a retired master secret do not open.
    ///
    /// Returns an owned handle (its copy of the key is zeroized when it is dropped) so the
    /// outbox worker can hold it apart from the key ring.
    pub fn outbox_sealer(&self) -> OutboxSealer {
        self.outbox.duplicate()
    }

    /// Digest under which a DSR one-time code is stored (policy §7.2): HMAC-SHA256
    /// (RFC 2104) under the one-time-code key over
    /// `"pivault otp digest v1" ‖ len(request_id) as u64 big-endian ‖ request_id ‖ code`.
    /// 32 bytes.
    ///
    /// The length prefix makes the split between request id and code unambiguous, and the
    /// request id binds a code to its request: the same code for another request gives an
    /// unrelated digest. Compare digests with [`digests_equal`](crate::digests_equal).
    pub fn code_digest(&self, request_id: &str, code: &str) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.otp_key);
        ctx.update(OTP_LABEL);
        ctx.update(&(request_id.len() as u64).to_be_bytes());
        ctx.update(request_id.as_bytes());
        ctx.update(code.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

impl KeyRing {
    /// The master key's check value: `HMAC-SHA256(K, "pivault key check value v1")` (RFC 2104)
    /// where `K` is derived from the current master secret with HKDF-SHA256 (RFC 5869, info
    /// `"pivault key-check v1"`). 32 bytes.
    ///
    /// The database records it when the vault is first opened with its key; every later open
    /// compares (see [`KeyRing::matches_key_check`]) and refuses a different key before
    /// writing anything. It reveals nothing about the master secret or any other derived key
    /// (HKDF outputs for different infos are independent; HMAC is a PRF).
    pub fn key_check_value(&self) -> [u8; 32] {
        self.key_check
    }

    /// Whether `stored` equals [`KeyRing::key_check_value`], compared in constant time.
    pub fn matches_key_check(&self, stored: &[u8]) -> bool {
        crate::ct_eq(&self.key_check, stored)
    }

    /// The audit chain key (HMAC-SHA256, RFC 2104; derived with HKDF-SHA256, RFC 5869, info
    /// `"pivault audit-chain v1"` from the current master secret). An owned handle, for the
    /// store that appends to the chain.
    pub fn audit_chain_key(&self) -> AuditChainKey {
        self.chain_key.clone()
    }

    /// The Ed25519 key that signs audit checkpoints (issue 15), derived in [`KeyRing::new`]
    /// with HKDF-SHA256 (RFC 5869, info `"pivault audit checkpoint v1"`) from the current
    /// master secret. An owned handle.
    pub fn checkpoint_signer(&self) -> crate::CheckpointSigner {
        self.checkpoint.duplicate()
    }

    /// The pseudonymizer (GB/T 35273-2020 §3.15 de-identification: keyed, deterministic,
    /// reversible; **not** anonymization), its keys derived in [`KeyRing::new`] with
    /// HKDF-SHA256 (RFC 5869, info `"pivault pseudonym v1"`) from the current master secret.
    /// Tokens made under a retired master secret do not open with it.
    pub fn pseudonymizer(&self) -> &Pseudonymizer {
        &self.pseudonymizer
    }

    /// Ids of every KEK this ring holds: the current one first, then the retired ones in the
    /// order they were added. The database records them beside the key check value.
    pub fn kek_ids(&self) -> Vec<String> {
        self.read_gens()
            .keks
            .iter()
            .chain(self.retired.iter())
            .map(|k| k.id.clone())
            .collect()
    }
}

fn wrap_aad_parts<'a>(
    label: &'a [u8],
    subject_id: &'a str,
    scope: &'a str,
    key_id: &'a str,
) -> [&'a [u8]; 4] {
    [
        label,
        subject_id.as_bytes(),
        scope.as_bytes(),
        key_id.as_bytes(),
    ]
}
