//! Helpers shared by the integration tests: building blocks that extend a store's tip.
#![allow(dead_code)]

use std::collections::BTreeMap;

use dpx_crypto::{Hash, Keypair};
use dpx_ledger::{Block, Header, Store, StoreConfig, WriteSet, merkle};

pub const CHAIN: &str = "dpx-test";

/// A block at `tip + 1` that the store will accept.
pub fn next_block(store: &Store, txs: Vec<Vec<u8>>) -> Block {
    let tip = store.tip_height();
    let parent_id = store.header(tip).expect("store call").map_or(Hash::ZERO, |h| h.id());
    Block {
        header: Header {
            chain_id: store.chain_id().to_string(),
            height: tip + 1,
            time_ms: 1_700_000_000_000 + tip * 1000,
            proposer: Keypair::from_seed([3; 32]).public(),
            parent_id,
            parent_certificate_hash: Hash::digest(
                &store.certificate(tip).expect("store call").unwrap_or_default(),
            ),
            tx_root: merkle::root(&txs),
            state_root: store.state_root(tip).expect("store call").expect("store call"),
            validator_set_hash: Hash::ZERO,
            prev_receipts_hash: store
                .block_receipts_hash(tip)
                .expect("store call")
                .expect("store call"),
        },
        txs,
    }
}

/// Commit `writes` in a block of `txs` with one receipt per tx.
pub fn commit(store: &Store, txs: Vec<Vec<u8>>, writes: WriteSet) -> Hash {
    let block = next_block(store, txs);
    let receipts = block.txs.iter().map(|t| [b"ok:".as_slice(), t].concat()).collect();
    let cert = format!("cert-{}", block.header.height).into_bytes();
    store.commit_block(&block, &cert, writes, receipts).expect("store call")
}

pub fn fast_config() -> StoreConfig {
    StoreConfig { sync_writes: false, ..StoreConfig::default() }
}

/// The deterministic workload of height `h` used by the crash test: (txs, writes).
pub fn workload(h: u64) -> (Vec<Vec<u8>>, WriteSet) {
    let txs = (0..=(h % 5)).map(|i| format!("tx-{h}-{i}").into_bytes()).collect();
    let writes = (0..10 + h % 20)
        .map(|j| {
            let key = format!("obj/{:03}", (h * 13 + j * 7) % 200).into_bytes();
            let value = if (h + j).is_multiple_of(7) {
                None
            } else {
                Some(format!("v-{h}-{j}").into_bytes())
            };
            (key, value)
        })
        .collect();
    (txs, writes)
}

pub fn genesis_writes() -> WriteSet {
    (0..50).map(|i| (format!("obj/{i:03}").into_bytes(), Some(b"genesis".to_vec()))).collect()
}

/// The latest state after genesis and the workloads of heights `1..=tip`.
pub fn model_state(tip: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut state = BTreeMap::new();
    apply(&mut state, &genesis_writes());
    for h in 1..=tip {
        apply(&mut state, &workload(h).1);
    }
    state
}

pub fn apply(state: &mut BTreeMap<Vec<u8>, Vec<u8>>, writes: &WriteSet) {
    for (k, v) in writes {
        match v {
            Some(v) => state.insert(k.clone(), v.clone()),
            None => state.remove(k),
        };
    }
}
