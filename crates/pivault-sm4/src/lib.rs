//! The SM4 block cipher (GB/T 32907-2016 *Information security technology — SM4 block cipher
//! algorithm*; also ISO/IEC 18033-3:2010/Amd 1:2021), 128-bit block and key, for pivault's
//! SM4-GCM suite.
//!
//! [`Sm4`] implements the RustCrypto `cipher` 0.4 traits ([`KeyInit`], [`BlockCipher`],
//! [`BlockEncrypt`], [`BlockDecrypt`]), so it drops into `aes_gcm::AesGcm<Sm4, U12>` (SM4-GCM,
//! NIST SP 800-38D with SM4, as in RFC 8998 and GB/T 36624-2018) and into `ctr`. Its backends
//! hand many blocks at once to those modes (`ParBlocksSize` of 8 to 32), which is where the
//! speed comes from: GCM's counter mode encrypts independent blocks. [`Sm4Gcm`] is SM4-GCM with
//! its own GHASH (aggregated `PCLMULQDQ`/`VPCLMULQDQ`), byte for byte `AesGcm<Sm4, U12>` but
//! about twice as fast.
//!
//! # Backends
//!
//! Chosen once per key, at run time, best first ([`Backend::best`]):
//!
//! | [`Backend`] | needs | blocks per kernel call |
//! | --- | --- | --- |
//! | [`Backend::Gfni512`] | GFNI, AVX2, AVX-512F/BW/VL | 4 to 68 (64 for long runs) |
//! | [`Backend::Gfni256`] | GFNI, AVX2 | 4 to 16 |
//! | [`Backend::AesNi`] | AES-NI, SSSE3 | 4 or 8 |
//! | [`Backend::Soft`] | nothing (any target) | 1 |
//!
//! A kernel call costs at least one chain of 32 dependent rounds whatever its width, so the
//! backends take blocks in few, wide calls; [`Sm4Gcm`] hands them its counter blocks in
//! batches of up to 68 (a 1 KiB message and its tag mask in one call on AVX-512).
//!
//! The GFNI backends compute the S-box with two affine instructions around GF(2⁸) inversion,
//! the AES-NI backend with AES's own S-box between two nibble-table affine maps (Saarinen's
//! *sm4ni*); both are constant-time. The portable backend uses tables indexed by secret bytes
//! (like the RustCrypto `sm4` crate), so it is not constant-time against cache-timing attacks.
//!
//! The key expansion (once per key) uses the chosen backend's S-box too, so on x86_64 CPUs with
//! GFNI or AES-NI no table is indexed by key bytes either.
//!
//! # Zeroization
//!
//! The encryption and decryption round keys are wiped when an [`Sm4`] is dropped. Vector
//! registers and the stack buffers of the block functions are not.

#![deny(unsafe_op_in_unsafe_fn)]

use std::fmt;
use std::sync::OnceLock;

pub use aead;
pub use cipher;
pub use gcm::Sm4Gcm;

use cipher::consts::U16;
use cipher::{
    AlgorithmName, BlockCipher, BlockClosure, BlockDecrypt, BlockEncrypt, BlockSizeUser, Key,
    KeyInit, KeySizeUser,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

mod consts;
mod gcm;
mod soft;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

use consts::{CK, FK};
#[cfg(target_arch = "x86_64")]
use x86::Token;

/// An implementation of SM4's block function. See the [crate documentation](crate#backends).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// GFNI on 512-bit AVX-512 vectors, up to 68 blocks at a time (x86_64 with GFNI, AVX2,
    /// AVX-512F, AVX-512BW and AVX-512VL).
    Gfni512,
    /// GFNI on 256-bit AVX2 vectors, up to 16 blocks at a time (x86_64 with GFNI and AVX2).
    Gfni256,
    /// AES-NI's `AESENCLAST` between two SSSE3 nibble-table affine maps, up to 8 blocks at a
    /// time (x86_64 with AES-NI and SSSE3).
    AesNi,
    /// Portable table-driven code, one block at a time. Always available.
    Soft,
}

impl Backend {
    /// Every backend, best first.
    pub const ALL: [Backend; 4] = [
        Backend::Gfni512,
        Backend::Gfni256,
        Backend::AesNi,
        Backend::Soft,
    ];

    /// Whether this CPU can run the backend (detected at run time).
    pub fn is_available(self) -> bool {
        Imp::new(self).is_some()
    }

    /// The best backend this CPU can run; detected on the first call, then remembered.
    pub fn best() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            Backend::ALL
                .into_iter()
                .find(|b| b.is_available())
                .unwrap_or(Backend::Soft)
        })
    }

    /// Short stable name: `"gfni-avx512"`, `"gfni-avx2"`, `"aesni"` or `"soft"`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gfni512 => "gfni-avx512",
            Backend::Gfni256 => "gfni-avx2",
            Backend::AesNi => "aesni",
            Backend::Soft => "soft",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend together with the proof (a token from run-time detection) that it can run.
#[derive(Clone, Copy, Debug)]
enum Imp {
    #[cfg(target_arch = "x86_64")]
    Gfni512(x86::Gfni512),
    #[cfg(target_arch = "x86_64")]
    Gfni256(x86::Gfni256),
    #[cfg(target_arch = "x86_64")]
    AesNi(x86::AesNi),
    Soft,
}

impl Imp {
    fn new(backend: Backend) -> Option<Imp> {
        match backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Gfni512 => x86::Gfni512::detect().map(Imp::Gfni512),
            #[cfg(target_arch = "x86_64")]
            Backend::Gfni256 => x86::Gfni256::detect().map(Imp::Gfni256),
            #[cfg(target_arch = "x86_64")]
            Backend::AesNi => x86::AesNi::detect().map(Imp::AesNi),
            Backend::Soft => Some(Imp::Soft),
            #[cfg(not(target_arch = "x86_64"))]
            _ => None,
        }
    }

    fn backend(self) -> Backend {
        match self {
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni512(_) => Backend::Gfni512,
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni256(_) => Backend::Gfni256,
            #[cfg(target_arch = "x86_64")]
            Imp::AesNi(_) => Backend::AesNi,
            Imp::Soft => Backend::Soft,
        }
    }

    /// τ (the S-box on each byte of a word) with this backend's S-box.
    fn tau(self, w: u32) -> u32 {
        match self {
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni512(t) => t.tau(w),
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni256(t) => t.tau(w),
            #[cfg(target_arch = "x86_64")]
            Imp::AesNi(t) => t.tau(w),
            Imp::Soft => soft::tau(w),
        }
    }

    /// The 32 rounds with `rk` over `blocks` in place, as few kernel calls as fit.
    fn batch(self, rk: &[u32; 32], blocks: &mut [cipher::Block<Sm4>]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni512(t) => t.batch(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni256(t) => t.batch(rk, blocks),
            #[cfg(target_arch = "x86_64")]
            Imp::AesNi(t) => t.batch(rk, blocks),
            Imp::Soft => {
                for b in blocks {
                    let mut a: [u8; 16] = (*b).into();
                    soft::crypt_block(rk, &mut a);
                    b.copy_from_slice(&a);
                }
            }
        }
    }

    /// How many blocks a batch of `n` is best padded to (the size of the kernel that takes it;
    /// `n` where padding gains nothing).
    fn slots(self, n: usize) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni512(_) => x86::slots_gfni512(n),
            _ => n,
        }
    }

    /// Hands `f` this backend's block function over round keys `rk`.
    #[inline]
    fn call(self, rk: &[u32; 32], f: impl BlockClosure<BlockSize = U16>) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni512(t) => f.call(&mut x86::SimdBackend::new(rk, t)),
            #[cfg(target_arch = "x86_64")]
            Imp::Gfni256(t) => f.call(&mut x86::SimdBackend::new(rk, t)),
            #[cfg(target_arch = "x86_64")]
            Imp::AesNi(t) => f.call(&mut x86::SimdBackend::new(rk, t)),
            Imp::Soft => f.call(&mut soft::SoftBackend(rk)),
        }
    }
}

/// The SM4 block cipher with an expanded key: 32 encryption round keys, the same reversed for
/// decryption, and the [`Backend`] that runs them. Round keys are zeroized on drop.
///
/// [`KeyInit::new`] picks [`Backend::best`]; [`Sm4::new_with_backend`] picks one explicitly.
/// `Debug` prints only the backend.
#[derive(Clone)]
pub struct Sm4 {
    enc: [u32; 32],
    dec: [u32; 32],
    imp: Imp,
}

impl Sm4 {
    /// Expands `key` for `backend`, or `None` if this CPU cannot run it
    /// ([`Backend::is_available`]).
    pub fn new_with_backend(key: &[u8; 16], backend: Backend) -> Option<Sm4> {
        Imp::new(backend).map(|imp| Sm4::expand(key, imp))
    }

    /// The backend this key runs on.
    pub fn backend(&self) -> Backend {
        self.imp.backend()
    }

    /// Encrypts `blocks` in place (SM4's ECB), with as few kernel calls as fit: SM4-GCM's
    /// counter blocks go here in batches.
    pub(crate) fn encrypt_batch(&self, blocks: &mut [cipher::Block<Sm4>]) {
        self.imp.batch(&self.enc, blocks);
    }

    /// How many blocks a batch of `n` for [`Sm4::encrypt_batch`] is best padded to.
    pub(crate) fn batch_slots(&self, n: usize) -> usize {
        self.imp.slots(n)
    }

    /// The key expansion of GB/T 32907-2016 §7.3: `K_i = MK_i ⊕ FK_i`, then
    /// `rk_i = K_{i+4} = K_i ⊕ T'(K_{i+1} ⊕ K_{i+2} ⊕ K_{i+3} ⊕ CK_i)` with
    /// `T' = L' ∘ τ`, `L'(b) = b ⊕ (b ⋘ 13) ⊕ (b ⋘ 23)`.
    fn expand(key: &[u8; 16], imp: Imp) -> Sm4 {
        let mut k = [0u32; 4];
        for ((w, c), fk) in k.iter_mut().zip(key.chunks_exact(4)).zip(FK) {
            *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) ^ fk;
        }
        let mut enc = [0u32; 32];
        for (i, (rk, ck)) in enc.iter_mut().zip(CK).enumerate() {
            let b = imp.tau(k[(i + 1) % 4] ^ k[(i + 2) % 4] ^ k[(i + 3) % 4] ^ ck);
            k[i % 4] ^= b ^ b.rotate_left(13) ^ b.rotate_left(23);
            *rk = k[i % 4];
        }
        k.zeroize();
        let mut dec = enc;
        dec.reverse();
        Sm4 { enc, dec, imp }
    }
}

impl Drop for Sm4 {
    fn drop(&mut self) {
        self.enc.zeroize();
        self.dec.zeroize();
    }
}

impl ZeroizeOnDrop for Sm4 {}

impl fmt::Debug for Sm4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm4")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl AlgorithmName for Sm4 {
    fn write_alg_name(f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SM4")
    }
}

impl KeySizeUser for Sm4 {
    type KeySize = U16;
}

impl KeyInit for Sm4 {
    fn new(key: &Key<Self>) -> Self {
        let imp = Imp::new(Backend::best()).unwrap_or(Imp::Soft);
        Sm4::expand(&(*key).into(), imp)
    }
}

impl BlockSizeUser for Sm4 {
    type BlockSize = U16;
}

impl BlockCipher for Sm4 {}

impl BlockEncrypt for Sm4 {
    #[inline]
    fn encrypt_with_backend(&self, f: impl BlockClosure<BlockSize = Self::BlockSize>) {
        self.imp.call(&self.enc, f);
    }
}

impl BlockDecrypt for Sm4 {
    /// Decryption is the same 32 rounds with the round keys reversed (§7.2).
    #[inline]
    fn decrypt_with_backend(&self, f: impl BlockClosure<BlockSize = Self::BlockSize>) {
        self.imp.call(&self.dec, f);
    }
}
