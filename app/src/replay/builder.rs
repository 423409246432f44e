//! A certified chain built directly with the libraries, without consensus or networking:
//! for replay tests, benchmarks and simulations that hold every validator's key.
//!
//! Each block is made exactly as a validator would: header fields from the store's tip and
//! the validator set in force, execution through `dpx-contracts`, and a commit certificate of
//! precommits signed by the chosen validators.

use std::path::Path;

use dpx_consensus::{Certificate, Height, Round, ValidatorIndex, Vote, VoteKind};
use dpx_crypto::{Hash, Keypair};
use dpx_genesis::Genesis;
use dpx_ledger::{Block, Header, Store, StoreConfig, WriteSet, merkle};

use crate::admit::TxChecker;
use crate::execute::{execute_block, validator_set};

/// Builds and commits blocks to a fresh store.
#[derive(Debug)]
pub struct ChainBuilder {
    chain_id: String,
    checker: TxChecker,
    store: Store,
    keys: Vec<Keypair>,
    time_ms: u64,
    parent_certificate: Vec<u8>,
}

impl ChainBuilder {
    /// A new ledger in `dir` from `genesis`; `keys` are validators' keys (any order; keys of
    /// validators not given simply never sign).
    pub fn new(dir: &Path, genesis: &Genesis, keys: &[Keypair]) -> anyhow::Result<Self> {
        let store = Store::open(
            dir,
            &genesis.chain_id,
            StoreConfig { sync_writes: false, ..StoreConfig::default() },
        )?;
        store.genesis(genesis.initial_writes()?)?;
        Ok(Self {
            chain_id: genesis.chain_id.clone(),
            checker: TxChecker::new(&genesis.chain_id, genesis.consensus_only, 0),
            store,
            keys: keys.iter().map(|k| Keypair::from_seed(k.seed())).collect(),
            time_ms: genesis.genesis_time_ms,
            parent_certificate: Vec::new(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Give back the store (e.g. to close it before tampering with its files).
    pub fn into_store(self) -> Store {
        self.store
    }

    /// Let `ms` more pass before the next block (each block is otherwise 1 s after the last):
    /// for histories where a deadline or a retention period runs out.
    pub fn skip_time(&mut self, ms: u64) {
        self.time_ms = self.time_ms.saturating_add(ms);
    }

    /// Commit a block of `txs` signed by every validator whose key is known; its id.
    pub fn push(&mut self, txs: Vec<Vec<u8>>) -> anyhow::Result<Hash> {
        self.push_signed_by(txs, |_| true)
    }

    /// Commit a block of `txs` whose certificate carries the precommits of the validators
    /// (by index in the set in force) for which `signs` is true; its id.
    pub fn push_signed_by(
        &mut self,
        txs: Vec<Vec<u8>>,
        signs: impl Fn(usize) -> bool,
    ) -> anyhow::Result<Hash> {
        self.push_with(txs, signs, |_, _| {})
    }

    /// Commit a block whose execution result is changed by `alter` before it is committed:
    /// what a faulty (or byzantine-majority) chain looks like to an auditor — every later
    /// header and certificate is consistent with the altered state.
    pub fn push_altered(
        &mut self,
        txs: Vec<Vec<u8>>,
        alter: impl FnOnce(&mut WriteSet, &mut Vec<Vec<u8>>),
    ) -> anyhow::Result<Hash> {
        self.push_with(txs, |_| true, alter)
    }

    fn push_with(
        &mut self,
        txs: Vec<Vec<u8>>,
        signs: impl Fn(usize) -> bool,
        alter: impl FnOnce(&mut WriteSet, &mut Vec<Vec<u8>>),
    ) -> anyhow::Result<Hash> {
        let tip = self.store.tip_height();
        let height = tip + 1;
        let set = validator_set(&self.store, height)?;
        let members = set.validators();
        anyhow::ensure!(!members.is_empty(), "empty validator set");
        self.time_ms += 1_000;
        let parent_id = self.store.header(tip)?.map_or(Hash::ZERO, |h| h.id());
        let header = Header {
            chain_id: self.chain_id.clone(),
            height,
            time_ms: self.time_ms,
            proposer: members[(height as usize) % members.len()].key,
            parent_id,
            parent_certificate_hash: if tip == 0 {
                Hash::ZERO
            } else {
                Hash::digest(&self.parent_certificate)
            },
            tx_root: merkle::root(&txs),
            state_root: self.store.state_root(tip)?.unwrap_or(Hash::ZERO),
            validator_set_hash: set.hash(&self.chain_id),
            prev_receipts_hash: self.store.block_receipts_hash(tip)?.unwrap_or(Hash::ZERO),
        };
        let block = Block { header, txs };
        let id = block.id();
        let mut signatures = Vec::new();
        for (i, v) in members.iter().enumerate() {
            let Some(key) = self.keys.iter().find(|k| k.public() == v.key) else { continue };
            if !signs(i) {
                continue;
            }
            let vote = Vote {
                kind: VoteKind::Precommit,
                height: Height(height),
                round: Round(0),
                value_id: Some(id),
                validator: ValidatorIndex(i as u32),
            };
            signatures.push((ValidatorIndex(i as u32), vote.sign(&self.chain_id, key).signature));
        }
        let cert =
            Certificate { height: Height(height), round: Round(0), value_id: id, signatures }
                .encode();
        let digests = block.tx_hashes();
        let (mut writes, mut receipts) =
            execute_block(&self.store, &self.checker, &block, &digests)?;
        alter(&mut writes, &mut receipts);
        self.store.commit_block(&block, &cert, writes, receipts)?;
        self.parent_certificate = cert;
        Ok(id)
    }
}
