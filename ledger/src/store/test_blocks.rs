//! Blocks for the store's unit tests (the integration tests have their own in `tests/common`,
//! a separate crate that cannot see this one's `cfg(test)` items).

use dpx_crypto::{Hash, Keypair};

use super::Store;
use crate::{Block, Header, merkle};

/// A block at `tip + 1` carrying `txs` that the store will accept.
pub(super) fn next_block(store: &Store, txs: Vec<Vec<u8>>) -> Block {
    let tip = store.tip_height();
    Block {
        header: Header {
            chain_id: store.chain_id().to_string(),
            height: tip + 1,
            time_ms: tip,
            proposer: Keypair::from_seed([5; 32]).public(),
            parent_id: store.header(tip).unwrap().map_or(Hash::ZERO, |h| h.id()),
            parent_certificate_hash: Hash::ZERO,
            tx_root: merkle::root(&txs),
            state_root: store.state_root(tip).unwrap().unwrap(),
            validator_set_hash: Hash::ZERO,
            prev_receipts_hash: store.block_receipts_hash(tip).unwrap().unwrap(),
        },
        txs,
    }
}
