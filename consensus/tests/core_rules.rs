//! Unit-level checks of the public API: wire round trips, certificate and evidence
//! verification, every refusal of a bad message (typed error, no state change), the safety
//! guard across a restart, round skipping (paper line 55) and next-height buffering.

// Helpers outside #[test] fns unwrap setup that cannot fail (fixed keys and sets).
#![allow(clippy::unwrap_used, clippy::type_complexity, clippy::large_types_passed_by_value)]

use dpx_consensus::{
    Certificate, Consensus, ConsensusConfig, Error, Evidence, Hash, Height, Input, Output,
    Proposal, Round, SafetyState, SignedMessage, SignedVote, Step, Validator, ValidatorIndex,
    ValidatorSet, Vote, VoteKind,
};
use dpx_crypto::{Keypair, Signature};
use proptest::prelude::*;

const CHAIN: &str = "unit";

fn keys(n: u8) -> Vec<Keypair> {
    (1..=n).map(|i| Keypair::from_seed([i; 32])).collect()
}

fn set(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 }).collect())
        .unwrap()
}

fn vote(keys: &[Keypair], i: usize, kind: VoteKind, h: u64, r: u32, v: Option<Hash>) -> SignedVote {
    Vote {
        kind,
        height: Height(h),
        round: Round(r),
        value_id: v,
        validator: ValidatorIndex(i as u32),
    }
    .sign(CHAIN, &keys[i])
}

/// A follower at height 1 (it never signs, so nothing it outputs depends on a key).
fn started(
    keys: &[Keypair],
    signer: Option<usize>,
    persisted: Option<SafetyState>,
) -> (Consensus, Vec<Output>) {
    let mut c = Consensus::new(
        CHAIN,
        signer.map(|i| keys[i].clone()),
        ConsensusConfig::default(),
        persisted,
    );
    let out = c.handle(Input::StartHeight { height: Height(1), validators: set(keys) }).unwrap();
    (c, out)
}

fn broadcasts(out: &[Output]) -> Vec<SignedMessage> {
    out.iter().filter_map(|o| if let Output::Broadcast(m) = o { Some(*m) } else { None }).collect()
}

#[test]
fn every_bad_message_is_refused_without_state_change() {
    let ks = keys(4);
    let (mut c, _) = started(&ks, Some(0), None);
    let v = Hash::digest(b"x");
    let good = vote(&ks, 1, VoteKind::Prevote, 1, 0, Some(v));
    let outsider = Keypair::from_seed([99; 32]);
    let cases: Vec<(SignedMessage, fn(&Error) -> bool)> = vec![
        (SignedMessage::Vote(SignedVote { signature: Signature([3; 64]), ..good }), |e| {
            matches!(e, Error::BadSignature)
        }),
        (SignedMessage::Vote(good.vote.sign("other-chain", &ks[1])), |e| {
            matches!(e, Error::BadSignature)
        }),
        (SignedMessage::Vote(good.vote.sign(CHAIN, &outsider)), |e| {
            matches!(e, Error::BadSignature)
        }),
        (
            SignedMessage::Vote(
                Vote { validator: ValidatorIndex(9), ..good.vote }.sign(CHAIN, &ks[1]),
            ),
            |e| matches!(e, Error::UnknownValidator { .. }),
        ),
        (SignedMessage::Vote(vote(&ks, 1, VoteKind::Prevote, 7, 0, Some(v))), |e| {
            matches!(e, Error::FarFutureHeight { .. })
        }),
        (SignedMessage::Vote(vote(&ks, 1, VoteKind::Prevote, 0, 0, Some(v))), |e| {
            matches!(e, Error::WrongHeight { .. })
        }),
        (SignedMessage::Vote(vote(&ks, 1, VoteKind::Prevote, 1, 1_000, Some(v))), |e| {
            matches!(e, Error::FarFutureRound { .. })
        }),
        (
            SignedMessage::Proposal(
                Proposal {
                    height: Height(1),
                    round: Round(0),
                    value_id: v,
                    pol_round: None,
                    proposer: ValidatorIndex(3),
                }
                .sign(CHAIN, &ks[3]),
            ),
            |e| matches!(e, Error::NotProposer { .. }),
        ),
    ];
    for (msg, expected) in cases {
        let (view, safety) = (c.view(), *c.safety());
        let err = c.check(&msg).unwrap_err();
        assert!(expected(&err), "{msg:?}: unexpected {err:?}");
        let input = match msg {
            SignedMessage::Proposal(p) => Input::Proposal(p),
            SignedMessage::Vote(v) => Input::Vote(v),
        };
        assert_eq!(c.handle(input).unwrap_err(), err);
        assert_eq!((c.view(), *c.safety()), (view, safety), "refused input changed state");
    }
    // Oversized bytes never reach the core.
    assert!(matches!(SignedMessage::decode(&[0; 4096]), Err(Error::TooLarge { .. })));
    // And a good message still goes through.
    assert!(c.handle(Input::Vote(good)).is_ok());
    let fresh = Consensus::new(CHAIN, None, ConsensusConfig::default(), None);
    assert_eq!(fresh.check(&SignedMessage::Vote(good)), Err(Error::NotStarted));
}

#[test]
fn restart_never_signs_a_conflicting_vote_and_resends_the_last_one() {
    let ks = keys(4);
    // Round-robin slot (height 1 + round 0) is validator 1, the proposer; we are validator 2.
    let me = 2;
    let (mut c, _) = started(&ks, Some(me), None);
    let proposer = set(&ks).selector().proposer_index(Height(1), Round(0));
    let v = Hash::digest(b"block");
    let p = Proposal { height: Height(1), round: Round(0), value_id: v, pol_round: None, proposer }
        .sign(CHAIN, &ks[proposer.get()]);
    let out = c.handle(Input::Proposal(p)).unwrap();
    assert!(out.iter().any(|o| matches!(o, Output::ValidateValue { .. })));
    let out = c
        .handle(Input::ValueValidity {
            height: Height(1),
            round: Round(0),
            value_id: v,
            valid: true,
        })
        .unwrap();
    // Persist comes before the broadcast it covers.
    let persist = out.iter().position(|o| matches!(o, Output::PersistSafety(_))).unwrap();
    let send = out.iter().position(|o| matches!(o, Output::Broadcast(_))).unwrap();
    assert!(persist < send);
    let Output::PersistSafety(saved) = out[persist] else { unreachable!() };
    let prevote = broadcasts(&out)[0];

    // Crash; restart from what was persisted. The proposal is gone, so the propose timeout
    // wants a nil prevote: the guard must refuse it, and the identical prevote is re-sent.
    let (mut c2, out) = started(&ks, Some(me), Some(SafetyState::decode(&saved.encode()).unwrap()));
    assert_eq!(broadcasts(&out), vec![prevote]);
    let out = c2
        .handle(Input::TimeoutFired { height: Height(1), round: Round(0), step: Step::Propose })
        .unwrap();
    assert!(broadcasts(&out).is_empty(), "signed a conflicting prevote after restart: {out:?}");
    assert_eq!(c2.view().unwrap().step, Step::Prevote);
}

/// Issue 14: a proposer that crashes after persisting its proposal and before sending it must
/// send that very proposal after the restart: not nothing (the round would be lost), and never
/// a different one (a new value request could only meet the guard's refusal).
#[test]
fn a_restarted_proposer_resends_its_persisted_proposal() {
    let ks = keys(4);
    let me = set(&ks).selector().proposer_index(Height(1), Round(0)).get();
    let (mut c, out) = started(&ks, Some(me), None);
    assert!(out.iter().any(|o| matches!(o, Output::RequestValue { .. })));
    let v = Hash::digest(b"our block");
    let out =
        c.handle(Input::ProposeValue { height: Height(1), round: Round(0), value_id: v }).unwrap();
    let Some(Output::PersistSafety(saved)) = out.first().cloned() else { panic!("{out:?}") };
    let sent = broadcasts(&out);
    assert!(matches!(sent[..], [SignedMessage::Proposal(_)]));
    // Our own proposal comes back (the driver loops it) and we prevote for it: the prevote
    // replaces the proposal as the last message, but the proposal is still on record.
    let out = c.handle(Input::Proposal(match sent[0] {
        SignedMessage::Proposal(p) => p,
        SignedMessage::Vote(_) => unreachable!(),
    }));
    let after_prevote = out
        .unwrap()
        .into_iter()
        .find_map(|o| if let Output::PersistSafety(s) = o { Some(s) } else { None })
        .unwrap();

    for persisted in [saved, after_prevote] {
        let restored = SafetyState::decode(&persisted.encode()).unwrap();
        let (mut c2, out) = started(&ks, Some(me), Some(restored));
        assert!(
            !out.iter().any(|o| matches!(o, Output::RequestValue { .. })),
            "asked for a new value in a round it already proposed in: {out:?}"
        );
        let resent = broadcasts(&out);
        assert_eq!(resent.iter().filter(|m| **m == sent[0]).count(), 1, "{out:?}");
        assert!(
            resent.iter().all(|m| !matches!(m, SignedMessage::Proposal(_)) || *m == sent[0]),
            "a different proposal for the same height and round: {out:?}"
        );
        // A late value answer cannot make it sign another one either.
        let out = c2
            .handle(Input::ProposeValue {
                height: Height(1),
                round: Round(0),
                value_id: Hash::digest(b"other"),
            })
            .unwrap();
        assert!(broadcasts(&out).is_empty(), "{out:?}");
    }
}

#[test]
fn f_plus_one_messages_of_a_higher_round_skip_to_it() {
    let ks = keys(4);
    let (mut c, _) = started(&ks, None, None);
    c.handle(Input::Vote(vote(&ks, 1, VoteKind::Prevote, 1, 5, None))).unwrap();
    assert_eq!(c.view().unwrap().round, Round(0), "one validator is not f+1");
    let out = c.handle(Input::Vote(vote(&ks, 2, VoteKind::Precommit, 1, 5, None))).unwrap(); // L55
    assert_eq!(c.view().unwrap().round, Round(5));
    assert!(out.iter().any(|o| matches!(
        o,
        Output::ScheduleTimeout { round: Round(5), step: Step::Propose, .. }
    )));
}

#[test]
fn next_height_messages_are_buffered_and_replayed() {
    let ks = keys(4);
    let (mut c, _) = started(&ks, None, None);
    let v2 = vote(&ks, 1, VoteKind::Prevote, 2, 3, None);
    let v3 = vote(&ks, 2, VoteKind::Prevote, 2, 3, None);
    assert!(c.handle(Input::Vote(v2)).unwrap().is_empty());
    assert!(c.handle(Input::Vote(v3)).unwrap().is_empty());
    assert_eq!(c.view().unwrap().round, Round(0));
    c.handle(Input::StartHeight { height: Height(2), validators: set(&ks) }).unwrap();
    // The two buffered round-3 votes are f+1: replaying them skips to round 3.
    assert_eq!(c.view().unwrap().round, Round(3));
    assert!(c.knows(&SignedMessage::Vote(v2)));
    assert!(matches!(
        c.handle(Input::StartHeight { height: Height(2), validators: set(&ks) }),
        Err(Error::BadStartHeight { .. })
    ));
}

#[test]
fn equivocation_becomes_verifiable_evidence() {
    let ks = keys(4);
    let (mut c, _) = started(&ks, None, None);
    let a = vote(&ks, 1, VoteKind::Prevote, 1, 0, Some(Hash::digest(b"a")));
    let b = vote(&ks, 1, VoteKind::Prevote, 1, 0, None);
    assert!(c.handle(Input::Vote(a)).unwrap().is_empty());
    let out = c.handle(Input::Vote(b)).unwrap();
    let ev =
        out.iter().find_map(|o| if let Output::Evidence(e) = o { Some(*e) } else { None }).unwrap();
    ev.verify(CHAIN, &set(&ks)).unwrap();
    assert_eq!(ev.offender(), ValidatorIndex(1));
    assert_eq!(Evidence::decode(&ev.encode()).unwrap(), ev);
    assert!(Evidence::votes(a, a).verify(CHAIN, &set(&ks)).is_err());
    let other = vote(&ks, 2, VoteKind::Prevote, 1, 0, None);
    assert!(Evidence::votes(a, other).verify(CHAIN, &set(&ks)).is_err());
    assert!(
        Evidence::votes(a, SignedVote { signature: Signature([1; 64]), ..b })
            .verify(CHAIN, &set(&ks))
            .is_err()
    );
    assert!(ev.verify("another-chain", &set(&ks)).is_err());
}

#[test]
fn certificates_verify_only_with_a_signed_quorum() {
    let ks = keys(4);
    let vs = set(&ks);
    let v = Hash::digest(b"block");
    let sig = |i: usize| {
        (ValidatorIndex(i as u32), vote(&ks, i, VoteKind::Precommit, 3, 1, Some(v)).signature)
    };
    let cert = Certificate {
        height: Height(3),
        round: Round(1),
        value_id: v,
        signatures: vec![sig(0), sig(1), sig(3)],
    };
    cert.verify(CHAIN, &vs).unwrap();
    assert_eq!(Certificate::decode(&cert.encode()).unwrap(), cert);
    assert_ne!(cert.hash(), Certificate { round: Round(2), ..cert.clone() }.hash());
    let short = Certificate { signatures: vec![sig(0), sig(1)], ..cert.clone() };
    assert!(matches!(short.verify(CHAIN, &vs), Err(Error::NoQuorum { got: 2, quorum: 3 })));
    let dup = Certificate { signatures: vec![sig(0), sig(0), sig(1)], ..cert.clone() };
    assert!(matches!(dup.verify(CHAIN, &vs), Err(Error::DuplicateSigner(_))));
    let mut bad = cert.clone();
    bad.signatures[2].1 = Signature([5; 64]);
    assert!(matches!(bad.verify(CHAIN, &vs), Err(Error::BadSignature)));
    assert!(matches!(cert.verify("other", &vs), Err(Error::BadSignature)));
    let unknown = Certificate {
        signatures: vec![sig(0), sig(1), (ValidatorIndex(7), sig(3).1)],
        ..cert.clone()
    };
    assert!(matches!(unknown.verify(CHAIN, &vs), Err(Error::UnknownValidator { .. })));
    assert!(matches!(Certificate::decode(&vec![0; 200_000]), Err(Error::TooLarge { .. })));
}

fn arb_hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn arb_vote() -> impl Strategy<Value = SignedVote> {
    (
        any::<bool>(),
        any::<u64>(),
        any::<u32>(),
        proptest::option::of(arb_hash()),
        any::<u32>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(pre, h, r, v, i, s1, s2)| {
            let mut sig = [0u8; 64];
            sig[..32].copy_from_slice(&s1);
            sig[32..].copy_from_slice(&s2);
            SignedVote {
                vote: Vote {
                    kind: if pre { VoteKind::Prevote } else { VoteKind::Precommit },
                    height: Height(h),
                    round: Round(r),
                    value_id: v,
                    validator: ValidatorIndex(i),
                },
                signature: Signature(sig),
            }
        })
}

fn arb_proposal() -> impl Strategy<Value = dpx_consensus::SignedProposal> {
    (
        any::<u64>(),
        any::<u32>(),
        arb_hash(),
        proptest::option::of(any::<u32>()),
        any::<u32>(),
        any::<u8>(),
    )
        .prop_map(|(h, r, v, pol, i, s)| dpx_consensus::SignedProposal {
            proposal: Proposal {
                height: Height(h),
                round: Round(r),
                value_id: v,
                pol_round: pol.map(Round),
                proposer: ValidatorIndex(i),
            },
            signature: Signature([s; 64]),
        })
}

proptest! {
    #[test]
    fn messages_round_trip(v in arb_vote(), p in arb_proposal()) {
        for m in [SignedMessage::Vote(v), SignedMessage::Proposal(p)] {
            let bytes = m.encode();
            prop_assert!(bytes.len() <= dpx_consensus::MAX_MESSAGE_BYTES);
            prop_assert_eq!(SignedMessage::decode(&bytes).unwrap(), m);
        }
    }

    #[test]
    fn evidence_and_certificates_round_trip(a in arb_vote(), b in arb_vote(), p in arb_proposal(), q in arb_proposal(),
                                            sigs in proptest::collection::vec((any::<u32>(), any::<u8>()), 0..20)) {
        for e in [Evidence::votes(a, b), Evidence::proposals(p, q)] {
            prop_assert_eq!(Evidence::decode(&e.encode()).unwrap(), e);
        }
        let cert = Certificate {
            height: a.vote.height, round: a.vote.round, value_id: p.proposal.value_id,
            signatures: sigs.iter().map(|(i, s)| (ValidatorIndex(*i), Signature([*s; 64]))).collect(),
        };
        prop_assert_eq!(Certificate::decode(&cert.encode()).unwrap(), cert);
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedMessage::decode(&bytes);
        let _ = Evidence::decode(&bytes);
        let _ = Certificate::decode(&bytes);
        let _ = SafetyState::decode(&bytes);
    }
}

/// The one message the core signs when the propose timeout of `h`, round 0, fires (a nil
/// prevote), checked against `set`: who signed it, as which member.
fn prevote_on_timeout(c: &mut Consensus, h: u64, set: &ValidatorSet) -> Option<ValidatorIndex> {
    let out = c
        .handle(Input::TimeoutFired { height: Height(h), round: Round(0), step: Step::Propose })
        .unwrap();
    let signed = broadcasts(&out);
    assert!(signed.len() <= 1, "{signed:?}");
    signed.first().map(|m| {
        m.verify(CHAIN, set).expect("signed by the member it names");
        m.signer()
    })
}

/// Issue 19, key rotation: a validator whose key governance rotates signs every height before
/// the change with the old key and every height from it with the new one — one key per height,
/// never both — and the old key never signs again, even if a later set holds it.
#[test]
fn a_rotated_validator_signs_each_height_with_exactly_one_key() {
    let ks = keys(4);
    let (old, new) = (ks[3].clone(), Keypair::from_seed([9; 32]));
    let before = set(&ks);
    let after = set(&[ks[0].clone(), ks[1].clone(), ks[2].clone(), new.clone()]);
    let mut c = Consensus::new(CHAIN, Some(old.clone()), ConsensusConfig::default(), None);
    c.stage_next_signer(new.clone());

    c.handle(Input::StartHeight { height: Height(1), validators: before.clone() }).unwrap();
    assert_eq!(c.signer_key(), Some(old.public()));
    assert_eq!(prevote_on_timeout(&mut c, 1, &before), before.index_of(&old.public()));

    c.handle(Input::StartHeight { height: Height(2), validators: after.clone() }).unwrap();
    assert_eq!(c.signer_key(), Some(new.public()));
    assert_eq!(c.my_index(), after.index_of(&new.public()));
    assert_eq!(prevote_on_timeout(&mut c, 2, &after), after.index_of(&new.public()));

    // A later set with the old key again: it stays retired; this core does not sign.
    c.handle(Input::StartHeight { height: Height(3), validators: before.clone() }).unwrap();
    assert_eq!(c.signer_key(), Some(new.public()));
    assert_eq!(c.my_index(), None);
    assert_eq!(prevote_on_timeout(&mut c, 3, &before), None);

    // A set holding both keys: the new one alone signs.
    let both = set(&[ks[0].clone(), ks[1].clone(), old.clone(), new.clone()]);
    let mut c = Consensus::new(CHAIN, Some(old), ConsensusConfig::default(), None);
    c.stage_next_signer(new.clone());
    c.handle(Input::StartHeight { height: Height(1), validators: both.clone() }).unwrap();
    assert_eq!(prevote_on_timeout(&mut c, 1, &both), both.index_of(&new.public()));
}
