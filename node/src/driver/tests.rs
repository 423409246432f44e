//! Driver-level tests: a real driver on a real store in a temporary directory, fed network
//! input by hand, with the test playing the other validators (it holds all their keys) and
//! reading what the driver asks the network to send.

use std::sync::Arc;
use std::time::Duration;

use dpx_consensus::{
    ConsensusConfig, Height, Proposal, Round, SafetyState, SignedMessage, ValidatorIndex, Vote,
    VoteKind,
};
use dpx_crypto::{Hash, Keypair};
use dpx_genesis::Genesis;
use dpx_ledger::{Block, Header};
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::{Driver, DriverTiming};
use crate::config::{Config, Home};
use crate::mempool::{Mempool, MempoolLimits};
use crate::node::Shared;
use crate::p2p::{self, Command};
use crate::safety::SafetyFile;
use crate::wire::{self, NetMessage, net_message::Kind};

const VALIDATORS: u8 = 4;

/// The keys of a 4-validator chain and its genesis.
struct Chain {
    keys: Vec<Keypair>,
    genesis: Genesis,
}

impl Chain {
    fn new() -> Self {
        let keys: Vec<Keypair> = (1..=VALIDATORS).map(|i| Keypair::from_seed([i; 32])).collect();
        let agency = Keypair::from_seed([100; 32]).public();
        let vals: Vec<_> = keys.iter().map(Keypair::public).collect();
        let genesis = Genesis::example("dpx-driver-test", &[("Agency A", agency)], &vals);
        // Index keys as the validator set does, so `keys[i]` signs as `ValidatorIndex(i)`.
        let set = genesis.validator_set().unwrap();
        let keys = set
            .validators()
            .iter()
            .map(|v| keys.iter().find(|k| k.public() == v.key).unwrap().clone())
            .collect();
        Self { keys, genesis }
    }

    fn chain_id(&self) -> &str {
        &self.genesis.chain_id
    }

    fn peer(&self, i: usize) -> PeerId {
        p2p::peer_id(&self.keys[i].public())
    }
}

/// One driver and what it asked the network to do.
struct Node {
    driver: Driver,
    net: mpsc::Receiver<Command>,
}

fn timing() -> DriverTiming {
    DriverTiming {
        idle_block_interval: Duration::ZERO,
        min_block_interval: Duration::ZERO,
        // Tests call rebroadcast themselves when they want it.
        rebroadcast: Duration::from_hours(1),
        max_clock_drift: Duration::from_secs(10),
    }
}

/// A driver on the data directory `dir` (re-opened as it was after a restart), signing with
/// validator `me`'s key, or a follower when `me` is `None`.
fn open(chain: &Chain, dir: &std::path::Path, me: Option<usize>) -> Node {
    let home = Home(dir.to_path_buf());
    let cfg = Config::new("t", "/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into());
    let store = Arc::new(crate::node::open_store(&home, &chain.genesis, &cfg).unwrap());
    let key = me.map(|i| chain.keys[i].clone());
    let node_key =
        key.as_ref().map_or_else(|| Keypair::from_seed([200; 32]).public(), Keypair::public);
    let shared = Shared::for_tests(&chain.genesis, store, node_key);
    let safety = SafetyFile::new(home.safety());
    let persisted = safety.load().unwrap().map(|b| SafetyState::decode(&b).unwrap());
    let mempool =
        Mempool::new(MempoolLimits { max_txs: 1000, max_bytes: 1 << 20, max_txs_per_signer: 1000 });
    let (net_tx, net) = mpsc::channel(100_000);
    let driver = Driver::new(
        shared,
        key,
        safety,
        persisted,
        mempool,
        net_tx,
        timing(),
        ConsensusConfig::default(),
    )
    .unwrap();
    Node { driver, net }
}

impl Node {
    fn tip(&self) -> u64 {
        self.driver.store.tip_height()
    }

    /// Everything sent since the last call.
    fn sent(&mut self) -> Vec<Command> {
        let mut out = Vec::new();
        while let Ok(c) = self.net.try_recv() {
            out.push(c);
        }
        out
    }

    fn consensus(&mut self, from: PeerId, m: SignedMessage) {
        self.driver.on_net(from, NetMessage { kind: Some(Kind::Consensus(m.encode())) }).unwrap();
    }

    fn block(&mut self, from: PeerId, block: &Block, parent_cert: &[u8], round: u32) {
        let pb = wire::ProposalBlock {
            height: block.header.height,
            round,
            block: block.encode(),
            parent_certificate: parent_cert.to_vec(),
        };
        self.driver.on_net(from, NetMessage { kind: Some(Kind::Block(pb)) }).unwrap();
    }

    fn status(&mut self, from: PeerId, height: u64) {
        let st = wire::Status { height, tip_id: vec![0; 32], round: 0 };
        self.driver.on_net(from, NetMessage { kind: Some(Kind::Status(st)) }).unwrap();
    }

    /// The validator index that proposes `(height, round)` on this node's current set.
    fn proposer(&self, height: u64, round: u32) -> ValidatorIndex {
        self.driver.validators.selector().proposer_index(Height(height), Round(round))
    }

    /// A valid block for the next height proposed by `proposer`, as `Driver::propose` builds
    /// it, with the parent certificate it carries.
    fn next_block(&self, chain: &Chain, proposer: usize, txs: Vec<Vec<u8>>) -> (Block, Vec<u8>) {
        let store = &self.driver.store;
        let tip = store.tip_height();
        let parent = store.header(tip).unwrap();
        let parent_time = parent.as_ref().map_or(chain.genesis.genesis_time_ms, |h| h.time_ms);
        let parent_cert = self
            .driver
            .last_cert
            .as_ref()
            .map(dpx_consensus::Certificate::encode)
            .unwrap_or_default();
        let header = Header {
            chain_id: chain.chain_id().to_owned(),
            height: tip + 1,
            time_ms: super::now_ms().max(parent_time + 1),
            proposer: chain.keys[proposer].public(),
            parent_id: parent.as_ref().map_or(Hash::ZERO, Header::id),
            parent_certificate_hash: if parent_cert.is_empty() {
                Hash::ZERO
            } else {
                Hash::digest(&parent_cert)
            },
            tx_root: dpx_ledger::merkle::root(&txs),
            state_root: store.state_root(tip).unwrap().unwrap(),
            validator_set_hash: self.driver.validators.hash(chain.chain_id()),
            prev_receipts_hash: store.block_receipts_hash(tip).unwrap().unwrap_or(Hash::ZERO),
        };
        (Block { header, txs }, parent_cert)
    }

    /// Play the other validators through one height in round 0: the proposer sends its block
    /// and proposal, then every validator but `skip` precommits it. Returns the block id.
    fn decide_next(&mut self, chain: &Chain, skip: Option<usize>) -> Hash {
        let height = self.tip() + 1;
        let proposer = self.proposer(height, 0).get();
        let (block, parent_cert) = self.next_block(chain, proposer, Vec::new());
        let id = block.id();
        self.block(chain.peer(proposer), &block, &parent_cert, 0);
        self.consensus(chain.peer(proposer), proposal(chain, proposer, height, 0, id));
        for i in (0..usize::from(VALIDATORS)).filter(|i| Some(*i) != skip) {
            let v = vote(chain, i, VoteKind::Precommit, height, 0, Some(id));
            self.consensus(chain.peer(i), v);
        }
        id
    }
}

fn proposal(chain: &Chain, proposer: usize, height: u64, round: u32, id: Hash) -> SignedMessage {
    let p = Proposal {
        height: Height(height),
        round: Round(round),
        value_id: id,
        pol_round: None,
        proposer: ValidatorIndex(proposer as u32),
    };
    SignedMessage::Proposal(p.sign(chain.chain_id(), &chain.keys[proposer]))
}

fn vote(
    chain: &Chain,
    i: usize,
    kind: VoteKind,
    height: u64,
    round: u32,
    id: Option<Hash>,
) -> SignedMessage {
    let v = Vote {
        kind,
        height: Height(height),
        round: Round(round),
        value_id: id,
        validator: ValidatorIndex(i as u32),
    };
    SignedMessage::Vote(v.sign(chain.chain_id(), &chain.keys[i]))
}

/// A decodable block for `height` that no proposal names.
fn junk_block(chain: &Chain, height: u64, n: u32) -> Block {
    let txs = vec![n.to_le_bytes().to_vec()];
    let header = Header {
        chain_id: chain.chain_id().to_owned(),
        height,
        time_ms: u64::from(n),
        proposer: Keypair::from_seed([201; 32]).public(),
        parent_id: Hash::ZERO,
        parent_certificate_hash: Hash::ZERO,
        tx_root: dpx_ledger::merkle::root(&txs),
        state_root: Hash::ZERO,
        validator_set_hash: Hash::ZERO,
        prev_receipts_hash: Hash::ZERO,
    };
    Block { header, txs }
}

fn junk_peer() -> PeerId {
    p2p::peer_id(&Keypair::from_seed([202; 32]).public())
}

/// Issue 14, item 2: a permitted peer floods decodable blocks that no proposal names. The real
/// proposal's block must still be kept, validated and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_blocks_do_not_push_out_the_proposal_block() {
    let chain = Chain::new();
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(&chain, dir.path(), Some(0));
    assert_ne!(node.proposer(1, 0).get(), 0, "the test node must not propose height 1");
    for n in 0..1000 {
        node.block(junk_peer(), &junk_block(&chain, 1, n), &[], 0);
        node.block(junk_peer(), &junk_block(&chain, 2, n), &[], 0);
    }
    node.decide_next(&chain, Some(0));
    assert_eq!(node.tip(), 1, "the height was not decided after a junk-block flood");
    // The junk was evicted from the bounded pending area, and counted.
    let m = &node.driver.shared.metrics;
    assert!(m.proposal_blocks_evicted.get() >= 1900, "{}", m.proposal_blocks_evicted.get());
}

/// Issue 14, item 4: a peer claims a huge height and answers every sync request with nothing.
/// A lagging node must still catch up from the honest peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_peer_does_not_stall_block_sync() {
    let chain = Chain::new();
    let (honest_dir, lagging_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut honest = open(&chain, honest_dir.path(), None);
    for _ in 0..3 {
        honest.decide_next(&chain, None);
    }
    assert_eq!(honest.tip(), 3);
    let mut lagging = open(&chain, lagging_dir.path(), None);
    let (liar, honest_peer) = (junk_peer(), chain.peer(1));
    for _ in 0..30 {
        lagging.status(liar, 1_000_000);
        lagging.status(honest_peer, honest.tip());
        lagging.driver.announce();
        for cmd in lagging.sent() {
            let Command::Send(peer, NetMessage { kind: Some(Kind::SyncRequest(req)) }) = cmd else {
                continue;
            };
            let resp = if peer == liar {
                wire::SyncResponse { blocks: Vec::new() }
            } else {
                assert_eq!(peer, honest_peer);
                crate::chain::serve_sync(&honest.driver.store, &req, 1 << 20)
            };
            lagging.driver.on_synced(peer, resp).unwrap();
        }
        if lagging.tip() == 3 {
            break;
        }
    }
    assert_eq!(lagging.tip(), 3, "the lagging node did not catch up past a lying peer");
}

/// How a lying peer answers the sync requests it gets.
#[derive(Clone, Copy, Debug)]
enum Lie {
    Empty,
    Silent,
    Garbled,
    /// Real blocks, but not the ones asked for.
    WrongHeight,
}

/// A lagging node with one lying and one honest peer (which answers one block at a time, as
/// a frame-sized answer may). Returns the lagging node's tip after `rounds` exchanges.
fn catch_up_past(lie: Lie, rounds: usize) -> (u64, u64) {
    let chain = Chain::new();
    let (honest_dir, lagging_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut honest = open(&chain, honest_dir.path(), None);
    for _ in 0..4 {
        honest.decide_next(&chain, None);
    }
    let mut lagging = open(&chain, lagging_dir.path(), None);
    lagging.driver.sync.timeout = Duration::from_millis(20);
    let (liar, honest_peer) = (junk_peer(), chain.peer(1));
    for _ in 0..rounds {
        lagging.status(liar, u64::MAX);
        lagging.status(honest_peer, honest.tip());
        std::thread::sleep(Duration::from_millis(25)); // lets a silent liar's request time out
        lagging.driver.announce();
        for cmd in lagging.sent() {
            let Command::Send(peer, NetMessage { kind: Some(Kind::SyncRequest(req)) }) = cmd else {
                continue;
            };
            let resp = if peer == honest_peer {
                crate::chain::serve_sync(&honest.driver.store, &req, 1)
            } else {
                match lie {
                    Lie::Empty => wire::SyncResponse { blocks: Vec::new() },
                    Lie::Silent => continue,
                    Lie::Garbled => wire::SyncResponse {
                        blocks: vec![wire::SyncedBlock {
                            block: vec![7; 300],
                            certificate: vec![9; 40],
                            parent_certificate: Vec::new(),
                        }],
                    },
                    Lie::WrongHeight => {
                        let from = req.from_height + 2;
                        crate::chain::serve_sync(
                            &honest.driver.store,
                            &wire::SyncRequest { from_height: from, ..req },
                            1 << 20,
                        )
                    }
                }
            };
            lagging.driver.on_synced(peer, resp).unwrap();
        }
        if lagging.tip() == honest.tip() {
            break;
        }
    }
    (lagging.tip(), lagging.driver.shared.metrics.sync_peers_benched.get())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_catches_up_past_every_kind_of_lying_peer() {
    for lie in [Lie::Empty, Lie::Silent, Lie::Garbled, Lie::WrongHeight] {
        let (tip, benched) = catch_up_past(lie, 40);
        assert_eq!(tip, 4, "{lie:?}: the lagging node did not catch up");
        assert!(benched >= 1, "{lie:?}: the liar was never benched");
    }
}

/// The proposer's own block is pushed out of the pending area (here by the proposer's peer
/// itself flooding after it); once the proposal names it, the proposer's re-broadcast brings
/// it back and it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_out_block_is_taken_when_its_proposal_names_it() {
    let chain = Chain::new();
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(&chain, dir.path(), Some(0));
    let proposer = node.proposer(1, 0).get();
    assert_ne!(proposer, 0);
    let (block, parent_cert) = node.next_block(&chain, proposer, Vec::new());
    let id = block.id();
    node.block(chain.peer(proposer), &block, &parent_cert, 0);
    for n in 0..100 {
        node.block(chain.peer(proposer), &junk_block(&chain, 1, n), &[], 0);
    }
    node.consensus(chain.peer(proposer), proposal(&chain, proposer, 1, 0, id));
    assert!(!node.driver.blocks.contains(&id), "pushed out while pending");
    for n in 100..200 {
        node.block(junk_peer(), &junk_block(&chain, 1, n), &[], 0);
    }
    node.block(chain.peer(proposer), &block, &parent_cert, 0); // the re-broadcast
    assert!(node.driver.blocks.contains(&id));
    for i in (0..usize::from(VALIDATORS)).filter(|i| *i != 0) {
        node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, 1, 0, Some(id)));
    }
    assert_eq!(node.tip(), 1);
}

/// Issue 14, item 7: a proposer that crashes after persisting its proposal but before sending
/// it sends the very same proposal (and its block) after the restart, never a different one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proposer_resends_the_same_proposal() {
    let chain = Chain::new();
    let dir = tempfile::tempdir().unwrap();
    let me = {
        let probe = open(&chain, dir.path(), None);
        probe.proposer(1, 0).get()
    };
    let mut node = open(&chain, dir.path(), Some(me));
    node.driver.on_tick().unwrap();
    let first = proposals_sent(&mut node.sent());
    assert_eq!(first.len(), 1, "the proposer proposed once");
    let (original, _) = first[0].clone();
    // Crash: what it sent never left the machine.
    drop(node);
    std::thread::sleep(Duration::from_millis(5)); // a new block would get a new time
    let mut node = open(&chain, dir.path(), Some(me));
    node.driver.on_tick().unwrap();
    let again = proposals_sent(&mut node.sent());
    assert!(!again.is_empty(), "the persisted proposal was not sent again after the restart");
    for (p, block) in &again {
        assert_eq!(*p, original, "a different proposal for the same height and round");
        let block = block.as_ref().expect("the proposal's block is sent with it");
        assert_eq!(block.id(), original.proposal.value_id);
    }
    // The height still completes with the re-sent proposal: two others prevote and
    // precommit it, and with our own votes that is a quorum.
    let id = Some(original.proposal.value_id);
    for i in (0..usize::from(VALIDATORS)).filter(|i| *i != me).take(2) {
        node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Prevote, 1, 0, id));
    }
    for i in (0..usize::from(VALIDATORS)).filter(|i| *i != me).take(2) {
        node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, 1, 0, id));
    }
    assert_eq!(node.tip(), 1);
}

/// The proposals in `cmds`, each with the block broadcast in the same batch for its value.
fn proposals_sent(cmds: &mut [Command]) -> Vec<(dpx_consensus::SignedProposal, Option<Block>)> {
    let mut blocks = Vec::new();
    let mut props = Vec::new();
    for c in cmds.iter() {
        let Command::Broadcast(NetMessage { kind: Some(kind) }) = c else { continue };
        match kind {
            Kind::Block(pb) => blocks.push(Block::decode(&pb.block, 1 << 24).unwrap()),
            Kind::Consensus(bytes) => {
                if let Ok(SignedMessage::Proposal(p)) = SignedMessage::decode(bytes) {
                    props.push(p);
                }
            }
            _ => {}
        }
    }
    props
        .into_iter()
        .map(|p| {
            let b = blocks.iter().find(|b| b.id() == p.proposal.value_id).cloned();
            (p, b)
        })
        .collect()
}
