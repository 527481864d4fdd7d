//! SM4-GCM: GCM (NIST SP 800-38D) with SM4 as the block cipher, 96-bit nonce, 128-bit tag, as
//! RFC 8998 §3.1 (after GB/T 36624-2018 and GM/T 0009's use of it) specifies it. The output is
//! byte for byte that of `aes_gcm::AesGcm<Sm4, U12>`.
//!
//! Why not just `AesGcm<Sm4, U12>`: aes-gcm 0.10's GHASH (the `ghash`/`polyval` 0.6 crates)
//! multiplies one block at a time, each with a full reduction, and with a SIMD SM4 it became
//! about half the time of an SM4-GCM seal. Here GHASH is aggregated over eight blocks per
//! reduction with `PCLMULQDQ` (see the x86 module), and the counter blocks, the tag mask
//! `E(J0)` among them, go to the SM4 backend in batches of up to 64 blocks. Without
//! `PCLMULQDQ` (or off x86_64), GHASH is the `ghash` crate's.

use aead::consts::{U0, U12, U16};
use aead::{AeadCore, AeadInPlace, Error, Key, KeyInit, KeySizeUser, Nonce, Tag};
use cipher::BlockEncrypt;
use ghash::universal_hash::UniversalHash;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::{Backend, Sm4};

/// Longest plaintext GCM allows: 2³⁹ − 256 bits (NIST SP 800-38D §5.2.1.1).
const P_MAX: u64 = (1 << 36) - 32;
/// Longest associated data this implementation takes (SP 800-38D allows up to 2⁶⁴ − 1 bits).
const A_MAX: u64 = (1 << 61) - 1;
/// Counter blocks encrypted per call of the block cipher (plus `J0` in the first batch).
const BATCH: usize = 64;

type Block = cipher::Block<Sm4>;

/// SM4-GCM with a 96-bit nonce and a 128-bit tag: an [`AeadInPlace`] (and, through `aead`'s
/// blanket implementation, `Aead`).
///
/// The SM4 round keys and the GHASH key powers are zeroized on drop. Keystream blocks on the
/// stack are not (they are worth what the plaintext beside them is).
#[derive(Clone)]
pub struct Sm4Gcm {
    cipher: Sm4,
    hash: Hasher,
}

// The large variant is the one x86_64 uses; boxing its powers would cost an allocation per key
// and a pointer chase per message.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Hasher {
    #[cfg(target_arch = "x86_64")]
    Clmul {
        token: crate::x86::Clmul,
        /// With VPCLMULQDQ on AVX-512: sixteen blocks per reduction.
        wide: Option<crate::x86::Vclmul>,
        /// `H, H², …, H¹⁶` in POLYVAL form.
        powers: [u128; 16],
    },
    Soft(ghash::GHash),
}

impl Sm4Gcm {
    /// SM4-GCM under `key` on a chosen SM4 [`Backend`], or `None` if this CPU cannot run it.
    pub fn new_with_backend(key: &[u8; 16], backend: Backend) -> Option<Sm4Gcm> {
        Sm4::new_with_backend(key, backend).map(Sm4Gcm::from)
    }

    /// The SM4 backend in use.
    pub fn backend(&self) -> Backend {
        self.cipher.backend()
    }

    fn ghash(&self) -> Ghash<'_> {
        match &self.hash {
            #[cfg(target_arch = "x86_64")]
            Hasher::Clmul {
                token,
                wide,
                powers,
            } => Ghash::Clmul {
                token: *token,
                wide: *wide,
                powers,
                state: 0,
            },
            Hasher::Soft(g) => Ghash::Soft(g.clone()),
        }
    }

    /// Encrypts the counter blocks `J0 + from`, `J0 + from + 1`, … into the first `n` blocks
    /// of `ks` (`J0` is the nonce followed by the 32-bit big-endian counter 1). It may fill a
    /// few more, up to the size of the SM4 kernel that takes `n` (so that no padded copy is
    /// made); those keystream blocks are never used.
    fn keystream(&self, nonce: &[u8], from: u32, n: usize, ks: &mut [Block]) {
        let n = self.cipher.batch_slots(n).min(ks.len());
        let mut ctr = from.wrapping_add(1);
        for b in ks[..n].iter_mut() {
            b[..12].copy_from_slice(nonce);
            b[12..].copy_from_slice(&ctr.to_be_bytes());
            ctr = ctr.wrapping_add(1);
        }
        self.cipher.encrypt_batch(&mut ks[..n]);
    }

    /// Applies GCM's CTR keystream (from `J0 + 1`) to `buffer`, calling `seen` on each stretch
    /// of output (whole blocks but for the last), after `check` approved `E(J0)`. Returns
    /// `E(J0)`, or `None` (buffer untouched) if `check` refused it.
    fn ctr(
        &self,
        nonce: &[u8],
        buffer: &mut [u8],
        check: impl FnOnce(&Block) -> bool,
        mut seen: impl FnMut(&[u8]),
    ) -> Option<Block> {
        let mut ks = [Block::default(); BATCH + 4];
        let first = buffer.len().div_ceil(16).min(BATCH);
        self.keystream(nonce, 0, first + 1, &mut ks);
        let mask = ks[0];
        if !check(&mask) {
            return None;
        }
        let (head, mut rest) = buffer.split_at_mut((first * 16).min(buffer.len()));
        xor_into(head, &ks[1..]);
        seen(head);
        let mut done = 1 + first as u32;
        while !rest.is_empty() {
            let n = rest.len().div_ceil(16).min(BATCH);
            self.keystream(nonce, done, n, &mut ks);
            done = done.wrapping_add(n as u32);
            let (h, r) = rest.split_at_mut((n * 16).min(rest.len()));
            xor_into(h, &ks[..n]);
            seen(h);
            rest = r;
        }
        Some(mask)
    }
}

/// XORs keystream blocks into `data`, 16 bytes per block.
#[inline]
fn xor_into(data: &mut [u8], ks: &[Block]) {
    for (d, k) in data.chunks_mut(16).zip(ks) {
        for (a, b) in d.iter_mut().zip(k.iter()) {
            *a ^= b;
        }
    }
}

/// The length block: bit lengths of the associated data and the text, 64-bit big-endian each.
fn lengths(aad: usize, text: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(aad as u64 * 8).to_be_bytes());
    b[8..].copy_from_slice(&(text as u64 * 8).to_be_bytes());
    b
}

/// A GHASH computation in progress.
enum Ghash<'a> {
    #[cfg(target_arch = "x86_64")]
    Clmul {
        token: crate::x86::Clmul,
        wide: Option<crate::x86::Vclmul>,
        powers: &'a [u128; 16],
        state: u128,
    },
    Soft(ghash::GHash),
}

impl Ghash<'_> {
    /// Absorbs `data`, zero-padding a final partial block (so every call but the last for
    /// one input must be whole blocks).
    fn update_padded(&mut self, data: &[u8]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Ghash::Clmul {
                token,
                wide,
                powers,
                state,
            } => {
                let whole = data.len() - data.len() % 16;
                *state = match wide {
                    Some(w) => w.update(powers, *state, &data[..whole]),
                    None => token.update(powers, *state, &data[..whole]),
                };
                if whole < data.len() {
                    let mut last = [0u8; 16];
                    last[..data.len() - whole].copy_from_slice(&data[whole..]);
                    *state = token.update(powers, *state, &last);
                }
            }
            Ghash::Soft(g) => g.update_padded(data),
        }
    }

    /// GHASH of everything absorbed.
    fn finalize(self) -> Block {
        match self {
            #[cfg(target_arch = "x86_64")]
            Ghash::Clmul { state, .. } => state.to_be_bytes().into(),
            Ghash::Soft(g) => g.finalize(),
        }
    }
}

impl From<Sm4> for Sm4Gcm {
    fn from(cipher: Sm4) -> Sm4Gcm {
        let mut h = Block::default();
        cipher.encrypt_block(&mut h);
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = crate::x86::Clmul::detect() {
            // POLYVAL's key for GHASH key H: mulX_POLYVAL(rev(H)) (RFC 8452 Appendix A).
            let mut v = u128::from_be_bytes(h.into());
            let carry = v >> 127;
            v = (v << 1) ^ carry ^ (carry << 127) ^ (carry << 126) ^ (carry << 121);
            let powers = token.powers(v);
            v.zeroize();
            h.zeroize();
            return Sm4Gcm {
                cipher,
                hash: Hasher::Clmul {
                    token,
                    wide: crate::x86::Vclmul::detect(),
                    powers,
                },
            };
        }
        let hash = Hasher::Soft(ghash::GHash::new(&h));
        h.zeroize();
        Sm4Gcm { cipher, hash }
    }
}

#[cfg(test)]
impl Sm4Gcm {
    /// With a chosen GHASH: `"soft"` (the `ghash` crate), `"clmul"` (8 blocks per reduction)
    /// or `"vclmul"` (16); `None` if this CPU cannot run it.
    pub(crate) fn with_ghash(cipher: Sm4, kind: &str) -> Option<Sm4Gcm> {
        let mut h = Block::default();
        cipher.encrypt_block(&mut h);
        let hash = match kind {
            "soft" => Hasher::Soft(ghash::GHash::new(&h)),
            #[cfg(target_arch = "x86_64")]
            "clmul" | "vclmul" => {
                let token = crate::x86::Clmul::detect()?;
                let wide = match kind {
                    "vclmul" => Some(crate::x86::Vclmul::detect()?),
                    _ => None,
                };
                let mut v = u128::from_be_bytes(h.into());
                let carry = v >> 127;
                v = (v << 1) ^ carry ^ (carry << 127) ^ (carry << 126) ^ (carry << 121);
                Hasher::Clmul {
                    token,
                    wide,
                    powers: token.powers(v),
                }
            }
            _ => return None,
        };
        Some(Sm4Gcm { cipher, hash })
    }
}

impl Drop for Sm4Gcm {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if let Hasher::Clmul { powers, .. } = &mut self.hash {
            powers.zeroize();
        }
    }
}

impl std::fmt::Debug for Sm4Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sm4Gcm")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl KeySizeUser for Sm4Gcm {
    type KeySize = U16;
}

impl KeyInit for Sm4Gcm {
    fn new(key: &Key<Self>) -> Self {
        Sm4Gcm::from(<Sm4 as cipher::KeyInit>::new(key))
    }
}

impl AeadCore for Sm4Gcm {
    type NonceSize = U12;
    type TagSize = U16;
    type CiphertextOverhead = U0;
}

impl AeadInPlace for Sm4Gcm {
    fn encrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> Result<Tag<Self>, Error> {
        if buffer.len() as u64 > P_MAX || associated_data.len() as u64 > A_MAX {
            return Err(Error);
        }
        let mut g = self.ghash();
        g.update_padded(associated_data);
        let len = buffer.len();
        let mask = self
            .ctr(nonce, buffer, |_| true, |ct| g.update_padded(ct))
            .ok_or(Error)?;
        g.update_padded(&lengths(associated_data.len(), len));
        let mut tag = g.finalize();
        for (t, m) in tag.iter_mut().zip(mask.iter()) {
            *t ^= m;
        }
        Ok(tag)
    }

    fn decrypt_in_place_detached(
        &self,
        nonce: &Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &Tag<Self>,
    ) -> Result<(), Error> {
        if buffer.len() as u64 > P_MAX || associated_data.len() as u64 > A_MAX {
            return Err(Error);
        }
        let mut g = self.ghash();
        g.update_padded(associated_data);
        g.update_padded(buffer);
        g.update_padded(&lengths(associated_data.len(), buffer.len()));
        let mut want = g.finalize();
        let check = |mask: &Block| {
            for (w, m) in want.iter_mut().zip(mask.iter()) {
                *w ^= m;
            }
            bool::from(want.as_slice().ct_eq(tag.as_slice()))
        };
        self.ctr(nonce, buffer, check, |_| {})
            .map(|_| ())
            .ok_or(Error)
    }
}
