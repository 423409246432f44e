//! Compact proposal blocks: a proposal's block sent as transaction hashes, not bytes.
//!
//! Every transaction already reached each validator once, by the mempool relay, so sending
//! the proposal's block whole sent every byte twice (and each receiver decoded it again). The
//! proposer now sends the header, the parent certificate and one 32-byte hash per transaction;
//! the transactions it admitted less than [`INLINE_YOUNGER_THAN`] ago travel whole, since
//! their relay may not have arrived yet. A receiver rebuilds the block from its mempool and
//! checks it as it checks a whole one: the header's `tx_root` must be the Merkle root of the
//! rebuilt transactions (so the block id, the header's hash, names exactly these bytes) and
//! the block must fit the chain's byte limit. Then it goes to the same block cache.
//!
//! A transaction the receiver lacks (its relay was dropped, refused by a full pool, or is
//! still in flight) is asked of the sender (`TxFetch`), once the relayed transactions already
//! queued for admission are pooled; the sender answers from the block it holds (`TxFill`),
//! and the relay filling the pool meanwhile completes the block too. Every transaction that
//! arrives is hashed and must be one the block names. Incomplete blocks are kept per sender
//! (a peer sending the right header with other hashes first does not shut out the
//! proposer's copy) and bounded like pending ones: [`PARTIALS_PER_PEER_MAX`] per sending peer
//! and [`PARTIALS_MAX`] in all, the oldest going first, and only for this height and the next.
//! A proposer that never answers costs its round, as a proposer that never sends its block
//! does: the round times out and the next proposer goes on.
//!
//! Synced blocks, stored blocks and audit replay are unchanged: a block is still stored and
//! served whole. `[consensus] compact_proposals = false` sends whole blocks again; a node
//! accepts both forms either way.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpx_app::execute::params;
use dpx_crypto::Hash;
use dpx_ledger::{Block, Header, TxHashes};
use libp2p::PeerId;
use tracing::debug;

use super::Driver;
use super::blocks::{CachedBlock, names_its_parent_certificate};
use crate::p2p::Command;
use crate::wire::{self, NetMessage, net_message::Kind};

/// Transactions the proposer admitted more recently than this travel inline: their relay to
/// peers (and the peers' verification of it) may still be under way.
pub const INLINE_YOUNGER_THAN: Duration = Duration::from_millis(50);
/// Incomplete compact blocks kept per sending peer, and in all.
pub const PARTIALS_PER_PEER_MAX: usize = 2;
pub const PARTIALS_MAX: usize = 8;
/// A compact block sent again (the proposer's re-broadcast) asks again for what is still
/// missing, at most this often.
const REFETCH_AFTER: Duration = Duration::from_millis(500);

const HASH_BYTES: usize = 32;

/// The compact form of `block`. `known(i)` may give transaction `i`'s hash and whether it
/// goes inline (the proposer knows both from its pool); else the hash is computed and the
/// transaction goes by hash.
pub fn encode(
    block: &Block,
    parent_cert: &[u8],
    known: impl Fn(usize) -> Option<(Hash, bool)>,
) -> wire::CompactBlock {
    let mut hashes = Vec::with_capacity(block.txs.len() * HASH_BYTES);
    let (mut inline_positions, mut inline_txs) = (Vec::new(), Vec::new());
    for (i, tx) in block.txs.iter().enumerate() {
        match known(i) {
            Some((_, true)) => {
                inline_positions.push(i as u32);
                inline_txs.push(tx.clone());
            }
            Some((hash, false)) => hashes.extend_from_slice(hash.as_bytes()),
            None => hashes.extend_from_slice(Hash::digest(tx).as_bytes()),
        }
    }
    wire::CompactBlock {
        height: block.header.height,
        round: 0,
        header: block.header.encode(),
        parent_certificate: parent_cert.to_vec(),
        tx_count: block.txs.len() as u32,
        hashes,
        inline_positions,
        inline_txs,
    }
}

/// One place of a compact block: its bytes, or the hash of bytes still to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    Tx(Arc<Vec<u8>>),
    Hash(Hash),
}

/// Why a compact block was refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("{count} transactions, over the limit of {max}")]
    TooManyTxs { count: u32, max: usize },
    #[error("inline positions and transactions differ in number")]
    InlineMismatch,
    #[error("inline positions not strictly increasing below the transaction count")]
    InlineOrder,
    #[error("hash bytes do not match the count of transactions by hash")]
    HashLength,
}

/// The places of a compact block in order, checked for shape (`max_txs`: the chain's limit
/// of transactions per block). Nothing is looked up yet.
pub fn slots(c: &wire::CompactBlock, max_txs: usize) -> Result<Vec<Slot>, Malformed> {
    let count = c.tx_count as usize;
    if count > max_txs {
        return Err(Malformed::TooManyTxs { count: c.tx_count, max: max_txs });
    }
    if c.inline_positions.len() != c.inline_txs.len() {
        return Err(Malformed::InlineMismatch);
    }
    if c.inline_positions.windows(2).any(|w| w[0] >= w[1])
        || c.inline_positions.last().is_some_and(|&p| p as usize >= count)
    {
        return Err(Malformed::InlineOrder);
    }
    let by_hash = count - c.inline_positions.len();
    if c.hashes.len() != by_hash * HASH_BYTES {
        return Err(Malformed::HashLength);
    }
    let mut hashes = c.hashes.chunks_exact(HASH_BYTES);
    let mut inline = c.inline_positions.iter().zip(&c.inline_txs).peekable();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        if let Some((_, tx)) = inline.next_if(|(p, _)| **p as usize == i) {
            out.push(Slot::Tx(Arc::new(tx.clone())));
        } else {
            let h = hashes.next().ok_or(Malformed::HashLength)?;
            out.push(Slot::Hash(Hash::from_slice(h).map_err(|_| Malformed::HashLength)?));
        }
    }
    Ok(out)
}

/// A compact block some of whose transactions are still missing.
#[derive(Debug)]
pub(super) struct Partial {
    from: PeerId,
    id: Hash,
    header: Header,
    parent_cert: Vec<u8>,
    slots: Vec<Slot>,
    /// The digest of each place sent by hash (the pool or a fill found bytes of that digest);
    /// `None` for the inline ones, hashed when the block is rebuilt.
    digests: Vec<Option<Hash>>,
    /// Missing hash → its places (a block naming one transaction twice is invalid, but it
    /// must still be rebuilt to be judged).
    missing: BTreeMap<Hash, Vec<usize>>,
    /// When its sender was last asked for what is missing (`None`: not yet, see
    /// [`Driver::send_fetches`]).
    asked: Option<Instant>,
}

impl Partial {
    pub fn missing(&self) -> impl Iterator<Item = &Hash> {
        self.missing.keys()
    }

    /// Put `tx` (whose hash is `hash`) in its places. Returns whether it was missing.
    fn fill(&mut self, hash: &Hash, tx: &Arc<Vec<u8>>) -> bool {
        let Some(places) = self.missing.remove(hash) else { return false };
        for i in places {
            self.slots[i] = Slot::Tx(Arc::clone(tx));
        }
        true
    }
}

/// The incomplete compact blocks, bounded (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Partials {
    list: VecDeque<Partial>,
}

impl Partials {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn contains(&self, id: &Hash) -> bool {
        self.list.iter().any(|p| p.id == *id)
    }

    /// Whether `from` sent a compact block `id` still incomplete. Kept per sender: a peer that
    /// sends the right header with other hashes first must not shut out the proposer's.
    fn contains_from(&self, id: &Hash, from: &PeerId) -> bool {
        self.list.iter().any(|p| p.id == *id && p.from == *from)
    }

    /// Keep `p`; returns how many older partials were dropped for it. A sender over its
    /// share loses its own oldest; over the total, the oldest partial of the sender holding
    /// the most goes, and a partial whose id a verified proposal names (`named`) goes only
    /// when nothing else is left to drop.
    pub fn insert(&mut self, p: Partial, named: impl Fn(&Hash) -> bool) -> usize {
        let from = p.from;
        self.list.push_back(p);
        let mut dropped = 0;
        while self.list.iter().filter(|q| q.from == from).count() > PARTIALS_PER_PEER_MAX {
            let i = self.list.iter().position(|q| q.from == from).expect("counted above");
            self.list.remove(i);
            dropped += 1;
        }
        while self.list.len() > PARTIALS_MAX {
            let count = |peer: &PeerId| self.list.iter().filter(|q| q.from == *peer).count();
            let victim = self
                .list
                .iter()
                .enumerate()
                .filter(|(_, q)| !named(&q.id))
                .max_by_key(|(i, q)| (count(&q.from), std::cmp::Reverse(*i)))
                .map_or(0, |(i, _)| i);
            self.list.remove(victim);
            dropped += 1;
        }
        dropped
    }

    /// Transactions that arrived (fetched or relayed): fill every partial that misses them.
    /// Returns the partials now complete, taken out.
    pub fn fill(&mut self, txs: &[(Hash, Arc<Vec<u8>>)]) -> Vec<Partial> {
        for p in &mut self.list {
            for (h, tx) in txs {
                p.fill(h, tx);
            }
        }
        let (done, open): (Vec<Partial>, Vec<Partial>) =
            std::mem::take(&mut self.list).into_iter().partition(|p| p.missing.is_empty());
        self.list = open.into();
        done
    }

    /// The partial `id` from `from`, to ask again for what it misses (at most every
    /// [`REFETCH_AFTER`]).
    fn due_again(&mut self, id: &Hash, from: &PeerId, now: Instant) -> Option<&mut Partial> {
        self.list.iter_mut().find(|p| {
            p.id == *id
                && p.from == *from
                && p.asked.is_some_and(|t| now.duration_since(t) >= REFETCH_AFTER)
        })
    }

    /// Forget partials at or below the committed `height`.
    pub fn prune(&mut self, height: u64) {
        self.list.retain(|p| p.header.height > height);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.list.len()
    }
}

impl Driver {
    /// A compact block from `from`: rebuilt from the pool, or kept until what it misses
    /// arrives (see the module docs).
    pub(super) fn on_compact(&mut self, from: PeerId, c: wire::CompactBlock) -> anyhow::Result<()> {
        let metrics = &self.shared.metrics;
        metrics.compact_blocks_received.inc();
        let params = params(&self.store)?;
        let limit = params.encoded_max();
        let header = match Header::decode(&c.header, limit) {
            Ok(h) => h,
            Err(e) => {
                debug!(peer = %from, error = %e, "undecodable compact block header");
                metrics.proposal_blocks_refused.inc();
                return Ok(());
            }
        };
        let h = header.height;
        if h < self.height() || h > self.height() + 1 {
            metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        let id = header.id();
        if self.blocks.holds(&id) {
            return Ok(());
        }
        if let Some(p) = self.partials.due_again(&id, &from, Instant::now()) {
            p.asked = Some(Instant::now());
            let hashes: Vec<Hash> = p.missing().copied().collect();
            self.fetch(from, id, &hashes);
            return Ok(());
        }
        if self.partials.contains_from(&id, &from) {
            return Ok(());
        }
        // What a partial holds is bounded like a block: the inline bytes and the certificate
        // fit the byte limit, and the certificate is the one the header names.
        let held = c.inline_txs.iter().map(Vec::len).sum::<usize>() + c.parent_certificate.len();
        if held > limit || !names_its_parent_certificate(&header, &c.parent_certificate) {
            debug!(peer = %from, "compact block over the byte limit or with another certificate");
            metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        let mut slots = match slots(&c, params.max_block_txs) {
            Ok(s) => s,
            Err(e) => {
                debug!(peer = %from, error = %e, "malformed compact block");
                metrics.proposal_blocks_refused.inc();
                return Ok(());
            }
        };
        let digests = slots
            .iter()
            .map(|s| match s {
                Slot::Hash(h) => Some(*h),
                Slot::Tx(_) => None,
            })
            .collect();
        let mut missing: BTreeMap<Hash, Vec<usize>> = BTreeMap::new();
        for (i, slot) in slots.iter_mut().enumerate() {
            if let Slot::Hash(hash) = slot {
                match self.mempool.get(hash) {
                    Some(t) => *slot = Slot::Tx(Arc::clone(&t.bytes)),
                    None => missing.entry(*hash).or_default().push(i),
                }
            }
        }
        let partial = Partial {
            from,
            id,
            header,
            parent_cert: c.parent_certificate,
            slots,
            digests,
            missing,
            asked: None,
        };
        if partial.missing.is_empty() {
            return self.rebuild(partial, limit);
        }
        // Asked for by `send_fetches`, once the relayed transactions already queued for
        // admission are in the pool.
        metrics.compact_blocks_incomplete.inc();
        let blocks = &self.blocks;
        let dropped = self.partials.insert(partial, |id| blocks.is_wanted(id));
        metrics.proposal_blocks_evicted.inc_by(dropped as u64);
        Ok(())
    }

    /// Whether a compact block waits for its first fetch.
    pub(super) fn fetch_due(&self) -> bool {
        self.partials.list.iter().any(|p| p.asked.is_none())
    }

    /// Ask the senders of new incomplete compact blocks for what their pools still lack. The
    /// driver's loop calls this after admitting the relayed transactions waiting in its queue,
    /// which usually hold most of what a fresh compact block names.
    pub(super) fn send_fetches(&mut self) {
        let now = Instant::now();
        let due: Vec<(PeerId, Hash, Vec<Hash>)> = self
            .partials
            .list
            .iter_mut()
            .filter(|p| p.asked.is_none())
            .map(|p| {
                p.asked = Some(now);
                (p.from, p.id, p.missing().copied().collect())
            })
            .collect();
        for (peer, id, hashes) in due {
            self.fetch(peer, id, &hashes);
        }
    }

    fn fetch(&self, peer: PeerId, id: Hash, hashes: &[Hash]) {
        self.shared.metrics.compact_txs_fetched.inc_by(hashes.len() as u64);
        let mut bytes = Vec::with_capacity(hashes.len() * HASH_BYTES);
        for h in hashes {
            bytes.extend_from_slice(h.as_bytes());
        }
        self.send(Command::Send(
            peer,
            NetMessage {
                kind: Some(Kind::TxFetch(wire::TxFetch {
                    block_id: id.as_bytes().to_vec(),
                    hashes: bytes,
                })),
            },
        ));
    }

    /// A peer asks for transactions of a compact block we hold (normally our own proposal's):
    /// answered from that block, each transaction at most once, hashes it does not name left
    /// out. A fetch for a block we do not hold, or one malformed, gets no answer: what a peer
    /// can make us send is bounded by the blocks we hold, not by our pool.
    pub(super) fn on_tx_fetch(&mut self, from: PeerId, f: &wire::TxFetch) -> anyhow::Result<()> {
        let max_txs = params(&self.store)?.max_block_txs;
        if !f.hashes.len().is_multiple_of(HASH_BYTES) || f.hashes.len() / HASH_BYTES > max_txs {
            debug!(peer = %from, "malformed transaction fetch");
            self.shared.metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        let Ok(id) = Hash::from_slice(&f.block_id) else { return Ok(()) };
        let Some(cb) = self.blocks.get(&id) else { return Ok(()) };
        let fill = crate::serve_fetch::fill(&cb.block, cb.hashes.places(), f);
        self.shared.metrics.compact_fetches_served.inc();
        self.send(Command::Send(from, NetMessage { kind: Some(Kind::TxFill(fill)) }));
        Ok(())
    }

    /// Transactions a peer sent for a compact block we are rebuilding.
    pub(super) fn on_tx_fill(&mut self, from: PeerId, f: wire::TxFill) -> anyhow::Result<()> {
        let Ok(id) = Hash::from_slice(&f.block_id) else { return Ok(()) };
        if !self.partials.contains(&id) {
            return Ok(());
        }
        let max_txs = params(&self.store)?.max_block_txs;
        if f.txs.len() > max_txs {
            debug!(peer = %from, "oversized transaction fill");
            return Ok(());
        }
        let txs: Vec<(Hash, Arc<Vec<u8>>)> =
            f.txs.into_iter().map(|tx| (Hash::digest(&tx), Arc::new(tx))).collect();
        self.fill_partials(&txs)
    }

    /// Transactions that arrived (a fill, or admitted to the pool): complete what they can.
    pub(super) fn fill_partials(&mut self, txs: &[(Hash, Arc<Vec<u8>>)]) -> anyhow::Result<()> {
        if self.partials.is_empty() || txs.is_empty() {
            return Ok(());
        }
        let done = self.partials.fill(txs);
        if done.is_empty() {
            return Ok(());
        }
        let limit = params(&self.store)?.encoded_max();
        for p in done {
            // Another sender's copy of the same block may have completed first.
            if !self.blocks.holds(&p.id) {
                self.rebuild(p, limit)?;
            }
        }
        Ok(())
    }

    /// A complete compact block: the block itself, checked against its header and the byte
    /// limit, then kept like a whole block. Only the inline transactions are hashed for their
    /// digests; every transaction once for its Merkle leaf.
    fn rebuild(&mut self, p: Partial, limit: usize) -> anyhow::Result<()> {
        let txs: Vec<Vec<u8>> = p
            .slots
            .into_iter()
            .map(|s| match s {
                Slot::Tx(tx) => Arc::unwrap_or_clone(tx),
                Slot::Hash(_) => unreachable!("a complete partial has every transaction"),
            })
            .collect();
        let block = Block { header: p.header, txs };
        if block.encoded_len() > limit {
            debug!(peer = %p.from, "compact block over the byte limit");
            self.shared.metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        let digests = p
            .digests
            .into_iter()
            .zip(&block.txs)
            .map(|(d, tx)| d.unwrap_or_else(|| Hash::digest(tx)))
            .collect();
        let hashes = TxHashes::with_digests(&block.txs, digests);
        if let Err(e) = hashes.check(&block) {
            debug!(peer = %p.from, error = %e, "compact block does not match its header");
            self.shared.metrics.proposal_blocks_refused.inc();
            return Ok(());
        }
        let cb = CachedBlock::built(block, hashes, p.parent_cert);
        self.accept_block(p.from, p.id, cb, limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;
    use proptest::prelude::*;

    fn block(txs: Vec<Vec<u8>>) -> Block {
        super::super::blocks::tests::test_block(3, txs)
    }

    fn peer(i: u8) -> PeerId {
        crate::p2p::peer_id(&Keypair::from_seed([i; 32]).public())
    }

    fn partial(from: PeerId, n: u8) -> Partial {
        let header = block(vec![vec![n]]).header;
        Partial {
            from,
            id: header.id(),
            header,
            parent_cert: Vec::new(),
            slots: vec![Slot::Hash(Hash::digest(&[n]))],
            digests: vec![Some(Hash::digest(&[n]))],
            missing: BTreeMap::from([(Hash::digest(&[n]), vec![0])]),
            asked: None,
        }
    }

    proptest! {
        /// Whatever goes inline, the places come back in block order with the right bytes
        /// or hashes.
        #[test]
        fn compact_round_trip(
            txs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..40),
            inline in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let b = block(txs);
            let c = encode(&b, b"cert", |i| Some((Hash::digest(&b.txs[i]), inline[i])));
            let s = slots(&c, b.txs.len()).unwrap();
            prop_assert_eq!(s.len(), b.txs.len());
            for (i, slot) in s.iter().enumerate() {
                match slot {
                    Slot::Tx(t) => { prop_assert!(inline[i]); prop_assert_eq!(t.as_ref(), &b.txs[i]); }
                    Slot::Hash(h) => { prop_assert!(!inline[i]); prop_assert_eq!(*h, Hash::digest(&b.txs[i])); }
                }
            }
            prop_assert_eq!(c.header, b.header.encode());
        }

        /// Any shape a peer can send is judged without a panic.
        #[test]
        fn hostile_shapes_never_panic(
            count in 0u32..70,
            hashes in proptest::collection::vec(any::<u8>(), 0..700),
            positions in proptest::collection::vec(0u32..80, 0..6),
            inline in 0usize..6,
        ) {
            let c = wire::CompactBlock {
                tx_count: count,
                hashes,
                inline_positions: positions,
                inline_txs: vec![vec![1]; inline],
                ..Default::default()
            };
            if let Ok(s) = slots(&c, 64) {
                prop_assert_eq!(s.len(), count as usize);
            }
        }
    }

    #[test]
    fn malformed_shapes_are_named() {
        let b = block(vec![vec![1], vec![2], vec![3]]);
        let good = encode(&b, b"", |i| Some((Hash::digest(&b.txs[i]), i == 1)));
        assert!(slots(&good, 3).is_ok());
        assert_eq!(slots(&good, 2), Err(Malformed::TooManyTxs { count: 3, max: 2 }));
        let mut c = good.clone();
        c.inline_txs.push(vec![9]);
        assert_eq!(slots(&c, 3), Err(Malformed::InlineMismatch));
        let mut c = good.clone();
        c.inline_positions = vec![3];
        assert_eq!(slots(&c, 3), Err(Malformed::InlineOrder));
        let mut c = encode(&b, b"", |i| Some((Hash::digest(&b.txs[i]), i > 0)));
        c.inline_positions = vec![2, 1];
        assert_eq!(slots(&c, 3), Err(Malformed::InlineOrder));
        let mut c = good;
        c.hashes.pop();
        assert_eq!(slots(&c, 3), Err(Malformed::HashLength));
    }

    #[test]
    fn partials_are_bounded_per_peer_and_in_total() {
        let mut ps = Partials::default();
        for n in 0..10 {
            ps.insert(partial(peer(1), n), |_| false);
        }
        assert_eq!(ps.len(), PARTIALS_PER_PEER_MAX, "a flood only pushes out the flooder's own");
        let newest = partial(peer(1), 9).id;
        assert!(ps.contains(&newest));
        for p in 2..20 {
            ps.insert(partial(peer(p), p), |_| false);
        }
        assert_eq!(ps.len(), PARTIALS_MAX);
    }

    /// Peers flooding incomplete compact blocks push out their own and each other's, never the
    /// one a verified proposal names.
    #[test]
    fn a_named_partial_survives_a_flood_from_many_peers() {
        let mut ps = Partials::default();
        let honest = partial(peer(1), 0);
        let named = honest.id;
        ps.insert(honest, |id| *id == named);
        for round in 0..50u8 {
            for p in 2..10u8 {
                ps.insert(partial(peer(p), round.wrapping_mul(10).wrapping_add(p)), |id| {
                    *id == named
                });
                assert!(ps.contains(&named), "pushed out by peer {p}");
                assert!(ps.len() <= PARTIALS_MAX);
            }
        }
        // Without the name, the total bound takes from the peer holding the most.
        let mut ps = Partials::default();
        ps.insert(partial(peer(1), 0), |_| false);
        for n in 1..=PARTIALS_MAX as u8 {
            ps.insert(partial(peer(2 + n % 4), n), |_| false);
        }
        assert!(ps.contains_from(&partial(peer(1), 0).id, &peer(1)), "the lone sender kept");
    }

    #[test]
    fn a_fill_completes_the_partials_that_miss_it_and_nothing_else() {
        let mut ps = Partials::default();
        ps.insert(partial(peer(1), 7), |_| false);
        ps.insert(partial(peer(2), 8), |_| false);
        assert!(ps.fill(&[(Hash::digest(&[9]), Arc::new(vec![9]))]).is_empty());
        let done = ps.fill(&[(Hash::digest(&[7]), Arc::new(vec![7]))]);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].slots, vec![Slot::Tx(Arc::new(vec![7]))]);
        assert_eq!(ps.len(), 1, "the other partial still waits");
        ps.prune(3);
        assert!(ps.is_empty(), "committed heights are forgotten");
    }
}
