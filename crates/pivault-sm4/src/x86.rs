//! x86_64 SIMD backends, chosen at run time.
//!
//! All of them run many blocks at once in the same layout: the blocks' words are byte-swapped
//! to native order and transposed (4 × 4 words within each 128-bit lane), so one vector holds
//! word j of 4, 8 or 16 blocks and a round is a handful of whole-vector operations. They differ
//! in how τ (the S-box on every byte) is computed:
//!
//! * **GFNI** ([`v512`], [`v256`], [`v128g`]). The SM4 S-box is `A·I(A·x + C) + C` with `I`
//!   inversion in GF(2⁸) modulo x⁸+x⁷+x⁶+x⁵+x⁴+x²+1, `A` the circulant matrix of `0xA7` and
//!   `C = 0xD3` (GB/T 32907-2016's S-box, the affine decomposition that the libgcrypt and
//!   Linux SM4 GFNI code also use). GFNI's `gf2p8affineinvqb` inverts in AES's field
//!   (x⁸+x⁴+x³+x+1), so with `M` the field isomorphism that maps x to 0x23 (a root of SM4's
//!   polynomial in AES's field), `S(x) = (A·M⁻¹)·I_aes((M·A)·x + M·C) + C`: one
//!   `gf2p8affineqb` with matrix `M·A` and constant `M·C = 0x3E`, then one `gf2p8affineinvqb`
//!   with matrix `A·M⁻¹` and constant `0xD3`. The matrices were derived with a script and are
//!   checked here against all 256 entries of the S-box table by the unit tests.
//! * **AES-NI** ([`v128a`], after M.-J. O. Saarinen's *sm4ni*): `AESENCLAST` with a zero key
//!   computes AES's SubBytes, `A_aes·I_aes(y) + 0x63`, on every byte (after ShiftRows, undone by
//!   a byte shuffle). Around it, two affine maps done by `pshufb` on nibble tables move SM4's
//!   input into AES's field and AES's output back into SM4's S-box.
//!
//! This is the only module of the crate with `unsafe` code: calls of `#[target_feature]`
//! kernels, each made through a zero-sized token whose only constructor checked the features
//! at run time, and unaligned vector loads and stores of blocks.

use core::arch::x86_64::*;

use cipher::consts::{U16, U32, U8};
use cipher::generic_array::{ArrayLength, GenericArray};
use cipher::inout::{InOut, InOutBuf};
use cipher::{BlockBackend, BlockSizeUser, ParBlocks, ParBlocksSizeUser};

/// One 16-byte block.
type B16 = GenericArray<u8, U16>;

// The loads and stores below read and write 16 bytes per block of a `[B16]` slice: the type
// must be exactly 16 bytes, with no padding between elements.
const _: () = assert!(core::mem::size_of::<B16>() == 16);

/// `gf2p8affineqb` matrix `M·A` (SM4's input affine map into AES's field), one row per byte:
/// byte 7 − i of the quadword is the row that gives output bit i.
const GFNI_PRE: i64 = 0x4C28_7DB9_1A22_505D;
/// Constant of the input map, `M·C`.
const GFNI_PRE_C: i32 = 0x3E;
/// `gf2p8affineinvqb` matrix `A·M⁻¹`.
const GFNI_POST: i64 = 0xF3AB_34A9_74A6_B589_u64 as i64;
/// Constant of the output map, `C`.
const GFNI_POST_C: i32 = 0xD3;

/// Input affine map for AES-NI (`M·A·x + M·C`), as the images of the low and the high nibble.
const AESNI_PRE_LO: [u8; 16] = [
    0x3e, 0xb2, 0x0e, 0x82, 0xbb, 0x37, 0x8b, 0x07, 0xa1, 0x2d, 0x91, 0x1d, 0x24, 0xa8, 0x14, 0x98,
];
const AESNI_PRE_HI: [u8; 16] = [
    0x00, 0xdc, 0x2e, 0xf2, 0xc5, 0x19, 0xeb, 0x37, 0x08, 0xd4, 0x26, 0xfa, 0xcd, 0x11, 0xe3, 0x3f,
];
/// Output affine map for AES-NI (`A·M⁻¹·A_aes⁻¹·(z + 0x63) + C`), low and high nibble.
const AESNI_POST_LO: [u8; 16] = [
    0x6c, 0xd4, 0xa6, 0x1e, 0x52, 0xea, 0x98, 0x20, 0x0b, 0xb3, 0xc1, 0x79, 0x35, 0x8d, 0xff, 0x47,
];
const AESNI_POST_HI: [u8; 16] = [
    0x00, 0xe0, 0x50, 0xb0, 0x9d, 0x7d, 0xcd, 0x2d, 0xc0, 0x20, 0x90, 0x70, 0x5d, 0xbd, 0x0d, 0xed,
];

/// `pshufb` pattern that undoes AES's ShiftRows: byte `r + 4c` takes byte `r + 4((c − r) mod 4)`.
const INV_SHIFT_ROWS: [u8; 16] = [0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3];
/// Byte swap of each 32-bit word (SM4 words are big-endian).
const BSWAP32: [u8; 16] = [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12];
/// Rotations of each little-endian 32-bit word left by 8, 16 and 24 bits.
const ROL8: [u8; 16] = [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14];
const ROL16: [u8; 16] = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13];
const ROL24: [u8; 16] = [1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12];

/// The two little-endian quadwords of a 16-byte pattern.
const fn halves(p: [u8; 16]) -> (i64, i64) {
    let mut lo = 0u64;
    let mut hi = 0u64;
    let mut i = 0;
    while i < 8 {
        lo |= (p[i] as u64) << (8 * i);
        hi |= (p[i + 8] as u64) << (8 * i);
        i += 1;
    }
    (lo as i64, hi as i64)
}

/// A 16-byte pattern as an XMM value.
#[target_feature(enable = "sse2")]
#[inline]
fn xmm(p: [u8; 16]) -> __m128i {
    let (lo, hi) = halves(p);
    _mm_set_epi64x(hi, lo)
}

/// The 32-round kernel, shared by every vector width. Expects in scope: `V`, `BPR` (blocks per
/// vector), `zero`, `load`, `store`, `bswap`, `splat`, `transpose` and `round`, all with the
/// module's target features.
macro_rules! kernel {
    ($feat:literal) => {
        /// Runs the 32 rounds with round keys `rk` over `blocks` in place: `G` independent
        /// groups of `4 · BPR` blocks, interleaved round by round so their dependency chains
        /// overlap.
        ///
        /// # Panics
        /// If `blocks.len() != G · 4 · BPR`.
        #[target_feature(enable = $feat)]
        pub(super) fn crypt<const G: usize>(rk: &[u32; 32], blocks: &mut [B16]) {
            let n = 4 * BPR;
            assert!(
                blocks.len() == G * n,
                "kernel called with the wrong number of blocks"
            );
            let mut x: [[V; 4]; G] = [[zero(); 4]; G];
            for (xg, c) in x.iter_mut().zip(blocks.chunks_exact(n)) {
                *xg = transpose(
                    bswap(load(&c[..BPR])),
                    bswap(load(&c[BPR..2 * BPR])),
                    bswap(load(&c[2 * BPR..3 * BPR])),
                    bswap(load(&c[3 * BPR..])),
                );
            }
            for k in rk.chunks_exact(4) {
                let k0 = splat(k[0]);
                for xg in x.iter_mut() {
                    xg[0] = round(xg[0], xg[1], xg[2], xg[3], k0);
                }
                let k1 = splat(k[1]);
                for xg in x.iter_mut() {
                    xg[1] = round(xg[1], xg[2], xg[3], xg[0], k1);
                }
                let k2 = splat(k[2]);
                for xg in x.iter_mut() {
                    xg[2] = round(xg[2], xg[3], xg[0], xg[1], k2);
                }
                let k3 = splat(k[3]);
                for xg in x.iter_mut() {
                    xg[3] = round(xg[3], xg[0], xg[1], xg[2], k3);
                }
            }
            // The reverse transformation R: blocks come out as (X35, X34, X33, X32).
            for (xg, c) in x.iter().zip(blocks.chunks_exact_mut(n)) {
                let [a, b, cc, d] = transpose(xg[3], xg[2], xg[1], xg[0]);
                store(&mut c[..BPR], bswap(a));
                store(&mut c[BPR..2 * BPR], bswap(b));
                store(&mut c[2 * BPR..3 * BPR], bswap(cc));
                store(&mut c[3 * BPR..], bswap(d));
            }
        }

        /// τ on every byte of `blocks` (unit tests check it against the S-box table).
        #[cfg(test)]
        #[target_feature(enable = $feat)]
        pub(super) fn sbox_blocks(blocks: &mut [B16]) {
            for c in blocks.chunks_exact_mut(BPR) {
                let v = sbox(load(c));
                store(c, v);
            }
        }
    };
}

/// GFNI on 512-bit vectors (AVX-512F/BW): 16 blocks per group of four vectors.
pub(crate) mod v512 {
    use super::*;

    type V = __m512i;
    const BPR: usize = 4;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn zero() -> V {
        _mm512_setzero_si512()
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn load(b: &[B16]) -> V {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 4 blocks, 64 contiguous initialised bytes (B16 is 16 bytes with no
        // padding); the unaligned load needs no alignment.
        unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn store(b: &mut [B16], v: V) {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 4 blocks, 64 contiguous writable bytes that this exclusive borrow
        // owns; the unaligned store needs no alignment.
        unsafe { _mm512_storeu_si512(b.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn lanes(p: [u8; 16]) -> V {
        _mm512_broadcast_i32x4(xmm(p))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn bswap(v: V) -> V {
        _mm512_shuffle_epi8(v, lanes(BSWAP32))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn splat(k: u32) -> V {
        _mm512_set1_epi32(k as i32)
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn transpose(a: V, b: V, c: V, d: V) -> [V; 4] {
        let t0 = _mm512_unpacklo_epi32(a, b);
        let t1 = _mm512_unpackhi_epi32(a, b);
        let t2 = _mm512_unpacklo_epi32(c, d);
        let t3 = _mm512_unpackhi_epi32(c, d);
        [
            _mm512_unpacklo_epi64(t0, t2),
            _mm512_unpackhi_epi64(t0, t2),
            _mm512_unpacklo_epi64(t1, t3),
            _mm512_unpackhi_epi64(t1, t3),
        ]
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn sbox(v: V) -> V {
        let y = _mm512_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm512_set1_epi64(GFNI_PRE));
        _mm512_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm512_set1_epi64(GFNI_POST))
    }

    /// `x0 ⊕ L(τ(x1 ⊕ x2 ⊕ x3 ⊕ k))`, L with four rotations and two three-way XORs.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
        let t = _mm512_xor_si512(x3, _mm512_ternarylogic_epi32::<0x96>(x1, x2, k));
        let t = sbox(t);
        let a = _mm512_ternarylogic_epi32::<0x96>(x0, t, _mm512_rol_epi32::<2>(t));
        let b = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_rol_epi32::<10>(t),
            _mm512_rol_epi32::<18>(t),
            _mm512_rol_epi32::<24>(t),
        );
        _mm512_xor_si512(a, b)
    }

    kernel!("avx512f,avx512bw,avx512vl,gfni");
}

/// The L of the 128- and 256-bit backends (no vector rotate before AVX-512): byte rotations
/// by shuffles, the 2-bit rotation by two shifts. `L(t) = t ⊕ rol24(t) ⊕ rol2(t ⊕ rol8(t) ⊕
/// rol16(t))`. Expects `xor`, `shuffle`, `lanes`, `shl2`, `shr30` in scope.
macro_rules! l_shuffle {
    ($x0:expr, $t:expr) => {{
        let t = $t;
        let u = xor(xor(t, shuffle(t, lanes(ROL8))), shuffle(t, lanes(ROL16)));
        let r = xor(shl2(u), shr30(u));
        xor(xor($x0, t), xor(shuffle(t, lanes(ROL24)), r))
    }};
}

/// GFNI on 256-bit vectors (AVX2): 8 blocks per group of four vectors.
pub(crate) mod v256 {
    use super::*;

    type V = __m256i;
    const BPR: usize = 2;

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn zero() -> V {
        _mm256_setzero_si256()
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn load(b: &[B16]) -> V {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 2 blocks, 32 contiguous initialised bytes (B16 is 16 bytes with no
        // padding); the unaligned load needs no alignment.
        unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn store(b: &mut [B16], v: V) {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 2 blocks, 32 contiguous writable bytes that this exclusive borrow
        // owns; the unaligned store needs no alignment.
        unsafe { _mm256_storeu_si256(b.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn lanes(p: [u8; 16]) -> V {
        _mm256_broadcastsi128_si256(xmm(p))
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn xor(a: V, b: V) -> V {
        _mm256_xor_si256(a, b)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn shuffle(a: V, p: V) -> V {
        _mm256_shuffle_epi8(a, p)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn shl2(a: V) -> V {
        _mm256_slli_epi32::<2>(a)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn shr30(a: V) -> V {
        _mm256_srli_epi32::<30>(a)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn bswap(v: V) -> V {
        shuffle(v, lanes(BSWAP32))
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn splat(k: u32) -> V {
        _mm256_set1_epi32(k as i32)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn transpose(a: V, b: V, c: V, d: V) -> [V; 4] {
        let t0 = _mm256_unpacklo_epi32(a, b);
        let t1 = _mm256_unpackhi_epi32(a, b);
        let t2 = _mm256_unpacklo_epi32(c, d);
        let t3 = _mm256_unpackhi_epi32(c, d);
        [
            _mm256_unpacklo_epi64(t0, t2),
            _mm256_unpackhi_epi64(t0, t2),
            _mm256_unpacklo_epi64(t1, t3),
            _mm256_unpackhi_epi64(t1, t3),
        ]
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn sbox(v: V) -> V {
        let y = _mm256_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm256_set1_epi64x(GFNI_PRE));
        _mm256_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm256_set1_epi64x(GFNI_POST))
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
        let t = sbox(xor(x3, xor(xor(x1, x2), k)));
        l_shuffle!(x0, t)
    }

    kernel!("avx2,gfni");
}

/// The 128-bit backends' common helpers: `$feat` is their target-feature list.
macro_rules! v128_common {
    ($feat:literal) => {
        type V = __m128i;
        const BPR: usize = 1;

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn zero() -> V {
            _mm_setzero_si128()
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn load(b: &[B16]) -> V {
            assert!(b.len() == BPR);
            // SAFETY: `b` is one block, 16 contiguous initialised bytes; the unaligned load
            // needs no alignment.
            unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn store(b: &mut [B16], v: V) {
            assert!(b.len() == BPR);
            // SAFETY: `b` is one block, 16 contiguous writable bytes that this exclusive
            // borrow owns; the unaligned store needs no alignment.
            unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn lanes(p: [u8; 16]) -> V {
            xmm(p)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn shuffle(a: V, p: V) -> V {
            _mm_shuffle_epi8(a, p)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn bswap(v: V) -> V {
            shuffle(v, lanes(BSWAP32))
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn splat(k: u32) -> V {
            _mm_set1_epi32(k as i32)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn transpose(a: V, b: V, c: V, d: V) -> [V; 4] {
            let t0 = _mm_unpacklo_epi32(a, b);
            let t1 = _mm_unpackhi_epi32(a, b);
            let t2 = _mm_unpacklo_epi32(c, d);
            let t3 = _mm_unpackhi_epi32(c, d);
            [
                _mm_unpacklo_epi64(t0, t2),
                _mm_unpackhi_epi64(t0, t2),
                _mm_unpacklo_epi64(t1, t3),
                _mm_unpackhi_epi64(t1, t3),
            ]
        }

        /// τ of one word (the key expansion's S-box, without tables).
        #[target_feature(enable = $feat)]
        pub(super) fn tau(w: u32) -> u32 {
            _mm_cvtsi128_si32(sbox(_mm_cvtsi32_si128(w as i32))) as u32
        }

        kernel!($feat);
    };
}

/// The round of the 128-bit backends without vector rotations (L by shuffles and shifts).
macro_rules! v128_round_shuffle {
    ($feat:literal) => {
        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn xor(a: V, b: V) -> V {
            _mm_xor_si128(a, b)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn shl2(a: V) -> V {
            _mm_slli_epi32::<2>(a)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn shr30(a: V) -> V {
            _mm_srli_epi32::<30>(a)
        }
        #[target_feature(enable = $feat)]
        #[inline]
        pub(super) fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
            let t = sbox(xor(x3, xor(xor(x1, x2), k)));
            l_shuffle!(x0, t)
        }
    };
}

/// GFNI on 128-bit vectors (with the AVX2 encodings): 4 blocks per group, for single blocks
/// and short tails of the wider GFNI backends.
pub(crate) mod v128g {
    use super::*;

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    pub(super) fn sbox(v: V) -> V {
        let y = _mm_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm_set1_epi64x(GFNI_PRE));
        _mm_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm_set1_epi64x(GFNI_POST))
    }

    v128_round_shuffle!("avx2,gfni");
    v128_common!("avx2,gfni");
}

/// GFNI on 128-bit vectors with AVX-512VL's three-way XOR and rotations (the shorter round of
/// [`v512`]): single blocks, short tails and the 4-block lane of the 36-block kernel of the
/// AVX-512 backend.
pub(crate) mod vl128 {
    use super::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn sbox(v: V) -> V {
        let y = _mm_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm_set1_epi64x(GFNI_PRE));
        _mm_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm_set1_epi64x(GFNI_POST))
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
    #[inline]
    pub(super) fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
        let t = _mm_xor_si128(x3, _mm_ternarylogic_epi32::<0x96>(x1, x2, k));
        let t = sbox(t);
        let a = _mm_ternarylogic_epi32::<0x96>(x0, t, _mm_rol_epi32::<2>(t));
        let b = _mm_ternarylogic_epi32::<0x96>(
            _mm_rol_epi32::<10>(t),
            _mm_rol_epi32::<18>(t),
            _mm_rol_epi32::<24>(t),
        );
        _mm_xor_si128(a, b)
    }

    v128_common!("avx512f,avx512bw,avx512vl,gfni");
}

/// `16·G + 4` blocks at once on the AVX-512 GFNI backend: `G` 16-block groups in ZMM registers
/// and one 4-block group in XMM registers, interleaved. A GCM message of 2ⁿ blocks needs one
/// block more (the tag mask `E(J0)`); this kernel takes it along at little more than the cost
/// of the `16·G`.
///
/// # Panics
/// If `blocks.len() != 16·G + 4`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
fn crypt_zx<const G: usize>(rk: &[u32; 32], blocks: &mut [B16]) {
    assert!(
        blocks.len() == 16 * G + 4,
        "kernel called with the wrong number of blocks"
    );
    let (zb, xb) = blocks.split_at_mut(16 * G);
    let mut z = [[v512::zero(); 4]; G];
    for (zg, c) in z.iter_mut().zip(zb.chunks_exact(16)) {
        *zg = v512::transpose(
            v512::bswap(v512::load(&c[..4])),
            v512::bswap(v512::load(&c[4..8])),
            v512::bswap(v512::load(&c[8..12])),
            v512::bswap(v512::load(&c[12..])),
        );
    }
    let mut x = vl128::transpose(
        vl128::bswap(vl128::load(&xb[..1])),
        vl128::bswap(vl128::load(&xb[1..2])),
        vl128::bswap(vl128::load(&xb[2..3])),
        vl128::bswap(vl128::load(&xb[3..])),
    );
    for k in rk.chunks_exact(4) {
        for (j, &kj) in k.iter().enumerate() {
            let (a, b, c, d) = (j, (j + 1) % 4, (j + 2) % 4, (j + 3) % 4);
            let kz = v512::splat(kj);
            for zg in z.iter_mut() {
                zg[a] = v512::round(zg[a], zg[b], zg[c], zg[d], kz);
            }
            x[a] = vl128::round(x[a], x[b], x[c], x[d], vl128::splat(kj));
        }
    }
    for (zg, c) in z.iter().zip(zb.chunks_exact_mut(16)) {
        let [a, b, cc, d] = v512::transpose(zg[3], zg[2], zg[1], zg[0]);
        v512::store(&mut c[..4], v512::bswap(a));
        v512::store(&mut c[4..8], v512::bswap(b));
        v512::store(&mut c[8..12], v512::bswap(cc));
        v512::store(&mut c[12..], v512::bswap(d));
    }
    let [a, b, c, d] = vl128::transpose(x[3], x[2], x[1], x[0]);
    vl128::store(&mut xb[..1], vl128::bswap(a));
    vl128::store(&mut xb[1..2], vl128::bswap(b));
    vl128::store(&mut xb[2..3], vl128::bswap(c));
    vl128::store(&mut xb[3..], vl128::bswap(d));
}

/// AES-NI with SSSE3 on 128-bit vectors: 4 blocks per group.
pub(crate) mod v128a {
    use super::*;

    /// The affine map given by its nibble tables `lo` and `hi` on every byte of `v`.
    #[target_feature(enable = "aes,ssse3")]
    #[inline]
    fn affine(v: V, lo: [u8; 16], hi: [u8; 16]) -> V {
        let mask = _mm_set1_epi8(0x0f);
        let l = _mm_and_si128(v, mask);
        let h = _mm_and_si128(_mm_srli_epi32::<4>(v), mask);
        _mm_xor_si128(_mm_shuffle_epi8(xmm(lo), l), _mm_shuffle_epi8(xmm(hi), h))
    }

    #[target_feature(enable = "aes,ssse3")]
    #[inline]
    pub(super) fn sbox(v: V) -> V {
        let y = affine(v, AESNI_PRE_LO, AESNI_PRE_HI);
        let z = _mm_aesenclast_si128(y, _mm_setzero_si128());
        _mm_shuffle_epi8(affine(z, AESNI_POST_LO, AESNI_POST_HI), xmm(INV_SHIFT_ROWS))
    }

    v128_round_shuffle!("aes,ssse3");
    v128_common!("aes,ssse3");
}

/// Runs `f` on `blocks` in place if there are exactly `N`, else on a copy padded with zero
/// blocks to `N` (`N ≥` their number), copying the results back.
#[inline]
fn padded<const N: usize>(blocks: &mut [B16], f: impl FnOnce(&mut [B16])) {
    let n = blocks.len();
    if n == N {
        return f(blocks);
    }
    let mut buf = [B16::default(); N];
    buf[..n].copy_from_slice(blocks);
    f(&mut buf);
    blocks.copy_from_slice(&buf[..n]);
}

/// Any number of blocks through the AVX-512 GFNI kernels, in place: 64 at a time (four
/// interleaved groups hide the rounds' latency), and the rest in the smallest kernel that holds
/// it (each call costs at least one chain of 32 rounds, so few calls).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,gfni")]
fn batch_gfni512(rk: &[u32; 32], mut blocks: &mut [B16]) {
    while blocks.len() > 68 {
        let (head, tail) = blocks.split_at_mut(64);
        v512::crypt::<4>(rk, head);
        blocks = tail;
    }
    match blocks.len() {
        0 => {}
        1..=4 => padded::<4>(blocks, |b| vl128::crypt::<1>(rk, b)),
        5..=16 => padded::<16>(blocks, |b| v512::crypt::<1>(rk, b)),
        17..=32 => padded::<32>(blocks, |b| v512::crypt::<2>(rk, b)),
        33..=36 => padded::<36>(blocks, |b| crypt_zx::<2>(rk, b)),
        37..=48 => padded::<48>(blocks, |b| v512::crypt::<3>(rk, b)),
        49..=64 => padded::<64>(blocks, |b| v512::crypt::<4>(rk, b)),
        _ => padded::<68>(blocks, |b| crypt_zx::<4>(rk, b)),
    }
}

/// The number of blocks [`batch_gfni512`] runs for `n`: padding a batch to it up front (with
/// more counter blocks, say) saves the copy into a padded buffer.
pub(crate) fn slots_gfni512(n: usize) -> usize {
    match n {
        0 => 0,
        1..=4 => 4,
        5..=16 => 16,
        17..=32 => 32,
        33..=36 => 36,
        37..=48 => 48,
        49..=64 => 64,
        65..=68 => 68,
        _ => n,
    }
}

/// Any number of blocks through the AVX2 GFNI kernels, in place.
#[target_feature(enable = "avx2,gfni")]
fn batch_gfni256(rk: &[u32; 32], mut blocks: &mut [B16]) {
    while blocks.len() > 16 {
        let (head, tail) = blocks.split_at_mut(16);
        v256::crypt::<2>(rk, head);
        blocks = tail;
    }
    match blocks.len() {
        0 => {}
        1..=4 => padded::<4>(blocks, |b| v128g::crypt::<1>(rk, b)),
        5..=8 => padded::<8>(blocks, |b| v256::crypt::<1>(rk, b)),
        _ => padded::<16>(blocks, |b| v256::crypt::<2>(rk, b)),
    }
}

/// Any number of blocks through the AES-NI kernels, in place.
#[target_feature(enable = "aes,ssse3")]
fn batch_aesni(rk: &[u32; 32], mut blocks: &mut [B16]) {
    while blocks.len() > 8 {
        let (head, tail) = blocks.split_at_mut(8);
        v128a::crypt::<2>(rk, head);
        blocks = tail;
    }
    match blocks.len() {
        0 => {}
        1..=4 => padded::<4>(blocks, |b| v128a::crypt::<1>(rk, b)),
        _ => padded::<8>(blocks, |b| v128a::crypt::<2>(rk, b)),
    }
}

/// A SIMD backend's proof of detection: runs its kernels over any number of blocks.
pub(crate) trait Token: Copy {
    /// Blocks per `proc_par_blocks` call of its [`SimdBackend`].
    type Par: ArrayLength<B16>;

    /// The 32 rounds with `rk` over `blocks`, in place.
    fn batch(self, rk: &[u32; 32], blocks: &mut [B16]);

    /// τ of one word with this backend's S-box.
    fn tau(self, w: u32) -> u32;
}

/// Proof that the CPU has GFNI, AVX2 and AVX-512F/BW/VL: only [`Gfni512::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gfni512(());

impl Gfni512 {
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("gfni")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl"))
        .then_some(Gfni512(()))
    }
}

impl Token for Gfni512 {
    type Par = U32;

    fn batch(self, rk: &[u32; 32], blocks: &mut [B16]) {
        // SAFETY: this token exists only if `detect` saw GFNI and AVX-512F/BW/VL at run time.
        unsafe { batch_gfni512(rk, blocks) }
    }

    fn tau(self, w: u32) -> u32 {
        // SAFETY: as in `batch`.
        unsafe { vl128::tau(w) }
    }
}

/// Proof that the CPU has GFNI and AVX2: only [`Gfni256::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gfni256(());

impl Gfni256 {
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("gfni") && std::arch::is_x86_feature_detected!("avx2"))
            .then_some(Gfni256(()))
    }
}

impl Token for Gfni256 {
    type Par = U16;

    fn batch(self, rk: &[u32; 32], blocks: &mut [B16]) {
        // SAFETY: this token exists only if `detect` saw GFNI and AVX2 at run time.
        unsafe { batch_gfni256(rk, blocks) }
    }

    fn tau(self, w: u32) -> u32 {
        // SAFETY: as in `batch`.
        unsafe { v128g::tau(w) }
    }
}

/// Proof that the CPU has AES-NI and SSSE3: only [`AesNi::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AesNi(());

impl AesNi {
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("ssse3"))
            .then_some(AesNi(()))
    }
}

impl Token for AesNi {
    type Par = U8;

    fn batch(self, rk: &[u32; 32], blocks: &mut [B16]) {
        // SAFETY: this token exists only if `detect` saw AES-NI and SSSE3 at run time.
        unsafe { batch_aesni(rk, blocks) }
    }

    fn tau(self, w: u32) -> u32 {
        // SAFETY: as in `batch`.
        unsafe { v128a::tau(w) }
    }
}

/// The [`BlockBackend`] of a SIMD backend: round keys and the detection token. Every call,
/// one block or many, goes through the token's batch function.
pub(crate) struct SimdBackend<'a, T> {
    rk: &'a [u32; 32],
    token: T,
}

impl<'a, T: Token> SimdBackend<'a, T> {
    pub(crate) fn new(rk: &'a [u32; 32], token: T) -> Self {
        SimdBackend { rk, token }
    }
}

impl<T: Token> BlockSizeUser for SimdBackend<'_, T> {
    type BlockSize = U16;
}

impl<T: Token> ParBlocksSizeUser for SimdBackend<'_, T> {
    type ParBlocksSize = T::Par;
}

impl<T: Token> BlockBackend for SimdBackend<'_, T> {
    #[inline]
    fn proc_block(&mut self, mut block: InOut<'_, '_, B16>) {
        let mut buf = [block.clone_in()];
        self.token.batch(self.rk, &mut buf);
        *block.get_out() = buf[0];
    }

    #[inline]
    fn proc_par_blocks(&mut self, mut blocks: InOut<'_, '_, ParBlocks<Self>>) {
        let mut buf = blocks.clone_in();
        self.token.batch(self.rk, &mut buf);
        *blocks.get_out() = buf;
    }

    #[inline]
    fn proc_tail_blocks(&mut self, mut blocks: InOutBuf<'_, '_, B16>) {
        let n = blocks.len();
        let mut buf = ParBlocks::<Self>::default();
        buf[..n].copy_from_slice(blocks.get_in());
        self.token.batch(self.rk, &mut buf[..n]);
        blocks.get_out().copy_from_slice(&buf[..n]);
    }
}

/// τ on all 256 byte values through the vector S-box of every kernel this CPU can run, by
/// kernel name (for the unit tests).
#[cfg(test)]
pub(crate) fn sbox_tables() -> Vec<(&'static str, [u8; 256])> {
    fn all_bytes() -> [B16; 16] {
        let mut blocks = [B16::default(); 16];
        for (i, b) in blocks.iter_mut().enumerate() {
            for (j, v) in b.iter_mut().enumerate() {
                *v = (16 * i + j) as u8;
            }
        }
        blocks
    }
    let mut out = Vec::new();
    let mut push = |name: &'static str, blocks: [B16; 16]| {
        let mut t = [0u8; 256];
        for (o, b) in t.chunks_exact_mut(16).zip(blocks.iter()) {
            o.copy_from_slice(b);
        }
        out.push((name, t));
    };
    if Gfni512::detect().is_some() {
        let mut b = all_bytes();
        // SAFETY: GFNI and AVX-512F/BW were detected just above.
        unsafe { v512::sbox_blocks(&mut b) };
        push("gfni-avx512", b);
        let mut b = all_bytes();
        // SAFETY: as above.
        unsafe { vl128::sbox_blocks(&mut b) };
        push("gfni-avx512vl-128", b);
    }
    if Gfni256::detect().is_some() {
        let mut b = all_bytes();
        // SAFETY: GFNI and AVX2 were detected just above.
        unsafe { v256::sbox_blocks(&mut b) };
        push("gfni-avx2", b);
        let mut b = all_bytes();
        // SAFETY: as above.
        unsafe { v128g::sbox_blocks(&mut b) };
        push("gfni-128", b);
    }
    if AesNi::detect().is_some() {
        let mut b = all_bytes();
        // SAFETY: AES-NI and SSSE3 were detected just above.
        unsafe { v128a::sbox_blocks(&mut b) };
        push("aesni", b);
    }
    out
}

/// Proof that the CPU has PCLMULQDQ and SSSE3: only [`Clmul::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clmul(());

impl Clmul {
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("pclmulqdq")
            && std::arch::is_x86_feature_detected!("ssse3"))
        .then_some(Clmul(()))
    }

    /// `[H, H², …, H¹⁶]` in POLYVAL's Montgomery form (see [`clmul`]) from `h`, POLYVAL's
    /// key.
    pub(crate) fn powers(self, h: u128) -> [u128; 16] {
        // SAFETY: this token exists only if `detect` saw PCLMULQDQ and SSSE3 at run time.
        unsafe { clmul::powers(h) }
    }

    /// POLYVAL of `state` extended by the blocks of `data` (a whole number of 16-byte blocks,
    /// each byte-reversed first: GHASH's bit order), under `powers`.
    pub(crate) fn update(self, powers: &[u128; 16], state: u128, data: &[u8]) -> u128 {
        // SAFETY: as in `powers`.
        unsafe { clmul::update(powers, state, data) }
    }
}

/// Proof that the CPU has VPCLMULQDQ on AVX-512 (and PCLMULQDQ, SSSE3): only
/// [`Vclmul::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Vclmul(());

impl Vclmul {
    pub(crate) fn detect() -> Option<Self> {
        (Clmul::detect().is_some()
            && std::arch::is_x86_feature_detected!("vpclmulqdq")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        .then_some(Vclmul(()))
    }

    /// As [`Clmul::update`], sixteen blocks per reduction.
    pub(crate) fn update(self, powers: &[u128; 16], state: u128, data: &[u8]) -> u128 {
        // SAFETY: this token exists only if `detect` saw VPCLMULQDQ, AVX-512F/BW, PCLMULQDQ
        // and SSSE3 at run time.
        unsafe { vclmul::update(powers, state, data) }
    }
}

/// GHASH through POLYVAL (RFC 8452 Appendix A: `GHASH(H, X…) = rev(POLYVAL(mulX(rev(H)),
/// rev(X)…))`, `rev` reversing bytes), with carry-less multiplication.
///
/// POLYVAL's product is `dot(a, b) = a·b·x⁻¹²⁸ mod x¹²⁸+x¹²⁷+x¹²⁶+x¹²¹+1` on little-endian
/// 128-bit values. The 256-bit product takes four `PCLMULQDQ`s; `x⁻¹²⁸` is a Montgomery
/// reduction in two 64-bit folds, each one `PCLMULQDQ` by `0xC2 << 56` (the polynomial
/// is 1 modulo x⁶⁴, and x¹²¹+x¹²⁶+x¹²⁷ is x⁶⁴·(x⁵⁷+x⁶²+x⁶³)). Eight blocks share one
/// reduction: `dot(…dot(S⊕X₁, H)⊕…⊕X₈, H) = (S⊕X₁)·H⁸ ⊕ X₂·H⁷ ⊕ … ⊕ X₈·H`, times x⁻¹²⁸, with
/// `Hᵏ` the dot-powers of `H`.
pub(crate) mod clmul {
    use super::*;

    type V = __m128i;

    #[target_feature(enable = "pclmulqdq,ssse3")]
    #[inline]
    pub(super) fn from_u128(v: u128) -> V {
        _mm_set_epi64x((v >> 64) as i64, v as i64)
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    #[inline]
    pub(super) fn to_u128(v: V) -> u128 {
        let lo = _mm_cvtsi128_si64(v) as u64;
        let hi = _mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)) as u64;
        (u128::from(hi) << 64) | u128::from(lo)
    }

    /// One block of `data`, byte-reversed.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    #[inline]
    fn load_rev(b: &[u8]) -> V {
        assert!(b.len() == 16);
        // SAFETY: `b` is 16 initialised bytes; the unaligned load needs no alignment.
        let v = unsafe { _mm_loadu_si128(b.as_ptr().cast()) };
        _mm_shuffle_epi8(
            v,
            xmm([15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]),
        )
    }

    /// Adds `a·b` (256 bits, schoolbook) to the accumulators `lo`, `mid`, `hi`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    #[inline]
    fn mul_acc(acc: &mut [V; 3], a: V, b: V) {
        acc[0] = _mm_xor_si128(acc[0], _mm_clmulepi64_si128::<0x00>(a, b));
        acc[1] = _mm_xor_si128(
            acc[1],
            _mm_xor_si128(
                _mm_clmulepi64_si128::<0x01>(a, b),
                _mm_clmulepi64_si128::<0x10>(a, b),
            ),
        );
        acc[2] = _mm_xor_si128(acc[2], _mm_clmulepi64_si128::<0x11>(a, b));
    }

    /// `(lo, mid, hi)` as a 256-bit value times x⁻¹²⁸, reduced.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    #[inline]
    pub(super) fn reduce(acc: [V; 3]) -> V {
        let lo = _mm_xor_si128(acc[0], _mm_slli_si128::<8>(acc[1]));
        let hi = _mm_xor_si128(acc[2], _mm_srli_si128::<8>(acc[1]));
        let poly = _mm_set_epi64x(0xC200_0000_0000_0000_u64 as i64, 1);
        let t = _mm_clmulepi64_si128::<0x10>(lo, poly);
        let lo = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
        let t = _mm_clmulepi64_si128::<0x10>(lo, poly);
        let lo = _mm_xor_si128(_mm_shuffle_epi32::<0x4e>(lo), t);
        _mm_xor_si128(hi, lo)
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    #[inline]
    fn dot(a: V, b: V) -> V {
        let mut acc = [_mm_setzero_si128(); 3];
        mul_acc(&mut acc, a, b);
        reduce(acc)
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub(super) fn powers(h: u128) -> [u128; 16] {
        let h1 = from_u128(h);
        let mut p = [0u128; 16];
        let mut x = h1;
        for slot in p.iter_mut() {
            *slot = to_u128(x);
            x = dot(x, h1);
        }
        p
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub(super) fn update(powers: &[u128; 16], state: u128, data: &[u8]) -> u128 {
        assert!(
            data.len().is_multiple_of(16),
            "GHASH input must be whole blocks"
        );
        let h: [V; 8] = core::array::from_fn(|i| from_u128(powers[i]));
        let mut s = from_u128(state);
        let mut chunks = data.chunks_exact(128);
        for c in &mut chunks {
            let mut acc = [_mm_setzero_si128(); 3];
            for (i, b) in c.chunks_exact(16).enumerate() {
                let mut x = load_rev(b);
                if i == 0 {
                    x = _mm_xor_si128(x, s);
                }
                mul_acc(&mut acc, x, h[7 - i]);
            }
            s = reduce(acc);
        }
        let rest = chunks.remainder();
        let n = rest.len() / 16;
        if n > 0 {
            let mut acc = [_mm_setzero_si128(); 3];
            for (i, b) in rest.chunks_exact(16).enumerate() {
                let mut x = load_rev(b);
                if i == 0 {
                    x = _mm_xor_si128(x, s);
                }
                mul_acc(&mut acc, x, h[n - 1 - i]);
            }
            s = reduce(acc);
        }
        to_u128(s)
    }
}

/// GHASH as in [`clmul`], sixteen blocks per reduction: four 512-bit `VPCLMULQDQ` lanes of four
/// blocks each, block `i` of sixteen times `H¹⁶⁻ⁱ`, the lanes XORed together before the one
/// reduction. Fewer than sixteen blocks left go to [`clmul::update`].
pub(crate) mod vclmul {
    use super::*;

    type Z = __m512i;

    /// Sixteen bytes of a 512-bit lane reversed, in every lane.
    const REV: [u8; 16] = [15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0];

    #[target_feature(enable = "avx512f,avx512bw,vpclmulqdq,pclmulqdq,ssse3")]
    #[inline]
    fn load(b: &[u8]) -> Z {
        assert!(b.len() == 64);
        // SAFETY: `b` is 64 initialised bytes; the unaligned load needs no alignment.
        unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
    }

    /// The four 128-bit lanes of `v` XORed together.
    #[target_feature(enable = "avx512f,avx512bw,vpclmulqdq,pclmulqdq,ssse3")]
    #[inline]
    fn fold(v: Z) -> __m128i {
        _mm_xor_si128(
            _mm_xor_si128(
                _mm512_extracti32x4_epi32::<0>(v),
                _mm512_extracti32x4_epi32::<1>(v),
            ),
            _mm_xor_si128(
                _mm512_extracti32x4_epi32::<2>(v),
                _mm512_extracti32x4_epi32::<3>(v),
            ),
        )
    }

    #[target_feature(enable = "avx512f,avx512bw,vpclmulqdq,pclmulqdq,ssse3")]
    pub(super) fn update(powers: &[u128; 16], state: u128, data: &[u8]) -> u128 {
        assert!(
            data.len().is_multiple_of(16),
            "GHASH input must be whole blocks"
        );
        let mut chunks = data.chunks_exact(256);
        let mut s = clmul::from_u128(state);
        if chunks.len() > 0 {
            let rev = _mm512_broadcast_i32x4(xmm(REV));
            // Lane l of vector j multiplies block 4j + l by H^(16 − 4j − l).
            let p = |i: usize| ((powers[i] >> 64) as i64, powers[i] as i64);
            let h: [Z; 4] = core::array::from_fn(|j| {
                let (a, b, c, d) = (p(15 - 4 * j), p(14 - 4 * j), p(13 - 4 * j), p(12 - 4 * j));
                _mm512_set_epi64(d.0, d.1, c.0, c.1, b.0, b.1, a.0, a.1)
            });
            for c in &mut chunks {
                let zero = _mm512_setzero_si512();
                let (mut lo, mut mid, mut hi) = (zero, zero, zero);
                for (j, hj) in h.iter().enumerate() {
                    let mut x = _mm512_shuffle_epi8(load(&c[64 * j..64 * (j + 1)]), rev);
                    if j == 0 {
                        x = _mm512_xor_si512(x, _mm512_zextsi128_si512(s));
                    }
                    lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128::<0x00>(x, *hj));
                    mid = _mm512_ternarylogic_epi64::<0x96>(
                        mid,
                        _mm512_clmulepi64_epi128::<0x01>(x, *hj),
                        _mm512_clmulepi64_epi128::<0x10>(x, *hj),
                    );
                    hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128::<0x11>(x, *hj));
                }
                s = clmul::reduce([fold(lo), fold(mid), fold(hi)]);
            }
        }
        clmul::update(powers, clmul::to_u128(s), chunks.remainder())
    }
}
