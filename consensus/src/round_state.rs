//! The message log of one round, kept as running tallies so every "upon 2f+1 ..." condition of
//! the paper is a lookup, not a scan.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Hash, SignedProposal, SignedVote, ValidatorIndex};

/// Distinct votes counted per validator, round and kind. An honest validator casts one; an
/// equivocator's extra votes are counted as the paper counts messages (one per sender and
/// value), up to this bound so a byzantine validator cannot grow the tables without limit.
pub(crate) const VOTES_PER_VALIDATOR_MAX: usize = 4;

/// What adding a vote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    New,
    Duplicate,
    /// The validator already voted differently: this is its first vote.
    Conflict(SignedVote),
}

/// Votes of one kind in one round, and the voting power behind each value.
///
/// The paper's "2f+1 ⟨PREVOTE, h, r, id(v)⟩" counts distinct senders of that message, so a
/// validator that equivocates counts once for each value it voted for. This never breaks
/// safety: two quorums for different values overlap in more than a third of the power, so in
/// at least one correct validator, which votes once. "2f+1 ⟨PREVOTE, h, r, ∗⟩" counts distinct
/// senders whatever their values.
#[derive(Debug, Default)]
pub(crate) struct VoteTally {
    votes: BTreeMap<ValidatorIndex, Vec<SignedVote>>,
    power_by_value: BTreeMap<Option<Hash>, u64>,
    total_power: u64,
}

impl VoteTally {
    pub(crate) fn add(&mut self, vote: SignedVote, power: u64) -> Added {
        let mine = self.votes.entry(vote.vote.validator).or_default();
        if mine.iter().any(|v| v.vote == vote.vote) {
            return Added::Duplicate;
        }
        let first = mine.first().copied();
        if mine.len() < VOTES_PER_VALIDATOR_MAX {
            mine.push(vote);
            *self.power_by_value.entry(vote.vote.value_id).or_default() += power;
            if first.is_none() {
                self.total_power += power;
            }
        }
        first.map_or(Added::New, Added::Conflict)
    }

    /// Is this exact signed vote already counted?
    pub(crate) fn contains(&self, vote: &SignedVote) -> bool {
        self.votes.get(&vote.vote.validator).is_some_and(|vs| vs.contains(vote))
    }

    /// Power of the validators that voted for `value` (`None` = nil).
    pub(crate) fn power_for(&self, value: Option<Hash>) -> u64 {
        self.power_by_value.get(&value).copied().unwrap_or(0)
    }

    /// Power of all validators that voted, whatever their value (the paper's `∗`).
    pub(crate) fn total_power(&self) -> u64 {
        self.total_power
    }

    /// Values (not nil) whose votes reach `quorum`.
    pub(crate) fn values_with(&self, quorum: u64) -> impl Iterator<Item = Hash> + '_ {
        self.power_by_value.iter().filter(move |(_, p)| **p >= quorum).filter_map(|(v, _)| *v)
    }

    /// The signatures of the votes for `value`, in index order (a certificate's content).
    pub(crate) fn signatures_for(
        &self,
        value: Option<Hash>,
    ) -> Vec<(ValidatorIndex, dpx_crypto::Signature)> {
        self.votes
            .iter()
            .filter_map(|(i, vs)| {
                vs.iter().find(|v| v.vote.value_id == value).map(|v| (*i, v.signature))
            })
            .collect()
    }
}

/// Rules the paper fires only "for the first time" in a round.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Fired {
    pub(crate) l34_prevote_timeout: bool,
    pub(crate) l36_lock: bool,
    pub(crate) l47_precommit_timeout: bool,
}

/// Everything received for one round of the current height.
#[derive(Debug, Default)]
pub(crate) struct RoundState {
    /// Proposals from the round's proposer, in arrival order. More than one means the proposer
    /// equivocated; the first is the one line 22 acts on, all count for lines 28, 36 and 49.
    pub(crate) proposals: Vec<SignedProposal>,
    pub(crate) prevotes: VoteTally,
    pub(crate) precommits: VoteTally,
    /// Distinct senders of any message of this round, and their power (line 55).
    senders: BTreeSet<ValidatorIndex>,
    pub(crate) sender_power: u64,
    pub(crate) fired: Fired,
}

impl RoundState {
    pub(crate) fn add_sender(&mut self, who: ValidatorIndex, power: u64) {
        if self.senders.insert(who) {
            self.sender_power += power;
        }
    }
}
