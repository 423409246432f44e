//! Pinpointing a state divergence: which keys differ and which transaction wrote them.
//!
//! The block is re-executed transaction by transaction on the replayed state before it (a
//! versioned read of the replay store), recording the last writer of every key; a key whose
//! value differs from the source's is attributed to that transaction.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use dpx_contracts::{self as contracts, BlockContext, OrderedState, State};
use dpx_ledger::{Block, LedgerError, Overlay, StateRead, Store, WriteSet};

use super::source::Source;
use super::{Divergence, KeyDiff, MAX_REPORTED_KEYS, ReplayError};

/// A state-root mismatch found against the next header: list the keys whose values differ
/// from the source's (when the source can tell) and attribute them to transactions.
pub(super) fn state(
    mut d: Divergence,
    block: Option<&Block>,
    writes: &WriteSet,
    store: &Store,
    source: &mut dyn Source,
) -> Result<Divergence, ReplayError> {
    let Some(block) = block else {
        d.detail.push_str(" (the genesis state: is this the chain's genesis file?)");
        return Ok(d);
    };
    let h = block.header.height;
    let mut keys = Vec::new();
    let mut answered = false;
    for (key, value) in writes {
        if let Some(stored) = source.stored_value(key, h)? {
            answered = true;
            if stored != *value {
                keys.push(KeyDiff::new(key, value.as_deref(), stored.as_deref()));
            }
        }
    }
    if !answered {
        let _ = write!(
            d.detail,
            "; the source serves no state values, so the differing keys cannot be named \
             (replay from the node's home directory to list them); the block wrote {} keys",
            writes.len()
        );
        return Ok(d);
    }
    if keys.is_empty() {
        d.detail.push_str(
            "; every key the replay wrote has the source's value, so the source's state also \
             changed keys this block did not write",
        );
        return Ok(d);
    }
    attribute(d, keys, block, writes, store)
}

/// Set each key's writing transaction (and the divergence's first one) by re-executing
/// `block` (which wrote `writes`) transaction by transaction on the replayed state before it.
pub(super) fn attribute(
    mut d: Divergence,
    mut keys: Vec<KeyDiff>,
    block: &Block,
    writes: &WriteSet,
    store: &Store,
) -> Result<Divergence, ReplayError> {
    let writers = last_writers(block, writes, store)?;
    for k in &mut keys {
        let key = hex::decode(&k.key).unwrap_or_default();
        k.tx_index = writers.get(&key).copied().flatten();
    }
    d.tx_index = keys.iter().filter_map(|k| k.tx_index).min();
    keys.truncate(MAX_REPORTED_KEYS);
    d.keys = keys;
    Ok(d)
}

/// The replay store's state before its latest block, which wrote `writes`.
struct BeforeTip<'a> {
    store: &'a Store,
    version: u64,
    writes: &'a WriteSet,
}

impl StateRead for BeforeTip<'_> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.store.get(key, self.version)
    }
    /// The versioned tree has no key order, so the keys before the tip are the tip's keys
    /// with the block's writes undone: each written key is there if it held a value before.
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, LedgerError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let written: Vec<&Vec<u8>> =
            self.writes.range(from.to_vec()..to.to_vec()).map(|(k, _)| k).collect();
        // Dropping the written keys leaves at least `limit` of the fetched ones when the tip
        // has them; a key not fetched sorts after every fetched one.
        let mut keys: BTreeSet<Vec<u8>> = self
            .store
            .keys_in_latest(from, to, limit.saturating_add(written.len()))?
            .into_iter()
            .collect();
        for k in written {
            keys.remove(k);
            if self.store.get(k, self.version)?.is_some() {
                keys.insert(k.clone());
            }
        }
        Ok(keys.into_iter().take(limit).collect())
    }
}

/// Execution state that remembers which transaction (`None`: the block's begin step) wrote
/// each key last.
struct TraceState<'o, 'a> {
    overlay: &'o mut Overlay<'a>,
    current: Option<u32>,
    writers: BTreeMap<Vec<u8>, Option<u32>>,
    error: RefCell<Option<LedgerError>>,
}

impl OrderedState for TraceState<'_, '_> {
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<Vec<u8>> {
        self.overlay.keys_in(from, to, limit).unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            Vec::new()
        })
    }
}

impl State for TraceState<'_, '_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.overlay.get(key).unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            None
        })
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writers.insert(key.clone(), self.current);
        if let Err(e) = self.overlay.put(key, value) {
            self.error.borrow_mut().get_or_insert(e);
        }
    }
    fn delete(&mut self, key: &[u8]) {
        self.writers.insert(key.to_vec(), self.current);
        if let Err(e) = self.overlay.delete(key.to_vec()) {
            self.error.borrow_mut().get_or_insert(e);
        }
    }
}

/// Re-execute `block` (already committed to `store`) on the state before it, the way
/// `contracts::execute_block` does, one transaction at a time.
fn last_writers(
    block: &Block,
    writes: &WriteSet,
    store: &Store,
) -> Result<BTreeMap<Vec<u8>, Option<u32>>, ReplayError> {
    let h = block.header.height;
    let base = BeforeTip { store, version: h - 1, writes };
    let mut overlay = Overlay::new(&base);
    let ctx = BlockContext {
        chain_id: block.header.chain_id.clone(),
        height: h,
        time_ms: block.header.time_ms,
    };
    let mut st = TraceState {
        overlay: &mut overlay,
        current: None,
        writers: BTreeMap::new(),
        error: RefCell::new(None),
    };
    contracts::begin_block(&mut st, &ctx);
    for (i, bytes) in block.txs.iter().enumerate() {
        st.current = Some(i as u32);
        // Undecodable transactions change nothing (and were reported before execution).
        if let Ok(tx) = contracts::check_stateless(bytes, &ctx.chain_id) {
            contracts::execute(&mut st, &ctx, &tx);
        }
    }
    if let Some(e) = st.error.into_inner() {
        return Err(ReplayError::Execution {
            height: h,
            reason: format!("re-executing for diagnosis: {e}"),
        });
    }
    Ok(st.writers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::{Hash, Keypair};
    use dpx_ledger::{Header, StoreConfig, merkle};

    fn q(i: u8) -> Vec<u8> {
        vec![b'q', i]
    }

    /// Commit `writes` as the next (empty) block.
    fn commit(store: &Store, writes: WriteSet) {
        let tip = store.tip_height();
        let header = Header {
            chain_id: store.chain_id().to_string(),
            height: tip + 1,
            time_ms: 1_700_000_000_000 + tip * 1000,
            proposer: Keypair::from_seed([3; 32]).public(),
            parent_id: store.header(tip).unwrap().map_or(Hash::ZERO, |h| h.id()),
            parent_certificate_hash: Hash::digest(
                &store.certificate(tip).unwrap().unwrap_or_default(),
            ),
            tx_root: merkle::root(&[]),
            state_root: store.state_root(tip).unwrap().unwrap(),
            validator_set_hash: Hash::ZERO,
            prev_receipts_hash: store.block_receipts_hash(tip).unwrap().unwrap(),
        };
        let block = Block { header, txs: Vec::new() };
        store.commit_block(&block, b"cert", writes, Vec::new()).unwrap();
    }

    #[test]
    fn the_keys_before_the_tip_are_the_tips_with_its_writes_undone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig { sync_writes: false, ..StoreConfig::default() };
        let store = Store::open(dir.path(), "dpx-diagnose", cfg).unwrap();
        // Even keys q0, q2, ..., q38 before the block.
        let genesis: WriteSet = (0..20u8).map(|i| (q(2 * i), Some(vec![1]))).collect();
        store.genesis(genesis.clone()).unwrap();
        // The block deletes two of them (one never existed), rewrites one, adds three.
        let writes: WriteSet = [
            (q(0), None),
            (q(4), None),
            (q(7), None),
            (q(6), Some(vec![2])),
            (q(5), Some(vec![2])),
            (q(1), Some(vec![2])),
            (q(41), Some(vec![2])),
        ]
        .into_iter()
        .collect();
        commit(&store, writes.clone());
        let before = BeforeTip { store: &store, version: 0, writes: &writes };
        for (from, to) in [(q(0), q(50)), (q(1), q(8)), (q(3), q(7)), (q(5), q(5)), (q(9), q(2))] {
            for limit in [0, 1, 2, 3, 5, 50] {
                let want: Vec<Vec<u8>> = genesis
                    .keys()
                    .filter(|k| **k >= from && **k < to)
                    .take(limit)
                    .cloned()
                    .collect();
                let got = before.keys_in(&from, &to, limit).unwrap();
                assert_eq!(got, want, "[{from:?}, {to:?}) limit {limit}");
            }
        }
    }
}
