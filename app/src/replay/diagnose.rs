//! Pinpointing a state divergence: which keys differ and which transaction wrote them.
//!
//! The block is re-executed transaction by transaction on the replayed state before it (a
//! versioned read of the replay store), recording the last writer of every key; a key whose
//! value differs from the source's is attributed to that transaction.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use dpx_contracts::{self as contracts, BlockContext, State};
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
    attribute(d, keys, block, store)
}

/// Set each key's writing transaction (and the divergence's first one) by re-executing
/// `block` transaction by transaction on the replayed state before it.
pub(super) fn attribute(
    mut d: Divergence,
    mut keys: Vec<KeyDiff>,
    block: &Block,
    store: &Store,
) -> Result<Divergence, ReplayError> {
    let writers = last_writers(block, store)?;
    for k in &mut keys {
        let key = hex::decode(&k.key).unwrap_or_default();
        k.tx_index = writers.get(&key).copied().flatten();
    }
    d.tx_index = keys.iter().filter_map(|k| k.tx_index).min();
    keys.truncate(MAX_REPORTED_KEYS);
    d.keys = keys;
    Ok(d)
}

/// The replay store's state after `version`.
struct VersionRead<'a> {
    store: &'a Store,
    version: u64,
}

impl StateRead for VersionRead<'_> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.store.get(key, self.version)
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
    store: &Store,
) -> Result<BTreeMap<Vec<u8>, Option<u32>>, ReplayError> {
    let h = block.header.height;
    let base = VersionRead { store, version: h - 1 };
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
    contracts::begin_block(&mut st, h);
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
