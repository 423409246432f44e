//! Every signed structure has one byte form: a decoder accepts only the canonical encoding, so
//! a relay cannot pad a message (unknown fields, repeated fields, a second copy) to make it
//! larger or to make two encodings of one message look like two messages.

use dpx_consensus::{
    Certificate, Evidence, Hash, Height, Proposal, Round, SignedMessage, ValidatorIndex, Vote,
    VoteKind,
};
use dpx_crypto::Keypair;

const CHAIN: &str = "dpx-test";

/// Other encodings of what `bytes` encodes (or of a message very close to it).
fn padded(bytes: &[u8]) -> Vec<Vec<u8>> {
    vec![
        // An unknown varint field (15), then an unknown length-delimited one (127), empty.
        [bytes, &[0x78, 0x00]].concat(),
        [bytes, &[0xfa, 0x07, 0x00]].concat(),
        // The message twice: protobuf merges the copies.
        [bytes, bytes].concat(),
    ]
}

fn vote(kind: VoteKind, value: &[u8], key: &Keypair) -> dpx_consensus::SignedVote {
    Vote {
        kind,
        height: Height(7),
        round: Round(1),
        value_id: Some(Hash::digest(value)),
        validator: ValidatorIndex(2),
    }
    .sign(CHAIN, key)
}

#[test]
fn signed_messages_decode_only_canonically() {
    let key = Keypair::from_seed([2; 32]);
    let proposal = Proposal {
        height: Height(7),
        round: Round(1),
        value_id: Hash::digest(b"block"),
        pol_round: Some(Round(0)),
        proposer: ValidatorIndex(2),
    }
    .sign(CHAIN, &key);
    for msg in [
        SignedMessage::Proposal(proposal),
        SignedMessage::Vote(vote(VoteKind::Prevote, b"block", &key)),
    ] {
        let bytes = msg.encode();
        assert_eq!(SignedMessage::decode(&bytes).unwrap(), msg);
        for other in padded(&bytes) {
            assert!(SignedMessage::decode(&other).is_err(), "{other:?} accepted");
        }
    }
}

#[test]
fn certificates_decode_only_canonically() {
    let keys: Vec<Keypair> = (1..=3).map(|i| Keypair::from_seed([i; 32])).collect();
    let value_id = Hash::digest(b"block");
    let cert = Certificate {
        height: Height(7),
        round: Round(1),
        value_id,
        signatures: keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let v = Vote {
                    kind: VoteKind::Precommit,
                    height: Height(7),
                    round: Round(1),
                    value_id: Some(value_id),
                    validator: ValidatorIndex(i as u32),
                };
                (ValidatorIndex(i as u32), v.sign(CHAIN, k).signature)
            })
            .collect(),
    };
    let bytes = cert.encode();
    assert_eq!(Certificate::decode(&bytes).unwrap(), cert);
    for other in padded(&bytes) {
        assert!(Certificate::decode(&other).is_err(), "{other:?} accepted");
    }
}

#[test]
fn evidence_decodes_only_canonically() {
    let key = Keypair::from_seed([2; 32]);
    let (a, b) = (vote(VoteKind::Precommit, b"one", &key), vote(VoteKind::Precommit, b"two", &key));
    let ev = Evidence::votes(a, b);
    let bytes = ev.encode();
    assert_eq!(Evidence::decode(&bytes).unwrap(), ev);
    for other in padded(&bytes) {
        assert!(Evidence::decode(&other).is_err(), "{other:?} accepted");
    }
    // The pair in the other order is the same evidence: only the canonical order decodes.
    let swapped = match ev {
        Evidence::ConflictingVotes(x, y) => Evidence::ConflictingVotes(y, x),
        Evidence::ConflictingProposals(..) => unreachable!("built from votes"),
    };
    assert!(Evidence::decode(&swapped.encode()).is_err());
}
