//! The double-sign guard: the state the safety argument rests on, persisted before any
//! signature leaves the process.
//!
//! A validator may sign `(height, round, step)` only if it is strictly after the last thing it
//! signed, or is the very same message again (ed25519 signatures are deterministic, so signing
//! identical bytes twice yields the identical signature and conflicts with nothing). The core
//! records the new position, emits [`crate::Output::PersistSafety`], and only then the
//! [`crate::Output::Broadcast`]; a driver that completes the write before sending can crash at
//! any point and, restarted from what it wrote, never sign a conflicting message.

use serde::{Deserialize, Serialize};

use crate::messages::MAX_MESSAGE_BYTES;
use crate::wire::{self, pb};
use crate::{Error, Hash, Height, Round, SignedMessage, SignedProposal, SignedVote, Step};

/// Largest encoded [`SafetyState`] accepted by [`SafetyState::decode`].
pub const MAX_SAFETY_STATE_BYTES: usize = 256 + 2 * MAX_MESSAGE_BYTES;

/// A value id with the round it is tied to (the paper's `lockedValue`/`lockedRound` and
/// `validValue`/`validRound` pairs).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ValueRound {
    pub value_id: Hash,
    pub round: Round,
}

/// What a validator must remember across a crash to stay safe.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SafetyState {
    /// The height the other fields belong to.
    pub height: Height,
    /// The last `(round, step)` signed at `height`, if any.
    pub last_signed: Option<(Round, Step)>,
    /// Digest of the last signed message, so an identical re-sign after restart is allowed.
    pub last_digest: Option<Hash>,
    /// `lockedValue`/`lockedRound` (paper lines 38–39) at `height`.
    pub locked: Option<ValueRound>,
    /// `validValue`/`validRound` (paper lines 42–43) at `height`.
    pub valid: Option<ValueRound>,
    /// The last signed message itself. A node that crashed after persisting but before
    /// sending re-broadcasts it on restart; without it, the vote would be lost for good (the
    /// guard refuses any other vote at that position) and a round could stall.
    pub last_message: Option<SignedMessage>,
    /// Our own signed proposal at `height`, for the latest round we proposed in. A proposer
    /// restarted in that round sends exactly this one again (the guard would refuse any
    /// other, and asking the application for a new value would only lose the round); kept
    /// apart from `last_message` because our prevote replaces that a moment later.
    pub proposal: Option<SignedProposal>,
}

/// Why the guard refused to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("already signed at a higher height {last}")]
    LowerHeight { last: Height },
    #[error("already signed ({last_round}, {last_step:?}), refusing an earlier position")]
    EarlierPosition { last_round: Round, last_step: Step },
    #[error("already signed a different message at ({round}, {step:?})")]
    Conflicting { round: Round, step: Step },
}

impl SafetyState {
    /// The fresh state for `height`: nothing signed, no lock, no valid value.
    pub fn at_height(height: Height) -> Self {
        Self { height, ..Self::default() }
    }

    /// May a message with `digest` be signed at `(height, round, step)`?
    pub fn check(
        &self,
        height: Height,
        round: Round,
        step: Step,
        digest: &Hash,
    ) -> Result<(), Refusal> {
        if height < self.height {
            return Err(Refusal::LowerHeight { last: self.height });
        }
        if height > self.height {
            return Ok(());
        }
        match self.last_signed {
            None => Ok(()),
            Some(last) if (round, step) > last => Ok(()),
            Some(last) if (round, step) == last => {
                if self.last_digest.as_ref() == Some(digest) {
                    Ok(())
                } else {
                    Err(Refusal::Conflicting { round, step })
                }
            }
            Some((last_round, last_step)) => {
                Err(Refusal::EarlierPosition { last_round, last_step })
            }
        }
    }

    /// Check, then record the position as signed. Moving to a higher height drops the lock and
    /// valid value of the old one (paper line 53).
    pub fn sign(
        &mut self,
        height: Height,
        round: Round,
        step: Step,
        digest: Hash,
    ) -> Result<(), Refusal> {
        self.check(height, round, step, &digest)?;
        if height > self.height {
            *self = Self::at_height(height);
        }
        self.last_signed = Some((round, step));
        self.last_digest = Some(digest);
        Ok(())
    }

    /// Protobuf encoding, for the driver's durable store.
    pub fn encode(&self) -> Vec<u8> {
        use prost::Message;
        let vr = |v: Option<ValueRound>| {
            v.map(|v| pb::ValueRound { value_id: v.value_id.0.to_vec(), round: v.round.0 })
        };
        pb::SafetyState {
            height: self.height.0,
            round: self.last_signed.map_or(0, |(r, _)| r.0),
            step: match self.last_signed {
                None => 0,
                Some((_, Step::Propose)) => 1,
                Some((_, Step::Prevote)) => 2,
                Some((_, Step::Precommit)) => 3,
            },
            last_digest: self.last_digest.map(|d| d.0.to_vec()).unwrap_or_default(),
            locked: vr(self.locked),
            valid: vr(self.valid),
            last_message: self.last_message.map(|m| match m {
                SignedMessage::Proposal(p) => {
                    pb::SignedMessage { msg: Some(pb::signed_message::Msg::Proposal(p.to_pb())) }
                }
                SignedMessage::Vote(v) => {
                    pb::SignedMessage { msg: Some(pb::signed_message::Msg::Vote(v.to_pb())) }
                }
            }),
            proposal: self.proposal.map(SignedProposal::to_pb),
        }
        .encode_to_vec()
    }

    /// Decode what [`Self::encode`] wrote (bounded by [`MAX_SAFETY_STATE_BYTES`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let m: pb::SafetyState = wire::decode_bounded(bytes, MAX_SAFETY_STATE_BYTES)?;
        let step = match m.step {
            0 => None,
            1 => Some(Step::Propose),
            2 => Some(Step::Prevote),
            3 => Some(Step::Precommit),
            s => return Err(Error::Malformed(format!("safety step {s}"))),
        };
        let vr = |v: Option<pb::ValueRound>| -> Result<Option<ValueRound>, Error> {
            v.map(|v| {
                Ok(ValueRound {
                    value_id: wire::hash_from(&v.value_id, "safety value")?,
                    round: Round(v.round),
                })
            })
            .transpose()
        };
        let last_digest = if m.last_digest.is_empty() {
            None
        } else {
            Some(wire::hash_from(&m.last_digest, "last digest")?)
        };
        if step.is_some() != last_digest.is_some() {
            return Err(Error::Malformed("safety step and digest disagree".into()));
        }
        let last_message = match m.last_message.and_then(|x| x.msg) {
            None => None,
            Some(pb::signed_message::Msg::Proposal(p)) => {
                Some(SignedMessage::Proposal(SignedProposal::from_pb(&p)?))
            }
            Some(pb::signed_message::Msg::Vote(v)) => {
                Some(SignedMessage::Vote(SignedVote::from_pb(&v)?))
            }
        };
        let proposal = m.proposal.as_ref().map(SignedProposal::from_pb).transpose()?;
        if proposal.is_some_and(|p| p.proposal.height != Height(m.height)) {
            return Err(Error::Malformed("safety proposal is for another height".into()));
        }
        Ok(Self {
            height: Height(m.height),
            last_signed: step.map(|s| (Round(m.round), s)),
            last_digest,
            locked: vr(m.locked)?,
            valid: vr(m.valid)?,
            last_message,
            proposal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(b: u8) -> Hash {
        Hash([b; 32])
    }

    fn signed_at(h: u64, r: u32, s: Step) -> SafetyState {
        let mut st = SafetyState::at_height(Height(h));
        st.sign(Height(h), Round(r), s, d(1)).unwrap();
        st
    }

    #[test]
    fn refuses_lower_height() {
        let st = signed_at(5, 0, Step::Prevote);
        assert_eq!(
            st.check(Height(4), Round(9), Step::Precommit, &d(2)),
            Err(Refusal::LowerHeight { last: Height(5) })
        );
    }

    #[test]
    fn refuses_lower_round_at_same_height() {
        let st = signed_at(5, 3, Step::Propose);
        assert!(matches!(
            st.check(Height(5), Round(2), Step::Precommit, &d(2)),
            Err(Refusal::EarlierPosition { .. })
        ));
    }

    #[test]
    fn refuses_earlier_step_in_same_round() {
        let st = signed_at(5, 3, Step::Precommit);
        assert!(matches!(
            st.check(Height(5), Round(3), Step::Prevote, &d(1)),
            Err(Refusal::EarlierPosition { .. })
        ));
    }

    #[test]
    fn refuses_a_different_message_at_the_same_position() {
        let st = signed_at(5, 3, Step::Prevote);
        assert_eq!(
            st.check(Height(5), Round(3), Step::Prevote, &d(2)),
            Err(Refusal::Conflicting { round: Round(3), step: Step::Prevote })
        );
    }

    #[test]
    fn allows_the_identical_message_and_later_positions() {
        let mut st = signed_at(5, 3, Step::Prevote);
        assert!(st.check(Height(5), Round(3), Step::Prevote, &d(1)).is_ok());
        assert!(st.check(Height(5), Round(3), Step::Precommit, &d(2)).is_ok());
        assert!(st.check(Height(5), Round(4), Step::Propose, &d(2)).is_ok());
        st.locked = Some(ValueRound { value_id: d(7), round: Round(3) });
        st.sign(Height(6), Round(0), Step::Prevote, d(3)).unwrap();
        assert_eq!(st.locked, None, "a new height drops the old lock");
        assert_eq!(st.last_signed, Some((Round(0), Step::Prevote)));
    }

    #[test]
    fn refusal_leaves_state_unchanged() {
        let mut st = signed_at(5, 3, Step::Prevote);
        let before = st;
        assert!(st.sign(Height(5), Round(3), Step::Prevote, d(9)).is_err());
        assert_eq!(st, before);
    }

    #[test]
    fn decode_rejects_oversized_and_inconsistent() {
        assert!(matches!(SafetyState::decode(&[0; 2000]), Err(Error::TooLarge { .. })));
        let bad = pb::SafetyState { height: 1, round: 0, step: 2, ..Default::default() };
        assert!(SafetyState::decode(&prost::Message::encode_to_vec(&bad)).is_err());
        let bad = pb::SafetyState { step: 9, last_digest: vec![0; 32], ..Default::default() };
        assert!(SafetyState::decode(&prost::Message::encode_to_vec(&bad)).is_err());
    }

    fn arb_vr() -> impl Strategy<Value = Option<ValueRound>> {
        proptest::option::of(
            (any::<[u8; 32]>(), any::<u32>())
                .prop_map(|(h, r)| ValueRound { value_id: Hash(h), round: Round(r) }),
        )
    }

    proptest! {
        #[test]
        fn round_trip(h in any::<u64>(), signed in proptest::option::of((any::<u32>(), 0u8..3, any::<[u8; 32]>())),
                      locked in arb_vr(), valid in arb_vr()) {
            let st = SafetyState {
                height: Height(h),
                last_signed: signed.map(|(r, s, _)| (Round(r), [Step::Propose, Step::Prevote, Step::Precommit][s as usize])),
                last_digest: signed.map(|(_, _, d)| Hash(d)),
                locked,
                valid,
                last_message: signed.map(|(r, _, d)| SignedMessage::Vote(SignedVote {
                    vote: crate::Vote { kind: crate::VoteKind::Precommit, height: Height(h), round: Round(r), value_id: Some(Hash(d)), validator: crate::ValidatorIndex(r % 7) },
                    signature: dpx_crypto::Signature([r as u8; 64]),
                })),
                proposal: signed.map(|(r, _, d)| SignedProposal {
                    proposal: crate::Proposal { height: Height(h), round: Round(r), value_id: Hash(d), pol_round: r.checked_sub(1).map(Round), proposer: crate::ValidatorIndex(r % 5) },
                    signature: dpx_crypto::Signature([r as u8 ^ 1; 64]),
                }),
            };
            prop_assert_eq!(SafetyState::decode(&st.encode()).unwrap(), st);
        }
    }
}
