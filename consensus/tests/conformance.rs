//! Conformance with an independent model: replays every execution of Informal Systems' Quint
//! model of Tendermint (`shared/conformance/tendermint/*.jsonl.gz`, format in its README) into
//! the core, step by step, and checks that each correct node sends exactly the messages the
//! model sends and ends every step with the same round, step, decision, lock and valid value.
//! The `scenario_disagreement` trace must also be flagged by the safety checker.

#[allow(dead_code)]
#[path = "sim/invariants.rs"]
mod invariants;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use dpx_consensus::{
    Consensus, ConsensusConfig, Hash, Height, Input, Output, Proposal, ProposerSchedule, Round,
    SignedMessage, StateView, Step, Validator, ValidatorIndex, ValidatorSet, Vote, VoteKind,
};
use dpx_crypto::Keypair;
use invariants::{SafetyChecker, Violation};
use serde_json::Value;

const CHAIN: &str = "conformance";
const HEIGHT: Height = Height(1);
const NODES: [&str; 4] = ["p1", "p2", "p3", "p4"];

fn trace_dir() -> PathBuf {
    // The runtime value (set by `cargo test`) follows the checkout even when a shared target
    // directory holds a test binary built from another clone.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let dir = manifest.join("../../shared/conformance/tendermint");
    assert!(
        dir.is_dir(),
        "conformance traces not found at {} (expected `shared/` beside the repository directory)",
        dir.display()
    );
    dir
}

/// The trace's proposer table, as the core's proposer rule.
#[derive(Debug)]
struct Table(BTreeMap<u32, ValidatorIndex>);

impl ProposerSchedule for Table {
    fn proposer(&self, _: &ValidatorSet, _: Height, round: Round) -> ValidatorIndex {
        // Rounds outside the model (never reached by a trace) rotate, so the rule stays total.
        self.0.get(&round.0).copied().unwrap_or(ValidatorIndex(round.0 % 4))
    }
}

/// A message as the model writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct ModelMsg {
    kind: String,
    src: String,
    round: i64,
    value: Option<String>,
    valid_round: i64,
}

impl ModelMsg {
    fn parse(v: &Value) -> Self {
        Self {
            kind: v["kind"].as_str().expect("kind").to_string(),
            src: v["src"].as_str().expect("src").to_string(),
            round: v["round"].as_i64().expect("round"),
            value: v["value"].as_str().map(str::to_string),
            valid_round: if v["kind"] == "Propose" {
                v["valid_round"].as_i64().expect("vr")
            } else {
                -1
            },
        }
    }
}

struct Harness {
    name: String,
    keys: Vec<Keypair>,
    set: ValidatorSet,
    values: BTreeMap<Hash, String>,
    round_values: BTreeMap<u32, String>,
    valid_values: BTreeSet<String>,
    correct: Vec<usize>,
    nodes: BTreeMap<usize, Consensus>,
    decided: BTreeMap<usize, Hash>,
    checker: SafetyChecker,
    refusals: BTreeMap<String, usize>,
    failures: Vec<String>,
}

fn node_index(name: &str) -> usize {
    NODES.iter().position(|n| *n == name).unwrap_or_else(|| panic!("unknown node {name}"))
}

fn value_hash(name: &str) -> Hash {
    Hash::digest(name.as_bytes())
}

fn table(obj: &Value) -> BTreeMap<u32, String> {
    obj.as_object()
        .expect("table")
        .iter()
        .map(|(k, v)| (k.parse().expect("round"), v.as_str().expect("name").to_string()))
        .collect()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array().expect("array").iter().map(|n| n.as_str().expect("name").to_string()).collect()
}

impl Harness {
    fn new(trace: &Value) -> Self {
        let params = &trace["params"];
        let keys: Vec<Keypair> = (1..=4u8).map(|i| Keypair::from_seed([i; 32])).collect();
        let values =
            ["v0", "v1", "v2", "v3"].iter().map(|v| (value_hash(v), (*v).to_string())).collect();
        let schedule: BTreeMap<u32, ValidatorIndex> = table(&params["proposer"])
            .iter()
            .map(|(r, n)| (*r, ValidatorIndex(node_index(n) as u32)))
            .collect();
        let correct: Vec<usize> = names(&params["correct"]).iter().map(|n| node_index(n)).collect();
        let set = ValidatorSet::new(
            keys.iter().map(|k| Validator { key: k.public(), power: 1 }).collect(),
        )
        .expect("set");
        let nodes = correct
            .iter()
            .map(|i| {
                let core =
                    Consensus::new(CHAIN, Some(keys[*i].clone()), ConsensusConfig::default(), None)
                        .with_proposer_schedule(Box::new(Table(schedule.clone())));
                (*i, core)
            })
            .collect();
        Self {
            name: trace["trace"].as_str().unwrap_or("?").to_string(),
            keys,
            set,
            values,
            round_values: table(&params["values"]),
            valid_values: names(&params["valid_values"]).into_iter().collect(),
            correct,
            nodes,
            decided: BTreeMap::new(),
            checker: SafetyChecker::default(),
            refusals: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    fn name_of(&self, h: &Hash) -> String {
        self.values.get(h).cloned().unwrap_or_else(|| format!("{h:?}"))
    }

    /// Our broadcast in the model's words.
    fn to_model(&self, msg: &SignedMessage) -> ModelMsg {
        match msg {
            SignedMessage::Proposal(p) => ModelMsg {
                kind: "Propose".into(),
                src: NODES[p.proposal.proposer.get()].into(),
                round: i64::from(p.proposal.round.0),
                value: Some(self.name_of(&p.proposal.value_id)),
                valid_round: p.proposal.pol_round.map_or(-1, |r| i64::from(r.0)),
            },
            SignedMessage::Vote(v) => ModelMsg {
                kind: match v.vote.kind {
                    VoteKind::Prevote => "PreVote".into(),
                    VoteKind::Precommit => "PreCommit".into(),
                },
                src: NODES[v.vote.validator.get()].into(),
                round: i64::from(v.vote.round.0),
                value: v.vote.value_id.map(|h| self.name_of(&h)),
                valid_round: -1,
            },
        }
    }

    /// The model's message as a signed input (signed with the sender's key, honest or not).
    fn to_input(&self, m: &ModelMsg) -> Input {
        let src = node_index(&m.src);
        let round = Round(u32::try_from(m.round).expect("round"));
        let key = &self.keys[src];
        let validator = ValidatorIndex(src as u32);
        match m.kind.as_str() {
            "Propose" => Input::Proposal(
                Proposal {
                    height: HEIGHT,
                    round,
                    value_id: value_hash(m.value.as_deref().expect("proposal value")),
                    pol_round: u32::try_from(m.valid_round).ok().map(Round),
                    proposer: validator,
                }
                .sign(CHAIN, key),
            ),
            kind => {
                let kind = if kind == "PreVote" { VoteKind::Prevote } else { VoteKind::Precommit };
                let value_id = m.value.as_deref().map(value_hash);
                Input::Vote(
                    Vote { kind, height: HEIGHT, round, value_id, validator }.sign(CHAIN, key),
                )
            }
        }
    }

    /// Feed one input to `node`, answering the application's requests inline like the model's
    /// `getValue()`/`valid()`; returns what the node broadcast.
    fn drive(&mut self, node: usize, input: Input) -> Vec<ModelMsg> {
        let mut queue = vec![input];
        let mut sent = Vec::new();
        let mut first = true;
        while let Some(input) = queue.pop() {
            let result = self.nodes.get_mut(&node).expect("correct node").handle(input);
            let outputs = match result {
                Ok(o) => o,
                Err(e) => {
                    // Refused inputs (e.g. a proposal from a non-proposer) change nothing, as
                    // in the model, which ignores them.
                    assert!(
                        first,
                        "{}: an answer to the core's own request was refused: {e}",
                        self.name
                    );
                    let kind = format!("{e:?}");
                    let kind = kind.split([' ', '{', '(']).next().unwrap_or("").to_string();
                    *self.refusals.entry(kind).or_default() += 1;
                    Vec::new()
                }
            };
            first = false;
            for o in outputs {
                match o {
                    Output::Broadcast(msg) => {
                        self.checker.signed(node, &msg);
                        sent.push(self.to_model(&msg));
                    }
                    Output::RequestValue { height, round } => {
                        let v = self.round_values.get(&round.0).expect("value for round");
                        queue.push(Input::ProposeValue { height, round, value_id: value_hash(v) });
                    }
                    Output::ValidateValue { height, round, value_id } => {
                        let valid = self.valid_values.contains(&self.name_of(&value_id));
                        queue.push(Input::ValueValidity { height, round, value_id, valid });
                    }
                    Output::Decide { height, value_id, certificate } => {
                        let valid = self.valid_values.contains(&self.name_of(&value_id));
                        self.checker.decided(node, height, value_id, valid);
                        let set = self.set.clone();
                        self.checker.certificate(node, CHAIN, &certificate, &set);
                    }
                    Output::PersistSafety(_)
                    | Output::ScheduleTimeout { .. }
                    | Output::Evidence(_) => {}
                }
            }
        }
        sent
    }

    fn fail(&mut self, step: usize, what: &str) {
        // The first mismatch of a trace is the informative one; later ones follow from it.
        if !self.failures.is_empty() {
            return;
        }
        self.failures.push(format!("trace {} step {step}: {what}", self.name));
    }

    /// Compare the seven state fields of every correct node with the model's `expect`.
    fn compare_states(
        &mut self,
        step: usize,
        expect: &Value,
        decided_before: &BTreeMap<usize, Hash>,
    ) {
        for n in self.correct.clone() {
            let name = NODES[n];
            let e = &expect[name];
            let view: StateView = self.nodes[&n].view().expect("started");
            if let Some(was) = decided_before.get(&n) {
                if view.decision != Some(*was) {
                    self.fail(step, &format!("{name} changed its decision"));
                }
                continue;
            }
            let got = self.model_state(&view);
            let want = (
                e["round"].as_i64().expect("round"),
                e["stage"].as_str().expect("stage").to_string(),
                e["decision"].as_str().map(str::to_string),
                e["locked_value"].as_str().map(str::to_string),
                e["locked_round"].as_i64().expect("locked_round"),
                e["valid_value"].as_str().map(str::to_string),
                e["valid_round"].as_i64().expect("valid_round"),
            );
            if got != want {
                self.fail(step, &format!("{name} state: core {got:?}, model {want:?}"));
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn model_state(
        &self,
        v: &StateView,
    ) -> (i64, String, Option<String>, Option<String>, i64, Option<String>, i64) {
        let stage = match (v.decision, v.step) {
            (Some(_), _) => "Decided",
            (None, Step::Propose) => "Propose",
            (None, Step::Prevote) => "PreVote",
            (None, Step::Precommit) => "PreCommit",
        };
        (
            i64::from(v.round.0),
            stage.to_string(),
            v.decision.map(|h| self.name_of(&h)),
            v.locked.map(|l| self.name_of(&l.value_id)),
            v.locked.map_or(-1, |l| i64::from(l.round.0)),
            v.valid.map(|l| self.name_of(&l.value_id)),
            v.valid.map_or(-1, |l| i64::from(l.round.0)),
        )
    }

    fn compare_sent(&mut self, step: usize, node: usize, got: Vec<ModelMsg>, want: Vec<ModelMsg>) {
        let got: BTreeSet<ModelMsg> = got.into_iter().collect();
        let want: BTreeSet<ModelMsg> = want.into_iter().collect();
        if got != want {
            self.fail(step, &format!("{} sent {got:?}, model sent {want:?}", NODES[node]));
        }
    }

    fn run(&mut self, trace: &Value) -> usize {
        let steps = trace["steps"].as_array().expect("steps");
        for (i, step) in steps.iter().enumerate() {
            let decided_before = self.decided.clone();
            match step["event"].as_str().expect("event") {
                "init" => {
                    let initial: Vec<ModelMsg> = step["initial_messages"]
                        .as_array()
                        .expect("initial")
                        .iter()
                        .map(ModelMsg::parse)
                        .collect();
                    for n in self.correct.clone() {
                        let set = self.set.clone();
                        let sent =
                            self.drive(n, Input::StartHeight { height: HEIGHT, validators: set });
                        let want = initial.iter().filter(|m| m.src == NODES[n]).cloned().collect();
                        self.compare_sent(i, n, sent, want);
                    }
                }
                event => {
                    let node = node_index(step["node"].as_str().expect("node"));
                    if !self.correct.contains(&node) {
                        continue; // byzantine state only
                    }
                    let input = if event == "receive" {
                        self.to_input(&ModelMsg::parse(&step["msg"]))
                    } else {
                        let t = &step["timeout"];
                        let step_kind = match t["kind"].as_str().expect("timeout kind") {
                            "Propose" => Step::Propose,
                            "PreVote" => Step::Prevote,
                            _ => Step::Precommit,
                        };
                        let round = Round(
                            u32::try_from(t["round"].as_i64().expect("round")).expect("round"),
                        );
                        Input::TimeoutFired { height: HEIGHT, round, step: step_kind }
                    };
                    let sent = self.drive(node, input);
                    if !decided_before.contains_key(&node) {
                        let want = step["sent"]
                            .as_array()
                            .map(|a| a.iter().map(ModelMsg::parse).collect())
                            .unwrap_or_default();
                        self.compare_sent(i, node, sent, want);
                    }
                }
            }
            for n in self.correct.clone() {
                if let Some(d) = self.nodes[&n].view().and_then(|v| v.decision) {
                    self.decided.entry(n).or_insert(d);
                }
            }
            self.compare_states(i, &step["expect"], &decided_before);
        }
        steps.len()
    }
}

fn load(file: &str) -> Vec<Value> {
    let path = trace_dir().join(file);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    BufReader::new(flate2::read::GzDecoder::new(f))
        .lines()
        .map(|l| serde_json::from_str(&l.expect("read line")).expect("json"))
        .collect()
}

#[test]
fn every_trace_conforms_and_the_disagreement_is_flagged() {
    let mut files: Vec<String> = std::fs::read_dir(trace_dir())
        .expect("read trace dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".jsonl.gz"))
        .collect();
    files.sort();
    let (mut traces, mut steps, mut failures) = (0, 0, Vec::new());
    let mut refusals: BTreeMap<String, usize> = BTreeMap::new();
    let mut disagreement_flagged = false;
    for file in &files {
        for trace in load(file) {
            let mut h = Harness::new(&trace);
            steps += h.run(&trace);
            traces += 1;
            let is_control = h.name.contains("disagreement");
            let flagged =
                h.checker.violations.iter().any(|v| matches!(v, Violation::Disagreement { .. }));
            if is_control {
                disagreement_flagged |= flagged;
                if !flagged {
                    failures.push(format!(
                        "trace {}: the safety checker did not flag the disagreement",
                        h.name
                    ));
                }
            } else if let Some(v) = h.checker.first() {
                failures.push(format!("trace {}: safety violation: {v}", h.name));
            }
            for (k, n) in &h.refusals {
                *refusals.entry(k.clone()).or_default() += n;
            }
            failures.append(&mut h.failures);
        }
    }
    println!(
        "conformance: {traces} traces, {steps} steps from {files:?}; refused inputs: {refusals:?}"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.iter().take(30).cloned().collect::<Vec<_>>().join("\n")
    );
    assert!(traces >= 152, "expected the 152 traces, found {traces}");
    assert!(disagreement_flagged);
}
