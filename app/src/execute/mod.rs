//! Execution: a decided block's transactions run through `dpx-contracts` on an overlay of the
//! latest state, giving the writes to commit and one receipt per transaction; and what the
//! state says about the chain itself at each height ([`validator_set`], [`params`]).

use std::cell::RefCell;

use anyhow::Context as _;
use dpx_contracts::{self as contracts, BlockContext, OrderedState, State};
use dpx_crypto::Hash;
use dpx_ledger::{Block, LedgerError, Overlay, Store, WriteSet};

use crate::admit::TxChecker;

mod params;

pub use params::{BlockLimits, params, validator_set};

/// Execution state over a ledger overlay. The contracts' `State` is infallible, so the first
/// ledger error is recorded here and aborts the block afterwards: a node that cannot read its
/// own disk must stop, never commit a state computed from a failed read.
struct ExecState<'o, 'a> {
    overlay: &'o mut Overlay<'a>,
    error: RefCell<Option<LedgerError>>,
}

impl ExecState<'_, '_> {
    fn record(&self, e: LedgerError) {
        self.error.borrow_mut().get_or_insert(e);
    }
}

impl OrderedState for ExecState<'_, '_> {
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<Vec<u8>> {
        self.overlay.keys_in(from, to, limit).unwrap_or_else(|e| {
            self.record(e);
            Vec::new()
        })
    }
}

impl State for ExecState<'_, '_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.overlay.get(key).unwrap_or_else(|e| {
            self.record(e);
            None
        })
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Err(e) = self.overlay.put(key, value) {
            self.record(e);
        }
    }
    fn delete(&mut self, key: &[u8]) {
        if let Err(e) = self.overlay.delete(key.to_vec()) {
            self.record(e);
        }
    }
}

/// Execute a block's transactions on an overlay of the latest state: the writes to commit and
/// one encoded receipt per transaction. A consensus-only chain writes nothing and gives every
/// payload an `ok` receipt (so it is indexed and can be looked up by hash). `digests[i]` is
/// `Hash::digest(&block.txs[i])` ([`dpx_ledger::TxHashes::digests`]).
pub fn execute_block(
    store: &Store,
    checker: &TxChecker,
    block: &Block,
    digests: &[Hash],
) -> anyhow::Result<(WriteSet, Vec<Vec<u8>>)> {
    anyhow::ensure!(digests.len() == block.txs.len(), "one digest per transaction");
    let mut overlay = Overlay::new(store);
    if checker.is_opaque() {
        let receipts = digests
            .iter()
            .map(|&tx_hash| {
                contracts::Receipt {
                    tx_hash,
                    code: contracts::Code::Ok,
                    reason: String::new(),
                    events: Vec::new(),
                    decision: None,
                }
                .encode()
            })
            .collect();
        return Ok((overlay.into_writes(), receipts));
    }
    let ctx = BlockContext {
        chain_id: block.header.chain_id.clone(),
        height: block.header.height,
        time_ms: block.header.time_ms,
    };
    let checked = checker.stateless(&block.txs);
    let receipts = {
        let mut st = ExecState { overlay: &mut overlay, error: RefCell::new(None) };
        let receipts = contracts::execute_checked_block(&mut st, &ctx, &block.txs, checked);
        if let Some(e) = st.error.into_inner() {
            return Err(e).context("writing block state");
        }
        receipts
    };
    Ok((overlay.into_writes(), receipts.iter().map(contracts::Receipt::encode).collect()))
}
