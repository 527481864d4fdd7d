//! Sharded checkpoints, sharded inclusion and consistency bundles, and the audit-entry decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::{encode, entry, key, verifier, Log, KEY_NAME, ORIGIN};
use pivault_verify::merkle::{consistency_proof, leaf_hash, root};
use pivault_verify::note::sign_note;
use pivault_verify::{
    shard_head_leaf, shards_root, AuditLeaf, Checkpoint, ConsistencyBundle, InclusionBundle,
    NoteError, ProofError, ShardHead, ShardProof, VerifyError,
};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn heads3() -> Vec<ShardHead> {
    (0..3)
        .map(|k| ShardHead {
            shard: k,
            size: 10 + u64::from(k),
            root: leaf_hash(&[k as u8]),
        })
        .collect()
}

#[test]
fn a_shard_head_leaf_is_the_documented_bytes() {
    let h = ShardHead {
        shard: 0x0102_0304,
        size: 0x0a0b_0c0d_0e0f_1011,
        root: [0xee; 32],
    };
    let b = shard_head_leaf(&h);
    assert_eq!(b.len(), 65);
    assert_eq!(&b[..21], b"pivault shard head v1");
    assert_eq!(&b[21..25], &[1, 2, 3, 4]);
    assert_eq!(
        &b[25..33],
        &[0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11]
    );
    assert_eq!(&b[33..], &[0xee; 32]);
}

#[test]
fn for_shards_and_shards_round_trip_in_shard_order() {
    let heads = heads3();
    let mut shuffled = heads.clone();
    shuffled.reverse();
    assert_eq!(shards_root(&shuffled), shards_root(&heads));
    let want_root = root(
        &heads
            .iter()
            .map(|h| leaf_hash(&shard_head_leaf(h)))
            .collect::<Vec<_>>(),
    );
    assert_eq!(shards_root(&heads), want_root);
    let c = Checkpoint::for_shards(ORIGIN, &shuffled);
    assert_eq!((c.size, c.root), (33, want_root));
    assert_eq!(
        c.extensions,
        heads
            .iter()
            .map(|h| format!("shard {} {} {}", h.shard, h.size, B64.encode(h.root)))
            .collect::<Vec<_>>()
    );
    // Through the text, with a foreign extension line in the middle.
    let mut text = c.text();
    text.push_str("other extension\n");
    let parsed = Checkpoint::parse(&text).unwrap();
    assert_eq!(parsed.shards().unwrap(), heads);
    let mut mixed = c.clone();
    mixed.extensions.insert(1, "x-witness abc".into());
    assert_eq!(mixed.shards().unwrap(), heads);
}

#[test]
fn a_checkpoint_without_shard_lines_is_shard_zero() {
    let c = Checkpoint {
        origin: ORIGIN.into(),
        size: 9,
        root: [3; 32],
        extensions: vec!["not a shard".into(), "shards 1".into()],
    };
    assert_eq!(
        c.shards().unwrap(),
        vec![ShardHead {
            shard: 0,
            size: 9,
            root: [3; 32]
        }]
    );
}

#[test]
fn shard_lines_that_do_not_match_the_checkpoint_are_refused() {
    let heads = heads3();
    let good = Checkpoint::for_shards(ORIGIN, &heads);
    let with = |f: &dyn Fn(&mut Checkpoint)| {
        let mut c = good.clone();
        f(&mut c);
        c.shards()
    };
    let mm = |s| Err(NoteError::ShardsMismatch(s));
    // Duplicate shard 1 (sizes and root would otherwise be checked later).
    assert_eq!(
        with(&|c| c.extensions[2] = c.extensions[1].clone()),
        mm("duplicate shard")
    );
    assert_eq!(
        with(&|c| c.extensions.swap(1, 2)),
        mm("shards not in ascending order")
    );
    assert_eq!(
        with(&|c| {
            c.extensions.remove(1);
        }),
        mm("shards not numbered 0..n")
    );
    assert_eq!(
        with(&|c| {
            c.extensions.remove(0);
        }),
        mm("shards not numbered 0..n")
    );
    assert_eq!(
        with(&|c| c.size += 1),
        mm("shard sizes do not sum to the checkpoint size")
    );
    assert_eq!(
        with(&|c| c.root[0] ^= 1),
        mm("shards root differs from the checkpoint root")
    );
    // A line that claims another size but keeps the total and the root.
    let mut other = heads.clone();
    other[0].size += 1;
    other[1].size -= 1;
    let lines = Checkpoint::for_shards(ORIGIN, &other).extensions;
    assert_eq!(
        with(&|c| c.extensions = lines.clone()),
        mm("shards root differs from the checkpoint root")
    );
    for bad in [
        "shard 1 11",
        "shard 01 11 AAAA",
        "shard 1 +11 AAAA",
        "shard x 11 AAAA",
        "shard 1 11 AAAA",
        "shard 1 11 AAAA extra",
        "shard  1 11 AAAA",
    ] {
        assert_eq!(
            with(&|c| c.extensions[1] = bad.into()),
            Err(NoteError::CheckpointMalformed("shard line")),
            "{bad}"
        );
    }
    assert_eq!(good.shards().unwrap(), heads);
}

const SIZES: [u64; 3] = [5, 13, 1];

#[test]
fn a_sharded_inclusion_bundle_verifies_and_decodes_its_entry() {
    let log = Log::new(&SIZES, "reveal");
    let v = verifier();
    let cp = log.signed(&SIZES);
    for (shard, &size) in SIZES.iter().enumerate() {
        for index in 0..size {
            let b = InclusionBundle {
                leaf: B64.encode(&log.shards[shard][index as usize]),
                shard: shard as u32,
                index,
                proof: log.inclusion(shard, index, &SIZES),
                checkpoint: cp.clone(),
            };
            let json = serde_json::to_string(&b).unwrap();
            let ok = InclusionBundle::from_json(&json)
                .unwrap()
                .verify(&v)
                .unwrap();
            assert_eq!(
                (ok.shard, ok.index, ok.checkpoint.size),
                (shard as u32, index, 19)
            );
            let e = ok.entry.unwrap();
            assert_eq!(e.action, format!("reveal-{shard}-{index}"));
            assert_eq!(e.shard, shard as u32);
            // Claimed in another shard: its path does not lead to that shard's root, or the
            // entry names its own shard.
            let mut moved = b.clone();
            moved.shard = ((shard + 1) % 3) as u32;
            assert!(moved.verify(&v).is_err());
        }
    }
    let b = InclusionBundle {
        leaf: B64.encode(&log.shards[1][4]),
        shard: 3,
        index: 4,
        proof: log.inclusion(1, 4, &SIZES),
        checkpoint: cp.clone(),
    };
    assert_eq!(
        b.verify(&v),
        Err(VerifyError::Malformed("shard not in checkpoint"))
    );
    // An edited byte of the leaf.
    let mut leaf = log.shards[1][4].clone();
    leaf[20] ^= 1;
    let b = InclusionBundle {
        leaf: B64.encode(&leaf),
        shard: 1,
        ..b
    };
    assert_eq!(
        b.verify(&v),
        Err(VerifyError::Proof(ProofError::RootMismatch))
    );
}

#[test]
fn an_entry_proven_at_a_position_it_does_not_name_is_refused() {
    // A log whose shard 1 holds, at index 1, an entry that says it is at index 0.
    let v = verifier();
    let bad = encode(&entry(2, 1, 0, "reveal"));
    let good = encode(&entry(1, 1, 0, "reveal"));
    let t = [leaf_hash(&good), leaf_hash(&bad)];
    let heads = [
        ShardHead {
            shard: 0,
            size: 0,
            root: root(&[]),
        },
        ShardHead {
            shard: 1,
            size: 2,
            root: root(&t),
        },
    ];
    let cp = sign_note(
        &Checkpoint::for_shards(ORIGIN, &heads).text(),
        KEY_NAME,
        &key(),
    )
    .unwrap();
    let b = InclusionBundle {
        leaf: B64.encode(&bad),
        shard: 1,
        index: 1,
        proof: vec![hex::encode(t[0])],
        checkpoint: cp,
    };
    assert_eq!(
        b.verify(&v),
        Err(VerifyError::Malformed("entry names another index"))
    );
}

#[test]
fn an_unsharded_bundle_still_verifies() {
    // The JSON of before shards: no "shard" key, a checkpoint without shard lines.
    let t: Vec<_> = (0..6u8).map(|i| leaf_hash(&[i])).collect();
    let c = Checkpoint {
        origin: ORIGIN.into(),
        size: 6,
        root: root(&t),
        extensions: vec![],
    };
    let note = sign_note(&c.text(), KEY_NAME, &key()).unwrap();
    let proof: Vec<String> = pivault_verify::merkle::inclusion_proof(&t, 4)
        .unwrap()
        .iter()
        .map(hex::encode)
        .collect();
    let json = serde_json::json!({
        "leaf": B64.encode([4u8]), "index": 4, "proof": proof, "checkpoint": note
    })
    .to_string();
    let ok = InclusionBundle::from_json(&json)
        .unwrap()
        .verify(&verifier())
        .unwrap();
    assert_eq!((ok.shard, ok.index, ok.entry), (0, 4, None));
}

fn proofs(log: &Log, old: &[u64], new: &[u64]) -> Vec<ShardProof> {
    (0..old.len())
        .map(|k| ShardProof {
            shard: k as u32,
            proof: consistency_proof(&log.leaf_hashes(k, new[k]), old[k] as usize)
                .unwrap()
                .iter()
                .map(hex::encode)
                .collect(),
        })
        .collect()
}

#[test]
fn a_sharded_consistency_bundle_verifies_shard_by_shard() {
    let full = [9, 20, 6, 4];
    let log = Log::new(&full, "a");
    let v = verifier();
    let old = [3, 20, 0];
    let bundle = ConsistencyBundle {
        old: log.signed(&old),
        new: log.signed(&full),
        proofs: proofs(&log, &old, &full),
    };
    let json = serde_json::to_string(&bundle).unwrap();
    let (o, n) = ConsistencyBundle::from_json(&json)
        .unwrap()
        .verify(&v)
        .unwrap();
    assert_eq!((o.size, n.size), (23, 39));

    let mut missing = bundle.clone();
    missing.proofs.remove(1);
    assert_eq!(
        missing.verify(&v),
        Err(VerifyError::Malformed("missing shard proof"))
    );
    let mut dup = bundle.clone();
    dup.proofs.push(dup.proofs[0].clone());
    assert_eq!(
        dup.verify(&v),
        Err(VerifyError::Malformed("duplicate shard proof"))
    );
    // The later checkpoint drops a shard.
    let fewer = ConsistencyBundle {
        new: log.signed(&full[..2]),
        ..bundle.clone()
    };
    assert_eq!(
        fewer.verify(&v),
        Err(VerifyError::Malformed("shard missing from new checkpoint"))
    );
    // A shard that shrank.
    let shrunk = ConsistencyBundle {
        old: log.signed(&[3, 20, 5]),
        new: log.signed(&[9, 20, 4]),
        proofs: proofs(&log, &[3, 20, 4], &[9, 20, 4]),
    };
    assert!(matches!(
        shrunk.verify(&v),
        Err(VerifyError::Proof(ProofError::SizesReversed { .. }))
    ));
    // Shard 0 truncated to 2 and regrown to 9 with other entries.
    let other = Log::new(&full, "b");
    let mut forged = Log::new(&full, "a");
    for i in 2..9 {
        forged.shards[0][i] = other.shards[0][i].clone();
    }
    let regrown = ConsistencyBundle {
        old: log.signed(&[3, 20, 0]),
        new: forged.signed(&full),
        proofs: proofs(&forged, &old, &full),
    };
    assert_eq!(
        regrown.verify(&v),
        Err(VerifyError::Proof(ProofError::RootMismatch))
    );
    // Another origin.
    let c = Checkpoint::for_shards("elsewhere/audit", &log.heads(&full));
    let elsewhere = ConsistencyBundle {
        new: sign_note(&c.text(), KEY_NAME, &key()).unwrap(),
        ..bundle.clone()
    };
    assert_eq!(
        elsewhere.verify(&v),
        Err(VerifyError::Malformed("origins differ"))
    );
}

#[test]
fn audit_leaves_round_trip_and_reject_other_bytes() {
    for seq in 0..40i64 {
        let shard = (seq % 4) as u32;
        let e = entry(seq - 20, shard, seq as u64 * 1000, "reveal");
        let b = encode(&e);
        assert_eq!(AuditLeaf::decode(&b), Some(e.clone()), "seq {seq}");
        // Trailing bytes, a truncated suffix, a cut anywhere.
        let mut longer = b.clone();
        longer.push(0);
        assert_eq!(AuditLeaf::decode(&longer), None);
        for cut in 0..b.len() {
            let d = AuditLeaf::decode(&b[..cut]);
            // Cutting exactly the 12-byte suffix leaves a valid shard-0 entry.
            if shard != 0 && cut == b.len() - 12 {
                assert_eq!(d.map(|d| (d.shard, d.idx)), Some((0, None)));
            } else {
                assert_eq!(d, None, "seq {seq} cut {cut}");
            }
        }
    }
    let e = entry(1, 0, 0, "x");
    let b = encode(&e);
    // Another version byte; a suffix naming shard 0; a bad option tag; bad UTF-8.
    let mut v2 = b.clone();
    v2[0] = 2;
    assert_eq!(AuditLeaf::decode(&v2), None);
    let mut zero = b.clone();
    zero.extend_from_slice(&[0; 12]);
    assert_eq!(AuditLeaf::decode(&zero), None);
    let mut json_leaf = b"{\"seq\":1}".to_vec();
    assert_eq!(AuditLeaf::decode(&json_leaf), None);
    json_leaf.clear();
    assert_eq!(AuditLeaf::decode(&json_leaf), None);
    let mut utf = entry(1, 0, 0, "\u{e9}");
    utf.actor = String::new();
    let mut ub = encode(&utf);
    // actor is empty: 1 + 8 + 8 + 8 (its length) = 25; action's length at 25..33, byte at 33.
    assert_eq!(ub[33], 0xc3);
    ub[33] = 0xff;
    assert_eq!(AuditLeaf::decode(&ub), None);
    // A length that runs past the end (or past usize).
    let mut huge = b.clone();
    huge[17..25].copy_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(AuditLeaf::decode(&huge), None);
    // subject_id's tag (after actor "svc-1" and action "x"): 1 + 8 + 8 + 13 + 9 = 39.
    let mut tag = b.clone();
    assert_eq!(tag[39], 0);
    tag[39] = 2;
    assert_eq!(AuditLeaf::decode(&tag), None);
    // Serializes as the JSON the CLI prints.
    let j = serde_json::to_value(&e).unwrap();
    assert_eq!(j["action"], "x");
    assert_eq!(j["idx"], serde_json::Value::Null);
}
