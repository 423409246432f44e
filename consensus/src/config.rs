//! Timeouts and bounds. Time is never read here: durations are only named in
//! [`crate::Output::ScheduleTimeout`] and the driver's clock fires them.

use serde::{Deserialize, Serialize};

use crate::{Round, Step};

/// Timeout durations, growing linearly with the round so that after GST some round's timeouts
/// exceed the real message delay (the paper's liveness argument, section 4).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TimeoutConfig {
    pub propose_ms: u64,
    pub propose_delta_ms: u64,
    pub prevote_ms: u64,
    pub prevote_delta_ms: u64,
    pub precommit_ms: u64,
    pub precommit_delta_ms: u64,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            propose_ms: 1000,
            propose_delta_ms: 500,
            prevote_ms: 500,
            prevote_delta_ms: 250,
            precommit_ms: 500,
            precommit_delta_ms: 250,
        }
    }
}

impl TimeoutConfig {
    /// `base + delta * round` for the step's timeout (saturating).
    pub fn duration_ms(&self, step: Step, round: Round) -> u64 {
        let (base, delta) = match step {
            Step::Propose => (self.propose_ms, self.propose_delta_ms),
            Step::Prevote => (self.prevote_ms, self.prevote_delta_ms),
            Step::Precommit => (self.precommit_ms, self.precommit_delta_ms),
        };
        base.saturating_add(delta.saturating_mul(u64::from(round.0)))
    }
}

/// Everything configurable in the core. Every table the core keeps is bounded by one of these.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ConsensusConfig {
    pub timeouts: TimeoutConfig,
    /// Messages for rounds more than this far above the current round are refused, bounding
    /// the per-round tables a byzantine validator can make us allocate.
    pub rounds_ahead_max: u32,
    /// Messages buffered for the next height while this one is still running.
    pub next_height_buffer_max: usize,
    /// Distinct proposals kept per round (more only come from an equivocating proposer).
    pub proposals_per_round_max: usize,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            timeouts: TimeoutConfig::default(),
            rounds_ahead_max: 64,
            next_height_buffer_max: 4096,
            proposals_per_round_max: 32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_with_round() {
        let t = TimeoutConfig::default();
        assert_eq!(t.duration_ms(Step::Propose, Round(0)), 1000);
        assert_eq!(t.duration_ms(Step::Propose, Round(2)), 2000);
        assert!(
            t.duration_ms(Step::Precommit, Round(3)) > t.duration_ms(Step::Precommit, Round(2))
        );
        assert_eq!(
            TimeoutConfig { propose_delta_ms: u64::MAX, ..t }.duration_ms(Step::Propose, Round(9)),
            u64::MAX
        );
    }
}
