//! The proposal block cache: which blocks a node keeps while a height is being decided.
//!
//! A block travels beside its proposal, not inside it, and anyone permitted to connect can send
//! a decodable block. So a block earns a place only when a **signed proposal from its round's
//! proposer names it** (the core checked signer and signature before asking us to validate the
//! value), or when it is our own. Those are the *named* blocks, and nothing a peer sends can
//! push one out.
//!
//! The proposer sends its block just before its proposal, so a block usually arrives first.
//! Such blocks wait in a small *pending* area, kept per sending peer and bounded per peer and
//! in total, by count and by bytes. A peer that floods it only pushes out its own older
//! blocks; when the total is full the peer holding the most bytes loses its oldest block. A
//! pending block becomes named the moment a proposal names it; one that is pushed out is sent
//! again by its proposer's re-broadcast, and then goes straight to the named blocks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, OnceLock};

use dpx_app::execute::params;
use dpx_consensus::Round;
use dpx_crypto::Hash;
use dpx_ledger::{Block, TxHashes};
use libp2p::PeerId;
use tracing::debug;

use super::Driver;
use crate::wire;

/// A block with the parent certificate that travels with it, its transactions' hashes (made
/// once, when the block arrives, and checked against its header before it is cached; used by
/// validation, execution and the commit) and its two wire forms made once, when first needed:
/// the whole encoding (a block rebuilt from a compact one is encoded only if it is ever sent
/// whole) and the compact form.
#[derive(Debug, Clone)]
pub(super) struct CachedBlock {
    /// Shared with the execution worker while the block is speculated on.
    pub block: Arc<Block>,
    pub hashes: Arc<TxHashes>,
    /// The parent's certificate that the header names.
    pub parent_cert: Arc<Vec<u8>>,
    encoded: Arc<OnceLock<Vec<u8>>>,
    encoded_len: usize,
    compact: Arc<OnceLock<wire::CompactBlock>>,
}

impl CachedBlock {
    /// A block decoded from `bytes` (its canonical encoding), with its transactions' hashes.
    pub fn decoded(block: Block, hashes: TxHashes, bytes: Vec<u8>, parent_cert: Vec<u8>) -> Self {
        let encoded_len = bytes.len();
        Self {
            block: Arc::new(block),
            hashes: Arc::new(hashes),
            parent_cert: Arc::new(parent_cert),
            encoded: Arc::new(OnceLock::from(bytes)),
            encoded_len,
            compact: Arc::new(OnceLock::new()),
        }
    }

    /// A block built here (our proposal, or one rebuilt from a compact block), with its
    /// transactions' hashes.
    pub fn built(block: Block, hashes: TxHashes, parent_cert: Vec<u8>) -> Self {
        Self {
            encoded_len: block.encoded_len(),
            block: Arc::new(block),
            hashes: Arc::new(hashes),
            parent_cert: Arc::new(parent_cert),
            encoded: Arc::new(OnceLock::new()),
            compact: Arc::new(OnceLock::new()),
        }
    }

    /// Our proposal's block with the compact form we chose (which transactions go inline).
    pub fn with_compact(self, compact: wire::CompactBlock) -> Self {
        let _ = self.compact.set(compact);
        self
    }

    /// The canonical encoding.
    pub fn bytes(&self) -> &[u8] {
        self.encoded.get_or_init(|| self.block.encode())
    }

    /// The compact form (every transaction by hash unless the proposer chose otherwise).
    pub fn compact(&self) -> &wire::CompactBlock {
        self.compact
            .get_or_init(|| super::compact::encode(&self.block, &self.parent_cert, |_| None))
    }

    fn size(&self) -> usize {
        self.encoded_len + self.parent_cert.len()
    }

    fn height(&self) -> u64 {
        self.block.header.height
    }
}

/// Named blocks kept at once. Only an equivocating proposer names more than one value per
/// round (the core keeps at most `proposals_per_round_max` of them); past this, the block of
/// the oldest round goes first, never the locked or valid value.
const NAMED_MAX: usize = 64;
/// Value ids that proposals named and whose block has not arrived.
const WANTED_MAX: usize = 256;
/// Pending blocks per sending peer.
const PENDING_PER_PEER_MAX: usize = 4;
/// Pending blocks in all.
const PENDING_MAX: usize = 32;
/// Pending bytes per peer and in all, in largest encoded blocks (so one full block always fits).
const PENDING_PER_PEER_BLOCKS_OF_BYTES: usize = 2;
const PENDING_BLOCKS_OF_BYTES: usize = 8;

/// What became of a block a peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Offered {
    /// A proposal names it: kept, and waiting validations can go on.
    Named,
    /// Held until a proposal names it; `evicted` older pending blocks were dropped for it.
    Pending { evicted: usize },
    /// Already held.
    Duplicate,
    /// Larger than a peer's whole pending allowance.
    TooLarge,
}

#[derive(Debug)]
struct Named {
    cb: CachedBlock,
    /// The latest round a proposal named it in (a valid value is proposed again later).
    round: Round,
}

/// See the module docs.
#[derive(Debug)]
pub(super) struct BlockCache {
    named: BTreeMap<Hash, Named>,
    /// Value id → (height, latest round) of the proposals naming it.
    wanted: BTreeMap<Hash, (u64, Round)>,
    pending: BTreeMap<PeerId, VecDeque<(Hash, CachedBlock)>>,
    pending_count: usize,
    pending_bytes: usize,
}

impl BlockCache {
    pub fn new() -> Self {
        Self {
            named: BTreeMap::new(),
            wanted: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_count: 0,
            pending_bytes: 0,
        }
    }

    /// A named block, ready to validate or commit. Pending blocks are not handed out.
    pub fn get(&self, id: &Hash) -> Option<&CachedBlock> {
        self.named.get(id).map(|n| &n.cb)
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.named.contains_key(id)
    }

    /// Named or pending.
    pub fn holds(&self, id: &Hash) -> bool {
        self.named.contains_key(id) || self.pending_has(id)
    }

    /// Whether a verified proposal names `id` and its block has not arrived.
    pub fn is_wanted(&self, id: &Hash) -> bool {
        self.wanted.contains_key(id)
    }

    pub fn remove(&mut self, id: &Hash) -> Option<CachedBlock> {
        self.named.remove(id).map(|n| n.cb)
    }

    /// Our own block (or the one we proposed before a restart): named by definition.
    pub fn insert_own(&mut self, id: Hash, cb: CachedBlock, round: Round, protect: &[Hash]) {
        self.wanted.remove(&id);
        self.insert_named(id, cb, round, protect);
    }

    /// A verified proposal of `(height, round)` names `id`. Returns whether its block is now
    /// held (a pending one is promoted); if not, the block is taken when it arrives.
    pub fn want(&mut self, id: Hash, height: u64, round: Round, protect: &[Hash]) -> bool {
        if let Some(n) = self.named.get_mut(&id) {
            n.round = n.round.max(round);
            return true;
        }
        if let Some(cb) = self.take_pending(&id) {
            self.insert_named(id, cb, round, protect);
            return true;
        }
        let entry = self.wanted.entry(id).or_insert((height, round));
        entry.1 = entry.1.max(round);
        if self.wanted.len() > WANTED_MAX {
            // The oldest (height, round) goes; the core re-asks on a new proposal anyway.
            if let Some(oldest) = self.wanted.iter().min_by_key(|(_, hr)| **hr).map(|(k, _)| *k) {
                self.wanted.remove(&oldest);
            }
        }
        false
    }

    /// A block from `from`, already decoded and checked to be for the current or next height.
    /// `block_bytes_max` is the largest encoded block the chain allows now.
    pub fn offer(
        &mut self,
        from: PeerId,
        id: Hash,
        cb: CachedBlock,
        block_bytes_max: usize,
        protect: &[Hash],
    ) -> Offered {
        if self.named.contains_key(&id) || self.pending_has(&id) {
            return Offered::Duplicate;
        }
        if let Some((_, round)) = self.wanted.remove(&id) {
            self.insert_named(id, cb, round, protect);
            return Offered::Named;
        }
        let per_peer_bytes = block_bytes_max.saturating_mul(PENDING_PER_PEER_BLOCKS_OF_BYTES);
        let total_bytes = block_bytes_max.saturating_mul(PENDING_BLOCKS_OF_BYTES);
        let size = cb.size();
        if size > per_peer_bytes {
            return Offered::TooLarge;
        }
        self.pending_count += 1;
        self.pending_bytes += size;
        let queue = self.pending.entry(from).or_default();
        queue.push_back((id, cb));
        let mut evicted = 0;
        // The sender's own allowance first: a flood only pushes out the flooder's blocks.
        while queue.len() > PENDING_PER_PEER_MAX
            || queue.iter().map(|(_, c)| c.size()).sum::<usize>() > per_peer_bytes
        {
            let Some((_, old)) = queue.pop_front() else { break };
            self.pending_count -= 1;
            self.pending_bytes -= old.size();
            evicted += 1;
        }
        while self.pending_count > PENDING_MAX || self.pending_bytes > total_bytes {
            let Some(heaviest) = self.heaviest_pending_peer() else { break };
            self.evict_oldest_of(&heaviest);
            evicted += 1;
        }
        self.pending.retain(|_, q| !q.is_empty());
        Offered::Pending { evicted }
    }

    /// Forget everything at or below the committed `height`. Returns how many pending blocks
    /// were dropped without any proposal ever naming them.
    pub fn prune(&mut self, height: u64) -> usize {
        self.named.retain(|_, n| n.cb.height() > height);
        self.wanted.retain(|_, (h, _)| *h > height);
        let mut dropped = 0;
        for q in self.pending.values_mut() {
            let before = q.len();
            q.retain(|(_, c)| c.height() > height);
            dropped += before - q.len();
        }
        self.pending.retain(|_, q| !q.is_empty());
        self.recount();
        dropped
    }

    fn insert_named(&mut self, id: Hash, cb: CachedBlock, round: Round, protect: &[Hash]) {
        while self.named.len() >= NAMED_MAX {
            let victim = self
                .named
                .iter()
                .filter(|(k, _)| !protect.contains(k))
                .min_by_key(|(_, n)| (n.cb.height(), n.round))
                .map(|(k, _)| *k);
            match victim {
                Some(k) => {
                    self.named.remove(&k);
                }
                None => break,
            }
        }
        self.named.insert(id, Named { cb, round });
    }

    fn pending_has(&self, id: &Hash) -> bool {
        self.pending.values().any(|q| q.iter().any(|(k, _)| k == id))
    }

    fn take_pending(&mut self, id: &Hash) -> Option<CachedBlock> {
        let mut found = None;
        for q in self.pending.values_mut() {
            if let Some(i) = q.iter().position(|(k, _)| k == id) {
                found = q.remove(i).map(|(_, cb)| cb);
                break;
            }
        }
        self.pending.retain(|_, q| !q.is_empty());
        if found.is_some() {
            self.recount();
        }
        found
    }

    /// The peer with the most pending bytes (ties: the most blocks, then peer order).
    fn heaviest_pending_peer(&self) -> Option<PeerId> {
        self.pending
            .iter()
            .max_by_key(|(_, q)| (q.iter().map(|(_, c)| c.size()).sum::<usize>(), q.len()))
            .map(|(p, _)| *p)
    }

    fn evict_oldest_of(&mut self, peer: &PeerId) {
        if let Some(q) = self.pending.get_mut(peer)
            && let Some((_, old)) = q.pop_front()
        {
            self.pending_count -= 1;
            self.pending_bytes -= old.size();
        }
    }

    fn recount(&mut self) {
        self.pending_count = self.pending.values().map(VecDeque::len).sum();
        self.pending_bytes = self.pending.values().flatten().map(|(_, c)| c.size()).sum();
    }

    #[cfg(test)]
    fn pending_totals(&self) -> (usize, usize) {
        (self.pending_count, self.pending_bytes)
    }
}

/// Whether `cert` is the parent certificate `header` names: none for the first block, else
/// one of at most the largest certificate's size whose hash the header carries.
pub(super) fn names_its_parent_certificate(header: &dpx_ledger::Header, cert: &[u8]) -> bool {
    if header.parent_certificate_hash == Hash::ZERO {
        cert.is_empty()
    } else {
        cert.len() <= dpx_consensus::MAX_CERTIFICATE_BYTES
            && Hash::digest(cert) == header.parent_certificate_hash
    }
}

impl Driver {
    /// A block from `from`, sent beside a proposal. Kept only as the module docs say.
    pub(super) fn on_block(
        &mut self,
        from: PeerId,
        bytes: Vec<u8>,
        parent_cert: Vec<u8>,
    ) -> anyhow::Result<()> {
        let metrics = &self.shared.metrics;
        // The chain's current limits (governance can change them).
        let limit = params(&self.store)?.encoded_max();
        let Ok(block) = Block::decode(&bytes, limit) else {
            debug!(peer = %from, "undecodable proposal block");
            metrics.proposal_blocks_refused.inc();
            return Ok(());
        };
        let h = block.header.height;
        if h < self.height() || h > self.height() + 1 {
            metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        // The id is the header's hash: only the tx_root ties the transactions to it. Checked
        // before the block takes the id's place in the cache, or a peer could send the right
        // header with other transactions first and have the real block dropped as a
        // duplicate (the proposal would then fail validation here). The hashes made for it
        // are the ones every later step uses.
        let hashes = match TxHashes::of_block(&block) {
            Ok(h) => h,
            Err(e) => {
                debug!(peer = %from, error = %e, "proposal block does not match its header");
                metrics.proposal_blocks_refused.inc();
                return Ok(());
            }
        };
        let id = block.id();
        let cb = CachedBlock::decoded(block, hashes, bytes, parent_cert);
        self.accept_block(from, id, cb, limit)
    }

    /// A block a peer sent, whole or rebuilt from its compact form: kept as the module docs
    /// say, and validations or a decision that waited for it go on. `limit` is the largest
    /// encoded block the chain allows now.
    pub(super) fn accept_block(
        &mut self,
        from: PeerId,
        id: Hash,
        cb: CachedBlock,
        limit: usize,
    ) -> anyhow::Result<()> {
        let metrics = &self.shared.metrics;
        let h = cb.height();
        // The header names the parent certificate by hash: a copy carrying another one must
        // not take the id's place either (the commit stores the certificate that travelled
        // with the block).
        if !names_its_parent_certificate(&cb.block.header, &cb.parent_cert) {
            debug!(peer = %from, "proposal block with a parent certificate its header does not name");
            metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        let protect = self.protected_values();
        match self.blocks.offer(from, id, cb, limit, &protect) {
            Offered::Named => {}
            Offered::Duplicate => return Ok(()),
            Offered::TooLarge => {
                metrics.proposal_blocks_refused.inc();
                return Ok(());
            }
            Offered::Pending { evicted } => {
                metrics.proposal_blocks_evicted.inc_by(evicted as u64);
                return Ok(());
            }
        }
        // Answer validations that waited for this block.
        let waiting: Vec<_> = self.awaiting_block.iter().filter(|w| w.2 == id).copied().collect();
        self.awaiting_block.retain(|w| w.2 != id);
        for (height, round, value_id) in waiting {
            self.validate(height, round, value_id)?;
        }
        if let Some((height, value_id, _)) = &self.pending_decision
            && *value_id == id
            && height.0 == h
            && let Some((_, _, cert)) = self.pending_decision.take()
        {
            self.commit(id, &cert)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    const MAX: usize = 10_000;

    /// A decodable block of `txs` at `height` with a made-up header (the tx root is right).
    pub(in crate::driver) fn test_block(height: u64, txs: Vec<Vec<u8>>) -> Block {
        crate::testing::made_up_block(height, txs)
    }

    fn block(height: u64, n: u32, pad: usize) -> (Hash, CachedBlock) {
        let block = test_block(height, vec![[n.to_le_bytes().to_vec(), vec![0; pad]].concat()]);
        let hashes = TxHashes::of(&block.txs);
        (block.id(), CachedBlock::built(block, hashes, Vec::new()))
    }

    fn peer(i: u8) -> PeerId {
        crate::p2p::peer_id(&Keypair::from_seed([i; 32]).public())
    }

    #[test]
    fn a_flood_from_one_peer_never_pushes_out_the_named_block() {
        let mut c = BlockCache::new();
        let (real_id, real) = block(5, 0, 0);
        // The proposer's block arrives first and waits, then a flood from another peer.
        assert_eq!(c.offer(peer(1), real_id, real, MAX, &[]), Offered::Pending { evicted: 0 });
        for n in 1..10_000 {
            let (id, b) = block(5, n, 0);
            c.offer(peer(2), id, b, MAX, &[]);
        }
        assert!(c.want(real_id, 5, Round(0), &[]), "the honest peer's pending block survived");
        assert!(c.get(&real_id).is_some());
        // Once named, nothing a peer sends (a flood of blocks, even named ones) removes it...
        for n in 10_000..20_000 {
            let (id, b) = block(5, n, 0);
            c.offer(peer(1), id, b, MAX, &[]);
        }
        assert!(c.get(&real_id).is_some());
        let (count, bytes) = c.pending_totals();
        assert!(count <= PENDING_MAX && bytes <= MAX * PENDING_BLOCKS_OF_BYTES);
    }

    #[test]
    fn a_block_after_its_proposal_is_named_at_once() {
        let mut c = BlockCache::new();
        let (id, b) = block(5, 0, 0);
        assert!(!c.want(id, 5, Round(2), &[]));
        for n in 1..1000 {
            let (j, jb) = block(5, n, 0);
            c.offer(peer(2), j, jb, MAX, &[]);
        }
        assert_eq!(c.offer(peer(1), id, b.clone(), MAX, &[]), Offered::Named);
        assert_eq!(c.offer(peer(1), id, b, MAX, &[]), Offered::Duplicate);
        assert!(c.get(&id).is_some());
    }

    #[test]
    fn pending_is_bounded_per_peer_and_in_total_by_count_and_bytes() {
        let mut c = BlockCache::new();
        // Count per peer.
        let mut evicted = 0;
        for n in 0..100 {
            let (id, b) = block(5, n, 0);
            if let Offered::Pending { evicted: e } = c.offer(peer(1), id, b, MAX, &[]) {
                evicted += e;
            }
        }
        assert_eq!(c.pending_totals().0, PENDING_PER_PEER_MAX);
        assert_eq!(evicted, 100 - PENDING_PER_PEER_MAX);
        // Bytes per peer: blocks of most of the maximum size, two allowed.
        let (id, b) = block(5, 1000, MAX * PENDING_PER_PEER_BLOCKS_OF_BYTES + 1);
        assert_eq!(c.offer(peer(3), id, b, MAX, &[]), Offered::TooLarge);
        for n in 0..5 {
            let (id, b) = block(5, 2000 + n, MAX * 9 / 10);
            c.offer(peer(3), id, b, MAX, &[]);
        }
        assert_eq!(c.pending.get(&peer(3)).map(VecDeque::len), Some(2));
        // In total: many peers, each within its own allowance.
        for p in 10..60 {
            for n in 0..PENDING_PER_PEER_MAX as u32 {
                let (id, b) = block(5, u32::from(p) * 100 + n, 0);
                c.offer(peer(p), id, b, MAX, &[]);
            }
        }
        let (count, bytes) = c.pending_totals();
        assert!(count <= PENDING_MAX, "{count}");
        assert!(bytes <= MAX * PENDING_BLOCKS_OF_BYTES, "{bytes}");
        assert_eq!(
            (count, bytes),
            (
                c.pending.values().map(VecDeque::len).sum(),
                c.pending.values().flatten().map(|(_, b)| b.size()).sum()
            ),
            "the running totals match"
        );
    }

    #[test]
    fn the_total_bound_takes_from_the_heaviest_peer() {
        let mut c = BlockCache::new();
        let (small_id, small) = block(5, 0, 0);
        c.offer(peer(1), small_id, small, MAX, &[]);
        // Peers with big blocks fill the byte budget; the small honest block stays.
        for p in 2..20 {
            for n in 0..2 {
                let (id, b) = block(5, u32::from(p) * 10 + n, MAX * 9 / 10);
                c.offer(peer(p), id, b, MAX, &[]);
            }
        }
        assert!(c.pending_totals().1 <= MAX * PENDING_BLOCKS_OF_BYTES);
        assert!(c.want(small_id, 5, Round(0), &[]));
    }

    #[test]
    fn named_blocks_are_bounded_and_keep_the_protected_and_latest() {
        let mut c = BlockCache::new();
        let (locked, b) = block(5, 0, 0);
        c.want(locked, 5, Round(0), &[]);
        c.offer(peer(1), locked, b, MAX, &[]);
        for n in 1..(NAMED_MAX as u32 * 3) {
            let (id, b) = block(5, n, 0);
            c.want(id, 5, Round(n), &[locked]);
            assert_eq!(c.offer(peer(1), id, b, MAX, &[locked]), Offered::Named);
        }
        assert_eq!(c.named.len(), NAMED_MAX);
        assert!(c.contains(&locked), "the locked value's block was pushed out");
        let (latest, _) = block(5, NAMED_MAX as u32 * 3 - 1, 0);
        assert!(c.contains(&latest));
    }

    #[test]
    fn prune_drops_committed_heights_and_counts_unnamed() {
        let mut c = BlockCache::new();
        let (a, ab) = block(5, 0, 0);
        let (b, bb) = block(6, 1, 0);
        let (d, db) = block(5, 2, 0);
        c.want(a, 5, Round(0), &[]);
        c.offer(peer(1), a, ab, MAX, &[]);
        c.offer(peer(1), b, bb, MAX, &[]);
        c.offer(peer(2), d, db, MAX, &[]);
        assert_eq!(c.prune(5), 1, "one pending block of height 5 was never named");
        assert!(!c.contains(&a));
        assert!(c.want(b, 6, Round(0), &[]), "the next height's block is kept");
        assert_eq!(c.pending_totals(), (0, 0));
    }
}
