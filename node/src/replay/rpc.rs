//! A node's RPC: blocks and certificates only (`GET /v1/blocks/{height}`), fetched ahead of the
//! replay on the tokio runtime, with retries while the node is busy.

use std::time::Duration;

use dpx_app::replay::{Fetched, ReplayError, Source};
use dpx_ledger::{Block, Header};
use serde_json::Value;

use super::src;
use crate::cli::Client;
use crate::cli::client_error_text as error_text;

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
