//! Prometheus metrics. Cheap to clone: every field is a shared atomic.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// All node metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub height: Gauge,
    pub round: Gauge,
    pub peers: Gauge,
    pub mempool_txs: Gauge,
    pub mempool_bytes: Gauge,
    pub txs_committed: Counter,
    pub blocks_committed: Counter,
    pub txs_rejected: Counter,
    pub block_interval_seconds: Histogram,
    pub speculation_used: Counter,
    pub speculation_discarded: Counter,
    pub speculation_failed: Counter,
    pub commit_latency_seconds: Histogram,
    pub p2p_refused: Counter,
    pub p2p_dropped: Counter,
    pub p2p_send_failed: Counter,
    pub p2p_rate_limited: Counter,
    pub p2p_bad_frames: Counter,
    pub consensus_rejected: Counter,
    pub proposal_blocks_refused: Counter,
    pub proposal_blocks_evicted: Counter,
    pub compact_blocks_received: Counter,
    pub compact_blocks_incomplete: Counter,
    pub compact_txs_fetched: Counter,
    pub compact_fetches_served: Counter,
    pub sync_peers_benched: Counter,
    pub rpc_requests: Counter,
    pub rpc_errors: Counter,
    pub rpc_overloaded: Counter,
    // Refusals of peer- and signer-driven work (issue 14: every bound counts what it refused).
    pub mempool_signer_full: Counter,
    pub p2p_byte_limited: Counter,
    pub p2p_sync_refused: Counter,
    pub p2p_relay_dropped: Counter,
    pub p2p_relay_muted: Counter,
    pub p2p_relay_bad_txs: Counter,
    pub p2p_peers_penalised: Counter,
    pub rpc_connections_open: Gauge,
    pub rpc_connections_refused: Counter,
    pub rpc_connections_timed_out: Counter,
    pub rpc_subscribers: Gauge,
    pub rpc_subscribers_closed_slow: Counter,
    pub rpc_auth_signed: Counter,
    pub rpc_auth_refused: Counter,
    pub rpc_auth_key_rate_limited: Counter,
    pub rpc_auth_replay_cache_full: Counter,
    // The ledger's caches, read from the store at each scrape (`observe_store`).
    pub storage_block_cache_bytes: Gauge,
    pub storage_node_cache_nodes: Gauge,
    pub storage_node_cache_bytes: Gauge,
    pub storage_node_cache_hits: Counter,
    pub storage_node_cache_misses: Counter,
    pub storage_state_cache_entries: Gauge,
    pub storage_state_cache_bytes: Gauge,
    pub storage_state_cache_hits: Counter,
    pub storage_state_cache_misses: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("dpx");
        macro_rules! reg {
            ($name:literal, $help:literal, $m:expr) => {{
                let m = $m;
                r.register($name, $help, m.clone());
                m
            }};
        }
        let secs = || Histogram::new(exponential_buckets(0.005, 2.0, 14));
        Self {
            height: reg!("height", "Height of the last committed block", Gauge::default()),
            round: reg!("round", "Current consensus round", Gauge::default()),
            peers: reg!("peers", "Connected permitted peers", Gauge::default()),
            mempool_txs: reg!(
                "mempool_txs",
                "Transactions waiting in the mempool",
                Gauge::default()
            ),
            mempool_bytes: reg!("mempool_bytes", "Bytes waiting in the mempool", Gauge::default()),
            txs_committed: reg!("txs_committed", "Transactions committed", Counter::default()),
            blocks_committed: reg!("blocks_committed", "Blocks committed", Counter::default()),
            txs_rejected: reg!(
                "txs_rejected",
                "Transactions refused at admission",
                Counter::default()
            ),
            block_interval_seconds: reg!("block_interval_seconds", "Time between commits", secs()),
            speculation_used: reg!(
                "speculation_used",
                "Blocks committed with the execution done while they were voted on",
                Counter::default()
            ),
            speculation_discarded: reg!(
                "speculation_discarded",
                "Speculative executions dropped because another block was decided",
                Counter::default()
            ),
            speculation_failed: reg!(
                "speculation_failed",
                "Speculative executions that failed (the block was executed again)",
                Counter::default()
            ),
            commit_latency_seconds: reg!(
                "commit_latency_seconds",
                "Time from local admission to commit",
                secs()
            ),
            p2p_refused: reg!(
                "p2p_refused",
                "Connections refused (unknown key)",
                Counter::default()
            ),
            p2p_dropped: reg!(
                "p2p_dropped",
                "Inbound messages dropped (node busy)",
                Counter::default()
            ),
            p2p_send_failed: reg!(
                "p2p_send_failed",
                "Messages to peers that failed (stream limit, timeout, connection closed)",
                Counter::default()
            ),
            p2p_rate_limited: reg!(
                "p2p_rate_limited",
                "Inbound messages over a peer's rate",
                Counter::default()
            ),
            p2p_bad_frames: reg!(
                "p2p_bad_frames",
                "Malformed or oversized frames",
                Counter::default()
            ),
            consensus_rejected: reg!(
                "consensus_rejected",
                "Consensus messages rejected",
                Counter::default()
            ),
            proposal_blocks_refused: reg!(
                "proposal_blocks_refused",
                "Blocks from peers refused (undecodable, too large, not for this or the next height)",
                Counter::default()
            ),
            proposal_blocks_evicted: reg!(
                "proposal_blocks_evicted",
                "Blocks from peers dropped from the pending area before any proposal named them",
                Counter::default()
            ),
            compact_blocks_received: reg!(
                "compact_blocks_received",
                "Proposal blocks received as transaction hashes",
                Counter::default()
            ),
            compact_blocks_incomplete: reg!(
                "compact_blocks_incomplete",
                "Compact blocks naming transactions this node's mempool lacked",
                Counter::default()
            ),
            compact_txs_fetched: reg!(
                "compact_txs_fetched",
                "Transactions asked of a compact block's sender",
                Counter::default()
            ),
            compact_fetches_served: reg!(
                "compact_fetches_served",
                "Peers' requests for a compact block's transactions answered",
                Counter::default()
            ),
            sync_peers_benched: reg!(
                "sync_peers_benched",
                "Sync peers benched for not delivering what they claimed (empty, bad, timed out)",
                Counter::default()
            ),
            rpc_requests: reg!("rpc_requests", "RPC requests served", Counter::default()),
            rpc_errors: reg!(
                "rpc_errors",
                "RPC requests answered with an error",
                Counter::default()
            ),
            rpc_overloaded: reg!(
                "rpc_overloaded",
                "Submissions refused at the door while the pool's oldest transaction had waited longer than mempool.shed_wait_ms",
                Counter::default()
            ),
            mempool_signer_full: reg!(
                "mempool_signer_full",
                "Transactions refused because their signer had the most pending one signer may have",
                Counter::default()
            ),
            p2p_byte_limited: reg!(
                "p2p_byte_limited",
                "Inbound messages over a peer's byte rate",
                Counter::default()
            ),
            p2p_sync_refused: reg!(
                "p2p_sync_refused",
                "Block-sync requests refused because the most allowed were being served",
                Counter::default()
            ),
            p2p_relay_dropped: reg!(
                "p2p_relay_dropped",
                "Relayed transaction batches dropped (the verification queue or the driver's queue was full)",
                Counter::default()
            ),
            p2p_relay_muted: reg!(
                "p2p_relay_muted",
                "Relayed transaction batches dropped unverified from a penalised peer",
                Counter::default()
            ),
            p2p_relay_bad_txs: reg!(
                "p2p_relay_bad_txs",
                "Relayed transactions that failed the stateless checks (bad signature, encoding)",
                Counter::default()
            ),
            p2p_peers_penalised: reg!(
                "p2p_peers_penalised",
                "Times a peer's transaction relay was muted for sending invalid transactions",
                Counter::default()
            ),
            rpc_connections_open: reg!(
                "rpc_connections_open",
                "Open RPC connections",
                Gauge::default()
            ),
            rpc_connections_refused: reg!(
                "rpc_connections_refused",
                "RPC connections refused (global or per-IP connection cap)",
                Counter::default()
            ),
            rpc_connections_timed_out: reg!(
                "rpc_connections_timed_out",
                "RPC connections closed for slow headers, idleness or a client not reading",
                Counter::default()
            ),
            rpc_subscribers: reg!("rpc_subscribers", "Open event streams", Gauge::default()),
            rpc_subscribers_closed_slow: reg!(
                "rpc_subscribers_closed_slow",
                "Event streams closed because the subscriber fell too far behind",
                Counter::default()
            ),
            rpc_auth_signed: reg!(
                "rpc_auth_signed",
                "Signed RPC requests that passed authentication",
                Counter::default()
            ),
            rpc_auth_refused: reg!(
                "rpc_auth_refused",
                "Signed RPC requests refused with 401 (a failed signature check, skew, replayed nonce)",
                Counter::default()
            ),
            rpc_auth_key_rate_limited: reg!(
                "rpc_auth_key_rate_limited",
                "Signed RPC requests refused with 429: the key holds the most nonces one key may",
                Counter::default()
            ),
            rpc_auth_replay_cache_full: reg!(
                "rpc_auth_replay_cache_full",
                "Signed RPC requests refused with 503: a replay cache was full",
                Counter::default()
            ),
            storage_block_cache_bytes: reg!(
                "storage_block_cache_bytes",
                "Bytes RocksDB's block cache holds (data, index and bloom-filter blocks)",
                Gauge::default()
            ),
            storage_node_cache_nodes: reg!(
                "storage_node_cache_nodes",
                "State-tree nodes held in the node cache",
                Gauge::default()
            ),
            storage_node_cache_bytes: reg!(
                "storage_node_cache_bytes",
                "Estimated bytes held in the state-tree node cache",
                Gauge::default()
            ),
            storage_node_cache_hits: reg!(
                "storage_node_cache_hits",
                "State-tree node reads answered from the node cache",
                Counter::default()
            ),
            storage_node_cache_misses: reg!(
                "storage_node_cache_misses",
                "State-tree node reads that went to RocksDB",
                Counter::default()
            ),
            storage_state_cache_entries: reg!(
                "storage_state_cache_entries",
                "Latest-state keys held in the state cache",
                Gauge::default()
            ),
            storage_state_cache_bytes: reg!(
                "storage_state_cache_bytes",
                "Estimated bytes held in the latest-state cache",
                Gauge::default()
            ),
            storage_state_cache_hits: reg!(
                "storage_state_cache_hits",
                "Latest-state reads answered from the state cache",
                Counter::default()
            ),
            storage_state_cache_misses: reg!(
                "storage_state_cache_misses",
                "Latest-state reads that went to RocksDB",
                Counter::default()
            ),
            registry: Arc::new(r),
        }
    }

    /// Copy the store's cache figures into the metrics (called before each scrape). The
    /// store's counters only grow; the Prometheus counters follow them.
    pub fn observe_store(&self, store: &dpx_ledger::Store) {
        let n = store.node_cache_stats();
        let gauge = |g: &Gauge, v: usize| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.storage_block_cache_bytes, store.block_cache_usage_bytes());
        gauge(&self.storage_node_cache_nodes, n.nodes);
        gauge(&self.storage_node_cache_bytes, n.bytes);
        let follow = |c: &Counter, v: u64| {
            c.inc_by(v.saturating_sub(c.get()));
        };
        follow(&self.storage_node_cache_hits, n.hits);
        follow(&self.storage_node_cache_misses, n.misses);
        let st = store.state_cache_stats();
        gauge(&self.storage_state_cache_entries, st.entries);
        gauge(&self.storage_state_cache_bytes, st.bytes);
        follow(&self.storage_state_cache_hits, st.hits);
        follow(&self.storage_state_cache_misses, st.misses);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
