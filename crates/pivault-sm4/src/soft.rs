//! The portable backend: one block at a time, the round function T = L ∘ τ as one 1 KiB table
//! (τ of a byte in position 0, through L) and byte rotations of it.
//!
//! Table lookups are indexed by secret data, so this backend is not constant-time on CPUs
//! with data caches shared with an attacker; the x86 SIMD backends are. It is the backend of
//! last resort (no GFNI, no AES-NI, or not x86_64), as the RustCrypto `sm4` crate (also
//! table-based) was before.

use cipher::consts::{U1, U16};
use cipher::inout::InOut;
use cipher::{Block, BlockBackend, BlockSizeUser, ParBlocksSizeUser};

use crate::consts::SBOX;

/// SM4's linear transformation L (GB/T 32907-2016 §6.2.2).
#[inline(always)]
pub(crate) const fn l(b: u32) -> u32 {
    b ^ b.rotate_left(2) ^ b.rotate_left(10) ^ b.rotate_left(18) ^ b.rotate_left(24)
}

/// `T0[x] = L(S(x) << 24)`; the other three byte positions are rotations of it.
static T0: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = l((SBOX[i] as u32) << 24);
        i += 1;
    }
    t
};

/// τ: the S-box on each byte of a word (§6.2.1), by table.
#[inline]
pub(crate) fn tau(a: u32) -> u32 {
    let b = a.to_be_bytes();
    u32::from_be_bytes([
        SBOX[b[0] as usize],
        SBOX[b[1] as usize],
        SBOX[b[2] as usize],
        SBOX[b[3] as usize],
    ])
}

/// T(x) = L(τ(x)) by table: L is linear, so L(τ(x)) is the XOR over the four bytes of L of
/// each S-box output in its place, and L commutes with rotations.
#[inline(always)]
fn t(x: u32) -> u32 {
    T0[(x >> 24) as usize]
        ^ T0[((x >> 16) & 0xff) as usize].rotate_right(8)
        ^ T0[((x >> 8) & 0xff) as usize].rotate_right(16)
        ^ T0[(x & 0xff) as usize].rotate_right(24)
}

/// One block through the 32 rounds with round keys `rk` (§7.1; decryption passes them
/// reversed, §7.2).
pub(crate) fn crypt_block(rk: &[u32; 32], block: &mut [u8; 16]) {
    let mut x = [0u32; 4];
    for (w, c) in x.iter_mut().zip(block.chunks_exact(4)) {
        *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    for k in rk.chunks_exact(4) {
        x[0] ^= t(x[1] ^ x[2] ^ x[3] ^ k[0]);
        x[1] ^= t(x[2] ^ x[3] ^ x[0] ^ k[1]);
        x[2] ^= t(x[3] ^ x[0] ^ x[1] ^ k[2]);
        x[3] ^= t(x[0] ^ x[1] ^ x[2] ^ k[3]);
    }
    // The reverse transformation R (§7.1): output (X35, X34, X33, X32).
    for (c, w) in block.chunks_exact_mut(4).zip(x.iter().rev()) {
        c.copy_from_slice(&w.to_be_bytes());
    }
}

/// The portable [`BlockBackend`]: one block at a time.
pub(crate) struct SoftBackend<'a>(pub(crate) &'a [u32; 32]);

impl BlockSizeUser for SoftBackend<'_> {
    type BlockSize = U16;
}

impl ParBlocksSizeUser for SoftBackend<'_> {
    type ParBlocksSize = U1;
}

impl BlockBackend for SoftBackend<'_> {
    #[inline]
    fn proc_block(&mut self, mut block: InOut<'_, '_, Block<Self>>) {
        let mut b: [u8; 16] = block.clone_in().into();
        crypt_block(self.0, &mut b);
        block.get_out().copy_from_slice(&b);
    }
}
