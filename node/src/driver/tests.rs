//! Driver-level tests: a real driver on a real store in a temporary directory, fed network
//! input by hand, with the test playing the other validators (it holds all their keys) and
//! reading what the driver asks the network to send.

use std::sync::Arc;
use std::time::Duration;

use dpx_consensus::{
    ConsensusConfig, Height, Input, Proposal, Round, SafetyState, SignedMessage, Step,
    ValidatorIndex, Vote, VoteKind,
};
use dpx_crypto::{Hash, Keypair};
use dpx_genesis::Genesis;
use dpx_ledger::{Block, Header};
use libp2p::PeerId;
use tokio::sync::mpsc;

use dpx_app::admit::Refusal;

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
    timing_with(true)
}

fn timing_with(speculative_execution: bool) -> DriverTiming {
    DriverTiming {
        idle_block_interval: Duration::ZERO,
        min_block_interval: Duration::ZERO,
        speculative_execution,
        compact_proposals: true,
        // Tests call rebroadcast themselves when they want it.
        rebroadcast: Duration::from_hours(1),
        max_clock_drift: Duration::from_secs(10),
    }
}

/// A driver on the data directory `dir` (re-opened as it was after a restart), signing with
/// validator `me`'s key, or a follower when `me` is `None`.
fn open(chain: &Chain, dir: &std::path::Path, me: Option<usize>) -> Node {
    open_with(chain, dir, me.map(|i| chain.keys[i].clone()))
}

/// [`open`] with any key (one the genesis set does not hold, say).
fn open_with(chain: &Chain, dir: &std::path::Path, key: Option<Keypair>) -> Node {
    open_timed(chain, dir, key, timing())
}

/// [`open_with`] with the driver's knobs given.
fn open_timed(
    chain: &Chain,
    dir: &std::path::Path,
    key: Option<Keypair>,
    timing: DriverTiming,
) -> Node {
    let home = Home(dir.to_path_buf());
    let cfg = Config::new("t", "/ip4/127.0.0.1/tcp/1".into(), "127.0.0.1:2".into());
    let store = Arc::new(crate::node::open_store(&home, &chain.genesis, &cfg).unwrap());
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
        timing,
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
        self.next_block_by(chain, chain.keys[proposer].public(), txs)
    }

    /// [`Node::next_block`] proposed by any key.
    fn next_block_by(
        &self,
        chain: &Chain,
        proposer: dpx_crypto::PublicKey,
        txs: Vec<Vec<u8>>,
    ) -> (Block, Vec<u8>) {
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
            proposer,
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
    let mut b = crate::testing::made_up_block(height, vec![n.to_le_bytes().to_vec()]);
    b.header.chain_id = chain.chain_id().to_owned();
    b.header.time_ms = u64::from(n);
    b.header.proposer = Keypair::from_seed([201; 32]).public();
    b
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

/// The validator the compact-block tests run as.
const ME: usize = 0;

/// Validator [`ME`] on a fresh chain, and the proposer of height 1, round 0 (not [`ME`]).
fn validator_and_proposer() -> (Chain, tempfile::TempDir, Node, usize) {
    let chain = Chain::new();
    let dir = tempfile::tempdir().unwrap();
    let node = open(&chain, dir.path(), Some(ME));
    let p = node.proposer(1, 0).get();
    assert_ne!(p, ME);
    (chain, dir, node, p)
}

/// A peer sends the proposal's block first with the right header and transactions but
/// another parent certificate (whole, or compact with everything inline). Neither copy takes
/// the id's place; the proposer's block that follows is prevoted, and its certificate is the
/// one the commit stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_with_another_parent_certificate_does_not_take_its_place() {
    let (chain, _dir, mut node, _) = validator_and_proposer();
    // Height 1 first, so height 2's header names a parent certificate.
    node.decide_next(&chain, None);
    let p2 = node.proposer(2, 0).get();
    assert_ne!(p2, ME, "the test node must not propose height 2");
    let (real, cert) = node.next_block(&chain, p2, vec![state_changing_tx_n(&chain, 1, 0)]);
    assert!(!cert.is_empty());
    let mut other = cert.clone();
    other[0] ^= 1;
    node.block(junk_peer(), &real, &other, 0);
    let inline_all =
        super::compact::encode(&real, &other, |i| Some((Hash::digest(&real.txs[i]), true)));
    node.net(junk_peer(), Kind::Compact(inline_all));
    node.consensus(chain.peer(p2), proposal(&chain, p2, 2, 0, real.id()));
    assert!(!node.driver.blocks.holds(&real.id()), "a copy with another certificate was kept");
    node.block(chain.peer(p2), &real, &cert, 0);
    assert!(node.prevoted_for(&chain, ME, real.id()));
    for i in (0..usize::from(VALIDATORS)).filter(|&i| i != ME) {
        node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, 2, 0, Some(real.id())));
    }
    assert_eq!(node.tip(), 2);
    assert_eq!(node.driver.store.certificate(1).unwrap().unwrap(), cert, "the named certificate");
}

/// A peer that has seen the proposal's header sends it first with other transactions (the
/// block id is the header's hash). The real block that follows must still be taken, and the
/// proposal prevoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_with_the_right_header_and_other_transactions_does_not_take_its_place() {
    let (chain, _dir, mut node, p) = validator_and_proposer();
    let me = ME;
    let (real, cert) = node.next_block(&chain, p, vec![state_changing_tx_n(&chain, 1, 0)]);
    let forged =
        Block { header: real.header.clone(), txs: vec![state_changing_tx_n(&chain, 2, 0)] };
    assert_eq!(forged.id(), real.id());
    node.block(junk_peer(), &forged, &cert, 0);
    node.consensus(chain.peer(p), proposal(&chain, p, 1, 0, real.id()));
    assert!(!node.driver.blocks.holds(&real.id()), "the forged copy was not kept");
    node.block(chain.peer(p), &real, &cert, 0);
    assert!(node.prevoted_for(&chain, me, real.id()));
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
                crate::serve_sync::serve_sync(&honest.driver.store, &req, 1 << 20)
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
                crate::serve_sync::serve_sync(&honest.driver.store, &req, 1)
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
                        crate::serve_sync::serve_sync(
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
            // Only what travels inline is known here: enough for the empty blocks tests make.
            Kind::Compact(c) => blocks.push(rebuild(c, |_| None).expect("every tx inline")),
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

/// The block of a compact one, with `pool` giving the transactions sent by hash.
fn rebuild(c: &wire::CompactBlock, pool: impl Fn(&Hash) -> Option<Vec<u8>>) -> Option<Block> {
    let slots = super::compact::slots(c, usize::MAX).ok()?;
    let txs = slots
        .into_iter()
        .map(|s| match s {
            super::compact::Slot::Tx(t) => Some(t.as_ref().clone()),
            super::compact::Slot::Hash(h) => pool(&h),
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Block { header: Header::decode(&c.header, 1 << 20).ok()?, txs })
}

// ----- membership: a validator joins and one leaves by governance ----------------------------

/// A vote or proposal signed by `key` as member `index` of the set of its height.
fn signed(
    chain: &Chain,
    key: &Keypair,
    index: u32,
    kind: Option<VoteKind>,
    h: u64,
    id: Hash,
) -> SignedMessage {
    let (height, round, index) = (Height(h), Round(0), ValidatorIndex(index));
    match kind {
        Some(kind) => SignedMessage::Vote(
            Vote { kind, height, round, value_id: Some(id), validator: index }
                .sign(chain.chain_id(), key),
        ),
        None => SignedMessage::Proposal(
            Proposal { height, round, value_id: id, pol_round: None, proposer: index }
                .sign(chain.chain_id(), key),
        ),
    }
}

/// The peer ids in the last `SetPermitted` among `cmds`, if any.
fn last_permitted(cmds: &[Command]) -> Option<std::collections::BTreeSet<PeerId>> {
    cmds.iter().rev().find_map(|c| match c {
        Command::SetPermitted(s) => Some(s.clone()),
        _ => None,
    })
}

/// Consensus messages among `cmds` that `key` signed (not the ones relayed for others).
fn signed_by(cmds: &[Command], chain: &Chain, key: &Keypair) -> Vec<SignedMessage> {
    let mine = |m: &SignedMessage| {
        let (digest, sig) = match m {
            SignedMessage::Vote(v) => (v.vote.digest(chain.chain_id()), v.signature),
            SignedMessage::Proposal(p) => (p.proposal.digest(chain.chain_id()), p.signature),
        };
        key.public().verify_digest(&digest, &sig).is_ok()
    };
    cmds.iter()
        .filter_map(|c| match c {
            Command::Broadcast(NetMessage { kind: Some(Kind::Consensus(b)) }) => {
                SignedMessage::decode(b).ok().filter(mine)
            }
            _ => None,
        })
        .collect()
}

/// Issue 19: governance removes validator X and adds a new key Y from height 3 (one agency, so
/// the proposal executes when proposed, at height 1). From height 3 on, X's signed votes are
/// refused and do not count towards a quorum, Y's do; the node holding Y follows heights 1-2
/// without signing and signs from height 3; the p2p layer lets Y in once the change is
/// scheduled and drops X once its last height is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_validator_is_not_counted_and_a_joined_one_signs() {
    use dpx_contracts::{Operation, ProposalAction, TransactionBody, ValidatorChange};
    let chain = Chain::new();
    let (dir_f, dir_j) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut follower = open(&chain, dir_f.path(), None);
    let newcomer = Keypair::from_seed([5; 32]);
    let mut joiner = open_with(&chain, dir_j.path(), Some(newcomer.clone()));
    let removed = chain.keys[3].clone();
    let agency = Keypair::from_seed([100; 32]);
    let action = ProposalAction::UpdateValidators {
        changes: vec![
            ValidatorChange { key: removed.public(), power: 0, name: String::new() },
            ValidatorChange { key: newcomer.public(), power: 10, name: "Agency E".into() },
        ],
        effective_height: 3,
    };
    let tx = TransactionBody::new(chain.chain_id().to_owned(), 0, Operation::Propose { action })
        .sign(&agency)
        .encode();

    // Heights 1 and 2 under the genesis set, the same blocks on both nodes.
    for (h, txs) in [(1u64, vec![tx]), (2, Vec::new())] {
        let p = follower.proposer(h, 0).get();
        let (block, parent_cert) = follower.next_block(&chain, p, txs);
        let id = block.id();
        for node in [&mut follower, &mut joiner] {
            node.block(chain.peer(p), &block, &parent_cert, 0);
            node.consensus(chain.peer(p), proposal(&chain, p, h, 0, id));
            for i in 0..usize::from(VALIDATORS) {
                node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, h, 0, Some(id)));
            }
            assert_eq!(node.tip(), h, "height {h} was not decided");
        }
        let permitted = last_permitted(&follower.sent());
        let new_peer = p2p::peer_id(&newcomer.public());
        let store = &follower.driver.store;
        if h == 1 {
            let p = permitted.expect("scheduling a change updates the permitted peers");
            assert!(p.contains(&new_peer) && p.contains(&chain.peer(3)), "both, until height 3");
            // What `dpx validator pending` shows: the change, against the set before it.
            let pending = crate::membership::pending(store).unwrap();
            assert_eq!(pending.len(), 1);
            assert_eq!(pending[0].effective_height, 3);
            assert_eq!(pending[0].removed, vec![removed.public()]);
            let added: Vec<_> = pending[0].added.iter().map(|v| (v.key, v.name.as_str())).collect();
            assert_eq!(added, vec![(newcomer.public(), "Agency E")]);
            let now = crate::membership::set_at(store, 2).unwrap();
            assert!(now.iter().any(|v| v.key == removed.public()));
            assert!(crate::membership::set_at(store, 3).is_err(), "not decided at tip 1");
        } else {
            assert!(crate::membership::pending(store).unwrap().is_empty(), "3 is in force now");
            let next = crate::membership::set_at(store, 3).unwrap();
            assert!(next.iter().any(|v| v.key == newcomer.public() && v.name == "Agency E"));
            assert!(!next.iter().any(|v| v.key == removed.public()));
            // History stays readable: the genesis set validated height 1.
            let then = crate::membership::set_at(store, 1).unwrap();
            assert!(then.iter().any(|v| v.key == removed.public()));
            let p = permitted.expect("the change taking effect updates the permitted peers");
            assert!(p.contains(&new_peer) && !p.contains(&chain.peer(3)), "X is cut off");
        }
    }
    let signed_early = signed_by(&joiner.sent(), &chain, &newcomer);
    assert!(signed_early.is_empty(), "the newcomer signed before its height: {signed_early:?}");

    // Height 3: the new set.
    let set = follower.driver.validators.clone();
    assert!(set.index_of(&removed.public()).is_none());
    let y = set.index_of(&newcomer.public()).expect("the newcomer is in the set of height 3").0;
    let member = |k: &Keypair| set.index_of(&k.public()).map(|i| i.0);
    let stayers: Vec<&Keypair> = chain.keys[..3].iter().collect();
    let proposer = follower.proposer(3, 0);
    let block = if proposer.0 == y {
        // The newcomer proposes: take its block and proposal as it sends them.
        joiner.driver.on_tick().unwrap();
        let (p, b) = proposals_sent(&mut joiner.sent()).pop().expect("the newcomer proposes");
        let b = b.expect("with its block");
        let cert = follower.next_block(&chain, 0, Vec::new()).1;
        follower.block(p2p::peer_id(&newcomer.public()), &b, &cert, 0);
        follower.consensus(p2p::peer_id(&newcomer.public()), SignedMessage::Proposal(p));
        b
    } else {
        let k = stayers.iter().find(|k| member(k) == Some(proposer.0)).unwrap();
        let (b, cert) = follower.next_block_by(&chain, k.public(), Vec::new());
        for node in [&mut follower, &mut joiner] {
            node.block(p2p::peer_id(&k.public()), &b, &cert, 0);
            node.consensus(
                p2p::peer_id(&k.public()),
                signed(&chain, k, proposer.0, None, 3, b.id()),
            );
        }
        b
    };
    let id = block.id();
    // The newcomer signs at height 3 (a prevote, or its proposal).
    let from_joiner = signed_by(&joiner.sent(), &chain, &newcomer);
    assert!(
        from_joiner.iter().any(|m| m.height() == Height(3)),
        "the newcomer did not sign at its first height"
    );

    // X signs a precommit as it would have under the old set (its old index): refused.
    let before = follower.driver.shared.metrics.consensus_rejected.get();
    let old_index = chain.genesis.validator_set().unwrap().index_of(&removed.public()).unwrap().0;
    follower.consensus(
        chain.peer(3),
        signed(&chain, &removed, old_index, Some(VoteKind::Precommit), 3, id),
    );
    // ... and under every index of the new set: the signature never matches, refused too.
    for i in 0..4 {
        follower.consensus(
            chain.peer(3),
            signed(&chain, &removed, i, Some(VoteKind::Precommit), 3, id),
        );
    }
    assert_eq!(follower.driver.shared.metrics.consensus_rejected.get(), before + 5);
    // Two stayers precommit: with X's vote that would be 3 of 4 under the old set; X does not
    // count, so 20 of 40 is no quorum.
    for k in &stayers[..2] {
        let m = signed(&chain, k, member(k).unwrap(), Some(VoteKind::Precommit), 3, id);
        follower.consensus(p2p::peer_id(&k.public()), m);
    }
    assert_eq!(follower.tip(), 2, "a removed validator's vote was counted");
    // The newcomer's precommit completes the quorum.
    let m = signed(&chain, &newcomer, y, Some(VoteKind::Precommit), 3, id);
    follower.consensus(p2p::peer_id(&newcomer.public()), m);
    assert_eq!(follower.tip(), 3, "the newcomer's vote did not count");
}

/// Issue 19, key rotation: governance replaces validator X's key with X' from height 3 while
/// X's node runs with X' staged (`node_key.next.json`). The node signs heights 1-2 with X and
/// height 3 with X', never X' before its height nor X from it, and its status names the key
/// it signs with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_validator_switches_keys_at_the_effective_height() {
    use dpx_contracts::{Operation, ProposalAction, TransactionBody, ValidatorChange};
    let chain = Chain::new();
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (chain.keys[3].clone(), Keypair::from_seed([5; 32]));
    let mut rot = open(&chain, dir.path(), Some(3));
    rot.driver.stage_next_key(new.clone());
    let agency = Keypair::from_seed([100; 32]);
    let action = ProposalAction::UpdateValidators {
        changes: vec![
            ValidatorChange { key: old.public(), power: 0, name: String::new() },
            ValidatorChange { key: new.public(), power: 10, name: "Agency D (new key)".into() },
        ],
        effective_height: 3,
    };
    let tx = TransactionBody::new(chain.chain_id().to_owned(), 0, Operation::Propose { action })
        .sign(&agency)
        .encode();
    let heights = |msgs: &[SignedMessage]| {
        msgs.iter().map(|m| m.height().0).collect::<std::collections::BTreeSet<u64>>()
    };

    // Heights 1 and 2 under the genesis set: the others propose and precommit.
    let mut sent = Vec::new();
    for (h, txs) in [(1u64, vec![tx]), (2, Vec::new())] {
        let p = rot.proposer(h, 0).get();
        let (block, parent_cert) = rot.next_block(&chain, p, txs);
        let id = block.id();
        rot.block(chain.peer(p), &block, &parent_cert, 0);
        rot.consensus(chain.peer(p), proposal(&chain, p, h, 0, id));
        for i in 0..3 {
            rot.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, h, 0, Some(id)));
        }
        assert_eq!(rot.tip(), h, "height {h} was not decided");
        sent.extend(rot.sent());
    }
    assert_eq!(heights(&signed_by(&sent, &chain, &old)), [1, 2].into(), "X signs 1 and 2");
    assert!(signed_by(&sent, &chain, &new).is_empty(), "X' signed before its height");
    assert_eq!(rot.driver.shared.status.read().signing_key, Some(old.public()));

    // Height 3: the set holds X', not X.
    let set = rot.driver.validators.clone();
    assert!(set.index_of(&old.public()).is_none());
    let me = set.index_of(&new.public()).expect("X' validates height 3").0;
    let proposer = rot.proposer(3, 0);
    if proposer.0 == me {
        rot.driver.on_tick().unwrap();
    } else {
        let k =
            chain.keys[..3].iter().find(|k| set.index_of(&k.public()) == Some(proposer)).unwrap();
        let (b, cert) = rot.next_block_by(&chain, k.public(), Vec::new());
        rot.block(p2p::peer_id(&k.public()), &b, &cert, 0);
        rot.consensus(p2p::peer_id(&k.public()), signed(&chain, k, proposer.0, None, 3, b.id()));
    }
    let sent = rot.sent();
    assert_eq!(heights(&signed_by(&sent, &chain, &new)), [3].into(), "X' signs height 3");
    assert!(signed_by(&sent, &chain, &old).is_empty(), "X signed after it was rotated out");
    assert_eq!(rot.driver.shared.status.read().signing_key, Some(new.public()));
}

// ----- speculative execution (issue 16, item 4) ----------------------------------------------

/// A transaction that changes the state: the only agency proposes a validator change far
/// ahead (one agency: it executes when proposed). `tag` makes the action differ; `nonce` is
/// the agency's.
fn state_changing_tx(chain: &Chain, tag: u64) -> Vec<u8> {
    state_changing_tx_n(chain, tag, tag)
}

fn state_changing_tx_n(chain: &Chain, tag: u64, nonce: u64) -> Vec<u8> {
    use dpx_contracts::{Operation, ProposalAction, TransactionBody, ValidatorChange};
    let action = ProposalAction::UpdateValidators {
        changes: vec![ValidatorChange {
            key: Keypair::from_seed([50 + tag as u8; 32]).public(),
            power: 1,
            name: format!("Agency {tag}"),
        }],
        effective_height: 1000 + tag,
    };
    TransactionBody::new(chain.chain_id().to_owned(), nonce, Operation::Propose { action })
        .sign(&Keypair::from_seed([100; 32]))
        .encode()
}

/// A valid proposal is executed while it is voted on, and the commit uses that work: the same
/// state root and receipts as a node that executes only after the decision. Covers the others'
/// proposals (speculated on once validated) and our own (as it is made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_proposal_is_executed_before_its_decision_with_the_same_result() {
    let chain = Chain::new();
    let (dir_s, dir_p) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut spec = open_timed(&chain, dir_s.path(), Some(chain.keys[0].clone()), timing_with(true));
    let mut plain = open_timed(&chain, dir_p.path(), None, timing_with(false));
    let mut nonce = 0;
    let mut own = 0;
    for h in 1..=4u64 {
        let p = spec.proposer(h, 0).get();
        let (block, cert, signed_proposal) = if p == 0 {
            // Our own proposal (an empty mempool: an empty block) is speculated on as made.
            own += 1;
            let cert = spec.next_block(&chain, 0, Vec::new()).1;
            spec.driver.on_tick().unwrap();
            let (sp, b) = proposals_sent(&mut spec.sent()).pop().expect("we propose");
            let b = b.expect("with its block");
            assert_eq!(spec.driver.speculator.current(), Some(b.id()));
            (b, cert, SignedMessage::Proposal(sp))
        } else {
            let (b, cert) = spec.next_block(&chain, p, vec![state_changing_tx(&chain, nonce)]);
            nonce += 1;
            spec.block(chain.peer(p), &b, &cert, 0);
            let sp = proposal(&chain, p, h, 0, b.id());
            spec.consensus(chain.peer(p), sp);
            // Validated and prevoted: executing, not yet decided.
            assert_eq!(spec.tip(), h - 1);
            assert_eq!(spec.driver.speculator.current(), Some(b.id()), "height {h}");
            (b, cert, sp)
        };
        let id = block.id();
        plain.block(chain.peer(p), &block, &cert, 0);
        plain.consensus(chain.peer(p), signed_proposal);
        for i in 0..usize::from(VALIDATORS) {
            let v = vote(&chain, i, VoteKind::Precommit, h, 0, Some(id));
            if i != 0 {
                spec.consensus(chain.peer(i), v);
            }
            plain.consensus(chain.peer(i), v);
        }
        assert_eq!((spec.tip(), plain.tip()), (h, h), "height {h} was not decided");
        let (s, q) = (&spec.driver.store, &plain.driver.store);
        assert_eq!(s.state_root(h).unwrap(), q.state_root(h).unwrap(), "height {h}");
        assert_eq!(s.block_receipts_hash(h).unwrap(), q.block_receipts_hash(h).unwrap());
    }
    assert!(own <= 2 && nonce >= 2, "{own} own proposals");
    let m = &spec.driver.shared.metrics;
    assert_eq!(m.speculation_used.get(), 4, "every height used its speculation");
    assert_eq!(m.speculation_discarded.get() + m.speculation_failed.get(), 0);
    assert_eq!(plain.driver.shared.metrics.speculation_used.get(), 0, "off means off");
    // The transactions took effect (a governance proposal each).
    let store = &spec.driver.store;
    assert_ne!(store.state_root(4).unwrap(), store.state_root(0).unwrap());
}

/// The speculation was for a proposal that lost its round: another block is decided in a
/// later round. The commit waits for the worker, throws its work away and executes the decided
/// block, so the store holds exactly what a node that never saw the loser holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_speculation_on_a_block_that_is_not_decided_is_thrown_away() {
    let chain = Chain::new();
    let set = chain.genesis.validator_set().unwrap();
    let proposer = |r: u32| set.selector().proposer_index(Height(1), Round(r)).get();
    let (p0, p1) = (proposer(0), proposer(1));
    // This node proposes neither round.
    let me = (0..usize::from(VALIDATORS)).find(|&i| i != p0 && i != p1).unwrap();
    let (dir_s, dir_r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut spec =
        open_timed(&chain, dir_s.path(), Some(chain.keys[me].clone()), timing_with(true));
    let mut reference = open_timed(&chain, dir_r.path(), None, timing_with(false));
    // Round 0: a valid block with a state-changing transaction is proposed and speculated on.
    let (loser, cert) = spec.next_block(&chain, p0, vec![state_changing_tx_n(&chain, 5, 0)]);
    spec.block(chain.peer(p0), &loser, &cert, 0);
    spec.consensus(chain.peer(p0), proposal(&chain, p0, 1, 0, loser.id()));
    assert_eq!(spec.driver.speculator.current(), Some(loser.id()));
    // Round 1: another proposer's block, with another transaction, gets the precommits.
    let (winner, cert1) = spec.next_block(&chain, p1, vec![state_changing_tx(&chain, 0)]);
    assert_ne!(winner.id(), loser.id());
    for (node, skip) in [(&mut spec, Some(me)), (&mut reference, None)] {
        node.block(chain.peer(p1), &winner, &cert1, 1);
        node.consensus(chain.peer(p1), proposal(&chain, p1, 1, 1, winner.id()));
        for i in (0..usize::from(VALIDATORS)).filter(|&i| Some(i) != skip) {
            let v = vote(&chain, i, VoteKind::Precommit, 1, 1, Some(winner.id()));
            node.consensus(chain.peer(i), v);
        }
    }
    assert_eq!((spec.tip(), reference.tip()), (1, 1), "round 1 decided");
    assert_eq!(spec.driver.store.header(1).unwrap().unwrap().id(), winner.id());
    let (s, r) = (&spec.driver.store, &reference.driver.store);
    assert_eq!(s.state_root(1).unwrap(), r.state_root(1).unwrap(), "nothing of the loser stays");
    assert_eq!(s.block_receipts_hash(1).unwrap(), r.block_receipts_hash(1).unwrap());
    assert_ne!(s.state_root(1).unwrap(), s.state_root(0).unwrap(), "the winner's tx applied");
    let m = &spec.driver.shared.metrics;
    // Either the loser's work was dropped at the commit, or it had finished and the winner
    // was speculated on in its place; the loser's result was never committed.
    assert_eq!(m.speculation_used.get() + m.speculation_discarded.get(), 1);
    assert_eq!(m.speculation_failed.get(), 0);
    assert!(spec.driver.speculator.current().is_none(), "settled at the commit");
}

// ----- compact proposal blocks (issue 16, item 2) --------------------------------------------

impl Node {
    /// Admit `txs` as relayed by a peer (already through the stateless checks).
    fn admit_relayed(&mut self, txs: Vec<Vec<u8>>) {
        let checked = self.driver.shared.checker.check_batch(txs);
        let txs = checked.into_iter().map(Result::unwrap).collect();
        let msg = super::DriverMsg::Admit { txs, from_peer: true, reply: None };
        self.driver.on_request(msg).unwrap();
    }

    /// A message from a peer, then what the driver's loop does next (nothing is queued for
    /// admission here): ask for what compact blocks lack.
    fn net(&mut self, from: PeerId, kind: Kind) {
        self.driver.on_net(from, NetMessage { kind: Some(kind) }).unwrap();
        self.driver.send_fetches();
    }

    /// Whether this node prevoted for `id` among what it sent since the last call.
    fn prevoted_for(&mut self, chain: &Chain, me: usize, id: Hash) -> bool {
        signed_by(&self.sent(), chain, &chain.keys[me]).iter().any(|m| {
            matches!(m, SignedMessage::Vote(v)
                if v.vote.kind == VoteKind::Prevote && v.vote.value_id == Some(id))
        })
    }
}

/// The `TxFetch`es among `cmds`, with the peer each goes to.
fn fetches(cmds: &[Command]) -> Vec<(PeerId, wire::TxFetch)> {
    cmds.iter()
        .filter_map(|c| match c {
            Command::Send(p, NetMessage { kind: Some(Kind::TxFetch(f)) }) => Some((*p, f.clone())),
            _ => None,
        })
        .collect()
}

fn all_by_hash(block: &Block, cert: &[u8]) -> wire::CompactBlock {
    super::compact::encode(block, cert, |_| None)
}

/// A proposal's block arrives as hashes; the node holds one of its two transactions. It asks
/// the sender for the other, ignores bytes that are not the ones named (from anyone), and
/// once the real bytes come it validates, prevotes for the block and commits it whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_is_rebuilt_and_what_the_pool_lacks_is_fetched() {
    let (chain, _dir, mut node, p) = validator_and_proposer();
    let me = ME;
    let (tx1, tx2) = (state_changing_tx_n(&chain, 1, 0), state_changing_tx_n(&chain, 2, 1));
    node.admit_relayed(vec![tx1.clone()]);
    let (block, cert) = node.next_block(&chain, p, vec![tx1, tx2.clone()]);
    let id = block.id();
    node.sent();
    node.net(chain.peer(p), Kind::Compact(all_by_hash(&block, &cert)));
    let asked = fetches(&node.sent());
    assert_eq!(asked.len(), 1, "one fetch");
    assert_eq!(asked[0].0, chain.peer(p), "asked of the sender");
    assert_eq!(asked[0].1.hashes, Hash::digest(&tx2).as_bytes().to_vec(), "only the missing tx");
    assert_eq!(asked[0].1.block_id, id.as_bytes().to_vec());
    assert!(!node.driver.blocks.holds(&id));
    node.consensus(chain.peer(p), proposal(&chain, p, 1, 0, id));
    assert!(!node.prevoted_for(&chain, me, id), "no block yet, no vote for it");
    // Other bytes, from the sender or anyone, complete nothing.
    for from in [chain.peer(p), junk_peer()] {
        let fill = wire::TxFill { block_id: id.as_bytes().to_vec(), txs: vec![b"junk".to_vec()] };
        node.net(from, Kind::TxFill(fill));
        assert!(!node.driver.blocks.holds(&id));
    }
    let fill = wire::TxFill { block_id: id.as_bytes().to_vec(), txs: vec![tx2] };
    node.net(chain.peer(p), Kind::TxFill(fill));
    assert!(node.driver.blocks.contains(&id), "rebuilt and named by the proposal");
    assert!(node.prevoted_for(&chain, me, id), "validated and prevoted");
    for i in (0..usize::from(VALIDATORS)).filter(|&i| i != me) {
        node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, 1, 0, Some(id)));
    }
    assert_eq!(node.tip(), 1);
    assert_eq!(node.driver.store.block(1).unwrap().unwrap(), block, "the very block, whole");
    let m = &node.driver.shared.metrics;
    assert_eq!((m.compact_blocks_incomplete.get(), m.compact_txs_fetched.get()), (1, 1));
}

/// The missing transaction comes by the mempool relay before any fetch answer: the block is
/// completed from the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_transaction_completes_a_waiting_compact_block() {
    let (chain, _dir, mut node, p) = validator_and_proposer();
    let me = ME;
    let (tx1, tx2) = (state_changing_tx_n(&chain, 1, 0), state_changing_tx_n(&chain, 2, 1));
    let (block, cert) = node.next_block(&chain, p, vec![tx1.clone(), tx2.clone()]);
    let id = block.id();
    node.consensus(chain.peer(p), proposal(&chain, p, 1, 0, id));
    node.net(chain.peer(p), Kind::Compact(all_by_hash(&block, &cert)));
    assert_eq!(fetches(&node.sent())[0].1.hashes.len(), 64, "both asked for");
    node.admit_relayed(vec![tx1]);
    assert!(!node.driver.blocks.holds(&id));
    node.admit_relayed(vec![tx2]);
    assert!(node.driver.blocks.contains(&id), "completed by the relay");
    assert!(node.prevoted_for(&chain, me, id));
}

/// A compact block whose transactions are not the ones its header commits to (a lying
/// proposer, or a peer posing as one) is refused, and the proposal naming it gets no vote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_that_does_not_match_its_header_is_refused() {
    let (chain, _dir, mut node, p) = validator_and_proposer();
    let me = ME;
    let (tx1, tx2) = (state_changing_tx_n(&chain, 1, 0), state_changing_tx_n(&chain, 2, 1));
    node.admit_relayed(vec![tx1.clone(), tx2.clone()]);
    let (honest, cert) = node.next_block(&chain, p, vec![tx1.clone()]);
    let lie = Block { header: honest.header.clone(), txs: vec![tx2] };
    let refused = node.driver.shared.metrics.proposal_blocks_refused.get();
    node.consensus(chain.peer(p), proposal(&chain, p, 1, 0, honest.id()));
    node.net(chain.peer(p), Kind::Compact(all_by_hash(&lie, &cert)));
    assert!(!node.driver.blocks.holds(&honest.id()));
    assert!(!node.prevoted_for(&chain, me, honest.id()));
    assert_eq!(node.driver.shared.metrics.proposal_blocks_refused.get(), refused + 1);
    // More transactions than a block may hold: refused before any lookup.
    let mut big = all_by_hash(&honest, &cert);
    big.tx_count = u32::MAX;
    node.net(chain.peer(p), Kind::Compact(big));
    assert_eq!(node.driver.shared.metrics.proposal_blocks_refused.get(), refused + 2);
    // Inline bytes beyond the block's byte limit: refused before anything is kept.
    let limit = dpx_app::execute::params(&node.driver.store).unwrap().encoded_max();
    // (with a transaction nobody has beside it, so it would wait for a fetch if kept)
    let huge = Block { header: honest.header.clone(), txs: vec![vec![7; limit + 1], vec![8]] };
    let inline = super::compact::encode(&huge, &cert, |i| Some((Hash::digest(&[8]), i == 0)));
    node.net(chain.peer(p), Kind::Compact(inline));
    assert_eq!(node.driver.shared.metrics.proposal_blocks_refused.get(), refused + 3);
    assert!(node.driver.partials.is_empty());
    assert!(fetches(&node.sent()).is_empty(), "nothing asked for a refused block");
    // The honest block still goes through.
    node.net(chain.peer(p), Kind::Compact(all_by_hash(&honest, &cert)));
    assert!(node.prevoted_for(&chain, me, honest.id()));
}

/// A peer sends the proposal's header first with hashes nobody has (or that are not the
/// block's). The proposer's own compact block that follows is still rebuilt and prevoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_compact_copy_does_not_shut_out_the_proposers() {
    let (chain, _dir, mut node, p) = validator_and_proposer();
    let me = ME;
    let tx = state_changing_tx_n(&chain, 1, 0);
    node.admit_relayed(vec![tx.clone()]);
    let (real, cert) = node.next_block(&chain, p, vec![tx]);
    let forged = Block { header: real.header.clone(), txs: vec![b"nobody has this".to_vec()] };
    node.consensus(chain.peer(p), proposal(&chain, p, 1, 0, real.id()));
    node.net(junk_peer(), Kind::Compact(all_by_hash(&forged, &cert)));
    assert_eq!(fetches(&node.sent()).len(), 1, "the forged copy waits for its fetch");
    node.net(chain.peer(p), Kind::Compact(all_by_hash(&real, &cert)));
    assert!(node.driver.blocks.contains(&real.id()));
    assert!(node.prevoted_for(&chain, me, real.id()));
}

/// Our own proposal goes out compact: what was pooled a while ago by hash, what was just
/// admitted inline. A peer holding the older transaction rebuilds it without asking, and a
/// peer asking for a transaction of it is answered with the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_proposal_goes_compact_with_the_freshest_inline_and_fetches_are_served() {
    let chain = Chain::new();
    let (dir, dir_f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let me = open(&chain, dir.path(), None).proposer(1, 0).get();
    let mut node = open(&chain, dir.path(), Some(me));
    let mut follower = open(&chain, dir_f.path(), None);
    let (tx1, tx2) = (state_changing_tx_n(&chain, 1, 0), state_changing_tx_n(&chain, 2, 1));
    node.admit_relayed(vec![tx1.clone()]);
    follower.admit_relayed(vec![tx1.clone()]);
    std::thread::sleep(super::compact::INLINE_YOUNGER_THAN + Duration::from_millis(10));
    node.admit_relayed(vec![tx2.clone()]);
    node.sent();
    node.driver.on_tick().unwrap();
    let sent = node.sent();
    let compact = sent
        .iter()
        .find_map(|c| match c {
            Command::Broadcast(NetMessage { kind: Some(Kind::Compact(c)) }) => Some(c.clone()),
            _ => None,
        })
        .expect("the proposal's block goes compact");
    assert!(
        !sent
            .iter()
            .any(|c| matches!(c, Command::Broadcast(NetMessage { kind: Some(Kind::Block(_)) })))
    );
    assert_eq!(compact.tx_count, 2);
    assert_eq!(compact.hashes, Hash::digest(&tx1).as_bytes().to_vec(), "the older by hash");
    assert_eq!(
        (compact.inline_positions.clone(), compact.inline_txs.clone()),
        (vec![1], vec![tx2.clone()])
    );
    let block = rebuild(&compact, |h| (*h == Hash::digest(&tx1)).then(|| tx1.clone())).unwrap();
    let id = block.id();
    follower.net(chain.peer(me), Kind::Compact(compact));
    assert!(follower.driver.blocks.holds(&id), "rebuilt from the pool and the inline bytes");
    assert!(fetches(&follower.sent()).is_empty());
    // A fetch is answered from our block (tx1 by hash, tx2 inline), unknown hashes left out.
    let mut hashes = Hash::digest(&tx1).as_bytes().to_vec();
    hashes.extend_from_slice(Hash::digest(b"unknown").as_bytes());
    hashes.extend_from_slice(Hash::digest(&tx2).as_bytes());
    let fetch = wire::TxFetch { block_id: id.as_bytes().to_vec(), hashes };
    node.net(chain.peer((me + 1) % 4), Kind::TxFetch(fetch));
    let fill = node
        .sent()
        .into_iter()
        .find_map(|c| match c {
            Command::Send(to, NetMessage { kind: Some(Kind::TxFill(f)) }) => Some((to, f)),
            _ => None,
        })
        .expect("answered");
    assert_eq!(fill.0, chain.peer((me + 1) % 4));
    assert_eq!(fill.1.txs, vec![tx1.clone(), tx2.clone()]);
    // The proposal is published for the p2p task, which answers the same without the driver.
    let f = wire::TxFetch {
        block_id: id.as_bytes().to_vec(),
        hashes: [Hash::digest(&tx1).0, Hash::digest(&tx2).0].concat(),
    };
    match node.driver.shared.own_blocks.answer(&f) {
        crate::serve_fetch::Answer::Ours(job) => assert_eq!(job.fill(), fill.1),
        other => panic!("our proposal is not published: {other:?}"),
    }
    // Asking for one transaction many times gets it once: an answer never outgrows the block.
    let repeated = wire::TxFetch {
        block_id: id.as_bytes().to_vec(),
        hashes: Hash::digest(&tx1).as_bytes().repeat(1000),
    };
    node.net(chain.peer(1), Kind::TxFetch(repeated));
    let fills: Vec<wire::TxFill> = node
        .sent()
        .into_iter()
        .filter_map(|c| match c {
            Command::Send(_, NetMessage { kind: Some(Kind::TxFill(f)) }) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(fills.len(), 1);
    assert_eq!(fills[0].txs, vec![tx1]);
    // Broken hashes, or a block we do not hold (even for transactions in our pool), get no
    // answer.
    let bad = wire::TxFetch { block_id: id.as_bytes().to_vec(), hashes: vec![0; 33] };
    node.net(chain.peer(1), Kind::TxFetch(bad));
    let elsewhere =
        wire::TxFetch { block_id: vec![9; 32], hashes: Hash::digest(&tx2).as_bytes().to_vec() };
    node.net(chain.peer(1), Kind::TxFetch(elsewhere));
    assert!(node.sent().is_empty());
}

/// The driver's loop: a compact block arrives while the relayed transaction it names waits in
/// the admission queue. The queue is admitted first, so the block is rebuilt and prevoted
/// without asking the proposer for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_relays_complete_a_compact_block_before_any_fetch() {
    let (chain, _dir, node, p) = validator_and_proposer();
    let me = ME;
    let tx = state_changing_tx_n(&chain, 1, 0);
    let (block, cert) = node.next_block(&chain, p, vec![tx.clone()]);
    let id = block.id();
    let (in_tx, in_rx) = mpsc::channel(16);
    let (req_tx, req_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let checked = node.driver.shared.checker.check_batch(vec![tx]);
    let txs = checked.into_iter().map(Result::unwrap).collect();
    req_tx.send(super::DriverMsg::Admit { txs, from_peer: true, reply: None }).await.unwrap();
    for kind in [
        Kind::Consensus(proposal(&chain, p, 1, 0, id).encode()),
        Kind::Compact(all_by_hash(&block, &cert)),
    ] {
        let msg = NetMessage { kind: Some(kind) };
        in_tx.send(p2p::Inbound::Message { from: chain.peer(p), msg }).await.unwrap();
    }
    let Node { driver, mut net } = node;
    let task = tokio::spawn(driver.run(in_rx, req_rx, stop_rx));
    let mut sent = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let prevoted = loop {
        let Ok(Some(cmd)) = tokio::time::timeout_at(deadline, net.recv()).await else {
            break false;
        };
        sent.push(cmd);
        let mine = signed_by(&sent, &chain, &chain.keys[me]);
        if mine.iter().any(|m| {
            matches!(m, SignedMessage::Vote(v)
                if v.vote.kind == VoteKind::Prevote && v.vote.value_id == Some(id))
        }) {
            break true;
        }
    };
    stop_tx.send(true).unwrap();
    task.await.unwrap().unwrap();
    assert!(prevoted, "no prevote for the compact block");
    assert!(fetches(&sent).is_empty(), "fetched what the admission queue held");
}

/// A proposer that names a transaction nobody else has and never answers the fetch costs
/// only its round: at the propose timeout the node prevotes nil, and the next round's block
/// is decided and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_that_never_answers_a_fetch_costs_only_its_round() {
    let (chain, _dir, mut node, p) = validator_and_proposer();
    let p1 = node.proposer(1, 1).get();
    assert_ne!(p1, ME, "the test node must not propose round 1");
    let (withheld, cert) = node.next_block(&chain, p, vec![state_changing_tx_n(&chain, 1, 0)]);
    node.consensus(chain.peer(p), proposal(&chain, p, 1, 0, withheld.id()));
    node.net(chain.peer(p), Kind::Compact(all_by_hash(&withheld, &cert)));
    assert_eq!(fetches(&node.sent()).len(), 1);
    // No answer ever comes; the propose timeout fires.
    let timeout = Input::TimeoutFired { height: Height(1), round: Round(0), step: Step::Propose };
    let out = node.driver.core.handle(timeout).unwrap();
    node.driver.execute(out).unwrap();
    let nil = signed_by(&node.sent(), &chain, &chain.keys[ME]).iter().any(|m| {
        matches!(m, SignedMessage::Vote(v)
            if v.vote.kind == VoteKind::Prevote && v.vote.round == Round(0) && v.vote.value_id.is_none())
    });
    assert!(nil, "no nil prevote at the propose timeout");
    // Round 1: another proposer's block, whole, is decided.
    let (next, cert1) = node.next_block(&chain, p1, vec![state_changing_tx_n(&chain, 2, 0)]);
    node.block(chain.peer(p1), &next, &cert1, 1);
    node.consensus(chain.peer(p1), proposal(&chain, p1, 1, 1, next.id()));
    for i in (0..usize::from(VALIDATORS)).filter(|&i| i != ME) {
        node.consensus(chain.peer(i), vote(&chain, i, VoteKind::Precommit, 1, 1, Some(next.id())));
    }
    assert_eq!(node.tip(), 1);
    assert_eq!(node.driver.store.header(1).unwrap().unwrap().id(), next.id());
}

/// `compact_proposals = false` sends our proposal's block whole (the comparison setting), and
/// such a node still takes a compact block from a peer: a mixed network works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_compact_proposals_off_blocks_go_whole_and_compact_ones_are_still_taken() {
    let chain = Chain::new();
    let (dir, dir_f) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let me = open(&chain, dir.path(), None).proposer(1, 0).get();
    let whole = DriverTiming { compact_proposals: false, ..timing() };
    let mut node = open_timed(&chain, dir.path(), Some(chain.keys[me].clone()), whole);
    node.driver.on_tick().unwrap();
    let sent = node.sent();
    let kinds = |c: &Command| match c {
        Command::Broadcast(NetMessage { kind: Some(Kind::Block(_)) }) => 1,
        Command::Broadcast(NetMessage { kind: Some(Kind::Compact(_)) }) => 2,
        _ => 0,
    };
    assert!(sent.iter().any(|c| kinds(c) == 1), "the block went whole");
    assert!(!sent.iter().any(|c| kinds(c) == 2), "and not compact");
    // A follower set to whole blocks rebuilds a compact one all the same.
    let other = (me + 1) % usize::from(VALIDATORS);
    let mut follower = open_timed(&chain, dir_f.path(), Some(chain.keys[other].clone()), whole);
    let p = follower.proposer(1, 0).get();
    let tx = state_changing_tx_n(&chain, 1, 0);
    follower.admit_relayed(vec![tx.clone()]);
    let (block, cert) = follower.next_block(&chain, p, vec![tx]);
    follower.net(chain.peer(p), Kind::Compact(all_by_hash(&block, &cert)));
    assert!(follower.driver.blocks.holds(&block.id()));
}

/// On a consensus-only chain whose blocks are smaller than the largest payload admission
/// takes, a payload no block could hold is refused at admission: it would never be reaped
/// and would hold up every payload pooled behind it (they share one pseudo-account).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opaque_payload_larger_than_a_block_is_refused_at_admission() {
    let mut chain = Chain::new();
    chain.genesis.consensus_only = true;
    chain.genesis.app.params.max_tx_bytes = 1024;
    chain.genesis.app.params.max_block_bytes = 4096;
    let dir = tempfile::tempdir().unwrap();
    let mut node = open(&chain, dir.path(), Some(0));
    let checked = node.driver.shared.checker.check_batch(vec![vec![1; 5000], vec![2; 4096]]);
    let txs = checked.into_iter().map(Result::unwrap).collect();
    let results = node.driver.admit(txs, false);
    assert_eq!(results[0], Err(Refusal::PayloadSize { len: 5000, max: 4096 }));
    assert!(results[1].is_ok(), "a payload of a whole block fits: {:?}", results[1]);
    assert_eq!(node.driver.mempool.len(), 1);
}
