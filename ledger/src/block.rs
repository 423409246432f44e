//! Block and header types and their canonical protobuf encoding.

use dpx_crypto::{Domain, Hash, PublicKey};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::{LedgerError, merkle, pb};

/// The header of a block. The block id is [`Header::id`].
///
/// `state_root` and `prev_receipts_hash` describe the *previous* block's outcome (execution
/// happens after a block is decided), so a header can be proposed before its own transactions run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub chain_id: String,
    pub height: u64,
    pub time_ms: u64,
    pub proposer: PublicKey,
    /// Id of the block at `height - 1`; [`Hash::ZERO`] for the first block (height 1).
    pub parent_id: Hash,
    /// Hash of the commit certificate of the parent block (defined by consensus, opaque here).
    pub parent_certificate_hash: Hash,
    /// [`merkle::root`] of `txs`.
    pub tx_root: Hash,
    /// State root after the block at `height - 1` (the genesis root for height 1).
    pub state_root: Hash,
    pub validator_set_hash: Hash,
    /// [`crate::receipts_hash`] of the receipts of the block at `height - 1`.
    pub prev_receipts_hash: Hash,
}

/// A block: a header and opaque transactions (each the full signed transaction bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<Vec<u8>>,
}

impl Header {
    /// Canonical protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        self.to_pb().encode_to_vec()
    }

    /// Decode canonical protobuf bytes of at most `max_bytes`.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, LedgerError> {
        LedgerError::check_len("header", bytes.len(), max_bytes)?;
        let msg = pb::Header::decode(bytes).map_err(|e| LedgerError::decode("header", e))?;
        let header = Self::from_pb(msg)?;
        if header.encode() != bytes {
            return Err(LedgerError::NonCanonical { what: "header" });
        }
        Ok(header)
    }

    /// The block id: `Hash::of(Domain::HEADER, chain_id, encode())`.
    pub fn id(&self) -> Hash {
        Hash::of(Domain::HEADER, &self.chain_id, &self.encode())
    }

    pub(crate) fn to_pb(&self) -> pb::Header {
        pb::Header {
            chain_id: self.chain_id.clone(),
            height: self.height,
            time_ms: self.time_ms,
            proposer: self.proposer.to_bytes().to_vec(),
            parent_id: self.parent_id.0.to_vec(),
            parent_certificate_hash: self.parent_certificate_hash.0.to_vec(),
            tx_root: self.tx_root.0.to_vec(),
            state_root: self.state_root.0.to_vec(),
            validator_set_hash: self.validator_set_hash.0.to_vec(),
            prev_receipts_hash: self.prev_receipts_hash.0.to_vec(),
        }
    }

    pub(crate) fn from_pb(m: pb::Header) -> Result<Self, LedgerError> {
        let proposer =
            PublicKey::from_bytes(&m.proposer).map_err(|e| LedgerError::decode("proposer", e))?;
        Ok(Self {
            chain_id: m.chain_id,
            height: m.height,
            time_ms: m.time_ms,
            proposer,
            parent_id: hash_field("parent_id", &m.parent_id)?,
            parent_certificate_hash: hash_field(
                "parent_certificate_hash",
                &m.parent_certificate_hash,
            )?,
            tx_root: hash_field("tx_root", &m.tx_root)?,
            state_root: hash_field("state_root", &m.state_root)?,
            validator_set_hash: hash_field("validator_set_hash", &m.validator_set_hash)?,
            prev_receipts_hash: hash_field("prev_receipts_hash", &m.prev_receipts_hash)?,
        })
    }
}

impl Block {
    /// The block id (the header's id).
    pub fn id(&self) -> Hash {
        self.header.id()
    }

    /// Canonical protobuf bytes (those of `pb::Block`, written without copying the
    /// transactions into a message first).
    pub fn encode(&self) -> Vec<u8> {
        let header = self.header.to_pb();
        let mut buf = Vec::with_capacity(Self::len_with(&header, &self.txs));
        prost::encoding::message::encode(1, &header, &mut buf);
        for tx in &self.txs {
            prost::encoding::bytes::encode(2, tx, &mut buf);
        }
        buf
    }

    /// The length of [`Block::encode`], computed without encoding (a block put together from
    /// parts is checked against the byte limit with it).
    pub fn encoded_len(&self) -> usize {
        Self::len_with(&self.header.to_pb(), &self.txs)
    }

    fn len_with(header: &pb::Header, txs: &[Vec<u8>]) -> usize {
        prost::encoding::message::encoded_len(1, header)
            + prost::encoding::bytes::encoded_len_repeated(2, txs)
    }

    /// Decode canonical protobuf bytes of at most `max_bytes`.
    ///
    /// Only the canonical encoding is accepted, so a block has exactly one byte form and relays
    /// cannot smuggle unknown fields.
    pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<Self, LedgerError> {
        LedgerError::check_len("block", bytes.len(), max_bytes)?;
        let msg = pb::Block::decode(bytes).map_err(|e| LedgerError::decode("block", e))?;
        let header = msg.header.ok_or_else(|| LedgerError::decode("block", "missing header"))?;
        let block = Self { header: Header::from_pb(header)?, txs: msg.txs };
        if block.encode() != bytes {
            return Err(LedgerError::NonCanonical { what: "block" });
        }
        Ok(block)
    }

    /// Check that the header's `tx_root` is the Merkle root of the transactions.
    ///
    /// One hash pass over the transactions; a node that also needs their digests makes
    /// [`TxHashes`] once instead.
    pub fn check_tx_root(&self) -> Result<(), LedgerError> {
        check_root(&self.header, merkle::root(&self.txs))
    }

    /// Hashes of the transactions, in block order (`Hash::digest` of each tx's bytes).
    /// [`TxHashes`] keeps them with the Merkle root.
    pub fn tx_hashes(&self) -> Vec<Hash> {
        self.txs.iter().map(|tx| Hash::digest(tx)).collect()
    }
}

/// The hashes of a block's transactions, computed once per node and handed along with the
/// block: each transaction's digest ([`Hash::digest`], its id on the ledger: the tx index, the
/// receipt, the mempool) and the Merkle root of their leaves ([`merkle::root`]). Validation,
/// execution and the commit take them instead of hashing every payload again.
///
/// Made only from the transactions themselves ([`TxHashes::of`]) or from digests the caller
/// computed from those bytes ([`TxHashes::with_digests`]); [`TxHashes::check`] ties them to a
/// header.
#[derive(Debug, Clone)]
pub struct TxHashes {
    digests: Vec<Hash>,
    root: Hash,
    /// Digest → first place, made when first asked for ([`TxHashes::places`]).
    places: std::sync::OnceLock<std::collections::BTreeMap<Hash, usize>>,
}

impl PartialEq for TxHashes {
    fn eq(&self, other: &Self) -> bool {
        self.digests == other.digests && self.root == other.root
    }
}
impl Eq for TxHashes {}

impl TxHashes {
    /// Digest and leaf of every transaction: two hash passes over the bytes.
    pub fn of(txs: &[Vec<u8>]) -> Self {
        Self::with_digests(txs, txs.iter().map(|tx| Hash::digest(tx)).collect())
    }

    /// The hashes of a block from outside, checked against its header as cheaply as a
    /// mismatch allows: the leaves and the root first, and only if the root is the header's
    /// `tx_root` the digests (a junk block costs one pass, as `Block::check_tx_root` did).
    pub fn of_block(block: &Block) -> Result<Self, LedgerError> {
        let root = merkle::root(&block.txs);
        check_root(&block.header, root)?;
        let digests = block.tx_hashes();
        Ok(Self { digests, root, places: std::sync::OnceLock::new() })
    }

    /// With the digests already known (a node's mempool hashed each transaction when it was
    /// admitted): one pass, for the leaves. `digests[i]` must be `Hash::digest(&txs[i])`;
    /// debug builds check it. **Consensus-critical:** [`TxHashes::check`] ties only the count
    /// and the root to the header, while the digests become the tx index and (on a
    /// consensus-only chain) the receipts, so digests from anywhere but these bytes would
    /// make this node's state differ from everyone's.
    ///
    /// # Panics
    /// If the two lists differ in length (a caller's bug, not an input's).
    pub fn with_digests(txs: &[Vec<u8>], digests: Vec<Hash>) -> Self {
        assert_eq!(txs.len(), digests.len(), "one digest per transaction");
        debug_assert!(txs.iter().zip(&digests).all(|(tx, d)| Hash::digest(tx) == *d));
        Self { digests, root: merkle::root(txs), places: std::sync::OnceLock::new() }
    }

    /// Each transaction's digest, in block order.
    pub fn digests(&self) -> &[Hash] {
        &self.digests
    }

    /// The Merkle root of the transactions.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// Digest → place of each transaction (the first place for a digest named twice), for
    /// answering fetches by hash; made on the first call and kept.
    pub fn places(&self) -> &std::collections::BTreeMap<Hash, usize> {
        self.places.get_or_init(|| {
            let mut places = std::collections::BTreeMap::new();
            for (i, h) in self.digests.iter().enumerate() {
                places.entry(*h).or_insert(i);
            }
            places
        })
    }

    /// That these are the hashes of `block`'s transactions as its header names them: the
    /// count matches and the root is the header's `tx_root` (no hashing).
    pub fn check(&self, block: &Block) -> Result<(), LedgerError> {
        if self.digests.len() != block.txs.len() {
            return Err(LedgerError::TxHashCount {
                txs: block.txs.len(),
                hashes: self.digests.len(),
            });
        }
        check_root(&block.header, self.root)
    }
}

/// `found` (the transactions' Merkle root) is the header's `tx_root`.
fn check_root(header: &Header, found: Hash) -> Result<(), LedgerError> {
    if found == header.tx_root {
        Ok(())
    } else {
        Err(LedgerError::HeaderMismatch {
            field: "tx_root",
            expected: found,
            found: header.tx_root,
        })
    }
}

pub(crate) fn hash_field(what: &'static str, bytes: &[u8]) -> Result<Hash, LedgerError> {
    Hash::from_slice(bytes).map_err(|e| LedgerError::decode(what, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dpx_crypto::Keypair;
    use proptest::prelude::*;

    pub(crate) fn arb_hash() -> impl Strategy<Value = Hash> {
        any::<[u8; 32]>().prop_map(Hash)
    }

    pub(crate) fn arb_block() -> impl Strategy<Value = Block> {
        (
            "[a-z0-9-]{0,16}",
            any::<u64>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            proptest::array::uniform6(arb_hash()),
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
        )
            .prop_map(|(chain_id, height, time_ms, seed, h, txs)| Block {
                header: Header {
                    chain_id,
                    height,
                    time_ms,
                    proposer: Keypair::from_seed(seed).public(),
                    parent_id: h[0],
                    parent_certificate_hash: h[1],
                    tx_root: h[2],
                    state_root: h[3],
                    validator_set_hash: h[4],
                    prev_receipts_hash: h[5],
                },
                txs,
            })
    }

    proptest! {
        #[test]
        fn block_round_trip(block in arb_block()) {
            let bytes = block.encode();
            let back = Block::decode(&bytes, bytes.len()).unwrap();
            prop_assert_eq!(&back, &block);
            prop_assert_eq!(back.id(), block.id());
            let hbytes = block.header.encode();
            prop_assert_eq!(Header::decode(&hbytes, hbytes.len()).unwrap(), block.header.clone());
            let json = serde_json::to_string(&block).unwrap();
            prop_assert_eq!(serde_json::from_str::<Block>(&json).unwrap(), block);
        }

        /// The hand-written encoding is the protobuf message's, and its length is known ahead.
        #[test]
        fn block_encoding_is_the_messages(block in arb_block()) {
            let bytes = block.encode();
            let msg = pb::Block { header: Some(block.header.to_pb()), txs: block.txs.clone() };
            prop_assert_eq!(&bytes, &msg.encode_to_vec());
            prop_assert_eq!(block.encoded_len(), bytes.len());
        }

        /// The hashes made once are the ones each check would make: every digest, and a root
        /// the header's `tx_root` must equal (a block whose root is wrong, or a list for
        /// other transactions, is refused).
        #[test]
        fn tx_hashes_are_the_digests_and_the_merkle_root(mut block in arb_block()) {
            let hashes = TxHashes::of(&block.txs);
            prop_assert_eq!(hashes.digests().to_vec(), block.tx_hashes());
            prop_assert_eq!(hashes.root(), merkle::root(&block.txs));
            prop_assert_eq!(&TxHashes::with_digests(&block.txs, block.tx_hashes()), &hashes);
            prop_assert_eq!(hashes.check(&block).is_ok(), block.check_tx_root().is_ok());
            block.header.tx_root = hashes.root();
            prop_assert!(hashes.check(&block).is_ok());
            prop_assert!(block.check_tx_root().is_ok());
            block.txs.push(b"one more".to_vec());
            let count_refused =
                matches!(hashes.check(&block), Err(LedgerError::TxHashCount { .. }));
            prop_assert!(count_refused);
            let other = TxHashes::of(&block.txs);
            let root_refused = matches!(
                other.check(&block),
                Err(LedgerError::HeaderMismatch { field: "tx_root", .. })
            );
            prop_assert!(root_refused);
            // From outside: refused on the root alone, else the same hashes.
            let refused = matches!(TxHashes::of_block(&block), Err(LedgerError::HeaderMismatch { .. }));
            prop_assert!(refused);
            block.header.tx_root = other.root();
            prop_assert_eq!(TxHashes::of_block(&block).unwrap(), other.clone());
            prop_assert_eq!(other.places().len(), other.digests().iter().collect::<std::collections::BTreeSet<_>>().len());
        }

        #[test]
        fn block_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Block::decode(&bytes, 1024);
        }
    }

    #[test]
    fn decode_checks_size_first() {
        let block = Block {
            header: Header {
                chain_id: "c".into(),
                height: 1,
                time_ms: 0,
                proposer: Keypair::from_seed([1; 32]).public(),
                parent_id: Hash::ZERO,
                parent_certificate_hash: Hash::ZERO,
                tx_root: merkle::root(&[]),
                state_root: Hash::ZERO,
                validator_set_hash: Hash::ZERO,
                prev_receipts_hash: Hash::ZERO,
            },
            txs: vec![],
        };
        let bytes = block.encode();
        assert!(matches!(
            Block::decode(&bytes, bytes.len() - 1),
            Err(LedgerError::TooLarge { .. })
        ));
        block.check_tx_root().unwrap();
        // A trailing unknown field is refused: only the canonical form decodes.
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0x18, 0x01]);
        assert!(Block::decode(&longer, 1 << 20).is_err());
        // Changing any header field changes the id.
        let mut other = block.clone();
        other.header.time_ms = 1;
        assert_ne!(other.id(), block.id());
    }
}
