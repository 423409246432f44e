//! Valid encodings of every consensus type a peer or the disk hands us: the seed corpus of the
//! `message_decode` fuzz target (fuzz/). Starting from valid messages the fuzzer reaches the
//! checks behind the protobuf layer at once instead of rediscovering the schema byte by byte.
//!
//! The test checks that every seed decodes to what was encoded. With `DPX_FUZZ_SEEDS=1` it also
//! writes them to `fuzz/corpus/message_decode/` (`scripts/fuzz.sh` then minimises the corpus).
#![allow(clippy::unwrap_used)]

use dpx_consensus::{
    Certificate, Evidence, Height, Proposal, Round, SafetyState, SignedMessage, Step,
    ValidatorIndex, ValueRound, Vote, VoteKind,
};
use dpx_crypto::{Hash, Keypair};

const CHAIN: &str = "fuzz";

fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    if std::env::var_os("DPX_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

fn vote(
    kind: VoteKind,
    round: u32,
    value: Option<Hash>,
    validator: u32,
) -> dpx_consensus::SignedVote {
    let key = Keypair::from_seed([validator as u8 + 1; 32]);
    Vote {
        kind,
        height: Height(7),
        round: Round(round),
        value_id: value,
        validator: ValidatorIndex(validator),
    }
    .sign(CHAIN, &key)
}

#[test]
fn seeds_decode_to_what_was_encoded() {
    let value = Hash([0xab; 32]);
    let other = Hash([0xcd; 32]);
    let proposer = Keypair::from_seed([1; 32]);
    let proposal = |round: u32, value_id: Hash, pol_round: Option<Round>| {
        Proposal {
            height: Height(7),
            round: Round(round),
            value_id,
            pol_round,
            proposer: ValidatorIndex(0),
        }
        .sign(CHAIN, &proposer)
    };
    let mut seeds = Vec::new();

    let messages = [
        ("proposal", SignedMessage::Proposal(proposal(0, value, None))),
        ("proposal-pol", SignedMessage::Proposal(proposal(2, value, Some(Round(1))))),
        ("prevote", SignedMessage::Vote(vote(VoteKind::Prevote, 0, Some(value), 1))),
        ("prevote-nil", SignedMessage::Vote(vote(VoteKind::Prevote, 0, None, 2))),
        ("precommit", SignedMessage::Vote(vote(VoteKind::Precommit, 3, Some(value), 3))),
    ];
    for (name, m) in messages {
        let bytes = m.encode();
        assert_eq!(SignedMessage::decode(&bytes).unwrap(), m, "{name}");
        seeds.push((name.to_string(), bytes));
    }

    let certificate = Certificate {
        height: Height(7),
        round: Round(0),
        value_id: value,
        signatures: (0..3)
            .map(|i| (ValidatorIndex(i), vote(VoteKind::Precommit, 0, Some(value), i).signature))
            .collect(),
    };
    let bytes = certificate.encode();
    assert_eq!(Certificate::decode(&bytes).unwrap(), certificate);
    seeds.push(("certificate".into(), bytes));

    let evidence = [
        (
            "evidence-votes",
            Evidence::votes(
                vote(VoteKind::Prevote, 0, Some(value), 1),
                vote(VoteKind::Prevote, 0, Some(other), 1),
            ),
        ),
        (
            "evidence-proposals",
            Evidence::proposals(proposal(0, value, None), proposal(0, other, None)),
        ),
    ];
    for (name, e) in evidence {
        let bytes = e.encode();
        assert_eq!(Evidence::decode(&bytes).unwrap(), e, "{name}");
        seeds.push((name.to_string(), bytes));
    }

    let last = SignedMessage::Vote(vote(VoteKind::Precommit, 2, Some(value), 0));
    let safety = SafetyState {
        height: Height(7),
        last_signed: Some((Round(2), Step::Precommit)),
        last_digest: Some(Hash([0x11; 32])),
        locked: Some(ValueRound { value_id: value, round: Round(1) }),
        valid: Some(ValueRound { value_id: value, round: Round(2) }),
        last_message: Some(last),
        proposal: Some(proposal(0, value, None)),
    };
    for (name, s) in [("safety", safety), ("safety-empty", SafetyState::at_height(Height(3)))] {
        let bytes = s.encode();
        assert_eq!(SafetyState::decode(&bytes).unwrap(), s, "{name}");
        seeds.push((name.to_string(), bytes));
    }

    write_seeds("message_decode", &seeds);
}
