//! Where the replayed blocks come from: a node's home directory or a node's RPC.
//!
//! Both give blocks and certificates. A home directory also gives what the node recorded about
//! each block's outcome (state roots, receipts hashes, receipts and state values), which the
//! replay compares with its own; over RPC only the chain itself (the next header) is compared.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dpx_crypto::Hash;
use dpx_ledger::{Block, Header, LedgerError, StateEntry, Store, StoreConfig, WriteSet};
use serde_json::Value;

use super::{Divergence, DivergenceKind, KeyDiff, MAX_REPORTED_KEYS, ReplayError, diagnose};
use crate::cli::Client;
use crate::cli::client_error_text as error_text;

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
    ///
    /// Block bodies are for supervisors (the read policy): `key` (an auditor's or regulator's)
    /// signs every request. Without one, or with a key that may not read every transaction,
    /// the first block with a withheld transaction stops the replay with a clear error.
    pub async fn connect(
        url: &str,
        to: Option<u64>,
        key: Option<dpx_crypto::Keypair>,
    ) -> Result<Self, ReplayError> {
        let client = Client::new(url).map_err(src)?.signing(key);
        let backoff = Backoff::default();
        let status = get_retrying(&client, "/v1/status", &backoff)
            .await
            .map_err(src)?
            .ok_or_else(|| src("the node has no /v1/status"))?;
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
                    async move { (h, fetch_rpc_block(&c, h, &backoff).await) }
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

/// How the RPC source waits when the node says it is busy (429, 503) or a request fails on
/// the way (connection refused or reset): exponential delays from `first` to `max`, never
/// shorter than the node's `Retry-After`, for at most `attempts` tries of one request. No
/// jitter: a replay's requests are deterministic, and the delays differ between requests
/// anyway because each request has its own count of failures.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Backoff {
    /// Up to about two minutes for one request before the replay gives up.
    fn default() -> Self {
        Self { first: Duration::from_millis(250), max: Duration::from_secs(8), attempts: 20 }
    }
}

impl Backoff {
    /// The wait after the `failures`-th failure (1-based).
    pub fn delay(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.first.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        exp.max(retry_after.unwrap_or_default()).min(self.max)
    }
}

/// GET `path`, waiting and retrying while the node is busy. `Ok(None)`: 404. Other client
/// errors are final (asking again would not change the answer).
async fn get_retrying(c: &Client, path: &str, backoff: &Backoff) -> Result<Option<Value>, String> {
    let mut failures = 0u32;
    loop {
        let (retry_after, why) = match c.get_answer(path).await {
            Ok(a) if (200..300).contains(&a.status) => return Ok(Some(a.body)),
            Ok(a) if a.status == 404 => return Ok(None),
            Ok(a) if a.status == 429 || a.status >= 500 => {
                (a.retry_after, format!("{} {}", a.status, error_text(&a.body)))
            }
            Ok(a) => return Err(format!("GET {path}: {} {}", a.status, error_text(&a.body))),
            Err(e) => (None, format!("{e:#}")),
        };
        failures += 1;
        if failures >= backoff.attempts {
            return Err(format!("GET {path}: gave up after {failures} tries; last: {why}"));
        }
        tokio::time::sleep(backoff.delay(failures, retry_after)).await;
    }
}

async fn fetch_rpc_block(c: &Client, height: u64, backoff: &Backoff) -> Result<Fetched, String> {
    match get_retrying(c, &format!("/v1/blocks/{height}"), backoff).await? {
        Some(v) => {
            withheld(&v, height)?;
            Ok(block_from_json(&v, height).unwrap_or_else(Fetched::Corrupt))
        }
        None => Ok(Fetched::Missing),
    }
}

/// A block whose transactions the node withheld from this caller (the read policy shows
/// them to their parties and supervisors only) cannot be replayed: say so, rather than
/// report a divergence.
fn withheld(v: &Value, height: u64) -> Result<(), String> {
    let hidden =
        v["txs"].as_array().map_or(0, |t| t.iter().filter(|t| t["hidden"] == true).count());
    if hidden == 0 {
        return Ok(());
    }
    Err(format!(
        "block {height}: the node withheld {hidden} transaction(s) from this caller; a replay \
         needs every block body, which only supervisors (auditors, regulators) may read: \
         sign as one with --key FILE"
    ))
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_honour_retry_after() {
        let b =
            Backoff { first: Duration::from_millis(100), max: Duration::from_secs(1), attempts: 5 };
        let ms = |f, r: Option<u64>| b.delay(f, r.map(Duration::from_secs)).as_millis();
        assert_eq!(
            [ms(1, None), ms(2, None), ms(3, None), ms(4, None), ms(5, None)],
            [100, 200, 400, 800, 1000]
        );
        assert_eq!(ms(40, None), 1000);
        assert_eq!(ms(1, Some(0)), 100);
        assert_eq!(ms(1, Some(1)), 1000);
        assert_eq!(ms(1, Some(3600)), 1000, "a Retry-After past the cap waits the cap");
    }

    /// A node stand-in: answers the n-th request (0-based) with `answers[n]` (status, extra
    /// headers), the last one repeated; counts the requests.
    async fn stub(answers: Vec<(u16, &'static str)>) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = s.read(&mut buf).await else { break };
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let (status, headers) = answers[n.min(answers.len() - 1)];
                let body = if status == 200 {
                    r#"{"height":7}"#.to_owned()
                } else {
                    format!(r#"{{"error":{{"code":"c{status}","message":"m"}}}}"#)
                };
                let resp = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        (url, count)
    }

    fn quick(attempts: u32) -> Backoff {
        Backoff { first: Duration::from_millis(10), max: Duration::from_millis(50), attempts }
    }

    #[tokio::test]
    async fn busy_answers_are_retried_until_the_node_answers() {
        let (url, count) =
            stub(vec![(429, "retry-after: 0\r\n"), (503, ""), (429, ""), (200, "")]).await;
        let c = Client::new(&url).unwrap();
        let v = get_retrying(&c, "/v1/status", &quick(10)).await.unwrap().unwrap();
        assert_eq!(v["height"], 7);
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn retry_after_is_waited() {
        let (url, _) = stub(vec![(429, "retry-after: 1\r\n"), (200, "")]).await;
        let c = Client::new(&url).unwrap();
        let b =
            Backoff { first: Duration::from_millis(10), max: Duration::from_secs(5), attempts: 3 };
        let start = std::time::Instant::now();
        get_retrying(&c, "/x", &b).await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[test]
    fn withheld_transactions_stop_the_replay_with_a_clear_error() {
        let v = serde_json::json!({ "txs": [{ "hash": "aa", "bytes": "00" }, { "hash": "bb", "hidden": true }] });
        let e = withheld(&v, 4).unwrap_err();
        assert!(e.contains("block 4") && e.contains("withheld 1") && e.contains("--key"), "{e}");
        assert!(
            withheld(&serde_json::json!({ "txs": [{ "hash": "aa", "bytes": "00" }] }), 4).is_ok()
        );
    }

    #[tokio::test]
    async fn final_answers_are_not_retried_and_retries_are_bounded() {
        let (url, count) = stub(vec![(404, "")]).await;
        let c = Client::new(&url).unwrap();
        assert!(get_retrying(&c, "/x", &quick(5)).await.unwrap().is_none());
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let (url, count) = stub(vec![(400, "")]).await;
        let c = Client::new(&url).unwrap();
        assert!(get_retrying(&c, "/x", &quick(5)).await.unwrap_err().contains("400"));
        assert_eq!(count.load(Ordering::SeqCst), 1);

        let (url, count) = stub(vec![(429, "")]).await;
        let c = Client::new(&url).unwrap();
        let e = get_retrying(&c, "/x", &quick(4)).await.unwrap_err();
        assert!(e.contains("gave up after 4 tries") && e.contains("429"), "{e}");
        assert_eq!(count.load(Ordering::SeqCst), 4);
    }
}
