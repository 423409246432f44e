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
//! logged. Inbound messages are rate limited per peer; a peer that sends a malformed or oversized
//! frame is disconnected.

pub mod codec;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identity};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::wire::{NetMessage, NetResponse, SyncRequest, SyncResponse, net_message, net_response};
use codec::{FrameCodec, PROTOCOL};
use dpx_crypto::{Keypair, PublicKey};

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
    fn take(&mut self, rate: f64, burst: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
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
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_hours(1)))
        .build();
    let local = *swarm.local_peer_id();
    swarm.listen_on(cfg.listen.clone()).context("listen")?;
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
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
        buckets: BTreeMap::new(),
        sync_pending: BTreeSet::new(),
        inbound,
        sync_server,
        metrics,
    };
    tokio::spawn(task.run(swarm, cmd_rx));
    Ok((cmd_tx, local))
}

struct NetTask {
    cfg: NetConfig,
    permitted: BTreeSet<PeerId>,
    dialers: BTreeMap<PeerId, Dialer>,
    buckets: BTreeMap<PeerId, Bucket>,
    sync_pending: BTreeSet<OutboundRequestId>,
    inbound: mpsc::Sender<Inbound>,
    sync_server: SyncServer,
    metrics: Metrics,
}

impl NetTask {
    async fn run(mut self, mut swarm: Swarm<Behaviour>, mut cmds: mpsc::Receiver<Command>) {
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
                    swarm.behaviour_mut().send_request(&p, msg.clone());
                }
            }
            Command::Send(peer, msg) => {
                let is_sync = matches!(msg.kind, Some(net_message::Kind::SyncRequest(_)));
                let id = swarm.behaviour_mut().send_request(&peer, msg);
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
        ev: SwarmEvent<request_response::Event<NetMessage, NetResponse>>,
        reply_tx: &mpsc::Sender<(ResponseChannel<NetResponse>, NetResponse)>,
    ) {
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "p2p listening"),
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                if !self.permitted.contains(&peer_id) {
                    warn!(peer = %peer_id, "refusing connection: key not in validator set or allow-list");
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
                self.buckets.remove(&peer_id);
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
        ev: request_response::Event<NetMessage, NetResponse>,
        reply_tx: &mpsc::Sender<(ResponseChannel<NetResponse>, NetResponse)>,
    ) {
        use request_response::{Event, Message};
        match ev {
            Event::Message { peer, message: Message::Request { request, channel, .. }, .. } => {
                if !self.permitted.contains(&peer) {
                    let _ = swarm.disconnect_peer_id(peer);
                    return;
                }
                let (rate, burst) =
                    (f64::from(self.cfg.peer_msgs_per_s), f64::from(self.cfg.peer_burst));
                let bucket = self
                    .buckets
                    .entry(peer)
                    .or_insert(Bucket { tokens: burst, last: Instant::now() });
                if !bucket.take(rate, burst) {
                    self.metrics.p2p_rate_limited.inc();
                    drop(channel); // no answer: the peer sees a failure and backs off
                    return;
                }
                if let Some(net_message::Kind::SyncRequest(req)) = request.kind {
                    let server = self.sync_server.clone();
                    let reply = reply_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let resp = server(&req);
                        let msg = NetResponse { kind: Some(net_response::Kind::Sync(resp)) };
                        let _ = reply.try_send((channel, msg));
                    });
                    return;
                }
                let ack = NetResponse { kind: Some(net_response::Kind::Ack(crate::wire::Ack {})) };
                let _ = swarm.behaviour_mut().send_response(channel, ack);
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
                debug!(%peer, %error, "send failed");
            }
            Event::ResponseSent { .. } => {}
        }
    }
}
