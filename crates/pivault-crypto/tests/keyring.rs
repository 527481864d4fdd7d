//! Key ring: derivation, DEK wrapping, rotation and blind indexes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{
    Aad, CryptoError, KeyRing, MasterSecret, Suite, WrappedDek, WRAPPED_DEK_LEN,
    WRAPPED_DEK_SM4_LEN,
};

fn master(b: u8) -> MasterSecret {
    MasterSecret::from_bytes([b; 32])
}

#[test]
fn kek_id_matches_an_independent_hkdf_computation() {
    // Expected value from Python's hashlib/hmac, RFC 5869 with empty salt:
    //   prk = HMAC-SHA256(key = 32 zero bytes, msg = master)
    //   kek = HMAC-SHA256(prk, b"pivault kek v1" + b"\x01")
    //   "kek-" + sha256(kek).hexdigest()[:16]
    let ring = KeyRing::new(master(0x42), Suite::Aes256Gcm);
    assert_eq!(ring.kek_id(), "kek-c3794a287adb3f63");
}

#[test]
fn blind_index_matches_an_independent_hmac_computation() {
    // index_key = HMAC-SHA256(prk, b"pivault blind-index v1" + b"\x01") (prk as above);
    // expected = HMAC-SHA256(index_key, b"email\x00alice@example.com").
    let ring = KeyRing::new(master(0x42), Suite::Aes256Gcm);
    assert_eq!(
        hex::encode(ring.blind_index("email", "alice@example.com")),
        "178c2982112c368efb60f3cfcdf0a24d4fe5000dbb05af57be115d7c4682dbce"
    );
}

#[test]
fn generated_deks_have_fresh_ids_of_the_documented_shape() {
    let ring = KeyRing::new(master(1), Suite::Aes256Gcm);
    let a = ring.generate_dek();
    let b = ring.generate_dek();
    assert_ne!(a.key_id(), b.key_id());
    for id in [a.key_id(), b.key_id()] {
        let hex = id.strip_prefix("dek-").unwrap();
        assert_eq!(hex.len(), 24);
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
    assert_eq!(ring.kek_id().len(), 4 + 16);
}

#[test]
fn wrapped_dek_unwraps_to_a_key_that_opens_its_fields() {
    for suite in Suite::ALL {
        let ring = KeyRing::new(master(1), suite);
        let dek = ring.generate_dek();
        let w = ring.wrap_dek("subj-1", "primary", &dek);
        assert_eq!(w.key_id, dek.key_id());
        assert_eq!(w.kek_id, ring.kek_id());
        let len = match suite {
            Suite::Aes256Gcm => WRAPPED_DEK_LEN,
            Suite::Sm4Gcm => WRAPPED_DEK_SM4_LEN,
        };
        assert_eq!(w.bytes.len(), len);
        assert_eq!(w.wrap_suite(), Some(suite));
        let aad = Aad {
            subject_id: "subj-1",
            category: "c",
            field: "f",
            key_id: dek.key_id(),
        };
        let sealed = dek.seal(&aad, b"hello");
        let back = ring.unwrap_dek("subj-1", "primary", &w).unwrap();
        assert_eq!(back.key_id(), dek.key_id());
        assert_eq!(back.suite(), suite);
        assert_eq!(&back.open(&aad, &sealed).unwrap()[..], b"hello");
    }
}

#[test]
fn unwrap_with_the_wrong_subject_fails() {
    let ring = KeyRing::new(master(1), Suite::Aes256Gcm);
    let w = ring.wrap_dek("subj-1", "primary", &ring.generate_dek());
    assert_eq!(
        ring.unwrap_dek("subj-2", "primary", &w).unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn unwrap_with_the_wrong_scope_fails() {
    let ring = KeyRing::new(master(1), Suite::Aes256Gcm);
    let w = ring.wrap_dek("subj-1", "primary", &ring.generate_dek());
    assert_eq!(
        ring.unwrap_dek("subj-1", "restricted", &w).unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn unwrap_with_a_relabelled_key_id_fails() {
    let ring = KeyRing::new(master(1), Suite::Aes256Gcm);
    let mut w = ring.wrap_dek("subj-1", "primary", &ring.generate_dek());
    w.key_id = "dek-000000000000000000000000".into();
    assert_eq!(
        ring.unwrap_dek("subj-1", "primary", &w).unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn unwrap_of_tampered_or_truncated_bytes_fails() {
    let ring = KeyRing::new(master(1), Suite::Aes256Gcm);
    let w = ring.wrap_dek("s", "primary", &ring.generate_dek());
    for i in 0..w.bytes.len() {
        let mut t = w.clone();
        t.bytes[i] ^= 0x80;
        assert_eq!(
            ring.unwrap_dek("s", "primary", &t).unwrap_err(),
            CryptoError::Decrypt
        );
    }
    let mut t = w.clone();
    t.bytes.pop();
    assert!(matches!(
        ring.unwrap_dek("s", "primary", &t),
        Err(CryptoError::Malformed(_))
    ));
}

/// HKDF-SHA256 with an empty salt (RFC 5869), computed with ring directly.
fn hkdf(ikm: &[u8], info: &str, out: &mut [u8]) {
    struct Len(usize);
    impl ring::hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(ikm);
    let info = [info.as_bytes()];
    let okm = prk.expand(&info, Len(out.len())).unwrap();
    okm.fill(out).unwrap();
}

/// Each part's length as a one-byte LEB128 (all parts here are shorter than 128) and its bytes.
fn aad_of(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in parts {
        v.push(p.len() as u8);
        v.extend_from_slice(p);
    }
    v
}

#[test]
fn an_sm4_wrap_is_sm4_gcm_under_the_documented_key_and_aad() {
    use aes_gcm::aead::consts::U12;
    use aes_gcm::aead::{Aead, KeyInit, Payload};

    let m = [0x42u8; 32];
    let ring = KeyRing::new(MasterSecret::from_bytes(m), Suite::Sm4Gcm);
    let dek = ring.generate_dek();
    let w = ring.wrap_dek("subj-9", "restricted", &dek);
    assert_eq!(w.bytes.len(), 61);
    assert_eq!(w.bytes[0], 0x02);

    // KEK = HKDF(master, "pivault kek v1"); SM4 key = HKDF(KEK, "pivault kek sm4 v1");
    // AAD = the length-prefixed label, subject, scope and key id; RustCrypto's SM4-GCM.
    let mut kek = [0u8; 32];
    hkdf(&m, "pivault kek v1", &mut kek);
    let mut k = [0u8; 16];
    hkdf(&kek, "pivault kek sm4 v1", &mut k);
    let aad = aad_of(&[
        b"pivault dek wrap sm4-gcm v1",
        b"subj-9",
        b"restricted",
        dek.key_id().as_bytes(),
    ]);
    let gcm = aes_gcm::AesGcm::<sm4::Sm4, U12>::new(&k.into());
    let raw = gcm
        .decrypt(
            aes_gcm::Nonce::<U12>::from_slice(&w.bytes[1..13]),
            Payload {
                msg: &w.bytes[13..],
                aad: &aad,
            },
        )
        .unwrap();
    // The unwrapped key is the DEK: a field it seals opens with a DEK made from these bytes.
    let copy =
        pivault_crypto::Dek::from_bytes(dek.key_id(), Suite::Sm4Gcm, raw.try_into().unwrap());
    let a = Aad {
        subject_id: "subj-9",
        category: "c",
        field: "f",
        key_id: dek.key_id(),
    };
    assert_eq!(
        &copy.open(&a, &dek.seal(&a, b"same key")).unwrap()[..],
        b"same key"
    );
}

#[test]
fn a_tampered_sm4_wrap_fails_and_a_bad_lead_byte_is_malformed() {
    let ring = KeyRing::new(master(1), Suite::Sm4Gcm);
    let w = ring.wrap_dek("s", "primary", &ring.generate_dek());
    for i in 0..w.bytes.len() {
        let mut t = w.clone();
        t.bytes[i] ^= 0x80;
        let err = ring.unwrap_dek("s", "primary", &t).unwrap_err();
        if i == 0 {
            assert!(matches!(err, CryptoError::Malformed(_)), "{err:?}");
        } else {
            assert_eq!(err, CryptoError::Decrypt, "byte {i}");
        }
    }
    // 61 bytes that claim AES (0x01) are no form this code makes.
    let mut t = w.clone();
    t.bytes[0] = 0x01;
    assert!(matches!(
        ring.unwrap_dek("s", "primary", &t),
        Err(CryptoError::Malformed(_))
    ));
    assert_eq!(t.wrap_suite(), None);
    // Moved to another subject or scope, it does not open.
    assert_eq!(
        ring.unwrap_dek("s2", "primary", &w).unwrap_err(),
        CryptoError::Decrypt
    );
    assert_eq!(
        ring.unwrap_dek("s", "restricted", &w).unwrap_err(),
        CryptoError::Decrypt
    );
    // An SM4 wrap's body presented as a 60-byte AES wrap (lead byte cut) does not open.
    let cut = WrappedDek {
        bytes: w.bytes[1..].to_vec(),
        ..w.clone()
    };
    assert_eq!(
        ring.unwrap_dek("s", "primary", &cut).unwrap_err(),
        CryptoError::Decrypt
    );
}

#[test]
fn legacy_aes_wraps_unwrap_under_an_sm4_ring_and_rewrap_to_sm4() {
    let aes = KeyRing::new(master(3), Suite::Aes256Gcm);
    let sm4 = KeyRing::new(master(3), Suite::Sm4Gcm);
    assert_eq!(
        aes.kek_id(),
        sm4.kek_id(),
        "the suite does not change the KEK"
    );

    let dek = aes.generate_dek();
    let legacy = aes.wrap_dek("s", "primary", &dek);
    assert_eq!(legacy.bytes.len(), WRAPPED_DEK_LEN);
    let a = Aad {
        subject_id: "s",
        category: "c",
        field: "f",
        key_id: dek.key_id(),
    };
    let sealed = dek.seal(&a, b"old field");

    let back = sm4.unwrap_dek("s", "primary", &legacy).unwrap();
    assert_eq!(back.suite(), Suite::Sm4Gcm);
    assert_eq!(&back.open(&a, &sealed).unwrap()[..], b"old field");

    // Rotation's rewrap moves it to the ring's form; the AES ring still reads the result.
    let moved = sm4.rewrap_dek("s", "primary", &legacy).unwrap();
    assert_eq!(moved.wrap_suite(), Some(Suite::Sm4Gcm));
    assert_eq!(moved.key_id, legacy.key_id);
    let again = aes.unwrap_dek("s", "primary", &moved).unwrap();
    assert_eq!(&again.open(&a, &sealed).unwrap()[..], b"old field");
    let back_to_aes = aes.rewrap_dek("s", "primary", &moved).unwrap();
    assert_eq!(back_to_aes.wrap_suite(), Some(Suite::Aes256Gcm));
}

#[test]
fn unwrap_under_an_unknown_kek_names_the_kek_id() {
    let old = KeyRing::new(master(1), Suite::Aes256Gcm);
    let new = KeyRing::new(master(2), Suite::Aes256Gcm);
    let w = old.wrap_dek("s", "primary", &old.generate_dek());
    assert_eq!(
        new.unwrap_dek("s", "primary", &w).unwrap_err(),
        CryptoError::UnknownKey {
            key_id: old.kek_id().to_owned()
        }
    );
}

#[test]
fn retired_kek_still_unwraps_and_rewrap_moves_to_the_current_kek() {
    let old = KeyRing::new(master(1), Suite::Aes256Gcm);
    let dek = old.generate_dek();
    let w = old.wrap_dek("s", "primary", &dek);

    let mut ring = KeyRing::new(master(2), Suite::Aes256Gcm);
    ring.add_retired(master(1));
    ring.add_retired(master(1)); // idempotent
    ring.add_retired(master(2)); // current: ignored
    assert_eq!(ring.retired_kek_ids().collect::<Vec<_>>(), [old.kek_id()]);
    assert_ne!(ring.kek_id(), old.kek_id());

    let back = ring.unwrap_dek("s", "primary", &w).unwrap();
    assert_eq!(back.key_id(), dek.key_id());

    let moved = ring.rewrap_dek("s", "primary", &w).unwrap();
    assert_eq!(moved.kek_id, ring.kek_id());
    assert_eq!(moved.key_id, dek.key_id());
    let fresh = KeyRing::new(master(2), Suite::Aes256Gcm);
    let aad = Aad {
        subject_id: "s",
        category: "c",
        field: "f",
        key_id: dek.key_id(),
    };
    let sealed = dek.seal(&aad, b"x");
    let reopened = fresh.unwrap_dek("s", "primary", &moved).unwrap();
    assert_eq!(&reopened.open(&aad, &sealed).unwrap()[..], b"x");
}

#[test]
fn blind_index_is_stable_for_the_same_input() {
    let a = KeyRing::new(master(1), Suite::Aes256Gcm);
    let b = KeyRing::new(master(1), Suite::Sm4Gcm);
    assert_eq!(
        a.blind_index("mobile", "+8615563170669"),
        a.blind_index("mobile", "+8615563170669")
    );
    assert_eq!(
        a.blind_index("mobile", "+8615563170669"),
        b.blind_index("mobile", "+8615563170669"),
        "the suite does not change the index"
    );
}

#[test]
fn blind_index_differs_per_kind() {
    let r = KeyRing::new(master(1), Suite::Aes256Gcm);
    assert_ne!(
        r.blind_index("email", "x"),
        r.blind_index("account_id", "x")
    );
    // The 0x00 separator keeps kind and value apart.
    assert_ne!(r.blind_index("ab", "c"), r.blind_index("a", "bc"));
}

#[test]
fn blind_index_differs_per_master_secret() {
    let a = KeyRing::new(master(1), Suite::Aes256Gcm);
    let b = KeyRing::new(master(2), Suite::Aes256Gcm);
    assert_ne!(
        a.blind_index("email", "x@y.z"),
        b.blind_index("email", "x@y.z")
    );
}

#[test]
fn key_ring_and_deks_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<KeyRing>();
    assert_send_sync::<pivault_crypto::Dek>();
    assert_send_sync::<pivault_crypto::DekCache>();
}

#[test]
fn the_key_check_value_is_stable_per_master_and_tells_masters_apart() {
    let a = KeyRing::new(master(1), Suite::Aes256Gcm);
    let again = KeyRing::new(master(1), Suite::Sm4Gcm);
    let b = KeyRing::new(master(2), Suite::Aes256Gcm);
    assert_eq!(a.key_check_value(), again.key_check_value());
    assert_ne!(a.key_check_value(), b.key_check_value());
    assert!(a.matches_key_check(&again.key_check_value()));
    assert!(!a.matches_key_check(&b.key_check_value()));
    assert!(!a.matches_key_check(&a.key_check_value()[..31]));
    // it is none of the other derived values
    assert_ne!(a.key_check_value(), a.blind_index("key_check", ""));
    assert_eq!(a.kek_ids(), vec![a.kek_id().to_string()]);
}

#[test]
fn audit_links_are_keyed_and_differ_from_the_unkeyed_chain() {
    let a = KeyRing::new(master(1), Suite::Aes256Gcm).audit_chain_key();
    let b = KeyRing::new(master(2), Suite::Aes256Gcm).audit_chain_key();
    let entry = b"entry";
    let la = a.link(&pivault_crypto::GENESIS, entry);
    assert_eq!(la, a.clone().link(&pivault_crypto::GENESIS, entry));
    assert_ne!(la, b.link(&pivault_crypto::GENESIS, entry));
    assert_ne!(
        la,
        pivault_crypto::chain_hash(&pivault_crypto::GENESIS, entry)
    );
    assert!(a.verify_link(&pivault_crypto::GENESIS, entry, &la));
    assert!(!a.verify_link(&pivault_crypto::GENESIS, b"entrz", &la));
    assert!(!a.verify_link(&la, entry, &la));
    // the head MAC binds seq and hash, and is not a link
    let m = a.head_mac(1, &la);
    assert!(a.verify_head(1, &la, &m));
    assert!(!a.verify_head(0, &la, &m));
    assert!(!a.verify_head(1, &pivault_crypto::GENESIS, &m));
    assert!(!b.verify_head(1, &la, &m));
    assert_ne!(m, la);
    assert_eq!(format!("{a:?}"), "AuditChainKey(..)");
}

#[test]
fn key_check_value_and_audit_link_match_an_independent_hmac_computation() {
    // Python: prk = HMAC-SHA256(b"", master); k = HMAC-SHA256(prk, info + b"\x01")
    //   key check = HMAC-SHA256(k("pivault key-check v1"), b"pivault key check value v1")
    //   link      = HMAC-SHA256(k("pivault audit-chain v1"),
    //                           b"pivault audit link v1" + prev + len(entry).to_bytes(8) + entry)
    let ring = KeyRing::new(master(0x42), Suite::Aes256Gcm);
    assert_eq!(
        hex::encode(ring.key_check_value()),
        "86e158108f79d1498bfcd0d0dd20e0c29b1b9484319a3e21faae3417004d3f17"
    );
    assert_eq!(
        hex::encode(
            ring.audit_chain_key()
                .link(&pivault_crypto::GENESIS, b"entry")
        ),
        "34c403ad30f951f952c246bc31b87f654cdc65d206ce71a8132243b2351e9ebe"
    );
}

mod generations {
    use super::master;
    use pivault_crypto::{GenerationState, KeyGeneration, KeyKind, KeyRing, Suite};

    fn gen(generation: i64, salt: u8, state: GenerationState) -> KeyGeneration {
        KeyGeneration {
            generation,
            salt: if generation == 1 {
                vec![]
            } else {
                vec![salt; 32]
            },
            state,
        }
    }

    #[test]
    fn a_new_kek_generation_is_derived_the_same_by_every_ring_and_old_wraps_still_open() {
        let a = KeyRing::new(master(3), Suite::Aes256Gcm);
        let b = KeyRing::new(master(3), Suite::Aes256Gcm);
        let first = a.kek_id();
        let dek = a.generate_dek();
        let old = a.wrap_dek("s1", "primary", &dek);
        let id2 = a.generation_key_id(KeyKind::Kek, 2, &[9; 32]);
        assert!(id2.starts_with("kek-") && id2 != first);
        // a salt gives another key; generation 1 keeps its id
        assert_ne!(id2, a.generation_key_id(KeyKind::Kek, 2, &[8; 32]));
        assert_eq!(a.generation_key_id(KeyKind::Kek, 1, &[]), first);
        let gens = [
            gen(1, 0, GenerationState::Active),
            gen(2, 9, GenerationState::Current),
        ];
        a.install_generations(KeyKind::Kek, &gens);
        b.install_generations(KeyKind::Kek, &gens);
        assert_eq!(a.kek_id(), id2);
        assert_eq!(a.kek_generation(), 2);
        assert_eq!(a.kek_ids(), vec![id2.clone(), first.clone()]);
        let new = a.rewrap_dek("s1", "primary", &old).unwrap();
        assert_eq!(new.kek_id, id2);
        // another ring with the same master and generations opens both wraps
        assert_eq!(
            b.unwrap_dek("s1", "primary", &new).unwrap().key_id(),
            dek.key_id()
        );
        assert_eq!(
            b.unwrap_dek("s1", "primary", &old).unwrap().key_id(),
            dek.key_id()
        );
        // a retired KEK generation still unwraps (no row is left undecryptable)
        b.install_generations(
            KeyKind::Kek,
            &[
                gen(1, 0, GenerationState::Retired),
                gen(2, 9, GenerationState::Current),
            ],
        );
        assert!(b.unwrap_dek("s1", "primary", &old).is_ok());
        // a different master derives other generation keys
        let c = KeyRing::new(master(4), Suite::Aes256Gcm);
        assert_ne!(c.generation_key_id(KeyKind::Kek, 2, &[9; 32]), id2);
    }

    #[test]
    fn lookups_consult_current_and_active_index_generations_and_suppression_lists_every_one() {
        let r = KeyRing::new(master(5), Suite::Aes256Gcm);
        let d1 = r.blind_index("email", "a@b.c");
        assert_eq!(r.blind_indexes("email", "a@b.c"), vec![d1]);
        assert_eq!(r.index_generation(), 1);
        r.install_generations(
            KeyKind::BlindIndex,
            &[
                gen(1, 0, GenerationState::Active),
                gen(2, 7, GenerationState::Current),
            ],
        );
        let (g, d2) = r.blind_index_current("email", "a@b.c");
        assert_eq!(g, 2);
        assert_ne!(d1, d2);
        assert_eq!(r.blind_index("email", "a@b.c"), d2);
        assert_eq!(r.blind_indexes("email", "a@b.c"), vec![d2, d1]);
        assert!(r.index_key_id(2).unwrap().starts_with("bix-"));
        assert_eq!(
            r.index_key_id(2).unwrap(),
            r.generation_key_id(KeyKind::BlindIndex, 2, &[7; 32])
        );
        r.install_generations(
            KeyKind::BlindIndex,
            &[
                gen(1, 0, GenerationState::Retired),
                gen(2, 7, GenerationState::Current),
            ],
        );
        assert_eq!(r.blind_indexes("email", "a@b.c"), vec![d2]);
        assert_eq!(r.blind_indexes_all("email", "a@b.c"), vec![d2, d1]);
    }
}
