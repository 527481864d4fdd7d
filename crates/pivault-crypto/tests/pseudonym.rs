//! Pseudonyms (GB/T 35273-2020 §3.15): deterministic, reversible by the key holder only,
//! bound to their kind, tamper-evident.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{CryptoError, KeyRing, MasterSecret, Suite, PSEUDONYM_PREFIX};
use proptest::prelude::*;

fn ring(b: u8) -> KeyRing {
    KeyRing::new(MasterSecret::from_bytes([b; 32]), Suite::Aes256Gcm)
}

#[test]
fn matches_an_independent_computation() {
    // Python (hashlib, hmac, cryptography's AESGCM), RFC 5869 with empty salt:
    //   prk   = HMAC-SHA256(32 zero bytes, master)
    //   t1    = HMAC-SHA256(prk, b"pivault pseudonym v1" + b"\x01")        # k_mac
    //   t2    = HMAC-SHA256(prk, t1 + b"pivault pseudonym v1" + b"\x02")   # k_enc
    //   nonce = HMAC-SHA256(t1, b"\x06mobile\x0e+8615563170669")[:12]
    //   token = "pz1." + urlsafe_b64(nonce + AESGCM(t2).encrypt(nonce, value, b"mobile")) sans "="
    let p = ring(0x42);
    assert_eq!(
        p.pseudonymizer().pseudonymize("mobile", "+8615563170669"),
        "pz1.aYrevcXkZSPxANaDy4EmLBBOa99N9ZrJzmxDFiBKQmtdTeWqUSFddABP"
    );
}

#[test]
fn deterministic_and_reversible() {
    let r = ring(1);
    let p = r.pseudonymizer();
    let t = p.pseudonymize("account_id", "u106057");
    assert!(t.starts_with(PSEUDONYM_PREFIX));
    assert_eq!(t, p.pseudonymize("account_id", "u106057"));
    // Same key from another ring instance (restart, other node): same token.
    assert_eq!(
        t,
        ring(1)
            .pseudonymizer()
            .pseudonymize("account_id", "u106057")
    );
    assert_eq!(p.reidentify("account_id", &t).unwrap(), "u106057");
    assert_ne!(t, p.pseudonymize("account_id", "u106058"));
    // The token shows nothing of the value.
    assert!(!t.contains("106057"));
    // Empty and long values.
    for v in ["", "陈鹏", &"x".repeat(10_000)] {
        let t = p.pseudonymize("name", v);
        assert_eq!(p.reidentify("name", &t).unwrap(), v);
    }
}

#[test]
fn kinds_are_separate() {
    let r = ring(2);
    let p = r.pseudonymizer();
    let t = p.pseudonymize("mobile", "+8615563170669");
    assert_ne!(t, p.pseudonymize("email", "+8615563170669"));
    assert_eq!(p.reidentify("email", &t), Err(CryptoError::Decrypt));
    // A NUL in the kind cannot shift bytes between kind and value.
    let a = p.pseudonymize("a\0b", "c");
    let b = p.pseudonymize("a", "b\0c");
    assert_ne!(a[..20], b[..20], "different nonces");
    assert_eq!(p.reidentify("a\0b", &a).unwrap(), "c");
    assert_eq!(p.reidentify("a", &b).unwrap(), "b\0c");
}

#[test]
fn wrong_key_tampering_and_garbage_are_refused_without_leaking() {
    let t = ring(3)
        .pseudonymizer()
        .pseudonymize("email", "mchang@example.net");
    assert_eq!(
        ring(4).pseudonymizer().reidentify("email", &t),
        Err(CryptoError::Decrypt)
    );
    let p3 = ring(3);
    let p = p3.pseudonymizer();
    // Flip each character of the body in turn.
    let body = &t[PSEUDONYM_PREFIX.len()..];
    for i in 0..body.len() {
        let mut chars: Vec<char> = body.chars().collect();
        chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
        let bad = format!("{PSEUDONYM_PREFIX}{}", chars.iter().collect::<String>());
        let e = p.reidentify("email", &bad).unwrap_err();
        assert!(
            matches!(e, CryptoError::Decrypt | CryptoError::Malformed(_)),
            "{i}"
        );
        assert!(!e.to_string().contains("mchang"));
    }
    // Truncated, extended, other prefix, not base64, padded.
    for bad in [
        t[..t.len() - 1].to_owned(),
        format!("{t}A"),
        t.replacen("pz1.", "pz2.", 1),
        t[PSEUDONYM_PREFIX.len()..].to_owned(),
        "pz1.".to_owned(),
        "pz1.AAAA".to_owned(),
        "pz1.!!!!".to_owned(),
        format!("{t}="),
        String::new(),
    ] {
        let e = p.reidentify("email", &bad).unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("mchang") && !shown.contains(&t[4..]),
            "{shown}"
        );
    }
    // Debug of the pseudonymizer shows no key material.
    assert_eq!(format!("{p:?}"), "Pseudonymizer(..)");
}

#[test]
fn independent_of_the_other_derived_keys() {
    // A blind index of the value and its pseudonym share nothing visible.
    let r = ring(5);
    let t = r.pseudonymizer().pseudonymize("mobile", "+8615563170669");
    let bix = hex::encode(r.blind_index("mobile", "+8615563170669"));
    assert!(!t.contains(&bix[..8]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_value_and_kind_round_trip(kind in ".{0,40}", value in ".{0,300}", other in ".{0,40}") {
        let r = ring(9);
        let p = r.pseudonymizer();
        let t = p.pseudonymize(&kind, &value);
        prop_assert_eq!(&t, &p.pseudonymize(&kind, &value));
        prop_assert_eq!(p.reidentify(&kind, &t).unwrap(), value);
        if other != kind {
            prop_assert_eq!(p.reidentify(&other, &t), Err(CryptoError::Decrypt));
        }
    }

    #[test]
    fn reidentify_never_panics(token in "(pz1\\.)?[A-Za-z0-9_=+/-]{0,80}") {
        let r = ring(9);
        let _ = r.pseudonymizer().reidentify("mobile", &token);
    }
}
