//! Admission of transactions to the mempool: from this node's clients (already verified by the
//! RPC's workers) and from peers (verified here, off the driver's task).

use std::sync::Arc;
use std::time::Instant;

use dpx_app::admit::{CheckedTx, Refusal, check_stateful};

use super::{AdmitResult, Driver};
use crate::mempool::{Admitted, MempoolError, PoolTx};
use crate::p2p::Command;
use crate::wire::{self, NetMessage, net_message::Kind};

impl Driver {
    pub(super) fn admit(&mut self, txs: Vec<CheckedTx>, from_peer: bool) -> Vec<AdmitResult> {
        let height = self.height();
        // What our own clients sent goes to the other validators (peers' relays are not
        // relayed again); `p2p.relay_transactions = false` keeps it here.
        let relaying = !from_peer && self.shared.config.p2p.relay_transactions;
        // An opaque payload larger than a block would sit in the pool for ever (no block can
        // take it) and hold up every payload behind it: refused here. Signed transactions are
        // held to the smaller `max_tx_bytes` by `check_stateful` (no read here for them).
        let max_opaque_bytes = if self.shared.checker.is_opaque() {
            match dpx_app::execute::params(&self.store) {
                Ok(p) => p.max_block_bytes,
                Err(e) => {
                    let refusal = Refusal::LedgerRead(e.to_string());
                    return txs.iter().map(|_| Err(refusal.clone())).collect();
                }
            }
        } else {
            usize::MAX
        };
        let mut relay = Vec::new();
        // Newly pooled transactions, for compact blocks waiting on them.
        let mut arrived = Vec::new();
        let results = txs
            .into_iter()
            .map(|tx| {
                let hash = tx.hash;
                if self.mempool.contains(&hash) {
                    return Ok(Admitted::Pending(hash)); // idempotent resubmission
                }
                match self.store.receipt(&hash) {
                    // Idempotent too: the same bytes cannot commit twice, the receipt stands.
                    Ok(Some(_)) => return Ok(Admitted::Committed(hash)),
                    Ok(None) => {}
                    Err(e) => return Err(Refusal::LedgerRead(e.to_string())),
                }
                if let Some(verified) = &tx.tx {
                    let pool = &self.mempool;
                    check_stateful(&self.store, verified, height, |k, a, b| {
                        pool.has_nonces(k, a, b)
                    })?;
                } else if tx.bytes.len() > max_opaque_bytes {
                    let (len, max) = (tx.bytes.len(), max_opaque_bytes);
                    return Err(Refusal::PayloadSize { len, max });
                }
                let bytes = tx.bytes.clone();
                let inserted = self.mempool.insert(PoolTx {
                    hash,
                    bytes: tx.bytes,
                    signer: tx.signer,
                    nonce: tx.nonce,
                    expiry_height: tx.expiry_height,
                    admitted: Instant::now(),
                });
                match inserted.map_err(MempoolError::refusal) {
                    Ok(()) => {}
                    Err(None) => return Ok(Admitted::Pending(hash)),
                    Err(Some(refusal)) => return Err(refusal),
                }
                if !self.partials.is_empty() {
                    arrived.push((hash, Arc::clone(&bytes)));
                }
                if relaying {
                    relay.push(bytes.as_ref().clone());
                }
                Ok(Admitted::Pending(hash))
            })
            .collect::<Vec<_>>();
        self.update_mempool_metrics();
        self.arrived.extend(arrived);
        if !relay.is_empty() {
            self.send(Command::Broadcast(NetMessage {
                kind: Some(Kind::Txs(wire::TxBatch { txs: relay })),
            }));
        }
        results
    }

    /// Transactions relayed by a peer: bounded, verified off this task and admitted by
    /// `relay` (a cap on concurrent verification, chunked checks, a penalty for bad peers).
    pub(super) fn admit_from_peer(&self, from: libp2p::PeerId, txs: Vec<Vec<u8>>) {
        crate::relay::admit_from_peer(&self.shared, from, txs);
    }
}
