//! Known answers (GB/T 32907-2016 Appendix A, RFC 8998 Appendix A.1) and every backend this CPU
//! can run against the portable one and against the RustCrypto `sm4` crate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadInPlace, Payload};
use aes_gcm::AesGcm;
use cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use pivault_sm4::{Backend, Sm4, Sm4Gcm};
use proptest::prelude::*;

type Block = cipher::Block<Sm4>;

fn unhex<const N: usize>(s: &str) -> [u8; N] {
    let v = hex::decode(s).unwrap();
    v.try_into().unwrap()
}

fn backends() -> Vec<Backend> {
    Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

/// GB/T 32907-2016 Appendix A, example 1.
const KEY_A: &str = "0123456789abcdeffedcba9876543210";
const CT_A1: &str = "681edf34d206965e86b3e94f536e4246";
/// Appendix A, example 2: the plaintext encrypted 1,000,000 times under the same key.
const CT_A2: &str = "595298c7c6fd271f0402f804c33d3f66";

#[test]
fn the_best_backend_is_picked_and_available() {
    let best = Backend::best();
    assert!(best.is_available());
    assert!(Backend::Soft.is_available());
    assert_eq!(Sm4::new(&unhex::<16>(KEY_A).into()).backend(), best);
    // CI runs on x86_64 machines with GFNI and AVX-512; say which backend ran.
    eprintln!("best SM4 backend here: {best}");
}

#[test]
fn gbt_32907_appendix_a_example_1_on_every_backend() {
    let key = unhex::<16>(KEY_A);
    for b in backends() {
        let c = Sm4::new_with_backend(&key, b).unwrap();
        let mut block = Block::from(key);
        c.encrypt_block(&mut block);
        assert_eq!(hex::encode(block), CT_A1, "{b}");
        c.decrypt_block(&mut block);
        assert_eq!(hex::encode(block), KEY_A, "{b}");
        // The same block through each backend's parallel and tail paths.
        for n in [2, 5, 8, 9, 16, 17, 31, 32, 33, 64, 70] {
            let mut blocks = vec![Block::from(key); n];
            c.encrypt_blocks(&mut blocks);
            assert!(
                blocks.iter().all(|x| hex::encode(x) == CT_A1),
                "{b}, {n} blocks"
            );
            c.decrypt_blocks(&mut blocks);
            assert!(
                blocks.iter().all(|x| hex::encode(x) == KEY_A),
                "{b}, {n} blocks"
            );
        }
    }
}

fn million(b: Backend) {
    let key = unhex::<16>(KEY_A);
    let c = Sm4::new_with_backend(&key, b).unwrap();
    let mut block = Block::from(key);
    for _ in 0..1_000_000 {
        c.encrypt_block(&mut block);
    }
    assert_eq!(hex::encode(block), CT_A2, "{b}");
    for _ in 0..1_000_000 {
        c.decrypt_block(&mut block);
    }
    assert_eq!(hex::encode(block), KEY_A, "{b}");
}

/// 2,000,000 dependent single-block calls per backend: a few seconds with the crate optimized
/// (as the workspace's dev profile builds it).
#[test]
fn gbt_32907_appendix_a_example_2_on_every_backend() {
    for b in backends() {
        million(b);
    }
}

/// RFC 8998 Appendix A.1 (SM4-GCM; the same vector as GB/T 36624-2018's).
#[test]
fn rfc_8998_sm4_gcm_on_every_backend() {
    let key = unhex::<16>("0123456789ABCDEFFEDCBA9876543210");
    let iv = unhex::<12>("00001234567800000000ABCD");
    let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
    let pt = hex::decode(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD\
         EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
    )
    .unwrap();
    let want = hex::decode(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735\
         D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D\
         83DE3541E4C2B58177E065A9BF7B62EC",
    )
    .unwrap();
    let payload = || Payload {
        msg: &pt,
        aad: &aad,
    };
    let nonce = aes_gcm::Nonce::<U12>::from(iv);

    // The reference: the RustCrypto `sm4` crate in the same GCM.
    let reference = AesGcm::<sm4::Sm4, U12>::new(&key.into());
    assert_eq!(reference.encrypt(&nonce, payload()).unwrap(), want);

    for b in backends() {
        let gcm = AesGcm::<Sm4, U12>::from(Sm4::new_with_backend(&key, b).unwrap());
        assert_eq!(gcm.encrypt(&nonce, payload()).unwrap(), want, "{b}");
        let opened = gcm
            .decrypt(
                &nonce,
                Payload {
                    msg: &want,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(opened, pt, "{b}");
        let ours = Sm4Gcm::new_with_backend(&key, b).unwrap();
        assert_eq!(ours.encrypt(&nonce, payload()).unwrap(), want, "{b} Sm4Gcm");
        let opened = ours
            .decrypt(
                &nonce,
                Payload {
                    msg: &want,
                    aad: &aad,
                },
            )
            .unwrap();
        assert_eq!(opened, pt, "{b} Sm4Gcm");
        let mut bad = want.clone();
        bad[3] ^= 1;
        assert!(ours
            .decrypt(
                &nonce,
                Payload {
                    msg: &bad,
                    aad: &aad
                }
            )
            .is_err());
        assert!(gcm
            .decrypt(
                &nonce,
                Payload {
                    msg: &bad,
                    aad: &aad
                }
            )
            .is_err());
    }
}

#[test]
fn sm4_gcm_agrees_with_rustcrypto_on_every_length() {
    let key = [0x42u8; 16];
    let nonce = aes_gcm::Nonce::<U12>::from([7u8; 12]);
    let reference = AesGcm::<sm4::Sm4, U12>::new(&key.into());
    for b in backends() {
        let gcm = AesGcm::<Sm4, U12>::from(Sm4::new_with_backend(&key, b).unwrap());
        for len in 0..=600 {
            let pt: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            let mut ours = pt.clone();
            let tag = gcm
                .encrypt_in_place_detached(&nonce, b"aad", &mut ours)
                .unwrap();
            let mut theirs = pt.clone();
            let want = reference
                .encrypt_in_place_detached(&nonce, b"aad", &mut theirs)
                .unwrap();
            assert_eq!((ours, tag), (theirs, want), "{b}, {len} bytes");
        }
    }
}

/// `Sm4Gcm` (own GHASH, batched counter blocks) equals `AesGcm<sm4::Sm4, U12>` for lengths
/// across every batch and GHASH-aggregation boundary, and opens what it sealed; a flipped bit
/// anywhere fails and leaves the buffer as it was.
#[test]
fn sm4gcm_agrees_with_aes_gcm_over_rustcrypto_sm4() {
    let key = [0x3cu8; 16];
    let nonce = aes_gcm::Nonce::<U12>::from([0xa5u8; 12]);
    let reference = AesGcm::<sm4::Sm4, U12>::new(&key.into());
    let mut lens: Vec<usize> = (0..=300).collect();
    lens.extend([
        1007, 1008, 1023, 1024, 1025, 1040, 1041, 2047, 2048, 2049, 4111, 10_000,
    ]);
    for b in backends() {
        let gcm = Sm4Gcm::new_with_backend(&key, b).unwrap();
        for &len in &lens {
            for aad_len in [0, 1, 15, 16, 17, 100, 128, 129] {
                let aad: Vec<u8> = (0..aad_len).map(|i| (i * 7 + 3) as u8).collect();
                let pt: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
                let mut ours = pt.clone();
                let tag = gcm
                    .encrypt_in_place_detached(&nonce, &aad, &mut ours)
                    .unwrap();
                let mut theirs = pt.clone();
                let want = reference
                    .encrypt_in_place_detached(&nonce, &aad, &mut theirs)
                    .unwrap();
                assert_eq!(
                    (&ours, tag),
                    (&theirs, want),
                    "{b}, {len} bytes, aad {aad_len}"
                );
                let mut back = ours.clone();
                gcm.decrypt_in_place_detached(&nonce, &aad, &mut back, &tag)
                    .unwrap();
                assert_eq!(back, pt, "{b}, {len} bytes");
                if len > 0 {
                    let mut bad = ours.clone();
                    bad[len / 2] ^= 0x40;
                    let before = bad.clone();
                    assert!(gcm
                        .decrypt_in_place_detached(&nonce, &aad, &mut bad, &tag)
                        .is_err());
                    assert_eq!(bad, before, "a failed open leaves the buffer as it was");
                }
                let mut bad_tag = tag;
                bad_tag[15] ^= 1;
                assert!(gcm
                    .decrypt_in_place_detached(&nonce, &aad, &mut ours.clone(), &bad_tag)
                    .is_err());
            }
        }
    }
}

#[test]
fn debug_shows_no_key_material() {
    let c = Sm4::new(&[0xabu8; 16].into());
    let s = format!("{c:?}");
    assert!(s.starts_with("Sm4 {") && s.contains("backend"), "{s}");
    assert!(!s.to_lowercase().contains("abab"), "{s}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every backend equals the portable one and RustCrypto's `sm4`, encrypting and
    /// decrypting, in place and buffer to buffer, for block counts that reach the single,
    /// tail and parallel paths.
    #[test]
    fn every_backend_matches_portable_and_rustcrypto(
        key in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<[u8; 16]>(), 1..=70),
    ) {
        let blocks: Vec<Block> = data.iter().map(|b| Block::from(*b)).collect();
        let reference = sm4::Sm4::new(&key.into());
        let mut want = blocks.clone();
        for b in want.iter_mut() {
            reference.encrypt_block(b);
        }
        let soft = Sm4::new_with_backend(&key, Backend::Soft).unwrap();
        let mut got = blocks.clone();
        soft.encrypt_blocks(&mut got);
        prop_assert_eq!(&got, &want);

        for b in backends() {
            let c = Sm4::new_with_backend(&key, b).unwrap();
            let mut got = blocks.clone();
            c.encrypt_blocks(&mut got);
            prop_assert_eq!(&got, &want, "{} in place", b);
            let mut out = vec![Block::default(); blocks.len()];
            c.encrypt_blocks_b2b(&blocks, &mut out).unwrap();
            prop_assert_eq!(&out, &want, "{} buffer to buffer", b);
            c.decrypt_blocks(&mut got);
            prop_assert_eq!(&got, &blocks, "{} decrypt", b);
            let gcm = Sm4Gcm::new_with_backend(&key, b).unwrap();
            let reference = AesGcm::<sm4::Sm4, U12>::new(&key.into());
            let msg: Vec<u8> = data.iter().flatten().copied().collect();
            let nonce = aes_gcm::Nonce::<U12>::from([key[0]; 12]);
            let cut = msg.len() - usize::from(key[1]) % 16;
            let aad = &msg[..usize::from(key[2]) % 40 % (msg.len() + 1)];
            let p = || Payload { msg: &msg[..cut], aad };
            prop_assert_eq!(gcm.encrypt(&nonce, p()).unwrap(), reference.encrypt(&nonce, p()).unwrap());
            let mut one = blocks[0];
            c.encrypt_block(&mut one);
            prop_assert_eq!(one, want[0], "{} one block", b);
        }
    }
}
