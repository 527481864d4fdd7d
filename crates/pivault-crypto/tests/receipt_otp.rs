//! Receipt signatures (RFC 8032) and DSR one-time codes (policy §7.2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{
    digests_equal, generate_code, verify_receipt, CryptoError, KeyRing, MasterSecret, Suite,
};

fn ring(b: u8) -> KeyRing {
    KeyRing::new(MasterSecret::from_bytes([b; 32]), Suite::Aes256Gcm)
}

#[test]
fn receipt_key_and_signature_match_an_independent_ed25519_computation() {
    // Expected values from Python's hashlib/hmac (HKDF, RFC 5869, empty salt, info
    // "pivault receipt-signing v1", master = 32 × 0x42) and the `cryptography` package's
    // Ed25519PrivateKey.from_private_bytes(seed).sign(b"receipt").
    let signer = ring(0x42).receipt_signer();
    assert_eq!(
        hex::encode(signer.public_key()),
        "7797a30356159e830198c8a2c426476b519a9404c4bc0f26bbb72bab7783e667"
    );
    assert_eq!(signer.key_id(), "266a25bad74998ea");
    assert_eq!(
        hex::encode(signer.sign(b"receipt")),
        "cb581b3cc89589cf6c56ee12e3708193fca27d2656c0ddc5c4cb86d50127f166\
         477d0a6b024254b4549fd6f97ff319cfc6dab1bacee9cea6e0475c0f74f3d50a"
    );
}

#[test]
fn verify_receipt_accepts_the_rfc_8032_test_vector_1() {
    let pk: [u8; 32] =
        hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
            .unwrap()
            .try_into()
            .unwrap();
    let sig: [u8; 64] = hex::decode(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
         5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    )
    .unwrap()
    .try_into()
    .unwrap();
    verify_receipt(&pk, b"", &sig).unwrap();
    assert_eq!(
        verify_receipt(&pk, b"x", &sig),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn a_signed_receipt_verifies_and_any_change_is_refused() {
    let signer = ring(7).receipt_signer();
    let msg = b"{\"subject\":\"s-1\",\"deleted_at\":\"2025-01-01T00:00:00Z\"}";
    let sig = signer.sign(msg);
    let pk = signer.public_key();
    verify_receipt(&pk, msg, &sig).unwrap();

    let mut altered = *msg;
    altered[5] ^= 1;
    assert_eq!(
        verify_receipt(&pk, &altered, &sig),
        Err(CryptoError::BadSignature)
    );
    let mut bad_sig = sig;
    bad_sig[0] ^= 1;
    assert_eq!(
        verify_receipt(&pk, msg, &bad_sig),
        Err(CryptoError::BadSignature)
    );
    let other = ring(8).receipt_signer().public_key();
    assert_eq!(
        verify_receipt(&other, msg, &sig),
        Err(CryptoError::BadSignature)
    );
}

#[test]
fn receipt_key_is_stable_for_one_master_and_differs_between_masters() {
    assert_eq!(
        ring(1).receipt_signer().public_key(),
        ring(1).receipt_signer().public_key()
    );
    assert_ne!(
        ring(1).receipt_signer().public_key(),
        ring(2).receipt_signer().public_key()
    );
}

#[test]
fn receipt_signer_debug_shows_only_the_key_id() {
    let signer = ring(3).receipt_signer();
    let dbg = format!("{signer:?}");
    assert!(dbg.contains(&signer.key_id()), "{dbg}");
    assert!(!dbg.contains(&hex::encode(signer.public_key())));
}

#[test]
fn code_digest_matches_an_independent_hmac_computation() {
    // otp_key = HKDF-SHA256(master = 32 × 0x42, salt = "", info = "pivault otp v1");
    // expected = HMAC-SHA256(otp_key, b"pivault otp digest v1" + u64be(7) + b"dsr-123" + b"042917").
    assert_eq!(
        hex::encode(ring(0x42).code_digest("dsr-123", "042917")),
        "bc62f9a58acfd55b62833e858d2a6fd19bd2960db48c50f93b844ea1cf6b267d"
    );
}

#[test]
fn code_digest_is_deterministic_and_bound_to_the_request() {
    let r = ring(5);
    assert_eq!(
        r.code_digest("req-1", "123456"),
        r.code_digest("req-1", "123456")
    );
    assert_ne!(
        r.code_digest("req-1", "123456"),
        r.code_digest("req-2", "123456")
    );
    assert_ne!(
        r.code_digest("req-1", "123456"),
        r.code_digest("req-1", "123457")
    );
    // The length prefix keeps the request-id/code split unambiguous.
    assert_ne!(
        r.code_digest("req-11", "23456"),
        r.code_digest("req-1", "123456")
    );
    assert_ne!(ring(5).code_digest("a", "1"), ring(6).code_digest("a", "1"));
}

#[test]
fn otp_key_is_separate_from_the_blind_index_key() {
    // Feed both HMACs byte-identical input; equal outputs would mean equal keys.
    // code_digest("x", "1") MACs "pivault otp digest v1" ‖ 00 00 00 00 00 00 00 01 ‖ "x1";
    // blind_index(kind, v) MACs kind ‖ 00 ‖ v.
    let r = ring(9);
    let same_input_via_index = r.blind_index("pivault otp digest v1", "\0\0\0\0\0\0\u{1}x1");
    assert_ne!(same_input_via_index, r.code_digest("x", "1"));
}

#[test]
fn digests_equal_compares_whole_digests() {
    let r = ring(4);
    let a = r.code_digest("q", "000000");
    assert!(digests_equal(&a, &r.code_digest("q", "000000")));
    assert!(!digests_equal(&a, &r.code_digest("q", "000001")));
    assert!(!digests_equal(&a, &a[..31]));
    assert!(!digests_equal(&a, &[]));
}

#[test]
fn generated_codes_have_exactly_the_requested_digits() {
    for digits in 6..=9 {
        for _ in 0..200 {
            let c = generate_code(digits);
            assert_eq!(c.len(), digits as usize, "{c}");
            assert!(c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
    }
}

#[test]
#[should_panic(expected = "6 to 9 digits")]
fn codes_shorter_than_six_digits_are_refused() {
    let _ = generate_code(5);
}

#[test]
#[should_panic(expected = "6 to 9 digits")]
fn codes_longer_than_nine_digits_are_refused() {
    let _ = generate_code(10);
}

#[test]
fn first_digits_of_codes_are_uniform() {
    // Chi-square goodness of fit over 10 cells, 9 degrees of freedom, 100 000 draws.
    // P(χ² > 33.7) ≈ 1e-4 for a uniform source, so a healthy generator essentially never
    // fails; a modulo bias or a stuck digit blows far past it.
    const N: usize = 100_000;
    let mut counts = [0usize; 10];
    for _ in 0..N {
        let c = generate_code(6);
        counts[usize::from(c.as_bytes()[0] - b'0')] += 1;
    }
    let expected = N as f64 / 10.0;
    let chi2: f64 = counts
        .iter()
        .map(|&o| {
            let d = o as f64 - expected;
            d * d / expected
        })
        .sum();
    assert!(chi2 < 33.7, "chi-square {chi2} for counts {counts:?}");
}

#[test]
fn consecutive_codes_differ() {
    // 9-digit codes: a repeat among 50 draws has probability ≈ 1.2e-6.
    let codes: std::collections::HashSet<String> = (0..50).map(|_| generate_code(9)).collect();
    assert_eq!(codes.len(), 50);
}
