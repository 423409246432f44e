//! `dpx-ledger`: where every fact lives, durable and provable.
//!
//! - [`Block`] and [`Header`] with canonical protobuf encoding; the block id is
//!   [`Header::id`]. Transactions, receipts and commit certificates are opaque bytes here.
//! - [`merkle`]: the transactions' (and receipts') binary Merkle tree with inclusion proofs.
//! - [`Store`]: RocksDB with one column family per kind of record. A block commits as **one**
//!   synced `WriteBatch` (block, certificate, state-tree nodes, flat state, receipts, tx index,
//!   new tip), so after a crash the store is at the last committed block, never in between.
//! - The state is a Jellyfish Merkle tree (`jmt`) hashed with blake3, versioned by height:
//!   reads at any retained height, inclusion and exclusion [`StateProof`]s, and
//!   [`verify_state_proof`], which needs no store.
//! - Execution runs on an [`Overlay`]; its [`WriteSet`] goes to [`Store::commit_block`].
//! - Pruning ([`StoreConfig::retain_versions`]) and state snapshots
//!   ([`Store::export_snapshot`], [`Store::import_snapshot`]).
//! - Reads: bloom filters on the point-read column families, one RocksDB block cache
//!   ([`StoreConfig::block_cache_bytes`]) and a bounded cache of decoded tree nodes
//!   ([`StoreConfig::node_cache_nodes`], [`Store::node_cache_stats`]) that never outlives a
//!   pruned node.
//!
//! ```
//! use dpx_crypto::{Hash, Keypair};
//! use dpx_ledger::{merkle, receipts_hash, verify_state_proof, Block, Header, Overlay, Store, StoreConfig, WriteSet};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), "dpx-doc", StoreConfig::default()).unwrap();
//! let genesis_root = store.genesis(WriteSet::from([(b"greeting".to_vec(), Some(b"hi".to_vec()))])).unwrap();
//!
//! // Execute block 1 on an overlay over the latest state.
//! let mut overlay = Overlay::new(&store);
//! assert_eq!(overlay.get(b"greeting").unwrap(), Some(b"hi".to_vec()));
//! overlay.put(b"count".to_vec(), b"1".to_vec()).unwrap();
//! let writes = overlay.into_writes();
//!
//! let txs = vec![b"tx-1".to_vec()];
//! let block = Block {
//!     header: Header {
//!         chain_id: "dpx-doc".into(),
//!         height: 1,
//!         time_ms: 1_700_000_000_000,
//!         proposer: Keypair::from_seed([1; 32]).public(),
//!         parent_id: Hash::ZERO,
//!         parent_certificate_hash: Hash::ZERO,
//!         tx_root: merkle::root(&txs),
//!         state_root: genesis_root,
//!         validator_set_hash: Hash::ZERO,
//!         prev_receipts_hash: receipts_hash(&[]),
//!     },
//!     txs,
//! };
//! let root = store.commit_block(&block, b"certificate", writes, vec![b"ok".to_vec()]).unwrap();
//! assert_eq!(store.tip_height(), 1);
//!
//! // Anyone holding the root can check a value, or its absence, without the store.
//! let (value, proof) = store.get_with_proof(b"count", 1).unwrap();
//! verify_state_proof(root, b"count", value.as_deref(), &proof).unwrap();
//! let (none, proof) = store.get_with_proof(b"missing", 1).unwrap();
//! assert!(none.is_none());
//! verify_state_proof(root, b"missing", None, &proof).unwrap();
//! assert!(verify_state_proof(root, b"missing", Some(b"x"), &proof).is_err());
//! ```

mod block;
mod error;
pub mod merkle;
mod overlay;
mod pb;
mod state;
mod store;

pub use block::{Block, Header, TxHashes};
pub use error::LedgerError;
pub use merkle::MerkleProof;
pub use overlay::{Overlay, Savepoint, StateRead, WriteSet};
pub use state::{
    Blake3Hasher, MAX_KEY_BYTES, MAX_STATE_PROOF_BYTES, MAX_STATE_PROOF_SIBLINGS, MAX_VALUE_BYTES,
    ProofLeaf, ProofNode, StateProof, key_hash, verify_state_proof,
};
pub use store::{
    BLOCK_CACHE_BYTES_RANGE, IntegrityReport, MAX_SCAN_LIMIT, NODE_CACHE_BYTES_MAX,
    NODE_CACHE_NODES_MAX, NodeCacheStats, PreparedBlock, StateEntry, Store, StoreConfig,
};

/// Hash committing to a block's receipts, in order: the root of a Merkle tree whose leaves are
/// hashed under [`dpx_crypto::Domain::RECEIPTS`] ([`merkle::receipts_root`]), so one receipt can
/// be proven with [`merkle::prove_receipt`]. [`dpx_crypto::Hash::ZERO`] for no receipts.
pub fn receipts_hash(receipts: &[Vec<u8>]) -> dpx_crypto::Hash {
    merkle::receipts_root(receipts)
}
