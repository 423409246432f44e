//! The node's configuration file (`<home>/config.toml`) and home directory layout.
//!
//! ```text
//! <home>/config.toml      this file
//! <home>/genesis.json     the chain's genesis
//! <home>/node_key.json    the node's ed25519 key (a validator's is its validator key), mode 0600
//! <home>/data/ledger/     the RocksDB store
//! <home>/data/safety.bin  the consensus safety state, written before anything is signed
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use dpx_ledger::StoreConfig;
use serde::{Deserialize, Serialize};

/// Largest config file we read.
const CONFIG_BYTES_MAX: u64 = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub node: NodeSection,
    pub p2p: P2pSection,
    pub rpc: RpcSection,
    #[serde(default)]
    pub mempool: MempoolSection,
    #[serde(default)]
    pub consensus: ConsensusSection,
    #[serde(default)]
    pub storage: StorageSection,
    #[serde(default)]
    pub log: LogSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// A human name for logs.
    pub moniker: String,
    /// `false` runs a non-validating full node (e.g. an auditor's), even with a validator key.
    pub validator: bool,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self { moniker: "dpx".into(), validator: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    /// The peer's ed25519 public key (hex).
    pub key: String,
    /// Its libp2p address, e.g. `/ip4/127.0.0.1/tcp/26601`.
    pub addr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pSection {
    /// The multiaddr this node listens on, e.g. `/ip4/0.0.0.0/tcp/26656`.
    pub listen: String,
    /// The multiaddr other nodes dial to reach this one, when it differs from `listen` (a
    /// container's or NAT's public address). Only told to others (`dpx init` prints it as this
    /// node's peer entry); the node itself never dials it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertise: Option<String>,
    #[serde(default)]
    pub peers: Vec<PeerEntry>,
    /// Keys of non-validating full nodes (auditors) allowed to connect.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Largest frame accepted or sent. Never below `p2p::FRAME_BYTES_MIN` (a maximal block with
    /// two certificates): a smaller value is raised to it.
    #[serde(default = "d_frame")]
    pub max_frame_bytes: usize,
    /// Inbound messages per second per peer (token bucket refill rate) and burst.
    #[serde(default = "d_peer_rate")]
    pub peer_msgs_per_s: u32,
    #[serde(default = "d_peer_burst")]
    pub peer_burst: u32,
    /// Inbound bytes per second per peer (token bucket) and burst. The burst is never below
    /// the frame limit, so one maximal frame (a full block) always passes a rested bucket.
    #[serde(default = "d_peer_bytes_rate")]
    pub peer_bytes_per_s: u64,
    #[serde(default = "d_peer_bytes_burst")]
    pub peer_burst_bytes: u64,
    /// Relayed transaction batches verified at once (all peers together). Over the cap a
    /// relayed batch waits in a bounded queue; over the queue it is dropped and counted
    /// (`dpx_p2p_relay_dropped`).
    #[serde(default = "d_relay_verifications")]
    pub max_relay_verifications: usize,
    /// Relayed batches admitted and not yet verified, at most (all peers together; a peer
    /// may hold a quarter of them). Deeper queues drop less under a burst and verify more
    /// that the node may not keep up with (see `relay`).
    #[serde(default = "d_relay_queued")]
    pub max_relay_queued: usize,
    /// Send the transactions this node's clients submit to the other validators (the mempool
    /// relay). Off, they reach the others only inside this node's proposals, and every other
    /// validator fetches them from it when it proposes: slower, for tests and for measuring
    /// the fetch path.
    #[serde(default = "d_true")]
    pub relay_transactions: bool,
}

/// The HTTP API's limits. Every field has a default, so older config files still load.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcSection {
    /// `ip:port` to listen on.
    pub listen: String,
    /// Largest request body (413 above it).
    #[serde(default = "d_body")]
    pub max_body_bytes: usize,
    /// Per-IP token bucket: sustained requests a second (429 with `Retry-After` above it)...
    #[serde(default = "d_ip_rate")]
    pub per_ip_requests_per_s: u32,
    /// ...and the burst it allows.
    #[serde(default = "d_ip_burst")]
    pub per_ip_burst: u32,
    /// Requests handled at once (503 when saturated; event streams are counted separately).
    #[serde(default = "d_conns")]
    pub max_concurrent_requests: usize,
    /// Time to receive a request's body and answer it (408 after it). A `wait=commit`
    /// submission may additionally wait up to `commit_wait_max_ms` for its commit.
    #[serde(default = "d_req_timeout")]
    pub request_timeout_ms: u64,
    /// Longest `wait=commit` wait.
    #[serde(default = "d_commit_wait")]
    pub commit_wait_max_ms: u64,
    /// Transactions per `POST /v1/txs/batch`.
    #[serde(default = "d_batch")]
    pub max_batch_txs: usize,
    /// Event-stream subscribers at once (503 above it). A slot is freed when its client goes.
    #[serde(default = "d_subs")]
    pub max_subscribers: usize,
    /// Event bytes buffered for one subscriber that reads slower than blocks commit; past it
    /// the subscriber gets a final `lagged` event with its resume point and is closed.
    #[serde(default = "d_sub_buffer")]
    pub subscriber_buffer_bytes: usize,
    /// Open connections at once, from all clients (refused with 503 above it).
    #[serde(default = "d_max_conns")]
    pub max_connections: usize,
    /// Open connections at once from one IP address (refused with 503 above it).
    #[serde(default = "d_ip_conns")]
    pub per_ip_max_connections: usize,
    /// A new connection must deliver its first request's headers within this time, and a
    /// later request's headers must be complete this long after their first byte; otherwise
    /// the connection is closed.
    #[serde(default = "d_header_timeout")]
    pub header_read_timeout_ms: u64,
    /// A kept-alive connection with no request in flight is closed after this long; so is one
    /// whose client stops reading a response for this long.
    #[serde(default = "d_idle_timeout")]
    pub idle_timeout_ms: u64,
    /// Signed requests (SPEC.md, "Signed RPC requests"): the largest difference allowed
    /// between a signature's `created` time and the node's clock, in seconds. Nonces are
    /// remembered for this long after `created`, so a request cannot be replayed.
    #[serde(default = "d_auth_skew")]
    pub auth_max_skew_secs: u64,
    /// Signed requests: (key, nonce) pairs remembered at most. When full, new signed requests
    /// are refused with 503 and `Retry-After` until entries expire; none is forgotten early.
    #[serde(default = "d_auth_replay")]
    pub auth_replay_cache_max: usize,
    /// Signed requests: nonces one key may hold in the cache at once (about its requests per
    /// signature window); beyond, that key alone gets 429 `key_rate_limited`.
    #[serde(default = "d_auth_replay_per_key")]
    pub auth_replay_per_key_max: usize,
    /// Signed requests by keys without standing on the ledger (not a participant's or
    /// subject's current key): their own, separate nonce cache, so they cannot fill the one
    /// above.
    #[serde(default = "d_auth_replay_unknown")]
    pub auth_replay_unknown_max: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSection {
    pub max_txs: usize,
    pub max_bytes: usize,
    /// Pending transactions one signer may have; more are refused (`signer already has N
    /// pending transactions`) and counted (`dpx_mempool_signer_full`). Not applied on a
    /// consensus-only chain.
    pub max_txs_per_signer: usize,
    /// Load shedding: while the pool's 64th transaction from the front has waited more than
    /// this (on a validator of the set in force), new submissions are refused at the door (503 `overloaded`, with
    /// `Retry-After`), before any decoding or signature check, and counted
    /// (`dpx_rpc_overloaded_total`). The node then spends its CPU on what it already took
    /// instead of verifying work it cannot commit soon. 0 turns it off (the pool's count and
    /// byte limits still apply).
    pub shed_wait_ms: u64,
}

impl Default for MempoolSection {
    fn default() -> Self {
        Self {
            max_txs: 100_000,
            max_bytes: 128 << 20,
            max_txs_per_signer: 10_000,
            shed_wait_ms: 2_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusSection {
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    /// Added per round to every timeout.
    pub timeout_delta_ms: u64,
    /// With no transactions waiting, propose an (empty) block only this often.
    pub idle_block_interval_ms: u64,
    /// Wait this long after a commit for more transactions before proposing.
    pub min_block_interval_ms: u64,
    /// Execute a valid proposal while the votes on it are collected, so a decided block only
    /// has to be written (the result is discarded if another block is decided). Off: execute
    /// after the decision, on the driver (the behaviour before; for comparison).
    pub speculative_execution: bool,
    /// Send our proposals' blocks as transaction hashes (peers rebuild them from their
    /// mempools and ask for what they lack). Off: send every block whole (the behaviour
    /// before; for comparison). Either way a node accepts both forms.
    pub compact_proposals: bool,
}

impl Default for ConsensusSection {
    fn default() -> Self {
        Self {
            timeout_propose_ms: 1000,
            timeout_prevote_ms: 500,
            timeout_precommit_ms: 500,
            timeout_delta_ms: 500,
            idle_block_interval_ms: 1000,
            min_block_interval_ms: 0,
            speculative_execution: true,
            compact_proposals: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// Keep only this many past state versions (`None`: keep all).
    pub retain_versions: Option<u64>,
    /// RocksDB's block cache in MiB (data, index and bloom-filter blocks of every column
    /// family), 1 ..= 65536.
    pub block_cache_mib: usize,
    /// Most decoded state-tree nodes kept in memory in front of RocksDB (0: no node cache).
    pub node_cache_nodes: usize,
    /// Most MiB (estimated) the node cache may hold (0: no node cache).
    pub node_cache_mib: usize,
    /// Most MiB (estimated) of latest-state values kept in memory for the keys that are read
    /// (0: no state cache).
    pub state_cache_mib: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        let d = StoreConfig::default();
        Self {
            retain_versions: None,
            block_cache_mib: d.block_cache_bytes >> 20,
            node_cache_nodes: d.node_cache_nodes,
            node_cache_mib: d.node_cache_bytes >> 20,
            state_cache_mib: d.state_cache_bytes >> 20,
        }
    }
}

impl StorageSection {
    /// The store's settings, checked against the ledger's bounds (a clear error names the
    /// setting of this section).
    pub fn store_config(&self) -> anyhow::Result<StoreConfig> {
        let mib = |name: &str, v: usize| {
            v.checked_mul(1 << 20).with_context(|| format!("storage.{name} = {v} is too large"))
        };
        let c = StoreConfig {
            retain_versions: self.retain_versions,
            block_cache_bytes: mib("block_cache_mib", self.block_cache_mib)?,
            node_cache_nodes: self.node_cache_nodes,
            node_cache_bytes: mib("node_cache_mib", self.node_cache_mib)?,
            state_cache_bytes: mib("state_cache_mib", self.state_cache_mib)?,
            ..StoreConfig::default()
        };
        c.validate().map_err(|e| anyhow::anyhow!("[storage]: {e} (bytes; the file gives MiB)"))?;
        Ok(c)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// `human` or `json`.
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `dpx_node=debug,info`.
    pub level: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self { format: "human".into(), level: "info".into() }
    }
}

fn d_frame() -> usize {
    16 << 20
}
fn d_peer_rate() -> u32 {
    2000
}
fn d_peer_burst() -> u32 {
    4000
}
fn d_peer_bytes_rate() -> u64 {
    32 << 20
}
fn d_peer_bytes_burst() -> u64 {
    64 << 20
}
fn d_relay_verifications() -> usize {
    2
}
fn d_relay_queued() -> usize {
    crate::relay::QUEUED_MAX
}
fn d_true() -> bool {
    true
}
fn d_body() -> usize {
    2 << 20
}
fn d_ip_rate() -> u32 {
    500
}
fn d_ip_burst() -> u32 {
    1000
}
fn d_conns() -> usize {
    512
}
fn d_req_timeout() -> u64 {
    10_000
}
fn d_commit_wait() -> u64 {
    30_000
}
fn d_batch() -> usize {
    1000
}
fn d_subs() -> usize {
    256
}
fn d_sub_buffer() -> usize {
    1 << 20
}
fn d_max_conns() -> usize {
    4096
}
fn d_ip_conns() -> usize {
    256
}
fn d_header_timeout() -> u64 {
    5_000
}
fn d_idle_timeout() -> u64 {
    30_000
}
fn d_auth_skew() -> u64 {
    60
}
fn d_auth_replay() -> usize {
    100_000
}

fn d_auth_replay_per_key() -> usize {
    10_000
}

fn d_auth_replay_unknown() -> usize {
    10_000
}

impl Config {
    /// A config with defaults for the given listen addresses.
    pub fn new(moniker: &str, p2p_listen: String, rpc_listen: String) -> Self {
        Self {
            node: NodeSection { moniker: moniker.into(), validator: true },
            p2p: P2pSection {
                listen: p2p_listen,
                advertise: None,
                peers: Vec::new(),
                allow: Vec::new(),
                max_frame_bytes: d_frame(),
                peer_msgs_per_s: d_peer_rate(),
                peer_burst: d_peer_burst(),
                peer_bytes_per_s: d_peer_bytes_rate(),
                peer_burst_bytes: d_peer_bytes_burst(),
                max_relay_verifications: d_relay_verifications(),
                max_relay_queued: d_relay_queued(),
                relay_transactions: true,
            },
            rpc: RpcSection {
                listen: rpc_listen,
                max_body_bytes: d_body(),
                per_ip_requests_per_s: d_ip_rate(),
                per_ip_burst: d_ip_burst(),
                max_concurrent_requests: d_conns(),
                request_timeout_ms: d_req_timeout(),
                commit_wait_max_ms: d_commit_wait(),
                max_batch_txs: d_batch(),
                max_subscribers: d_subs(),
                subscriber_buffer_bytes: d_sub_buffer(),
                max_connections: d_max_conns(),
                per_ip_max_connections: d_ip_conns(),
                header_read_timeout_ms: d_header_timeout(),
                idle_timeout_ms: d_idle_timeout(),
                auth_max_skew_secs: d_auth_skew(),
                auth_replay_cache_max: d_auth_replay(),
                auth_replay_per_key_max: d_auth_replay_per_key(),
                auth_replay_unknown_max: d_auth_replay_unknown(),
            },
            mempool: MempoolSection::default(),
            consensus: ConsensusSection::default(),
            storage: StorageSection::default(),
            log: LogSection::default(),
        }
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
        anyhow::ensure!(meta.len() <= CONFIG_BYTES_MAX, "{} is too large", path.display());
        let text = std::fs::read_to_string(path)?;
        let cfg: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        // A node that proposes nothing and relays nothing would keep its clients'
        // transactions to itself for ever.
        anyhow::ensure!(
            cfg.node.validator || cfg.p2p.relay_transactions,
            "{}: p2p.relay_transactions = false on a node that does not validate: its clients' \
             transactions would never reach a proposer",
            path.display()
        );
        Ok(cfg)
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, toml::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// A TCP multiaddr (`/ip4/…/tcp/P`, `/ip6/…`, `/dns/…`) from a host name or IP address and a
/// port.
pub fn tcp_multiaddr(host: &str, port: u16) -> anyhow::Result<String> {
    let proto = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => "ip4",
        Ok(std::net::IpAddr::V6(_)) => "ip6",
        Err(_) if is_dns_name(host) => "dns",
        Err(_) => anyhow::bail!("{host:?} is neither an IP address nor a host name"),
    };
    Ok(format!("/{proto}/{host}/tcp/{port}"))
}

fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Check a p2p address: a multiaddr over TCP (`/ip4/10.0.0.5/tcp/26656`, `/dns/host/tcp/P`).
pub fn check_p2p_addr(what: &str, addr: &str) -> anyhow::Result<libp2p::Multiaddr> {
    let m: libp2p::Multiaddr = addr.parse().map_err(|e| {
        anyhow::anyhow!("{what} {addr:?} is not a multiaddr ({e}); e.g. /ip4/10.0.0.5/tcp/26656")
    })?;
    let tcp = m.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::Tcp(_)));
    anyhow::ensure!(tcp, "{what} {addr:?} names no TCP port; e.g. /ip4/10.0.0.5/tcp/26656");
    Ok(m)
}

/// Paths inside a node's home directory.
#[derive(Debug, Clone)]
pub struct Home(pub PathBuf);

impl Home {
    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }
    pub fn genesis(&self) -> PathBuf {
        self.0.join("genesis.json")
    }
    pub fn node_key(&self) -> PathBuf {
        self.0.join("node_key.json")
    }
    /// The key a governed rotation moves this validator to, staged by its operator
    /// (docs/OPERATOR.md, "Rotating the validator key").
    pub fn next_node_key(&self) -> PathBuf {
        self.0.join("node_key.next.json")
    }
    pub fn ledger(&self) -> PathBuf {
        self.0.join("data").join("ledger")
    }
    /// The aggregate index (derived from the ledger; safe to delete).
    pub fn aggregates(&self) -> PathBuf {
        self.0.join("data").join("aggregates.v1")
    }
    pub fn safety(&self) -> PathBuf {
        self.0.join("data").join("safety.bin")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_unknown_fields_refused() {
        let c = Config::new("v0", "/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into());
        let text = toml::to_string_pretty(&c).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(back.rpc.listen, "127.0.0.1:2");
        assert!(toml::from_str::<Config>(&format!("{text}\n[bogus]\nx = 1\n")).is_err());
    }

    /// A full node that does not relay would keep its clients' transactions for ever; a
    /// validator may (its proposals carry them), and older files without the key relay.
    #[test]
    fn a_full_node_that_does_not_relay_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let mut c = Config::new("v0", "/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into());
        c.p2p.relay_transactions = false;
        c.save(&path).unwrap();
        assert!(Config::load(&path).is_ok(), "a validator proposes what it keeps");
        c.node.validator = false;
        c.save(&path).unwrap();
        let e = format!("{:#}", Config::load(&path).unwrap_err());
        assert!(e.contains("relay_transactions"), "{e}");
        let text = "[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\n[rpc]\nlisten = \"127.0.0.1:2\"\n";
        assert!(toml::from_str::<Config>(text).unwrap().p2p.relay_transactions);
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(tcp_multiaddr("10.0.0.5", 26656).unwrap(), "/ip4/10.0.0.5/tcp/26656");
        assert_eq!(tcp_multiaddr("::1", 1).unwrap(), "/ip6/::1/tcp/1");
        assert_eq!(tcp_multiaddr("node-3.example", 2).unwrap(), "/dns/node-3.example/tcp/2");
        for bad in ["", "a b", "-x.example", "x..y", "a/b"] {
            assert!(tcp_multiaddr(bad, 1).is_err(), "{bad}");
        }
        assert!(check_p2p_addr("p2p", "/ip4/10.0.0.5/tcp/26656").is_ok());
        assert!(check_p2p_addr("p2p", "/dns/x.example/tcp/1").is_ok());
        let e = check_p2p_addr("--p2p-listen", "10.0.0.5:26656").unwrap_err().to_string();
        assert!(e.contains("--p2p-listen") && e.contains("not a multiaddr"), "{e}");
        let e = check_p2p_addr("--p2p-listen", "/ip4/10.0.0.5/udp/1").unwrap_err().to_string();
        assert!(e.contains("no TCP port"), "{e}");
    }

    #[test]
    fn an_advertised_address_is_optional_and_kept() {
        let text = "[p2p]\nlisten = \"/ip4/0.0.0.0/tcp/1\"\n[rpc]\nlisten = \"127.0.0.1:2\"\n";
        let c: Config = toml::from_str(text).unwrap();
        assert!(c.p2p.advertise.is_none());
        let mut c = c;
        c.p2p.advertise = Some("/ip4/203.0.113.7/tcp/1".into());
        let back: Config = toml::from_str(&toml::to_string_pretty(&c).unwrap()).unwrap();
        assert_eq!(back.p2p.advertise.as_deref(), Some("/ip4/203.0.113.7/tcp/1"));
    }

    #[test]
    fn an_rpc_section_without_the_connection_limits_gets_the_defaults() {
        let text = "[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\n[rpc]\nlisten = \"127.0.0.1:2\"\n";
        let c: Config = toml::from_str(text).unwrap();
        assert_eq!(c.rpc.header_read_timeout_ms, d_header_timeout());
        assert_eq!(c.rpc.idle_timeout_ms, d_idle_timeout());
        assert_eq!(c.rpc.per_ip_max_connections, d_ip_conns());
        assert_eq!(c.rpc.max_connections, d_max_conns());
        assert_eq!(c.rpc.subscriber_buffer_bytes, d_sub_buffer());
    }

    #[test]
    fn storage_settings_reach_the_store_and_are_checked() {
        let base = "[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\n[rpc]\nlisten = \"127.0.0.1:2\"\n";
        // Absent: the ledger's defaults.
        let c: Config = toml::from_str(base).unwrap();
        let d = StoreConfig::default();
        let got = c.storage.store_config().unwrap();
        assert_eq!(
            (got.block_cache_bytes, got.node_cache_nodes, got.node_cache_bytes),
            (d.block_cache_bytes, d.node_cache_nodes, d.node_cache_bytes)
        );
        assert_eq!(got.state_cache_bytes, d.state_cache_bytes);
        assert!(got.sync_writes, "a node always syncs its commits");
        // Given, in MiB.
        let text = format!(
            "{base}[storage]\nretain_versions = 100\nblock_cache_mib = 256\nnode_cache_nodes = 0\nnode_cache_mib = 0\nstate_cache_mib = 8\n"
        );
        let got = toml::from_str::<Config>(&text).unwrap().storage.store_config().unwrap();
        assert_eq!(got.retain_versions, Some(100));
        assert_eq!(got.block_cache_bytes, 256 << 20);
        assert_eq!((got.node_cache_nodes, got.node_cache_bytes), (0, 0));
        assert_eq!(got.state_cache_bytes, 8 << 20);
        // Out of range, or overflowing the conversion: a clear error naming the section.
        for (setting, value) in [
            ("block_cache_mib", "0".to_owned()),
            // 2^50 MiB fits the file's integers, not usize bytes.
            ("block_cache_mib", (1u64 << 50).to_string()),
            ("node_cache_mib", (1u64 << 50).to_string()),
            ("state_cache_mib", (1u64 << 50).to_string()),
            ("node_cache_nodes", "1000000000000".to_owned()),
            ("retain_versions", "0".to_owned()),
        ] {
            let text = format!("{base}[storage]\n{setting} = {value}\n");
            let c: Config = toml::from_str(&text).unwrap();
            let e = c.storage.store_config().unwrap_err().to_string();
            assert!(e.contains("storage") && e.contains(setting.trim_end_matches("_mib")), "{e}");
        }
    }
}
