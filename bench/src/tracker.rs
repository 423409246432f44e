//! Commit observation: one event-stream subscriber per node records when each transaction's
//! `tx` event was first seen there (and at which height), and every block's header time and
//! size. A hash seen at two different heights is a duplicate commit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dpx_crypto::Hash;
use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::sse::{NodeEvent, SseParser, decode_event};

/// First sight of a committed transaction at one node.
#[derive(Debug, Clone)]
pub struct Seen {
    pub height: u64,
    pub at: Instant,
    pub code: Option<String>,
}

/// A committed block as first reported by any node.
#[derive(Debug, Clone, Copy)]
pub struct BlockSeen {
    pub time_ms: u64,
    pub txs: u64,
}

#[derive(Debug, Default)]
struct State {
    per_node: Vec<HashMap<Hash, Seen>>,
    blocks: BTreeMap<u64, BlockSeen>,
    duplicates: HashSet<Hash>,
}

impl State {
    /// A commit of `hash` at `height` seen at `node`: the first sighting is kept; another
    /// height is a duplicate (the same height again is a replay after a reconnect).
    fn commit(&mut self, node: usize, hash: Hash, height: u64, at: Instant, code: Option<String>) {
        let dup = if let Some(prev) = self.per_node[node].get(&hash) {
            prev.height != height
        } else {
            self.per_node[node].insert(hash, Seen { height, at, code });
            false
        };
        if dup {
            self.duplicates.insert(hash);
        }
    }
}

/// What the subscribers have seen, shared with the senders.
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<State>,
    pub reconnects: AtomicU64,
}

impl Tracker {
    pub fn new(nodes: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                per_node: (0..nodes).map(|_| HashMap::new()).collect(),
                ..State::default()
            }),
            reconnects: AtomicU64::new(0),
        })
    }

    /// How many nodes are followed.
    pub fn nodes(&self) -> usize {
        self.state.lock().per_node.len()
    }

    /// Record one event from `node`, seen at `at`.
    pub fn record(&self, node: usize, event: NodeEvent, at: Instant) {
        let mut st = self.state.lock();
        match event {
            NodeEvent::Tx { height, hash, code } => st.commit(node, hash, height, at, code),
            NodeEvent::Block { height, time_ms, txs, tx_hashes } => {
                st.blocks.entry(height).or_insert(BlockSeen { time_ms, txs });
                for hash in tx_hashes {
                    st.commit(node, hash, height, at, None);
                }
            }
            NodeEvent::Lagged { .. } | NodeEvent::Other => {}
        }
    }

    /// First sight of `hash` at `node`.
    pub fn seen_at(&self, node: usize, hash: &Hash) -> Option<Seen> {
        self.state.lock().per_node[node].get(hash).cloned()
    }

    /// First sight of `hash` at any node (the earliest).
    pub fn seen_anywhere(&self, hash: &Hash) -> Option<Seen> {
        let st = self.state.lock();
        st.per_node.iter().filter_map(|m| m.get(hash)).min_by_key(|s| s.at).cloned()
    }

    /// How many of `hashes` have not been seen at their node yet.
    pub fn missing(&self, hashes: &[(usize, Hash)]) -> usize {
        let st = self.state.lock();
        hashes.iter().filter(|(n, h)| !st.per_node[*n].contains_key(h)).count()
    }

    /// Wait until every `(node, hash)` was seen at its node, or `timeout`; returns how many are
    /// still missing.
    pub async fn wait_all(&self, hashes: &[(usize, Hash)], timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let missing = self.missing(hashes);
            if missing == 0 || Instant::now() >= deadline {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Hashes committed at two heights.
    pub fn duplicates(&self) -> HashSet<Hash> {
        self.state.lock().duplicates.clone()
    }

    /// Blocks with a header time in `[from_ms, to_ms]`.
    pub fn blocks_between(&self, from_ms: u64, to_ms: u64) -> Vec<(u64, BlockSeen)> {
        let st = self.state.lock();
        st.blocks
            .iter()
            .filter(|(_, b)| b.time_ms >= from_ms && b.time_ms <= to_ms)
            .map(|(h, b)| (*h, *b))
            .collect()
    }
}

/// How commits are observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Observe {
    /// `kinds=tx,block`: one event per transaction, with its receipt code.
    TxEvents,
    /// `kinds=block&tx_hashes=true`: one event per block listing its transaction hashes
    /// (cheaper for node and client; no receipt codes).
    BlockHashes,
}

impl Observe {
    fn query(self) -> &'static str {
        match self {
            Self::TxEvents => "kinds=tx,block",
            Self::BlockHashes => "kinds=block&tx_hashes=true",
        }
    }
}

/// Subscribe to `GET {rpc}/v1/events` (see [`Observe`]) for node `node`, forever: reconnects
/// after `lagged` or a dropped stream, resuming from the height it had reached (a replayed
/// height is harmless: a hash is a duplicate only at a *different* height). `ready` fires once
/// the first subscription is open, so nothing sent afterwards can be missed.
pub async fn subscribe(
    client: reqwest::Client,
    rpc: String,
    observe: Observe,
    observer: Option<crate::observer::Observer>,
    node: usize,
    tracker: Arc<Tracker>,
    ready: oneshot::Sender<anyhow::Result<()>>,
) {
    let mut ready = Some(ready);
    let mut from: Option<u64> = None;
    let mut failures = 0u32;
    loop {
        let mut path = format!("/v1/events?{}", observe.query());
        if let Some(h) = from {
            path = format!("{path}&from_height={h}");
        }
        let url = format!("{rpc}{path}");
        let mut request = client.get(&url);
        if let Some(o) = &observer {
            for (name, value) in o.sign_get(&path) {
                request = request.header(name, value);
            }
        }
        let resp = match request.send().await {
            Ok(r) if r.status().is_success() => r,
            other => {
                let why = match other {
                    Ok(r) => format!("HTTP {}", r.status()),
                    Err(e) => e.to_string(),
                };
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(anyhow::anyhow!("subscribing to {url}: {why}")));
                    return;
                }
                failures += 1;
                eprintln!("dpx-bench: event stream of {rpc}: {why}; retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10)))).await;
                continue;
            }
        };
        if let Some(tx) = ready.take() {
            let _ = tx.send(Ok(()));
        }
        failures = 0;
        let mut parser = SseParser::new();
        let mut body = resp.bytes_stream();
        let mut resume = None;
        'stream: while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else { break };
            let now = Instant::now();
            let msgs = match parser.feed(&chunk) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("dpx-bench: event stream of {rpc}: {e}");
                    break;
                }
            };
            for m in msgs {
                match decode_event(&m) {
                    Ok(NodeEvent::Lagged { resume_from_height }) => {
                        resume = Some(resume_from_height);
                        break 'stream;
                    }
                    Ok(ev) => {
                        if let NodeEvent::Block { height, .. } | NodeEvent::Tx { height, .. } = ev {
                            // Resume at the current height: it may be only partly received.
                            from = Some(height);
                        }
                        tracker.record(node, ev, now);
                    }
                    Err(e) => eprintln!("dpx-bench: event from {rpc}: {e}"),
                }
            }
        }
        if resume.is_some() {
            from = resume;
        }
        tracker.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(height: u64, b: u8) -> NodeEvent {
        NodeEvent::Tx { height, hash: Hash([b; 32]), code: Some("ok".into()) }
    }

    #[test]
    fn first_sight_wins_and_a_second_height_is_a_duplicate() {
        let t = Tracker::new(2);
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(5);
        t.record(0, tx(3, 1), t0);
        t.record(0, tx(3, 1), later); // replay after a reconnect: same height, no duplicate
        assert_eq!(t.seen_at(0, &Hash([1; 32])).unwrap().at, t0);
        assert!(t.duplicates().is_empty());
        t.record(1, tx(3, 1), later);
        assert_eq!(t.seen_anywhere(&Hash([1; 32])).unwrap().at, t0);
        t.record(1, tx(4, 1), later);
        assert_eq!(t.duplicates().len(), 1);
        assert_eq!(t.missing(&[(0, Hash([1; 32])), (1, Hash([2; 32]))]), 1);
    }

    #[test]
    fn blocks_by_header_time() {
        let t = Tracker::new(1);
        let now = Instant::now();
        for (h, ms) in [(1, 900), (2, 1000), (3, 2000), (4, 3001)] {
            t.record(
                0,
                NodeEvent::Block { height: h, time_ms: ms, txs: h, tx_hashes: vec![] },
                now,
            );
        }
        let b: Vec<u64> = t.blocks_between(1000, 3000).iter().map(|(h, _)| *h).collect();
        assert_eq!(b, vec![2, 3]);
        // Hashes listed in a block event count as commits, with no receipt code.
        let hashes = vec![Hash([7; 32]), Hash([8; 32])];
        t.record(0, NodeEvent::Block { height: 5, time_ms: 4000, txs: 2, tx_hashes: hashes }, now);
        let seen = t.seen_at(0, &Hash([8; 32])).unwrap();
        assert_eq!((seen.height, seen.code), (5, None));
    }
}
