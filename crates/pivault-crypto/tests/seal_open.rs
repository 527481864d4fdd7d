//! Field sealing: round trips and every way opening must fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{Aad, CryptoError, Dek, KeyRing, MasterSecret, Suite, SEAL_OVERHEAD};

fn ring(suite: Suite) -> KeyRing {
    KeyRing::new(MasterSecret::from_bytes([7u8; 32]), suite)
}

fn aad<'a>(key_id: &'a str) -> Aad<'a> {
    Aad {
        subject_id: "subj-1",
        category: "user.contact.email",
        field: "email",
        key_id,
    }
}

#[test]
fn aes_seal_then_open_returns_the_plaintext() {
    let dek = ring(Suite::Aes256Gcm).generate_dek();
    let sealed = dek.seal(&aad(dek.key_id()), b"alice@example.com");
    assert_eq!(sealed.len(), 17 + SEAL_OVERHEAD);
    assert_eq!(sealed[0], Suite::Aes256Gcm.id());
    let opened = dek.open(&aad(dek.key_id()), &sealed).unwrap();
    assert_eq!(&opened[..], b"alice@example.com");
}

#[test]
fn sm4_seal_then_open_returns_the_plaintext() {
    let dek = ring(Suite::Sm4Gcm).generate_dek();
    assert_eq!(dek.suite(), Suite::Sm4Gcm);
    let sealed = dek.seal(&aad(dek.key_id()), b"+8615563170669");
    assert_eq!(sealed[0], Suite::Sm4Gcm.id());
    let opened = dek.open(&aad(dek.key_id()), &sealed).unwrap();
    assert_eq!(&opened[..], b"+8615563170669");
}

#[test]
fn empty_plaintext_round_trips_in_both_suites() {
    for suite in Suite::ALL {
        let dek = ring(suite).generate_dek();
        let sealed = dek.seal(&aad(dek.key_id()), b"");
        assert_eq!(sealed.len(), SEAL_OVERHEAD);
        assert!(dek.open(&aad(dek.key_id()), &sealed).unwrap().is_empty());
    }
}

#[test]
fn sealing_twice_gives_different_ciphertexts() {
    let dek = ring(Suite::Aes256Gcm).generate_dek();
    let a = dek.seal(&aad(dek.key_id()), b"same");
    let b = dek.seal(&aad(dek.key_id()), b"same");
    assert_ne!(a, b, "random nonces must differ");
}

#[test]
fn a_dek_opens_fields_sealed_under_the_other_suite_with_the_same_key() {
    let bytes = [9u8; 32];
    let aes = Dek::from_bytes("dek-x", Suite::Aes256Gcm, bytes);
    let sm4 = Dek::from_bytes("dek-x", Suite::Sm4Gcm, bytes);
    let a = aad("dek-x");
    assert_eq!(&sm4.open(&a, &aes.seal(&a, b"v")).unwrap()[..], b"v");
    assert_eq!(&aes.open(&a, &sm4.seal(&a, b"w")).unwrap()[..], b"w");
}

#[test]
fn tampered_ciphertext_fails_to_open() {
    for suite in Suite::ALL {
        let dek = ring(suite).generate_dek();
        let a = aad(dek.key_id());
        let sealed = dek.seal(&a, b"secret value");
        // Flip one bit in every position after the suite byte: nonce, ciphertext, tag.
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(
                dek.open(&a, &t).unwrap_err(),
                CryptoError::Decrypt,
                "byte {i}"
            );
        }
    }
}

#[test]
fn wrong_subject_in_aad_fails_to_open() {
    let dek = ring(Suite::Aes256Gcm).generate_dek();
    let sealed = dek.seal(&aad(dek.key_id()), b"v");
    let wrong = Aad {
        subject_id: "subj-2",
        ..aad(dek.key_id())
    };
    assert_eq!(dek.open(&wrong, &sealed).unwrap_err(), CryptoError::Decrypt);
}

#[test]
fn wrong_category_in_aad_fails_to_open() {
    let dek = ring(Suite::Sm4Gcm).generate_dek();
    let sealed = dek.seal(&aad(dek.key_id()), b"v");
    let wrong = Aad {
        category: "user.contact.phone",
        ..aad(dek.key_id())
    };
    assert_eq!(dek.open(&wrong, &sealed).unwrap_err(), CryptoError::Decrypt);
}

#[test]
fn wrong_field_in_aad_fails_to_open() {
    for suite in Suite::ALL {
        let dek = ring(suite).generate_dek();
        let sealed = dek.seal(&aad(dek.key_id()), b"v");
        let wrong = Aad {
            field: "email2",
            ..aad(dek.key_id())
        };
        assert_eq!(dek.open(&wrong, &sealed).unwrap_err(), CryptoError::Decrypt);
    }
}

#[test]
fn wrong_key_id_in_aad_fails_to_open() {
    let dek = ring(Suite::Aes256Gcm).generate_dek();
    let sealed = dek.seal(&aad(dek.key_id()), b"v");
    let err = dek.open(&aad("dek-000000000000000000000000"), &sealed);
    assert!(matches!(err, Err(CryptoError::UnknownKey { .. })));
}

#[test]
fn a_field_sealed_with_a_mislabelled_key_id_fails_to_open() {
    // Sealed with an AAD naming another key id: the tag binds that id, so even
    // the right DEK with its true id cannot open it.
    let dek = Dek::from_bytes("dek-a", Suite::Aes256Gcm, [1u8; 32]);
    let sealed = dek.seal(&aad("dek-b"), b"v");
    assert!(dek.open(&aad("dek-a"), &sealed).is_err());
}

#[test]
fn aad_parts_cannot_be_shifted_between_fields() {
    let dek = Dek::from_bytes("k", Suite::Aes256Gcm, [1u8; 32]);
    let a = Aad {
        subject_id: "ab",
        category: "c",
        field: "f",
        key_id: "k",
    };
    let b = Aad {
        subject_id: "a",
        category: "bc",
        field: "f",
        key_id: "k",
    };
    assert_ne!(a.to_bytes(), b.to_bytes());
    assert_eq!(
        dek.open(&b, &dek.seal(&a, b"v")).unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn wrong_dek_fails_to_open() {
    for suite in Suite::ALL {
        let r = ring(suite);
        let a = Dek::from_bytes("dek-same", suite, [1u8; 32]);
        let b = Dek::from_bytes("dek-same", suite, [2u8; 32]);
        let sealed = a.seal(&aad("dek-same"), b"v");
        assert_eq!(
            b.open(&aad("dek-same"), &sealed).unwrap_err(),
            CryptoError::Decrypt
        );
        let other = r.generate_dek();
        assert!(other.open(&aad(other.key_id()), &sealed).is_err());
    }
}

#[test]
fn truncated_input_fails_to_open() {
    for suite in Suite::ALL {
        let dek = ring(suite).generate_dek();
        let a = aad(dek.key_id());
        let sealed = dek.seal(&a, b"0123456789");
        for n in 0..sealed.len() {
            let err = dek.open(&a, &sealed[..n]).unwrap_err();
            if n < SEAL_OVERHEAD {
                assert_eq!(err, CryptoError::Malformed("sealed value too short"));
            } else {
                assert_eq!(err, CryptoError::Decrypt);
            }
        }
    }
}

#[test]
fn wrong_suite_byte_fails_to_open() {
    for suite in Suite::ALL {
        let dek = ring(suite).generate_dek();
        let a = aad(dek.key_id());
        let sealed = dek.seal(&a, b"v");
        for byte in [0x00, 0x03, 0x7f, 0xff] {
            let mut t = sealed.clone();
            t[0] = byte;
            assert!(matches!(dek.open(&a, &t), Err(CryptoError::Malformed(_))));
        }
        // The other known suite byte: the cipher differs, so authentication fails.
        let mut t = sealed.clone();
        t[0] = if suite == Suite::Aes256Gcm {
            0x02
        } else {
            0x01
        };
        assert_eq!(dek.open(&a, &t).unwrap_err(), CryptoError::Decrypt);
    }
}

#[test]
fn errors_and_debug_output_contain_no_key_or_plaintext_bytes() {
    let dek = Dek::from_bytes("dek-dbg", Suite::Aes256Gcm, [0xab; 32]);
    let dbg = format!("{dek:?}");
    assert!(dbg.contains("dek-dbg"));
    assert!(!dbg.to_lowercase().contains("abab"));
    assert!(!dbg.contains("171"));
    let mut sealed = dek.seal(&aad("dek-dbg"), b"top-secret");
    sealed[20] ^= 1;
    let msg = dek.open(&aad("dek-dbg"), &sealed).unwrap_err().to_string();
    assert!(!msg.contains("top-secret"));
}

#[test]
fn suite_names_parse_and_print() {
    for s in Suite::ALL {
        assert_eq!(Suite::parse(s.as_str()), Some(s));
        assert_eq!(s.as_str().parse::<Suite>().unwrap(), s);
        assert_eq!(s.to_string(), s.as_str());
        assert_eq!(Suite::from_id(s.id()), Some(s));
    }
    assert_eq!(Suite::parse(" SM4-GCM "), Some(Suite::Sm4Gcm));
    assert_eq!(Suite::parse("aes-128-gcm"), None);
    assert!("des".parse::<Suite>().is_err());
}

#[test]
fn aad_encoding_is_leb128_length_prefixed_parts() {
    let a = Aad {
        subject_id: "s1",
        category: "",
        field: "f",
        key_id: "dek-1",
    };
    assert_eq!(a.to_bytes(), b"\x02s1\x00\x01f\x05dek-1");
    let long = "x".repeat(200);
    let b = Aad {
        subject_id: &long,
        category: "c",
        field: "f",
        key_id: "k",
    };
    let bytes = b.to_bytes();
    // 200 = 0b1_1001000 → LEB128 [0xc8, 0x01].
    assert_eq!(&bytes[..2], &[0xc8, 0x01]);
    assert_eq!(bytes.len(), 2 + 200 + 3 * 2);
}

#[test]
fn fields_with_long_aad_round_trip_and_bind_the_aad() {
    let long = "y".repeat(1000);
    for suite in Suite::ALL {
        let dek = Dek::from_bytes("k", suite, [4u8; 32]);
        let a = Aad {
            subject_id: "s",
            category: "c",
            field: &long,
            key_id: "k",
        };
        let sealed = dek.seal(&a, b"v");
        assert_eq!(&dek.open(&a, &sealed).unwrap()[..], b"v");
        let short = Aad { field: "y", ..a };
        assert_eq!(dek.open(&short, &sealed).unwrap_err(), CryptoError::Decrypt);
    }
}
