//! Made-up values for tests and fuzz targets (not used by the node itself).

use dpx_crypto::{Hash, Keypair};
use dpx_ledger::{Block, Header};

/// A decodable block of `txs` at `height` on chain `"c"` whose header is made up except for
/// the transactions' root, which is right (so the block passes the cache's `tx_root` check).
pub fn made_up_block(height: u64, txs: Vec<Vec<u8>>) -> Block {
    let header = Header {
        chain_id: "c".into(),
        height,
        time_ms: 1,
        proposer: Keypair::from_seed([1; 32]).public(),
        parent_id: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        tx_root: dpx_ledger::merkle::root(&txs),
        state_root: Hash::ZERO,
        validator_set_hash: Hash::ZERO,
        prev_receipts_hash: Hash::ZERO,
    };
    Block { header, txs }
}
