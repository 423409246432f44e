//! Admission: the checks a transaction passes before it enters a mempool — stateless (format,
//! chain id, signatures; [`TxChecker`], which remembers what it verified so each signature is
//! verified once per node) and stateful against the latest state ([`check_stateful`]: nonce,
//! expiry, signer, a carried grant's expiry).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use dpx_contracts::{self as contracts, TxError};
use dpx_crypto::{Hash, PublicKey, verify_each};
use parking_lot::Mutex;

mod stateful;
#[cfg(test)]
pub(crate) mod tests;

pub use stateful::{check_stateful, check_stateful_pool};

/// Why a transaction was not admitted to this node's mempool: the stateless checks (format,
/// chain, signature), the stateful ones (nonce, expiry, signer) or the pool's own limits. One
/// variant per cause, so the RPC can give each its own stable error code; the messages are the
/// same text as the underlying errors'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Refused by the contracts' checks.
    #[error("{0}")]
    Tx(#[from] dpx_contracts::TxError),
    /// An opaque payload (consensus-only chain) of a size outside `1..=max`.
    #[error("a payload must be 1..={max} bytes, not {len}")]
    PayloadSize { len: usize, max: usize },
    /// Another transaction of the signer with this nonce is pending.
    #[error("account already has a pending transaction with nonce {nonce}")]
    NonceTaken { nonce: u64 },
    #[error("mempool is full ({count} transactions, {bytes} bytes)")]
    MempoolFull { count: usize, bytes: usize },
    #[error("the signer already has {pending} pending transactions (the most one signer may have)")]
    SignerQuota { pending: usize },
    /// The node could not read its own state to check the transaction.
    #[error("ledger read failed: {0}")]
    LedgerRead(String),
}

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
pub(crate) fn check_opaque_size(len: usize) -> Result<(), Refusal> {
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

    /// The chain whose transactions this checker accepts.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The positions of `hashes` whose transactions this checker has not verified (none on a
    /// consensus-only chain: its payloads are never verified).
    pub(crate) fn unverified(&self, hashes: &[Hash]) -> Vec<usize> {
        if self.opaque {
            return Vec::new();
        }
        let v = self.verified.lock();
        (0..hashes.len()).filter(|&i| !v.map.contains_key(&hashes[i])).collect()
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
