//! Peer-to-peer networking on libp2p: TCP + Noise + Yamux, one request-response protocol.
//!
//! Why request-response rather than gossipsub: a validator set is a few to a few dozen known
//! machines, so every node keeps a direct connection to every other (a full mesh, as Tendermint
//! does) and a broadcast is one frame per peer with no gossip hops, heartbeats or duplicate
//! suppression to tune. Consensus liveness does not rely on forwarding: each node re-broadcasts
//! its own current-round messages on its round timers, and laggards catch up by block sync.
//!
//! Permissioned: the Noise handshake authenticates each peer's ed25519 key; a connection whose
//! key is neither in the validator set nor in the configured allow-list is closed at once and
//! logged. Inbound messages are rate limited per peer, by count and by bytes; a peer that sends a
//! malformed or oversized frame is disconnected. Block-sync answers are served by at most
//! [`SYNC_SERVING_MAX`] blocking tasks at once; requests over that are refused and counted.
//! Transaction fetches for our own proposal blocks (`serve_fetch`) are answered here too, by at
//! most [`FETCH_SERVING_MAX`] blocking tasks at once and once per peer and block per 400 ms
//! (over either the fetch gets nothing); a fetch for any other block goes to the driver.
//!
//! Frames: every node accepts at least [`FRAME_BYTES_MIN`], derived from the largest block the
//! chain parameters may allow (`dpx_contracts::MAX_ENCODED_BLOCK_BYTES`) and the largest
//! certificate, so a proposal or a sync answer always carries at least one maximal block.

pub mod codec;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identity};
use prost::Message as _;
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::serve_fetch::{Answer as FetchAnswer, FetchPace, OwnBlocks};
use crate::wire::{NetMessage, NetResponse, SyncRequest, SyncResponse, net_message, net_response};
use codec::{Frame, FrameCodec, PROTOCOL};
use dpx_crypto::{Keypair, PublicKey};

/// Room for the protobuf framing around one block and its two certificates in a frame (a
/// `NetResponse` holding a `SyncResponse` of one `SyncedBlock`, or a `ProposalBlock`): a few
/// tags and length prefixes, generously rounded.
pub const FRAME_ENVELOPE_BYTES: usize = 1024;

/// The least frame size every node accepts and the most a node sends unasked for a block: one
/// block as large as any parameters may allow, with its certificate and its parent's, and the
/// envelope. `max_frame_bytes` in the config is raised to this if set lower.
pub const FRAME_BYTES_MIN: usize = dpx_contracts::MAX_ENCODED_BLOCK_BYTES as usize
    + 2 * dpx_consensus::MAX_CERTIFICATE_BYTES
    + FRAME_ENVELOPE_BYTES;

// The default frame (16 MiB) already holds a maximal block: raising the floor never changes a
// default configuration.
const _: () = assert!(FRAME_BYTES_MIN <= 16 << 20);

/// Block-sync requests answered at once (each reads up to a frame of blocks from the store on
/// a blocking thread); more are refused and counted (`dpx_p2p_sync_refused`), and the asker
/// tries again or asks another peer.
pub const SYNC_SERVING_MAX: usize = 4;
/// Answers to transaction fetches for our own proposal blocks built at once, off this task
/// (each copies up to a block of bytes); a fetch over it gets nothing.
pub const FETCH_SERVING_MAX: usize = 4;

/// What the rest of the node asks the network to do.
#[derive(Debug)]
pub enum Command {
    /// Send to every connected, permitted peer.
    Broadcast(NetMessage),
    /// Send to one peer.
    Send(PeerId, NetMessage),
    /// Replace the set of permitted peers (validator-set change).
    SetPermitted(BTreeSet<PeerId>),
}

/// What the network hands to the rest of the node.
#[derive(Debug)]
pub enum Inbound {
    Message { from: PeerId, msg: NetMessage },
    Synced { from: PeerId, resp: SyncResponse },
    Connected(PeerId),
    Disconnected(PeerId),
}

/// Answers block-sync requests from the local store (runs on a blocking thread).
pub type SyncServer = std::sync::Arc<dyn Fn(&SyncRequest) -> SyncResponse + Send + Sync>;

/// Network settings from the node config.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub listen: Multiaddr,
    /// Peers to keep dialing, with their keys.
    pub peers: Vec<(PublicKey, Multiaddr)>,
    pub max_frame_bytes: usize,
    /// Inbound messages per second per peer (token bucket refill rate) and burst.
    pub peer_msgs_per_s: u32,
    pub peer_burst: u32,
    /// Inbound bytes per second per peer and burst (raised to `max_frame_bytes`).
    pub peer_bytes_per_s: u64,
    pub peer_burst_bytes: u64,
    pub request_timeout: Duration,
}

/// The libp2p peer id of a dpx public key.
pub fn peer_id(key: &PublicKey) -> PeerId {
    let ed = identity::ed25519::PublicKey::try_from_bytes(key.as_bytes())
        .expect("a dpx PublicKey is always a valid ed25519 point");
    identity::PublicKey::from(ed).to_peer_id()
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

// Rate limiting is node-local policy, not consensus: floats are fine here.
impl Bucket {
    fn full(burst: f64, now: Instant) -> Self {
        Self { tokens: burst, last: now }
    }

    fn take(&mut self, amount: f64, rate: f64, burst: f64, now: Instant) -> bool {
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }
}

/// Why an inbound message was refused by its peer's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OverBudget {
    Messages,
    Bytes,
}

/// A peer's inbound budget: messages and bytes, each a token bucket.
struct PeerBudget {
    msgs: Bucket,
    bytes: Bucket,
}

/// Rates and bursts of a [`PeerBudget`].
#[derive(Debug, Clone, Copy)]
struct BudgetRates {
    msgs_per_s: f64,
    msgs_burst: f64,
    bytes_per_s: f64,
    bytes_burst: f64,
}

impl BudgetRates {
    fn of(cfg: &NetConfig) -> Self {
        Self {
            msgs_per_s: f64::from(cfg.peer_msgs_per_s),
            msgs_burst: f64::from(cfg.peer_burst),
            bytes_per_s: cfg.peer_bytes_per_s as f64,
            // A rested bucket always lets one maximal frame through.
            bytes_burst: cfg.peer_burst_bytes.max(cfg.max_frame_bytes as u64) as f64,
        }
    }
}

impl PeerBudget {
    fn new(r: BudgetRates, now: Instant) -> Self {
        Self { msgs: Bucket::full(r.msgs_burst, now), bytes: Bucket::full(r.bytes_burst, now) }
    }

    /// Charge one message of `len` bytes to both buckets, or to neither: a refused message
    /// spends nothing, so a large one refused for lack of bytes leaves what remains to smaller
    /// ones (votes).
    fn charge(&mut self, len: usize, r: BudgetRates, now: Instant) -> Result<(), OverBudget> {
        // Try the bytes on a copy: they are spent only if the message token is too.
        let mut bytes = Bucket { tokens: self.bytes.tokens, last: self.bytes.last };
        if !bytes.take(len as f64, r.bytes_per_s, r.bytes_burst, now) {
            self.bytes = bytes;
            return Err(OverBudget::Bytes);
        }
        if !self.msgs.take(1.0, r.msgs_per_s, r.msgs_burst, now) {
            return Err(OverBudget::Messages);
        }
        self.bytes = bytes;
        Ok(())
    }
}

struct Dialer {
    addr: Multiaddr,
    next: Instant,
    backoff: Duration,
}

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Sync responses waiting to be sent back into the swarm.
const SYNC_REPLY_QUEUE: usize = 64;

type Behaviour = request_response::Behaviour<FrameCodec>;

/// Start the network task. Returns the command sender; inbound traffic arrives on `inbound`.
pub fn spawn(
    key: &Keypair,
    cfg: NetConfig,
    permitted: BTreeSet<PeerId>,
    inbound: mpsc::Sender<Inbound>,
    sync_server: SyncServer,
    own_blocks: Arc<OwnBlocks>,
    metrics: Metrics,
) -> anyhow::Result<(mpsc::Sender<Command>, PeerId)> {
    let mut seed = key.seed();
    let id = identity::Keypair::ed25519_from_bytes(&mut seed).context("node identity")?;
    let codec = FrameCodec { max_frame_bytes: cfg.max_frame_bytes };
    let rr_cfg = request_response::Config::default()
        .with_request_timeout(cfg.request_timeout)
        .with_max_concurrent_streams(256);
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(id)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )?
        .with_behaviour(|_| {
            Behaviour::with_codec(codec, [(PROTOCOL, ProtocolSupport::Full)], rr_cfg)
        })?
        .with_swarm_config(|c| {
            // One protocol per substream, so the dialer may send its request with the
            // protocol proposal (0-RTT; the wire format is multistream-select V1's and any
            // listener accepts it) instead of waiting a round trip for the confirmation, once
            // per message.
            c.with_idle_connection_timeout(Duration::from_hours(1))
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
        .build();
    let local = *swarm.local_peer_id();
    swarm.listen_on(cfg.listen.clone()).context("listen")?;
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    // Answers to fetches, built off the task (at most `FETCH_SERVING_MAX` at once).
    let (fills_tx, fills_rx) = mpsc::channel(FETCH_SERVING_MAX);
    let task = NetTask {
        dialers: cfg
            .peers
            .iter()
            .filter(|(k, _)| peer_id(k) != local)
            .map(|(k, a)| {
                (peer_id(k), Dialer { addr: a.clone(), next: Instant::now(), backoff: BACKOFF_MIN })
            })
            .collect(),
        cfg,
        permitted,
        budgets: BTreeMap::new(),
        sync_serving: Arc::new(Semaphore::new(SYNC_SERVING_MAX)),
        fetch_serving: Arc::new(Semaphore::new(FETCH_SERVING_MAX)),
        fetch_pace: FetchPace::default(),
        fills: fills_tx,
        sync_pending: BTreeSet::new(),
        inbound,
        sync_server,
        own_blocks,
        metrics,
    };
    tokio::spawn(task.run(swarm, cmd_rx, fills_rx));
    Ok((cmd_tx, local))
}

struct NetTask {
    cfg: NetConfig,
    permitted: BTreeSet<PeerId>,
    dialers: BTreeMap<PeerId, Dialer>,
    budgets: BTreeMap<PeerId, PeerBudget>,
    /// Permits for the blocking tasks that answer sync requests.
    sync_serving: Arc<Semaphore>,
    sync_pending: BTreeSet<OutboundRequestId>,
    inbound: mpsc::Sender<Inbound>,
    sync_server: SyncServer,
    /// Our proposal blocks: their transaction fetches are answered here (`serve_fetch`).
    own_blocks: Arc<OwnBlocks>,
    /// Permits for the blocking tasks that build those answers.
    fetch_serving: Arc<Semaphore>,
    /// One answer per peer and block per `serve_fetch::FETCH_AGAIN_AFTER`.
    fetch_pace: FetchPace<PeerId>,
    /// Answers built off this task, to send (see `run`).
    fills: mpsc::Sender<(PeerId, NetMessage)>,
    metrics: Metrics,
}

impl NetTask {
    async fn run(
        mut self,
        mut swarm: Swarm<Behaviour>,
        mut cmds: mpsc::Receiver<Command>,
        mut fills: mpsc::Receiver<(PeerId, NetMessage)>,
    ) {
        let (reply_tx, mut reply_rx) =
            mpsc::channel::<(ResponseChannel<NetResponse>, NetResponse)>(SYNC_REPLY_QUEUE);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => self.on_swarm(&mut swarm, ev, &reply_tx),
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.on_command(&mut swarm, cmd),
                    None => break, // the node is shutting down
                },
                Some((ch, resp)) = reply_rx.recv() => {
                    // The peer may have gone; nothing to do then.
                    let _ = swarm.behaviour_mut().send_response(ch, resp);
                }
                Some((peer, msg)) = fills.recv() => {
                    swarm.behaviour_mut().send_request(&peer, Frame::Message(msg));
                }
                _ = tick.tick() => self.redial(&mut swarm),
            }
        }
        debug!("network task stopped");
    }

    fn redial(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        for (peer, d) in &mut self.dialers {
            if swarm.is_connected(peer) || d.next > now {
                continue;
            }
            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(*peer)
                .addresses(vec![d.addr.clone()])
                .build();
            if let Err(e) = swarm.dial(opts) {
                debug!(%peer, error = %e, "dial failed");
            }
            d.next = now + d.backoff;
            d.backoff = (d.backoff * 2).min(BACKOFF_MAX);
        }
    }

    fn on_command(&mut self, swarm: &mut Swarm<Behaviour>, cmd: Command) {
        match cmd {
            Command::Broadcast(msg) => {
                let peers: Vec<PeerId> = swarm
                    .connected_peers()
                    .filter(|p| self.permitted.contains(p))
                    .copied()
                    .collect();
                for p in peers {
                    swarm.behaviour_mut().send_request(&p, Frame::Message(msg.clone()));
                }
            }
            Command::Send(peer, msg) => {
                let is_sync = matches!(msg.kind, Some(net_message::Kind::SyncRequest(_)));
                let id = swarm.behaviour_mut().send_request(&peer, Frame::Message(msg));
                if is_sync {
                    self.sync_pending.insert(id);
                }
            }
            Command::SetPermitted(set) => {
                self.permitted = set;
                let drop: Vec<PeerId> = swarm
                    .connected_peers()
                    .filter(|p| !self.permitted.contains(p))
                    .copied()
                    .collect();
                for p in drop {
                    info!(peer = %p, "peer no longer permitted; disconnecting");
                    let _ = swarm.disconnect_peer_id(p);
                }
            }
        }
    }

    fn forward(&self, msg: Inbound) {
        // Bounded: if the node cannot keep up, drop network input (consensus re-broadcasts and
        // block sync recover it) rather than grow memory.
        if self.inbound.try_send(msg).is_err() {
            self.metrics.p2p_dropped.inc();
        }
    }

    fn on_swarm(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: SwarmEvent<request_response::Event<Frame, NetResponse>>,
        reply_tx: &mpsc::Sender<(ResponseChannel<NetResponse>, NetResponse)>,
    ) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "p2p listening"),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if !self.permitted.contains(&peer_id) {
                    warn!(peer = %peer_id, "refusing connection: key neither a validator (current or scheduled), nor allowed, nor a configured peer");
                    self.metrics.p2p_refused.inc();
                    let _ = swarm.disconnect_peer_id(peer_id);
                    return;
                }
                if let Some(d) = self.dialers.get_mut(&peer_id) {
                    d.backoff = BACKOFF_MIN;
                }
                self.metrics.peers.set(swarm.connected_peers().count() as i64);
                self.forward(Inbound::Connected(peer_id));
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.budgets.remove(&peer_id);
                self.metrics.peers.set(swarm.connected_peers().count() as i64);
                self.forward(Inbound::Disconnected(peer_id));
            }
            SwarmEvent::Behaviour(ev) => self.on_rr(swarm, ev, reply_tx),
            _ => {}
        }
    }

    fn on_rr(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: request_response::Event<Frame, NetResponse>,
        reply_tx: &mpsc::Sender<(ResponseChannel<NetResponse>, NetResponse)>,
    ) {
        use request_response::{Event, Message};
        match ev {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                if !self.permitted.contains(&peer) {
                    let _ = swarm.disconnect_peer_id(peer);
                    return;
                }
                let request = match request {
                    Frame::Message(msg) => msg,
                    Frame::Refused(why) => {
                        warn!(%peer, %why, "bad frame from peer; disconnecting");
                        self.metrics.p2p_bad_frames.inc();
                        drop(channel);
                        let _ = swarm.disconnect_peer_id(peer);
                        return;
                    }
                };
                let (rates, now) = (BudgetRates::of(&self.cfg), Instant::now());
                let budget =
                    self.budgets.entry(peer).or_insert_with(|| PeerBudget::new(rates, now));
                if let Err(over) = budget.charge(request.encoded_len(), rates, now) {
                    match over {
                        OverBudget::Messages => self.metrics.p2p_rate_limited.inc(),
                        OverBudget::Bytes => self.metrics.p2p_byte_limited.inc(),
                    };
                    drop(channel); // no answer: the peer sees a failure and backs off
                    return;
                }
                if let Some(net_message::Kind::SyncRequest(req)) = request.kind {
                    let Ok(permit) = self.sync_serving.clone().try_acquire_owned() else {
                        self.metrics.p2p_sync_refused.inc();
                        drop(channel); // the asker retries, or asks another peer
                        return;
                    };
                    let server = self.sync_server.clone();
                    let reply = reply_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let resp = server(&req);
                        drop(permit);
                        let msg = NetResponse { kind: Some(net_response::Kind::Sync(resp)) };
                        let _ = reply.try_send((channel, msg));
                    });
                    return;
                }
                let ack = NetResponse { kind: Some(net_response::Kind::Ack(crate::wire::Ack {})) };
                let _ = swarm.behaviour_mut().send_response(channel, ack);
                // A fetch for our own proposal block is answered here, not behind the
                // driver's queue; any other goes to the driver.
                if let Some(net_message::Kind::TxFetch(f)) = &request.kind {
                    match self.own_blocks.answer(f) {
                        FetchAnswer::Ours(job) => {
                            // At most FETCH_SERVING_MAX being built and one per peer and
                            // block per 400 ms; a fetch over either gets nothing (the asker
                            // asks again at the proposer's re-broadcast).
                            let Ok(permit) = self.fetch_serving.clone().try_acquire_owned() else {
                                self.metrics.p2p_rate_limited.inc();
                                return;
                            };
                            if !self.fetch_pace.allow(&peer, &f.block_id, Instant::now()) {
                                self.metrics.p2p_rate_limited.inc();
                                return;
                            }
                            self.metrics.compact_fetches_served.inc();
                            let fills = self.fills.clone();
                            tokio::task::spawn_blocking(move || {
                                let fill = net_message::Kind::TxFill(job.fill());
                                // The permit is held until the answer is queued: at most
                                // FETCH_SERVING_MAX answers are being built or wait in the
                                // queue (of as many places) at once.
                                let _ =
                                    fills.blocking_send((peer, NetMessage { kind: Some(fill) }));
                                drop(permit);
                            });
                            return;
                        }
                        FetchAnswer::Malformed => {
                            self.metrics.proposal_blocks_refused.inc();
                            return;
                        }
                        FetchAnswer::NotOurs => {}
                    }
                }
                self.forward(Inbound::Message { from: peer, msg: request });
            }
            Event::Message {
                peer, message: Message::Response { request_id, response }, ..
            } => {
                if self.sync_pending.remove(&request_id)
                    && let Some(net_response::Kind::Sync(resp)) = response.kind
                {
                    self.forward(Inbound::Synced { from: peer, resp });
                }
            }
            Event::InboundFailure { peer, error, .. } => {
                // A malformed or oversized frame surfaces here as an I/O error.
                if let request_response::InboundFailure::Io(e) = &error {
                    warn!(%peer, error = %e, "bad frame from peer; disconnecting");
                    self.metrics.p2p_bad_frames.inc();
                    let _ = swarm.disconnect_peer_id(peer);
                }
            }
            Event::OutboundFailure { request_id, error, peer, .. } => {
                self.sync_pending.remove(&request_id);
                // Counted, not logged above debug: under load a refused send (more than
                // `max_concurrent_streams` in flight) is recovered by re-broadcast and sync.
                self.metrics.p2p_send_failed.inc();
                debug!(%peer, %error, "send failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(bytes_per_s: f64, bytes_burst: f64) -> BudgetRates {
        BudgetRates { msgs_per_s: 1000.0, msgs_burst: 1000.0, bytes_per_s, bytes_burst }
    }

    /// A peer within its message rate but sending large messages is held to its byte rate;
    /// its small messages still pass, and the budget refills with time.
    #[test]
    fn peer_budget_counts_bytes_as_well_as_messages() {
        let r = rates(1_000_000.0, 4_000_000.0);
        let t0 = Instant::now();
        let mut b = PeerBudget::new(r, t0);
        for _ in 0..4 {
            assert_eq!(b.charge(1_000_000, r, t0), Ok(()));
        }
        assert_eq!(b.charge(1_000_000, r, t0), Err(OverBudget::Bytes));
        // The bytes are spent: even a vote-sized message waits for the bucket to refill.
        assert_eq!(b.charge(100, r, t0), Err(OverBudget::Bytes));
        let t1 = t0 + Duration::from_millis(1);
        assert_eq!(b.charge(100, r, t1), Ok(()), "1 ms refills 1000 bytes");
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(b.charge(1_000_000, r, t2), Ok(()));
        // The message bucket still applies on its own.
        let r = BudgetRates { msgs_per_s: 1.0, msgs_burst: 2.0, ..rates(1e9, 1e9) };
        let mut b = PeerBudget::new(r, t0);
        assert_eq!(b.charge(10, r, t0), Ok(()));
        assert_eq!(b.charge(10, r, t0), Ok(()));
        assert_eq!(b.charge(10, r, t0), Err(OverBudget::Messages));
    }

    #[test]
    fn byte_burst_never_below_one_frame() {
        let cfg = NetConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            peers: Vec::new(),
            max_frame_bytes: FRAME_BYTES_MIN,
            peer_msgs_per_s: 10,
            peer_burst: 10,
            peer_bytes_per_s: 1024,
            peer_burst_bytes: 1024,
            request_timeout: Duration::from_secs(1),
        };
        let r = BudgetRates::of(&cfg);
        let mut b = PeerBudget::new(r, Instant::now());
        assert_eq!(b.charge(FRAME_BYTES_MIN, r, Instant::now()), Ok(()));
    }
}
