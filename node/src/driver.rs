//! The consensus driver: the one task that owns the consensus core, the mempool and the write
//! side of the ledger.
//!
//! It feeds the core its inputs (network messages, timer firings, answers to value requests)
//! and carries out its outputs **in order**: a `PersistSafety` is written and fsynced before any
//! later `Broadcast` leaves, so a restarted validator never signs a conflicting message. A
//! decided block is executed through `dpx-contracts` on an overlay and committed through
//! `dpx-ledger` as one atomic batch, then the next height starts.
//!
//! Liveness without gossip forwarding: each node re-broadcasts its own messages of the current
//! round every `rebroadcast` period while the height is not decided, and announces its tip
//! every second; a peer that learns it is behind fetches blocks by sync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_consensus::{
    Certificate, Consensus, Height, Input, Output, Round, SignedMessage, Step, ValidatorSet,
};
use dpx_crypto::{Hash, Keypair};
use dpx_ledger::{Block, Header, Store};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::app::{self, CheckedTx};
use crate::mempool::{Mempool, PoolTx};
use crate::node::Shared;
use crate::p2p::{Command, Inbound};
use crate::safety::SafetyFile;
use crate::wire::{self, NetMessage, net_message::Kind};

/// Requests to the driver from the RPC and the admission workers.
#[derive(Debug)]
pub enum DriverMsg {
    /// Transactions that passed the stateless checks (signatures verified). `reply` gets one
    /// result per transaction. `from_peer` transactions are not relayed again.
    Admit { txs: Vec<CheckedTx>, from_peer: bool, reply: Option<oneshot::Sender<Vec<AdmitResult>>> },
}

/// Admission outcome of one transaction.
pub type AdmitResult = Result<Hash, String>;

/// Timing knobs, from the config.
#[derive(Debug, Clone, Copy)]
pub struct DriverTiming {
    pub idle_block_interval: Duration,
    pub min_block_interval: Duration,
    pub rebroadcast: Duration,
    /// A proposal's time may be at most this far ahead of our clock.
    pub max_clock_drift: Duration,
}

/// Blocks we hold for proposals of the current (or next) height, by block id.
const BLOCK_CACHE_MAX: usize = 64;
/// Blocks asked for per sync request.
const SYNC_BATCH: u32 = 32;

struct CachedBlock {
    block: Block,
    bytes: Arc<Vec<u8>>,
    /// The parent's certificate that the header names (travels with the block).
    parent_cert: Arc<Vec<u8>>,
}

pub struct Driver {
    shared: Arc<Shared>,
    store: Arc<Store>,
    core: Consensus,
    key: Option<Keypair>,
    safety: SafetyFile,
    mempool: Mempool,
    net: mpsc::Sender<Command>,
    timing: DriverTiming,
    /// The set validating the current height.
    validators: ValidatorSet,
    /// Certificate of the tip block (goes into the next block as `last_certificate`).
    last_cert: Option<Certificate>,
    timers: BTreeMap<(Instant, u64), (Height, Round, Step)>,
    timer_seq: u64,
    blocks: BTreeMap<Hash, CachedBlock>,
    /// Validations the core asked for whose block has not arrived yet.
    awaiting_block: Vec<(Height, Round, Hash)>,
    /// A decision whose block we do not have yet.
    pending_decision: Option<(Height, Hash, Certificate)>,
    /// The core asked us for a value; we propose once transactions wait or the idle interval ends.
    pending_propose: Option<(Height, Round)>,
    /// The next height waits to start until there is work (or the idle interval ends).
    height_started: bool,
    last_commit: Instant,
    /// Our own signed messages of the current height, re-broadcast for liveness.
    own_msgs: Vec<SignedMessage>,
    last_rebroadcast: Instant,
    sync_inflight: Option<Instant>,
    best_peer: Option<(PeerId, u64)>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("tip", &self.store.tip_height())
            .field("mempool", &self.mempool.len())
            .field("height_started", &self.height_started)
            .finish_non_exhaustive()
    }
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        key: Option<Keypair>,
        safety: SafetyFile,
        persisted: Option<dpx_consensus::SafetyState>,
        mempool: Mempool,
        net: mpsc::Sender<Command>,
        timing: DriverTiming,
        consensus_config: dpx_consensus::ConsensusConfig,
    ) -> anyhow::Result<Self> {
        let store = shared.store.clone();
        let tip = store.tip_height();
        let validators = app::validator_set(&store, tip + 1)?;
        let last_cert = match store.certificate(tip)? {
            Some(b) if tip > 0 => Some(Certificate::decode(&b).context("stored certificate")?),
            _ => None,
        };
        let core =
            Consensus::new(shared.chain_id.clone(), key.clone(), consensus_config, persisted);
        Ok(Self {
            store,
            core,
            key,
            safety,
            mempool,
            net,
            timing,
            validators,
            last_cert,
            timers: BTreeMap::new(),
            timer_seq: 0,
            blocks: BTreeMap::new(),
            awaiting_block: Vec::new(),
            pending_decision: None,
            pending_propose: None,
            height_started: false,
            last_commit: Instant::now(),
            own_msgs: Vec::new(),
            last_rebroadcast: Instant::now(),
            sync_inflight: None,
            best_peer: None,
            shared,
        })
    }

    /// Run until `shutdown` fires or the inputs close.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut requests: mpsc::Receiver<DriverMsg>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        self.publish_status();
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut status_tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let next_timer = self.timers.keys().next().map(|(t, _)| *t);
            let sleep = async {
                match next_timer {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                () = sleep => self.fire_timers()?,
                Some(msg) = inbound.recv() => self.on_inbound(msg)?,
                Some(req) = requests.recv() => self.on_request(req),
                _ = status_tick.tick() => self.announce(),
                _ = tick.tick() => self.on_tick()?,
            }
        }
        info!("consensus driver stopped");
        Ok(())
    }

    fn height(&self) -> u64 {
        self.store.tip_height() + 1
    }

    // ----- inputs -------------------------------------------------------------------------

    fn on_tick(&mut self) -> anyhow::Result<()> {
        if !self.height_started && self.should_start_height() {
            self.start_height()?;
        }
        if let Some((h, r)) = self.pending_propose
            && self.ready_to_propose()
        {
            self.pending_propose = None;
            self.propose(h, r)?;
        }
        if self.height_started && self.last_rebroadcast.elapsed() >= self.timing.rebroadcast {
            self.rebroadcast();
        }
        Ok(())
    }

    fn should_start_height(&self) -> bool {
        let since = self.last_commit.elapsed();
        since >= self.timing.min_block_interval
            && (!self.mempool.is_empty() || since >= self.timing.idle_block_interval)
    }

    fn ready_to_propose(&self) -> bool {
        !self.mempool.is_empty() || self.last_commit.elapsed() >= self.timing.idle_block_interval
    }

    fn start_height(&mut self) -> anyhow::Result<()> {
        self.height_started = true;
        self.own_msgs.clear();
        let height = Height(self.height());
        debug!(height = height.0, "starting height");
        let out = self
            .core
            .handle(Input::StartHeight { height, validators: self.validators.clone() })
            .context("starting height")?;
        self.execute(out)
    }

    fn fire_timers(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        let due: Vec<_> = self.timers.range(..=(now, u64::MAX)).map(|(k, v)| (*k, *v)).collect();
        for (k, (height, round, step)) in due {
            self.timers.remove(&k);
            let out = self.core.handle(Input::TimeoutFired { height, round, step })?;
            self.execute(out)?;
        }
        Ok(())
    }

    fn on_inbound(&mut self, msg: Inbound) -> anyhow::Result<()> {
        match msg {
            Inbound::Message { from, msg } => self.on_net(from, msg)?,
            Inbound::Synced { from, resp } => self.on_synced(from, resp)?,
            Inbound::Connected(p) => debug!(peer = %p, "peer connected"),
            Inbound::Disconnected(p) => debug!(peer = %p, "peer disconnected"),
        }
        Ok(())
    }

    fn on_net(&mut self, from: PeerId, msg: NetMessage) -> anyhow::Result<()> {
        match msg.kind {
            Some(Kind::Consensus(bytes)) => match SignedMessage::decode(&bytes) {
                Ok(m) => self.on_consensus(m, Some(bytes))?,
                Err(e) => {
                    self.shared.metrics.consensus_rejected.inc();
                    debug!(peer = %from, error = %e, "undecodable consensus message");
                }
            },
            Some(Kind::Block(pb)) => self.on_block(&pb.block, pb.parent_certificate)?,
            Some(Kind::Txs(batch)) => self.admit_from_peer(from, batch.txs),
            Some(Kind::Status(st)) => {
                if st.height > self.store.tip_height()
                    && self.best_peer.is_none_or(|(_, h)| st.height >= h)
                {
                    self.best_peer = Some((from, st.height));
                }
                self.maybe_sync();
            }
            // Sync requests are answered by the network task; nothing else is expected here.
            Some(Kind::SyncRequest(_)) | None => {}
        }
        Ok(())
    }

    /// A consensus message from a peer (`relay` holds its bytes) or our own (`None`).
    ///
    /// A peer's message that is new to us and accepted is relayed to every peer: the paper's
    /// gossip assumption. Without it an equivocator that talks to some validators only can keep
    /// the others from ever seeing the votes they need; peers drop what they already know.
    fn on_consensus(&mut self, m: SignedMessage, relay: Option<Vec<u8>>) -> anyhow::Result<()> {
        if m.height().0 == self.height() && !self.height_started {
            // Others started this height: join them.
            self.start_height()?;
        }
        let fresh = relay.is_some() && m.height().0 == self.height() && !self.core.knows(&m);
        let input = match m {
            SignedMessage::Proposal(p) => Input::Proposal(p),
            SignedMessage::Vote(v) => Input::Vote(v),
        };
        match self.core.handle(input) {
            Ok(out) => {
                if fresh && let Some(bytes) = relay {
                    self.send(Command::Broadcast(NetMessage {
                        kind: Some(Kind::Consensus(bytes)),
                    }));
                }
                self.execute(out)
            }
            Err(e) => {
                self.shared.metrics.consensus_rejected.inc();
                debug!(error = %e, "consensus message refused");
                Ok(())
            }
        }
    }

    fn on_block(&mut self, bytes: &[u8], parent_cert: Vec<u8>) -> anyhow::Result<()> {
        // The chain's current limits (governance can change them).
        let limit = app::params(&self.store)?.encoded_max();
        let Ok(block) = Block::decode(bytes, limit) else {
            debug!("undecodable proposal block");
            return Ok(());
        };
        let h = block.header.height;
        if h < self.height() || h > self.height() + 1 {
            return Ok(());
        }
        let id = block.id();
        if self.blocks.len() >= BLOCK_CACHE_MAX {
            // Drop the oldest heights first; current-height proposals are few.
            let current = self.height();
            self.blocks.retain(|_, b| b.block.header.height >= current);
            if self.blocks.len() >= BLOCK_CACHE_MAX {
                return Ok(());
            }
        }
        self.blocks.insert(
            id,
            CachedBlock {
                block,
                bytes: Arc::new(bytes.to_vec()),
                parent_cert: Arc::new(parent_cert),
            },
        );
        // Answer validations that waited for this block.
        let waiting: Vec<_> = self.awaiting_block.iter().filter(|w| w.2 == id).copied().collect();
        self.awaiting_block.retain(|w| w.2 != id);
        for (height, round, value_id) in waiting {
            self.validate(height, round, value_id)?;
        }
        if let Some((height, value_id, _)) = &self.pending_decision
            && *value_id == id
            && height.0 == h
        {
            let (_, _, cert) = self.pending_decision.take().expect("checked above");
            self.commit(id, &cert)?;
        }
        Ok(())
    }

    fn on_request(&mut self, req: DriverMsg) {
        match req {
            DriverMsg::Admit { txs, from_peer, reply } => {
                let results = self.admit(txs, from_peer);
                if let Some(reply) = reply {
                    let _ = reply.send(results);
                }
            }
        }
    }

    fn admit(&mut self, txs: Vec<CheckedTx>, from_peer: bool) -> Vec<AdmitResult> {
        let height = self.height();
        let mut relay = Vec::new();
        let results = txs
            .into_iter()
            .map(|tx| {
                let hash = tx.hash;
                if self.mempool.contains(&hash) {
                    return Ok(hash); // idempotent resubmission
                }
                if let Ok(Some(_)) = self.store.receipt(&hash) {
                    return Err(format!("transaction {hash} is already committed"));
                }
                if let Some(verified) = &tx.tx {
                    let pool = &self.mempool;
                    app::check_stateful(&self.store, verified, height, |k, a, b| {
                        pool.has_nonces(k, a, b)
                    })?;
                }
                let bytes = tx.bytes.clone();
                self.mempool
                    .insert(PoolTx {
                        hash,
                        bytes: tx.bytes,
                        signer: tx.signer,
                        nonce: tx.nonce,
                        expiry_height: tx.expiry_height,
                        admitted: Instant::now(),
                    })
                    .map_err(|e| e.to_string())?;
                relay.push(bytes.as_ref().clone());
                Ok(hash)
            })
            .collect::<Vec<_>>();
        self.update_mempool_metrics();
        if !from_peer && !relay.is_empty() {
            self.send(Command::Broadcast(NetMessage {
                kind: Some(Kind::Txs(wire::TxBatch { txs: relay })),
            }));
        }
        results
    }

    /// Transactions relayed by a peer: bounded, verified off this task and admitted by
    /// `relay` (a cap on concurrent verification, chunked checks, a penalty for bad peers).
    fn admit_from_peer(&self, from: PeerId, txs: Vec<Vec<u8>>) {
        crate::relay::admit_from_peer(&self.shared, from, txs);
    }

    // ----- outputs ------------------------------------------------------------------------

    fn execute(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
        for out in outputs {
            match out {
                Output::PersistSafety(state) => {
                    // Persist before you speak: this returns only once the state is on disk.
                    tokio::task::block_in_place(|| self.safety.store(&state.encode()))
                        .context("persisting the consensus safety state")?;
                }
                Output::Broadcast(msg) => self.broadcast(msg)?,
                Output::ScheduleTimeout { height, round, step, duration_ms } => {
                    self.timer_seq += 1;
                    let at = Instant::now() + Duration::from_millis(duration_ms);
                    self.timers.insert((at, self.timer_seq), (height, round, step));
                }
                Output::RequestValue { height, round } => {
                    if self.ready_to_propose() {
                        self.propose(height, round)?;
                    } else {
                        self.pending_propose = Some((height, round));
                    }
                }
                Output::ValidateValue { height, round, value_id } => {
                    self.validate(height, round, value_id)?;
                }
                Output::Decide { height, value_id, certificate } => {
                    if self.blocks.contains_key(&value_id) {
                        self.commit(value_id, &certificate)?;
                    } else {
                        warn!(height = height.0, "decided a block we do not have; fetching it");
                        self.pending_decision = Some((height, value_id, certificate));
                        self.maybe_sync();
                    }
                }
                Output::Evidence(ev) => {
                    warn!(?ev, "evidence of validator misbehaviour");
                    self.shared.record_evidence(ev.encode());
                }
            }
        }
        Ok(())
    }

    fn broadcast(&mut self, msg: SignedMessage) -> anyhow::Result<()> {
        if let SignedMessage::Proposal(p) = &msg {
            // The block travels with the proposal.
            self.send_block(p);
        }
        self.send(Command::Broadcast(NetMessage { kind: Some(Kind::Consensus(msg.encode())) }));
        self.own_msgs.push(msg);
        if let SignedMessage::Proposal(p) = &msg {
            self.shared.metrics.round.set(i64::from(p.proposal.round.0));
        }
        // Our own messages come back to the core through the same path as everyone else's.
        self.on_consensus(msg, None)
    }

    fn rebroadcast(&mut self) {
        self.last_rebroadcast = Instant::now();
        let Some(view) = self.core.view() else { return };
        if view.decision.is_some() {
            return;
        }
        let msgs: Vec<SignedMessage> =
            self.own_msgs.iter().filter(|m| m.round() == view.round).copied().collect();
        for m in msgs {
            if let SignedMessage::Proposal(p) = &m {
                self.send_block(p);
            }
            self.send(Command::Broadcast(NetMessage { kind: Some(Kind::Consensus(m.encode())) }));
        }
    }

    fn send_block(&self, p: &dpx_consensus::SignedProposal) {
        if let Some(cb) = self.blocks.get(&p.proposal.value_id) {
            self.send(Command::Broadcast(NetMessage {
                kind: Some(Kind::Block(wire::ProposalBlock {
                    height: p.proposal.height.0,
                    round: p.proposal.round.0,
                    block: cb.bytes.as_ref().clone(),
                    parent_certificate: cb.parent_cert.as_ref().clone(),
                })),
            }));
        }
    }

    fn send(&self, cmd: Command) {
        if self.net.try_send(cmd).is_err() {
            self.shared.metrics.p2p_dropped.inc();
        }
    }

    fn announce(&mut self) {
        let tip = self.store.tip_height();
        let tip_id = self.shared.status.read().tip_id;
        let round = self.core.view().map_or(0, |v| v.round.0);
        self.send(Command::Broadcast(NetMessage {
            kind: Some(Kind::Status(wire::Status {
                height: tip,
                tip_id: tip_id.as_bytes().to_vec(),
                round,
            })),
        }));
        if let Some(at) = self.sync_inflight
            && at.elapsed() > Duration::from_secs(5)
        {
            self.sync_inflight = None;
        }
        self.maybe_sync();
    }

    // ----- proposing and validating ---------------------------------------------------------

    fn propose(&mut self, height: Height, round: Round) -> anyhow::Result<()> {
        let Some(key) = &self.key else { return Ok(()) };
        let params = app::params(&self.store)?;
        let txs: Vec<Vec<u8>> = self
            .mempool
            .reap(params.max_block_bytes, params.max_block_txs)
            .into_iter()
            .map(|t| t.bytes.as_ref().clone())
            .collect();
        let tip = self.store.tip_height();
        let parent = self.store.header(tip)?;
        let parent_time = parent.as_ref().map_or(self.shared.genesis_time_ms, |h| h.time_ms);
        let time_ms = now_ms().max(parent_time + 1);
        let parent_cert = self.last_cert.as_ref().map(Certificate::encode).unwrap_or_default();
        let header = Header {
            chain_id: self.shared.chain_id.clone(),
            height: height.0,
            time_ms,
            proposer: key.public(),
            parent_id: parent.as_ref().map_or(Hash::ZERO, Header::id),
            parent_certificate_hash: if parent_cert.is_empty() {
                Hash::ZERO
            } else {
                Hash::digest(&parent_cert)
            },
            tx_root: dpx_ledger::merkle::root(&txs),
            state_root: self.store.state_root(tip)?.context("tip state root")?,
            validator_set_hash: self.validators.hash(&self.shared.chain_id),
            prev_receipts_hash: self.store.block_receipts_hash(tip)?.unwrap_or(Hash::ZERO),
        };
        let block = Block { header, txs };
        let bytes = block.encode();
        let id = block.id();
        info!(height = height.0, round = round.0, txs = block.txs.len(), id = %id.short(), "proposing");
        self.blocks.insert(
            id,
            CachedBlock { block, bytes: Arc::new(bytes), parent_cert: Arc::new(parent_cert) },
        );
        let out = self.core.handle(Input::ProposeValue { height, round, value_id: id })?;
        self.execute(out)
    }

    fn validate(&mut self, height: Height, round: Round, value_id: Hash) -> anyhow::Result<()> {
        let Some(cb) = self.blocks.get(&value_id) else {
            if self.awaiting_block.len() < BLOCK_CACHE_MAX {
                self.awaiting_block.push((height, round, value_id));
            }
            return Ok(());
        };
        let verdict = tokio::task::block_in_place(|| {
            app::validate_block(
                &self.store,
                &self.shared,
                &cb.block,
                &cb.parent_cert,
                &self.validators,
                self.timing.max_clock_drift,
                now_ms(),
            )
        });
        let valid = match verdict {
            Ok(()) => true,
            Err(reason) => {
                warn!(height = height.0, round = round.0, %reason, "invalid proposal");
                false
            }
        };
        let out = self.core.handle(Input::ValueValidity { height, round, value_id, valid })?;
        self.execute(out)
    }

    // ----- committing -------------------------------------------------------------------

    fn commit(&mut self, id: Hash, cert: &Certificate) -> anyhow::Result<()> {
        let cb = self.blocks.remove(&id).context("decided block vanished from the cache")?;
        self.apply_block(cb.block, cert, &cb.parent_cert)?;
        Ok(())
    }

    /// Execute and commit a block whose certificate is known to be valid, then move on.
    fn apply_block(
        &mut self,
        block: Block,
        cert: &Certificate,
        parent_cert: &[u8],
    ) -> anyhow::Result<()> {
        let height = block.header.height;
        let started = Instant::now();
        let receipts = tokio::task::block_in_place(|| -> anyhow::Result<_> {
            let (writes, receipts) = app::execute_block(&self.store, &self.shared.checker, &block)?;
            self.store
                .commit_block_with_parent_certificate(
                    &block,
                    &cert.encode(),
                    Some(parent_cert),
                    writes,
                    receipts.clone(),
                )
                .with_context(|| format!("committing block {height}"))?;
            Ok(receipts)
        })?;
        let since_last = self.last_commit.elapsed();
        self.last_commit = Instant::now();
        self.last_cert = Some(cert.clone());
        let m = &self.shared.metrics;
        m.height.set(height as i64);
        m.blocks_committed.inc();
        m.txs_committed.inc_by(block.txs.len() as u64);
        m.block_interval_seconds.observe(since_last.as_secs_f64());
        info!(
            height,
            txs = block.txs.len(),
            id = %block.id().short(),
            exec_ms = started.elapsed().as_millis() as u64,
            "committed"
        );
        let hashes: Vec<Hash> = block.txs.iter().map(|t| Hash::digest(t)).collect();
        let mut touched = BTreeSet::new();
        for h in &hashes {
            if let Some(p) = self.mempool.remove(h) {
                m.commit_latency_seconds.observe(p.admitted.elapsed().as_secs_f64());
                touched.insert(p.signer);
            }
        }
        // Re-check what the block can have made stale: the pooled transactions of the accounts
        // that just committed (their nonces moved), and expiry for all. A pooled transaction
        // made invalid by someone else's (a suspension, say) is not hunted down here: execution
        // refuses it with a receipt, as it must anyway.
        let next = height + 1;
        let mut evicted: Vec<(Hash, String)> =
            self.mempool.evict_expired(next).into_iter().map(|h| (h, "expired".into())).collect();
        // Opaque payloads (consensus-only chains) have no account state to re-check.
        if !self.shared.checker.is_opaque() {
            let store = &self.store;
            evicted.extend(self.mempool.recheck_accounts(&touched, |pool, t| {
                app::check_stateful_pool(store, t, next, |k, a, b| pool.has_nonces(k, a, b))
            }));
        }
        for (h, reason) in evicted {
            debug!(tx = %h.short(), %reason, "evicted from mempool");
        }
        self.update_mempool_metrics();
        // The validator set for the next height (governance changes take effect here).
        let next_set = app::validator_set(&self.store, next)?;
        if next_set.hash(&self.shared.chain_id) != self.validators.hash(&self.shared.chain_id) {
            info!(height = next, validators = next_set.len(), "validator set changes");
            self.send(Command::SetPermitted(self.shared.permitted_peers(&next_set)));
        }
        self.validators = next_set;
        self.blocks.retain(|_, b| b.block.header.height > height);
        self.awaiting_block.clear();
        self.pending_propose = None;
        self.pending_decision = None;
        self.timers.clear();
        self.height_started = false;
        self.publish_status();
        self.shared.publish_block(Arc::new(block), receipts, &hashes);
        Ok(())
    }

    // ----- block sync ------------------------------------------------------------------

    fn maybe_sync(&mut self) {
        let Some((peer, their)) = self.best_peer else { return };
        if their <= self.store.tip_height() {
            self.best_peer = None;
            return;
        }
        if self.sync_inflight.is_some() {
            return;
        }
        self.sync_inflight = Some(Instant::now());
        let from = self.store.tip_height() + 1;
        debug!(%peer, from, their, "requesting blocks");
        self.send(Command::Send(
            peer,
            NetMessage {
                kind: Some(Kind::SyncRequest(wire::SyncRequest {
                    from_height: from,
                    max_blocks: SYNC_BATCH,
                })),
            },
        ));
    }

    fn on_synced(&mut self, from: PeerId, resp: wire::SyncResponse) -> anyhow::Result<()> {
        self.sync_inflight = None;
        let mut applied = 0;
        for sb in resp.blocks.into_iter().take(SYNC_BATCH as usize) {
            let tip = self.store.tip_height();
            let verdict = app::check_synced(
                &self.store,
                &self.shared,
                &self.validators,
                &sb.block,
                &sb.certificate,
                &sb.parent_certificate,
            );
            match verdict {
                Ok((block, cert)) if block.header.height == tip + 1 => {
                    self.apply_block(block, &cert, &sb.parent_certificate)?;
                    applied += 1;
                }
                Ok(_) => {}
                Err(reason) => {
                    warn!(peer = %from, %reason, "bad block from sync; ignoring this peer's batch");
                    self.best_peer = None;
                    break;
                }
            }
        }
        if applied > 0 {
            info!(peer = %from, applied, tip = self.store.tip_height(), "synced blocks");
            self.maybe_sync();
        }
        Ok(())
    }

    // ----- status ------------------------------------------------------------------------

    fn publish_status(&self) {
        let tip = self.store.tip_height();
        let header = self.store.header(tip).ok().flatten();
        let mut st = self.shared.status.write();
        st.height = tip;
        st.tip_id = header.as_ref().map_or(Hash::ZERO, Header::id);
        st.tip_time_ms = header.as_ref().map_or(self.shared.genesis_time_ms, |h| h.time_ms);
        st.validators = self.validators.validators().iter().map(|v| (v.key, v.power)).collect();
        st.mempool_txs = self.mempool.len();
        st.round = self.core.view().map_or(0, |v| v.round.0);
    }

    fn update_mempool_metrics(&self) {
        self.shared.metrics.mempool_txs.set(self.mempool.len() as i64);
        self.shared.metrics.mempool_bytes.set(self.mempool.bytes() as i64);
        self.shared.status.write().mempool_txs = self.mempool.len();
    }
}

/// Milliseconds since the Unix epoch (block times; checked by validators within a bound).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
