//! Byzantine behaviours, one per file. Twins is a topology (two honest cores sharing one key),
//! set up by the simulator from `twins.rs`.

pub mod equivocator;
pub mod garbage;
pub mod silent;
pub mod twins;

use std::collections::BTreeSet;

use dpx_consensus::{Hash, Height, Round, SignedMessage, ValidatorIndex, ValidatorSet};
use dpx_crypto::Keypair;
use rand_chacha::ChaCha8Rng;

/// What a byzantine instance may use: its key, the set, the honest instances and their sides.
#[derive(Debug)]
pub struct ByzCtx<'a> {
    pub chain_id: &'a str,
    pub key: &'a Keypair,
    pub me: ValidatorIndex,
    pub validators: &'a ValidatorSet,
    /// Honest instance ids, split into two sides for split-brain attacks.
    pub sides: [&'a [usize]; 2],
    pub rng: &'a mut ChaCha8Rng,
    /// Values the application accepts; a byzantine proposer may add valid blocks of its own.
    pub valid_values: &'a mut BTreeSet<Hash>,
    /// The highest height and round seen in honest traffic.
    pub height: Height,
    pub round: Round,
}

/// Bytes to put on the wire: to one instance, or to all.
#[derive(Debug, Clone)]
pub struct Send {
    pub to: Option<usize>,
    pub bytes: Vec<u8>,
}

/// A byzantine strategy.
pub trait Behaviour: std::fmt::Debug {
    /// A message from an honest instance arrived.
    fn on_message(&mut self, ctx: &mut ByzCtx<'_>, from: usize, msg: &SignedMessage) -> Vec<Send>;
    /// Called periodically.
    fn on_tick(&mut self, ctx: &mut ByzCtx<'_>) -> Vec<Send>;
}

/// Send `msg` to every instance in `to`.
pub fn to_all(to: &[usize], msg: SignedMessage) -> Vec<Send> {
    let bytes = msg.encode();
    to.iter().map(|t| Send { to: Some(*t), bytes: bytes.clone() }).collect()
}
