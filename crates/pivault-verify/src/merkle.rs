//! Merkle tree hashing and proofs of RFC 9162 §2.1 (Certificate Transparency v2; the same
//! arithmetic as RFC 6962): SHA-256, a leaf hashed as `SHA-256(0x00 || entry)`, an interior
//! node as `SHA-256(0x01 || left || right)`, the left subtree of `n` leaves holding the largest
//! power of two below `n`. The domain separation keeps a leaf from posing as a node.
//!
//! The proof builders take every leaf hash (they are what a test or a small log needs); a log
//! with stored subtree hashes builds the same proofs from O(log n) reads.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// Why a proof does not verify. Names the step, never the data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index given.
        index: u64,
        /// The tree size given.
        size: u64,
    },
    /// The first tree is larger than the second.
    #[error("a tree of {first} leaves cannot be a prefix of one of {second}")]
    SizesReversed {
        /// The first (older) size.
        first: u64,
        /// The second (newer) size.
        second: u64,
    },
    /// The proof has too many or too few hashes for the sizes given.
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    /// The hashes recomputed from the proof are not the roots given.
    #[error("the recomputed root differs from the expected root")]
    RootMismatch,
}

/// `SHA-256(0x00 || entry)`: the hash of one leaf (RFC 9162 §2.1.1).
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node (RFC 9162 §2.1.1).
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (`n >= 2`): the size of the left subtree.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The Merkle tree hash (root) of the leaves whose hashes are `leaves`, in order; the hash
/// of the empty string for no leaf (RFC 9162 §2.1.1).
#[must_use]
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `leaves`, from the leaf up
/// (RFC 9162 §2.1.3.1). `None` when `index` is out of range.
#[must_use]
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// The consistency proof that the tree of the first `first` leaves is a prefix of the tree
/// of all `leaves` (RFC 9162 §2.1.4.1). Empty when `first` is 0 or all of them. `None` when
/// `first` exceeds the number of leaves.
#[must_use]
pub fn consistency_proof(leaves: &[Hash], first: usize) -> Option<Vec<Hash>> {
    if first > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    if first > 0 && first < leaves.len() {
        subproof(first, leaves, true, &mut out);
    }
    Some(out)
}

fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !whole {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], whole, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Checks that `leaf` (a [`leaf_hash`]) is leaf `index` of the tree of `size` leaves whose
/// root is `root`, given its audit path `proof` (RFC 9162 §2.1.3.2).
///
/// # Errors
/// [`ProofError::IndexOutOfRange`], [`ProofError::WrongLength`], [`ProofError::RootMismatch`].
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `first` leaves with root `first_root` is a prefix of the tree of
/// `second` leaves with root `second_root`, given the consistency proof `proof` (RFC 9162
/// §2.1.4.2). The empty tree is a prefix of every tree; a tree is consistent with itself when
/// the roots are equal and the proof is empty.
///
/// # Errors
/// [`ProofError::SizesReversed`], [`ProofError::WrongLength`], [`ProofError::RootMismatch`].
pub fn verify_consistency(
    first: u64,
    second: u64,
    first_root: &Hash,
    second_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if first == second {
        return match (proof.is_empty(), first_root == second_root) {
            (false, _) => Err(ProofError::WrongLength),
            (true, false) => Err(ProofError::RootMismatch),
            (true, true) => Ok(()),
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut fnode, mut snode) = (first - 1, second - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != first_root || &sr != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}
