//! Read-only views of the ledger as the contracts' [`State`]: the latest state (admission
//! checks, parameters, the next validator set) and the state after a committed block
//! (validator sets of past heights).
//!
//! The contracts' `State` is infallible, so a failed read is recorded and answered as absent;
//! the caller asks for the error afterwards and must not trust the answer if there was one.

use std::cell::RefCell;

use dpx_contracts::{OrderedState, State};
use dpx_ledger::Store;

/// The latest committed state, read-only (also the RPC's view for the read policy).
pub struct LatestState<'a> {
    store: &'a Store,
    error: RefCell<Option<String>>,
}

impl std::fmt::Debug for LatestState<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatestState").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<'a> LatestState<'a> {
    pub fn new(store: &'a Store) -> Self {
        Self { store, error: RefCell::new(None) }
    }

    /// The first failed read (or refused write) so far, if any.
    pub fn error(&self) -> Option<String> {
        self.error.borrow().clone()
    }

    /// The first failed read (or refused write), if any.
    pub fn into_error(self) -> Option<String> {
        self.error.into_inner()
    }
}

impl State for LatestState<'_> {
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

impl OrderedState for LatestState<'_> {
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Vec<Vec<u8>> {
        self.store.keys_in_latest(from, to, limit).unwrap_or_else(|e| {
            *self.error.borrow_mut() = Some(e.to_string());
            Vec::new()
        })
    }
}

/// The state as it was after block `version` (read through the versioned tree).
pub(crate) struct VersionState<'a> {
    store: &'a Store,
    version: u64,
    error: RefCell<Option<String>>,
}

impl<'a> VersionState<'a> {
    pub(crate) fn new(store: &'a Store, version: u64) -> Self {
        Self { store, version, error: RefCell::new(None) }
    }

    /// The first failed read (or refused write), if any.
    pub(crate) fn into_error(self) -> Option<String> {
        self.error.into_inner()
    }
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
