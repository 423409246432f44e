//! Where the replayed blocks come from ([`Source`]), and the comparisons with what a source
//! recorded about each block's outcome.
//!
//! Every source gives blocks and certificates. Some (a node's home directory) also give what
//! the node recorded about each block's outcome (state roots, receipts hashes, receipts and
//! state values), which the replay compares with its own; for the others (a node's RPC) only
//! the chain itself (the next header) is compared. The sources themselves live with the
//! tools that read them (`dpx-node`'s `replay` module).

use dpx_crypto::Hash;
use dpx_ledger::{Block, StateEntry, Store, WriteSet};

use super::{Divergence, DivergenceKind, KeyDiff, MAX_REPORTED_KEYS, ReplayError, diagnose};

/// What a source answers for one height.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// The block and the certificate the source holds for it (`None`: none stored).
    Block { block: Box<Block>, certificate: Option<Vec<u8>> },
    /// The source has no block at this height.
    Missing,
    /// The source's bytes for this height do not decode; the reason.
    Corrupt(String),
}

/// A ledger to replay. Methods returning `Option` answer `None` when the source cannot tell.
pub trait Source: Send {
    /// For reports: where the blocks came from.
    fn describe(&self) -> String;
    /// Height of the source's last committed block.
    fn tip(&mut self) -> Result<u64, ReplayError>;
    /// The block at `height`. Called with increasing heights.
    fn fetch(&mut self, height: u64) -> Result<Fetched, ReplayError>;
    /// The receipts the source stored for `height`.
    fn stored_receipts(&mut self, _height: u64) -> Result<Option<Vec<Vec<u8>>>, ReplayError> {
        Ok(None)
    }
    /// The state root after `height` and receipts hash of `height` the source recorded.
    fn stored_roots(&mut self, _height: u64) -> Result<Option<(Hash, Hash)>, ReplayError> {
        Ok(None)
    }
    /// The value of `key` in the source's state after `version` (`Some(None)`: absent).
    fn stored_value(
        &mut self,
        _key: &[u8],
        _version: u64,
    ) -> Result<Option<Option<Vec<u8>>>, ReplayError> {
        Ok(None)
    }
    /// Up to `limit` entries of the source's latest state after `after`, in key order.
    fn latest_state(
        &mut self,
        _after: Option<&[u8]>,
        _limit: usize,
    ) -> Result<Option<Vec<StateEntry>>, ReplayError> {
        Ok(None)
    }
}

// ----- comparisons with the source's own records ------------------------------------------

/// Step 6: the source's recorded roots, receipts and written values for the block just
/// committed to `store`.
pub(super) fn compare_stored(
    source: &mut dyn Source,
    store: &Store,
    block: &Block,
    writes: &WriteSet,
    receipts: &[Vec<u8>],
    state_root: Hash,
    receipts_hash: Hash,
) -> Result<Option<Divergence>, ReplayError> {
    use DivergenceKind::{Receipts, StateRoot};
    let h = block.header.height;
    if let Some(stored) = source.stored_receipts(h)? {
        if stored.len() != receipts.len() {
            return Ok(Some(
                Divergence::new(
                    h,
                    Receipts,
                    "source store",
                    "the source stores another number of receipts",
                )
                .values(receipts.len(), stored.len()),
            ));
        }
        if let Some(i) = stored.iter().zip(receipts).position(|(a, b)| a != b) {
            return Ok(Some(
                Divergence::new(
                    h,
                    Receipts,
                    "source store",
                    format!("receipt {i} differs from the re-derived one"),
                )
                .values(hex::encode(&receipts[i]), hex::encode(&stored[i]))
                .tx(i),
            ));
        }
    }
    let mut keys = Vec::new();
    for (key, value) in writes {
        if let Some(stored) = source.stored_value(key, h)?
            && stored != *value
        {
            keys.push(KeyDiff::new(key, value.as_deref(), stored.as_deref()));
        }
    }
    if !keys.is_empty() {
        let d = Divergence::new(
            h,
            StateRoot,
            "source store",
            "the source's stored values differ from the replayed ones",
        );
        return diagnose::attribute(d, keys, block, writes, store).map(Some);
    }
    if let Some((root, rhash)) = source.stored_roots(h)? {
        if root != state_root {
            return Ok(Some(
                Divergence::new(
                    h,
                    StateRoot,
                    "source store",
                    "the source recorded another state root after this block",
                )
                .values(state_root, root),
            ));
        }
        if rhash != receipts_hash {
            return Ok(Some(
                Divergence::new(
                    h,
                    Receipts,
                    "source store",
                    "the source recorded another receipts hash for this block",
                )
                .values(receipts_hash, rhash),
            ));
        }
    }
    Ok(None)
}

/// Compare the source's whole latest state with the replayed one, key by key (sources that
/// can list their state and whose tip is the replayed height).
pub(super) fn compare_latest_state(
    source: &mut dyn Source,
    store: &Store,
    height: u64,
    page: usize,
) -> Result<Option<Divergence>, ReplayError> {
    let mut mine = Pager::default();
    let mut theirs = Pager::default();
    let mut keys = Vec::new();
    loop {
        if mine.need() {
            mine.fill(store.scan_prefix(b"", mine.after.as_deref(), page)?, page);
        }
        if theirs.need() {
            let Some(p) = source.latest_state(theirs.after.as_deref(), page)? else {
                return Ok(None);
            };
            theirs.fill(p, page);
        }
        // Which side(s) to advance: the smaller key, or both when the keys are equal.
        let (advance_mine, advance_theirs) = match (mine.peek(), theirs.peek()) {
            (None, None) => break,
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Equal => {
                    if va != vb {
                        keys.push(KeyDiff::new(ka, Some(va), Some(vb)));
                    }
                    (true, true)
                }
                std::cmp::Ordering::Less => {
                    keys.push(KeyDiff::new(ka, Some(va), None));
                    (true, false)
                }
                std::cmp::Ordering::Greater => {
                    keys.push(KeyDiff::new(kb, None, Some(vb)));
                    (false, true)
                }
            },
            (Some((ka, va)), None) => {
                keys.push(KeyDiff::new(ka, Some(va), None));
                (true, false)
            }
            (None, Some((kb, vb))) => {
                keys.push(KeyDiff::new(kb, None, Some(vb)));
                (false, true)
            }
        };
        if advance_mine {
            mine.pop();
        }
        if advance_theirs {
            theirs.pop();
        }
        if keys.len() >= MAX_REPORTED_KEYS {
            break;
        }
    }
    if keys.is_empty() {
        return Ok(None);
    }
    let mut d = Divergence::new(
        height,
        DivergenceKind::StateRoot,
        "source store (latest state)",
        "the source's latest state differs from the replayed state",
    );
    d.keys = keys;
    Ok(Some(d))
}

/// Paging through a sorted state listing.
#[derive(Default)]
struct Pager {
    buf: std::collections::VecDeque<StateEntry>,
    after: Option<Vec<u8>>,
    done: bool,
}

impl Pager {
    fn need(&self) -> bool {
        self.buf.is_empty() && !self.done
    }
    fn fill(&mut self, page: Vec<StateEntry>, limit: usize) {
        self.done = page.len() < limit;
        if let Some((k, _)) = page.last() {
            self.after = Some(k.clone());
        }
        self.buf.extend(page);
    }
    fn peek(&self) -> Option<(&[u8], &[u8])> {
        self.buf.front().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }
    fn pop(&mut self) {
        self.buf.pop_front();
    }
}

impl KeyDiff {
    pub(super) fn new(key: &[u8], replayed: Option<&[u8]>, source: Option<&[u8]>) -> Self {
        // State keys are `prefix/` then binary ids: show the printable prefix, then hex.
        let run = key.iter().take_while(|b| b.is_ascii_graphic()).count();
        let text_len = if run == key.len() {
            run
        } else {
            key[..run].iter().rposition(|b| *b == b'/').map_or(0, |p| p + 1)
        };
        Self {
            key: hex::encode(key),
            key_text: (text_len > 0).then(|| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&key[..text_len]),
                    hex::encode(&key[text_len..])
                )
            }),
            replayed: replayed.map(hex::encode),
            source: source.map(hex::encode),
            tx_index: None,
        }
    }
}
