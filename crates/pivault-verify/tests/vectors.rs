//! RFC 9162 / RFC 6962 test vectors (the eight-leaf tree of the Certificate Transparency
//! reference tests), every inclusion and consistency proof of trees up to 33 leaves, tampering,
//! and signed checkpoints.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::SigningKey;
use pivault_verify::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion,
    Hash, ProofError,
};
use pivault_verify::note::{sign_note, Checkpoint, NoteError, NoteVerifier};
use pivault_verify::{ConsistencyBundle, InclusionBundle, ShardProof, VerifyError};

fn h(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// The reference leaves: "", 00, 10, 2021, 3031, 40..43, 50..57, 60..6f.
fn leaves() -> Vec<Hash> {
    let data: [Vec<u8>; 8] = [
        vec![],
        vec![0x00],
        vec![0x10],
        vec![0x20, 0x21],
        vec![0x30, 0x31],
        vec![0x40, 0x41, 0x42, 0x43],
        (0x50..0x58).collect(),
        (0x60..0x70).collect(),
    ];
    data.iter().map(|d| leaf_hash(d)).collect()
}

const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn the_roots_of_the_reference_tree_are_the_rfcs() {
    assert_eq!(
        hex::encode(root(&[])),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    let l = leaves();
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(
            hex::encode(root(&l[..=n])),
            *want,
            "root of {} leaves",
            n + 1
        );
    }
}

#[test]
fn the_reference_inclusion_proofs_are_built_and_verify() {
    let l = leaves();
    let cases: &[(usize, usize, &[&str])] = &[
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (i, n, want) in cases {
        let got = inclusion_proof(&l[..*n], *i).unwrap();
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(got, want, "path of leaf {i} in {n}");
        verify_inclusion(*i as u64, *n as u64, &l[*i], &want, &h(ROOTS[n - 1])).unwrap();
    }
}

#[test]
fn the_reference_consistency_proofs_are_built_and_verify() {
    let l = leaves();
    let cases: &[(usize, usize, &[&str])] = &[
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (m, n, want) in cases {
        let got = consistency_proof(&l[..*n], *m).unwrap();
        let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        assert_eq!(got, want, "consistency {m} → {n}");
        verify_consistency(
            *m as u64,
            *n as u64,
            &h(ROOTS[m - 1]),
            &h(ROOTS[n - 1]),
            &want,
        )
        .unwrap();
    }
}

fn many(n: usize) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
        .collect()
}

#[test]
fn every_proof_of_trees_up_to_33_leaves_verifies_and_no_tampered_one_does() {
    let all = many(33);
    for n in 1..=all.len() {
        let t = &all[..n];
        let r = root(t);
        for i in 0..n {
            let p = inclusion_proof(t, i).unwrap();
            verify_inclusion(i as u64, n as u64, &t[i], &p, &r).unwrap();
            // Another leaf, another index, another root, a flipped bit: all refused.
            assert!(verify_inclusion(i as u64, n as u64, &leaf_hash(b"x"), &p, &r).is_err());
            if n > 1 {
                assert!(verify_inclusion(((i + 1) % n) as u64, n as u64, &t[i], &p, &r).is_err());
            }
            // The root of another tree (the checkpoint binds size and root together).
            assert!(verify_inclusion(i as u64, n as u64, &t[i], &p, &leaf_hash(b"r")).is_err());
            for j in 0..p.len() {
                let mut q = p.clone();
                q[j][0] ^= 1;
                assert_eq!(
                    verify_inclusion(i as u64, n as u64, &t[i], &q, &r),
                    Err(ProofError::RootMismatch)
                );
            }
        }
        for m in 0..=n {
            let p = consistency_proof(t, m).unwrap();
            let rm = root(&t[..m]);
            verify_consistency(m as u64, n as u64, &rm, &r, &p).unwrap();
            if m > 0 && m < n {
                // A first tree that is not the prefix (one leaf changed): refused.
                let mut other = t[..m].to_vec();
                other[m - 1] = leaf_hash(b"rewritten");
                assert!(verify_consistency(m as u64, n as u64, &root(&other), &r, &p).is_err());
                assert!(verify_consistency(m as u64, n as u64, &rm, &r, &p[1..]).is_err());
            }
        }
    }
    assert_eq!(
        verify_inclusion(3, 3, &all[0], &[], &root(&all[..3])),
        Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
    );
    assert!(matches!(
        verify_consistency(5, 4, &all[0], &all[0], &[]),
        Err(ProofError::SizesReversed { .. })
    ));
}

#[test]
fn a_log_truncated_and_regrown_to_the_same_size_is_caught() {
    let old = many(20);
    let mut regrown = old[..12].to_vec();
    regrown.extend((12..20).map(|i| leaf_hash(format!("forged {i}").as_bytes())));
    assert_ne!(root(&old), root(&regrown));
    // Same size, other root: not consistent with itself.
    assert_eq!(
        verify_consistency(20, 20, &root(&old), &root(&regrown), &[]),
        Err(ProofError::RootMismatch)
    );
    // Grown further: no proof from the regrown tree leads back to the old root.
    let mut later = regrown.clone();
    later.extend(many(25)[20..].iter().copied());
    let p = consistency_proof(&later, 20).unwrap();
    assert!(verify_consistency(20, 25, &root(&old), &root(&later), &p).is_err());
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn signed_checkpoint(t: &[Hash]) -> String {
    let c = Checkpoint {
        origin: "pivault.test/audit".into(),
        size: t.len() as u64,
        root: root(t),
        extensions: vec!["x-extension 0 3 AAAA".into()],
    };
    sign_note(&c.text(), "pivault.test", &key()).unwrap()
}

#[test]
fn checkpoints_sign_parse_and_refuse_a_wrong_key_or_an_edit() {
    let v = NoteVerifier::new("pivault.test", key().verifying_key()).unwrap();
    let encoded = v.encode();
    let v = NoteVerifier::parse(&encoded).unwrap();
    assert_eq!(v.encode(), encoded);
    let t = many(9);
    let note = signed_checkpoint(&t);
    let c = Checkpoint::open(&note, &v).unwrap();
    assert_eq!((c.size, c.root, c.extensions.len()), (9, root(&t), 1));
    // An edited size, another key, another key name.
    let edited = note.replacen("\n9\n", "\n8\n", 1);
    assert_eq!(
        Checkpoint::open(&edited, &v),
        Err(NoteError::BadSignature("pivault.test".into()))
    );
    let other = NoteVerifier::new(
        "pivault.test",
        SigningKey::from_bytes(&[8u8; 32]).verifying_key(),
    )
    .unwrap();
    assert_eq!(
        Checkpoint::open(&note, &other),
        Err(NoteError::NotSigned("pivault.test".into()))
    );
    // A key string whose id does not match its key.
    let mut bad = encoded.clone();
    let at = bad.find('+').unwrap() + 1;
    bad.replace_range(at..at + 1, if &bad[at..at + 1] == "0" { "1" } else { "0" });
    assert!(matches!(
        NoteVerifier::parse(&bad),
        Err(NoteError::KeyMalformed)
    ));
    assert!(Checkpoint::parse("origin\n007\nAAAA\n").is_err());
}

#[test]
fn an_inclusion_bundle_verifies_offline_and_fails_once_the_entry_is_altered() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let entries: Vec<Vec<u8>> = (0..13)
        .map(|i| format!("{{\"seq\":{i}}}").into_bytes())
        .collect();
    let t: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let v = NoteVerifier::new("pivault.test", key().verifying_key()).unwrap();
    let bundle = InclusionBundle {
        leaf: b64.encode(&entries[6]),
        shard: 0,
        index: 6,
        proof: inclusion_proof(&t, 6)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect(),
        checkpoint: signed_checkpoint(&t),
    };
    let json = serde_json::to_string(&bundle).unwrap();
    let ok = InclusionBundle::from_json(&json)
        .unwrap()
        .verify(&v)
        .unwrap();
    assert_eq!((ok.shard, ok.index, ok.checkpoint.size), (0, 6, 13));
    assert_eq!(ok.entry, None, "not a pivault audit entry");
    let mut altered = bundle.clone();
    altered.leaf = b64.encode(b"{\"seq\":6,\"outcome\":\"deny\"}");
    assert_eq!(
        altered.verify(&v),
        Err(VerifyError::Proof(ProofError::RootMismatch))
    );
    let c = ConsistencyBundle {
        old: signed_checkpoint(&t[..5]),
        new: signed_checkpoint(&t),
        proofs: vec![ShardProof {
            shard: 0,
            proof: consistency_proof(&t, 5)
                .unwrap()
                .iter()
                .map(hex::encode)
                .collect(),
        }],
    };
    c.verify(&v).unwrap();
}
