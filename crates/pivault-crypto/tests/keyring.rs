//! Key ring: derivation, DEK wrapping, rotation and blind indexes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{Aad, CryptoError, KeyRing, MasterSecret, Suite, WRAPPED_DEK_LEN};

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
        assert_eq!(w.bytes.len(), WRAPPED_DEK_LEN);
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
