//! The write overlay a block executes on: reads fall through to the committed state, writes stay
//! in memory until [`crate::Store::commit_block`] applies them atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::{LedgerError, MAX_KEY_BYTES, MAX_VALUE_BYTES};

/// A block's state changes: key → new value, or `None` for a deletion. Ordered, so applying it
/// is deterministic.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Read access to committed state (the store's latest state, or a plain map in tests).
pub trait StateRead {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError>;
    /// Up to `limit` keys in `[from, to)`, ascending. Execution makes one such read per block
    /// (the destruction due-queue at block start); everything else reads by key.
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, LedgerError>;
}

impl StateRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.get(key).cloned())
    }
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, LedgerError> {
        if from >= to {
            return Ok(Vec::new());
        }
        Ok(self.range(from.to_vec()..to.to_vec()).take(limit).map(|(k, _)| k.clone()).collect())
    }
}

/// A written key and the overlay entry it replaced (`None`: the key was not in the overlay).
type JournalEntry = (Vec<u8>, Option<Option<Vec<u8>>>);

/// A position in an [`Overlay`]'s history to roll back to (e.g. when one transaction fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

/// A write set layered over committed state.
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    writes: WriteSet,
    /// Previous overlay entry of each written key, newest last, so a savepoint can be undone.
    journal: Vec<JournalEntry>,
}

impl fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Overlay")
            .field("writes", &self.writes.len())
            .field("journal", &self.journal.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Overlay<'a> {
    /// An empty overlay over `base`.
    pub fn new(base: &'a dyn StateRead) -> Self {
        Self { base, writes: WriteSet::new(), journal: Vec::new() }
    }

    /// The value of `key` as this overlay sees it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.read(key),
        }
    }

    /// Set `key` to `value`. Keys and values are bounded by [`MAX_KEY_BYTES`] and
    /// [`MAX_VALUE_BYTES`].
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), LedgerError> {
        LedgerError::check_len("state value", value.len(), MAX_VALUE_BYTES)?;
        self.set(key, Some(value))
    }

    /// Delete `key` (a no-op for the state root if it does not exist).
    pub fn delete(&mut self, key: Vec<u8>) -> Result<(), LedgerError> {
        self.set(key, None)
    }

    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<(), LedgerError> {
        LedgerError::check_len("state key", key.len(), MAX_KEY_BYTES)?;
        let previous = self.writes.insert(key.clone(), value);
        self.journal.push((key, previous));
        Ok(())
    }

    /// Up to `limit` keys in `[from, to)` as this overlay sees them (committed keys, minus the
    /// ones deleted here, plus the ones written here), ascending.
    pub fn keys_in(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, LedgerError> {
        if from >= to || limit == 0 {
            return Ok(Vec::new());
        }
        let pending: Vec<_> = self.writes.range(from.to_vec()..to.to_vec()).collect();
        // Every deleted key may hide one of the base's first keys: ask for that many more, so
        // at least `limit` base keys survive whenever the base has them. A base key not
        // fetched sorts after all fetched ones, so the first `limit` of the merge are exact.
        let deleted = pending.iter().filter(|(_, v)| v.is_none()).count();
        let mut keys: BTreeSet<Vec<u8>> =
            self.base.keys_in(from, to, limit.saturating_add(deleted))?.into_iter().collect();
        for (k, v) in pending {
            if v.is_some() {
                keys.insert(k.clone());
            } else {
                keys.remove(k);
            }
        }
        Ok(keys.into_iter().take(limit).collect())
    }

    /// Mark the current position.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.journal.len())
    }

    /// Undo every write made since `sp`.
    pub fn rollback(&mut self, sp: Savepoint) {
        while self.journal.len() > sp.0 {
            let Some((key, previous)) = self.journal.pop() else { break };
            match previous {
                Some(v) => self.writes.insert(key, v),
                None => self.writes.remove(&key),
            };
        }
    }

    /// The pending writes.
    pub fn writes(&self) -> &WriteSet {
        &self.writes
    }

    /// Finish execution: the write set to hand to [`crate::Store::commit_block`].
    pub fn into_writes(self) -> WriteSet {
        self.writes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fall_through_and_rollback_restores() {
        let mut base = BTreeMap::new();
        base.insert(b"a".to_vec(), b"1".to_vec());
        let mut o = Overlay::new(&base);
        assert_eq!(o.get(b"a").unwrap(), Some(b"1".to_vec()));
        o.put(b"b".to_vec(), b"2".to_vec()).unwrap();
        let sp = o.savepoint();
        o.delete(b"a".to_vec()).unwrap();
        o.put(b"b".to_vec(), b"3".to_vec()).unwrap();
        o.put(b"c".to_vec(), b"4".to_vec()).unwrap();
        assert_eq!(o.get(b"a").unwrap(), None);
        o.rollback(sp);
        assert_eq!(o.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(o.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(o.get(b"c").unwrap(), None);
        let w = o.into_writes();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn oversized_input_is_an_error() {
        let base = BTreeMap::new();
        let mut o = Overlay::new(&base);
        assert!(o.put(vec![0; MAX_KEY_BYTES + 1], vec![]).is_err());
        assert!(o.put(vec![0], vec![0; MAX_VALUE_BYTES + 1]).is_err());
        assert!(o.writes().is_empty());
    }

    proptest::proptest! {
        /// The overlay's ordered read equals a range over the base with the writes applied,
        /// whatever the limit and however many of the base's first keys were deleted.
        #[test]
        fn keys_in_matches_the_merged_state(
            base_keys in proptest::collection::btree_set(0u8..40, 0..30),
            writes in proptest::collection::vec((0u8..40, proptest::bool::ANY), 0..30),
            from in 0u8..40,
            len in 0u8..45,
            limit in 0usize..12,
        ) {
            let base: BTreeMap<Vec<u8>, Vec<u8>> =
                base_keys.iter().map(|k| (vec![*k], vec![1])).collect();
            let mut o = Overlay::new(&base);
            let mut model = base.clone();
            for (k, put) in &writes {
                if *put {
                    o.put(vec![*k], vec![2]).unwrap();
                    model.insert(vec![*k], vec![2]);
                } else {
                    o.delete(vec![*k]).unwrap();
                    model.remove(&vec![*k]);
                }
            }
            let to = from.saturating_add(len);
            let got = o.keys_in(&[from], &[to], limit).unwrap();
            let want = model.keys_in(&[from], &[to], limit).unwrap();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
