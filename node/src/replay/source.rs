//! Where the replayed blocks come from: a node's home directory or a node's RPC.
//!
//! Both give blocks and certificates. A home directory also gives what the node recorded about
//! each block's outcome (state roots, receipts hashes, receipts and state values), which the
//! replay compares with its own; over RPC only the chain itself (the next header) is compared.

use std::path::{Path, PathBuf};

use dpx_crypto::Hash;
use dpx_ledger::{Block, Header, LedgerError, StateEntry, Store, StoreConfig, WriteSet};
use serde_json::Value;

use super::{Divergence, DivergenceKind, KeyDiff, MAX_REPORTED_KEYS, ReplayError, diagnose};
use crate::cli::Client;

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

fn src(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Source(e.to_string())
}

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

// ----- a node's home directory ------------------------------------------------------------

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

// ----- a node's RPC ---------------------------------------------------------------------

/// Blocks fetched from a node's RPC (`GET /v1/blocks/{height}`), several requests in flight.
#[derive(Debug)]
pub struct RpcSource {
    url: String,
    tip: u64,
    next: u64,
    rx: tokio::sync::mpsc::Receiver<(u64, Result<Fetched, String>)>,
}

/// Requests in flight while the replay executes.
const RPC_IN_FLIGHT: usize = 8;
/// Blocks fetched ahead of the replay at most.
const RPC_AHEAD_BLOCKS: usize = 64;
/// Largest block document accepted (hex doubles the bytes; JSON views add some more).
const RPC_BLOCK_DOC_BYTES_MAX: usize = 160 << 20;

impl RpcSource {
    /// Ask `url` for its height, then start fetching blocks `1..=to` (default: to its tip) in
    /// the background. Must be called inside a tokio runtime; [`Source::fetch`] then blocks
    /// (call the replay from `spawn_blocking`).
    pub async fn connect(url: &str, to: Option<u64>) -> Result<Self, ReplayError> {
        let client = Client::new(url).map_err(src)?;
        let status = client.get("/v1/status").await.map_err(|e| src(format!("{e:#}")))?;
        let tip = status["height"].as_u64().ok_or_else(|| src("status has no height"))?;
        let last = to.unwrap_or(tip).min(tip);
        // One more than the replayed range: the next header commits to the last one's outcome.
        let end = if last < tip { last + 1 } else { last };
        let (tx, rx) = tokio::sync::mpsc::channel(RPC_AHEAD_BLOCKS);
        tokio::spawn(async move {
            use futures::StreamExt as _;
            let mut blocks = futures::stream::iter(1..=end)
                .map(|h| {
                    let c = client.clone();
                    async move { (h, fetch_rpc_block(&c, h).await) }
                })
                .buffered(RPC_IN_FLIGHT);
            while let Some(item) = blocks.next().await {
                if tx.send(item).await.is_err() {
                    break; // the replay stopped
                }
            }
        });
        Ok(Self { url: url.to_owned(), tip, next: 1, rx })
    }
}

async fn fetch_rpc_block(c: &Client, height: u64) -> Result<Fetched, String> {
    let v = match c.get(&format!("/v1/blocks/{height}")).await {
        Ok(v) => v,
        Err(e) if format!("{e:#}").contains(" 404 ") => return Ok(Fetched::Missing),
        Err(e) => return Err(format!("{e:#}")),
    };
    Ok(block_from_json(&v, height).unwrap_or_else(Fetched::Corrupt))
}

fn block_from_json(v: &Value, height: u64) -> Result<Fetched, String> {
    let bad = |what: &str| format!("block {height} from RPC: {what}");
    let header: Header =
        serde_json::from_value(v["header"].clone()).map_err(|e| bad(&format!("header: {e}")))?;
    let mut size = 0usize;
    let mut txs = Vec::new();
    for t in v["txs"].as_array().ok_or_else(|| bad("no txs"))? {
        let hex_bytes = t["bytes"].as_str().ok_or_else(|| bad("tx without bytes"))?;
        size += hex_bytes.len();
        if size > RPC_BLOCK_DOC_BYTES_MAX {
            return Err(bad("too large"));
        }
        txs.push(hex::decode(hex_bytes).map_err(|e| bad(&format!("tx hex: {e}")))?);
    }
    let certificate = match v["certificate"].as_str() {
        Some(c) => Some(hex::decode(c).map_err(|e| bad(&format!("certificate hex: {e}")))?),
        None => None,
    };
    Ok(Fetched::Block { block: Box::new(Block { header, txs }), certificate })
}

impl Source for RpcSource {
    fn describe(&self) -> String {
        format!("rpc {}", self.url)
    }

    fn tip(&mut self) -> Result<u64, ReplayError> {
        Ok(self.tip)
    }

    fn fetch(&mut self, height: u64) -> Result<Fetched, ReplayError> {
        if height != self.next {
            return Err(src(format!(
                "blocks are fetched in order: asked {height}, next is {}",
                self.next
            )));
        }
        let (h, r) = self
            .rx
            .blocking_recv()
            .ok_or_else(|| src(format!("no block {height}: the fetcher stopped")))?;
        debug_assert_eq!(h, height);
        self.next += 1;
        r.map_err(src)
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
        return diagnose::attribute(d, keys, block, store).map(Some);
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
