//! Answering peers' transaction fetches for our own proposal blocks on the p2p task, off the
//! consensus driver.
//!
//! A validator that rebuilds our compact proposal block and lacks some of its transactions
//! asks us for them (`TxFetch`, see `driver::compact`). The driver used to answer between its
//! other work, so under load a fetch waited behind the relayed batches and votes queued ahead
//! of it — and the asker's vote waited with it. The driver now publishes each block it
//! proposes here, and the p2p task answers a fetch for one of them at once, from the same
//! shared block (no copy until the answer is built). Fetches for any other block go to the
//! driver as before.
//!
//! Bounds: at most [`OWN_BLOCKS_MAX`] blocks (a proposer makes one per round it leads), the
//! ones at or below a committed height forgotten at commit; an answer holds each transaction
//! of the block at most once, so a fetch can never make us send more than the block; a fetch
//! naming more hashes than the block has transactions is malformed and gets no answer; a
//! peer gets one answer per block per [`FETCH_AGAIN_AFTER`] ([`FetchPace`]), and the p2p task
//! builds at most `p2p::FETCH_SERVING_MAX` answers at once.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpx_crypto::Hash;
use dpx_ledger::{Block, TxHashes};
use parking_lot::Mutex;

use crate::wire::{TxFetch, TxFill};

/// Our own proposal blocks kept for fetches at once.
pub const OWN_BLOCKS_MAX: usize = 8;
/// One answer per peer and block per this long: an answer can be a whole block for a few
/// hundred bytes asked, and an honest peer asks again only after 500 ms.
pub const FETCH_AGAIN_AFTER: Duration = Duration::from_millis(400);
/// (Peer, block) pairs remembered for that; when full, the expired go, and a new pair is
/// answered without being remembered only if none has expired (never more than the bound).
const FETCHES_REMEMBERED: usize = 1024;

const HASH_BYTES: usize = 32;

struct Own {
    id: Hash,
    block: Arc<Block>,
    hashes: Arc<TxHashes>,
}

/// What became of a fetch.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// For one of our blocks: the fill to send back, built by [`Job::fill`] (off the caller's
    /// task: it copies up to a block of bytes).
    Ours(Job),
    /// For one of our blocks, but malformed (a partial hash, more hashes than the block has
    /// transactions): no answer.
    Malformed,
    /// Not one of ours: the driver answers from its block cache, if it holds the block.
    NotOurs,
}

/// See the module docs. Shared by the driver (which publishes and prunes) and the p2p task.
#[derive(Default)]
pub struct OwnBlocks {
    blocks: Mutex<VecDeque<Own>>,
}

impl std::fmt::Debug for OwnBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnBlocks").field("blocks", &self.blocks.lock().len()).finish()
    }
}

impl OwnBlocks {
    /// A block we propose, named `id`: fetches for it are answered from now on. The oldest
    /// goes past [`OWN_BLOCKS_MAX`].
    pub fn publish(&self, id: Hash, block: Arc<Block>, hashes: Arc<TxHashes>) {
        let mut blocks = self.blocks.lock();
        if blocks.iter().any(|o| o.id == id) {
            return;
        }
        if blocks.len() >= OWN_BLOCKS_MAX {
            blocks.pop_front();
        }
        blocks.push_back(Own { id, block, hashes });
    }

    /// Forget the blocks at or below the committed `height`.
    pub fn prune(&self, height: u64) {
        self.blocks.lock().retain(|o| o.block.header.height > height);
    }

    /// Judge `f`: for one of our blocks, the job that builds its answer (see [`Answer`]).
    pub fn answer(&self, f: &TxFetch) -> Answer {
        let Ok(id) = Hash::from_slice(&f.block_id) else { return Answer::NotOurs };
        // The block is shared: the lock is held only to find it, not to copy bytes.
        let found = self
            .blocks
            .lock()
            .iter()
            .find(|o| o.id == id)
            .map(|o| (Arc::clone(&o.block), Arc::clone(&o.hashes)));
        let Some((block, hashes)) = found else { return Answer::NotOurs };
        let count = f.hashes.len() / HASH_BYTES;
        if !f.hashes.len().is_multiple_of(HASH_BYTES) || count > block.txs.len() {
            return Answer::Malformed;
        }
        Answer::Ours(Job { block, hashes, fetch: f.clone() })
    }
}

/// When each (peer, block) was last answered, to answer each at most once per
/// [`FETCH_AGAIN_AFTER`]. Owned by the p2p task.
#[derive(Debug)]
pub struct FetchPace<P> {
    answered: BTreeMap<(P, Vec<u8>), Instant>,
}

impl<P> Default for FetchPace<P> {
    fn default() -> Self {
        Self { answered: BTreeMap::new() }
    }
}

impl<P: Ord + Clone> FetchPace<P> {
    /// Whether `peer` may have an answer for `block_id` now (and if so, it is counted).
    pub fn allow(&mut self, peer: &P, block_id: &[u8], now: Instant) -> bool {
        let key = (peer.clone(), block_id.to_vec());
        if self.answered.get(&key).is_some_and(|t| now.duration_since(*t) < FETCH_AGAIN_AFTER) {
            return false;
        }
        if self.answered.len() >= FETCHES_REMEMBERED {
            self.answered.retain(|_, t| now.duration_since(*t) < FETCH_AGAIN_AFTER);
        }
        if self.answered.len() < FETCHES_REMEMBERED {
            self.answered.insert(key, now);
        }
        true
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.answered.len()
    }
}

/// A fetch for one of our blocks, with what answering it needs (shared, not copied).
#[derive(Debug)]
pub struct Job {
    block: Arc<Block>,
    hashes: Arc<TxHashes>,
    fetch: TxFetch,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.block, &other.block) && self.fetch == other.fetch
    }
}
impl Eq for Job {}

impl Job {
    /// The answer (see [`fill`]); the block's hash index is made by the first job that
    /// needs it and shared by the rest.
    pub fn fill(&self) -> TxFill {
        fill(&self.block, self.hashes.places(), &self.fetch)
    }
}

/// The answer to `f` from `block` (`places`: its hash index): the transactions it names, in
/// the order named, each at most once (so an answer never holds more than the block); hashes
/// the block does not name are left out.
pub fn fill(block: &Block, places: &BTreeMap<Hash, usize>, f: &TxFetch) -> TxFill {
    let mut served = std::collections::BTreeSet::new();
    let txs = f
        .hashes
        .chunks_exact(HASH_BYTES)
        .filter_map(|h| Hash::from_slice(h).ok())
        .filter_map(|h| places.get(&h).copied())
        .filter(|&i| served.insert(i))
        .map(|i| block.txs[i].clone())
        .collect();
    TxFill { block_id: f.block_id.clone(), txs }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(height: u64, txs: Vec<Vec<u8>>) -> (Hash, Arc<Block>, Arc<TxHashes>) {
        let b = crate::testing::made_up_block(height, txs);
        let hashes = TxHashes::of(&b.txs);
        (b.id(), Arc::new(b), Arc::new(hashes))
    }

    fn fetch(id: &Hash, hashes: &[Hash]) -> TxFetch {
        TxFetch {
            block_id: id.as_bytes().to_vec(),
            hashes: hashes.iter().flat_map(|h| h.as_bytes().to_vec()).collect(),
        }
    }

    #[test]
    fn a_fetch_for_our_block_is_answered_once_per_transaction_and_only_from_it() {
        let own = OwnBlocks::default();
        let (id, b, h) = block(5, vec![b"a".to_vec(), b"b".to_vec(), vec![7; 1000]]);
        own.publish(id, Arc::clone(&b), Arc::clone(&h));
        let big = Hash::digest(&[7; 1000]);
        // Asked twice (and a hash the block does not name): the block's bytes, each once.
        let f = fetch(&id, &[big, Hash::digest(b"nope"), big]);
        let fill = |a: Answer| match a {
            Answer::Ours(job) => job.fill(),
            other => panic!("not answered: {other:?}"),
        };
        assert_eq!(
            fill(own.answer(&f)),
            TxFill { block_id: id.as_bytes().to_vec(), txs: vec![vec![7; 1000]] }
        );
        // The same again, now from the index made by the first.
        assert_eq!(fill(own.answer(&f)).txs.len(), 1);
        // More hashes than the block has transactions, or a partial hash: no answer.
        assert_eq!(own.answer(&fetch(&id, &[big; 4])), Answer::Malformed);
        let mut partial = fetch(&id, &[big]);
        partial.hashes.pop();
        assert_eq!(own.answer(&partial), Answer::Malformed);
        // Another block, or no block id at all: the driver's to answer.
        assert_eq!(own.answer(&fetch(&Hash::digest(b"other"), &[big])), Answer::NotOurs);
        assert_eq!(own.answer(&TxFetch { block_id: vec![1], hashes: vec![] }), Answer::NotOurs);
    }

    /// A peer asking for the same block again and again gets one answer per 400 ms; other
    /// peers and blocks are not held up by it; a flood of distinct (peer, block) pairs never
    /// grows the memory past its bound.
    #[test]
    fn answers_are_paced_per_peer_and_block() {
        let mut pace = FetchPace::<u8>::default();
        let t0 = Instant::now();
        assert!(pace.allow(&1u8, b"block", t0));
        for ms in [0, 1, 399] {
            assert!(!pace.allow(&1u8, b"block", t0 + Duration::from_millis(ms)), "{ms} ms");
        }
        assert!(pace.allow(&2u8, b"block", t0), "another peer");
        assert!(pace.allow(&1u8, b"other", t0), "another block");
        assert!(pace.allow(&1u8, b"block", t0 + FETCH_AGAIN_AFTER));
        let mut flood = FetchPace::<u32>::default();
        for n in 0..10_000u32 {
            flood.allow(&n, b"block", t0);
            assert!(flood.remembered() <= FETCHES_REMEMBERED);
        }
    }

    #[test]
    fn blocks_are_bounded_and_forgotten_at_commit() {
        let own = OwnBlocks::default();
        let ids: Vec<Hash> = (0..OWN_BLOCKS_MAX as u64 + 2)
            .map(|n| {
                let (id, b, h) = block(10 + n, vec![n.to_le_bytes().to_vec()]);
                own.publish(id, b, h);
                id
            })
            .collect();
        let asks = |id: &Hash| !matches!(own.answer(&fetch(id, &[])), Answer::NotOurs);
        assert!(!asks(&ids[0]) && !asks(&ids[1]), "the oldest went past the bound");
        assert!(ids[2..].iter().all(asks));
        own.prune(13);
        assert!(!asks(&ids[3]) && asks(&ids[4]), "at or below the committed height forgotten");
    }
}
