//! A second implementation of the byte-level rules, written from SPEC.md and nothing else
//! (its only primitive is plain blake3, `Hash::digest`). Each vector module asserts that this
//! and the real code agree before it writes a vector, so a sentence of the spec that misdescribes
//! the code fails a test instead of misleading a client writer.

use dpx_crypto::Hash;

/// SPEC.md §2: `u64le(len(part)) ‖ part` for the domain tag, the chain id and each part.
pub fn preimage(domain: &str, chain_id: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in [domain.as_bytes(), chain_id.as_bytes()].into_iter().chain(parts.iter().copied()) {
        out.extend_from_slice(&(p.len() as u64).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// SPEC.md §2: `H(domain, chain, parts…) = blake3(preimage)`.
pub fn hash_of(domain: &str, chain_id: &str, parts: &[&[u8]]) -> Hash {
    Hash::digest(&preimage(domain, chain_id, parts))
}

// ----- protobuf, as SPEC.md §4 describes the canonical form -----------------------------------

pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2), omitted when empty (proto3 default).
pub fn field_bytes(tag: u32, bytes: &[u8], out: &mut Vec<u8>) {
    if !bytes.is_empty() {
        varint(u64::from(tag << 3 | 2), out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
}

/// A varint field (wire type 0), omitted when zero (proto3 default).
pub fn field_varint(tag: u32, v: u64, out: &mut Vec<u8>) {
    if v != 0 {
        varint(u64::from(tag << 3), out);
        varint(v, out);
    }
}

/// SPEC.md §7.1: the header, fields 1..10 in order.
#[allow(clippy::too_many_arguments)]
pub fn header_bytes(h: &dpx_ledger::Header) -> Vec<u8> {
    let mut out = Vec::new();
    field_bytes(1, h.chain_id.as_bytes(), &mut out);
    field_varint(2, h.height, &mut out);
    field_varint(3, h.time_ms, &mut out);
    field_bytes(4, h.proposer.as_bytes(), &mut out);
    for (tag, x) in [
        (5, h.parent_id),
        (6, h.parent_certificate_hash),
        (7, h.tx_root),
        (8, h.state_root),
        (9, h.validator_set_hash),
        (10, h.prev_receipts_hash),
    ] {
        field_bytes(tag, x.as_bytes(), &mut out);
    }
    out
}

/// SPEC.md §5.1: the signed-transaction envelope.
pub fn envelope(body: &[u8], signer: &[u8; 32], signature: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::new();
    field_bytes(1, body, &mut out);
    field_bytes(2, signer, &mut out);
    field_bytes(3, signature, &mut out);
    out
}

// ----- consensus sign bytes (SPEC.md §7.3) -----------------------------------------------------

pub fn vote_sign_bytes(kind: u8, height: u64, round: u32, value: Option<&Hash>) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&round.to_le_bytes());
    match value {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            b.extend_from_slice(v.as_bytes());
        }
    }
    b
}

pub fn proposal_sign_bytes(height: u64, round: u32, value: &Hash, pol: Option<u32>) -> Vec<u8> {
    let mut b = height.to_le_bytes().to_vec();
    b.extend_from_slice(&round.to_le_bytes());
    b.extend_from_slice(value.as_bytes());
    match pol {
        None => b.push(0),
        Some(r) => {
            b.push(1);
            b.extend_from_slice(&r.to_le_bytes());
        }
    }
    b
}

// ----- binary Merkle trees (SPEC.md §7.2) ------------------------------------------------------

fn node(l: &Hash, r: &Hash) -> Hash {
    hash_of("dpx/merkle/node/v1", "", &[l.as_bytes(), r.as_bytes()])
}

/// The root over already hashed leaves: split at the largest power of two below `n`.
pub fn merkle_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Hash::ZERO,
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

pub fn merkle_leaf(domain: &str, item: &[u8]) -> Hash {
    hash_of(domain, "", &[item])
}

/// RFC 9162 §2.1.3.2, as SPEC.md §7.2 gives it.
pub fn merkle_verify(leaf: Hash, index: u64, count: u64, siblings: &[Hash], root: &Hash) -> bool {
    if index >= count {
        return false;
    }
    let (mut f, mut s, mut r) = (index, count - 1, leaf);
    for p in siblings {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

// ----- the state tree (SPEC.md §8) -------------------------------------------------------------

pub const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";

fn blake3_concat(parts: &[&[u8]]) -> [u8; 32] {
    Hash::digest(&parts.concat()).0
}

pub fn smt_leaf(key_hash: &[u8; 32], value_hash: &[u8; 32]) -> [u8; 32] {
    blake3_concat(&[b"JMT::LeafNode", key_hash, value_hash])
}

pub fn smt_internal(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    blake3_concat(&[b"JMT::IntrnalNode", left, right])
}

/// Bit `i` of a key hash, most significant bit of byte 0 first.
pub fn bit(h: &[u8; 32], i: usize) -> bool {
    h[i / 8] >> (7 - i % 8) & 1 == 1
}

/// Root of the subtree at `depth` holding `leaves` (key hash, value hash), all sharing the
/// first `depth` bits: empty → placeholder, one leaf → its leaf hash, else an internal node.
pub fn smt_root(leaves: &[LeafPair], depth: usize) -> [u8; 32] {
    match leaves {
        [] => PLACEHOLDER,
        [(k, v)] => smt_leaf(k, v),
        _ => {
            let (l, r): (Vec<_>, Vec<_>) = leaves.iter().partition(|(k, _)| !bit(k, depth));
            smt_internal(&smt_root(&l, depth + 1), &smt_root(&r, depth + 1))
        }
    }
}

/// A leaf as a proof shows it: (key hash, value hash).
pub type LeafPair = ([u8; 32], [u8; 32]);

/// A proof sibling as SPEC.md §8.3 lists them.
pub enum Sibling {
    Null,
    Internal([u8; 32], [u8; 32]),
    Leaf([u8; 32], [u8; 32]),
}

impl Sibling {
    fn hash(&self) -> [u8; 32] {
        match self {
            Self::Null => PLACEHOLDER,
            Self::Internal(l, r) => smt_internal(l, r),
            Self::Leaf(k, v) => smt_leaf(k, v),
        }
    }
}

/// SPEC.md §8.4: does the proof show `key` holds `value` (`None`: nothing) under `root`?
pub fn smt_verify(
    root: &[u8; 32],
    key: &[u8],
    value: Option<&[u8]>,
    leaf: Option<LeafPair>,
    siblings: &[Sibling],
) -> bool {
    let kh = Hash::digest(key).0;
    let n = siblings.len();
    if n > 256 {
        return false;
    }
    match (value, leaf) {
        (Some(v), Some((lk, lv))) => {
            if lk != kh || lv != Hash::digest(v).0 {
                return false;
            }
        }
        (Some(_), None) => return false,
        (None, Some((lk, _))) => {
            let common = (0..256).take_while(|&i| bit(&lk, i) == bit(&kh, i)).count();
            if lk == kh || common < n {
                return false;
            }
        }
        (None, None) => {}
    }
    let mut h = leaf.map_or(PLACEHOLDER, |(k, v)| smt_leaf(&k, &v));
    // siblings[0] is the deepest: it pairs with bit n-1 of the key hash.
    for (i, s) in siblings.iter().enumerate() {
        h = if bit(&kh, n - 1 - i) {
            smt_internal(&s.hash(), &h)
        } else {
            smt_internal(&h, &s.hash())
        };
    }
    h == *root
}
