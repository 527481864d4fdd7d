//! Webhook signatures (RFC 8032, receipt key, domain-separated input) and outbox sealing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{
    verify_receipt, verify_webhook, webhook_signing_input, CryptoError, KeyRing, MasterSecret,
    Suite, OUTBOX_SEAL_OVERHEAD,
};

fn ring(b: u8) -> KeyRing {
    KeyRing::new(MasterSecret::from_bytes([b; 32]), Suite::Aes256Gcm)
}

const BODY: &[u8] = br#"{"kind":"erasure","request_id":"dsr-1","subject_ref":"r-9"}"#;
const TS: i64 = 1_750_000_000;

#[test]
fn the_webhook_signing_input_is_label_timestamp_newline_body() {
    assert_eq!(
        webhook_signing_input(TS, b"{}"),
        b"pivault-webhook v1\n1750000000\n{}".to_vec()
    );
    assert_eq!(
        webhook_signing_input(-5, b""),
        b"pivault-webhook v1\n-5\n".to_vec()
    );
}

#[test]
fn a_signed_webhook_verifies_and_any_change_is_refused() {
    let signer = ring(7).receipt_signer();
    let pk = signer.public_key();
    let sig = signer.sign_webhook(TS, BODY);
    verify_webhook(&pk, TS, BODY, &sig).unwrap();
    // Deterministic, and equal to a plain signature over the documented input.
    assert_eq!(sig, signer.sign(&webhook_signing_input(TS, BODY)));

    let mut body = BODY.to_vec();
    body[3] ^= 1;
    assert_eq!(
        verify_webhook(&pk, TS, &body, &sig),
        Err(CryptoError::BadSignature)
    );
    assert_eq!(
        verify_webhook(&pk, TS + 1, BODY, &sig),
        Err(CryptoError::BadSignature)
    );
    let mut bad = sig;
    bad[10] ^= 0x80;
    assert_eq!(
        verify_webhook(&pk, TS, BODY, &bad),
        Err(CryptoError::BadSignature)
    );
    let other = ring(8).receipt_signer().public_key();
    assert_eq!(
        verify_webhook(&other, TS, BODY, &sig),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn webhook_and_receipt_signatures_do_not_stand_in_for_each_other() {
    let signer = ring(7).receipt_signer();
    let pk = signer.public_key();
    let receipt_sig = signer.sign(BODY);
    assert_eq!(
        verify_webhook(&pk, TS, BODY, &receipt_sig),
        Err(CryptoError::BadSignature)
    );
    let hook_sig = signer.sign_webhook(TS, BODY);
    assert_eq!(
        verify_receipt(&pk, BODY, &hook_sig),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn outbox_payloads_round_trip_with_random_nonces() {
    let keys = ring(1);
    let sealer = keys.outbox_sealer();
    let plain = "收件人 zhang.san@example.cn：验证码 604233".as_bytes();
    let a = sealer.seal(b"outbox:42", plain).unwrap();
    let b = sealer.seal(b"outbox:42", plain).unwrap();
    assert_eq!(a.len(), plain.len() + OUTBOX_SEAL_OVERHEAD);
    assert_ne!(a, b, "fresh nonce per sealing");
    assert!(!a.windows(6).any(|w| w == b"604233"));
    // A second handle (and a second ring from the same master) opens it.
    assert_eq!(
        &keys.outbox_sealer().open(b"outbox:42", &a).unwrap()[..],
        plain
    );
    assert_eq!(
        &ring(1).outbox_sealer().open(b"outbox:42", &b).unwrap()[..],
        plain
    );
    assert!(sealer
        .open(b"", &sealer.seal(b"", b"").unwrap())
        .unwrap()
        .is_empty());
}

#[test]
fn wrong_aad_tampering_or_another_master_secret_fail_authentication() {
    let sealer = ring(1).outbox_sealer();
    let sealed = sealer.seal(b"outbox:42", b"notice body").unwrap();
    assert_eq!(
        sealer.open(b"outbox:43", &sealed).unwrap_err(),
        CryptoError::Decrypt
    );
    for i in [0, 12, sealed.len() - 1] {
        let mut t = sealed.clone();
        t[i] ^= 1;
        assert_eq!(
            sealer.open(b"outbox:42", &t).unwrap_err(),
            CryptoError::Decrypt,
            "byte {i}"
        );
    }
    assert_eq!(
        ring(2)
            .outbox_sealer()
            .open(b"outbox:42", &sealed)
            .unwrap_err(),
        CryptoError::Decrypt
    );
    assert!(matches!(
        sealer.open(b"outbox:42", &sealed[..OUTBOX_SEAL_OVERHEAD - 1]),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn the_outbox_format_and_key_derivation_are_as_documented() {
    // Independent computation with ring: key = HKDF-SHA256(salt = "", IKM = master,
    // info = "pivault outbox v1"), sealed = nonce (12) ‖ AES-256-GCM ciphertext ‖ tag (16).
    struct Len32;
    impl ring::hkdf::KeyType for Len32 {
        fn len(&self) -> usize {
            32
        }
    }
    let master = [1u8; 32];
    let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&master);
    let info = [pivault_crypto::HKDF_INFO_OUTBOX.as_bytes()];
    let mut key = [0u8; 32];
    prk.expand(&info, Len32).unwrap().fill(&mut key).unwrap();
    let key = ring::aead::LessSafeKey::new(
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &key).unwrap(),
    );

    let sealer = ring(1).outbox_sealer();
    assert_eq!(format!("{sealer:?}"), "OutboxSealer { .. }");
    let sealed = sealer.seal(b"row-7", b"letter to Li Si").unwrap();
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(&sealed[..12]).unwrap();
    let mut buf = sealed[12..].to_vec();
    let plain = key
        .open_in_place(nonce, ring::aead::Aad::from(b"row-7"), &mut buf)
        .unwrap();
    assert_eq!(plain, b"letter to Li Si");
}
