//! Evidence of equivocation: two different signed messages by one validator at the same
//! `(height, round, step)`. Anyone holding the validator set can verify it offline.

use serde::{Deserialize, Serialize};

use crate::messages::MAX_MESSAGE_BYTES;
use crate::wire::{self, pb};
use crate::{Error, Height, SignedProposal, SignedVote, ValidatorIndex, ValidatorSet};

/// Largest encoded [`Evidence`] accepted by [`Evidence::decode`].
pub const MAX_EVIDENCE_BYTES: usize = 2 * MAX_MESSAGE_BYTES + 32;

/// Two conflicting signed messages by one validator. Built with [`Evidence::votes`] or
/// [`Evidence::proposals`], which order the pair canonically so every node that sees the same
/// conflict produces byte-identical evidence.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Evidence {
    ConflictingVotes(SignedVote, SignedVote),
    ConflictingProposals(SignedProposal, SignedProposal),
}

impl Evidence {
    /// Evidence from two votes (ordered by their signed bytes).
    pub fn votes(a: SignedVote, b: SignedVote) -> Self {
        if a.vote.sign_bytes() <= b.vote.sign_bytes() {
            Self::ConflictingVotes(a, b)
        } else {
            Self::ConflictingVotes(b, a)
        }
    }

    /// Evidence from two proposals (ordered by their signed bytes).
    pub fn proposals(a: SignedProposal, b: SignedProposal) -> Self {
        if a.proposal.sign_bytes() <= b.proposal.sign_bytes() {
            Self::ConflictingProposals(a, b)
        } else {
            Self::ConflictingProposals(b, a)
        }
    }

    /// The validator that equivocated.
    pub fn offender(&self) -> ValidatorIndex {
        match self {
            Self::ConflictingVotes(a, _) => a.vote.validator,
            Self::ConflictingProposals(a, _) => a.proposal.proposer,
        }
    }

    /// The height of the conflict.
    pub fn height(&self) -> Height {
        match self {
            Self::ConflictingVotes(a, _) => a.vote.height,
            Self::ConflictingProposals(a, _) => a.proposal.height,
        }
    }

    /// Check both messages are by the same member, at the same height, round and step, differ,
    /// and carry valid signatures.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), Error> {
        match self {
            Self::ConflictingVotes(a, b) => {
                let (x, y) = (&a.vote, &b.vote);
                if x.validator != y.validator {
                    return Err(Error::NotConflicting("different validators"));
                }
                if (x.kind, x.height, x.round) != (y.kind, y.height, y.round) {
                    return Err(Error::NotConflicting("different height, round or step"));
                }
                if x.value_id == y.value_id {
                    return Err(Error::NotConflicting("same vote"));
                }
                a.verify(chain_id, validators)?;
                b.verify(chain_id, validators)
            }
            Self::ConflictingProposals(a, b) => {
                let (x, y) = (&a.proposal, &b.proposal);
                if x.proposer != y.proposer {
                    return Err(Error::NotConflicting("different proposers"));
                }
                if (x.height, x.round) != (y.height, y.round) {
                    return Err(Error::NotConflicting("different height or round"));
                }
                if x.sign_bytes() == y.sign_bytes() {
                    return Err(Error::NotConflicting("same proposal"));
                }
                a.verify(chain_id, validators)?;
                b.verify(chain_id, validators)
            }
        }
    }

    /// Protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        let kind = match *self {
            Self::ConflictingVotes(a, b) => pb::evidence::Kind::Votes(pb::VotePair {
                first: Some(a.to_pb()),
                second: Some(b.to_pb()),
            }),
            Self::ConflictingProposals(a, b) => pb::evidence::Kind::Proposals(pb::ProposalPair {
                first: Some(a.to_pb()),
                second: Some(b.to_pb()),
            }),
        };
        pb::Evidence { kind: Some(kind) }.encode_to_vec()
    }

    /// Decode (bounded by [`MAX_EVIDENCE_BYTES`]). Does not verify: see [`Self::verify`].
    /// Only the canonical form decodes: canonical protobuf, the pair in the order
    /// [`Self::votes`] / [`Self::proposals`] give it, so one conflict has one byte form.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let m: pb::Evidence = wire::decode_canonical(bytes, MAX_EVIDENCE_BYTES)?;
        let ev = match wire::required(m.kind, "evidence")? {
            pb::evidence::Kind::Votes(p) => Self::votes(
                SignedVote::from_pb(&wire::required(p.first, "first vote")?)?,
                SignedVote::from_pb(&wire::required(p.second, "second vote")?)?,
            ),
            pb::evidence::Kind::Proposals(p) => Self::proposals(
                SignedProposal::from_pb(&wire::required(p.first, "first proposal")?)?,
                SignedProposal::from_pb(&wire::required(p.second, "second proposal")?)?,
            ),
        };
        if ev.encode() != bytes {
            return Err(Error::Malformed("evidence pair is not in canonical order".into()));
        }
        Ok(ev)
    }
}
