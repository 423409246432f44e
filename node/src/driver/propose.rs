//! Proposing and validating blocks, and keeping our own proposal's block on disk.
//!
//! The core keeps our signed proposal in its safety state, so a proposer that crashes after
//! persisting it sends the very same proposal after a restart. The block it names must survive
//! too, or the re-sent proposal names a block nobody can get: before the safety state that
//! carries a new proposal is written, its block is written durably to `data/proposal.bin`
//! (the same temp-file, fsync, rename, checksum discipline), once per proposal.

use std::sync::Arc;

use anyhow::Context as _;
use dpx_app::execute::params;
use dpx_app::validate::validate_block;
use dpx_consensus::{Certificate, Height, Input, Round, SafetyState, SignedProposal};
use dpx_crypto::Hash;
use dpx_ledger::{Block, Header, TxHashes};
use prost::Message as _;
use tracing::{debug, info, warn};

use super::blocks::CachedBlock;
use super::{Driver, now_ms};
use crate::safety::SafetyFile;
use crate::wire;

/// Validations the core asked for whose block has not arrived, at most.
const AWAITING_MAX: usize = 64;
/// Room for the parent certificate and framing beside the largest block in `proposal.bin`.
const PROPOSAL_FILE_SLACK_BYTES: usize = 1 << 20;

/// `data/proposal.bin`: the block of our last signed proposal.
#[derive(Debug)]
pub(super) struct ProposalFile {
    file: SafetyFile,
    /// The (height, block id) on disk, so a block is written once however many votes follow.
    written: Option<(u64, Hash)>,
}

impl ProposalFile {
    /// Beside the safety state; `block_bytes_max` is the largest encoded block allowed now.
    pub fn new(safety: &SafetyFile, block_bytes_max: usize) -> Self {
        let max = block_bytes_max.saturating_add(PROPOSAL_FILE_SLACK_BYTES);
        Self { file: safety.sibling("proposal.bin", max), written: None }
    }

    /// Is the block of `p` still to be written?
    fn needs(&self, p: &SignedProposal) -> bool {
        self.written != Some((p.proposal.height.0, p.proposal.value_id))
    }

    /// Durably record the block of `p`.
    fn store(&mut self, p: &SignedProposal, cb: &CachedBlock) -> anyhow::Result<()> {
        let key = (p.proposal.height.0, p.proposal.value_id);
        let body = wire::ProposalBlock {
            height: p.proposal.height.0,
            round: p.proposal.round.0,
            block: cb.bytes().to_vec(),
            parent_certificate: cb.parent_cert.as_ref().clone(),
        }
        .encode_to_vec();
        self.file.store(&body)?;
        self.written = Some(key);
        Ok(())
    }

    /// The block of the proposal in `persisted`, if it is on disk and is that proposal's block
    /// at `height`. Anything else (no file, an old one, a damaged one) is `None`: the block
    /// only helps liveness, the safety state alone keeps us from signing twice.
    pub fn load(
        &mut self,
        persisted: Option<&SafetyState>,
        height: u64,
        block_bytes_max: usize,
    ) -> Option<(SignedProposal, CachedBlock)> {
        let p = persisted.and_then(|s| s.proposal).filter(|p| p.proposal.height.0 == height)?;
        let body = match self.file.load() {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                warn!(error = %e, "ignoring the stored proposal block");
                return None;
            }
        };
        let pb = wire::ProposalBlock::decode(body.as_slice()).ok()?;
        let block = Block::decode(&pb.block, block_bytes_max).ok()?;
        if block.id() != p.proposal.value_id {
            debug!("the stored proposal block is not the persisted proposal's");
            return None;
        }
        self.written = Some((height, p.proposal.value_id));
        let hashes = TxHashes::of(&block.txs);
        Some((p, CachedBlock::decoded(block, hashes, pb.block, pb.parent_certificate)))
    }
}

impl Driver {
    pub(super) fn propose(&mut self, height: Height, round: Round) -> anyhow::Result<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let params = params(&self.store)?;
        let pooled = self.mempool.reap(params.max_block_bytes, params.max_block_txs);
        let txs: Vec<Vec<u8>> = pooled.iter().map(|t| t.bytes.as_ref().clone()).collect();
        // The pool hashed each transaction when it admitted it: only the Merkle leaves are new.
        let hashes = TxHashes::with_digests(&txs, pooled.iter().map(|t| t.hash).collect());
        let tip = self.store.tip_height();
        let parent = self.store.header(tip)?;
        let parent_time = parent.as_ref().map_or(self.shared.genesis_time_ms, |h| h.time_ms);
        let time_ms = now_ms().max(parent_time + 1);
        let parent_cert = self.last_cert.as_ref().map(Certificate::encode).unwrap_or_default();
        let header = Header {
            chain_id: self.shared.chain_id.clone(),
            height: height.0,
            time_ms,
            proposer: key.public(),
            parent_id: parent.as_ref().map_or(Hash::ZERO, Header::id),
            parent_certificate_hash: if parent_cert.is_empty() {
                Hash::ZERO
            } else {
                Hash::digest(&parent_cert)
            },
            tx_root: hashes.root(),
            state_root: self.store.state_root(tip)?.context("tip state root")?,
            validator_set_hash: self.validators.hash(&self.shared.chain_id),
            prev_receipts_hash: self.store.block_receipts_hash(tip)?.unwrap_or(Hash::ZERO),
        };
        let block = Block { header, txs };
        let id = block.id();
        info!(height = height.0, round = round.0, txs = block.txs.len(), id = %id.short(), "proposing");
        let protect = self.protected_values();
        // Peers hold what was relayed to them a while ago; the freshest go inline.
        let compact = super::compact::encode(&block, &parent_cert, |i| {
            let t = &pooled[i];
            Some((t.hash, t.admitted.elapsed() < super::compact::INLINE_YOUNGER_THAN))
        });
        let cb = CachedBlock::built(block, hashes, parent_cert).with_compact(compact);
        // Fetches for it are answered by the p2p task from now on, whatever the driver does.
        self.shared.own_blocks.publish(id, Arc::clone(&cb.block), Arc::clone(&cb.hashes));
        // Our own block is valid by construction: execute it while it is voted on.
        self.speculator.start(id, &cb.block, &cb.hashes);
        self.blocks.insert_own(id, cb, round, &protect);
        let out = self.core.handle(Input::ProposeValue { height, round, value_id: id })?;
        self.execute(out)
    }

    pub(super) fn validate(
        &mut self,
        height: Height,
        round: Round,
        value_id: Hash,
    ) -> anyhow::Result<()> {
        let Some(cb) = self.blocks.get(&value_id) else {
            if self.awaiting_block.len() < AWAITING_MAX {
                self.awaiting_block.push((height, round, value_id));
            }
            return Ok(());
        };
        let verdict = tokio::task::block_in_place(|| {
            validate_block(
                &self.store,
                self.block_rules(),
                &cb.block,
                &cb.hashes,
                &cb.parent_cert,
                &self.validators,
                self.timing.max_clock_drift,
                now_ms(),
            )
        });
        let valid = match verdict {
            Ok(()) => {
                let (block, hashes) = (Arc::clone(&cb.block), Arc::clone(&cb.hashes));
                self.speculator.start(value_id, &block, &hashes);
                true
            }
            Err(reason) => {
                warn!(height = height.0, round = round.0, %reason, "invalid proposal");
                false
            }
        };
        let out = self.core.handle(Input::ValueValidity { height, round, value_id, valid })?;
        self.execute(out)
    }

    /// Before a safety state naming a new proposal of ours is written: write its block.
    pub(super) fn persist_proposal_block(&mut self, state: &SafetyState) {
        let Some(p) = state.proposal.filter(|p| self.proposal_file.needs(p)) else { return };
        let Some(cb) = self.blocks.get(&p.proposal.value_id) else {
            warn!(height = p.proposal.height.0, "our proposal's block is not in the cache");
            return;
        };
        // Liveness only (see the module docs): a failed write is logged, not fatal.
        if let Err(e) = tokio::task::block_in_place(|| self.proposal_file.store(&p, cb)) {
            warn!(error = %e, "could not keep our proposal's block on disk");
        }
    }

    /// The locked and valid values: their blocks are never pushed out of the cache.
    pub(super) fn protected_values(&self) -> Vec<Hash> {
        self.core
            .view()
            .map(|v| [v.locked, v.valid].into_iter().flatten().map(|x| x.value_id).collect())
            .unwrap_or_default()
    }
}
