//! Glue between the ledger (bytes in a RocksDB-backed Merkle tree) and the contracts (typed
//! marketplace rules over a key-value `State`). Everything the node asks of `dpx-contracts`
//! goes through here.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use dpx_consensus::{Certificate, Validator, ValidatorSet};
use dpx_contracts::{self as contracts, BlockContext, State, keys};
use dpx_crypto::{Hash, PublicKey, verify_batch_each};
use dpx_ledger::{Block, LedgerError, Overlay, StateProof, Store, WriteSet};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chain::{self, Tip};
use crate::mempool::PoolTx;
use crate::node::Shared;
use crate::wire::{SyncRequest, SyncResponse};

/// A transaction that passed the stateless checks (format, chain id, signature).
#[derive(Debug, Clone)]
pub struct CheckedTx {
    pub hash: Hash,
    pub bytes: Arc<Vec<u8>>,
    pub signer: PublicKey,
    pub nonce: u64,
    pub expiry_height: Option<u64>,
    pub tx: contracts::VerifiedTx,
}

/// Decode all, then verify every signature in one batch (falling back to one-by-one only to
/// find the bad ones).
pub fn check_stateless_batch(chain_id: &str, txs: Vec<Vec<u8>>) -> Vec<Result<CheckedTx, String>> {
    let decoded: Vec<Result<contracts::UnverifiedTx, String>> = txs
        .iter()
        .map(|b| contracts::decode_unverified(b, chain_id).map_err(|e| e.to_string()))
        .collect();
    let items: Vec<_> =
        decoded.iter().filter_map(|d| d.as_ref().ok().map(|u| u.batch_item())).collect();
    let mut verdicts = verify_batch_each(&items).into_iter();
    decoded
        .into_iter()
        .zip(txs)
        .map(|(d, bytes)| {
            let u = d?;
            if !verdicts.next().unwrap_or(false) {
                return Err("bad signature".to_owned());
            }
            let tx = u.assume_verified();
            Ok(CheckedTx {
                hash: tx.hash,
                bytes: Arc::new(bytes),
                signer: tx.signer,
                nonce: tx.body.nonce,
                expiry_height: tx.body.expiry_height,
                tx,
            })
        })
        .collect()
}

/// Read-only view of the latest state for the contracts' cheap checks.
struct ReadState<'a> {
    store: &'a Store,
    error: RefCell<Option<String>>,
}

impl State for ReadState<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.store.get_latest(key).unwrap_or_else(|e| {
            *self.error.borrow_mut() = Some(e.to_string());
            None
        })
    }
    fn put(&mut self, _: Vec<u8>, _: Vec<u8>) {
        *self.error.borrow_mut() = Some("write during a read-only check".into());
    }
    fn delete(&mut self, _: &[u8]) {
        *self.error.borrow_mut() = Some("delete during a read-only check".into());
    }
}

fn read_state(store: &Store) -> ReadState<'_> {
    ReadState { store, error: RefCell::new(None) }
}

/// Nonce, expiry and account checks against the latest state (for the mempool).
///
/// `pending_below(signer, expected, got)` says whether the mempool already holds every nonce
/// in `expected..got` for the signer: then a nonce ahead of the ledger's is fine, it will be
/// next once those commit.
pub fn check_stateful(
    store: &Store,
    tx: &contracts::VerifiedTx,
    height: u64,
    pending_below: impl Fn(&PublicKey, u64, u64) -> bool,
) -> Result<(), String> {
    let st = read_state(store);
    let r = match contracts::check_stateful(&st, tx, height) {
        Err(contracts::TxError::NonceTooHigh { expected, got })
            if pending_below(&tx.signer, expected, got) =>
        {
            Ok(())
        }
        r => r.map_err(|e| e.to_string()),
    };
    if let Some(e) = st.error.into_inner() {
        return Err(format!("ledger read failed: {e}"));
    }
    r
}

/// The same check for a transaction already in the mempool (re-decoded; signature known good).
pub fn check_stateful_pool(
    store: &Store,
    t: &PoolTx,
    height: u64,
    pending_below: impl Fn(&PublicKey, u64, u64) -> bool,
) -> Result<(), String> {
    let u = contracts::decode_unverified(&t.bytes, store.chain_id()).map_err(|e| e.to_string())?;
    check_stateful(store, &u.assume_verified(), height, pending_below)
}

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
/// one encoded receipt per transaction.
pub fn execute_block(store: &Store, block: &Block) -> anyhow::Result<(WriteSet, Vec<Vec<u8>>)> {
    let mut overlay = Overlay::new(store);
    let ctx = BlockContext {
        chain_id: block.header.chain_id.clone(),
        height: block.header.height,
        time_ms: block.header.time_ms,
    };
    let receipts = {
        let mut st = ExecState { overlay: &mut overlay, error: RefCell::new(None) };
        let receipts = contracts::execute_block(&mut st, &ctx, &block.txs);
        if let Some(e) = st.error.into_inner() {
            return Err(e).context("writing block state");
        }
        receipts
    };
    Ok((overlay.into_writes(), receipts.iter().map(contracts::Receipt::encode).collect()))
}

/// The state as it was after block `version` (read through the versioned tree).
struct VersionState<'a> {
    store: &'a Store,
    version: u64,
    error: RefCell<Option<String>>,
}

impl State for VersionState<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.store.get(key, self.version).unwrap_or_else(|e| {
            *self.error.borrow_mut() = Some(e.to_string());
            None
        })
    }
    fn put(&mut self, _: Vec<u8>, _: Vec<u8>) {
        *self.error.borrow_mut() = Some("write to a historical state".into());
    }
    fn delete(&mut self, _: &[u8]) {
        *self.error.borrow_mut() = Some("delete in a historical state".into());
    }
}

/// The validator set that validates `height`: for the next height, the set in force after the
/// tip unless governance scheduled a change for exactly that height; for a committed height,
/// the set in force in the state after it.
pub fn validator_set(store: &Store, height: u64) -> anyhow::Result<ValidatorSet> {
    let tip = store.tip_height();
    let (vals, error) = if height == tip + 1 {
        let st = read_state(store);
        let v = contracts::validator_updates(&st, height)
            .unwrap_or_else(|| contracts::current_validators(&st));
        (v, st.error.into_inner())
    } else {
        anyhow::ensure!(height <= tip, "no validator set known for height {height} (tip {tip})");
        let st = VersionState { store, version: height, error: RefCell::new(None) };
        let v = contracts::current_validators(&st);
        (v, st.error.into_inner())
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

pub fn params(store: &Store) -> anyhow::Result<BlockLimits> {
    let p = contracts::params(&read_state(store));
    Ok(BlockLimits {
        max_block_bytes: usize::try_from(p.max_block_bytes).unwrap_or(usize::MAX),
        max_block_txs: p.max_block_txs as usize,
    })
}

/// Our tip, and the validator set that signed it (the one the next block's parent certificate
/// must come from; at height 0 there is no parent and `validators` stands in).
fn tip_and_parent_set(
    store: &Store,
    shared: &Shared,
    validators: &ValidatorSet,
) -> Result<(Tip, ValidatorSet), String> {
    let tip = Tip::of(store, shared.genesis_time_ms)?;
    let parent_set = if tip.height == 0 {
        validators.clone()
    } else {
        validator_set(store, tip.height).map_err(|e| e.to_string())?
    };
    Ok((tip, parent_set))
}

/// Full validity of a proposed block on top of our tip (prevote rule).
pub fn validate_block(
    store: &Store,
    shared: &Shared,
    block: &Block,
    parent_certificate: &[u8],
    validators: &ValidatorSet,
    max_drift: Duration,
    now_ms: u64,
) -> Result<(), String> {
    let (tip, parent_set) = tip_and_parent_set(store, shared, validators)?;
    chain::check_header(
        &shared.chain_id,
        block,
        parent_certificate,
        &tip,
        validators,
        &parent_set,
    )?;
    if block.header.time_ms > now_ms + max_drift.as_millis() as u64 {
        return Err(format!(
            "block time is {} ms ahead of our clock",
            block.header.time_ms - now_ms
        ));
    }
    let limits = params(store).map_err(|e| e.to_string())?;
    if block.txs.len() > limits.max_block_txs {
        return Err(format!(
            "{} transactions exceed the limit {}",
            block.txs.len(),
            limits.max_block_txs
        ));
    }
    let bytes: usize = block.txs.iter().map(Vec::len).sum();
    if bytes > limits.max_block_bytes {
        return Err(format!(
            "{bytes} transaction bytes exceed the limit {}",
            limits.max_block_bytes
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, r) in check_stateless_batch(&shared.chain_id, block.txs.clone()).into_iter().enumerate()
    {
        let tx = r.map_err(|e| format!("transaction {i}: {e}"))?;
        if !seen.insert(tx.hash) {
            return Err(format!("transaction {i} is a duplicate"));
        }
    }
    Ok(())
}

/// A block from sync: decode it and its certificate and check both against our tip.
pub fn check_synced(
    store: &Store,
    shared: &Shared,
    validators: &ValidatorSet,
    block: &[u8],
    cert: &[u8],
    parent_certificate: &[u8],
) -> Result<(Block, Certificate), String> {
    let block = Block::decode(block, shared.limits.max_block_bytes).map_err(|e| e.to_string())?;
    let cert = Certificate::decode(cert).map_err(|e| e.to_string())?;
    let tip = store.tip_height();
    if block.header.height != tip + 1 {
        return Ok((block, cert)); // not the next one: the caller skips it
    }
    chain::check_certificate(
        &shared.chain_id,
        &cert,
        block.header.height,
        &block.id(),
        validators,
    )?;
    let (tip, parent_set) = tip_and_parent_set(store, shared, validators)?;
    chain::check_header(
        &shared.chain_id,
        &block,
        parent_certificate,
        &tip,
        validators,
        &parent_set,
    )?;
    // Decided blocks were checked by a quorum, but a node never executes what it has not checked.
    for (i, r) in check_stateless_batch(&shared.chain_id, block.txs.clone()).into_iter().enumerate()
    {
        r.map_err(|e| format!("transaction {i}: {e}"))?;
    }
    Ok((block, cert))
}

pub fn serve_sync(store: &Store, req: &SyncRequest, max_bytes: usize) -> SyncResponse {
    chain::serve_sync(store, req, max_bytes.saturating_mul(4))
}

// ----- JSON views ---------------------------------------------------------------------------

pub fn receipt_json(bytes: &[u8]) -> Value {
    match contracts::Receipt::decode(bytes) {
        Ok(r) => serde_json::to_value(&r).unwrap_or(Value::Null),
        Err(e) => json!({ "undecodable": e.to_string() }),
    }
}

pub fn tx_json(bytes: &[u8]) -> Value {
    let Ok(tx) = contracts::SignedTransaction::decode(bytes) else {
        return json!({ "undecodable": true });
    };
    match contracts::TransactionBody::decode(&tx.body) {
        Ok(body) => json!({ "signer": tx.signer, "body": body, "signature": tx.signature }),
        Err(e) => json!({ "signer": tx.signer, "undecodable_body": e.to_string() }),
    }
}

pub fn tx_signer(bytes: &[u8]) -> Option<String> {
    contracts::SignedTransaction::decode(bytes).ok().map(|t| t.signer.to_hex())
}

/// The kinds the RPC can list, with their key prefixes.
pub const KINDS: &[&str] = &[
    "participants",
    "products",
    "demands",
    "responses",
    "orders",
    "grants",
    "usage",
    "attestations",
    "proposals",
    "policies",
    "accounts",
];

pub fn kind_prefix(kind: &str) -> Option<Vec<u8>> {
    let p: &[u8] = match kind {
        "participants" => keys::PREFIX_PARTICIPANT,
        "products" => keys::PREFIX_PRODUCT,
        "demands" => keys::PREFIX_DEMAND,
        "responses" => keys::PREFIX_RESPONSE,
        "orders" => keys::PREFIX_ORDER,
        "grants" => keys::PREFIX_GRANT,
        "usage" => keys::PREFIX_USAGE,
        "attestations" => keys::PREFIX_ATTESTATION,
        "proposals" => keys::PREFIX_PROPOSAL,
        "policies" => keys::PREFIX_POLICY_VERSION,
        "accounts" => keys::PREFIX_NONCE,
        _ => return None,
    };
    Some(p.to_vec())
}

fn id32(id: &str) -> Result<Hash, String> {
    id.parse().map_err(|_| format!("{id:?} is not a 64-character hex id"))
}

fn key32(id: &str) -> Result<PublicKey, String> {
    id.parse().map_err(|_| format!("{id:?} is not a hex public key"))
}

/// The state key of one object.
pub fn object_key(kind: &str, id: &str) -> Result<Vec<u8>, String> {
    Ok(match kind {
        "participants" => keys::participant(&key32(id)?),
        "accounts" => keys::nonce(&key32(id)?),
        "products" => keys::product(&contracts::ProductId(id32(id)?)),
        "demands" => keys::demand(&contracts::DemandId(id32(id)?)),
        "orders" => keys::order(&contracts::OrderId(id32(id)?)),
        "grants" => keys::grant(&contracts::GrantId(id32(id)?)),
        "usage" => keys::usage(&contracts::GrantId(id32(id)?)),
        "proposals" => keys::proposal(&contracts::ProposalId(id32(id)?)),
        "policies" => {
            let v: u64 = id.parse().map_err(|_| "policy versions are numbers".to_owned())?;
            keys::policy_version(v)
        }
        other => {
            return Err(format!("{other} objects cannot be fetched by id; list them instead"));
        }
    })
}

pub fn render_state(key: &[u8], value: &[u8]) -> Option<Value> {
    contracts::render(key, value)
}

// ----- proofs -------------------------------------------------------------------------------

/// A value with everything needed to check it offline: the Merkle proof against the state root
/// in the header of block `version + 1`, and that block's commit certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProofBundle {
    pub chain_id: String,
    /// Hex of the state key.
    pub key: String,
    /// Hex of the stored value; absent for a proof of absence.
    pub value: Option<String>,
    /// The state version (block height) the value is proved at.
    pub version: u64,
    pub proof: StateProof,
    /// The block `version + 1`, whose header commits to the state root after `version`.
    pub header: dpx_ledger::Header,
    /// Hex of that block's commit certificate.
    pub certificate: String,
    /// The validators that signed the certificate.
    pub validators: Vec<Validator>,
}

impl ProofBundle {
    pub fn value_bytes(&self) -> Option<Vec<u8>> {
        self.value.as_ref().and_then(|v| hex::decode(v).ok())
    }
}

/// Prove `key` at `version` (default: the latest version a committed header certifies).
pub fn prove(
    store: &Store,
    chain_id: &str,
    key: &[u8],
    version: Option<u64>,
) -> Result<ProofBundle, String> {
    let tip = store.tip_height();
    if tip == 0 {
        return Err("no block committed yet: nothing certifies a state root".into());
    }
    let version = version.unwrap_or(tip - 1);
    if version >= tip {
        return Err(format!(
            "version {version} is not certified yet (latest certified: {})",
            tip - 1
        ));
    }
    let (value, proof) = store.get_with_proof(key, version).map_err(|e| e.to_string())?;
    let header = store.header(version + 1).map_err(|e| e.to_string())?.ok_or("header missing")?;
    let cert =
        store.certificate(version + 1).map_err(|e| e.to_string())?.ok_or("certificate missing")?;
    let validators = validator_set(store, version + 1).map_err(|e| e.to_string())?;
    Ok(ProofBundle {
        chain_id: chain_id.to_owned(),
        key: hex::encode(key),
        value: value.map(hex::encode),
        version,
        proof,
        header,
        certificate: hex::encode(cert),
        validators: validators.validators().to_vec(),
    })
}
