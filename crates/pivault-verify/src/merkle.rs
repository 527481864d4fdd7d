//! Merkle tree hashing and proofs of RFC 9162 §2.1 (Certificate Transparency v2; the same
//! arithmetic as RFC 6962): SHA-256, a leaf hashed as `SHA-256(0x00 || entry)`, an interior
//! node as `SHA-256(0x01 || left || right)`, the left subtree of `n` leaves holding the largest
//! power of two below `n`. The domain separation keeps a leaf from posing as a node.
//!
//! The proof builders [`inclusion_proof`] and [`consistency_proof`] take every leaf hash (they
//! are what a test or a small log needs). A log that stores the hash of every perfect subtree
//! (a tiled log: each leaf appended through a [`Frontier`] completes O(log n) of them) builds
//! the same proofs from O(log n) reads instead:
//!
//! 1. [`inclusion_ranges`] / [`consistency_ranges`] name the leaf ranges whose Merkle tree
//!    hashes form the proof, in the proof's order;
//! 2. [`perfect_subtrees`] splits each range into stored perfect subtrees `(level, idx)`;
//! 3. [`fold_subtrees`] folds their hashes into the range's hash.

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

/// The largest power of two strictly below `n` (`n >= 2`), on `u64`.
fn split64(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges whose Merkle tree hashes (MTH, RFC 9162 §2.1.1) form the inclusion proof
/// (audit path) of leaf `index` in the tree of `size` leaves, in the order of
/// [`inclusion_proof`]: from the leaf up (RFC 9162 §2.1.3.1, `PATH(m, D[n])`).
///
/// Each range is half-open, `(start, end)` meaning leaves `[start, end)`, and is a node of
/// the RFC 9162 tree: split it with [`perfect_subtrees`] and fold the stored hashes with
/// [`fold_subtrees`] to get the proof hash. At most `ceil(log2(size))` ranges; none for a
/// one-leaf tree. `None` when `index >= size`.
#[must_use]
pub fn inclusion_ranges(index: u64, size: u64) -> Option<Vec<(u64, u64)>> {
    if index >= size {
        return None;
    }
    let (mut lo, mut hi) = (0u64, size);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let k = split64(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    Some(out)
}

/// The leaf ranges whose Merkle tree hashes (MTH, RFC 9162 §2.1.1) form the consistency proof
/// from the tree of `old` leaves to the tree of `new` leaves, in the order of
/// [`consistency_proof`] (RFC 9162 §2.1.4.1, `SUBPROOF(m, D[n], true)`).
///
/// Ranges are half-open `(start, end)` nodes of the RFC 9162 tree of `new` leaves (see
/// [`inclusion_ranges`] for how to hash them). Empty when `old` is 0 or `old == new`; `None`
/// when `old > new`.
#[must_use]
pub fn consistency_ranges(old: u64, new: u64) -> Option<Vec<(u64, u64)>> {
    if old > new {
        return None;
    }
    let mut out = Vec::new();
    if old == 0 || old == new {
        return Some(out);
    }
    let (mut lo, mut hi, mut m, mut whole) = (0u64, new, old, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push((lo, hi));
            }
            break;
        }
        let k = split64(n);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            m -= k;
            lo += k;
            whole = false;
        }
    }
    out.reverse();
    Some(out)
}

/// The leaves `[start, end)` as maximal aligned perfect subtrees, left to right, each as
/// `(level, idx)`: the `2^level` leaves `[idx << level, (idx + 1) << level)`. Empty when
/// `start >= end`. At most two per level, so at most 128.
///
/// For `start == 0` this is the binary decomposition of `end` (what a [`Frontier`] keeps).
/// For every range returned by [`inclusion_ranges`] or [`consistency_ranges`] (a node of the
/// RFC 9162 tree, whose start is a multiple of a power of two at least its length) the range's
/// Merkle tree hash (RFC 9162 §2.1.1) is the right fold of these subtrees' hashes:
/// `acc = last; for each earlier p, right to left: acc = node_hash(p, acc)`, i.e.
/// [`fold_subtrees`]. That does not hold for an arbitrary range (it is not a tree node).
#[must_use]
pub fn perfect_subtrees(start: u64, end: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    while at < end {
        let fit = 63 - (end - at).leading_zeros();
        let level = at.trailing_zeros().min(fit);
        out.push((level, at >> level));
        match at.checked_add(1u64 << level) {
            Some(next) => at = next,
            None => break,
        }
    }
    out
}

/// The right fold of subtree hashes, left to right, into one hash: `acc = last`, then for each
/// earlier hash `p` (right to left) `acc = node_hash(p, acc)` (RFC 9162 §2.1.1 `MTH`
/// on the decomposition of [`perfect_subtrees`]). `None` for no hash.
#[must_use]
pub fn fold_subtrees(hashes: &[Hash]) -> Option<Hash> {
    let (last, rest) = hashes.split_last()?;
    Some(rest.iter().rev().fold(*last, |acc, p| node_hash(p, &acc)))
}

/// The compact right edge of an append-only RFC 9162 tree: its size and the hashes of the
/// perfect subtrees of `perfect_subtrees(0, size)`, left to right (one per set bit of the
/// size, the largest first). Enough to append leaves and compute the root without the leaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves appended.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf hash `leaf` (a [`leaf_hash`]) as leaf `size` and returns every node it
    /// completes, as `(level, idx, hash)` (the subtree of leaves
    /// `[idx << level, (idx + 1) << level)`): `(0, index, leaf)` first, then each parent it
    /// completes, bottom-up (RFC 9162 §2.1.1 `node_hash` of the two children). A log stores
    /// these to serve proofs through [`inclusion_ranges`] and [`consistency_ranges`].
    ///
    /// A tree of `u64::MAX` leaves is full: the push is refused with no node (and the size is
    /// unchanged).
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        if index == u64::MAX {
            return Vec::new();
        }
        let mut out = vec![(0, index, leaf)];
        let mut h = leaf;
        let mut level = 0u32;
        while (index >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                break;
            };
            h = node_hash(&left, &h);
            level += 1;
            out.push((level, index >> level, h));
        }
        self.hashes.push(h);
        self.size = index + 1;
        out
    }

    /// The Merkle tree hash of all leaves appended (RFC 9162 §2.1.1): the [`fold_subtrees`] of
    /// the frontier, or SHA-256 of the empty string for the empty tree. Equals [`root`] of the
    /// same leaves.
    #[must_use]
    pub fn root(&self) -> Hash {
        fold_subtrees(&self.hashes).unwrap_or_else(|| Sha256::digest([]).into())
    }

    /// The perfect-subtree hashes, left to right (those of `perfect_subtrees(0, size)`).
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The frontier as bytes: the size as 8 bytes big-endian, then the 32-byte hashes left to
    /// right (`8 + 32 * popcount(size)` bytes).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.hashes.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for h in &self.hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Parses [`Frontier::to_bytes`]. `None` when the length is not
    /// `8 + 32 * popcount(size)`.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (size, rest) = bytes.split_first_chunk::<8>()?;
        let size = u64::from_be_bytes(*size);
        if rest.len() != 32 * size.count_ones() as usize {
            return None;
        }
        let hashes = rest
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).ok())
            .collect::<Option<Vec<Hash>>>()?;
        Some(Self { size, hashes })
    }
}
