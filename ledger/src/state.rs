//! The authenticated state: blake3 for the Jellyfish Merkle tree, and state proofs that anyone
//! can check with only a root, a key and a value.

use borsh::{BorshDeserialize, BorshSerialize};
use dpx_crypto::Hash;
use jmt::proof::SparseMerkleProof;
use jmt::{KeyHash, RootHash, SimpleHasher};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::{LedgerError, block::hash_field, pb};

/// Longest state key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest state value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most siblings in a state proof: one per bit of the 256-bit key hash.
pub const MAX_STATE_PROOF_SIBLINGS: usize = 256;
/// Largest encoded [`StateProof`] that [`StateProof::decode`] could ever need.
pub const MAX_STATE_PROOF_BYTES: usize = 96 + MAX_STATE_PROOF_SIBLINGS * 80;

/// blake3 as the Jellyfish Merkle tree's hash function.
///
/// Leaves hash as `blake3("JMT::LeafNode" ‖ blake3(key) ‖ blake3(value))` and inner nodes as
/// `blake3("JMT::IntrnalNode" ‖ left ‖ right)` (the tags are jmt's own), so the tree is second
/// preimage safe.
#[derive(Debug, Clone, Default)]
pub struct Blake3Hasher(blake3::Hasher);

impl SimpleHasher for Blake3Hasher {
    fn new() -> Self {
        Self(blake3::Hasher::new())
    }
    fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    fn finalize(self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// The tree key of a state key: plain blake3 of the key bytes.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash(*blake3::hash(key).as_bytes())
}

/// A leaf as seen in a proof: which key hash holds which value hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofLeaf {
    pub key_hash: Hash,
    pub value_hash: Hash,
}

/// One sibling on the path from a leaf to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofNode {
    /// An empty subtree.
    Null,
    /// An inner node, given by its two children's hashes.
    Internal { left: Hash, right: Hash },
    /// A subtree holding exactly one leaf.
    Leaf(ProofLeaf),
}

/// Proof that a key holds a value (inclusion) or holds nothing (exclusion) under a state root.
///
/// Inclusion: `leaf` is the key's own leaf. Exclusion: `leaf` is absent (the key's place is
/// empty) or is another key's leaf occupying the subtree the key would fall in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    pub leaf: Option<ProofLeaf>,
    /// From the bottom level up to the root.
    pub siblings: Vec<ProofNode>,
}

// Borsh mirror of jmt's `SparseMerkleProof` (same field order and enum variant order). jmt keeps
// the proof's fields private, and borsh is its stable, documented byte form, so this is how a
// proof crosses between jmt and our wire type.
#[derive(BorshSerialize, BorshDeserialize)]
struct WireLeaf {
    key_hash: [u8; 32],
    value_hash: [u8; 32],
}

#[derive(BorshSerialize, BorshDeserialize)]
enum WireNode {
    Null,
    Internal { left: [u8; 32], right: [u8; 32] },
    Leaf(WireLeaf),
}

#[derive(BorshSerialize, BorshDeserialize)]
struct WireProof {
    leaf: Option<WireLeaf>,
    siblings: Vec<WireNode>,
}

impl From<&ProofLeaf> for WireLeaf {
    fn from(l: &ProofLeaf) -> Self {
        Self { key_hash: l.key_hash.0, value_hash: l.value_hash.0 }
    }
}

impl From<WireLeaf> for ProofLeaf {
    fn from(l: WireLeaf) -> Self {
        Self { key_hash: Hash(l.key_hash), value_hash: Hash(l.value_hash) }
    }
}

impl StateProof {
    pub(crate) fn from_jmt(proof: &SparseMerkleProof<Blake3Hasher>) -> Result<Self, LedgerError> {
        let bytes = borsh::to_vec(proof).map_err(|e| LedgerError::Tree(e.to_string()))?;
        let wire: WireProof =
            borsh::from_slice(&bytes).map_err(|e| LedgerError::Tree(e.to_string()))?;
        Ok(Self {
            leaf: wire.leaf.map(ProofLeaf::from),
            siblings: wire
                .siblings
                .into_iter()
                .map(|n| match n {
                    WireNode::Null => ProofNode::Null,
                    WireNode::Internal { left, right } => {
                        ProofNode::Internal { left: Hash(left), right: Hash(right) }
                    }
                    WireNode::Leaf(l) => ProofNode::Leaf(l.into()),
                })
                .collect(),
        })
    }

    fn to_jmt(&self) -> Result<SparseMerkleProof<Blake3Hasher>, LedgerError> {
        let wire = WireProof {
            leaf: self.leaf.as_ref().map(WireLeaf::from),
            siblings: self
                .siblings
                .iter()
                .map(|n| match n {
                    ProofNode::Null => WireNode::Null,
                    ProofNode::Internal { left, right } => {
                        WireNode::Internal { left: left.0, right: right.0 }
                    }
                    ProofNode::Leaf(l) => WireNode::Leaf(l.into()),
                })
                .collect(),
        };
        let bytes = borsh::to_vec(&wire).map_err(|e| LedgerError::Tree(e.to_string()))?;
        borsh::from_slice(&bytes).map_err(|e| LedgerError::BadProof { reason: e.to_string() })
    }

    /// Protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let leaf = |l: &ProofLeaf| pb::ProofLeaf {
            key_hash: l.key_hash.0.to_vec(),
            value_hash: l.value_hash.0.to_vec(),
        };
        pb::StateProof {
            leaf: self.leaf.as_ref().map(leaf),
            siblings: self
                .siblings
                .iter()
                .map(|n| pb::ProofSibling {
                    node: Some(match n {
                        ProofNode::Null => pb::proof_sibling::Node::Null(true),
                        ProofNode::Internal { left, right } => {
                            pb::proof_sibling::Node::Internal(pb::ProofInternal {
                                left: left.0.to_vec(),
                                right: right.0.to_vec(),
                            })
                        }
                        ProofNode::Leaf(l) => pb::proof_sibling::Node::Leaf(leaf(l)),
                    }),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decode protobuf bytes of at most `max_bytes` (at most [`MAX_STATE_PROOF_BYTES`] is ever
    /// needed).
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, LedgerError> {
        LedgerError::check_len("state proof", bytes.len(), max_bytes.min(MAX_STATE_PROOF_BYTES))?;
        let m = pb::StateProof::decode(bytes).map_err(|e| LedgerError::decode("state proof", e))?;
        LedgerError::check_len("state proof siblings", m.siblings.len(), MAX_STATE_PROOF_SIBLINGS)?;
        let leaf = |l: &pb::ProofLeaf| -> Result<ProofLeaf, LedgerError> {
            Ok(ProofLeaf {
                key_hash: hash_field("key_hash", &l.key_hash)?,
                value_hash: hash_field("value_hash", &l.value_hash)?,
            })
        };
        let siblings = m
            .siblings
            .iter()
            .map(|s| match &s.node {
                Some(pb::proof_sibling::Node::Null(_)) => Ok(ProofNode::Null),
                Some(pb::proof_sibling::Node::Internal(i)) => Ok(ProofNode::Internal {
                    left: hash_field("left", &i.left)?,
                    right: hash_field("right", &i.right)?,
                }),
                Some(pb::proof_sibling::Node::Leaf(l)) => Ok(ProofNode::Leaf(leaf(l)?)),
                None => Err(LedgerError::decode("state proof", "sibling without a node")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { leaf: m.leaf.as_ref().map(leaf).transpose()?, siblings })
    }
}

/// Check `proof` shows that `key` holds `value` (`None`: holds nothing) under state `root`.
///
/// Needs no store: this is what clients and auditors run on a proof from an untrusted node.
pub fn verify_state_proof(
    root: Hash,
    key: &[u8],
    value: Option<&[u8]>,
    proof: &StateProof,
) -> Result<(), LedgerError> {
    if proof.siblings.len() > MAX_STATE_PROOF_SIBLINGS {
        return Err(LedgerError::BadProof { reason: "too many siblings".into() });
    }
    proof
        .to_jmt()?
        .verify(RootHash(root.0), key_hash(key), value)
        .map_err(|e| LedgerError::BadProof { reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::tests::arb_hash;
    use proptest::prelude::*;

    fn arb_leaf() -> impl Strategy<Value = ProofLeaf> {
        (arb_hash(), arb_hash())
            .prop_map(|(key_hash, value_hash)| ProofLeaf { key_hash, value_hash })
    }

    fn arb_proof() -> impl Strategy<Value = StateProof> {
        let node = prop_oneof![
            Just(ProofNode::Null),
            (arb_hash(), arb_hash()).prop_map(|(left, right)| ProofNode::Internal { left, right }),
            arb_leaf().prop_map(ProofNode::Leaf),
        ];
        (proptest::option::of(arb_leaf()), proptest::collection::vec(node, 0..40))
            .prop_map(|(leaf, siblings)| StateProof { leaf, siblings })
    }

    proptest! {
        #[test]
        fn state_proof_round_trips(p in arb_proof()) {
            let bytes = p.encode();
            prop_assert!(bytes.len() <= MAX_STATE_PROOF_BYTES);
            prop_assert_eq!(&StateProof::decode(&bytes, bytes.len()).unwrap(), &p);
            let json = serde_json::to_string(&p).unwrap();
            prop_assert_eq!(&serde_json::from_str::<StateProof>(&json).unwrap(), &p);
            // The jmt bridge is lossless too.
            prop_assert_eq!(&StateProof::from_jmt(&p.to_jmt().unwrap()).unwrap(), &p);
        }

        #[test]
        fn random_proofs_do_not_verify(p in arb_proof(), root in arb_hash()) {
            prop_assert!(verify_state_proof(root, b"k", Some(b"v"), &p).is_err());
        }

        #[test]
        fn state_proof_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = StateProof::decode(&bytes, 4096);
        }
    }

    #[test]
    fn biggest_proof_fits_the_bound() {
        let leaf = ProofLeaf { key_hash: Hash([0xff; 32]), value_hash: Hash([0xff; 32]) };
        let p = StateProof {
            leaf: Some(leaf),
            siblings: vec![ProofNode::Leaf(leaf); MAX_STATE_PROOF_SIBLINGS],
        };
        assert!(p.encode().len() <= MAX_STATE_PROOF_BYTES);
    }
}
