//! Binary Merkle trees over transactions and receipts, with inclusion proofs.
//!
//! The shape is RFC 6962's (Certificate Transparency): a tree of `n` leaves splits at the largest
//! power of two below `n`, so no leaf is ever duplicated to fill a level (the duplication trick
//! lets two different lists share a root, CVE-2012-2459). Leaves and inner nodes are hashed under
//! different domains ([`Domain::MERKLE_LEAF`] or [`Domain::RECEIPTS`] for leaves,
//! [`Domain::MERKLE_NODE`] for inner nodes), so an inner node can never pose as a leaf (second
//! preimage). The root of an empty list is [`Hash::ZERO`]. Hashes use the empty chain id: a tree
//! is bound to its chain through the header that carries its root.

use dpx_crypto::{Domain, Hash, HashWriter};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::{LedgerError, block::hash_field, pb};

/// Most siblings a proof can have (a tree of up to 2^64 leaves).
pub const MAX_PROOF_SIBLINGS: usize = 64;

/// Which tree a proof belongs to: the leaf domain differs so a tx proof is no receipt proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tree {
    Txs,
    Receipts,
}

impl Tree {
    fn leaf(self, bytes: &[u8]) -> Hash {
        let domain = match self {
            Tree::Txs => Domain::MERKLE_LEAF,
            Tree::Receipts => Domain::RECEIPTS,
        };
        Hash::of(domain, "", bytes)
    }
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut w = HashWriter::new(Domain::MERKLE_NODE, "");
    w.update(left.as_bytes()).update(right.as_bytes());
    w.finish()
}

/// Largest power of two strictly below `n` (n >= 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

fn subtree_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::ZERO,
        1 => leaves[0],
        n => {
            let k = split(n);
            node(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

fn path(leaves: &[Hash], index: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if index < k {
        path(&leaves[..k], index, out);
        out.push(subtree_root(&leaves[k..]));
    } else {
        path(&leaves[k..], index - k, out);
        out.push(subtree_root(&leaves[..k]));
    }
}

fn root_of(tree: Tree, items: &[Vec<u8>]) -> Hash {
    let leaves: Vec<Hash> = items.iter().map(|b| tree.leaf(b)).collect();
    subtree_root(&leaves)
}

fn prove_in(tree: Tree, items: &[Vec<u8>], index: usize) -> Result<MerkleProof, LedgerError> {
    if index >= items.len() {
        return Err(LedgerError::IndexOutOfRange { index, count: items.len() });
    }
    let leaves: Vec<Hash> = items.iter().map(|b| tree.leaf(b)).collect();
    let mut siblings = Vec::new();
    path(&leaves, index, &mut siblings);
    Ok(MerkleProof { index: index as u64, leaf_count: items.len() as u64, siblings })
}

/// Merkle root of a block's transactions (the header's `tx_root`).
pub fn root(txs: &[Vec<u8>]) -> Hash {
    root_of(Tree::Txs, txs)
}

/// Inclusion proof of `txs[index]` under [`root`].
pub fn prove(txs: &[Vec<u8>], index: usize) -> Result<MerkleProof, LedgerError> {
    prove_in(Tree::Txs, txs, index)
}

/// Merkle root of a block's receipts; this is [`crate::receipts_hash`].
pub fn receipts_root(receipts: &[Vec<u8>]) -> Hash {
    root_of(Tree::Receipts, receipts)
}

/// Inclusion proof of `receipts[index]` under [`receipts_root`].
pub fn prove_receipt(receipts: &[Vec<u8>], index: usize) -> Result<MerkleProof, LedgerError> {
    prove_in(Tree::Receipts, receipts, index)
}

/// Proof that one leaf sits at `index` in a tree of `leaf_count` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    pub index: u64,
    pub leaf_count: u64,
    /// Sibling subtree roots from the leaf up to the root.
    pub siblings: Vec<Hash>,
}

impl MerkleProof {
    /// Does `leaf_bytes` (a transaction) sit at `index` in the tree with `root`?
    pub fn verify(&self, root: &Hash, leaf_bytes: &[u8]) -> bool {
        self.verify_in(Tree::Txs, root, leaf_bytes)
    }

    /// Does `receipt_bytes` sit at `index` in the receipts tree with `receipts_hash`?
    pub fn verify_receipt(&self, receipts_hash: &Hash, receipt_bytes: &[u8]) -> bool {
        self.verify_in(Tree::Receipts, receipts_hash, receipt_bytes)
    }

    // RFC 9162 section 2.1.3.2, verifying an inclusion proof.
    fn verify_in(&self, tree: Tree, root: &Hash, leaf_bytes: &[u8]) -> bool {
        if self.index >= self.leaf_count || self.siblings.len() > MAX_PROOF_SIBLINGS {
            return false;
        }
        let (mut fnode, mut snode) = (self.index, self.leaf_count - 1);
        let mut r = tree.leaf(leaf_bytes);
        for p in &self.siblings {
            if snode == 0 {
                return false;
            }
            if fnode & 1 == 1 || fnode == snode {
                r = node(p, &r);
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            } else {
                r = node(&r, p);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        snode == 0 && r == *root
    }

    /// Protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        pb::MerkleProof {
            index: self.index,
            leaf_count: self.leaf_count,
            siblings: self.siblings.iter().map(|h| h.0.to_vec()).collect(),
        }
        .encode_to_vec()
    }

    /// Decode protobuf bytes of at most `max_bytes`.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, LedgerError> {
        LedgerError::check_len("merkle proof", bytes.len(), max_bytes)?;
        let m =
            pb::MerkleProof::decode(bytes).map_err(|e| LedgerError::decode("merkle proof", e))?;
        LedgerError::check_len("merkle proof siblings", m.siblings.len(), MAX_PROOF_SIBLINGS)?;
        let siblings =
            m.siblings.iter().map(|s| hash_field("sibling", s)).collect::<Result<_, _>>()?;
        Ok(Self { index: m.index, leaf_count: m.leaf_count, siblings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn txs(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("tx-{i}").into_bytes()).collect()
    }

    #[test]
    fn every_leaf_of_every_small_tree_proves() {
        for n in 1..=33 {
            let items = txs(n);
            let r = root(&items);
            for i in 0..n {
                let p = prove(&items, i).unwrap();
                assert!(p.verify(&r, &items[i]), "n={n} i={i}");
                assert!(!p.verify(&r, b"other"), "n={n} i={i}");
                // A tx proof is not a receipt proof, and the roots differ.
                assert!(!p.verify_receipt(&r, &items[i]));
                let mut wrong = p.clone();
                wrong.index = (wrong.index + 1) % n as u64;
                if n > 1 {
                    assert!(!wrong.verify(&r, &items[i]), "n={n} i={i}");
                }
            }
            assert!(prove(&items, n).is_err());
            assert_ne!(receipts_root(&items), r);
        }
        assert_eq!(root(&[]), Hash::ZERO);
    }

    #[test]
    fn no_duplicate_last_leaf_collision() {
        // Bitcoin's tree gives [a, b, c] and [a, b, c, c] the same root; ours must not.
        let a = txs(3);
        let mut b = a.clone();
        b.push(a[2].clone());
        assert_ne!(root(&a), root(&b));
    }

    #[test]
    fn inner_node_is_not_a_leaf() {
        let items = txs(2);
        let l0 = Tree::Txs.leaf(&items[0]);
        let l1 = Tree::Txs.leaf(&items[1]);
        let mut concat = l0.0.to_vec();
        concat.extend_from_slice(&l1.0);
        assert_ne!(root(&[concat]), root(&items));
    }

    proptest! {
        #[test]
        fn proofs_verify_and_round_trip(
            items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..70),
            pick in any::<prop::sample::Index>(),
        ) {
            let i = pick.index(items.len());
            let r = root(&items);
            let p = prove(&items, i).unwrap();
            prop_assert!(p.verify(&r, &items[i]));
            let bytes = p.encode();
            let back = MerkleProof::decode(&bytes, bytes.len()).unwrap();
            prop_assert_eq!(&back, &p);
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(serde_json::from_str::<MerkleProof>(&json).unwrap(), p.clone());
            let rr = receipts_root(&items);
            prop_assert!(prove_receipt(&items, i).unwrap().verify_receipt(&rr, &items[i]));
        }
    }
}
