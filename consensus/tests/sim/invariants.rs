//! The safety checker, shared by the simulator and the conformance replay: agreement,
//! validity, no honest double-sign, every decision carries a valid certificate.

use std::collections::BTreeMap;
use std::fmt;

use dpx_consensus::{Certificate, Hash, Height, Round, SignedMessage, Step, ValidatorSet};

/// A broken invariant. `Display` says what and who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Disagreement { height: Height, first: (usize, Hash), second: (usize, Hash) },
    DecisionChanged { node: usize, height: Height, was: Hash, now: Hash },
    InvalidValue { node: usize, height: Height, value: Hash },
    BadCertificate { node: usize, height: Height, reason: String },
    DoubleSign { node: usize, height: Height, round: Round, step: Step },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disagreement { height, first, second } => write!(
                f,
                "agreement violated at {height:?}: node {} decided {:?}, node {} decided {:?}",
                first.0, first.1, second.0, second.1
            ),
            Self::DecisionChanged { node, height, was, now } => {
                write!(f, "node {node} changed its decision at {height:?}: {was:?} -> {now:?}")
            }
            Self::InvalidValue { node, height, value } => {
                write!(
                    f,
                    "validity violated: node {node} decided unproposed/invalid {value:?} at {height:?}"
                )
            }
            Self::BadCertificate { node, height, reason } => {
                write!(f, "node {node} decided at {height:?} with a bad certificate: {reason}")
            }
            Self::DoubleSign { node, height, round, step } => {
                write!(f, "honest node {node} double-signed at {height:?} {round:?} {step:?}")
            }
        }
    }
}

/// Everything honest nodes decided and signed so far.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    decisions: BTreeMap<Height, BTreeMap<usize, Hash>>,
    signed: BTreeMap<(usize, Height, Round, Step), SignedMessage>,
    pub violations: Vec<Violation>,
}

impl SafetyChecker {
    /// An honest node decided. `valid` says whether the value is one the application accepts.
    pub fn decided(&mut self, node: usize, height: Height, value: Hash, valid: bool) {
        let at = self.decisions.entry(height).or_default();
        if let Some(was) = at.get(&node) {
            if *was != value {
                self.violations.push(Violation::DecisionChanged {
                    node,
                    height,
                    was: *was,
                    now: value,
                });
            }
            return;
        }
        if let Some((other, v)) = at.iter().find(|(_, v)| **v != value) {
            self.violations.push(Violation::Disagreement {
                height,
                first: (*other, *v),
                second: (node, value),
            });
        }
        if !valid {
            self.violations.push(Violation::InvalidValue { node, height, value });
        }
        at.insert(node, value);
    }

    /// Check a decision's certificate against the height's validator set.
    pub fn certificate(
        &mut self,
        node: usize,
        chain_id: &str,
        cert: &Certificate,
        set: &ValidatorSet,
    ) {
        if let Err(e) = cert.verify(chain_id, set) {
            self.violations.push(Violation::BadCertificate {
                node,
                height: cert.height,
                reason: e.to_string(),
            });
        }
    }

    /// An honest node signed and sent `msg`. Two different messages at one position is a
    /// double sign (the same one again, e.g. after restart, is not).
    pub fn signed(&mut self, node: usize, msg: &SignedMessage) {
        let step = match msg {
            SignedMessage::Proposal(_) => Step::Propose,
            SignedMessage::Vote(v) => v.vote.kind.step(),
        };
        let key = (node, msg.height(), msg.round(), step);
        match self.signed.get(&key) {
            Some(old) if old != msg => self.violations.push(Violation::DoubleSign {
                node,
                height: msg.height(),
                round: msg.round(),
                step,
            }),
            Some(_) => {}
            None => {
                self.signed.insert(key, *msg);
            }
        }
    }

    /// Heights at which `node` decided.
    pub fn decided_heights(&self, node: usize) -> usize {
        self.decisions.values().filter(|m| m.contains_key(&node)).count()
    }

    /// The first violation, if any.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }
}
