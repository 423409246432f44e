//! A seeded, deterministic simulator of a dpx validator cluster.
//!
//! Simulated time, a faulty network (`network.rs`), crashes and restarts from the persisted
//! [`SafetyState`], byzantine validators (`byzantine/`), and the safety checker
//! (`invariants.rs`) run after every event. A run has a safety phase (faults on) and a liveness
//! phase (network healed, crashed nodes restarted) in which every honest validator must decide
//! new heights within a bounded simulated time. Everything is drawn from one seed; the same
//! seed gives the same trace, whose hash [`Outcome::trace_hash`] checks that.

#![allow(dead_code)]

pub mod byzantine;
mod driver;
pub mod invariants;
pub mod network;

use std::collections::{BTreeMap, BTreeSet};

use dpx_consensus::{
    Consensus, ConsensusConfig, Error, Hash, Height, Input, Output, Round, SafetyState,
    SignedMessage, SignedProposal, SignedVote, Step, TimeoutConfig, Validator, ValidatorIndex,
    ValidatorSet, Vote, VoteKind,
};
use dpx_crypto::{Domain, HashWriter, Keypair};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use byzantine::{Behaviour, ByzCtx, Send};
use invariants::{SafetyChecker, Violation};
use network::NetConfig;

pub const CHAIN: &str = "dpx-sim";
const GOSSIP_EVERY_MS: u64 = 250;
const TICK_EVERY_MS: u64 = 100;
/// Each gossip tick a validator hears relays from at most this many peers, drawn at random
/// (all of them in the small shapes): with 100 validators, a message that a third of them
/// lack reaches each of those from a few relays, not from every holder.
const GOSSIP_FANOUT: usize = 6;

/// A cluster shape: voting powers, and which validators are byzantine.
#[derive(Debug, Clone)]
pub struct Shape {
    pub name: &'static str,
    pub powers: Vec<u64>,
    pub byzantine: Vec<usize>,
}

impl Shape {
    pub fn n4f1() -> Self {
        Self { name: "n4f1", powers: vec![1; 4], byzantine: vec![3] }
    }
    pub fn n7f2() -> Self {
        Self { name: "n7f2", powers: vec![1; 7], byzantine: vec![5, 6] }
    }
    /// Total 13: byzantine power 4 < 13/3.
    pub fn weighted() -> Self {
        Self { name: "weighted", powers: vec![4, 3, 2, 2, 1, 1], byzantine: vec![1, 5] }
    }
    /// 100 equal validators, 33 byzantine (33 < 100/3): every third one, so byzantine
    /// proposers come up as often as the selector gives them turns.
    pub fn n100() -> Self {
        Self { name: "n100", powers: vec![1; 100], byzantine: (0..33).map(|k| 3 * k + 1).collect() }
    }
}

/// What the byzantine validators do in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    None,
    Silent,
    Equivocator,
    Twins,
    Garbage,
}

impl Attack {
    pub const ALL: [Self; 5] =
        [Self::None, Self::Silent, Self::Equivocator, Self::Twins, Self::Garbage];
}

/// The result of one run.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub shape: &'static str,
    pub attack: Attack,
    pub trace_hash: Hash,
    pub violations: Vec<Violation>,
    pub live: bool,
    pub heights_decided: u64,
    pub refused: BTreeMap<String, u64>,
    pub evidence: u64,
    pub crashes: u64,
    pub events: u64,
    /// Messages delivered (to any instance, byzantine included), and to honest instances.
    pub delivered: u64,
    pub delivered_to_honest: u64,
    /// Messages put on the wire (before loss).
    pub sent: u64,
    /// Of which: relayed by the gossip ticks, and sent by byzantine instances.
    pub sent_by_gossip: u64,
    pub sent_by_byzantine: u64,
    /// `decided_at_ms[k]`: simulated time at which every honest instance had committed
    /// height k + 1.
    pub decided_at_ms: Vec<u64>,
    /// Simulated time when the run stopped.
    pub end_ms: u64,
    /// Each instance's final state, for failure reports.
    pub final_views: Vec<String>,
}

impl Outcome {
    /// One line to reproduce a failure.
    pub fn describe(&self) -> String {
        format!(
            "seed {} shape {} attack {:?}: live={} heights={} violations={:?} (reproduce: DPX_SIM_SEED={} DPX_SIM_SHAPE={})\n  final: {:#?}",
            self.seed,
            self.shape,
            self.attack,
            self.live,
            self.heights_decided,
            self.violations.iter().map(ToString::to_string).collect::<Vec<_>>(),
            self.seed,
            self.shape,
            self.final_views
        )
    }
}

#[derive(Debug)]
enum Role {
    Honest,
    /// An honest core under a key shared with another instance (counts as byzantine).
    Twin(usize),
    Byzantine(Box<dyn Behaviour>),
}

#[derive(Debug)]
struct Instance {
    validator: usize,
    role: Role,
    core: Option<Consensus>,
    incarnation: u64,
    /// The durable store: the last PersistSafety, and the committed height.
    disk: Option<SafetyState>,
    committed: Height,
    /// What this instance relays per height: every message it sent or accepted, keyed by its
    /// encoding. The paper assumes this gossip property (a message received by a correct
    /// process eventually reaches every correct process); without it an equivocator that
    /// talks to one side only could stall the other side forever.
    gossip: BTreeMap<Height, BTreeMap<Vec<u8>, Relayed>>,
    proposals: BTreeMap<(Height, Hash), SignedProposal>,
}

/// A message an instance relays, and when it last sent it to each instance.
#[derive(Debug)]
struct Relayed {
    msg: SignedMessage,
    /// `sent_at[j]`: simulated time + 1 of the last send to instance `j`; 0 for never.
    sent_at: Vec<u64>,
    /// When this instance got it (received, or signed it).
    since: u64,
}

impl Relayed {
    fn new(msg: SignedMessage, instances: usize, now: u64) -> Self {
        Self { msg, sent_at: vec![0; instances], since: now }
    }
}

impl Instance {
    fn role_name(&self) -> &'static str {
        match self.role {
            Role::Honest => "honest",
            Role::Twin(_) => "twin",
            Role::Byzantine(_) => "byzantine",
        }
    }
}

#[derive(Debug)]
enum Event {
    Deliver { to: usize, from: usize, bytes: Vec<u8> },
    Timeout { to: usize, incarnation: u64, height: Height, round: Round, step: Step },
    Restart { to: usize },
    Gossip,
    Tick,
}

/// Knobs of one run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub heal_at_ms: u64,
    pub liveness_window_ms: u64,
    pub new_heights_after_heal: u64,
    pub crash_per_mille: u32,
    /// A fixed network instead of the seed's random faults (the scale run).
    pub net: Option<NetConfig>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            heal_at_ms: 1_500,
            liveness_window_ms: 30_000,
            new_heights_after_heal: 2,
            crash_per_mille: 4,
            net: None,
        }
    }
}

struct World {
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    events: BTreeMap<(u64, u64), Event>,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    instances: Vec<Instance>,
    net: NetConfig,
    cfg: RunConfig,
    checker: SafetyChecker,
    valid_values: BTreeSet<Hash>,
    trace: HashWriter,
    refused: BTreeMap<String, u64>,
    evidence: u64,
    crashes: u64,
    sides: [Vec<usize>; 2],
    honest_side: Vec<usize>,
    twin_side: Vec<Option<usize>>,
    byz_view: (Height, Round),
    event_count: u64,
    heal_height: u64,
    delivered: u64,
    delivered_to_honest: u64,
    sent: u64,
    sent_by_gossip: u64,
    sent_by_byzantine: u64,
    decided_at_ms: Vec<u64>,
}

fn consensus_config() -> ConsensusConfig {
    ConsensusConfig {
        timeouts: TimeoutConfig {
            propose_ms: 200,
            propose_delta_ms: 100,
            prevote_ms: 100,
            prevote_delta_ms: 100,
            precommit_ms: 100,
            precommit_delta_ms: 100,
        },
        ..ConsensusConfig::default()
    }
}

/// Run one seeded simulation.
pub fn run(seed: u64, shape: &Shape, attack: Attack, cfg: &RunConfig) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let keys: Vec<Keypair> = (0..shape.powers.len())
        .map(|i| {
            Keypair::from_seed(
                Hash::of(Domain::new("dpx/sim-key/v1"), CHAIN, &(i as u64).to_le_bytes()).0,
            )
        })
        .collect();
    let set = ValidatorSet::new(
        keys.iter()
            .zip(&shape.powers)
            .map(|(k, p)| Validator { key: k.public(), power: *p })
            .collect(),
    )
    .expect("shape is a valid set");
    let mut instances = Vec::new();
    let mut twin_side = Vec::new();
    for v in 0..shape.powers.len() {
        let byz = attack != Attack::None && shape.byzantine.contains(&v);
        let roles: Vec<Role> = match (byz, attack) {
            (false, _) | (_, Attack::None) => vec![Role::Honest],
            (true, Attack::Twins) => vec![Role::Twin(0), Role::Twin(1)],
            (true, Attack::Silent) => vec![Role::Byzantine(Box::new(byzantine::silent::Silent))],
            (true, Attack::Equivocator) => {
                vec![Role::Byzantine(Box::new(byzantine::equivocator::Equivocator::default()))]
            }
            (true, Attack::Garbage) => vec![Role::Byzantine(Box::new(byzantine::garbage::Garbage))],
        };
        for role in roles {
            twin_side.push(match role {
                Role::Twin(s) => Some(s),
                _ => None,
            });
            instances.push(Instance {
                validator: v,
                role,
                core: None,
                incarnation: 0,
                disk: None,
                committed: Height(0),
                gossip: BTreeMap::new(),
                proposals: BTreeMap::new(),
            });
        }
    }
    let honest: Vec<usize> =
        (0..instances.len()).filter(|i| matches!(instances[*i].role, Role::Honest)).collect();
    let mut sides = [Vec::new(), Vec::new()];
    let mut honest_side = vec![0; instances.len()];
    for (k, i) in honest.iter().enumerate() {
        sides[k % 2].push(*i);
        honest_side[*i] = k % 2;
    }
    let net = match &cfg.net {
        Some(n) => n.clone(),
        None => NetConfig::random(&mut rng, instances.len(), cfg.heal_at_ms),
    };
    let mut w = World {
        rng,
        now: 0,
        seq: 0,
        events: BTreeMap::new(),
        keys,
        set,
        instances,
        net,
        cfg: cfg.clone(),
        checker: SafetyChecker::default(),
        valid_values: BTreeSet::new(),
        trace: HashWriter::new(Domain::new("dpx/sim-trace/v1"), CHAIN),
        refused: BTreeMap::new(),
        evidence: 0,
        crashes: 0,
        sides,
        honest_side,
        twin_side,
        byz_view: (Height(1), Round(0)),
        event_count: 0,
        heal_height: 0,
        delivered: 0,
        delivered_to_honest: 0,
        sent: 0,
        sent_by_gossip: 0,
        sent_by_byzantine: 0,
        decided_at_ms: Vec::new(),
    };
    w.main_loop();
    let honest_heights = w.honest_heights();
    let final_views = w
        .instances
        .iter()
        .map(|i| {
            format!(
                "{:?} committed {:?} view {:?}",
                i.role_name(),
                i.committed,
                i.core.as_ref().and_then(Consensus::view)
            )
        })
        .collect();
    Outcome {
        final_views,
        seed,
        shape: shape.name,
        attack,
        trace_hash: w.trace.finish(),
        violations: w.checker.violations.clone(),
        live: w.live(),
        heights_decided: honest_heights.iter().copied().min().unwrap_or(0),
        refused: w.refused,
        evidence: w.evidence,
        crashes: w.crashes,
        events: w.event_count,
        delivered: w.delivered,
        delivered_to_honest: w.delivered_to_honest,
        sent: w.sent,
        sent_by_gossip: w.sent_by_gossip,
        sent_by_byzantine: w.sent_by_byzantine,
        decided_at_ms: w.decided_at_ms,
        end_ms: w.now,
    }
}

impl World {
    fn schedule(&mut self, delay: u64, e: Event) {
        self.seq += 1;
        self.events.insert((self.now + delay, self.seq), e);
    }

    fn is_checked(&self, i: usize) -> bool {
        matches!(self.instances[i].role, Role::Honest)
    }

    fn honest_heights(&self) -> Vec<u64> {
        (0..self.instances.len())
            .filter(|i| self.is_checked(*i))
            .map(|i| self.instances[i].committed.0)
            .collect()
    }

    fn live(&self) -> bool {
        let target = self.target_height();
        self.honest_heights().iter().all(|h| *h >= target)
    }

    fn target_height(&self) -> u64 {
        self.heal_height + self.cfg.new_heights_after_heal
    }

    fn main_loop(&mut self) {
        for i in 0..self.instances.len() {
            self.boot(i);
        }
        self.schedule(GOSSIP_EVERY_MS, Event::Gossip);
        self.schedule(TICK_EVERY_MS, Event::Tick);
        let deadline = self.cfg.heal_at_ms + self.cfg.liveness_window_ms;
        let mut healed = false;
        while let Some(((t, _), e)) = self.events.pop_first() {
            self.now = t;
            if !healed && t >= self.cfg.heal_at_ms {
                healed = true;
                self.heal();
            }
            if t > deadline || (healed && self.live()) {
                break;
            }
            self.event_count += 1;
            self.apply(e);
            if !self.checker.violations.is_empty() {
                break;
            }
        }
    }
}
