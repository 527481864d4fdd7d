//! Unit tests of the backends' internals: the S-box of every vector kernel, byte for byte, and
//! the two GHASH implementations against each other.

#![allow(clippy::unwrap_used)]

use crate::consts::SBOX;
use crate::{Backend, Imp};

#[test]
fn portable_tau_is_the_sbox_table() {
    for x in 0..=255u8 {
        let w = u32::from_be_bytes([x, x ^ 0x5a, x.wrapping_add(1), !x]);
        let want = u32::from_be_bytes([
            SBOX[x as usize],
            SBOX[(x ^ 0x5a) as usize],
            SBOX[x.wrapping_add(1) as usize],
            SBOX[!x as usize],
        ]);
        assert_eq!(crate::soft::tau(w), want);
    }
}

#[test]
fn every_backends_key_expansion_sbox_gives_all_256_values() {
    for b in Backend::ALL {
        let Some(imp) = Imp::new(b) else { continue };
        for x in 0..=255u8 {
            // Each byte position, the others varied, so a byte mix-up shows.
            for pos in 0..4 {
                let mut bytes = [x.rotate_left(3), x ^ 0xc3, x.wrapping_mul(7), x];
                bytes[pos] = x;
                let want = bytes.map(|v| SBOX[v as usize]);
                assert_eq!(
                    imp.tau(u32::from_be_bytes(bytes)).to_be_bytes(),
                    want,
                    "{b}: τ of byte {x:#04x} at position {pos}"
                );
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn every_vector_kernels_sbox_gives_all_256_values() {
    let tables = crate::x86::sbox_tables();
    for (name, t) in &tables {
        for x in 0..256 {
            assert_eq!(t[x], SBOX[x], "{name}: S({x:#04x})");
        }
    }
    // On a CPU with GFNI and AES-NI (CI's kind of machine) every kernel ran.
    if Backend::Gfni512.is_available() {
        assert_eq!(
            tables.len(),
            5,
            "{:?}",
            tables.iter().map(|t| t.0).collect::<Vec<_>>()
        );
    }
}

#[test]
fn every_ghash_agrees_with_the_portable_one() {
    use aead::AeadInPlace;
    use cipher::KeyInit;

    let key = [0x5eu8; 16];
    let gcm = |kind| crate::Sm4Gcm::with_ghash(crate::Sm4::new(&key.into()), kind);
    let soft = gcm("soft").unwrap();
    let mut fast = vec![];
    for kind in ["clmul", "vclmul"] {
        if let Some(g) = gcm(kind) {
            fast.push((kind, g));
        }
    }
    // CI's kind of machine has both.
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("vpclmulqdq")
        && std::arch::is_x86_feature_detected!("avx512bw")
    {
        assert_eq!(fast.len(), 2);
    }
    let nonce = [9u8; 12].into();
    for len in (0..600).chain([1023, 1024, 1025, 4096, 5000]) {
        let aad: Vec<u8> = (0..(len * 7) % 300).map(|i| i as u8).collect();
        let pt: Vec<u8> = (0..len).map(|i| (i * 13) as u8).collect();
        let mut want = pt.clone();
        let tag = soft
            .encrypt_in_place_detached(&nonce, &aad, &mut want)
            .unwrap();
        for (kind, g) in &fast {
            let mut got = pt.clone();
            let t = g.encrypt_in_place_detached(&nonce, &aad, &mut got).unwrap();
            assert_eq!((&got, t), (&want, tag), "{kind}, {len} bytes");
        }
    }
}
