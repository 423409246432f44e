//! The mempool: transactions admitted but not yet committed.
//!
//! Bounded by count and bytes, and per signer by count (one key cannot fill the pool and
//! crowd everyone else out); deduplicated by transaction hash; one transaction per
//! (account, nonce). Reaping yields each account's transactions in nonce order, accounts
//! interleaved by arrival, so a block never holds a nonce gap the proposer created itself.
//! Signature checks happen before admission (batched, off the async threads): everything in
//! here has a valid signature.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;
use std::time::Instant;

use dpx_app::admit::Refusal;
use dpx_crypto::{Hash, PublicKey};
use prometheus_client::metrics::counter::Counter;

/// Load shedding's rank (`mempool.shed_wait_ms`): the wait of the transaction this many
/// places from the front of the pool. Not the oldest's, so a few transactions that linger (a
/// peer's relay only this node holds, waiting for its next proposal) cannot close the door;
/// a node that cannot keep up has thousands waiting.
pub const SHED_RANK: usize = 64;

/// One admitted transaction.
#[derive(Debug, Clone)]
pub struct PoolTx {
    pub hash: Hash,
    pub bytes: Arc<Vec<u8>>,
    pub signer: PublicKey,
    pub nonce: u64,
    pub expiry_height: Option<u64>,
    pub admitted: Instant,
}

/// Why a transaction was not admitted or was evicted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("transaction {0} is already in the mempool")]
    Duplicate(Hash),
    #[error("account already has a pending transaction with nonce {nonce}")]
    NonceTaken { nonce: u64 },
    #[error("mempool is full ({count} transactions, {bytes} bytes)")]
    Full { count: usize, bytes: usize },
    #[error("the signer already has {pending} pending transactions (the most one signer may have)")]
    SignerFull { pending: usize },
}

/// What admission did with a transaction that was not refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// In this node's mempool (just now, or already before: resubmission is idempotent).
    Pending(Hash),
    /// Already committed: nothing to do, the receipt is on the ledger.
    Committed(Hash),
}

impl Admitted {
    pub fn hash(&self) -> Hash {
        match self {
            Self::Pending(h) | Self::Committed(h) => *h,
        }
    }
}

impl MempoolError {
    /// The refusal a failed insert means; `None` for a duplicate, which is no refusal (the
    /// transaction is pending).
    pub fn refusal(self) -> Option<Refusal> {
        match self {
            Self::Duplicate(_) => None,
            Self::NonceTaken { nonce } => Some(Refusal::NonceTaken { nonce }),
            Self::Full { count, bytes } => Some(Refusal::MempoolFull { count, bytes }),
            Self::SignerFull { pending } => Some(Refusal::SignerQuota { pending }),
        }
    }
}

/// Limits of the pool.
#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Pending transactions one signer may have (`usize::MAX` for a consensus-only chain,
    /// whose opaque payloads all pool under one pseudo-account).
    pub max_txs_per_signer: usize,
}

#[derive(Debug)]
struct Slot {
    tx: PoolTx,
    seq: u64,
}

/// The pool itself; owned by the consensus driver, so no locking inside.
#[derive(Debug)]
pub struct Mempool {
    limits: MempoolLimits,
    by_hash: BTreeMap<Hash, (PublicKey, u64)>,
    by_account: BTreeMap<PublicKey, BTreeMap<u64, Slot>>,
    /// Admission order → when admitted: the oldest waiting transaction is the first entry.
    by_seq: BTreeMap<u64, Instant>,
    bytes: usize,
    next_seq: u64,
    /// Counts refusals because a signer had `max_txs_per_signer` pending.
    signer_full: Counter,
}

impl Mempool {
    pub fn new(limits: MempoolLimits) -> Self {
        Self {
            limits,
            by_hash: BTreeMap::new(),
            by_account: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
            signer_full: Counter::default(),
        }
    }

    /// Count per-signer refusals in `counter` (the node's metric).
    #[must_use]
    pub fn counting_signer_refusals(mut self, counter: Counter) -> Self {
        self.signer_full = counter;
        self
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The pooled transaction `hash`, if any.
    pub fn get(&self, hash: &Hash) -> Option<&PoolTx> {
        let (signer, nonce) = self.by_hash.get(hash)?;
        self.by_account.get(signer)?.get(nonce).map(|slot| &slot.tx)
    }

    /// Admit `tx`, or say why not. Never grows past the limits.
    pub fn insert(&mut self, tx: PoolTx) -> Result<(), MempoolError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(MempoolError::Duplicate(tx.hash));
        }
        let pending = self.by_account.get(&tx.signer);
        if pending.is_some_and(|m| m.contains_key(&tx.nonce)) {
            return Err(MempoolError::NonceTaken { nonce: tx.nonce });
        }
        let pending = pending.map_or(0, BTreeMap::len);
        if pending >= self.limits.max_txs_per_signer {
            self.signer_full.inc();
            return Err(MempoolError::SignerFull { pending });
        }
        if self.len() + 1 > self.limits.max_txs
            || self.bytes + tx.bytes.len() > self.limits.max_bytes
        {
            return Err(MempoolError::Full { count: self.len(), bytes: self.bytes });
        }
        self.bytes += tx.bytes.len();
        self.by_hash.insert(tx.hash, (tx.signer, tx.nonce));
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, tx.admitted);
        self.by_account.entry(tx.signer).or_default().insert(tx.nonce, Slot { tx, seq });
        Ok(())
    }

    /// Whether the mempool holds every nonce in `from..to` for `signer`.
    pub fn has_nonces(&self, signer: &PublicKey, from: u64, to: u64) -> bool {
        let Some(m) = self.by_account.get(signer) else { return from >= to };
        (to - from) as usize <= m.len() && (from..to).all(|n| m.contains_key(&n))
    }

    /// Remove one transaction (committed, or evicted by a recheck).
    pub fn remove(&mut self, hash: &Hash) -> Option<PoolTx> {
        let (signer, nonce) = self.by_hash.remove(hash)?;
        let txs = self.by_account.get_mut(&signer)?;
        let slot = txs.remove(&nonce)?;
        if txs.is_empty() {
            self.by_account.remove(&signer);
        }
        self.by_seq.remove(&slot.seq);
        self.bytes -= slot.tx.bytes.len();
        Some(slot.tx)
    }

    /// When the `rank`-th longest-waiting transaction was admitted (1: the oldest; `None`:
    /// fewer are pooled). How long it has waited is the pool's queueing delay, as admission
    /// control sheds by it (a rank above 1, so a few stragglers do not count).
    pub fn admitted_at_rank(&self, rank: usize) -> Option<Instant> {
        self.by_seq.values().nth(rank.checked_sub(1)?).copied()
    }

    /// Up to `max_count` transactions and `max_bytes` bytes for a block: each account's in
    /// nonce order, accounts interleaved by the arrival of their next transaction.
    pub fn reap(&self, max_bytes: usize, max_count: usize) -> Vec<PoolTx> {
        let mut iters: BTreeMap<&PublicKey, std::collections::btree_map::Values<'_, u64, Slot>> =
            self.by_account.iter().map(|(k, m)| (k, m.values())).collect();
        let mut heap = BinaryHeap::new();
        for (k, it) in &mut iters {
            if let Some(s) = it.next() {
                heap.push(Reverse((s.seq, *k, s)));
            }
        }
        let (mut out, mut bytes) = (Vec::new(), 0usize);
        while let Some(Reverse((_, k, slot))) = heap.pop() {
            if out.len() >= max_count {
                break;
            }
            if bytes + slot.tx.bytes.len() > max_bytes {
                // The account's later nonces cannot go without this one: skip the account.
                continue;
            }
            bytes += slot.tx.bytes.len();
            out.push(slot.tx.clone());
            if let Some(next) = iters.get_mut(k).and_then(Iterator::next) {
                heap.push(Reverse((next.seq, k, next)));
            }
        }
        out
    }

    /// Drop every transaction `still_valid` refuses; returns the evicted with their reasons.
    /// Drop transactions that expire before `height` (no decoding, no state reads).
    pub fn evict_expired(&mut self, height: u64) -> Vec<Hash> {
        let expired: Vec<Hash> = self
            .by_account
            .values()
            .flat_map(BTreeMap::values)
            .filter(|s| s.tx.expiry_height.is_some_and(|e| e < height))
            .map(|s| s.tx.hash)
            .collect();
        for h in &expired {
            self.remove(h);
        }
        expired
    }

    /// Re-check the given accounts' pooled transactions; evict (with the reason) those that
    /// `still_valid` refuses.
    pub fn recheck_accounts(
        &mut self,
        accounts: &std::collections::BTreeSet<PublicKey>,
        mut still_valid: impl FnMut(&Self, &PoolTx) -> Result<(), String>,
    ) -> Vec<(Hash, String)> {
        let mut evicted = Vec::new();
        for a in accounts {
            for slot in self.by_account.get(a).into_iter().flat_map(BTreeMap::values) {
                if let Err(reason) = still_valid(self, &slot.tx) {
                    evicted.push((slot.tx.hash, reason));
                }
            }
        }
        for (h, _) in &evicted {
            self.remove(h);
        }
        evicted
    }
}

impl PartialEq for Slot {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
    }
}
impl Eq for Slot {}
impl PartialOrd for Slot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Slot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.seq.cmp(&other.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    fn tx(key: u8, nonce: u64, len: usize) -> PoolTx {
        let bytes = vec![key; len];
        let mut b = bytes.clone();
        b.extend(nonce.to_le_bytes());
        PoolTx {
            hash: Hash::digest(&b),
            bytes: Arc::new(bytes),
            signer: Keypair::from_seed([key; 32]).public(),
            nonce,
            expiry_height: None,
            admitted: Instant::now(),
        }
    }

    fn pool(max_txs: usize, max_bytes: usize) -> Mempool {
        Mempool::new(MempoolLimits { max_txs, max_bytes, max_txs_per_signer: usize::MAX })
    }

    #[test]
    fn one_signer_cannot_fill_the_pool() {
        let limits = MempoolLimits { max_txs: 100, max_bytes: 1 << 20, max_txs_per_signer: 3 };
        let refused = Counter::default();
        let mut p = Mempool::new(limits).counting_signer_refusals(refused.clone());
        for n in 0..3 {
            p.insert(tx(1, n, 10)).unwrap();
        }
        assert_eq!(p.insert(tx(1, 3, 10)), Err(MempoolError::SignerFull { pending: 3 }));
        assert_eq!(p.insert(tx(1, 4, 10)), Err(MempoolError::SignerFull { pending: 3 }));
        assert_eq!(refused.get(), 2, "each refusal counted");
        // Other signers are unaffected; a committed transaction frees its signer's slot.
        p.insert(tx(2, 0, 10)).unwrap();
        assert!(p.remove(&tx(1, 0, 10).hash).is_some());
        p.insert(tx(1, 3, 10)).unwrap();
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn targeted_recheck_and_expiry_touch_only_their_transactions() {
        let mut p = pool(100, 1 << 20);
        let (a, b) = (tx(1, 0, 10), tx(2, 0, 10));
        let mut c = tx(3, 0, 10);
        c.expiry_height = Some(5);
        for t in [a.clone(), b.clone(), c.clone()] {
            p.insert(t).unwrap();
        }
        let only_a = [a.signer].into_iter().collect();
        let evicted = p.recheck_accounts(&only_a, |_, _| Err("stale".into()));
        assert_eq!(evicted, vec![(a.hash, "stale".to_owned())]);
        assert!(p.contains(&b.hash) && p.contains(&c.hash));
        assert!(p.evict_expired(5).is_empty(), "valid through its expiry height");
        assert_eq!(p.evict_expired(6), vec![c.hash]);
        assert_eq!(p.len(), 1);
    }

    /// The oldest admitted transaction still waiting is known, whatever leaves the pool and
    /// in whatever order (committed, evicted by a recheck or by expiry).
    #[test]
    fn the_oldest_waiting_transaction_follows_removals() {
        let mut p = pool(100, 1 << 20);
        assert_eq!(p.admitted_at_rank(1), None);
        let t0 = Instant::now();
        let at = |ms| t0 + std::time::Duration::from_millis(ms);
        let mut txs = Vec::new();
        for (i, ms) in [(1u8, 0), (2, 10), (3, 20)] {
            let mut t = tx(i, 0, 10);
            t.admitted = at(ms);
            p.insert(t.clone()).unwrap();
            txs.push(t);
        }
        // A refused insert leaves no trace.
        assert!(p.insert(txs[0].clone()).is_err());
        assert_eq!(p.admitted_at_rank(1), Some(at(0)));
        assert_eq!(p.admitted_at_rank(3), Some(at(20)));
        assert_eq!(p.admitted_at_rank(4), None, "fewer are pooled");
        p.remove(&txs[1].hash);
        assert_eq!(p.admitted_at_rank(1), Some(at(0)), "a younger one leaving changes nothing");
        p.remove(&txs[0].hash);
        assert_eq!(p.admitted_at_rank(1), Some(at(20)));
        let only = [txs[2].signer].into_iter().collect();
        p.recheck_accounts(&only, |_, _| Err("stale".into()));
        assert_eq!(p.admitted_at_rank(1), None);
        assert!(p.is_empty());
        assert_eq!(p.admitted_at_rank(0), None);
    }

    /// Each way an insert fails is its own refusal; a duplicate is none (it is pending).
    #[test]
    fn failed_inserts_become_distinct_refusals() {
        let limits = MempoolLimits { max_txs: 2, max_bytes: 1 << 20, max_txs_per_signer: 1 };
        let mut p = Mempool::new(limits);
        let a = tx(1, 0, 10);
        p.insert(a.clone()).unwrap();
        let dup = p.insert(a.clone()).unwrap_err();
        assert_eq!(dup.refusal(), None);
        let taken = p.insert(tx(1, 0, 11)).unwrap_err().refusal();
        assert_eq!(taken, Some(Refusal::NonceTaken { nonce: 0 }));
        let quota = p.insert(tx(1, 1, 10)).unwrap_err().refusal();
        assert_eq!(quota, Some(Refusal::SignerQuota { pending: 1 }));
        p.insert(tx(2, 0, 10)).unwrap();
        let full = p.insert(tx(3, 0, 10)).unwrap_err().refusal();
        assert_eq!(full, Some(Refusal::MempoolFull { count: 2, bytes: 20 }));
        // The messages stay those of the pool's own errors (clients of old read them).
        assert_eq!(
            Refusal::MempoolFull { count: 2, bytes: 20 }.to_string(),
            MempoolError::Full { count: 2, bytes: 20 }.to_string()
        );
    }

    #[test]
    fn dedup_and_limits() {
        let mut p = pool(2, 100);
        let a = tx(1, 0, 10);
        p.insert(a.clone()).unwrap();
        assert_eq!(p.insert(a.clone()), Err(MempoolError::Duplicate(a.hash)));
        assert_eq!(p.insert(tx(1, 0, 11)), Err(MempoolError::NonceTaken { nonce: 0 }));
        assert!(matches!(p.insert(tx(2, 0, 95)), Err(MempoolError::Full { .. })));
        p.insert(tx(2, 0, 10)).unwrap();
        assert!(matches!(p.insert(tx(3, 0, 1)), Err(MempoolError::Full { .. })));
        assert_eq!((p.len(), p.bytes()), (2, 20));
        assert!(p.has_nonces(&a.signer, 0, 1));
        assert!(!p.has_nonces(&a.signer, 0, 2));
        assert!(p.remove(&a.hash).is_some());
        assert_eq!((p.len(), p.bytes()), (1, 10));
    }

    #[test]
    fn reap_keeps_nonce_order_and_limits() {
        let mut p = pool(100, 10_000);
        // Arrival: account 1 nonce 2, account 2 nonce 0, account 1 nonce 1.
        p.insert(tx(1, 2, 10)).unwrap();
        p.insert(tx(2, 0, 10)).unwrap();
        p.insert(tx(1, 1, 10)).unwrap();
        let got: Vec<(u8, u64)> = p.reap(1000, 100).iter().map(|t| (t.bytes[0], t.nonce)).collect();
        // Account 1's head is nonce 1 (arrived third), account 2's head arrived second.
        assert_eq!(got, vec![(2, 0), (1, 1), (1, 2)]);
        assert_eq!(p.reap(1000, 2).len(), 2);
        assert_eq!(p.reap(15, 100).len(), 1);
    }

    #[test]
    fn recheck_evicts_with_reason() {
        let mut p = pool(100, 10_000);
        p.insert(tx(1, 0, 10)).unwrap();
        p.insert(tx(2, 5, 10)).unwrap();
        let both = [tx(1, 0, 10).signer, tx(2, 5, 10).signer].into_iter().collect();
        let ev = p.recheck_accounts(&both, |_, t| {
            if t.nonce == 5 { Err("stale nonce".into()) } else { Ok(()) }
        });
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].1, "stale nonce");
        assert_eq!(p.len(), 1);
    }
}
