//! Property: sealing then opening returns the input for any bytes and any AAD.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_crypto::{Aad, Dek, Suite};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_plaintext_and_aad_round_trip_in_both_suites(
        key in any::<[u8; 32]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        subject in ".{0,40}",
        category in ".{0,40}",
        field in ".{0,300}",
        key_id in "dek-[0-9a-f]{24}",
        sm4 in any::<bool>(),
    ) {
        let suite = if sm4 { Suite::Sm4Gcm } else { Suite::Aes256Gcm };
        let dek = Dek::from_bytes(key_id.clone(), suite, key);
        let aad = Aad { subject_id: &subject, category: &category, field: &field, key_id: &key_id };
        let sealed = dek.seal(&aad, &plaintext);
        prop_assert_eq!(sealed.len(), plaintext.len() + pivault_crypto::SEAL_OVERHEAD);
        let opened = dek.open(&aad, &sealed).unwrap();
        prop_assert_eq!(&opened[..], &plaintext[..]);
        let other = Aad { field: "other", ..aad };
        if field != "other" {
            prop_assert!(dek.open(&other, &sealed).is_err());
        }
    }
}
