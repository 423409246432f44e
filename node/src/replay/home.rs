//! A stopped node's home directory: blocks, certificates and everything the node recorded
//! about each block's outcome, which the replay compares with its own.

use std::path::{Path, PathBuf};

use dpx_app::replay::{Fetched, ReplayError, Source};
use dpx_crypto::Hash;
use dpx_ledger::{LedgerError, StateEntry, Store, StoreConfig};

use super::src;

/// Whether a ledger error means the stored bytes are bad (a finding) rather than the disk
/// failing (an error).
fn is_corrupt(e: &LedgerError) -> bool {
    matches!(
        e,
        LedgerError::Decode { .. }
            | LedgerError::NonCanonical { .. }
            | LedgerError::Corrupt(_)
            | LedgerError::TooLarge { .. }
    )
}

/// The ledger in a (stopped) node's home directory, or a ledger directory itself.
#[derive(Debug)]
pub struct HomeSource {
    path: PathBuf,
    store: Store,
}

impl HomeSource {
    /// Open `dir/data/ledger` (or `dir` if it is the ledger directory) for `chain_id`.
    ///
    /// The ledger store has no read-only mode, so the node must be stopped (RocksDB's lock
    /// refuses a second opener); nothing is written to it by the replay.
    pub fn open(dir: &Path, chain_id: &str) -> Result<Self, ReplayError> {
        let nested = crate::config::Home(dir.to_path_buf()).ledger();
        let path = if nested.join("CURRENT").exists() { nested } else { dir.to_path_buf() };
        if !path.join("CURRENT").exists() {
            return Err(src(format!(
                "{} holds no ledger (expected HOME/data/ledger)",
                dir.display()
            )));
        }
        let store = Store::open(&path, chain_id, StoreConfig::default())
            .map_err(|e| src(format!("opening {} (is its node stopped?): {e}", path.display())))?;
        if !store.has_genesis() {
            return Err(src(format!("{} has no genesis state", path.display())));
        }
        Ok(Self { path, store })
    }

    /// The opened store (for tools and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Source for HomeSource {
    fn describe(&self) -> String {
        format!("home {}", self.path.display())
    }

    fn tip(&mut self) -> Result<u64, ReplayError> {
        Ok(self.store.tip_height())
    }

    fn fetch(&mut self, height: u64) -> Result<Fetched, ReplayError> {
        let block = match self.store.block(height) {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Fetched::Missing),
            Err(e) if is_corrupt(&e) => {
                return Ok(Fetched::Corrupt(format!("stored block {height}: {e}")));
            }
            Err(e) => return Err(src(e)),
        };
        let certificate = self.store.certificate(height).map_err(src)?;
        Ok(Fetched::Block { block: Box::new(block), certificate })
    }

    fn stored_receipts(&mut self, height: u64) -> Result<Option<Vec<Vec<u8>>>, ReplayError> {
        self.store.receipts(height).map(Some).map_err(src)
    }

    fn stored_roots(&mut self, height: u64) -> Result<Option<(Hash, Hash)>, ReplayError> {
        let root = self.store.state_root(height).map_err(src)?;
        let receipts = self.store.block_receipts_hash(height).map_err(src)?;
        Ok(root.zip(receipts))
    }

    fn stored_value(
        &mut self,
        key: &[u8],
        version: u64,
    ) -> Result<Option<Option<Vec<u8>>>, ReplayError> {
        match self.store.get(key, version) {
            Ok(v) => Ok(Some(v)),
            // Pruned: the source no longer keeps that version.
            Err(LedgerError::VersionUnavailable { .. }) => Ok(None),
            Err(e) if is_corrupt(&e) => Ok(Some(Some(format!("<corrupt: {e}>").into_bytes()))),
            Err(e) => Err(src(e)),
        }
    }

    fn latest_state(
        &mut self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Option<Vec<StateEntry>>, ReplayError> {
        self.store.scan_prefix(b"", after, limit).map(Some).map_err(src)
    }
}
