//! `dpx node start`: load the home directory, open the ledger, start networking, the RPC server
//! and the consensus driver, and run until SIGTERM or SIGINT.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use dpx_app::admit::TxChecker;
use dpx_consensus::{ConsensusConfig, SafetyState, TimeoutConfig};
use dpx_crypto::{Hash, PublicKey, keyfile};
use dpx_genesis::Genesis;
use dpx_ledger::{Block, Store};
use libp2p::PeerId;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::config::{Config, Home};
use crate::driver::{Driver, DriverMsg, DriverTiming};
use crate::events::BlockEvents;
use crate::mempool::{Mempool, MempoolLimits};
use crate::metrics::Metrics;
use crate::p2p::{self, NetConfig};
use crate::relay::RelayGate;
use crate::safety::SafetyFile;

/// What the RPC shows as node status; written by the driver.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    pub height: u64,
    pub tip_id: Hash,
    pub tip_time_ms: u64,
    pub round: u32,
    pub validators: Vec<(PublicKey, u64)>,
    pub mempool_txs: usize,
    /// When the pooled transaction `mempool::SHED_RANK` places from the front was admitted
    /// (load shedding; `None` while fewer are pooled).
    pub mempool_waiting_since: Option<std::time::Instant>,
    /// The validator key the consensus core signs with now (after any rotation).
    pub signing_key: Option<PublicKey>,
}

/// Bounds the driver needs. (Blocks are decoded against the chain's current parameters,
/// `dpx_app::execute::BlockLimits::encoded_max`, read at each decode.)
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_relay_batch: usize,
}

/// Commit waiters per transaction are bounded so a client cannot pile them up.
const WAITERS_MAX: usize = 100_000;
/// Evidence kept in memory for the RPC (it is also logged).
const EVIDENCE_MAX: usize = 1024;
/// Committed-block events buffered for slow subscribers before they are told they lagged.
const EVENT_BUFFER: usize = 1024;

/// State shared between the driver, the RPC and the network task.
#[derive(Debug)]
pub struct Shared {
    pub chain_id: String,
    pub genesis_time_ms: u64,
    pub genesis: Genesis,
    pub store: Arc<Store>,
    /// Stateless transaction checks, with this node's cache of verified signatures.
    pub checker: Arc<TxChecker>,
    pub metrics: Metrics,
    pub status: RwLock<NodeStatus>,
    pub limits: Limits,
    /// Bounds and penalties for transactions relayed by peers.
    pub relay: RelayGate,
    /// Our own proposal blocks, whose transaction fetches the p2p task answers.
    pub own_blocks: Arc<crate::serve_fetch::OwnBlocks>,
    pub driver_tx: mpsc::Sender<DriverMsg>,
    pub events: broadcast::Sender<Arc<BlockEvents>>,
    /// Aggregate counts by height and time (`None` in in-process driver tests).
    pub aggregates: Option<Arc<crate::aggregates::Aggregates>>,
    event_jobs: std::sync::mpsc::SyncSender<EventJob>,
    pub config: Config,
    pub node_key: PublicKey,
    /// Configured to validate (`node.validator`): the node signs at every height whose set
    /// holds its key, and only then.
    pub validator: bool,
    /// Peers let in whatever the validator set: `p2p.allow` and the configured `p2p.peers`.
    allow: BTreeSet<PeerId>,
    evidence: Mutex<Vec<Vec<u8>>>,
    waiters: Mutex<HashMap<Hash, Vec<oneshot::Sender<u64>>>>,
}

impl Shared {
    /// Peers allowed to connect: `validators` (the set in force and the scheduled ones, see
    /// `membership::permitted_keys`) plus the allow-list and the configured peers.
    pub fn permitted_peers(&self, validators: &BTreeSet<PublicKey>) -> BTreeSet<PeerId> {
        let mut s: BTreeSet<PeerId> = validators.iter().map(p2p::peer_id).collect();
        s.extend(self.allow.iter().copied());
        s
    }

    pub fn record_evidence(&self, ev: Vec<u8>) {
        let mut e = self.evidence.lock();
        if e.len() < EVIDENCE_MAX {
            e.push(ev);
        }
    }

    pub fn evidence(&self) -> Vec<Vec<u8>> {
        self.evidence.lock().clone()
    }

    /// Resolve with the commit height once `tx` commits. `None` if too many are waiting.
    pub fn wait_commit(&self, tx: Hash) -> Option<oneshot::Receiver<u64>> {
        let mut w = self.waiters.lock();
        if w.len() >= WAITERS_MAX {
            w.retain(|_, v| {
                v.retain(|s| !s.is_closed());
                !v.is_empty()
            });
            if w.len() >= WAITERS_MAX {
                return None;
            }
        }
        let (tx_s, rx) = oneshot::channel();
        w.entry(tx).or_default().push(tx_s);
        Some(rx)
    }

    /// Tell subscribers and commit waiters about a committed block (`hashes`: of its txs).
    ///
    /// Waiters are woken here; the events (JSON of every receipt) are derived on the events
    /// thread, off the consensus driver, and only while someone subscribes. If that thread
    /// falls `EVENT_BUFFER` blocks behind, a block's events are skipped: subscribers see the
    /// gap and are told to resume from the ledger (`lagged`), so nothing is lost silently.
    pub fn publish_block(&self, block: Arc<Block>, receipts: Vec<Vec<u8>>, hashes: &[Hash]) {
        let height = block.header.height;
        if let Some(a) = &self.aggregates {
            a.notify();
        }
        {
            let mut w = self.waiters.lock();
            if !w.is_empty() {
                for h in hashes {
                    if let Some(senders) = w.remove(h) {
                        for s in senders {
                            let _ = s.send(height);
                        }
                    }
                }
            }
        }
        if self.events.receiver_count() == 0 {
            return;
        }
        if self.event_jobs.try_send((block, receipts, hashes.to_vec())).is_err() {
            warn!(height, "event derivation is behind; subscribers will be told to resume");
        }
    }
}

/// A committed block for the events thread: the block, its receipts and its transactions'
/// digests.
type EventJob = (Arc<Block>, Vec<Vec<u8>>, Vec<Hash>);

/// The events thread: derives each committed block's events and hands them to subscribers.
fn spawn_events_thread(
    jobs: std::sync::mpsc::Receiver<EventJob>,
    events: broadcast::Sender<Arc<BlockEvents>>,
    store: Arc<Store>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("dpx-events".into())
        .spawn(move || {
            for (block, receipts, hashes) in jobs {
                // No receiver is fine: the last subscriber left.
                // The latest state finds the parties to objects a transaction names by id
                // (they never change), exactly as replayed streams and block reads do.
                let st = dpx_app::LatestState::new(&store);
                let _ =
                    events.send(Arc::new(BlockEvents::with_state(&block, &receipts, &hashes, &st)));
            }
        })
        .context("starting the events thread")
}

/// What outlives a node's tasks and must be closed before the process exits: its ledger and
/// the thread that derives events (it ends when the last task holding the node's state is
/// dropped).
///
/// [`run_with`] registers both as soon as they exist; the process shuts down the runtime that
/// ran the node (which drops every task) and then calls [`Teardown::finish`], so the ledger
/// is closed on the main thread while nothing else uses it. Without this, the last reference
/// to the store could be dropped on the events thread, closing RocksDB there while the main
/// thread was already running the library's static destructors in `exit`: a clean stop then
/// aborted now and then ("terminate called without an active exception", status 134).
#[derive(Default)]
pub struct Teardown {
    held: Mutex<Option<Held>>,
}

struct Held {
    store: Arc<Store>,
    /// Threads that end once the node's tasks are gone (events) or once told (aggregates).
    threads: Vec<(&'static str, std::thread::JoinHandle<()>)>,
    aggregates: Option<Arc<crate::aggregates::Aggregates>>,
}

/// A teardown dropped without [`Teardown::finish`] (the library's [`run`], an early error)
/// still stops the aggregate index's thread, so nothing keeps the store open behind the caller.
impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(a) = self.held.get_mut().as_ref().and_then(|h| h.aggregates.as_ref()) {
            a.shut();
        }
    }
}

impl std::fmt::Debug for Teardown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Teardown").field("holding", &self.held.lock().is_some()).finish()
    }
}

impl Teardown {
    /// Stops the aggregate index, waits (at most `wait` in all) for the node's threads to end
    /// and for every other holder of the store to let go, then closes the store. Call it
    /// after the node's runtime has shut down. A store still shared after `wait` is left open
    /// with its background work stopped (every commit is already synced), and the holders are
    /// logged.
    pub fn finish(&self, wait: Duration) {
        let Some(held) = self.held.lock().take() else { return };
        if let Some(a) = &held.aggregates {
            a.shut();
        }
        let deadline = std::time::Instant::now() + wait;
        let waiting = |done: &dyn Fn() -> bool| {
            while !done() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            done()
        };
        for (name, t) in held.threads {
            if waiting(&|| t.is_finished()) {
                let _ = t.join();
            } else {
                warn!(thread = name, "a thread is still running at exit");
            }
        }
        let store = held.store;
        if waiting(&|| Arc::strong_count(&store) == 1) {
            let tip = store.tip_height();
            drop(store);
            info!(tip, "ledger closed");
        } else {
            warn!(
                holders = Arc::strong_count(&store) - 1,
                "the ledger is still in use at exit; stopping its background work instead"
            );
            store.quiesce();
        }
    }

    fn hold(&self, store: Arc<Store>, events: std::thread::JoinHandle<()>) {
        *self.held.lock() =
            Some(Held { store, threads: vec![("events", events)], aggregates: None });
    }

    fn hold_aggregates(
        &self,
        aggregates: Arc<crate::aggregates::Aggregates>,
        thread: std::thread::JoinHandle<()>,
    ) {
        if let Some(h) = self.held.lock().as_mut() {
            h.threads.push(("aggregates", thread));
            h.aggregates = Some(aggregates);
        }
    }
}

fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests) is harmless.
    if cfg.log.format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

/// Verified-signature cache entries: every pooled transaction plus the blocks in flight.
fn verified_cache_size(mempool_txs: usize) -> usize {
    mempool_txs.saturating_mul(2).clamp(10_000, 1_000_000)
}

/// Open the ledger for `genesis`, writing height 0 on first start and checking it afterwards.
pub fn open_store(home: &Home, genesis: &Genesis, cfg: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(home.ledger()).context("creating the data directory")?;
    let store = Store::open(home.ledger(), &genesis.chain_id, cfg.storage.store_config()?)
        .context("opening the ledger")?;
    // The genesis fingerprint is kept beside the ledger: a data directory started from one
    // genesis is never reused with another.
    let marker = home.ledger().with_file_name("genesis.hash");
    let fingerprint = genesis.hash().to_hex();
    if store.has_genesis() {
        let stored = std::fs::read_to_string(&marker).context("reading data/genesis.hash")?;
        if stored.trim() != fingerprint {
            bail!(
                "this data directory was initialised from a different genesis ({}, the genesis \
                 file is {fingerprint}); refusing to start",
                stored.trim()
            );
        }
    } else {
        let writes = genesis.initial_writes().context("building the genesis state")?;
        // Durably, before the genesis state: a crash in between leaves a marker and no genesis,
        // and the next start writes both again.
        crate::safety::write_durably(&marker, fingerprint.as_bytes())
            .context("writing data/genesis.hash")?;
        let root = store.genesis(writes)?;
        info!(%root, "wrote the genesis state");
    }
    Ok(store)
}

/// What the operator decides when starting a node (`dpx node start` flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Start a validator although `data/safety.bin` is missing
    /// (`--accept-missing-safety-state`). Without the file the node cannot know what its key
    /// last signed: the operator takes the double-sign risk explicitly.
    pub accept_missing_safety_state: bool,
}

/// Write the safety state of a key that has never signed: `dpx init` and `dpx testnet init`
/// do, beside the key they generate. The key and this file are one unit from then on (they
/// move together, docs/OPERATOR.md).
pub fn record_fresh_safety_state(home: &Home) -> anyhow::Result<()> {
    std::fs::create_dir_all(home.safety().parent().context("data directory")?)
        .context("creating the data directory")?;
    SafetyFile::new(home.safety())
        .store(&SafetyState::at_height(dpx_consensus::Height(1)).encode())
        .context("recording the fresh safety state")
}

/// The safety state to start from.
///
/// The file is written when the key is made (`dpx init`, `dpx testnet init`), so a missing file
/// means it was lost or left behind (a partial restore, a key copied to a new machine without
/// it), never "this key never signed" — whatever the ledger's height: a node moved to a new
/// machine starts with an empty ledger and would otherwise re-sign, at the height the network
/// is at, votes its old machine may already have sent. A node configured to validate refuses
/// to start unless the operator accepts the risk; a node that never signs only warns.
pub fn load_safety_state(
    file: &SafetyFile,
    tip: u64,
    validator: bool,
    opts: StartOptions,
) -> anyhow::Result<Option<SafetyState>> {
    if let Some(bytes) = file.load()? {
        return Ok(Some(SafetyState::decode(&bytes).context("decoding the safety state")?));
    }
    if !validator {
        warn!(
            tip,
            "data/safety.bin is missing; this node does not sign now, but starting it as a \
             validator will need --accept-missing-safety-state"
        );
        return Ok(None);
    }
    if !opts.accept_missing_safety_state {
        bail!(
            "data/safety.bin is missing (the ledger is at height {tip}): the file records what \
             this validator key last signed, and without it the node could sign a vote \
             conflicting with one the key already sent (a double-sign). Move safety.bin \
             together with node_key.json; if it is truly lost, stop this key's other copies, \
             wait until the network is past every height it may have voted at, and start once \
             with --accept-missing-safety-state (docs/OPERATOR.md)"
        );
    }
    warn!(tip, "data/safety.bin is missing; starting anyway as the operator asked");
    Ok(None)
}

/// Run a node from its home directory until SIGTERM / SIGINT.
pub async fn run(home_dir: &Path) -> anyhow::Result<()> {
    run_with(home_dir, StartOptions::default(), &Teardown::default()).await
}

/// [`run`] with the operator's start options; what must be closed before the process exits
/// is left in `teardown` (see [`Teardown`]).
pub async fn run_with(
    home_dir: &Path,
    opts: StartOptions,
    teardown: &Teardown,
) -> anyhow::Result<()> {
    let home = Home(home_dir.to_path_buf());
    let cfg = Config::load(&home.config())?;
    init_logging(&cfg);
    let genesis = Genesis::load(&home.genesis())?;
    let key = keyfile::load(&home.node_key())?;
    let next_key = {
        let path = home.next_node_key();
        if path.exists() { Some(keyfile::load(&path)?) } else { None }
    };
    let store = Arc::new(open_store(&home, &genesis, &cfg)?);
    let metrics = Metrics::new();
    metrics.height.set(store.tip_height() as i64);

    let validators = dpx_app::execute::validator_set(&store, store.tip_height() + 1)?;
    let in_set = validators.index_of(&key.public()).is_some();
    // A node configured to validate signs at every height whose set holds its key: one that
    // governance adds later starts signing at the effective height, one it removes stops.
    let validator = cfg.node.validator;
    info!(
        moniker = %cfg.node.moniker, chain = %genesis.chain_id, key = %key.public(),
        tip = store.tip_height(), validator, in_set, "starting dpx node"
    );
    if validator && !in_set {
        info!(
            "this node's key is not in the validator set of the next height; it follows the \
             chain and signs from the height governance adds it at"
        );
    }
    // Before anything starts: a validator that lost its safety state must not come up.
    let persisted = SafetyFile::new(home.safety());
    let safety_state = load_safety_state(&persisted, store.tip_height(), validator, opts)?;

    let mut allow = cfg
        .p2p
        .allow
        .iter()
        .map(|k| k.parse::<PublicKey>().map(|k| p2p::peer_id(&k)))
        .collect::<Result<BTreeSet<_>, _>>()
        .context("p2p.allow")?;
    // The peers the operator named are trusted to connect whatever the set: a node that
    // joins late syncs through them even when the genesis set has long changed.
    for p in &cfg.p2p.peers {
        allow.insert(p2p::peer_id(&p.key.parse::<PublicKey>().context("p2p.peers")?));
    }
    let (driver_tx, driver_rx) = mpsc::channel(4096);
    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (event_jobs, jobs) = std::sync::mpsc::sync_channel(EVENT_BUFFER);
    teardown.hold(store.clone(), spawn_events_thread(jobs, events.clone(), store.clone())?);
    // Derived data: a node whose index cannot be opened runs without it (and says so).
    let aggregates =
        match crate::aggregates::Aggregates::open(&home.aggregates(), &store, &genesis.hash()) {
            Ok(a) => {
                teardown.hold_aggregates(a.clone(), a.spawn(store.clone())?);
                Some(a)
            }
            Err(e) => {
                warn!("the aggregate index is unavailable: {e:#}");
                None
            }
        };
    // During a key rotation the node speaks on the network as its new key once governance has
    // scheduled it (the others let a scheduled key in, and drop the old one after its last
    // height), while the core signs with the old key until the change takes effect.
    let permitted = crate::membership::permitted_keys(&store)?;
    let net_key = match &next_key {
        Some(next) if next.public() == key.public() => {
            bail!("node_key.next.json holds the same key as node_key.json; remove it")
        }
        Some(next) if permitted.contains(&next.public()) => {
            info!(key = %next.public(), "rotation: the network sees this node as its new key");
            next.clone()
        }
        Some(next) => {
            warn!(
                key = %next.public(),
                "node_key.next.json is staged but no validator set in force or scheduled holds \
                 it: this node keeps its current key; restart once governance has scheduled the \
                 rotation"
            );
            key.clone()
        }
        None => key.clone(),
    };
    let shared = Arc::new(Shared {
        chain_id: genesis.chain_id.clone(),
        genesis_time_ms: genesis.genesis_time_ms,
        genesis: genesis.clone(),
        store: store.clone(),
        checker: Arc::new(TxChecker::new(
            &genesis.chain_id,
            genesis.consensus_only,
            verified_cache_size(cfg.mempool.max_txs),
        )),
        metrics: metrics.clone(),
        status: RwLock::new(NodeStatus::default()),
        limits: Limits { max_relay_batch: 10_000 },
        relay: RelayGate::new(cfg.p2p.max_relay_verifications, cfg.p2p.max_relay_queued),
        own_blocks: Arc::default(),
        driver_tx,
        events,
        aggregates,
        event_jobs,
        config: cfg.clone(),
        node_key: net_key.public(),
        validator,
        allow,
        evidence: Mutex::new(Vec::new()),
        waiters: Mutex::new(HashMap::new()),
    });

    // Network.
    let peers = cfg
        .p2p
        .peers
        .iter()
        .map(|p| Ok((p.key.parse::<PublicKey>()?, p.addr.parse()?)))
        .collect::<anyhow::Result<Vec<_>>>()
        .context("p2p.peers")?;
    let net_cfg = NetConfig {
        listen: cfg.p2p.listen.parse().context("p2p.listen")?,
        peers,
        max_frame_bytes: cfg.p2p.max_frame_bytes.max(p2p::FRAME_BYTES_MIN),
        peer_msgs_per_s: cfg.p2p.peer_msgs_per_s,
        peer_burst: cfg.p2p.peer_burst,
        peer_bytes_per_s: cfg.p2p.peer_bytes_per_s,
        peer_burst_bytes: cfg.p2p.peer_burst_bytes,
        request_timeout: Duration::from_secs(10),
    };
    let (inbound_tx, inbound_rx) = mpsc::channel(8192);
    let sync_store = store.clone();
    // Answers are sized to the frame every node accepts, not to our own (maybe larger) one.
    let sync_server: p2p::SyncServer =
        Arc::new(move |req| crate::serve_sync::serve_sync(&sync_store, req, p2p::FRAME_BYTES_MIN));
    let (net_tx, _local) = p2p::spawn(
        &net_key,
        net_cfg,
        shared.permitted_peers(&permitted),
        inbound_tx,
        sync_server,
        Arc::clone(&shared.own_blocks),
        metrics.clone(),
    )?;

    // RPC.
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let rpc = crate::rpc::serve(shared.clone(), shutdown_rx.clone()).await?;

    // Consensus driver.
    let c = &cfg.consensus;
    let consensus_config = ConsensusConfig {
        timeouts: TimeoutConfig {
            propose_ms: c.timeout_propose_ms,
            propose_delta_ms: c.timeout_delta_ms,
            prevote_ms: c.timeout_prevote_ms,
            prevote_delta_ms: c.timeout_delta_ms,
            precommit_ms: c.timeout_precommit_ms,
            precommit_delta_ms: c.timeout_delta_ms,
        },
        ..ConsensusConfig::default()
    };
    let timing = DriverTiming {
        idle_block_interval: Duration::from_millis(c.idle_block_interval_ms),
        min_block_interval: Duration::from_millis(c.min_block_interval_ms),
        speculative_execution: c.speculative_execution,
        compact_proposals: c.compact_proposals,
        rebroadcast: Duration::from_millis(c.timeout_propose_ms.max(500)),
        max_clock_drift: Duration::from_secs(10),
    };
    let mempool = Mempool::new(MempoolLimits {
        max_txs: cfg.mempool.max_txs,
        max_bytes: cfg.mempool.max_bytes,
        // Opaque payloads of a consensus-only chain all pool under one pseudo-account.
        max_txs_per_signer: if genesis.consensus_only {
            usize::MAX
        } else {
            cfg.mempool.max_txs_per_signer
        },
    })
    .counting_signer_refusals(metrics.mempool_signer_full.clone());
    let mut driver = Driver::new(
        shared.clone(),
        validator.then(|| key.clone()),
        persisted,
        safety_state,
        mempool,
        net_tx,
        timing,
        consensus_config,
    )?;
    if let Some(next) = next_key.filter(|_| validator) {
        driver.stage_next_key(next);
    }
    let mut driver_task = tokio::spawn(driver.run(inbound_rx, driver_rx, shutdown_rx));

    let signal = wait_for_signal();
    tokio::pin!(signal);
    let (result, driver_done) = tokio::select! {
        s = &mut signal => { info!(signal = s, "shutting down"); (Ok(()), false) }
        r = &mut driver_task => (match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.context("consensus driver failed")),
            Err(e) => Err(anyhow::anyhow!("consensus driver panicked: {e}")),
        }, true),
    };
    let _ = shutdown_tx.send(true);
    // Let the driver finish its current step and the RPC drain. Everything committed is on
    // disk (each commit is one synced batch); the caller closes the ledger (`teardown`).
    if !driver_done && tokio::time::timeout(Duration::from_secs(5), driver_task).await.is_err() {
        warn!("the consensus driver did not stop within 5 s");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), rpc).await;
    info!(tip = store.tip_height(), "stopped");
    result
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        std::future::pending::<()>().await;
        return "none";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
impl Shared {
    /// A `Shared` for in-process tests of the driver: no RPC, no network, no events thread.
    pub(crate) fn for_tests(
        genesis: &Genesis,
        store: Arc<Store>,
        node_key: PublicKey,
    ) -> Arc<Self> {
        let (driver_tx, _) = mpsc::channel(16);
        let (events, _) = broadcast::channel(16);
        let (event_jobs, _) = std::sync::mpsc::sync_channel(1);
        Arc::new(Self {
            chain_id: genesis.chain_id.clone(),
            genesis_time_ms: genesis.genesis_time_ms,
            genesis: genesis.clone(),
            store,
            checker: Arc::new(TxChecker::new(&genesis.chain_id, genesis.consensus_only, 1000)),
            metrics: Metrics::new(),
            status: RwLock::new(NodeStatus::default()),
            limits: Limits { max_relay_batch: 10_000 },
            relay: RelayGate::new(2, crate::relay::QUEUED_MAX),
            own_blocks: Arc::default(),
            driver_tx,
            events,
            aggregates: None,
            event_jobs,
            config: Config::new("test", "/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into()),
            node_key,
            validator: true,
            allow: BTreeSet::new(),
            evidence: Mutex::new(Vec::new()),
            waiters: Mutex::new(HashMap::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path) -> SafetyFile {
        SafetyFile::new(dir.join("safety.bin"))
    }

    /// A validator whose safety file is gone while its ledger holds blocks (a partial restore)
    /// must not start as if it had never signed, unless the operator says so.
    #[test]
    fn missing_safety_state_with_blocks_stops_a_validator() {
        let dir = tempfile::tempdir().unwrap();
        let f = file(dir.path());
        let accept = StartOptions { accept_missing_safety_state: true };
        let err = load_safety_state(&f, 5, true, StartOptions::default()).unwrap_err();
        assert!(err.to_string().contains("--accept-missing-safety-state"), "{err}");
        assert!(load_safety_state(&f, 5, true, accept).unwrap().is_none());
        // A node that cannot sign starts (and warns).
        assert!(load_safety_state(&f, 5, false, StartOptions::default()).unwrap().is_none());
        assert!(!dir.path().join("safety.bin").exists(), "nothing invented for a lost state");
    }

    /// A key moved to a new machine without its safety file (an empty ledger, tip 0) is the
    /// same hazard as a lost file: the network may be at a height the key already voted at on
    /// its old machine. Only the init commands, which make the key, record a fresh state.
    #[test]
    fn a_key_without_its_safety_file_does_not_sign_even_on_an_empty_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home(dir.path().to_path_buf());
        let f = SafetyFile::new(home.safety());
        let err = load_safety_state(&f, 0, true, StartOptions::default()).unwrap_err();
        assert!(err.to_string().contains("--accept-missing-safety-state"), "{err}");
        assert!(!home.safety().exists(), "nothing invented for a missing state");
        // What `dpx init` writes beside a new key: a state that has signed nothing.
        record_fresh_safety_state(&home).unwrap();
        let st = load_safety_state(&f, 0, true, StartOptions::default()).unwrap().unwrap();
        assert_eq!(st, SafetyState::at_height(dpx_consensus::Height(1)));
        // A stored state is used as it is.
        let later = SafetyState::at_height(dpx_consensus::Height(9));
        f.store(&later.encode()).unwrap();
        assert_eq!(load_safety_state(&f, 8, true, StartOptions::default()).unwrap(), Some(later));
    }

    /// `data/genesis.hash` is written durably with the genesis state, and checked afterwards.
    #[test]
    fn genesis_marker_is_written_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home(dir.path().to_path_buf());
        let k = |i: u8| dpx_crypto::Keypair::from_seed([i; 32]).public();
        let genesis = Genesis::example("dpx-test", &[("Agency A", k(1))], &[k(2), k(3)]);
        let cfg = Config::new("t", "/ip4/127.0.0.1/tcp/0".into(), "127.0.0.1:0".into());
        drop(open_store(&home, &genesis, &cfg).unwrap());
        let marker = home.ledger().with_file_name("genesis.hash");
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), genesis.hash().to_hex());
        assert!(!marker.with_extension("tmp").exists());
        drop(open_store(&home, &genesis, &cfg).unwrap());
        std::fs::write(&marker, "00").unwrap();
        assert!(
            open_store(&home, &genesis, &cfg)
                .unwrap_err()
                .to_string()
                .contains("different genesis")
        );
    }
}
