//! A bounded cache of decoded tree nodes in front of RocksDB.
//!
//! A tree node never changes: its key (version ‖ nibble path) names one node from the commit
//! that writes it until pruning deletes it. So a cached node can only go wrong by outliving its
//! deletion, and the store tells the cache of every deletion right after the batch that deletes
//! lands ([`NodeCache::forget`]). A reader that missed, read the node from RocksDB and wants to
//! keep it could race with such a deletion (read before it, insert after it), so every deletion
//! moves an epoch, and a reader's insert is dropped when the epoch moved since its read began.
//!
//! Filled by commits with the nodes they just wrote (the next commit and reads at the tip walk
//! exactly those) and by reads that missed. Least recently used goes first when either bound —
//! nodes or bytes — would be passed. Bytes are an estimate of the memory a node holds
//! ([`charge`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use jmt::storage::Node;

/// Estimated heap bytes of an internal node's children array (16 × an optional child of a hash,
/// a version and a leaf count), beyond `size_of::<Node>()`.
const INTERNAL_CHILDREN_BYTES: usize = 16 * 56;
/// Per-entry bookkeeping: the hash map slot, the recency index entry, the key's allocation.
const ENTRY_OVERHEAD_BYTES: usize = 96;

/// Memory charged for caching `node` under a key of `key_len` bytes.
pub(crate) fn charge(key_len: usize, node: &Node) -> usize {
    let own = std::mem::size_of::<Node>() + 2 * key_len + ENTRY_OVERHEAD_BYTES;
    match node {
        Node::Internal(_) => own + INTERNAL_CHILDREN_BYTES,
        Node::Leaf(_) | Node::Null => own,
    }
}

/// Counters of a [`NodeCache`], for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeCacheStats {
    /// Tree node reads answered from memory.
    pub hits: u64,
    /// Tree node reads that went to RocksDB.
    pub misses: u64,
    /// Nodes held now.
    pub nodes: usize,
    /// Estimated bytes held now.
    pub bytes: usize,
}

struct Entry {
    node: Node,
    charge: usize,
    tick: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Vec<u8>, Entry>,
    /// Recency: tick of last use → key. The smallest tick is the least recently used.
    order: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    bytes: usize,
    /// Moves on every deletion; see the module docs.
    epoch: u64,
}

/// The cache. Keys are the store's encoded node keys (the bytes RocksDB is asked for).
pub(crate) struct NodeCache {
    inner: Mutex<Inner>,
    max_nodes: usize,
    max_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl NodeCache {
    /// A cache holding at most `max_nodes` nodes and `max_bytes` estimated bytes; with either
    /// bound 0 it holds nothing.
    pub fn new(max_nodes: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_nodes,
            max_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn enabled(&self) -> bool {
        self.max_nodes > 0 && self.max_bytes > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent before it can panic (allocation
        // aside), so a poisoned lock holds a usable cache.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node under `key`, if cached, and the epoch to pass to [`NodeCache::insert_read`] on a
    /// miss.
    pub fn get(&self, key: &[u8]) -> (Option<Node>, u64) {
        if !self.enabled() {
            return (None, 0);
        }
        let mut inner = self.lock();
        let epoch = inner.epoch;
        inner.tick += 1;
        let tick = inner.tick;
        let Some(entry) = inner.map.get_mut(key) else {
            drop(inner);
            self.misses.fetch_add(1, Ordering::Relaxed);
            return (None, epoch);
        };
        let old = std::mem::replace(&mut entry.tick, tick);
        let node = entry.node.clone();
        if let Some(k) = inner.order.remove(&old) {
            inner.order.insert(tick, k);
        }
        drop(inner);
        self.hits.fetch_add(1, Ordering::Relaxed);
        (Some(node), epoch)
    }

    /// Keep a node a reader fetched from RocksDB, unless a deletion happened since `epoch`.
    pub fn insert_read(&self, key: Vec<u8>, node: Node, epoch: u64) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        if inner.epoch == epoch {
            self.insert_locked(&mut inner, key, node);
        }
    }

    /// Keep the nodes a commit has just written.
    pub fn insert_committed(&self, nodes: Vec<(Vec<u8>, Node)>) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        for (key, node) in nodes {
            self.insert_locked(&mut inner, key, node);
        }
    }

    /// Drop `keys`, which a batch has just deleted from RocksDB, and move the epoch.
    pub fn forget(&self, keys: &[Vec<u8>]) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        inner.epoch += 1;
        for key in keys {
            if let Some(entry) = inner.map.remove(key.as_slice()) {
                inner.order.remove(&entry.tick);
                inner.bytes -= entry.charge;
            }
        }
    }

    fn insert_locked(&self, inner: &mut Inner, key: Vec<u8>, node: Node) {
        let charge = charge(key.len(), &node);
        if charge > self.max_bytes {
            return;
        }
        inner.tick += 1;
        let tick = inner.tick;
        if let Some(old) = inner.map.remove(&key) {
            inner.order.remove(&old.tick);
            inner.bytes -= old.charge;
        }
        while inner.map.len() >= self.max_nodes || inner.bytes + charge > self.max_bytes {
            let Some((_, lru)) = inner.order.pop_first() else { break };
            if let Some(gone) = inner.map.remove(&lru) {
                inner.bytes -= gone.charge;
            }
        }
        inner.order.insert(tick, key.clone());
        inner.map.insert(key, Entry { node, charge, tick });
        inner.bytes += charge;
    }

    pub fn stats(&self) -> NodeCacheStats {
        let inner = self.lock();
        NodeCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            nodes: inner.map.len(),
            bytes: inner.bytes,
        }
    }

    /// Every cached (key, node), for the consistency checks of tests.
    #[cfg(test)]
    pub fn entries(&self) -> Vec<(Vec<u8>, Node)> {
        self.lock().map.iter().map(|(k, e)| (k.clone(), e.node.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::storage::LeafNode;
    use jmt::{KeyHash, ValueHash};

    fn leaf(i: u8) -> Node {
        Node::Leaf(LeafNode::new(KeyHash([i; 32]), ValueHash([i; 32])))
    }

    #[test]
    fn least_recently_used_goes_first_and_bounds_hold() {
        let c = NodeCache::new(3, usize::MAX);
        for i in 0..3 {
            c.insert_committed(vec![(vec![i], leaf(i))]);
        }
        assert!(c.get(&[0]).0.is_some()); // 0 is now the most recent
        c.insert_committed(vec![(vec![3], leaf(3))]);
        assert!(c.get(&[1]).0.is_none(), "1 was the least recently used");
        assert!(c.get(&[0]).0.is_some() && c.get(&[2]).0.is_some() && c.get(&[3]).0.is_some());
        assert_eq!(c.stats().nodes, 3);

        let one = charge(1, &leaf(0));
        let c = NodeCache::new(100, 2 * one);
        for i in 0..5 {
            c.insert_committed(vec![(vec![i], leaf(i))]);
            assert!(c.stats().bytes <= 2 * one);
        }
        assert_eq!(c.stats().nodes, 2);
    }

    #[test]
    fn a_read_racing_a_deletion_is_not_kept() {
        let c = NodeCache::new(10, usize::MAX);
        let (miss, epoch) = c.get(&[7]);
        assert!(miss.is_none());
        // The reader fetched node 7 from RocksDB; meanwhile a commit deleted it.
        c.forget(&[vec![7]]);
        c.insert_read(vec![7], leaf(7), epoch);
        assert!(c.get(&[7]).0.is_none());
        // Without a deletion in between the read is kept.
        let (_, epoch) = c.get(&[8]);
        c.insert_read(vec![8], leaf(8), epoch);
        assert!(c.get(&[8]).0.is_some());
        c.forget(&[vec![8]]);
        assert!(c.get(&[8]).0.is_none());
        assert_eq!(c.stats().bytes, 0);
    }

    #[test]
    fn a_disabled_cache_holds_nothing() {
        let c = NodeCache::new(0, 1 << 20);
        c.insert_committed(vec![(vec![1], leaf(1))]);
        assert!(c.get(&[1]).0.is_none());
        assert_eq!(c.stats(), NodeCacheStats::default());
    }
}
