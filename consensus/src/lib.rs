//! `dpx-consensus`: Tendermint (Buchman, Kwon, Milosevic, "The latest gossip on BFT consensus",
//! arXiv 1807.04938, Algorithm 1) as a pure, deterministic state machine.
//!
//! The core decides one opaque value id (the block id) per height. It never sees blocks, never
//! reads a clock, never touches the network or the disk: the driver (`dpx-node`, or a test
//! harness) feeds it [`Input`]s and carries out the [`Output`]s it returns. Match arms in
//! `core.rs` cite the paper's line numbers (`// L22`).
//!
//! - [`ValidatorSet`]: weighted validators, quorum by voting power (> 2/3), and the weighted
//!   round-robin [`ProposerSelector`]. The proposer rule is a [`ProposerSchedule`] the caller
//!   may replace (the conformance harness plugs in a trace's table).
//! - [`SignedProposal`], [`SignedVote`], [`SignedMessage`]: signed over canonical bytes with
//!   `Domain::PROPOSAL` / `Domain::VOTE` and the chain id; protobuf on the wire.
//! - [`Certificate`]: the > 2/3 precommit signatures that prove a decision (batch verified).
//! - [`Evidence`]: two conflicting signed messages by one validator.
//! - [`SafetyState`]: the double-sign guard, persisted before every signature leaves.
//!
//! # A tutorial: one height with four validators
//!
//! Each node's own messages come back to it through the same input as everyone else's; here
//! we deliver every broadcast to every node at once, and answer the application's requests
//! inline. Real drivers also schedule the timeouts; this run never needs one.
//!
//! ```
//! use dpx_consensus::{
//!     Consensus, ConsensusConfig, Hash, Height, Input, Output, Validator, ValidatorSet,
//! };
//! use dpx_crypto::Keypair;
//!
//! let keys: Vec<Keypair> = (1..=4).map(|i| Keypair::from_seed([i; 32])).collect();
//! let set = ValidatorSet::new(
//!     keys.iter().map(|k| Validator { key: k.public(), power: 1 }).collect(),
//! )?;
//! let mut nodes: Vec<Consensus> = keys
//!     .iter()
//!     .map(|k| Consensus::new("tutorial", Some(k.clone()), ConsensusConfig::default(), None))
//!     .collect();
//!
//! // Everyone starts height 1. The proposer of (1, round 0) is asked for a value.
//! let mut queue: std::collections::VecDeque<(usize, Input)> = (0..4)
//!     .map(|i| (i, Input::StartHeight { height: Height(1), validators: set.clone() }))
//!     .collect();
//! let block = Hash::digest(b"block 1");
//! let mut decided = Vec::new();
//! while let Some((i, input)) = queue.pop_front() {
//!     for output in nodes[i].handle(input)? {
//!         match output {
//!             // The driver would write this durably before sending the next broadcast.
//!             Output::PersistSafety(_) => {}
//!             Output::RequestValue { height, round } => {
//!                 queue.push_back((i, Input::ProposeValue { height, round, value_id: block }));
//!             }
//!             Output::ValidateValue { height, round, value_id } => {
//!                 let valid = value_id == block;
//!                 queue.push_back((i, Input::ValueValidity { height, round, value_id, valid }));
//!             }
//!             Output::Broadcast(msg) => {
//!                 for to in 0..4 {
//!                     queue.push_back((to, match msg {
//!                         dpx_consensus::SignedMessage::Proposal(p) => Input::Proposal(p),
//!                         dpx_consensus::SignedMessage::Vote(v) => Input::Vote(v),
//!                     }));
//!                 }
//!             }
//!             Output::Decide { value_id, certificate, .. } => {
//!                 // Anyone can check the decision against the validator set.
//!                 certificate.verify("tutorial", &set)?;
//!                 decided.push((i, value_id));
//!             }
//!             Output::ScheduleTimeout { .. } | Output::Evidence(_) => {}
//!         }
//!     }
//! }
//! assert_eq!(decided.len(), 4);
//! assert!(decided.iter().all(|(_, v)| *v == block));
//! # Ok::<(), dpx_consensus::Error>(())
//! ```
//!
//! # The safety guard
//!
//! Before a vote or proposal is broadcast the core emits [`Output::PersistSafety`] with the
//! last signed `(height, round, step)` and the lock. Give the last persisted state back to
//! [`Consensus::new`] after a crash and the node will never sign a conflicting message:
//!
//! ```
//! use dpx_consensus::{Hash, Height, Round, SafetyState, Step};
//!
//! let mut guard = SafetyState::at_height(Height(7));
//! guard.sign(Height(7), Round(0), Step::Prevote, Hash([1; 32])).unwrap();
//! let bytes = guard.encode(); // what the driver writes before sending
//! let restored = SafetyState::decode(&bytes)?;
//! // A different prevote in the same round is refused; the same one is fine.
//! assert!(restored.check(Height(7), Round(0), Step::Prevote, &Hash([2; 32])).is_err());
//! assert!(restored.check(Height(7), Round(0), Step::Prevote, &Hash([1; 32])).is_ok());
//! # Ok::<(), dpx_consensus::Error>(())
//! ```

#![forbid(unsafe_code)]

mod certificate;
mod config;
mod core;
mod error;
mod evidence;
mod messages;
mod round_state;
mod safety;
mod types;
mod validators;
mod wire;

pub use certificate::{Certificate, MAX_CERTIFICATE_BYTES};
pub use config::{ConsensusConfig, TimeoutConfig};
pub use core::{Consensus, Input, Output, StateView};
pub use dpx_crypto::Hash;
pub use error::Error;
pub use evidence::{Evidence, MAX_EVIDENCE_BYTES};
pub use messages::{MAX_MESSAGE_BYTES, Proposal, SignedMessage, SignedProposal, SignedVote, Vote};
pub use safety::{MAX_SAFETY_STATE_BYTES, Refusal, SafetyState, ValueRound};
pub use types::{Height, Round, Step, ValidatorIndex, VoteKind};
pub use validators::{
    MAX_TOTAL_POWER, MAX_VALIDATORS, ProposerSchedule, ProposerSelector, SCHEDULE_SLOTS_MAX,
    Validator, ValidatorSet, WeightedRoundRobin,
};
