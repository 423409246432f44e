//! A full consistency check of the store, for the crash test, operators and auditors.

use dpx_crypto::Hash;
use jmt::JellyfishMerkleTree;
use rocksdb::{Direction, IteratorMode};
use serde::{Deserialize, Serialize};

use super::Store;
use super::schema::{
    CF_CERTS, CF_HEADERS, CF_META, CF_ROOTS, CF_STALE, CF_STATE, CF_TX_INDEX, CF_TXS, CF_VALUES,
    META_BASE, STALE_BATCH, STALE_NODE, STALE_VALUE, read_pos, read_u64, read_value_key,
    stale_records, u64_key,
};
use super::tree::EmptyTree;
use crate::{Blake3Hasher, LedgerError, WriteSet, key_hash, receipts_hash};

/// What [`Store::verify_integrity`] looked at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityReport {
    pub tip: u64,
    pub state_root: Hash,
    pub blocks_checked: u64,
    pub tx_index_entries: u64,
    pub state_keys: u64,
}

fn fail(msg: String) -> LedgerError {
    LedgerError::Integrity(msg)
}

impl Store {
    /// Check the whole store is one consistent committed state:
    /// - the tree's root at the tip equals the recorded state root, and so does a root recomputed
    ///   from scratch out of the flat latest state;
    /// - every stored block links to its parent (id, state root, receipts hash), matches its tx
    ///   root, has a certificate and one receipt per transaction;
    /// - every tx index entry points at a stored transaction with that hash;
    /// - nothing exists above the tip (no half-written block);
    /// - every stale record (what pruning will delete) decodes, so a corrupt one is found now,
    ///   not by the commit whose pruning reaches it.
    ///
    /// Reads everything: meant for tests, audits and after an unclean shutdown, not hot paths.
    pub fn verify_integrity(&self) -> Result<IntegrityReport, LedgerError> {
        let _guard = self.lock();
        let tip = self.tip_height();
        let (root, _) = self.roots(tip)?.ok_or_else(|| fail(format!("no roots at tip {tip}")))?;

        let view = self.tree_view();
        let tree = JellyfishMerkleTree::<_, Blake3Hasher>::new(&view);
        let tree_root = tree.get_root_hash(tip).map_err(|e| fail(format!("tree root: {e}")))?;
        if tree_root.0 != root.0 {
            return Err(fail(format!("tree root {} != recorded {root}", Hash(tree_root.0))));
        }

        for item in self.db.iterator_cf(self.cf(CF_STALE)?, IteratorMode::Start) {
            let (k, v) = item?;
            match k.get(8) {
                Some(&STALE_BATCH) if k.len() == 9 => {
                    stale_records(&v).map_err(|e| fail(format!("stale entry {k:02x?}: {e}")))?;
                }
                Some(&(STALE_NODE | STALE_VALUE)) if k.len() > 9 => {}
                _ => return Err(fail(format!("stale entry with a bad key {k:02x?}"))),
            }
        }

        let mut flat = WriteSet::new();
        for item in self.db.iterator_cf(self.cf(CF_STATE)?, IteratorMode::Start) {
            let (k, v) = item?;
            flat.insert(k.into_vec(), Some(v.into_vec()));
        }
        let state_keys = flat.len() as u64;
        let fresh = JellyfishMerkleTree::<_, Blake3Hasher>::new(&EmptyTree);
        let (flat_root, _) = fresh
            .put_value_set(flat.iter().map(|(k, v)| (key_hash(k), v.clone())), 0)
            .map_err(|e| fail(format!("recompute: {e}")))?;
        if flat_root.0 != root.0 {
            return Err(fail(format!("flat state root {} != recorded {root}", Hash(flat_root.0))));
        }

        let blocks_checked = self.check_chain(tip)?;
        for cf in [CF_HEADERS, CF_ROOTS, CF_CERTS] {
            let above = self
                .db
                .iterator_cf(
                    self.cf(cf)?,
                    IteratorMode::From(&u64_key(tip + 1), Direction::Forward),
                )
                .next()
                .transpose()?;
            if above.is_some() {
                return Err(fail(format!("{cf} has an entry above the tip {tip}")));
            }
        }
        for item in self.db.iterator_cf(self.cf(CF_VALUES)?, IteratorMode::Start) {
            let (k, _) = item?;
            let (_, version) = read_value_key(&k)?;
            if version > tip {
                return Err(fail(format!("state value at version {version} above the tip {tip}")));
            }
        }

        let mut tx_index_entries = 0;
        for item in self.db.iterator_cf(self.cf(CF_TX_INDEX)?, IteratorMode::Start) {
            let (k, v) = item?;
            let (h, i) = read_pos(&v)?;
            if h > tip {
                return Err(fail(format!("tx index points above the tip: {h}")));
            }
            let tx = self
                .db
                .get_cf(self.cf(CF_TXS)?, super::schema::pos_key(h, i))?
                .ok_or_else(|| fail(format!("tx index points at missing tx {h}/{i}")))?;
            if Hash::digest(&tx).0[..] != k[..] {
                return Err(fail(format!("tx at {h}/{i} does not hash to its index key")));
            }
            tx_index_entries += 1;
        }
        Ok(IntegrityReport { tip, state_root: root, blocks_checked, tx_index_entries, state_keys })
    }

    /// Check every stored block up to `tip`; returns how many.
    fn check_chain(&self, tip: u64) -> Result<u64, LedgerError> {
        let base =
            self.db.get_cf(self.cf(CF_META)?, META_BASE)?.map(|b| read_u64(&b)).transpose()?;
        let first = base.unwrap_or(1);
        let mut parent: Option<(Hash, Hash, Hash)> = None; // (id, state root, receipts hash)
        if base.is_none() {
            let (r, rh) = self.roots(0)?.ok_or_else(|| fail("no genesis roots".into()))?;
            parent = Some((Hash::ZERO, r, rh));
        }
        let mut checked = 0;
        for h in first..=tip {
            let block = self.block(h)?.ok_or_else(|| fail(format!("missing block {h}")))?;
            let hd = &block.header;
            if hd.height != h || hd.chain_id != self.chain_id {
                return Err(fail(format!(
                    "block {h} has height {} chain {}",
                    hd.height, hd.chain_id
                )));
            }
            block.check_tx_root().map_err(|e| fail(format!("block {h}: {e}")))?;
            if self.height_of(&block.id())? != Some(h) {
                return Err(fail(format!("block id index wrong for {h}")));
            }
            if self.certificate(h)?.is_none() {
                return Err(fail(format!("missing certificate {h}")));
            }
            let (root, rh) = self.roots(h)?.ok_or_else(|| fail(format!("missing roots {h}")))?;
            if Some(h) != base {
                let receipts = self.receipts(h)?;
                if receipts.len() != block.txs.len() || receipts_hash(&receipts) != rh {
                    return Err(fail(format!("receipts of block {h} do not match")));
                }
            }
            if let Some((pid, proot, prh)) = parent
                && (hd.parent_id != pid || hd.state_root != proot || hd.prev_receipts_hash != prh)
            {
                return Err(fail(format!("block {h} does not link to its parent")));
            }
            parent = Some((block.id(), root, rh));
            checked += 1;
        }
        Ok(checked)
    }
}
