//! A bounded cache of the latest state's values in front of RocksDB's `state` column family.
//!
//! Execution, the stateful admission checks, the events' party lookups and the RPC read the
//! latest state one key at a time; most of those keys (participants, products, subjects,
//! accounts, the policy set) are read again and again, and RocksDB answers each from its
//! memtable's skip list at the cost of a dozen cache-missing comparisons. This cache answers
//! them from a hash map.
//!
//! **Coherence.** The latest value of a key changes only when a commit's batch lands. Just
//! before writing the batch the store calls [`StateCache::landing`]: it moves an epoch and
//! forgets every key the batch writes, so while the batch lands those keys are read from
//! RocksDB, which shows a batch whole or not at all, as without the cache. Right after the
//! write, before the commit returns, [`StateCache::committed`] moves the epoch again and gives
//! every key of the batch the cache holds again (read in between) its new value. A reader that
//! missed, read RocksDB and wants to keep what it read could race with a commit (read the old
//! value before the batch lands, insert it after), so a reader's insert, checked under its
//! shard's lock, is dropped when the epoch moved since its read began; one that inserts before
//! the epoch moves has its entry forgotten or overwritten by the step that follows. So once a
//! commit has returned every read sees its writes, and no read sees part of a batch.
//!
//! Only keys that were read are held: a commit updates the entries present and adds none (a
//! block writes many keys — new grants, usage records — that are rarely read back). Absent keys
//! are cached as absent. A shard over its share of the byte bound is emptied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Shards, each behind its own lock: execution, admission, events and the RPC read at once.
const SHARDS: usize = 16;
/// Per-entry bookkeeping charged besides the key and value bytes (the map slot, two
/// allocations' headers).
const ENTRY_OVERHEAD_BYTES: usize = 64;

/// Counters of a [`StateCache`], for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCacheStats {
    /// Latest-state reads answered from memory.
    pub hits: u64,
    /// Latest-state reads that went to RocksDB.
    pub misses: u64,
    /// Entries held now.
    pub entries: usize,
    /// Estimated bytes held now.
    pub bytes: usize,
}

#[derive(Default)]
struct Shard {
    map: HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
}

fn charge(key: &[u8], value: Option<&Vec<u8>>) -> usize {
    key.len() + value.map_or(0, Vec::len) + ENTRY_OVERHEAD_BYTES
}

impl Shard {
    /// Drop `key`'s entry, if held.
    fn forget(&mut self, key: &[u8]) {
        if let Some(old) = self.map.remove(key) {
            self.bytes -= charge(key, old.as_ref());
        }
    }
}

/// The cache.
pub(crate) struct StateCache {
    shards: [Mutex<Shard>; SHARDS],
    hasher: std::hash::RandomState,
    /// Moves before every commit's update; see the module docs.
    epoch: AtomicU64,
    shard_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// Where a reader's miss began: pass it back to [`StateCache::insert`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadStart(u64);

impl StateCache {
    /// A cache of at most about `max_bytes` (0: it holds nothing).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            shards: Default::default(),
            hasher: std::hash::RandomState::new(),
            epoch: AtomicU64::new(0),
            shard_bytes: max_bytes / SHARDS,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        use std::hash::BuildHasher as _;
        // A panic while holding a shard cannot leave it inconsistent for readers (one map
        // operation and a byte count); carry on.
        self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached latest value of `key` (`Some(None)`: cached as absent), or, on a miss, where
    /// the read began, for [`StateCache::insert`] after reading RocksDB.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ReadStart> {
        // Read the epoch before looking, so a commit landing after this point voids the insert.
        let start = ReadStart(self.epoch.load(Ordering::SeqCst));
        if self.shard_bytes > 0
            && let Some(v) = self.shard(key).map.get(key)
        {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(v.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        Err(start)
    }

    /// Keep what a reader read from RocksDB after a miss that began at `start`, unless a commit
    /// began landing since (the value may be the one it replaced).
    pub fn insert(&self, start: ReadStart, key: &[u8], value: Option<&Vec<u8>>) {
        let cost = charge(key, value);
        if cost > self.shard_bytes {
            return;
        }
        let mut shard = self.shard(key);
        if self.epoch.load(Ordering::SeqCst) != start.0 {
            return;
        }
        if shard.bytes + cost > self.shard_bytes {
            shard.map.clear();
            shard.bytes = 0;
        }
        shard.forget(key);
        shard.map.insert(key.to_vec(), value.cloned());
        shard.bytes += cost;
    }

    /// A commit's batch is about to land: forget every key it writes, so that until it has
    /// landed and [`StateCache::committed`] ran, those keys are read from RocksDB (which shows
    /// the batch whole or not at all, as without the cache), and void the inserts of reads
    /// begun before.
    pub fn landing(&self, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.shard_bytes == 0 {
            return;
        }
        for (key, _) in writes {
            self.shard(key).forget(key);
        }
    }

    /// A commit's writes have landed: every cached key among them (read again since
    /// [`StateCache::landing`]) takes its new value, unless that would pass the bound, in
    /// which case it is forgotten.
    pub fn committed(&self, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.shard_bytes == 0 {
            return;
        }
        for (key, value) in writes {
            let mut shard = self.shard(key);
            let Some(slot) = shard.map.get(key.as_slice()) else { continue };
            let (old, new) = (charge(key, slot.as_ref()), charge(key, value.as_ref()));
            if shard.bytes - old + new > self.shard_bytes {
                shard.forget(key);
            } else {
                shard.map.insert(key.clone(), value.clone());
                shard.bytes = shard.bytes - old + new;
            }
        }
    }

    pub fn stats(&self) -> StateCacheStats {
        let (mut entries, mut bytes) = (0, 0);
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(PoisonError::into_inner);
            entries += s.map.len();
            bytes += s.bytes;
        }
        StateCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries,
            bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::unnecessary_wraps)] // the cache's value type
    fn v(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    #[test]
    fn misses_then_hits_and_commits_update_what_is_held() {
        let c = StateCache::new(1 << 20);
        let start = c.get(b"a").unwrap_err();
        c.insert(start, b"a", v("1").as_ref());
        let start = c.get(b"gone").unwrap_err();
        c.insert(start, b"gone", None);
        assert_eq!(c.get(b"a").unwrap(), v("1"));
        assert_eq!(c.get(b"gone").unwrap(), None, "absent keys are cached as absent");
        c.committed(&[
            (b"a".to_vec(), v("2")),
            (b"gone".to_vec(), v("3")),
            (b"new".to_vec(), v("4")),
        ]);
        assert_eq!(c.get(b"a").unwrap(), v("2"));
        assert_eq!(c.get(b"gone").unwrap(), v("3"));
        assert!(c.get(b"new").is_err(), "a commit adds no entry");
        c.committed(&[(b"a".to_vec(), None)]);
        assert_eq!(c.get(b"a").unwrap(), None, "a deletion is cached as absent");
        let s = c.stats();
        assert_eq!((s.entries, s.hits, s.misses), (2, 5, 3));
        assert_eq!(s.bytes, charge(b"a", None) + charge(b"gone", v("3").as_ref()));
    }

    #[test]
    fn a_read_that_began_before_a_commit_is_not_kept() {
        let c = StateCache::new(1 << 20);
        let start = c.get(b"k").unwrap_err();
        // The reader read the old value; the commit lands and updates before it inserts.
        c.committed(&[(b"k".to_vec(), v("new"))]);
        c.insert(start, b"k", v("old").as_ref());
        assert!(c.get(b"k").is_err(), "the old value was dropped");
        // Inserted before the commit began: the commit's update overwrites it.
        let start = c.get(b"k").unwrap_err();
        c.insert(start, b"k", v("old").as_ref());
        c.committed(&[(b"k".to_vec(), v("new"))]);
        assert_eq!(c.get(b"k").unwrap(), v("new"));
    }

    #[test]
    fn a_landing_batch_is_read_from_rocksdb_and_updates_stay_bounded() {
        let c = StateCache::new(SHARDS * 1000);
        let start = c.get(b"a").unwrap_err();
        c.insert(start, b"a", v("old").as_ref());
        let before = c.get(b"x").unwrap_err(); // a read begun before the batch lands
        let w = [(b"a".to_vec(), v("new")), (b"x".to_vec(), v("new"))];
        c.landing(&w);
        assert!(c.get(b"a").is_err(), "the keys of a landing batch are read from RocksDB");
        // A read during the landing that saw the old value is overwritten by `committed`;
        // the one begun before the landing is not kept at all.
        let during = c.get(b"a").unwrap_err();
        c.insert(during, b"a", v("old").as_ref());
        c.insert(before, b"x", v("old").as_ref());
        c.committed(&w);
        assert_eq!(c.get(b"a").unwrap(), v("new"));
        assert!(c.get(b"x").is_err(), "the read begun before the landing was dropped");
        // A new value that would pass the shard's share is forgotten, not kept over it.
        let big = [(b"c".to_vec(), Some(vec![0; 990]))];
        c.landing(&big);
        let during = c.get(b"c").unwrap_err();
        c.insert(during, b"c", None);
        c.committed(&big);
        assert!(c.get(b"c").is_err());
        assert!(c.stats().bytes <= SHARDS * 1000, "{:?}", c.stats());
    }

    #[test]
    fn bounded_and_off() {
        let c = StateCache::new(SHARDS * 1000);
        for i in 0..10_000u32 {
            let key = i.to_be_bytes();
            let start = c.get(&key).unwrap_err();
            c.insert(start, &key, Some(&vec![0; 100]));
        }
        assert!(c.stats().bytes <= SHARDS * 1000, "{:?}", c.stats());
        let big = StateCache::new(SHARDS * 1000);
        let start = big.get(b"huge").unwrap_err();
        big.insert(start, b"huge", Some(&vec![0; 2000]));
        assert_eq!(big.stats().entries, 0, "a value over a shard's share is not kept");
        let off = StateCache::new(0);
        let start = off.get(b"a").unwrap_err();
        off.insert(start, b"a", v("1").as_ref());
        off.committed(&[(b"a".to_vec(), v("2"))]);
        assert!(off.get(b"a").is_err());
        assert_eq!(off.stats().entries, 0);
    }
}
