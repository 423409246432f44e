//! The state the contracts read and write: a plain key-value map supplied by the caller.
//!
//! Execution only ever gets, puts and deletes single keys (it never scans a prefix), so any
//! authenticated store (the ledger's Jellyfish Merkle tree) can back it.

use std::collections::BTreeMap;

use dpx_crypto::{Domain, Hash, HashWriter};

/// Key-value access for execution.
pub trait State {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>);
    fn delete(&mut self, key: &[u8]);
}

/// An in-memory state, for tests, benches and tools.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemState {
    pub map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A digest of every entry in key order; two states are equal iff their roots are
    /// (collisions aside). Stands in for the ledger's state root in tests.
    pub fn root(&self) -> Hash {
        let mut w = HashWriter::new(Domain::new("dpx/memstate-root/v1"), "");
        for (k, v) in &self.map {
            w.update(k).update(v);
        }
        w.finish()
    }

    /// Entries whose key starts with `prefix`, for tests and tools (execution never scans).
    pub fn scan<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.map
            .range(prefix.to_vec()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
}

impl State for MemState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.map.get(key).cloned()
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.map.insert(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }
}

impl<S: State + ?Sized> State for &mut S {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        (**self).get(key)
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        (**self).put(key, value);
    }
    fn delete(&mut self, key: &[u8]) {
        (**self).delete(key);
    }
}

/// Writes staged over a read-only base, applied only if the transaction succeeds; this is how a
/// failed transaction changes nothing.
#[derive(Debug)]
pub(crate) struct Overlay<'a, S: State + ?Sized> {
    base: &'a S,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a, S: State + ?Sized> Overlay<'a, S> {
    pub(crate) fn new(base: &'a S) -> Self {
        Self { base, writes: BTreeMap::new() }
    }

    /// The staged writes (`None` = delete), in key order.
    pub(crate) fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }
}

impl<S: State + ?Sized> State for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(v) => v.clone(),
            None => self.base.get(key),
        }
    }
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }
    fn delete(&mut self, key: &[u8]) {
        self.writes.insert(key.to_vec(), None);
    }
}

pub(crate) fn apply<S: State + ?Sized>(state: &mut S, writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
    for (k, v) in writes {
        match v {
            Some(v) => state.put(k, v),
            None => state.delete(&k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_stages_and_applies() {
        let mut s = MemState::new();
        s.put(b"a".to_vec(), b"1".to_vec());
        s.put(b"b".to_vec(), b"2".to_vec());
        let mut o = Overlay::new(&s);
        o.put(b"a".to_vec(), b"9".to_vec());
        o.delete(b"b");
        assert_eq!(o.get(b"a"), Some(b"9".to_vec()));
        assert_eq!(o.get(b"b"), None);
        let w = o.into_writes();
        assert_eq!(s.get(b"a"), Some(b"1".to_vec()), "base untouched until applied");
        apply(&mut s, w);
        assert_eq!(s.get(b"a"), Some(b"9".to_vec()));
        assert_eq!(s.get(b"b"), None);
    }

    #[test]
    fn root_tracks_content() {
        let mut a = MemState::new();
        let mut b = MemState::new();
        assert_eq!(a.root(), b.root());
        a.put(b"k".to_vec(), b"v".to_vec());
        assert_ne!(a.root(), b.root());
        b.put(b"k".to_vec(), b"v".to_vec());
        assert_eq!(a.root(), b.root());
        assert_eq!(a.scan(b"k").count(), 1);
    }
}
