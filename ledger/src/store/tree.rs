//! The Jellyfish Merkle tree's view of RocksDB.

use jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use jmt::{KeyHash, OwnedValue, Version};
use rocksdb::DB;

use super::node_cache::NodeCache;
use super::schema::{CF_NODES, CF_VALUES, decode_node, decode_value, node_key, value_key};
use crate::LedgerError;

/// The version of a value entry and the value (`None`: deleted at that version).
pub(crate) type VersionedValue = (Version, Option<Vec<u8>>);

/// Reads tree nodes and versioned values from the store.
pub(crate) struct TreeView<'a> {
    pub db: &'a DB,
    /// Tree nodes in memory, consulted before RocksDB (`None`: read RocksDB only).
    pub cache: Option<&'a NodeCache>,
    /// Pretend an empty root exists at this version: a snapshot imported at height `h` grows its
    /// tree from an empty one at `h - 1`, which was never written.
    pub empty_root_at: Option<Version>,
}

impl<'a> TreeView<'a> {
    pub fn new(db: &'a DB, cache: Option<&'a NodeCache>) -> Self {
        Self { db, cache, empty_root_at: None }
    }

    fn cf(&self, name: &str) -> Result<&rocksdb::ColumnFamily, LedgerError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| LedgerError::Corrupt(format!("missing column family {name}")))
    }

    /// Latest value entry of `key_hash` at or below `max_version`: `Some((version, value))`,
    /// with `value` `None` for a deletion.
    pub fn value_at(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> Result<Option<VersionedValue>, LedgerError> {
        let mut it = self.db.raw_iterator_cf(self.cf(CF_VALUES)?);
        it.seek_for_prev(value_key(&key_hash, max_version));
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.len() == 40 && k[..32] == key_hash.0 => {
                let version = super::schema::read_u64(&k[32..])?;
                let (_, value) = decode_value(v)?;
                Ok(Some((version, value.map(<[u8]>::to_vec))))
            }
            _ => {
                it.status()?;
                Ok(None)
            }
        }
    }
}

impl TreeReader for TreeView<'_> {
    fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if self.empty_root_at == Some(key.version()) && key.nibble_path().num_nibbles() == 0 {
            return Ok(Some(Node::Null));
        }
        let k = node_key(key)?;
        let epoch = match self.cache.map(|c| c.get(&k)) {
            Some((Some(node), _)) => return Ok(Some(node)),
            Some((None, epoch)) => Some(epoch),
            None => None,
        };
        let Some(bytes) = self.db.get_pinned_cf(self.cf(CF_NODES)?, &k)? else { return Ok(None) };
        let node = decode_node(&bytes)?;
        if let (Some(cache), Some(epoch)) = (self.cache, epoch) {
            cache.insert_read(k, node.clone(), epoch);
        }
        Ok(Some(node))
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value_at(max_version, key_hash)?.and_then(|(_, v)| v))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's restore machinery asks for this; snapshots here are rebuilt with
        // `put_value_set` instead.
        anyhow::bail!("get_rightmost_leaf is not supported by the dpx store")
    }
}

/// A tree with no nodes at all, to recompute a root from scratch (integrity checks).
pub(crate) struct EmptyTree;

impl TreeReader for EmptyTree {
    fn get_node_option(&self, _key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(None)
    }
    fn get_value_option(&self, _v: Version, _k: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(None)
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        Ok(None)
    }
}
