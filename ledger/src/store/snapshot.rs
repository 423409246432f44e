//! State snapshots: export the state at a height, import it into an empty store.
//!
//! Stream layout: the magic `DPXSNAP1`, a big-endian `u32` length and a `SnapshotHeader`
//! protobuf, then entries `u32 key length ‖ key ‖ u32 value length ‖ value` in key-hash order,
//! then the end marker `u32::MAX`. The entries are authenticated by recomputing the state root;
//! the block and certificate carried in the header are not (commits that build on them check
//! parent id, state root and receipts hash, so a forged one stops the chain rather than forks it).

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use dpx_crypto::Hash;
use prost::Message;
use rocksdb::{IteratorMode, WriteBatch};

use super::commit::{NodeChanges, apply_tree};
use super::schema::{
    CF_BLOCK_IDS, CF_CERTS, CF_HEADERS, CF_META, CF_ROOTS, CF_TXS, CF_VALUES, META_BASE,
    META_GENESIS, META_OLDEST, META_TIP, decode_value, pos_key, read_value_key, roots_value,
    u64_key,
};
use super::tree::TreeView;
use super::{StateEntry, Store};
use crate::{Block, LedgerError, MAX_KEY_BYTES, MAX_VALUE_BYTES, WriteSet, block::hash_field, pb};

/// Version of the snapshot stream this code writes; a stream with a higher number is refused.
/// Its own number, not the store's: the store's layout can change without changing what a
/// snapshot carries (store format 2 did), and snapshots stay readable by older nodes.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

const MAGIC: &[u8; 8] = b"DPXSNAP1";
const END: u32 = u32::MAX;
const MAX_HEADER_BYTES: usize = 64 << 20;

fn put_u32(w: &mut impl Write, v: u32) -> Result<(), LedgerError> {
    w.write_all(&v.to_be_bytes())?;
    Ok(())
}

fn get_u32(r: &mut impl Read) -> Result<u32, LedgerError> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn get_bytes(
    r: &mut impl Read,
    len: usize,
    what: &'static str,
    max: usize,
) -> Result<Vec<u8>, LedgerError> {
    LedgerError::check_len(what, len, max)?;
    let mut buf = vec![0; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

impl Store {
    /// Write the state after block `height` (with that block and its certificate) to `out`;
    /// returns the state root the importer must expect.
    pub fn export_snapshot(&self, height: u64, out: &mut impl Write) -> Result<Hash, LedgerError> {
        // Read from one RocksDB snapshot so concurrent commits and pruning do not tear it.
        let snap = self.db.snapshot();
        self.check_version(height)?;
        let (state_root, receipts) = self
            .roots(height)?
            .ok_or_else(|| LedgerError::Corrupt(format!("no roots at {height}")))?;
        let block = self.block(height)?.map(|b| b.encode()).unwrap_or_default();
        let header = pb::SnapshotHeader {
            format_version: SNAPSHOT_FORMAT_VERSION,
            chain_id: self.chain_id.clone(),
            height,
            state_root: state_root.0.to_vec(),
            receipts_hash: receipts.0.to_vec(),
            block,
            certificate: self.certificate(height)?.unwrap_or_default(),
        }
        .encode_to_vec();
        out.write_all(MAGIC)?;
        put_u32(out, header.len() as u32)?;
        out.write_all(&header)?;

        // Entries are sorted by key hash, then version: keep the last one at or below `height`.
        let mut current: Option<(jmt::KeyHash, Option<StateEntry>)> = None;
        let mut emit = |entry: Option<StateEntry>| -> Result<(), LedgerError> {
            if let Some((k, v)) = entry {
                put_u32(out, k.len() as u32)?;
                out.write_all(&k)?;
                put_u32(out, v.len() as u32)?;
                out.write_all(&v)?;
            }
            Ok(())
        };
        for item in snap.iterator_cf(self.cf(CF_VALUES)?, IteratorMode::Start) {
            let (k, v) = item?;
            let (kh, version) = read_value_key(&k)?;
            if current.as_ref().is_some_and(|(c, _)| *c != kh) {
                emit(current.take().and_then(|(_, e)| e))?;
            }
            if version <= height {
                let (key, value) = decode_value(&v)?;
                current = Some((kh, value.map(|v| (key.to_vec(), v.to_vec()))));
            } else if current.is_none() {
                current = Some((kh, None));
            }
        }
        emit(current.take().and_then(|(_, e)| e))?;
        put_u32(out, END)?;
        out.flush()?;
        Ok(state_root)
    }

    /// Load a snapshot into this (empty) store; refuses it unless its state hashes to
    /// `expected_root`. Returns the snapshot's height, which becomes the tip.
    pub fn import_snapshot(
        &self,
        input: &mut impl Read,
        expected_root: Hash,
    ) -> Result<u64, LedgerError> {
        let _guard = self.lock();
        if self.has_genesis() {
            return Err(LedgerError::StoreNotEmpty);
        }
        let mut magic = [0; 8];
        input.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(LedgerError::decode("snapshot", "not a dpx snapshot"));
        }
        let len = get_u32(input)? as usize;
        let header = pb::SnapshotHeader::decode(
            get_bytes(input, len, "snapshot header", MAX_HEADER_BYTES)?.as_slice(),
        )
        .map_err(|e| LedgerError::decode("snapshot header", e))?;
        if header.format_version > SNAPSHOT_FORMAT_VERSION {
            return Err(LedgerError::NewerFormat {
                path: self.path.clone(),
                found: header.format_version,
                supported: SNAPSHOT_FORMAT_VERSION,
            });
        }
        if header.chain_id != self.chain_id {
            return Err(LedgerError::BlockChain {
                expected: self.chain_id.clone(),
                found: header.chain_id,
            });
        }
        let height = header.height;
        let block = if header.block.is_empty() {
            None
        } else {
            let b = Block::decode(&header.block, self.config.max_block_bytes)?;
            if b.header.height != height || b.header.chain_id != self.chain_id {
                return Err(LedgerError::decode(
                    "snapshot",
                    "block does not match the snapshot height",
                ));
            }
            Some(b)
        };
        let receipts = hash_field("receipts_hash", &header.receipts_hash)?;

        let mut writes = WriteSet::new();
        loop {
            let key_len = get_u32(input)?;
            if key_len == END {
                break;
            }
            let key = get_bytes(input, key_len as usize, "state key", MAX_KEY_BYTES)?;
            let value_len = get_u32(input)? as usize;
            let value = get_bytes(input, value_len, "state value", MAX_VALUE_BYTES)?;
            if writes.insert(key, Some(value)).is_some() {
                return Err(LedgerError::decode("snapshot", "duplicate key"));
            }
        }

        // The store is empty, so there is nothing cached to read; the nodes written go into the
        // cache after the batch lands, like a commit's.
        let view = TreeView { db: &self.db, cache: None, empty_root_at: height.checked_sub(1) };
        let (root, update) = apply_tree(&view, &writes, height)?;
        if root != expected_root {
            return Err(LedgerError::SnapshotRoot { expected: expected_root, found: root });
        }
        let mut batch = WriteBatch::default();
        let mut nodes = NodeChanges::default();
        self.stage_tree(&mut batch, &mut nodes, &writes, &update, height, None)?;
        let hk = u64_key(height);
        batch.put_cf(self.cf(CF_ROOTS)?, hk, roots_value(&root, &receipts));
        if let Some(b) = &block {
            batch.put_cf(self.cf(CF_HEADERS)?, hk, b.header.encode());
            batch.put_cf(self.cf(CF_BLOCK_IDS)?, b.id().0, hk);
            batch.put_cf(self.cf(CF_CERTS)?, hk, &header.certificate);
            for (i, tx) in b.txs.iter().enumerate() {
                batch.put_cf(self.cf(CF_TXS)?, pos_key(height, i as u32), tx);
            }
        }
        let meta = self.cf(CF_META)?;
        batch.put_cf(meta, META_TIP, hk);
        batch.put_cf(meta, META_OLDEST, hk);
        batch.put_cf(meta, META_GENESIS, [1]);
        if height > 0 {
            // At height 0 the snapshot is simply genesis state; there is no base block.
            batch.put_cf(meta, META_BASE, hk);
        }
        self.write(batch, nodes)?;
        self.tip.store(height, Ordering::Release);
        self.oldest.store(height, Ordering::Release);
        self.genesis_done.store(true, Ordering::Release);
        Ok(height)
    }
}
