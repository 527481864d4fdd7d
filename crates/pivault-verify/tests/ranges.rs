//! The stored-subtree arithmetic: proofs built from perfect-subtree hashes (as a tiled log
//! stores them, through `Frontier::push`) are exactly the RFC 9162 proofs built from the leaves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use pivault_verify::merkle::{
    consistency_proof, consistency_ranges, fold_subtrees, inclusion_proof, inclusion_ranges,
    leaf_hash, perfect_subtrees, root, verify_consistency, verify_inclusion, Frontier, Hash,
    ProofError,
};
use proptest::prelude::*;
use std::collections::HashMap;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
        .collect()
}

/// Every perfect subtree of `leaves`, keyed `(level, idx)`, as `Frontier::push` reports them.
fn table(leaves: &[Hash]) -> HashMap<(u32, u64), Hash> {
    let mut f = Frontier::new();
    let mut t = HashMap::new();
    for (i, l) in leaves.iter().enumerate() {
        let nodes = f.push(*l);
        assert_eq!(nodes[0], (0, i as u64, *l), "the leaf comes first");
        for w in nodes.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1, "bottom-up, one level at a time");
            assert_eq!(w[1].1, w[0].1 >> 1);
        }
        for (level, idx, h) in nodes {
            assert!(
                t.insert((level, idx), h).is_none(),
                "each node completed once"
            );
        }
    }
    t
}

fn range_hash(t: &HashMap<(u32, u64), Hash>, (start, end): (u64, u64)) -> Hash {
    let hs: Vec<Hash> = perfect_subtrees(start, end).iter().map(|k| t[k]).collect();
    fold_subtrees(&hs).unwrap()
}

#[test]
fn the_table_holds_every_perfect_subtree_hash() {
    let l = leaves(70);
    let t = table(&l);
    for (&(level, idx), h) in &t {
        let lo = (idx << level) as usize;
        assert_eq!(*h, root(&l[lo..lo + (1 << level)]));
    }
    // 70 leaves complete 70 + 35 + 17 + 8 + 4 + 2 + 1 nodes.
    assert_eq!(t.len(), 137);
}

#[test]
fn proofs_from_stored_subtrees_equal_proofs_from_leaves_up_to_70() {
    let l = leaves(70);
    let t = table(&l);
    for n in 1..=70u64 {
        let tree = &l[..n as usize];
        for i in 0..n {
            let got: Vec<Hash> = inclusion_ranges(i, n)
                .unwrap()
                .into_iter()
                .map(|r| range_hash(&t, r))
                .collect();
            assert_eq!(
                got,
                inclusion_proof(tree, i as usize).unwrap(),
                "leaf {i} of {n}"
            );
        }
        assert_eq!(inclusion_ranges(n, n), None);
        for m in 0..=n {
            let got: Vec<Hash> = consistency_ranges(m, n)
                .unwrap()
                .into_iter()
                .map(|r| range_hash(&t, r))
                .collect();
            assert_eq!(
                got,
                consistency_proof(tree, m as usize).unwrap(),
                "{m} → {n}"
            );
        }
        assert_eq!(consistency_ranges(n + 1, n), None);
    }
    assert_eq!(consistency_ranges(0, 0), Some(vec![]));
    assert_eq!(inclusion_ranges(0, 0), None);
}

#[test]
fn frontier_root_equals_root_up_to_200_and_round_trips() {
    let l = leaves(200);
    let mut f = Frontier::new();
    assert_eq!(f.root(), root(&[]));
    assert_eq!(Frontier::from_bytes(&f.to_bytes()), Some(f.clone()));
    for n in 1..=200u64 {
        f.push(l[n as usize - 1]);
        assert_eq!(f.size(), n);
        assert_eq!(f.root(), root(&l[..n as usize]), "size {n}");
        assert_eq!(f.hashes().len(), n.count_ones() as usize);
        let b = f.to_bytes();
        assert_eq!(b.len(), 8 + 32 * n.count_ones() as usize);
        assert_eq!(Frontier::from_bytes(&b), Some(f.clone()));
        assert_eq!(Frontier::from_bytes(&b[..b.len() - 1]), None);
        let mut longer = b.clone();
        longer.extend_from_slice(&[0; 32]);
        assert_eq!(Frontier::from_bytes(&longer), None);
        // The hashes are those of perfect_subtrees(0, n).
        let subtrees = perfect_subtrees(0, n);
        assert_eq!(subtrees.len(), f.hashes().len());
        for ((level, idx), h) in subtrees.iter().zip(f.hashes()) {
            let lo = (idx << level) as usize;
            assert_eq!(*h, root(&l[lo..lo + (1 << level)]));
        }
    }
    assert_eq!(Frontier::from_bytes(&[0; 7]), None);
    // A size whose popcount does not match the hashes that follow.
    let mut b = 3u64.to_be_bytes().to_vec();
    b.extend_from_slice(&[0; 32]);
    assert_eq!(Frontier::from_bytes(&b), None);
    // A resumed frontier grows like the original.
    let mut a = Frontier::new();
    for h in &l[..37] {
        a.push(*h);
    }
    let mut r = Frontier::from_bytes(&a.to_bytes()).unwrap();
    for h in &l[37..] {
        assert_eq!(a.push(*h), r.push(*h));
    }
    assert_eq!(r.root(), root(&l));
}

#[test]
fn perfect_subtrees_are_maximal_and_aligned() {
    assert_eq!(perfect_subtrees(0, 0), vec![]);
    assert_eq!(perfect_subtrees(5, 5), vec![]);
    assert_eq!(perfect_subtrees(0, 13), vec![(3, 0), (2, 2), (0, 12)]);
    assert_eq!(
        perfect_subtrees(3, 13),
        vec![(0, 3), (2, 1), (2, 2), (0, 12)]
    );
    assert_eq!(perfect_subtrees(0, u64::MAX).len(), 64);
    assert_eq!(
        perfect_subtrees(u64::MAX - 1, u64::MAX),
        vec![(0, u64::MAX - 1)]
    );
    assert_eq!(fold_subtrees(&[]), None);
}

fn ceil_log2(n: u64) -> usize {
    if n <= 1 {
        0
    } else {
        (64 - (n - 1).leading_zeros()) as usize
    }
}

/// `ranges` are disjoint tree nodes that, with `extra`, tile `[0, size)` exactly.
fn tiles(mut ranges: Vec<(u64, u64)>, extra: Option<(u64, u64)>, size: u64) {
    for &(s, e) in &ranges {
        assert!(s < e && e <= size);
        // A node of the RFC 9162 tree: at most one subtree per level, decreasing.
        let p = perfect_subtrees(s, e);
        assert!(
            p.windows(2).all(|w| w[0].0 > w[1].0),
            "{s}..{e} is a tree node"
        );
    }
    ranges.extend(extra);
    ranges.sort_unstable();
    let mut at = 0;
    for (s, e) in ranges {
        assert_eq!(s, at, "ranges tile without gap or overlap");
        at = e;
    }
    assert_eq!(at, size);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn inclusion_ranges_tile_and_have_the_verifiers_length(size in 1u64..=100_000, at in any::<u64>()) {
        let index = at % size;
        let r = inclusion_ranges(index, size).unwrap();
        prop_assert!(r.len() <= ceil_log2(size));
        // Bottom-up: each range is the sibling of the subtree covered so far, starting with
        // the leaf, and the last one completes the tree.
        let (mut lo, mut hi) = (index, index + 1);
        for &(s, e) in &r {
            if e == lo {
                lo = s;
            } else {
                prop_assert_eq!(s, hi, "{}..{} is adjacent to {}..{}", s, e, lo, hi);
                hi = e;
            }
        }
        prop_assert_eq!((lo, hi), (0, size));
        tiles(r.clone(), Some((index, index + 1)), size);
        // verify_inclusion takes exactly this many hashes (wrong hashes, right count → the
        // roots differ; one more or fewer → wrong length).
        let dummy = vec![[9u8; 32]; r.len()];
        prop_assert_eq!(
            verify_inclusion(index, size, &[1; 32], &dummy, &[2; 32]),
            Err(ProofError::RootMismatch)
        );
        let mut more = dummy.clone();
        more.push([9; 32]);
        prop_assert_eq!(
            verify_inclusion(index, size, &[1; 32], &more, &[2; 32]),
            Err(ProofError::WrongLength)
        );
        if !dummy.is_empty() {
            prop_assert_eq!(
                verify_inclusion(index, size, &[1; 32], &dummy[1..], &[2; 32]),
                Err(ProofError::WrongLength)
            );
        }
        prop_assert_eq!(inclusion_ranges(size, size), None);
    }

    #[test]
    fn consistency_ranges_tile_and_have_the_verifiers_length(new in 1u64..=100_000, at in any::<u64>()) {
        let old = at % (new + 1);
        let r = consistency_ranges(old, new).unwrap();
        if old == 0 || old == new {
            prop_assert!(r.is_empty());
            return Ok(());
        }
        prop_assert!(r.len() <= ceil_log2(new) + 1);
        let whole = old.is_power_of_two().then_some((0, old));
        tiles(r.clone(), whole, new);
        let dummy = vec![[9u8; 32]; r.len()];
        prop_assert_eq!(
            verify_consistency(old, new, &[1; 32], &[2; 32], &dummy),
            Err(ProofError::RootMismatch)
        );
        let mut more = dummy.clone();
        more.push([9; 32]);
        prop_assert_eq!(
            verify_consistency(old, new, &[1; 32], &[2; 32], &more),
            Err(ProofError::WrongLength)
        );
        prop_assert_eq!(
            verify_consistency(old, new, &[1; 32], &[2; 32], &dummy[1..]),
            Err(ProofError::WrongLength)
        );
        prop_assert_eq!(consistency_ranges(new + 1, new), None);
    }
}
