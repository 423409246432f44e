//! Pruning state versions older than the retain window.
//!
//! jmt reports, for every version, which nodes it replaced ("stale since" that version); the
//! commit records those, plus the value entries it superseded, in the stale column family keyed
//! by that version (one entry per version; stores written before that hold one entry per
//! record, which are pruned the same way). A record stale since `s` is needed only by versions below `s`, so once the
//! oldest retained version reaches `s` it can go.

use std::sync::atomic::Ordering;

use rocksdb::{IteratorMode, WriteBatch};

use super::Store;
use super::commit::NodeChanges;
use super::schema::{
    CF_META, CF_NODES, CF_STALE, CF_VALUES, META_OLDEST, STALE_BATCH, STALE_NODE, STALE_VALUE,
    read_u64, root_node_key, stale_records, u64_key,
};
use crate::LedgerError;

impl Store {
    /// The new oldest version after committing `height`, if the window moves.
    pub(crate) fn prune_cutoff(&self, height: u64) -> Option<u64> {
        let keep = self.config.retain_versions?;
        let cutoff = (height + 1).saturating_sub(keep);
        (cutoff > self.oldest_version()).then_some(cutoff)
    }

    /// Delete everything only versions below `cutoff` need, in `batch`.
    pub(crate) fn stage_prune(
        &self,
        batch: &mut WriteBatch,
        changes: &mut NodeChanges,
        cutoff: u64,
    ) -> Result<(), LedgerError> {
        let (stale, nodes, values) = (self.cf(CF_STALE)?, self.cf(CF_NODES)?, self.cf(CF_VALUES)?);
        let mut unstale = |kind: u8, what: &[u8]| match kind {
            STALE_NODE => {
                batch.delete_cf(nodes, what);
                changes.deleted.push(what.to_vec());
                Ok(())
            }
            STALE_VALUE => {
                batch.delete_cf(values, what);
                Ok(())
            }
            other => Err(LedgerError::Corrupt(format!("stale kind {other}"))),
        };
        let mut done = Vec::new();
        for item in self.db.iterator_cf(stale, IteratorMode::Start) {
            let (k, v) = item?;
            if k.len() < 9 {
                return Err(LedgerError::Corrupt("short stale record".into()));
            }
            if read_u64(&k[..8])? > cutoff {
                break;
            }
            match k[8] {
                STALE_BATCH => {
                    for (kind, what) in stale_records(&v)? {
                        unstale(kind, what)?;
                    }
                }
                kind => unstale(kind, &k[9..])?,
            }
            done.push(k);
        }
        for k in done {
            batch.delete_cf(stale, &k);
        }
        // A version that changed nothing copies its parent's root instead of replacing it, so
        // that old root is never reported stale; drop the roots of pruned versions explicitly.
        for v in self.oldest_version()..cutoff {
            let root = root_node_key(v)?;
            batch.delete_cf(nodes, &root);
            changes.deleted.push(root);
        }
        batch.put_cf(self.cf(CF_META)?, META_OLDEST, u64_key(cutoff));
        Ok(())
    }

    /// Prune now so that `oldest` becomes the oldest readable version (at most the tip).
    /// Commits already prune by [`crate::StoreConfig::retain_versions`]; this is for operators.
    pub fn prune_to(&self, oldest: u64) -> Result<(), LedgerError> {
        let _guard = self.lock();
        let cutoff = oldest.min(self.tip_height());
        if cutoff <= self.oldest_version() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        let mut nodes = NodeChanges::default();
        self.stage_prune(&mut batch, &mut nodes, cutoff)?;
        self.write(batch, nodes)?;
        self.oldest.store(cutoff, Ordering::Release);
        // Let RocksDB reclaim the space of the deleted range of stale records soon.
        self.db.compact_range_cf(self.cf(CF_STALE)?, None::<&[u8]>, Some(u64_key(cutoff + 1)));
        Ok(())
    }
}
