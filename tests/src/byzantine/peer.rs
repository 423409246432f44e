//! The byzantine peer's network side: a real libp2p node that speaks the node's own protocol
//! (`/dpx/1`, [`FrameCodec`], the `dpx_node::wire` messages) with a key the cluster permits.
//!
//! Scenarios tell it what to send ([`Peer::send`], [`Peer::broadcast`]) and how to answer
//! block-sync requests ([`Peer::set_sync_answer`]); everything honest nodes send it arrives on
//! [`Peer::heard`]. Its own frame limit is set by the caller, above the nodes' limit, so it can
//! send frames the nodes must refuse.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt as _;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, identity};
use tokio::sync::mpsc;

use dpx_crypto::{Keypair, PublicKey};
use dpx_node::p2p::codec::{Frame, FrameCodec, PROTOCOL};
use dpx_node::p2p::peer_id;
use dpx_node::wire::{
    Ack, NetMessage, NetResponse, SyncResponse, SyncedBlock, net_message, net_response,
};

/// Commands queued to the network task.
const CMD_QUEUE: usize = 4096;
/// Messages heard from honest nodes, queued for the scenario (dropped when it does not read).
const HEARD_QUEUE: usize = 4096;
/// How often a lost connection is dialled again.
const REDIAL: Duration = Duration::from_millis(200);

/// How the peer answers a block-sync request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SyncAnswer {
    /// No blocks at all.
    Empty = 0,
    /// One "block" of random bytes with a random certificate.
    Garbled = 1,
    /// One block entry larger than any node's frame limit.
    Oversized = 2,
}

/// A node the peer keeps connected to.
#[derive(Clone, Debug)]
pub struct Target {
    pub key: PublicKey,
    pub addr: Multiaddr,
}

/// What the peer did and saw, for the scenario's report.
#[derive(Debug, Default)]
pub struct PeerStats {
    pub requests_sent: AtomicU64,
    pub send_failures: AtomicU64,
    pub sync_requests: AtomicU64,
    pub heard_dropped: AtomicU64,
    /// Highest tip heard of: announced (`Status.height`) or implied by a consensus message.
    pub tip: AtomicU64,
    /// Bit `i` set while target `i` is connected.
    pub connected: AtomicU64,
}

#[derive(Debug)]
enum Cmd {
    Send(usize, NetMessage),
    All(NetMessage),
}

/// A running byzantine peer; dropping it closes its connections.
#[derive(Debug)]
pub struct Peer {
    cmds: mpsc::Sender<Cmd>,
    heard: mpsc::Receiver<(usize, NetMessage)>,
    answer: Arc<AtomicU8>,
    pub stats: Arc<PeerStats>,
    pub targets: Vec<Target>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peer {
    /// Start a peer with `key` that dials every target and keeps dialling lost connections.
    /// `max_frame_bytes` bounds what it reads and writes (set it above the nodes' limit).
    pub fn start(
        key: &Keypair,
        targets: Vec<Target>,
        max_frame_bytes: usize,
    ) -> anyhow::Result<Self> {
        let mut seed = key.seed();
        let id = identity::Keypair::ed25519_from_bytes(&mut seed).context("peer identity")?;
        let rr = request_response::Config::default()
            .with_request_timeout(Duration::from_secs(10))
            .with_max_concurrent_streams(1024);
        let codec = FrameCodec { max_frame_bytes };
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(id)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default().nodelay(true),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )?
            .with_behaviour(|_| {
                request_response::Behaviour::with_codec(
                    codec,
                    [(PROTOCOL, ProtocolSupport::Full)],
                    rr,
                )
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_hours(1)))
            .build();
        swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse()?)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(CMD_QUEUE);
        let (heard_tx, heard_rx) = mpsc::channel(HEARD_QUEUE);
        let answer = Arc::new(AtomicU8::new(SyncAnswer::Empty as u8));
        let stats = Arc::new(PeerStats::default());
        let task = Task {
            index: targets.iter().enumerate().map(|(i, t)| (peer_id(&t.key), i)).collect(),
            targets: targets.clone(),
            last_dial: vec![None; targets.len()],
            heard: heard_tx,
            answer: answer.clone(),
            stats: stats.clone(),
            max_frame_bytes,
            sync_seq: 0,
        };
        let task = tokio::spawn(task.run(swarm, cmd_rx));
        Ok(Self { cmds: cmd_tx, heard: heard_rx, answer, stats, targets, task })
    }

    /// Send `msg` to target `to` (a request; the node answers with an ack or not at all).
    pub async fn send(&self, to: usize, msg: NetMessage) {
        let _ = self.cmds.send(Cmd::Send(to, msg)).await;
    }

    /// Send `msg` to every connected target.
    pub async fn broadcast(&self, msg: NetMessage) {
        let _ = self.cmds.send(Cmd::All(msg)).await;
    }

    /// Choose how block-sync requests are answered from now on.
    pub fn set_sync_answer(&self, a: SyncAnswer) {
        self.answer.store(a as u8, Ordering::Relaxed);
    }

    /// Messages honest nodes sent us: (target index, message).
    pub fn heard(&mut self) -> &mut mpsc::Receiver<(usize, NetMessage)> {
        &mut self.heard
    }

    /// Whether target `i` is connected now.
    pub fn is_connected(&self, i: usize) -> bool {
        self.stats.connected.load(Ordering::Relaxed) & (1 << i) != 0
    }

    /// Wait until every target in `which` is connected.
    pub async fn wait_connected(&self, which: &[usize], timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !which.iter().all(|i| self.is_connected(*i)) {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the byzantine peer could not connect to nodes {which:?} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }
}

type Behaviour = request_response::Behaviour<FrameCodec>;

struct Task {
    targets: Vec<Target>,
    index: BTreeMap<PeerId, usize>,
    last_dial: Vec<Option<Instant>>,
    heard: mpsc::Sender<(usize, NetMessage)>,
    answer: Arc<AtomicU8>,
    stats: Arc<PeerStats>,
    max_frame_bytes: usize,
    sync_seq: u64,
}

impl Task {
    async fn run(mut self, mut swarm: Swarm<Behaviour>, mut cmds: mpsc::Receiver<Cmd>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => self.on_swarm(&mut swarm, ev),
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Send(i, msg)) => self.send(&mut swarm, i, msg),
                    Some(Cmd::All(msg)) => {
                        for i in 0..self.targets.len() {
                            if swarm.is_connected(&peer_id(&self.targets[i].key)) {
                                self.send(&mut swarm, i, msg.clone());
                            }
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => self.redial(&mut swarm),
            }
        }
    }

    fn send(&self, swarm: &mut Swarm<Behaviour>, i: usize, msg: NetMessage) {
        let Some(t) = self.targets.get(i) else { return };
        swarm.behaviour_mut().send_request(&peer_id(&t.key), Frame::Message(msg));
        self.stats.requests_sent.fetch_add(1, Ordering::Relaxed);
    }

    fn redial(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        for (i, t) in self.targets.iter().enumerate() {
            let peer = peer_id(&t.key);
            if swarm.is_connected(&peer) || self.last_dial[i].is_some_and(|at| now - at < REDIAL) {
                continue;
            }
            self.last_dial[i] = Some(now);
            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                .addresses(vec![t.addr.clone()])
                .build();
            let _ = swarm.dial(opts);
        }
    }

    fn set_connected(&self, swarm: &Swarm<Behaviour>) {
        let mut bits = 0u64;
        for (i, t) in self.targets.iter().enumerate() {
            if swarm.is_connected(&peer_id(&t.key)) {
                bits |= 1 << i;
            }
        }
        self.stats.connected.store(bits, Ordering::Relaxed);
    }

    fn on_swarm(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        ev: SwarmEvent<request_response::Event<Frame, NetResponse>>,
    ) {
        use request_response::{Event, Message};
        match ev {
            SwarmEvent::ConnectionEstablished { .. } | SwarmEvent::ConnectionClosed { .. } => {
                self.set_connected(swarm);
            }
            SwarmEvent::Behaviour(Event::Message {
                peer,
                message: Message::Request { request: Frame::Message(request), channel, .. },
                ..
            }) => {
                let from = self.index.get(&peer).copied().unwrap_or(usize::MAX);
                let resp = match &request.kind {
                    Some(net_message::Kind::SyncRequest(_)) => {
                        self.stats.sync_requests.fetch_add(1, Ordering::Relaxed);
                        self.sync_answer()
                    }
                    _ => NetResponse { kind: Some(net_response::Kind::Ack(Ack {})) },
                };
                let _ = swarm.behaviour_mut().send_response(channel, resp);
                // The chain's tip: announced each second, and implied at once by every
                // consensus message (one for height h means h - 1 is committed).
                match &request.kind {
                    Some(net_message::Kind::Status(st)) => {
                        self.stats.tip.fetch_max(st.height, Ordering::Relaxed);
                    }
                    Some(net_message::Kind::Consensus(bytes)) => {
                        if let Ok(m) = dpx_consensus::SignedMessage::decode(bytes) {
                            let h = m.height().0.saturating_sub(1);
                            self.stats.tip.fetch_max(h, Ordering::Relaxed);
                        }
                    }
                    _ => {}
                }
                if self.heard.try_send((from, request)).is_err() {
                    self.stats.heard_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            SwarmEvent::Behaviour(Event::OutboundFailure { .. }) => {
                self.stats.send_failures.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn sync_answer(&mut self) -> NetResponse {
        self.sync_seq += 1;
        let mode = match self.answer.load(Ordering::Relaxed) {
            1 => SyncAnswer::Garbled,
            2 => SyncAnswer::Oversized,
            _ => SyncAnswer::Empty,
        };
        let blocks = match mode {
            SyncAnswer::Empty => Vec::new(),
            SyncAnswer::Garbled => vec![SyncedBlock {
                block: noise(self.sync_seq, 4096),
                certificate: noise(self.sync_seq + 1, 512),
                parent_certificate: noise(self.sync_seq + 2, 512),
            }],
            // Just under our own limit: past every node's (ours is set above theirs).
            SyncAnswer::Oversized => vec![SyncedBlock {
                block: noise(self.sync_seq, self.max_frame_bytes.saturating_sub(64)),
                certificate: Vec::new(),
                parent_certificate: Vec::new(),
            }],
        };
        NetResponse { kind: Some(net_response::Kind::Sync(SyncResponse { blocks })) }
    }
}

/// `len` bytes of deterministic noise (a xorshift stream seeded by `seed`).
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_and_sized() {
        assert_eq!(noise(7, 100), noise(7, 100));
        assert_ne!(noise(7, 100), noise(8, 100));
        assert_eq!(noise(1, 13).len(), 13);
    }
}
