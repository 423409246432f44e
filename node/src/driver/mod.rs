//! The consensus driver: the one task that owns the consensus core, the mempool and the write
//! side of the ledger.
//!
//! It feeds the core its inputs (network messages, timer firings, answers to value requests)
//! and carries out its outputs **in order**: a `PersistSafety` is written and fsynced before any
//! later `Broadcast` leaves, so a restarted validator never signs a conflicting message. A
//! decided block is executed by `dpx-app` (through `dpx-contracts` on an overlay) and committed
//! through `dpx-ledger` as one atomic batch, then the next height starts. What makes a block
//! valid is `dpx_app::validate`; the driver decides when to ask.
//!
//! Liveness: each node re-broadcasts its own messages of the current round every
//! `rebroadcast` period while the height is not decided, and announces its tip every second; a
//! peer that learns it is behind fetches blocks by sync.
//!
//! Modules by concern: `blocks` (which proposal blocks are kept), `compact` (proposal blocks
//! sent as transaction hashes and rebuilt from the mempool), `sync` (block sync and
//! whom to trust for it), `propose` (building, validating and keeping our own proposal's
//! block), `speculate` (executing a valid proposal while it is voted on), `commit` (committing a
//! decided block, with the speculation's result when it was for that block), `admit` (the
//! mempool's inputs).

mod admit;
mod blocks;
mod commit;
pub mod compact;
mod propose;
mod speculate;
mod sync;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_app::admit::{CheckedTx, Refusal};
use dpx_app::execute::{params, validator_set};
use dpx_app::validate::BlockRules;
use dpx_consensus::{
    Certificate, Consensus, Height, Input, Output, Round, SignedMessage, Step, ValidatorSet,
};
use dpx_crypto::{Hash, Keypair, PublicKey};
use dpx_ledger::{Header, Store};
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::mempool::Mempool;
use crate::node::Shared;
use crate::p2p::{Command, Inbound};
use crate::safety::SafetyFile;
use crate::wire::{self, NetMessage, net_message::Kind};
use blocks::BlockCache;
use propose::ProposalFile;
use speculate::Speculator;
use sync::SyncPeers;

/// Requests to the driver from the RPC and the admission workers.
#[derive(Debug)]
pub enum DriverMsg {
    /// Transactions that passed the stateless checks (signatures verified). `reply` gets one
    /// result per transaction. `from_peer` transactions are not relayed again.
    Admit { txs: Vec<CheckedTx>, from_peer: bool, reply: Option<oneshot::Sender<Vec<AdmitResult>>> },
    /// Whether the transaction `hash` is in this node's mempool (`GET /v1/txs/{hash}`).
    Pending { hash: Hash, reply: oneshot::Sender<bool> },
}

/// Admission outcome of one transaction.
pub type AdmitResult = Result<crate::mempool::Admitted, Refusal>;

/// Timing and pipelining knobs, from the config.
#[derive(Debug, Clone, Copy)]
pub struct DriverTiming {
    pub idle_block_interval: Duration,
    pub min_block_interval: Duration,
    /// Execute valid proposals before they are decided (see `speculate`).
    pub speculative_execution: bool,
    /// Send our proposals' blocks as transaction hashes (see `compact`).
    pub compact_proposals: bool,
    pub rebroadcast: Duration,
    /// A proposal's time may be at most this far ahead of our clock.
    pub max_clock_drift: Duration,
}

pub struct Driver {
    shared: Arc<Shared>,
    store: Arc<Store>,
    core: Consensus,
    /// The key the core signs with (it follows the core's after a rotation).
    key: Option<Keypair>,
    /// A staged rotation's key, until the core takes it over.
    next_key: Option<Keypair>,
    safety: SafetyFile,
    mempool: Mempool,
    net: mpsc::Sender<Command>,
    timing: DriverTiming,
    /// The set validating the current height.
    validators: ValidatorSet,
    /// Validator keys the p2p layer lets in (`membership::permitted_keys` at the last commit).
    permitted: BTreeSet<PublicKey>,
    /// Certificate of the tip block (goes into the next block as `last_certificate`).
    last_cert: Option<Certificate>,
    timers: BTreeMap<(Instant, u64), (Height, Round, Step)>,
    timer_seq: u64,
    /// Proposal blocks: named by a verified proposal, or pending one (see `blocks`).
    blocks: BlockCache,
    /// Compact blocks still missing transactions (see `compact`).
    partials: compact::Partials,
    /// Transactions just admitted that partials were missing, for `on_request` to place.
    arrived: Vec<(Hash, Arc<Vec<u8>>)>,
    /// Our last proposal's block on disk, so a restart can send it again.
    proposal_file: ProposalFile,
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
    /// Peers' claimed tips and the sync request in flight (see `sync`).
    sync: SyncPeers,
    /// The valid proposal being executed before its decision (see `speculate`).
    speculator: Speculator,
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
        let validators = validator_set(&store, tip + 1)?;
        let permitted = crate::membership::permitted_keys(&store)?;
        let last_cert = match store.certificate(tip)? {
            Some(b) if tip > 0 => Some(Certificate::decode(&b).context("stored certificate")?),
            _ => None,
        };
        // After a restart in the height we last proposed in, our proposal's block is on disk.
        let block_bytes_max = params(&store)?.encoded_max();
        let mut proposal_file = ProposalFile::new(&safety, block_bytes_max);
        let mut blocks = BlockCache::new();
        if let Some((p, cb)) = proposal_file.load(persisted.as_ref(), tip + 1, block_bytes_max) {
            info!(height = tip + 1, round = p.proposal.round.0, "our proposal's block is back");
            blocks.insert_own(p.proposal.value_id, cb, p.proposal.round, &[]);
        }
        let core =
            Consensus::new(shared.chain_id.clone(), key.clone(), consensus_config, persisted);
        let speculator = Speculator::new(
            timing.speculative_execution,
            Arc::clone(&store),
            Arc::clone(&shared.checker),
        );
        Ok(Self {
            store,
            core,
            key,
            next_key: None,
            safety,
            mempool,
            net,
            timing,
            validators,
            permitted,
            last_cert,
            timers: BTreeMap::new(),
            timer_seq: 0,
            blocks,
            partials: compact::Partials::default(),
            arrived: Vec::new(),
            proposal_file,
            awaiting_block: Vec::new(),
            pending_decision: None,
            pending_propose: None,
            height_started: false,
            last_commit: Instant::now(),
            own_msgs: Vec::new(),
            last_rebroadcast: Instant::now(),
            sync: SyncPeers::new(),
            speculator,
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
                Some(msg) = inbound.recv() => {
                    self.on_inbound(msg)?;
                    if self.fetch_due() {
                        // A compact block lacks transactions: those relayed to us may be
                        // queued for admission; admit what is queued now (a bounded number),
                        // then ask the sender only for the rest.
                        for _ in 0..requests.len() {
                            let Ok(req) = requests.try_recv() else { break };
                            self.on_request(req)?;
                        }
                        self.send_fetches();
                    }
                }
                Some(req) = requests.recv() => self.on_request(req)?,
                _ = status_tick.tick() => self.announce(),
                _ = tick.tick() => self.on_tick()?,
            }
        }
        info!("consensus driver stopped");
        Ok(())
    }

    /// What `dpx-app` judges a block by besides the store: the genesis time and this node's
    /// stateless checks (with its cache of verified signatures).
    fn block_rules(&self) -> BlockRules<'_> {
        BlockRules { genesis_time_ms: self.shared.genesis_time_ms, checker: &self.shared.checker }
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
        if let Some(next) = &self.next_key
            && self.core.signer_key() == Some(next.public())
        {
            info!(height = height.0, key = %next.public(), "this validator signs with its rotated-in key from this height on");
            self.key = self.next_key.take();
            self.publish_status();
        }
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
            Inbound::Disconnected(p) => {
                debug!(peer = %p, "peer disconnected");
                self.sync.forget(&p);
            }
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
            Some(Kind::Block(pb)) => self.on_block(from, pb.block, pb.parent_certificate)?,
            Some(Kind::Compact(c)) => self.on_compact(from, c)?,
            Some(Kind::TxFetch(f)) => self.on_tx_fetch(from, &f)?,
            Some(Kind::TxFill(f)) => self.on_tx_fill(from, f)?,
            Some(Kind::Txs(batch)) => self.admit_from_peer(from, batch.txs),
            Some(Kind::Status(st)) => {
                // A claim, not a fact: see `sync`.
                self.sync.on_status(from, st.height);
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

    fn on_request(&mut self, req: DriverMsg) -> anyhow::Result<()> {
        match req {
            DriverMsg::Admit { txs, from_peer, reply } => {
                let results = self.admit(txs, from_peer);
                if let Some(reply) = reply {
                    let _ = reply.send(results);
                }
                // Compact blocks that waited for these transactions go on.
                let arrived = std::mem::take(&mut self.arrived);
                self.fill_partials(&arrived)?;
            }
            DriverMsg::Pending { hash, reply } => {
                let _ = reply.send(self.mempool.contains(&hash));
            }
        }
        Ok(())
    }

    // ----- outputs ------------------------------------------------------------------------

    fn execute(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
        for out in outputs {
            match out {
                Output::PersistSafety(state) => {
                    // A new proposal's block first, so a restart can send it again.
                    self.persist_proposal_block(&state);
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
                    // The core verified a proposal from the round's proposer naming this
                    // value: its block is now worth keeping.
                    let protect = self.protected_values();
                    self.blocks.want(value_id, height.0, round, &protect);
                    self.validate(height, round, value_id)?;
                }
                Output::Decide { height, value_id, certificate } => {
                    if self.blocks.contains(&value_id) {
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
        let Some(cb) = self.blocks.get(&p.proposal.value_id) else { return };
        let kind = if self.timing.compact_proposals {
            Kind::Compact(wire::CompactBlock { round: p.proposal.round.0, ..cb.compact().clone() })
        } else {
            Kind::Block(wire::ProposalBlock {
                height: p.proposal.height.0,
                round: p.proposal.round.0,
                block: cb.bytes().to_vec(),
                parent_certificate: cb.parent_cert.as_ref().clone(),
            })
        };
        self.send(Command::Broadcast(NetMessage { kind: Some(kind) }));
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
        // Also times out a sync request that was never answered.
        self.maybe_sync();
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
        st.mempool_waiting_since = self.mempool.admitted_at_rank(crate::mempool::SHED_RANK);
        st.round = self.core.view().map_or(0, |v| v.round.0);
        st.signing_key = self.key.as_ref().map(Keypair::public);
    }

    /// Stage the key a governed rotation moves this validator to (`node_key.next.json`): the
    /// core signs with it from the first height whose set holds it, and with the current key
    /// until then (never both for one height; see `Consensus::stage_next_signer`).
    pub fn stage_next_key(&mut self, next: Keypair) {
        self.core.stage_next_signer(next.clone());
        self.next_key = Some(next);
    }

    fn update_mempool_metrics(&self) {
        self.shared.metrics.mempool_txs.set(self.mempool.len() as i64);
        self.shared.metrics.mempool_bytes.set(self.mempool.bytes() as i64);
        let mut st = self.shared.status.write();
        st.mempool_txs = self.mempool.len();
        st.mempool_waiting_since = self.mempool.admitted_at_rank(crate::mempool::SHED_RANK);
    }
}

/// Milliseconds since the Unix epoch (block times; checked by validators within a bound).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
