//! The chain's own configuration as the state holds it, per height: the validator set and the
//! block limits of the parameters.

use anyhow::Context as _;
use dpx_consensus::{Validator, ValidatorSet};
use dpx_contracts as contracts;
use dpx_ledger::Store;

use crate::state::{LatestState, VersionState};

/// The validator set that validates `height`: for the next height, the set in force after the
/// tip unless governance scheduled a change for exactly that height; for a committed height,
/// the set in force in the state after it.
pub fn validator_set(store: &Store, height: u64) -> anyhow::Result<ValidatorSet> {
    let tip = store.tip_height();
    let (vals, error) = if height == tip + 1 {
        let st = LatestState::new(store);
        let v = contracts::validator_updates(&st, height)
            .unwrap_or_else(|| contracts::current_validators(&st));
        (v, st.into_error())
    } else {
        anyhow::ensure!(height <= tip, "no validator set known for height {height} (tip {tip})");
        let st = VersionState::new(store, height);
        let v = contracts::current_validators(&st);
        (v, st.into_error())
    };
    if let Some(e) = error {
        anyhow::bail!("reading the validator set: {e}");
    }
    ValidatorSet::new(vals.into_iter().map(|(key, power)| Validator { key, power }).collect())
        .context("the ledger's validator set is invalid")
}

/// Block limits from the chain parameters.
#[derive(Debug, Clone, Copy)]
pub struct BlockLimits {
    pub max_block_bytes: usize,
    pub max_block_txs: usize,
}

impl BlockLimits {
    /// The largest encoded block these limits allow (`Params::max_encoded_block_bytes`: the
    /// transactions' bytes, their framing and the header). A block filled to
    /// `max_block_bytes` with small transactions must still decode, or validators refuse a
    /// valid proposal and the chain stalls. Never above `MAX_ENCODED_BLOCK_BYTES`.
    pub fn encoded_max(&self) -> usize {
        contracts::Params {
            max_block_bytes: self.max_block_bytes as u64,
            max_block_txs: u32::try_from(self.max_block_txs).unwrap_or(u32::MAX),
            ..contracts::Params::default()
        }
        .max_encoded_block_bytes() as usize
    }
}

pub fn params(store: &Store) -> anyhow::Result<BlockLimits> {
    let p = contracts::params(&LatestState::new(store));
    Ok(BlockLimits {
        max_block_bytes: usize::try_from(p.max_block_bytes).unwrap_or(usize::MAX),
        max_block_txs: p.max_block_txs as usize,
    })
}

#[cfg(test)]
mod tests {
    use dpx_crypto::{Hash, Keypair};
    use dpx_ledger::Block;

    use super::*;

    const CHAIN: &str = "dpx-test";

    /// A block filled to the byte limit with the smallest transactions still decodes (a
    /// proposal its validators cannot decode stalls the chain: seen in the benchmark).
    #[test]
    fn a_full_block_of_small_transactions_decodes() {
        let limits = BlockLimits { max_block_bytes: 64 << 10, max_block_txs: 64 << 10 };
        let txs = vec![vec![7u8; 1]; 64 << 10];
        let block = Block {
            header: dpx_ledger::Header {
                chain_id: CHAIN.into(),
                height: 1,
                time_ms: 1,
                proposer: Keypair::from_seed([1; 32]).public(),
                parent_id: Hash::ZERO,
                parent_certificate_hash: Hash::ZERO,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
                validator_set_hash: Hash::ZERO,
                prev_receipts_hash: Hash::ZERO,
            },
            txs,
        };
        let bytes = block.encode();
        assert!(bytes.len() > 2 * limits.max_block_bytes, "framing triples a 1-byte tx");
        assert!(Block::decode(&bytes, limits.encoded_max()).is_ok());
        assert!(Block::decode(&bytes, limits.max_block_bytes + 4096).is_err(), "the old bound");
    }
}
