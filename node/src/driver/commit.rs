//! Committing a decided block: take its execution from the speculation or execute it
//! (`dpx_app::execute`), write it in one batch, then move the mempool, the validator set and
//! the caches on to the next height.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_app::admit::check_stateful_pool;
use dpx_app::execute::validator_set;
use dpx_consensus::Certificate;
use dpx_crypto::Hash;
use dpx_ledger::{Block, LedgerError, TxHashes};
use tracing::{debug, info, warn};

use super::Driver;
use super::speculate::{Executed, Outcome, execute_and_prepare};
use crate::p2p::Command;

impl Driver {
    pub(super) fn commit(&mut self, id: Hash, cert: &Certificate) -> anyhow::Result<()> {
        let cb = self.blocks.remove(&id).context("decided block vanished from the cache")?;
        self.apply_block(cb.block, &cb.hashes, cert, &cb.parent_cert)?;
        Ok(())
    }

    /// Execute and commit a block whose certificate is known to be valid, then move on.
    ///
    /// The speculation (see `speculate`) is always settled first — waited for, whatever block
    /// it runs — so nothing reads the store while this writes it. Its result is used when it
    /// was for this block; otherwise the block is executed here.
    pub(super) fn apply_block(
        &mut self,
        block: Arc<Block>,
        hashes: &TxHashes,
        cert: &Certificate,
        parent_cert: &[u8],
    ) -> anyhow::Result<()> {
        let height = block.header.height;
        let id = block.id();
        let started = Instant::now();
        let outcome = tokio::task::block_in_place(|| self.speculator.take(&id));
        let m = &self.shared.metrics;
        let (speculated, waited) = match outcome {
            Outcome::Used { result: Ok(executed), waited } => (Some(*executed), waited),
            Outcome::Used { result: Err(e), waited } => {
                warn!(height, error = %format!("{e:#}"), "speculative execution failed; executing again");
                m.speculation_failed.inc();
                (None, waited)
            }
            Outcome::Discarded => {
                m.speculation_discarded.inc();
                (None, Duration::ZERO)
            }
            Outcome::None => (None, Duration::ZERO),
        };
        let was_speculated = speculated.is_some();
        let cert_bytes = cert.encode();
        let (receipts, exec) = tokio::task::block_in_place(|| -> anyhow::Result<_> {
            let fresh = || execute_and_prepare(&self.store, &self.shared.checker, &block, hashes);
            let executed = match speculated {
                Some(e) => e,
                None => fresh()?,
            };
            let commit = |e: Executed| {
                self.store.commit_prepared(&block, &cert_bytes, Some(parent_cert), e.prepared)?;
                Ok::<_, LedgerError>((e.receipts, e.took))
            };
            match commit(executed) {
                Ok(done) => Ok(done),
                // Made on another tip (cannot happen while the driver settles the speculation
                // before every commit; if it ever does, the block is executed afresh).
                Err(LedgerError::StalePreparation { .. }) if was_speculated => {
                    warn!(height, "speculative state was prepared on another tip; executing again");
                    commit(fresh()?).with_context(|| format!("committing block {height}"))
                }
                Err(e) => Err(e).with_context(|| format!("committing block {height}")),
            }
        })?;
        if was_speculated {
            m.speculation_used.inc();
        }
        self.shared.own_blocks.prune(height);
        let since_last = self.last_commit.elapsed();
        self.last_commit = Instant::now();
        self.last_cert = Some(cert.clone());
        m.height.set(height as i64);
        m.blocks_committed.inc();
        m.txs_committed.inc_by(block.txs.len() as u64);
        m.block_interval_seconds.observe(since_last.as_secs_f64());
        info!(
            height,
            txs = block.txs.len(),
            id = %id.short(),
            speculative = was_speculated,
            exec_ms = exec.as_millis() as u64,
            wait_ms = waited.as_millis() as u64,
            commit_ms = started.elapsed().as_millis() as u64,
            "committed"
        );
        let mut touched = BTreeSet::new();
        for h in hashes.digests() {
            if let Some(p) = self.mempool.remove(h) {
                m.commit_latency_seconds.observe(p.admitted.elapsed().as_secs_f64());
                touched.insert(p.signer);
            }
        }
        // Re-check what the block can have made stale: the pooled transactions of the accounts
        // that just committed (their nonces moved), and expiry for all. A pooled transaction
        // made invalid by someone else's (a suspension, say) is not hunted down here: execution
        // refuses it with a receipt, as it must anyway.
        let next = height + 1;
        let mut evicted: Vec<(Hash, String)> =
            self.mempool.evict_expired(next).into_iter().map(|h| (h, "expired".into())).collect();
        // Opaque payloads (consensus-only chains) have no account state to re-check.
        if !self.shared.checker.is_opaque() {
            let store = &self.store;
            evicted.extend(self.mempool.recheck_accounts(&touched, |pool, t| {
                check_stateful_pool(store, &t.bytes, next, |k, a, b| pool.has_nonces(k, a, b))
            }));
        }
        for (h, reason) in evicted {
            debug!(tx = %h.short(), %reason, "evicted from mempool");
        }
        self.update_mempool_metrics();
        // The validator set for the next height (governance changes take effect here).
        let next_set = validator_set(&self.store, next)?;
        if next_set.hash(&self.shared.chain_id) != self.validators.hash(&self.shared.chain_id) {
            info!(height = next, validators = next_set.len(), "validator set changes");
            if let Some(me) = &self.key {
                match (self.validators.index_of(&me.public()), next_set.index_of(&me.public())) {
                    (None, Some(_)) => info!(height = next, "this node joins the validator set"),
                    (Some(_), None) => info!(height = next, "this node leaves the validator set"),
                    _ => {}
                }
            }
        }
        self.validators = next_set;
        // Peers let in: the set in force and every scheduled one (a newcomer connects and
        // syncs before its height; a removed validator is cut off after its last one).
        let permitted = crate::membership::permitted_keys(&self.store)?;
        if permitted != self.permitted {
            let cmd = Command::SetPermitted(self.shared.permitted_peers(&permitted));
            if self.net.try_send(cmd).is_ok() {
                self.permitted = permitted;
            } else {
                // Tried again at the next commit.
                self.shared.metrics.p2p_dropped.inc();
            }
        }
        // Blocks of the next height stay: they may wait for proposals buffered in the core.
        let unnamed = self.blocks.prune(height);
        self.partials.prune(height);
        self.shared.metrics.proposal_blocks_evicted.inc_by(unnamed as u64);
        self.awaiting_block.clear();
        self.pending_propose = None;
        self.pending_decision = None;
        self.timers.clear();
        self.height_started = false;
        self.publish_status();
        self.shared.publish_block(block, receipts, hashes.digests());
        Ok(())
    }
}
