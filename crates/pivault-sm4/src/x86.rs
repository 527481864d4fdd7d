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
use cipher::generic_array::GenericArray;
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

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn zero() -> V {
        _mm512_setzero_si512()
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn load(b: &[B16]) -> V {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 4 blocks, 64 contiguous initialised bytes (B16 is 16 bytes with no
        // padding); the unaligned load needs no alignment.
        unsafe { _mm512_loadu_si512(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn store(b: &mut [B16], v: V) {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 4 blocks, 64 contiguous writable bytes that this exclusive borrow
        // owns; the unaligned store needs no alignment.
        unsafe { _mm512_storeu_si512(b.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn lanes(p: [u8; 16]) -> V {
        _mm512_broadcast_i32x4(xmm(p))
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn bswap(v: V) -> V {
        _mm512_shuffle_epi8(v, lanes(BSWAP32))
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn splat(k: u32) -> V {
        _mm512_set1_epi32(k as i32)
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn transpose(a: V, b: V, c: V, d: V) -> [V; 4] {
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

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn sbox(v: V) -> V {
        let y = _mm512_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm512_set1_epi64(GFNI_PRE));
        _mm512_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm512_set1_epi64(GFNI_POST))
    }

    /// `x0 ⊕ L(τ(x1 ⊕ x2 ⊕ x3 ⊕ k))`, L with four rotations and two three-way XORs.
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    #[inline]
    fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
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

    kernel!("avx512f,avx512bw,gfni");
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
    fn zero() -> V {
        _mm256_setzero_si256()
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn load(b: &[B16]) -> V {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 2 blocks, 32 contiguous initialised bytes (B16 is 16 bytes with no
        // padding); the unaligned load needs no alignment.
        unsafe { _mm256_loadu_si256(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn store(b: &mut [B16], v: V) {
        assert!(b.len() == BPR);
        // SAFETY: `b` is 2 blocks, 32 contiguous writable bytes that this exclusive borrow
        // owns; the unaligned store needs no alignment.
        unsafe { _mm256_storeu_si256(b.as_mut_ptr().cast(), v) }
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn lanes(p: [u8; 16]) -> V {
        _mm256_broadcastsi128_si256(xmm(p))
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn xor(a: V, b: V) -> V {
        _mm256_xor_si256(a, b)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn shuffle(a: V, p: V) -> V {
        _mm256_shuffle_epi8(a, p)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn shl2(a: V) -> V {
        _mm256_slli_epi32::<2>(a)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn shr30(a: V) -> V {
        _mm256_srli_epi32::<30>(a)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn bswap(v: V) -> V {
        shuffle(v, lanes(BSWAP32))
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn splat(k: u32) -> V {
        _mm256_set1_epi32(k as i32)
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn transpose(a: V, b: V, c: V, d: V) -> [V; 4] {
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
    fn sbox(v: V) -> V {
        let y = _mm256_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm256_set1_epi64x(GFNI_PRE));
        _mm256_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm256_set1_epi64x(GFNI_POST))
    }

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
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
        fn zero() -> V {
            _mm_setzero_si128()
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn load(b: &[B16]) -> V {
            assert!(b.len() == BPR);
            // SAFETY: `b` is one block, 16 contiguous initialised bytes; the unaligned load
            // needs no alignment.
            unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn store(b: &mut [B16], v: V) {
            assert!(b.len() == BPR);
            // SAFETY: `b` is one block, 16 contiguous writable bytes that this exclusive
            // borrow owns; the unaligned store needs no alignment.
            unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), v) }
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn lanes(p: [u8; 16]) -> V {
            xmm(p)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn xor(a: V, b: V) -> V {
            _mm_xor_si128(a, b)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn shuffle(a: V, p: V) -> V {
            _mm_shuffle_epi8(a, p)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn shl2(a: V) -> V {
            _mm_slli_epi32::<2>(a)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn shr30(a: V) -> V {
            _mm_srli_epi32::<30>(a)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn bswap(v: V) -> V {
            shuffle(v, lanes(BSWAP32))
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn splat(k: u32) -> V {
            _mm_set1_epi32(k as i32)
        }

        #[target_feature(enable = $feat)]
        #[inline]
        fn transpose(a: V, b: V, c: V, d: V) -> [V; 4] {
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

        #[target_feature(enable = $feat)]
        #[inline]
        fn round(x0: V, x1: V, x2: V, x3: V, k: V) -> V {
            let t = sbox(xor(x3, xor(xor(x1, x2), k)));
            l_shuffle!(x0, t)
        }

        /// τ of one word (the key expansion's S-box, without tables).
        #[target_feature(enable = $feat)]
        pub(super) fn tau(w: u32) -> u32 {
            _mm_cvtsi128_si32(sbox(_mm_cvtsi32_si128(w as i32))) as u32
        }

        kernel!($feat);
    };
}

/// GFNI on 128-bit vectors (with the AVX2 encodings): 4 blocks per group, for single blocks
/// and short tails of the wider GFNI backends.
pub(crate) mod v128g {
    use super::*;

    #[target_feature(enable = "avx2,gfni")]
    #[inline]
    fn sbox(v: V) -> V {
        let y = _mm_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(v, _mm_set1_epi64x(GFNI_PRE));
        _mm_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(y, _mm_set1_epi64x(GFNI_POST))
    }

    v128_common!("avx2,gfni");
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
    fn sbox(v: V) -> V {
        let y = affine(v, AESNI_PRE_LO, AESNI_PRE_HI);
        let z = _mm_aesenclast_si128(y, _mm_setzero_si128());
        _mm_shuffle_epi8(affine(z, AESNI_POST_LO, AESNI_POST_HI), xmm(INV_SHIFT_ROWS))
    }

    v128_common!("aes,ssse3");
}

/// Runs `f` over the blocks of `io` copied into a zeroed buffer of `N` blocks (`N ≥` their
/// number), and copies the first results out.
#[inline]
fn padded<const N: usize>(mut io: InOutBuf<'_, '_, B16>, f: impl FnOnce(&mut [B16])) {
    let n = io.len();
    let mut buf = [B16::default(); N];
    buf[..n].copy_from_slice(io.get_in());
    f(&mut buf);
    io.get_out().copy_from_slice(&buf[..n]);
}

/// Proof that the CPU has GFNI, AVX2, AVX-512F and AVX-512BW: only [`Gfni512::detect`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gfni512(());

impl Gfni512 {
    pub(crate) fn detect() -> Option<Self> {
        (std::arch::is_x86_feature_detected!("gfni")
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw"))
        .then_some(Gfni512(()))
    }

    pub(crate) fn tau(self, w: u32) -> u32 {
        // SAFETY: this token exists only if `detect` saw GFNI and AVX2 at run time.
        unsafe { v128g::tau(w) }
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

    pub(crate) fn tau(self, w: u32) -> u32 {
        // SAFETY: this token exists only if `detect` saw GFNI and AVX2 at run time.
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

    pub(crate) fn tau(self, w: u32) -> u32 {
        // SAFETY: this token exists only if `detect` saw AES-NI and SSSE3 at run time.
        unsafe { v128a::tau(w) }
    }
}

/// A block backend of one of the SIMD kernels: round keys plus the detection token. `single`
/// and `par` are kernels (one block padded to 4, and `ParBlocksSize` blocks); `tail` handles
/// fewer than `ParBlocksSize` blocks.
macro_rules! backend {
    ($name:ident, $token:ty, $par:ty, single: $single:expr, par: $parf:expr, tail: $tail:expr) => {
        pub(crate) struct $name<'a> {
            rk: &'a [u32; 32],
            _token: $token,
        }

        impl<'a> $name<'a> {
            pub(crate) fn new(rk: &'a [u32; 32], token: $token) -> Self {
                $name { rk, _token: token }
            }
        }

        impl BlockSizeUser for $name<'_> {
            type BlockSize = U16;
        }

        impl ParBlocksSizeUser for $name<'_> {
            type ParBlocksSize = $par;
        }

        impl BlockBackend for $name<'_> {
            #[inline]
            fn proc_block(&mut self, mut block: InOut<'_, '_, B16>) {
                let mut buf = [B16::default(); 4];
                buf[0] = block.clone_in();
                // SAFETY: the token in `self` exists only if its `detect` saw the kernel's
                // target features at run time.
                unsafe { $single(self.rk, &mut buf[..]) };
                *block.get_out() = buf[0];
            }

            #[inline]
            fn proc_par_blocks(&mut self, mut blocks: InOut<'_, '_, ParBlocks<Self>>) {
                let mut buf = blocks.clone_in();
                // SAFETY: as in `proc_block`.
                unsafe { $parf(self.rk, &mut buf[..]) };
                *blocks.get_out() = buf;
            }

            #[inline]
            fn proc_tail_blocks(&mut self, blocks: InOutBuf<'_, '_, B16>) {
                let tail = $tail;
                tail(self.rk, blocks)
            }
        }
    };
}

backend!(
    Gfni512Backend, Gfni512, U32,
    single: v128g::crypt::<1>,
    par: v512::crypt::<2>,
    tail: |rk, io: InOutBuf<'_, '_, B16>| {
        // SAFETY (each call): a `Gfni512Backend` holds a `Gfni512` token, made only after
        // run-time detection of GFNI, AVX2, AVX-512F and AVX-512BW.
        match io.len() {
            0 => {}
            1..=4 => padded::<4>(io, |b| unsafe { v128g::crypt::<1>(rk, b) }),
            5..=8 => padded::<8>(io, |b| unsafe { v256::crypt::<1>(rk, b) }),
            9..=16 => padded::<16>(io, |b| unsafe { v512::crypt::<1>(rk, b) }),
            _ => padded::<32>(io, |b| unsafe { v512::crypt::<2>(rk, b) }),
        }
    }
);

backend!(
    Gfni256Backend, Gfni256, U16,
    single: v128g::crypt::<1>,
    par: v256::crypt::<2>,
    tail: |rk, io: InOutBuf<'_, '_, B16>| {
        // SAFETY (each call): a `Gfni256Backend` holds a `Gfni256` token, made only after
        // run-time detection of GFNI and AVX2.
        match io.len() {
            0 => {}
            1..=4 => padded::<4>(io, |b| unsafe { v128g::crypt::<1>(rk, b) }),
            5..=8 => padded::<8>(io, |b| unsafe { v256::crypt::<1>(rk, b) }),
            _ => padded::<16>(io, |b| unsafe { v256::crypt::<2>(rk, b) }),
        }
    }
);

backend!(
    AesNiBackend, AesNi, U8,
    single: v128a::crypt::<1>,
    par: v128a::crypt::<2>,
    tail: |rk, io: InOutBuf<'_, '_, B16>| {
        // SAFETY (each call): an `AesNiBackend` holds an `AesNi` token, made only after
        // run-time detection of AES-NI and SSSE3.
        match io.len() {
            0 => {}
            1..=4 => padded::<4>(io, |b| unsafe { v128a::crypt::<1>(rk, b) }),
            _ => padded::<8>(io, |b| unsafe { v128a::crypt::<2>(rk, b) }),
        }
    }
);

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
