//! One connection's sender: sends its pre-built transactions in batches at their scheduled
//! times, one request at a time (so a signer's nonces arrive in order), and records what the
//! node answered.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dpx_crypto::Hash;

use crate::rpc::{
    Encoding, EncodingChoice, TxAnswer, batch_body, parse_batch_response, refusal_reason,
};
use crate::schedule::{batch_deadline, due_count};
use crate::workload::{NO_SIGNER, Planned};

/// Longest a batch request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP connection to one node.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Index of the node (its position in `--rpc`).
    pub node: usize,
    pub rpc: String,
    client: reqwest::Client,
}

impl Conn {
    /// A client of its own with one pooled connection: requests of one `Conn` reuse one TCP
    /// connection and never overtake each other.
    pub fn new(node: usize, rpc: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { node, rpc: rpc.trim_end_matches('/').to_owned(), client })
    }
}

/// How a sender behaves.
#[derive(Debug, Clone, Copy)]
pub struct SendConfig {
    /// Transactions per request while on schedule.
    pub batch: usize,
    /// Most per request when behind schedule (everything due goes at once, up to this): keeps
    /// the offered load open-loop when the node answers slowly.
    pub max_batch: usize,
    pub linger: Duration,
    /// Repeats of a request answered 503 / 429 or lost in transport.
    pub retries: u32,
}

/// Counters of requests.
#[derive(Debug, Default, Clone, Copy)]
pub struct HttpCounts {
    pub requests: u64,
    pub retries: u64,
}

/// The `Retry-After` of an answer in whole seconds, capped at [`RETRY_AFTER_MAX`] (a
/// well-behaved client waits as long as the node asks, up to a bound of its own).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 =
        headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(RETRY_AFTER_MAX))
}

/// The longest `Retry-After` the load generator honours.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(5);

/// POST one batch with `wait=check`. `Err` carries a reason class (`http_503`, `transport`, …)
/// for every transaction of the batch.
pub async fn post_batch(
    conn: &Conn,
    txs: &[&[u8]],
    encoding: &EncodingChoice,
    retries: u32,
    counts: &mut HttpCounts,
) -> Result<Vec<TxAnswer>, String> {
    let url = format!("{}/v1/txs/batch?wait=check", conn.rpc);
    let mut attempt = 0u32;
    loop {
        // What the node asked for with `Retry-After` (a shedding node says how long to wait).
        let mut asked_wait: Option<Duration> = None;
        let enc = encoding.get();
        let (body, content_type) = batch_body(txs, enc);
        counts.requests += 1;
        let outcome = conn
            .client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await;
        let reason = match outcome {
            Ok(r) => {
                let status = r.status();
                asked_wait = retry_after(r.headers());
                let bytes = r.bytes().await.map_err(|e| format!("transport: {e}"));
                if status.is_success() {
                    return match bytes {
                        Ok(b) => parse_batch_response(&b, txs.len()).map_err(|e| {
                            eprintln!("dpx-bench: {url}: {e:#}");
                            "bad_response".to_owned()
                        }),
                        Err(_) => Err("transport".to_owned()),
                    };
                }
                let text =
                    bytes.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                let unsupported = status == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE
                    || (status == reqwest::StatusCode::BAD_REQUEST && text.contains("bad_json"));
                if enc == Encoding::Proto && unsupported {
                    if encoding.fall_back() {
                        eprintln!(
                            "dpx-bench: {} does not take protobuf batches ({status}); using JSON",
                            conn.rpc
                        );
                    }
                    continue;
                }
                let retryable = status == reqwest::StatusCode::SERVICE_UNAVAILABLE
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
                if !retryable {
                    eprintln!(
                        "dpx-bench: {url}: HTTP {status}: {}",
                        text.chars().take(300).collect::<String>()
                    );
                    return Err(format!("http_{}", status.as_u16()));
                }
                format!("http_{}", status.as_u16())
            }
            Err(e) => {
                eprintln!("dpx-bench: {url}: {e}");
                "transport".to_owned()
            }
        };
        if attempt >= retries {
            return Err(reason);
        }
        attempt += 1;
        counts.retries += 1;
        let backoff = Duration::from_millis(20 << attempt.min(5));
        tokio::time::sleep(asked_wait.map_or(backoff, |w| w.max(backoff))).await;
    }
}

/// What happened to one connection's transactions.
#[derive(Debug, Default)]
pub struct SendOutcome {
    pub node: usize,
    /// Per planned transaction (same order): when its request left, if it was sent.
    pub sent_at: Vec<Option<Instant>>,
    /// Per planned transaction: the node's hash if it was accepted.
    pub accepted: Vec<Option<Hash>>,
    pub rejected: BTreeMap<String, u64>,
    pub skipped: u64,
    pub hash_mismatches: u64,
    /// Microseconds each sent transaction left after its scheduled time.
    pub lag_us: Vec<u64>,
    pub http: HttpCounts,
}

/// Send `plan` (ascending offsets) from `start`, open loop.
pub async fn run_sender(
    conn: Conn,
    plan: Vec<Planned>,
    start: Instant,
    cfg: SendConfig,
    encoding: Arc<EncodingChoice>,
) -> SendOutcome {
    let n = plan.len();
    let mut out = SendOutcome {
        node: conn.node,
        sent_at: vec![None; n],
        accepted: vec![None; n],
        ..SendOutcome::default()
    };
    let offsets: Vec<Duration> = plan.iter().map(|p| p.offset).collect();
    let mut broken: HashSet<u32> = HashSet::new();
    let mut pos = 0;
    while pos < n {
        let deadline = batch_deadline(&offsets[pos..], cfg.batch, cfg.linger)
            .expect("pos < n, so something is pending");
        tokio::time::sleep_until(tokio::time::Instant::from_std(start + deadline)).await;
        let now = Instant::now();
        let due =
            due_count(&offsets[pos..], now.saturating_duration_since(start), cfg.max_batch).max(1);
        let idx: Vec<usize> = (pos..pos + due)
            .filter(|i| {
                let skip = broken.contains(&plan[*i].signer);
                out.skipped += u64::from(skip);
                !skip
            })
            .collect();
        pos += due;
        if idx.is_empty() {
            continue;
        }
        let txs: Vec<&[u8]> = idx.iter().map(|i| plan[*i].bytes.as_slice()).collect();
        let sent = Instant::now();
        for i in &idx {
            out.sent_at[*i] = Some(sent);
            out.lag_us
                .push(sent.saturating_duration_since(start + plan[*i].offset).as_micros() as u64);
        }
        let mut reject = |i: usize, reason: String, out: &mut SendOutcome| {
            *out.rejected.entry(reason).or_default() += 1;
            if plan[i].signer != NO_SIGNER {
                broken.insert(plan[i].signer);
            }
        };
        match post_batch(&conn, &txs, &encoding, cfg.retries, &mut out.http).await {
            Ok(answers) => {
                for (i, a) in idx.iter().zip(answers) {
                    match a {
                        TxAnswer::Accepted(h) => {
                            if h != plan[*i].hash {
                                out.hash_mismatches += 1;
                            }
                            out.accepted[*i] = Some(h);
                        }
                        TxAnswer::Refused { code, message } => {
                            reject(*i, refusal_reason(&code, &message), &mut out);
                        }
                    }
                }
            }
            Err(reason) => {
                for i in &idx {
                    reject(*i, reason.clone(), &mut out);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(RETRY_AFTER_MAX));
        // An HTTP date (allowed by RFC 9110, never sent by dpx) falls back to the backoff.
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
