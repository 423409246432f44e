//! Proposals and votes, their canonical signed bytes, signatures and wire encoding.
//!
//! What is signed is never the protobuf encoding but fixed canonical bytes, hashed with the
//! message's domain and the chain id (`Hash::of(Domain::VOTE, chain_id, bytes)`), so a vote for
//! one chain or purpose never verifies for another, and re-encoding cannot break a signature.
//! The signer's index is not signed: the signature already binds the key.

use dpx_crypto::{Domain, Keypair, Signature};
use serde::{Deserialize, Serialize};

use crate::wire::{self, pb};
use crate::{Error, Hash, Height, Round, ValidatorIndex, ValidatorSet, VoteKind};

/// Largest encoded [`SignedMessage`] accepted by [`SignedMessage::decode`]. A proposal or vote
/// is about 130 bytes; the margin leaves room for future fields, not for abuse.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// `⟨PROPOSAL, h, r, v, vr⟩` (paper line 17): the proposer's value id for a round, and the
/// round in which it saw a quorum of prevotes for it (`pol_round`, the paper's `validRound`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value_id: Hash,
    pub pol_round: Option<Round>,
    pub proposer: ValidatorIndex,
}

/// `⟨PREVOTE, h, r, id(v)⟩` or `⟨PRECOMMIT, h, r, id(v)⟩`; `value_id: None` is a vote for nil.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: Height,
    pub round: Round,
    pub value_id: Option<Hash>,
    pub validator: ValidatorIndex,
}

/// A proposal with its proposer's signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub signature: Signature,
}

/// A vote with its validator's signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedVote {
    pub vote: Vote,
    pub signature: Signature,
}

/// Any consensus message that travels between validators.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SignedMessage {
    Proposal(SignedProposal),
    Vote(SignedVote),
}

impl Proposal {
    /// The canonical signed bytes: height, round, value id, pol round (flag + round).
    pub fn sign_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(49);
        b.extend_from_slice(&self.height.0.to_le_bytes());
        b.extend_from_slice(&self.round.0.to_le_bytes());
        b.extend_from_slice(self.value_id.as_bytes());
        match self.pol_round {
            None => b.push(0),
            Some(r) => {
                b.push(1);
                b.extend_from_slice(&r.0.to_le_bytes());
            }
        }
        b
    }

    /// The digest that is signed.
    pub fn digest(&self, chain_id: &str) -> Hash {
        Hash::of(Domain::PROPOSAL, chain_id, &self.sign_bytes())
    }

    /// Sign with `key`. The caller makes sure `proposer` is `key`'s index.
    pub fn sign(self, chain_id: &str, key: &Keypair) -> SignedProposal {
        SignedProposal { signature: key.sign_digest(&self.digest(chain_id)), proposal: self }
    }
}

impl Vote {
    /// The canonical signed bytes: kind, height, round, value id (flag + id).
    ///
    /// A commit certificate is a set of precommit signatures over exactly these bytes.
    pub fn sign_bytes(&self) -> Vec<u8> {
        vote_sign_bytes(self.kind, self.height, self.round, self.value_id)
    }

    /// The digest that is signed.
    pub fn digest(&self, chain_id: &str) -> Hash {
        Hash::of(Domain::VOTE, chain_id, &self.sign_bytes())
    }

    /// Sign with `key`. The caller makes sure `validator` is `key`'s index.
    pub fn sign(self, chain_id: &str, key: &Keypair) -> SignedVote {
        SignedVote { signature: key.sign_digest(&self.digest(chain_id)), vote: self }
    }
}

pub(crate) fn vote_sign_bytes(
    kind: VoteKind,
    height: Height,
    round: Round,
    value_id: Option<Hash>,
) -> Vec<u8> {
    let mut b = Vec::with_capacity(46);
    b.push(match kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    });
    b.extend_from_slice(&height.0.to_le_bytes());
    b.extend_from_slice(&round.0.to_le_bytes());
    match value_id {
        None => b.push(0),
        Some(v) => {
            b.push(1);
            b.extend_from_slice(v.as_bytes());
        }
    }
    b
}

impl SignedProposal {
    /// Check the proposer is a member and the signature is its own over this proposal.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), Error> {
        let p = &self.proposal;
        let v = validators
            .get(p.proposer)
            .ok_or(Error::UnknownValidator { index: p.proposer, len: validators.len() })?;
        v.key.verify_digest(&p.digest(chain_id), &self.signature).map_err(|_| Error::BadSignature)
    }

    pub(crate) fn to_pb(self) -> pb::Proposal {
        let p = self.proposal;
        pb::Proposal {
            height: p.height.0,
            round: p.round.0,
            value_id: p.value_id.0.to_vec(),
            pol_round: p.pol_round.map(|r| r.0),
            proposer: p.proposer.0,
            signature: self.signature.0.to_vec(),
        }
    }

    pub(crate) fn from_pb(m: &pb::Proposal) -> Result<Self, Error> {
        Ok(Self {
            proposal: Proposal {
                height: Height(m.height),
                round: Round(m.round),
                value_id: wire::hash_from(&m.value_id, "proposal value id")?,
                pol_round: m.pol_round.map(Round),
                proposer: ValidatorIndex(m.proposer),
            },
            signature: wire::sig_from(&m.signature)?,
        })
    }
}

impl SignedVote {
    /// Check the validator is a member and the signature is its own over this vote.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), Error> {
        let v = &self.vote;
        let member = validators
            .get(v.validator)
            .ok_or(Error::UnknownValidator { index: v.validator, len: validators.len() })?;
        member
            .key
            .verify_digest(&v.digest(chain_id), &self.signature)
            .map_err(|_| Error::BadSignature)
    }

    pub(crate) fn to_pb(self) -> pb::Vote {
        let v = self.vote;
        pb::Vote {
            kind: match v.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            },
            height: v.height.0,
            round: v.round.0,
            value_id: v.value_id.map(|h| h.0.to_vec()).unwrap_or_default(),
            validator: v.validator.0,
            signature: self.signature.0.to_vec(),
        }
    }

    pub(crate) fn from_pb(m: &pb::Vote) -> Result<Self, Error> {
        let kind = match m.kind {
            1 => VoteKind::Prevote,
            2 => VoteKind::Precommit,
            k => return Err(Error::Malformed(format!("vote kind {k}"))),
        };
        let value_id = if m.value_id.is_empty() {
            None
        } else {
            Some(wire::hash_from(&m.value_id, "vote value id")?)
        };
        Ok(Self {
            vote: Vote {
                kind,
                height: Height(m.height),
                round: Round(m.round),
                value_id,
                validator: ValidatorIndex(m.validator),
            },
            signature: wire::sig_from(&m.signature)?,
        })
    }
}

impl SignedMessage {
    /// The height the message is for.
    pub fn height(&self) -> Height {
        match self {
            Self::Proposal(p) => p.proposal.height,
            Self::Vote(v) => v.vote.height,
        }
    }

    /// The round the message is for.
    pub fn round(&self) -> Round {
        match self {
            Self::Proposal(p) => p.proposal.round,
            Self::Vote(v) => v.vote.round,
        }
    }

    /// The signer's index.
    pub fn signer(&self) -> ValidatorIndex {
        match self {
            Self::Proposal(p) => p.proposal.proposer,
            Self::Vote(v) => v.vote.validator,
        }
    }

    /// Check membership and signature.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> Result<(), Error> {
        match self {
            Self::Proposal(p) => p.verify(chain_id, validators),
            Self::Vote(v) => v.verify(chain_id, validators),
        }
    }

    /// Protobuf encoding for the network.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        let msg = match *self {
            Self::Proposal(p) => pb::signed_message::Msg::Proposal(p.to_pb()),
            Self::Vote(v) => pb::signed_message::Msg::Vote(v.to_pb()),
        };
        pb::SignedMessage { msg: Some(msg) }.encode_to_vec()
    }

    /// Decode bytes from the network: at most [`MAX_MESSAGE_BYTES`], well-formed fields.
    /// Does not verify the signature (that needs the validator set: see [`Self::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let m: pb::SignedMessage = wire::decode_canonical(bytes, MAX_MESSAGE_BYTES)?;
        match wire::required(m.msg, "message")? {
            pb::signed_message::Msg::Proposal(p) => SignedProposal::from_pb(&p).map(Self::Proposal),
            pb::signed_message::Msg::Vote(v) => SignedVote::from_pb(&v).map(Self::Vote),
        }
    }
}

impl From<SignedProposal> for SignedMessage {
    fn from(p: SignedProposal) -> Self {
        Self::Proposal(p)
    }
}

impl From<SignedVote> for SignedMessage {
    fn from(v: SignedVote) -> Self {
        Self::Vote(v)
    }
}
