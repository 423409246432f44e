//! Genesis and block commit: everything a block changes goes into one synced `WriteBatch`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use dpx_crypto::Hash;
use jmt::JellyfishMerkleTree;
use jmt::storage::{Node, TreeUpdateBatch};
use rocksdb::{WriteBatch, WriteOptions};

use super::schema::{
    CF_BLOCK_IDS, CF_CERTS, CF_HEADERS, CF_META, CF_NODES, CF_RECEIPTS, CF_ROOTS, CF_STALE,
    CF_STATE, CF_TX_INDEX, CF_TXS, CF_VALUES, FORMAT_VERSION, META_FORMAT, META_GENESIS,
    META_OLDEST, META_TIP, STALE_BATCH, STALE_NODE, STALE_VALUE, encode_node, encode_value,
    node_key, pos_key, push_stale, roots_value, stale_key, u64_key, value_key,
};
use super::tree::TreeView;
use super::{Store, root_hash};
use crate::{
    Blake3Hasher, Block, LedgerError, MAX_KEY_BYTES, MAX_VALUE_BYTES, TxHashes, WriteSet, key_hash,
    receipts_hash,
};

/// What a batch does to the tree nodes, for the node cache once the batch has landed.
#[derive(Default)]
pub(crate) struct NodeChanges {
    /// Encoded key and node of every node written.
    pub written: Vec<(Vec<u8>, Node)>,
    /// Encoded keys of every node deleted.
    pub deleted: Vec<Vec<u8>>,
    /// Every latest-state key written, with its new value (`None`: deleted), for the state
    /// cache once the batch has landed.
    pub state: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// A block made ready to commit ahead of its decision ([`Store::prepare_block`]): its state
/// change run through the tree, and the whole write batch staged but for the certificates and
/// the new tip, which [`Store::commit_prepared`] adds before writing it.
pub struct PreparedBlock {
    height: u64,
    block_id: Hash,
    /// The tip's state root it was prepared on.
    base_root: Hash,
    root: Hash,
    cutoff: Option<u64>,
    batch: WriteBatch,
    nodes: NodeChanges,
}

impl PreparedBlock {
    /// The height of the block it was prepared for.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The state root after the block.
    pub fn root(&self) -> Hash {
        self.root
    }
}

impl std::fmt::Debug for PreparedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedBlock")
            .field("height", &self.height)
            .field("block_id", &self.block_id)
            .field("root", &self.root)
            .field("batch_len", &self.batch.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Write `batch`, then bring the node cache in line with what it did to the tree nodes.
    pub(crate) fn write(
        &self,
        mut batch: WriteBatch,
        nodes: NodeChanges,
    ) -> Result<(), LedgerError> {
        let upgrade = self.format_upgrade.load(Ordering::Acquire);
        if upgrade {
            batch.put_cf(self.cf(CF_META)?, META_FORMAT, FORMAT_VERSION.to_be_bytes());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(self.config.sync_writes);
        self.state.landing(&nodes.state);
        self.db.write_opt(batch, &wo)?;
        // At once, before anything that could fail or panic: every later read sees the batch.
        self.state.committed(&nodes.state);
        if upgrade {
            self.format_upgrade.store(false, Ordering::Release);
        }
        // Deletions first: `forget` moves the epoch, so a reader that fetched a deleted node
        // before the batch cannot put it back.
        if !nodes.deleted.is_empty() {
            self.nodes.forget(&nodes.deleted);
        }
        self.nodes.insert_committed(nodes.written);
        Ok(())
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // A poisoned lock only means another commit panicked before writing; the store on disk
        // is still at a committed block, so carry on.
        self.commit_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Commit the genesis state (version 0) and return its root. Only once per store.
    #[allow(clippy::needless_pass_by_value)] // owns the write set, like `commit_block`
    pub fn genesis(&self, writes: WriteSet) -> Result<Hash, LedgerError> {
        let _guard = self.lock();
        if self.has_genesis() {
            return Err(LedgerError::GenesisDone);
        }
        check_writes(&writes)?;
        let view = self.tree_view();
        let (root, update) = apply_tree(&view, &writes, 0)?;
        let mut batch = WriteBatch::default();
        let mut nodes = NodeChanges::default();
        self.stage_tree(&mut batch, &mut nodes, &writes, &update, 0, None)?;
        batch.put_cf(self.cf(CF_ROOTS)?, u64_key(0), roots_value(&root, &receipts_hash(&[])));
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, META_TIP, u64_key(0));
        batch.put_cf(meta, META_OLDEST, u64_key(0));
        batch.put_cf(meta, META_GENESIS, [1]);
        self.write(batch, nodes)?;
        self.genesis_done.store(true, Ordering::Release);
        Ok(root)
    }

    /// Commit a decided block with its certificate, the write set its execution produced and
    /// one receipt per transaction; return the new state root.
    ///
    /// Checks the block extends the tip (height, chain, parent id, previous state root and
    /// receipts hash, tx root), then writes the block, certificate, tree nodes, flat state,
    /// receipts, tx index and new tip as one `WriteBatch` with a synced write-ahead log: after a
    /// crash the store holds all of it or none of it. The tx index is asked once per block,
    /// for all its transactions together (first inclusion wins).
    // Takes the overlay's write set and the receipts by value: they are consumed by the commit.
    #[allow(clippy::needless_pass_by_value)]
    pub fn commit_block(
        &self,
        block: &Block,
        certificate: &[u8],
        writes: WriteSet,
        receipts: Vec<Vec<u8>>,
    ) -> Result<Hash, LedgerError> {
        self.commit_block_with_parent_certificate(block, certificate, None, writes, receipts)
    }

    /// [`Store::commit_block`], also replacing the stored certificate of the parent block with
    /// `parent_certificate` in the same atomic batch.
    ///
    /// Several valid certificates can exist for one block (any > 2/3 subset of precommits).
    /// The canonical one is the certificate the *next* header commits to
    /// (`parent_certificate_hash`), known only when that next block commits: the node passes it
    /// here so the store always holds, below the tip, exactly the certificate the chain names.
    #[allow(clippy::needless_pass_by_value)] // see `commit_block`
    pub fn commit_block_with_parent_certificate(
        &self,
        block: &Block,
        certificate: &[u8],
        parent_certificate: Option<&[u8]>,
        writes: WriteSet,
        receipts: Vec<Vec<u8>>,
    ) -> Result<Hash, LedgerError> {
        let prepared = self.prepare_block(block, &TxHashes::of(&block.txs), &writes, &receipts)?;
        self.commit_prepared(block, certificate, parent_certificate, prepared)
    }

    /// Everything of a commit but the write, done ahead: check that `block` extends the tip
    /// (`hashes` are its transactions' digests and root, made once by the caller),
    /// run `writes` (its execution's) through the Jellyfish tree and stage the tree nodes,
    /// values, flat state, block, receipts and tx index in one batch — writing nothing.
    /// [`Store::commit_prepared`] then adds the certificates and the new tip and writes it,
    /// and refuses unless the tip is still the one it was prepared on.
    ///
    /// This is what lets a node execute a proposal while the votes on it are collected
    /// (`dpx-node`'s speculative execution): most of a commit's cost is paid before the block
    /// is decided. Nothing may commit while a preparation reads the store (the node's driver
    /// is the only writer, and settles a preparation before it commits anything); a tip that
    /// moved anyway is caught at commit.
    pub fn prepare_block(
        &self,
        block: &Block,
        hashes: &TxHashes,
        writes: &WriteSet,
        receipts: &[Vec<u8>],
    ) -> Result<PreparedBlock, LedgerError> {
        let height = self.check_extends(block, hashes)?;
        if receipts.len() != block.txs.len() {
            return Err(LedgerError::ReceiptCount {
                txs: block.txs.len(),
                receipts: receipts.len(),
            });
        }
        for r in receipts {
            LedgerError::check_len("receipt", r.len(), self.config.max_receipt_bytes)?;
        }
        check_writes(writes)?;
        let view = self.tree_view();
        let (root, update) = apply_tree(&view, writes, height)?;
        let cutoff = self.prune_cutoff(height);
        let mut batch = WriteBatch::default();
        let mut nodes = NodeChanges::default();
        self.stage_tree(&mut batch, &mut nodes, writes, &update, height, cutoff)?;
        self.stage_block(&mut batch, block, hashes.digests(), receipts, height, &root)?;
        Ok(PreparedBlock {
            height,
            block_id: block.id(),
            base_root: block.header.state_root,
            root,
            cutoff,
            batch,
            nodes,
        })
    }

    /// Write a block [prepared](Store::prepare_block) ahead, with its certificate (and the
    /// parent's, as in [`Store::commit_block_with_parent_certificate`], which is exactly
    /// `prepare_block` followed by this), as one synced batch. Refused, writing nothing, when
    /// `block` is not the prepared one or the tip is no longer the one it was prepared on.
    #[allow(clippy::needless_pass_by_value)] // consumes the prepared batch
    pub fn commit_prepared(
        &self,
        block: &Block,
        certificate: &[u8],
        parent_certificate: Option<&[u8]>,
        prepared: PreparedBlock,
    ) -> Result<Hash, LedgerError> {
        let _guard = self.lock();
        let PreparedBlock { height, block_id, base_root, root, cutoff, mut batch, mut nodes } =
            prepared;
        let stale = || LedgerError::StalePreparation { prepared_on: height - 1, root: base_root };
        // The tip only grows, so a tip of the same height with the same root is the tip the
        // block was checked against; `block_id` binds the header, and with it every field
        // `check_extends` compared.
        let tip = self.tip_height();
        if tip + 1 != height || self.roots(tip)?.map(|r| r.0) != Some(base_root) {
            return Err(stale());
        }
        if block.id() != block_id {
            return Err(LedgerError::HeaderMismatch {
                field: "id (not the prepared block)",
                expected: block_id,
                found: block.id(),
            });
        }
        if cutoff != self.prune_cutoff(height) {
            return Err(stale());
        }
        LedgerError::check_len(
            "certificate",
            certificate.len(),
            self.config.max_certificate_bytes,
        )?;
        batch.put_cf(self.cf(CF_CERTS)?, u64_key(height), certificate);
        if let Some(parent) = parent_certificate.filter(|_| height > 1) {
            LedgerError::check_len(
                "parent certificate",
                parent.len(),
                self.config.max_certificate_bytes,
            )?;
            batch.put_cf(self.cf(CF_CERTS)?, u64_key(height - 1), parent);
        }
        if let Some(cutoff) = cutoff {
            self.stage_prune(&mut batch, &mut nodes, cutoff)?;
        }
        batch.put_cf(self.cf(CF_META)?, META_TIP, u64_key(height));
        self.write(batch, nodes)?;
        self.tip.store(height, Ordering::Release);
        if let Some(cutoff) = cutoff {
            self.oldest.store(cutoff, Ordering::Release);
        }
        Ok(root)
    }

    /// The height `block` would take; errors unless it extends the tip exactly.
    fn check_extends(&self, block: &Block, hashes: &TxHashes) -> Result<u64, LedgerError> {
        if !self.has_genesis() {
            return Err(LedgerError::NoGenesis);
        }
        let h = &block.header;
        if h.chain_id != self.chain_id {
            return Err(LedgerError::BlockChain {
                expected: self.chain_id.clone(),
                found: h.chain_id.clone(),
            });
        }
        let tip = self.tip_height();
        if h.height != tip + 1 {
            return Err(LedgerError::NotNext { tip, found: h.height });
        }
        let parent_id = match self.header(tip)? {
            Some(parent) => parent.id(),
            None if tip == 0 => Hash::ZERO,
            None => return Err(LedgerError::Corrupt(format!("no header at tip {tip}"))),
        };
        let (state_root, prev_receipts) = self
            .roots(tip)?
            .ok_or_else(|| LedgerError::Corrupt(format!("no roots at tip {tip}")))?;
        let expect = |field, expected: Hash, found: Hash| {
            if expected == found {
                Ok(())
            } else {
                Err(LedgerError::HeaderMismatch { field, expected, found })
            }
        };
        expect("parent_id", parent_id, h.parent_id)?;
        expect("state_root", state_root, h.state_root)?;
        expect("prev_receipts_hash", prev_receipts, h.prev_receipts_hash)?;
        hashes.check(block)?;
        LedgerError::check_len("block", block.encoded_len(), self.config.max_block_bytes)?;
        Ok(h.height)
    }

    /// Tree nodes, versioned values, flat state and stale records for `version`.
    ///
    /// Anything going stale at or below `cutoff` is deleted at once instead of recorded.
    pub(crate) fn stage_tree(
        &self,
        batch: &mut WriteBatch,
        changes: &mut NodeChanges,
        writes: &WriteSet,
        update: &TreeUpdateBatch,
        version: u64,
        cutoff: Option<u64>,
    ) -> Result<(), LedgerError> {
        let (nodes, values, state, stale) =
            (self.cf(CF_NODES)?, self.cf(CF_VALUES)?, self.cf(CF_STATE)?, self.cf(CF_STALE)?);
        let prune_now = cutoff.is_some_and(|c| version <= c);
        changes.written.reserve(update.node_batch.nodes().len());
        for (key, node) in update.node_batch.nodes() {
            let k = node_key(key)?;
            batch.put_cf(nodes, &k, encode_node(node)?);
            changes.written.push((k, node.clone()));
        }
        // Stale records by the version they are stale since (this one), one entry per version.
        let mut stale_batches: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        for s in &update.stale_node_index_batch {
            let k = node_key(&s.node_key)?;
            if prune_now {
                batch.delete_cf(nodes, &k);
                changes.deleted.push(k);
            } else {
                push_stale(
                    stale_batches.entry(s.stale_since_version).or_default(),
                    STALE_NODE,
                    &k,
                )?;
            }
        }
        let view = self.tree_view();
        changes.state.reserve(writes.len());
        for (key, value) in writes {
            changes.state.push((key.clone(), value.clone()));
            let kh = key_hash(key);
            if version > 0 {
                // The entry this write supersedes is needed only by versions below `version`.
                if let Some((prev, _)) = view.value_at(version - 1, kh)? {
                    let prev_key = value_key(&kh, prev);
                    if prune_now {
                        batch.delete_cf(values, prev_key);
                    } else {
                        push_stale(
                            stale_batches.entry(version).or_default(),
                            STALE_VALUE,
                            &prev_key,
                        )?;
                    }
                }
            }
            batch.put_cf(values, value_key(&kh, version), encode_value(key, value.as_deref()));
            match value {
                Some(v) => batch.put_cf(state, key, v),
                None => batch.delete_cf(state, key),
            }
        }
        for (since, records) in stale_batches {
            // Each version is staged once (its commit, or the snapshot it is imported from),
            // so the entry is never overwritten.
            batch.put_cf(stale, stale_key(since, STALE_BATCH, &[]), records);
        }
        Ok(())
    }

    fn stage_block(
        &self,
        batch: &mut WriteBatch,
        block: &Block,
        hashes: &[Hash],
        receipts: &[Vec<u8>],
        height: u64,
        root: &Hash,
    ) -> Result<(), LedgerError> {
        let hk = u64_key(height);
        batch.put_cf(self.cf(CF_HEADERS)?, hk, block.header.encode());
        batch.put_cf(self.cf(CF_BLOCK_IDS)?, block.id().0, hk);
        batch.put_cf(self.cf(CF_ROOTS)?, hk, roots_value(root, &receipts_hash(receipts)));
        let (txs, rcpts, index) = (self.cf(CF_TXS)?, self.cf(CF_RECEIPTS)?, self.cf(CF_TX_INDEX)?);
        // First inclusion wins: a replayed transaction (rejected by execution) must not hide
        // where the original was committed. So the index is consulted for every transaction of
        // the block — in one batched lookup, sorted, which the tx index's bloom filters answer
        // from memory for the usual case of a transaction never seen.
        let mut unique: Vec<&[u8; 32]> = hashes.iter().map(|h| &h.0).collect();
        unique.sort_unstable();
        unique.dedup();
        let mut indexed = BTreeSet::new();
        for (key, found) in unique.iter().zip(self.db.batched_multi_get_cf(index, &unique, true)) {
            if found?.is_some() {
                indexed.insert(**key);
            }
        }
        for (i, ((tx, receipt), tx_hash)) in block.txs.iter().zip(receipts).zip(hashes).enumerate()
        {
            let pos = pos_key(height, i as u32);
            batch.put_cf(txs, pos, tx);
            batch.put_cf(rcpts, pos, receipt);
            // `insert` is false for a hash already indexed, or seen earlier in this block.
            if indexed.insert(tx_hash.0) {
                batch.put_cf(index, tx_hash.0, pos);
            }
        }
        Ok(())
    }
}

/// Run `writes` through the tree on top of `version - 1`.
pub(crate) fn apply_tree(
    view: &TreeView<'_>,
    writes: &WriteSet,
    version: u64,
) -> Result<(Hash, TreeUpdateBatch), LedgerError> {
    let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(view);
    let (root, update) = tree
        .put_value_set(writes.iter().map(|(k, v)| (key_hash(k), v.clone())), version)
        .map_err(|e| LedgerError::Tree(e.to_string()))?;
    Ok((root_hash(root), update))
}

pub(crate) fn check_writes(writes: &WriteSet) -> Result<(), LedgerError> {
    for (k, v) in writes {
        LedgerError::check_len("state key", k.len(), MAX_KEY_BYTES)?;
        if let Some(v) = v {
            LedgerError::check_len("state value", v.len(), MAX_VALUE_BYTES)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dpx_crypto::Hash;

    use super::super::schema::CF_TX_INDEX;
    use super::super::test_blocks::next_block;
    use super::super::{Store, StoreConfig};
    use crate::{LedgerError, TxHashes, WriteSet};

    const CHAIN: &str = "dpx-index-test";

    fn commit(store: &Store, txs: &[&[u8]]) {
        let block = next_block(store, txs.iter().map(|t| t.to_vec()).collect());
        let h = block.header.height;
        let receipts = (0..block.txs.len()).map(|i| format!("r{h}-{i}").into_bytes());
        store.commit_block(&block, b"cert", WriteSet::new(), receipts.collect()).unwrap();
    }

    fn position(store: &Store, tx: &[u8]) -> Option<(u64, u32)> {
        store.tx(&Hash::digest(tx)).unwrap().map(|(h, i, _)| (h, i))
    }

    fn flush_and_compact(store: &Store) {
        let cf = store.cf(CF_TX_INDEX).unwrap();
        store.db.flush_cf(cf).unwrap();
        store.db.compact_range_cf(cf, None::<&[u8]>, None::<&[u8]>);
    }

    /// A transaction included again (a replay, refused by execution with its own receipt) stays
    /// indexed at its first inclusion — whether the original's entry is in the memtable, in a
    /// flushed file (where the bloom filter must not hide it), after compaction, or after a
    /// reopen; and within one block, the first copy wins.
    #[test]
    fn first_inclusion_wins() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig { sync_writes: false, ..StoreConfig::default() };
        {
            let store = Store::open(dir.path(), CHAIN, config.clone()).unwrap();
            store.genesis(WriteSet::new()).unwrap();
            // Within one block too: the first of two copies wins.
            commit(&store, &[b"a", b"b", b"a"]);
            assert_eq!(position(&store, b"a"), Some((1, 0)));
            commit(&store, &[b"c", b"a"]);
            assert_eq!(position(&store, b"a"), Some((1, 0)));
            flush_and_compact(&store);
            assert_eq!(position(&store, b"a"), Some((1, 0)));
            // Replays over a compacted entry, with the original in a file and in the memtable.
            commit(&store, &[b"a", b"c"]);
            store.db.flush_cf(store.cf(CF_TX_INDEX).unwrap()).unwrap();
            commit(&store, &[b"b", b"a", b"d"]);
            assert_eq!(position(&store, b"a"), Some((1, 0)));
            assert_eq!(position(&store, b"b"), Some((1, 1)));
            assert_eq!(position(&store, b"c"), Some((2, 0)));
            assert_eq!(position(&store, b"d"), Some((4, 2)));
            let (_, _, receipt) = store.receipt(&Hash::digest(b"a")).unwrap().unwrap();
            assert_eq!(receipt, b"r1-0", "the original's receipt, not the replay's");
        }
        let store = Store::open(dir.path(), CHAIN, config).unwrap();
        assert_eq!(position(&store, b"a"), Some((1, 0)));
        flush_and_compact(&store);
        assert_eq!(position(&store, b"c"), Some((2, 0)));
        assert_eq!(store.verify_integrity().unwrap().tx_index_entries, 4);
    }

    fn writes(tag: u8, n: u8) -> WriteSet {
        (0..n).map(|i| (vec![b'k', i], Some(vec![tag, i]))).collect()
    }

    fn fresh(dir: &std::path::Path) -> Store {
        let config = StoreConfig { sync_writes: false, ..StoreConfig::default() };
        let store = Store::open(dir, CHAIN, config).unwrap();
        store.genesis(writes(0, 8)).unwrap();
        store
    }

    /// Preparing a block ahead and committing it later gives the store, root for root, what
    /// a commit in one step gives.
    #[test]
    fn a_prepared_commit_equals_a_direct_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (direct, prepared) = (fresh(a.path()), fresh(b.path()));
        for h in 1..=3u8 {
            let block = next_block(&direct, vec![vec![h]]);
            assert_eq!(block.id(), next_block(&prepared, vec![vec![h]]).id());
            let r1 = direct.commit_block(&block, b"c", writes(h, 4 + h), vec![vec![h]]).unwrap();
            let p = prepared
                .prepare_block(&block, &TxHashes::of(&block.txs), &writes(h, 4 + h), &[vec![h]])
                .unwrap();
            assert_eq!((p.height(), p.root()), (u64::from(h), r1), "the prepared root");
            assert_eq!(prepared.tip_height(), u64::from(h - 1), "preparing writes nothing");
            let r2 = prepared.commit_prepared(&block, b"c", None, p).unwrap();
            assert_eq!(r1, r2);
            let h = u64::from(h);
            assert_eq!(direct.state_root(h).unwrap(), prepared.state_root(h).unwrap());
            assert_eq!(
                direct.block_receipts_hash(h).unwrap(),
                prepared.block_receipts_hash(h).unwrap()
            );
            assert_eq!(direct.certificate(h).unwrap(), prepared.certificate(h).unwrap());
        }
        assert_eq!(prepared.verify_integrity().unwrap().tx_index_entries, 3);
    }

    /// A preparation made on one tip never commits on another, nor for another block, and
    /// cannot be made for a block that does not extend the tip. Each refusal writes nothing.
    #[test]
    fn a_preparation_on_another_tip_or_for_another_block_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh(dir.path());
        let block1 = next_block(&store, vec![b"x".to_vec()]);
        let rival1 = next_block(&store, vec![b"y".to_vec()]);
        let stale = store
            .prepare_block(&rival1, &TxHashes::of(&rival1.txs), &writes(1, 2), &[vec![1]])
            .unwrap();
        let mine = store
            .prepare_block(&block1, &TxHashes::of(&block1.txs), &writes(9, 3), &[vec![1]])
            .unwrap();
        // Not the prepared block: refused.
        let other = store
            .prepare_block(&block1, &TxHashes::of(&block1.txs), &writes(9, 3), &[vec![1]])
            .unwrap();
        let err = store.commit_prepared(&rival1, b"c", None, other).unwrap_err();
        assert!(matches!(err, LedgerError::HeaderMismatch { .. }), "{err}");
        assert_eq!(store.tip_height(), 0);
        store.commit_prepared(&block1, b"c", None, mine).unwrap();
        let root1 = store.state_root(1).unwrap();
        // The tip moved: the rival's preparation cannot commit, for its block or the next.
        let err = store.commit_prepared(&rival1, b"c", None, stale).unwrap_err();
        assert!(matches!(err, LedgerError::StalePreparation { prepared_on: 0, .. }), "{err}");
        assert_eq!(store.tip_height(), 1);
        assert_eq!(store.state_root(1).unwrap(), root1);
        assert_eq!(
            store.get(b"k\x02", 1).unwrap(),
            Some(vec![9, 2]),
            "the committed change stands"
        );
        // A block that does not extend the tip cannot be prepared.
        let err = store
            .prepare_block(&rival1, &TxHashes::of(&rival1.txs), &writes(2, 1), &[vec![2]])
            .unwrap_err();
        assert!(matches!(err, LedgerError::NotNext { tip: 1, found: 1 }), "{err}");
        let block2 = next_block(&store, vec![b"z".to_vec()]);
        let err = store
            .prepare_block(&block2, &TxHashes::of(&block2.txs), &writes(2, 1), &[])
            .unwrap_err();
        assert!(matches!(err, LedgerError::ReceiptCount { .. }), "{err}");
        let p = store
            .prepare_block(&block2, &TxHashes::of(&block2.txs), &writes(2, 1), &[vec![2]])
            .unwrap();
        store.commit_prepared(&block2, b"c", None, p).unwrap();
        assert_eq!(store.tip_height(), 2);
    }
}
