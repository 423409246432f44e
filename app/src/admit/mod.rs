//! Glue between the ledger (bytes in a RocksDB-backed Merkle tree) and the contracts (typed
//! marketplace rules over a key-value `State`). Everything the node asks of `dpx-contracts`
//! goes through here.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use dpx_consensus::{Certificate, Validator, ValidatorSet};
use dpx_contracts::{self as contracts, BlockContext, State, TxError, keys};
use dpx_crypto::{Hash, PublicKey, verify_each};
use dpx_ledger::{Block, LedgerError, Overlay, StateProof, Store, WriteSet};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::chain::{self, Tip};
use crate::mempool::{PoolTx, Refusal};
use crate::node::Shared;

/// A transaction that passed the stateless checks (format, chain id, signature).
#[derive(Debug, Clone)]
pub struct CheckedTx {
    pub hash: Hash,
    pub bytes: Arc<Vec<u8>>,
    pub signer: PublicKey,
    pub nonce: u64,
    pub expiry_height: Option<u64>,
    /// The decoded transaction; `None` for an opaque payload of a consensus-only chain.
    pub tx: Option<contracts::VerifiedTx>,
}

/// Transactions whose signature this node already verified, by hash of their bytes (which
/// include the signatures), with the verdict on a carried grant's signature. Bounded; the
/// oldest entries go first.
#[derive(Debug)]
struct VerifiedSet {
    map: HashMap<Hash, Option<bool>>,
    order: VecDeque<Hash>,
    capacity: usize,
}

impl VerifiedSet {
    fn insert(&mut self, h: Hash, grant: Option<bool>) {
        if self.capacity == 0 || self.map.insert(h, grant).is_some() {
            return;
        }
        self.order.push_back(h);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// The stateless transaction rules of one chain, with a cache that makes each signature
/// verified once per node: at admission (RPC or relay), not again when the block is validated,
/// executed or replayed. Sound because a transaction's validity without state is a pure
/// function of its bytes and the chain id, and the cache key is the blake3 hash of the bytes.
#[derive(Debug)]
pub struct TxChecker {
    chain_id: String,
    /// A consensus-only chain (genesis `consensus_only`): transactions are opaque payloads,
    /// never decoded, verified or executed; for benchmarking the consensus engine alone.
    opaque: bool,
    verified: Mutex<VerifiedSet>,
    /// Signatures this checker has verified (cache misses), for tests and figures.
    verifications: AtomicU64,
    /// Arrival order of opaque payloads (they have no signer nonce of their own).
    opaque_seq: AtomicU64,
}

/// The one rule for an opaque payload of a consensus-only chain: its size.
fn check_opaque_size(len: usize) -> Result<(), Refusal> {
    if len == 0 || len > contracts::MAX_TX_BYTES {
        return Err(Refusal::PayloadSize { len, max: contracts::MAX_TX_BYTES });
    }
    Ok(())
}

/// The single pseudo-account opaque payloads are pooled under.
fn opaque_account() -> PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    *KEY.get_or_init(|| dpx_crypto::Keypair::from_seed([0x0b; 32]).public())
}

impl TxChecker {
    /// `cache` is the number of verified transaction hashes remembered.
    pub fn new(chain_id: &str, opaque: bool, cache: usize) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            opaque,
            verified: Mutex::new(VerifiedSet {
                map: HashMap::with_capacity(cache.min(1 << 16)),
                order: VecDeque::new(),
                capacity: cache,
            }),
            verifications: AtomicU64::new(0),
            opaque_seq: AtomicU64::new(0),
        }
    }

    /// How many signatures this checker has verified (each transaction once while cached).
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    pub fn is_opaque(&self) -> bool {
        self.opaque
    }

    /// `check_stateless` of `dpx-contracts` for every transaction, with the signatures not
    /// seen before (the transaction's, and a carried grant's) verified in one batch (one by
    /// one only to find the bad ones).
    pub fn stateless(&self, txs: &[Vec<u8>]) -> Vec<Result<contracts::VerifiedTx, TxError>> {
        let decoded: Vec<Result<contracts::UnverifiedTx, TxError>> =
            txs.iter().map(|b| contracts::decode_unverified(b, &self.chain_id)).collect();
        // Per transaction: `Some(grant verdict)` when known from before, else `None`.
        let known: Vec<Option<Option<bool>>> = {
            let v = self.verified.lock();
            decoded
                .iter()
                .map(|d| d.as_ref().ok().and_then(|u| v.map.get(&u.hash).copied()))
                .collect()
        };
        let grant_digests: Vec<Option<Hash>> = decoded
            .iter()
            .zip(&known)
            .map(|(d, k)| {
                d.as_ref()
                    .ok()
                    .filter(|_| k.is_none())
                    .and_then(contracts::UnverifiedTx::grant_digest)
            })
            .collect();
        let mut items = Vec::new();
        for ((d, k), gd) in decoded.iter().zip(&known).zip(&grant_digests) {
            let Ok(u) = d else { continue };
            if k.is_some() {
                continue;
            }
            items.push(u.signed_digest());
            if let (Some(g), Some(digest)) = (u.signed_grant(), gd) {
                items.push(g.signed_digest(digest));
            }
        }
        self.verifications.fetch_add(items.len() as u64, Ordering::Relaxed);
        let mut verdicts = verify_each(&items).into_iter();
        let out: Vec<_> = decoded
            .into_iter()
            .zip(known)
            .zip(grant_digests)
            .map(|((d, known), gd)| {
                let u = d?;
                let grant = if let Some(grant) = known {
                    grant
                } else {
                    let tx_ok = verdicts.next().unwrap_or(false);
                    let grant = gd.map(|_| verdicts.next().unwrap_or(false));
                    if !tx_ok {
                        return Err(TxError::BadSignature);
                    }
                    grant
                };
                Ok(u.assume_verified(grant))
            })
            .collect();
        let mut v = self.verified.lock();
        for tx in out.iter().flatten() {
            v.insert(tx.hash, tx.grant_signature);
        }
        out
    }

    /// The stateless checks for admission to the mempool.
    pub fn check_batch(&self, txs: Vec<Vec<u8>>) -> Vec<Result<CheckedTx, Refusal>> {
        if self.opaque {
            return txs.into_iter().map(|b| self.opaque_tx(b)).collect();
        }
        let checked = self.stateless(&txs);
        checked
            .into_iter()
            .zip(txs)
            .map(|(c, bytes)| {
                let tx = c?;
                Ok(CheckedTx {
                    hash: tx.hash,
                    bytes: Arc::new(bytes),
                    signer: tx.signer,
                    nonce: tx.body.nonce,
                    expiry_height: tx.body.expiry_height,
                    tx: Some(tx),
                })
            })
            .collect()
    }

    fn opaque_tx(&self, bytes: Vec<u8>) -> Result<CheckedTx, Refusal> {
        check_opaque_size(bytes.len())?;
        Ok(CheckedTx {
            hash: Hash::digest(&bytes),
            bytes: Arc::new(bytes),
            signer: opaque_account(),
            nonce: self.opaque_seq.fetch_add(1, Ordering::Relaxed),
            expiry_height: None,
            tx: None,
        })
    }
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

/// Nonce, expiry, signer and carried-grant expiry checks against the latest state (for the
/// mempool).
///
/// `pending_below(signer, expected, got)` says whether the mempool already holds every nonce
/// in `expected..got` for the signer: then a nonce ahead of the ledger's is fine, it will be
/// next once those commit.
pub fn check_stateful(
    store: &Store,
    tx: &contracts::VerifiedTx,
    height: u64,
    pending_below: impl Fn(&PublicKey, u64, u64) -> bool,
) -> Result<(), Refusal> {
    let st = read_state(store);
    // A carried grant is checked against the last committed block's time (block times strictly
    // increase, so a grant expired then is expired in any later block; execution decides with
    // its own block's time). Read only when a grant is carried: one header read.
    let last_time_ms = match tx.body.op.signed_grant() {
        Some(_) => store.header(store.tip_height()).ok().flatten().map_or(0, |h| h.time_ms),
        None => 0,
    };
    let r = match contracts::check_stateful(&st, tx, height, last_time_ms) {
        Err(contracts::TxError::NonceTooHigh { expected, got })
            if pending_below(&tx.signer, expected, got) =>
        {
            Ok(())
        }
        r => r.map_err(Refusal::Tx),
    };
    if let Some(e) = st.error.into_inner() {
        return Err(Refusal::LedgerRead(e));
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
    check_stateful(store, &u.assume_verified(None), height, pending_below)
        .map_err(|e| e.to_string())
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
/// one encoded receipt per transaction. A consensus-only chain writes nothing and gives every
/// payload an `ok` receipt (so it is indexed and can be looked up by hash).
pub fn execute_block(
    store: &Store,
    checker: &TxChecker,
    block: &Block,
) -> anyhow::Result<(WriteSet, Vec<Vec<u8>>)> {
    let mut overlay = Overlay::new(store);
    if checker.is_opaque() {
        let receipts = block
            .txs
            .iter()
            .map(|t| {
                contracts::Receipt {
                    tx_hash: Hash::digest(t),
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
    check_block_txs(&shared.checker, &block.txs)
}

/// Every transaction of a block passes the stateless checks (signatures already verified by
/// this node are not verified again) and none appears twice.
pub fn check_block_txs(checker: &TxChecker, txs: &[Vec<u8>]) -> Result<(), String> {
    match first_bad_tx(checker, txs) {
        Some((i, reason)) => Err(format!("transaction {i}: {reason}")),
        None => Ok(()),
    }
}

/// The first transaction of a block that fails the stateless checks or repeats an earlier one.
pub fn first_bad_tx(checker: &TxChecker, txs: &[Vec<u8>]) -> Option<(usize, String)> {
    let hashes: Vec<Hash> = txs.iter().map(|t| Hash::digest(t)).collect();
    // Transactions this node already checked (admitted to its mempool, say) need no decoding:
    // their hash is enough. Only the others are decoded and verified. Opaque payloads have
    // nothing to decode.
    let unknown: Vec<usize> = if checker.opaque {
        Vec::new()
    } else {
        let v = checker.verified.lock();
        (0..txs.len()).filter(|&i| !v.map.contains_key(&hashes[i])).collect()
    };
    let fresh: Vec<Vec<u8>> = unknown.iter().map(|&i| txs[i].clone()).collect();
    let mut verdicts = checker.stateless(&fresh).into_iter();
    let mut next_unknown = unknown.into_iter().peekable();
    let mut seen = HashSet::with_capacity(txs.len());
    for (i, h) in hashes.iter().enumerate() {
        if checker.opaque
            && let Err(e) = check_opaque_size(txs[i].len())
        {
            return Some((i, e.to_string()));
        }
        if next_unknown.next_if_eq(&i).is_some()
            && let Some(Err(e)) = verdicts.next()
        {
            return Some((i, e.to_string()));
        }
        if !seen.insert(*h) {
            return Some((i, "repeats an earlier one".to_owned()));
        }
    }
    None
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
    let limit = params(store).map_err(|e| e.to_string())?.encoded_max();
    let block = Block::decode(block, limit).map_err(|e| e.to_string())?;
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
    check_block_txs(&shared.checker, &block.txs)?;
    Ok((block, cert))
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
    "subjects",
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
        "subjects" => keys::PREFIX_SUBJECT,
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
        "subjects" => keys::subject(&contracts::SubjectId(id32(id)?)),
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
    let mut view = contracts::render(key, value)?;
    // An account's value is only its next nonce: name the account, so that a list item says
    // whose it is (the key is in the state key, which list items do not show).
    if let Some(account) = key.strip_prefix(keys::PREFIX_NONCE)
        && account.len() == 32
        && let Some(obj) = view.as_object_mut()
    {
        obj.insert("key".into(), json!(hex::encode(account)));
    }
    Some(view)
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

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_contracts::{Operation, Role, TransactionBody};
    use dpx_crypto::{Domain, Keypair};
    use proptest::prelude::*;

    const CHAIN: &str = "dpx-test";

    #[test]
    fn account_views_name_their_account() {
        let k = Keypair::from_seed([3; 32]).public();
        let view = render_state(&keys::nonce(&k), &5u64.to_be_bytes()).unwrap();
        assert_eq!(view, json!({ "next_nonce": 5, "key": k.to_hex() }));
        // Other kinds are untouched.
        let p = render_state(keys::PREFIX_APPROVAL, b"").unwrap();
        assert_eq!(p, json!({ "approved": true }));
    }

    fn signed(seed: u8, nonce: u64) -> Vec<u8> {
        let k = Keypair::from_seed([seed; 32]);
        let op =
            Operation::Admit { key: k.public(), name: "x".into(), roles: vec![Role::Consumer] };
        TransactionBody::new(CHAIN, nonce, op).sign(&k).encode()
    }

    /// A consumer's use of an inline grant; with `forge_grant` the subject's signature is bad
    /// (the transaction's own signature is good).
    fn grant_use(seed: u8, forge_grant: bool) -> Vec<u8> {
        use dpx_contracts::{Grant, GrantRef, ProductId, SubjectId};
        let (subject, consumer) = (Keypair::from_seed([seed; 32]), Keypair::from_seed([200; 32]));
        let product = ProductId(Hash::digest(b"product"));
        let sid = SubjectId(Hash::digest(&[seed]));
        let grant = Grant {
            serial: Hash::digest(&[seed]),
            subject: sid,
            key: subject.public(),
            epoch: 0,
            consumer: consumer.public(),
            product,
            purpose: "hiring-check".into(),
            expires_at_ms: 100,
        };
        let mut sg = grant.sign(&subject, CHAIN);
        if forge_grant {
            sg.signature = consumer.sign(Domain::GRANT, CHAIN, &sg.grant.signing_bytes());
        }
        let op = Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(sg)),
            subject: sid,
            product,
            purpose: "hiring-check".into(),
            request_hash: Hash::ZERO,
        };
        TransactionBody::new(CHAIN, u64::from(seed), op).sign(&consumer).encode()
    }

    /// The same transaction with its signature's last byte flipped.
    fn forged(seed: u8, nonce: u64) -> Vec<u8> {
        let mut tx = contracts::SignedTransaction::decode(&signed(seed, nonce)).unwrap();
        let mut sig = tx.signature.to_bytes();
        sig[0] ^= 1;
        tx.signature = dpx_crypto::Signature::from_slice(&sig).unwrap();
        tx.encode()
    }

    #[test]
    fn each_signature_is_verified_once() {
        let c = TxChecker::new(CHAIN, false, 100);
        let txs = vec![signed(1, 0), signed(2, 0), signed(3, 0)];
        assert!(c.check_batch(txs.clone()).iter().all(Result::is_ok));
        assert_eq!(c.verifications(), 3);
        // Validating the block, then executing it: no further verification.
        assert!(check_block_txs(&c, &txs).is_ok());
        let mut with_new = txs.clone();
        with_new.insert(1, forged(9, 0));
        assert_eq!(first_bad_tx(&c, &with_new).unwrap().0, 1, "an unseen bad one is found");
        assert_eq!(c.verifications(), 4);
        assert!(c.stateless(&txs).iter().all(Result::is_ok));
        assert_eq!(c.verifications(), 4);
        // A new transaction alongside cached ones: only it is verified.
        let mut more = txs.clone();
        more.push(signed(4, 0));
        assert!(c.stateless(&more).iter().all(Result::is_ok));
        assert_eq!(c.verifications(), 5);
    }

    #[test]
    fn a_bad_signature_is_never_cached() {
        let c = TxChecker::new(CHAIN, false, 100);
        let good = signed(1, 0);
        assert!(c.check_batch(vec![good]).pop().unwrap().is_ok());
        let bad = forged(1, 0);
        for _ in 0..2 {
            let r = c.stateless(std::slice::from_ref(&bad)).pop().unwrap();
            assert_eq!(r.unwrap_err(), TxError::BadSignature);
        }
        assert_eq!(c.verifications(), 3, "the forgery is checked every time");
        assert!(check_block_txs(&c, &[bad]).unwrap_err().contains("transaction 0"));
    }

    #[test]
    fn the_cache_is_bounded() {
        let c = TxChecker::new(CHAIN, false, 2);
        let txs: Vec<_> = (1..=3).map(|i| signed(i, 0)).collect();
        c.stateless(&txs);
        assert_eq!(c.verified.lock().map.len(), 2);
        c.stateless(&txs[..1]);
        assert_eq!(c.verifications(), 4, "the oldest entry was forgotten and re-verified");
    }

    #[test]
    fn duplicates_in_a_block_are_refused() {
        let c = TxChecker::new(CHAIN, false, 100);
        let t = signed(1, 0);
        assert_eq!(first_bad_tx(&c, &[t.clone(), t]).unwrap().0, 1);
        let o = TxChecker::new(CHAIN, true, 0);
        assert_eq!(first_bad_tx(&o, &[vec![7; 512], vec![7; 512]]).unwrap().0, 1);
        assert_eq!(first_bad_tx(&o, &[vec![1], Vec::new()]).unwrap().0, 1);
        assert!(first_bad_tx(&o, &[vec![1], vec![2]]).is_none());
    }

    #[test]
    fn opaque_payloads_are_pooled_in_arrival_order() {
        let c = TxChecker::new(CHAIN, true, 0);
        let r = c.check_batch(vec![vec![9; 512], Vec::new(), vec![8; 512], signed(1, 0)]);
        assert!(r[1].as_ref().unwrap_err().to_string().contains("1..="));
        let nonces: Vec<u64> = r.iter().flatten().map(|t| t.nonce).collect();
        assert_eq!(nonces, vec![0, 1, 2], "any bytes, even a signed transaction, are opaque");
        assert!(r.iter().flatten().all(|t| t.tx.is_none()));
        assert_eq!(c.verifications(), 0);
    }

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

    #[test]
    fn grant_signatures_are_batched_and_remembered_too() {
        let c = TxChecker::new(CHAIN, false, 100);
        let txs = vec![grant_use(1, false), grant_use(2, true)];
        let r = c.stateless(&txs);
        assert_eq!(r[0].as_ref().unwrap().grant_signature, Some(true));
        assert_eq!(r[1].as_ref().unwrap().grant_signature, Some(false), "refused at execution");
        assert_eq!(c.verifications(), 4);
        assert_eq!(c.stateless(&txs), r);
        assert_eq!(c.verifications(), 4);
    }

    /// A grant use whose subject (the attacker here) signed with torsion component `t` in `R`.
    fn grant_use_with_torsion_r(seed: u8, t: usize) -> Vec<u8> {
        let mut tx = contracts::SignedTransaction::decode(&grant_use(seed, false)).unwrap();
        let body = contracts::TransactionBody::decode(&tx.body).unwrap();
        let Operation::UseGrant {
            grant: contracts::GrantRef::Inline(mut sg),
            subject: sid,
            product,
            purpose,
            request_hash,
        } = body.op
        else {
            unreachable!("grant_use builds an inline use")
        };
        let subject = Keypair::from_seed([seed; 32]);
        let digest = sg.signing_digest(CHAIN);
        sg.signature = dpx_crypto::testing::sign_with_torsion_r(&subject, &digest, t, 0);
        let op = Operation::UseGrant {
            grant: contracts::GrantRef::Inline(sg),
            subject: sid,
            product,
            purpose,
            request_hash,
        };
        tx = TransactionBody::new(CHAIN, body.nonce, op).sign(&Keypair::from_seed([200; 32]));
        tx.encode()
    }

    /// Two nodes that meet the same crafted grant signature in different company (an RPC batch
    /// on one, a relayed batch or a proposal on the other) give it the same verdict, which is
    /// what execution then carries into the receipt. With a cofactorless batch equation the
    /// verdict depended on the company (a chain split).
    #[test]
    fn crafted_grant_signatures_get_one_verdict_whatever_the_batch() {
        for t in 1..8 {
            for seed in 1..=12u8 {
                let crafted = grant_use_with_torsion_r(seed, t);
                let company = vec![grant_use(seed + 100, false), signed(seed, 0)];
                let alone = TxChecker::new(CHAIN, false, 100);
                let batched = TxChecker::new(CHAIN, false, 100);
                let proposal = TxChecker::new(CHAIN, false, 100);
                let a = alone.check_batch(vec![crafted.clone()]);
                let mut in_batch = company.clone();
                in_batch.insert(1, crafted.clone());
                let b = batched.check_batch(in_batch);
                assert!(a[0].is_ok() && b[1].is_ok(), "the transaction's own signature is good");
                let mut block = company.clone();
                block.push(crafted.clone());
                let verdicts: Vec<_> = [&alone, &batched, &proposal]
                    .iter()
                    .map(|c| c.stateless(&block).pop().unwrap().unwrap().grant_signature)
                    .collect();
                assert_eq!(verdicts, vec![Some(false); 3], "torsion {t}, seed {seed}");
            }
        }
    }

    proptest! {
        /// Cached, batched checking gives exactly `contracts::check_stateless`'s answers, on
        /// first sight and again from the cache.
        #[test]
        fn same_verdicts_as_the_contracts(kinds in proptest::collection::vec(0u8..5, 1..12)) {
            let c = TxChecker::new(CHAIN, false, 1000);
            let txs: Vec<Vec<u8>> = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| match k {
                    0 => signed(i as u8 + 1, 0),
                    1 => forged(i as u8 + 1, 0),
                    2 => grant_use(i as u8 + 1, false),
                    3 => grant_use(i as u8 + 1, true),
                    _ => vec![i as u8; 40],
                })
                .collect();
            let expected: Vec<_> =
                txs.iter().map(|t| contracts::check_stateless(t, CHAIN)).collect();
            prop_assert_eq!(&c.stateless(&txs), &expected);
            prop_assert_eq!(&c.stateless(&txs), &expected);
        }
    }
}
