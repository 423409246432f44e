//! The RocksDB store: blocks, certificates, receipts, indexes and the versioned state tree.

mod commit;
mod integrity;
mod node_cache;
#[cfg(test)]
mod node_cache_props;
mod options;
mod prune;
pub(crate) mod schema;
mod snapshot;
mod state_cache;
#[cfg(test)]
mod test_blocks;
mod tree;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dpx_crypto::Hash;
use jmt::{JellyfishMerkleTree, RootHash};
use rocksdb::{Cache, ColumnFamily, DB, Direction, IteratorMode};

pub use commit::PreparedBlock;
pub use integrity::IntegrityReport;
use node_cache::NodeCache;
pub use node_cache::NodeCacheStats;
use schema::{
    CF_BLOCK_IDS, CF_CERTS, CF_HEADERS, CF_META, CF_RECEIPTS, CF_ROOTS, CF_STATE, CF_TX_INDEX,
    CF_TXS, FORMAT_VERSION, META_BASE, META_CHAIN_ID, META_FORMAT, META_GENESIS, META_OLDEST,
    META_TIP, pos_key, read_pos, read_roots, read_u64, u64_key,
};
pub use state_cache::StateCacheStats;
use tree::TreeView;

use crate::{
    Blake3Hasher, Block, Header, LedgerError, StateProof, StateRead, key_hash, state::MAX_KEY_BYTES,
};

/// A state key and its value.
pub type StateEntry = (Vec<u8>, Vec<u8>);

/// Most entries one [`Store::scan_prefix`] call returns.
pub const MAX_SCAN_LIMIT: usize = 10_000;

/// Bounds of [`StoreConfig::block_cache_bytes`]: 1 MiB ..= 64 GiB.
pub const BLOCK_CACHE_BYTES_RANGE: (usize, usize) = (1 << 20, 64 << 30);
/// Bound of [`StoreConfig::node_cache_nodes`].
pub const NODE_CACHE_NODES_MAX: usize = 50_000_000;
/// Bound of [`StoreConfig::node_cache_bytes`]: 64 GiB.
pub const NODE_CACHE_BYTES_MAX: usize = 64 << 30;
/// Bound of [`StoreConfig::state_cache_bytes`]: 64 GiB.
pub const STATE_CACHE_BYTES_MAX: usize = 64 << 30;

/// How a [`Store`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Keep this many latest state versions (at least 1); `None` keeps every version.
    pub retain_versions: Option<u64>,
    /// Sync the write-ahead log on every commit. Only tests and benchmarks turn this off.
    pub sync_writes: bool,
    /// Largest encoded block accepted by [`Store::commit_block`].
    pub max_block_bytes: usize,
    /// Largest commit certificate accepted.
    pub max_certificate_bytes: usize,
    /// Largest single receipt accepted.
    pub max_receipt_bytes: usize,
    /// RocksDB's block cache, shared by every column family; it also holds (and so bounds) the
    /// index and bloom-filter blocks. Within [`BLOCK_CACHE_BYTES_RANGE`]; default 64 MiB.
    pub block_cache_bytes: usize,
    /// Most decoded state-tree nodes kept in memory in front of RocksDB (at most
    /// [`NODE_CACHE_NODES_MAX`]; 0 turns the node cache off). Default 250,000.
    pub node_cache_nodes: usize,
    /// Most bytes (estimated) of that node cache (at most [`NODE_CACHE_BYTES_MAX`]; 0 turns it
    /// off). Default 128 MiB, about the top four levels of a tree of ten million keys.
    pub node_cache_bytes: usize,
    /// Most bytes (estimated) of latest-state values kept in memory in front of RocksDB, for
    /// the keys that are read (at most [`STATE_CACHE_BYTES_MAX`]; 0 turns it off). Default
    /// 64 MiB.
    pub state_cache_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            retain_versions: None,
            sync_writes: true,
            max_block_bytes: 32 << 20,
            max_certificate_bytes: 1 << 20,
            max_receipt_bytes: 1 << 20,
            block_cache_bytes: 64 << 20,
            node_cache_nodes: 250_000,
            node_cache_bytes: 128 << 20,
            state_cache_bytes: 64 << 20,
        }
    }
}

impl StoreConfig {
    /// Check every setting is within its bound.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if self.retain_versions == Some(0) {
            return Err(LedgerError::Integrity("retain_versions must be at least 1".into()));
        }
        let within = |setting, value, (min, max): (usize, usize)| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(LedgerError::Setting { setting, value, min, max })
            }
        };
        within("block_cache_bytes", self.block_cache_bytes, BLOCK_CACHE_BYTES_RANGE)?;
        within("node_cache_nodes", self.node_cache_nodes, (0, NODE_CACHE_NODES_MAX))?;
        within("node_cache_bytes", self.node_cache_bytes, (0, NODE_CACHE_BYTES_MAX))?;
        within("state_cache_bytes", self.state_cache_bytes, (0, STATE_CACHE_BYTES_MAX))
    }
}

/// The ledger's durable store. Cheap reads from any thread; commits are serialised internally.
pub struct Store {
    db: DB,
    path: PathBuf,
    chain_id: String,
    config: StoreConfig,
    tip: AtomicU64,
    oldest: AtomicU64,
    genesis_done: AtomicBool,
    /// The store's recorded format is older than [`FORMAT_VERSION`]: the next batch written
    /// records the new one.
    format_upgrade: AtomicBool,
    commit_lock: Mutex<()>,
    nodes: NodeCache,
    state: state_cache::StateCache,
    /// Kept for its usage figure; every column family holds a handle to it.
    block_cache: Cache,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("chain_id", &self.chain_id)
            .field("tip", &self.tip_height())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (or create) the store in `path` for `chain_id`.
    ///
    /// Refuses a directory written for another chain or by a newer format version. After a
    /// crash the store is at the last fully committed block: every commit is one atomic batch.
    pub fn open(
        path: impl AsRef<Path>,
        chain_id: &str,
        config: StoreConfig,
    ) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        config.validate()?;
        let block_cache = Cache::new_lru_cache(config.block_cache_bytes);
        let db = DB::open_cf_descriptors(
            &options::db_options(),
            &path,
            options::column_families(&block_cache),
        )?;
        let meta = db
            .cf_handle(CF_META)
            .ok_or_else(|| LedgerError::Corrupt("missing meta column family".into()))?;
        let upgrade = if let Some(raw) = db.get_cf(meta, META_FORMAT)? {
            let found = u32::from_be_bytes(
                raw.as_slice()
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt("bad format version".into()))?,
            );
            if found > FORMAT_VERSION {
                return Err(LedgerError::NewerFormat { path, found, supported: FORMAT_VERSION });
            }
            // Everything earlier is still read; what this binary writes may not be, so the
            // first batch it writes records the new format (and an older binary then refuses
            // the store). Opening alone changes nothing: an audit replaying from a stopped
            // node's home leaves it as its own binary expects.
            found < FORMAT_VERSION
        } else {
            // A store with a chain but no recorded format predates the record: format 1.
            db.get_cf(meta, META_CHAIN_ID)?.is_some()
        };
        match db.get_cf(meta, META_CHAIN_ID)? {
            Some(found) if found != chain_id.as_bytes() => {
                return Err(LedgerError::WrongChain {
                    path,
                    expected: chain_id.to_string(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                });
            }
            Some(_) => {}
            None => {
                let mut batch = rocksdb::WriteBatch::default();
                batch.put_cf(meta, META_CHAIN_ID, chain_id.as_bytes());
                batch.put_cf(meta, META_FORMAT, FORMAT_VERSION.to_be_bytes());
                let mut wo = rocksdb::WriteOptions::default();
                wo.set_sync(true);
                db.write_opt(batch, &wo)?;
            }
        }
        let tip = db.get_cf(meta, META_TIP)?.map(|b| read_u64(&b)).transpose()?.unwrap_or(0);
        let oldest = db.get_cf(meta, META_OLDEST)?.map(|b| read_u64(&b)).transpose()?.unwrap_or(0);
        let genesis_done = db.get_cf(meta, META_GENESIS)?.is_some();
        Ok(Self {
            db,
            path,
            chain_id: chain_id.to_string(),
            tip: AtomicU64::new(tip),
            oldest: AtomicU64::new(oldest),
            genesis_done: AtomicBool::new(genesis_done),
            format_upgrade: AtomicBool::new(upgrade),
            commit_lock: Mutex::new(()),
            nodes: NodeCache::new(config.node_cache_nodes, config.node_cache_bytes),
            state: state_cache::StateCache::new(config.state_cache_bytes),
            block_cache,
            config,
        })
    }

    pub(crate) fn cf(&self, name: &str) -> Result<&ColumnFamily, LedgerError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| LedgerError::Corrupt(format!("missing column family {name}")))
    }

    pub(crate) fn tree_view(&self) -> TreeView<'_> {
        TreeView::new(&self.db, Some(&self.nodes))
    }

    /// Stop RocksDB's background work (flushes and compactions), waiting for the jobs already
    /// running. For a process that must exit while something still holds the store (closing
    /// it, by dropping the last reference, is better): it then exits while the library is idle.
    /// Reads and writes still work; nothing is flushed or compacted any more until the store is
    /// opened again.
    pub fn quiesce(&self) {
        self.db.cancel_all_background_work(true);
    }

    /// The state-tree node cache's counters.
    pub fn node_cache_stats(&self) -> NodeCacheStats {
        self.nodes.stats()
    }

    /// The latest-state value cache's counters.
    pub fn state_cache_stats(&self) -> StateCacheStats {
        self.state.stats()
    }

    /// Bytes RocksDB's block cache holds now (data, index and filter blocks).
    pub fn block_cache_usage_bytes(&self) -> usize {
        self.block_cache.get_usage()
    }

    /// The chain this store belongs to.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The height of the snapshot this ledger began from, if it did: blocks below it are not
    /// here, and neither are its own block's receipts.
    pub fn snapshot_base(&self) -> Result<Option<u64>, LedgerError> {
        self.db.get_cf(self.cf(CF_META)?, META_BASE)?.map(|b| read_u64(&b)).transpose()
    }

    /// Height of the last committed block; 0 before the first block (genesis state only).
    pub fn tip_height(&self) -> u64 {
        self.tip.load(Ordering::Acquire)
    }

    /// Oldest state version still readable (moves up with pruning).
    pub fn oldest_version(&self) -> u64 {
        self.oldest.load(Ordering::Acquire)
    }

    /// Whether genesis state (or a snapshot) has been committed.
    pub fn has_genesis(&self) -> bool {
        self.genesis_done.load(Ordering::Acquire)
    }

    /// The header of the block at `height`.
    pub fn header(&self, height: u64) -> Result<Option<Header>, LedgerError> {
        self.db
            .get_pinned_cf(self.cf(CF_HEADERS)?, u64_key(height))?
            .map(|b| Header::decode(&b, b.len()))
            .transpose()
    }

    /// The block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        let Some(header) = self.header(height)? else { return Ok(None) };
        let mut txs = Vec::new();
        let prefix = u64_key(height);
        let iter =
            self.db.iterator_cf(self.cf(CF_TXS)?, IteratorMode::From(&prefix, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            txs.push(v.into_vec());
        }
        Ok(Some(Block { header, txs }))
    }

    /// Height of the block with id `id`.
    pub fn height_of(&self, id: &Hash) -> Result<Option<u64>, LedgerError> {
        self.db.get_pinned_cf(self.cf(CF_BLOCK_IDS)?, id.0)?.map(|b| read_u64(&b)).transpose()
    }

    /// The block with id `id`.
    pub fn block_by_id(&self, id: &Hash) -> Result<Option<Block>, LedgerError> {
        match self.height_of(id)? {
            Some(h) => self.block(h),
            None => Ok(None),
        }
    }

    /// The commit certificate stored with the block at `height`.
    pub fn certificate(&self, height: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.db.get_cf(self.cf(CF_CERTS)?, u64_key(height))?)
    }

    /// The receipts of the block at `height`, in transaction order (empty if none).
    pub fn receipts(&self, height: u64) -> Result<Vec<Vec<u8>>, LedgerError> {
        let prefix = u64_key(height);
        let mut out = Vec::new();
        let iter = self
            .db
            .iterator_cf(self.cf(CF_RECEIPTS)?, IteratorMode::From(&prefix, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(v.into_vec());
        }
        Ok(out)
    }

    fn tx_position(&self, tx_hash: &Hash) -> Result<Option<(u64, u32)>, LedgerError> {
        self.db.get_pinned_cf(self.cf(CF_TX_INDEX)?, tx_hash.0)?.map(|b| read_pos(&b)).transpose()
    }

    /// The receipt of a transaction: (height, index in block, receipt bytes).
    pub fn receipt(&self, tx_hash: &Hash) -> Result<Option<(u64, u32, Vec<u8>)>, LedgerError> {
        let Some((h, i)) = self.tx_position(tx_hash)? else { return Ok(None) };
        let r = self.db.get_cf(self.cf(CF_RECEIPTS)?, pos_key(h, i))?;
        Ok(r.map(|r| (h, i, r)))
    }

    /// A committed transaction: (height, index in block, transaction bytes). A transaction
    /// included more than once is indexed at its first inclusion.
    pub fn tx(&self, tx_hash: &Hash) -> Result<Option<(u64, u32, Vec<u8>)>, LedgerError> {
        let Some((h, i)) = self.tx_position(tx_hash)? else { return Ok(None) };
        let t = self.db.get_cf(self.cf(CF_TXS)?, pos_key(h, i))?;
        Ok(t.map(|t| (h, i, t)))
    }

    fn roots(&self, height: u64) -> Result<Option<(Hash, Hash)>, LedgerError> {
        self.db
            .get_pinned_cf(self.cf(CF_ROOTS)?, u64_key(height))?
            .map(|b| read_roots(&b))
            .transpose()
    }

    /// State root after the block at `height` (after genesis for 0).
    pub fn state_root(&self, height: u64) -> Result<Option<Hash>, LedgerError> {
        Ok(self.roots(height)?.map(|r| r.0))
    }

    /// [`crate::receipts_hash`] of the block at `height`'s receipts.
    pub fn block_receipts_hash(&self, height: u64) -> Result<Option<Hash>, LedgerError> {
        Ok(self.roots(height)?.map(|r| r.1))
    }

    fn check_version(&self, version: u64) -> Result<(), LedgerError> {
        let (oldest, tip) = (self.oldest_version(), self.tip_height());
        if !self.has_genesis() || version < oldest || version > tip {
            return Err(LedgerError::VersionUnavailable { version, oldest, tip });
        }
        Ok(())
    }

    /// The value of `key` in the state after block `version` (0 = genesis state).
    pub fn get(&self, key: &[u8], version: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        self.check_version(version)?;
        Ok(self.tree_view().value_at(version, key_hash(key))?.and_then(|(_, v)| v))
    }

    /// The value of `key` in the latest state.
    pub fn get_latest(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        match self.state.get(key) {
            Ok(value) => Ok(value),
            Err(start) => {
                let value = self.db.get_cf(self.cf(CF_STATE)?, key)?;
                self.state.insert(start, key, value.as_ref());
                Ok(value)
            }
        }
    }

    /// The value of `key` at `version` with a proof against [`Store::state_root`]`(version)`;
    /// an exclusion proof when the key holds nothing.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: u64,
    ) -> Result<(Option<Vec<u8>>, StateProof), LedgerError> {
        self.check_version(version)?;
        let view = self.tree_view();
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&view);
        let (value, proof) = tree
            .get_with_proof(key_hash(key), version)
            .map_err(|e| LedgerError::Tree(e.to_string()))?;
        Ok((value, StateProof::from_jmt(&proof)?))
    }

    /// Up to `limit` (capped at [`MAX_SCAN_LIMIT`]) entries of the latest state whose key starts
    /// with `prefix`, in key order, starting after `start_after` (for paging).
    pub fn scan_prefix(
        &self,
        prefix: &[u8],
        start_after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<StateEntry>, LedgerError> {
        LedgerError::check_len("prefix", prefix.len(), MAX_KEY_BYTES)?;
        let start = match start_after {
            Some(after) if after >= prefix => {
                LedgerError::check_len("start_after", after.len(), MAX_KEY_BYTES)?;
                // The smallest key strictly greater than `after`.
                let mut s = after.to_vec();
                s.push(0);
                s
            }
            _ => prefix.to_vec(),
        };
        let limit = limit.min(MAX_SCAN_LIMIT);
        let mut out = Vec::new();
        let iter =
            self.db.iterator_cf(self.cf(CF_STATE)?, IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    /// Up to `limit` (capped at [`MAX_SCAN_LIMIT`]) keys of the latest state in `[from, to)`,
    /// ascending.
    pub fn keys_in_latest(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, LedgerError> {
        LedgerError::check_len("from", from.len(), MAX_KEY_BYTES)?;
        LedgerError::check_len("to", to.len(), MAX_KEY_BYTES)?;
        let limit = limit.min(MAX_SCAN_LIMIT);
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        let iter =
            self.db.iterator_cf(self.cf(CF_STATE)?, IteratorMode::From(from, Direction::Forward));
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, _) = item?;
            if &*k >= to {
                break;
            }
            out.push(k.into_vec());
        }
        Ok(out)
    }

    /// The root the state would have after applying `writes` on top of the tip (nothing is
    /// written).
    pub fn compute_root(&self, writes: &crate::WriteSet) -> Result<Hash, LedgerError> {
        if !self.has_genesis() {
            return Err(LedgerError::NoGenesis);
        }
        let view = self.tree_view();
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&view);
        let (root, _) = tree
            .put_value_set(
                writes.iter().map(|(k, v)| (key_hash(k), v.clone())),
                self.tip_height() + 1,
            )
            .map_err(|e| LedgerError::Tree(e.to_string()))?;
        Ok(root_hash(root))
    }
}

impl StateRead for Store {
    fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LedgerError> {
        self.get_latest(key)
    }
    fn keys_in(&self, from: &[u8], to: &[u8], limit: usize) -> Result<Vec<Vec<u8>>, LedgerError> {
        self.keys_in_latest(from, to, limit)
    }
}

pub(crate) fn root_hash(r: RootHash) -> Hash {
    Hash(r.0)
}
