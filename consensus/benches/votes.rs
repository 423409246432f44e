//! Votes handled per second by the core at 4, 16, 64 and 128 validators.
//! Run with `cargo bench -p dpx-consensus`. Each iteration feeds one round's prevotes and
//! precommits from every validator (signature verification included) to a fresh core that has
//! the proposal; criterion reports the throughput in votes (elements) per second.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use dpx_consensus::{
    Consensus, ConsensusConfig, Hash, Height, Input, Round, SignedVote, Validator, ValidatorIndex,
    ValidatorSet, Vote, VoteKind,
};
use dpx_crypto::Keypair;
use std::hint::black_box;

struct Setup {
    set: ValidatorSet,
    proposal: Input,
    votes: Vec<SignedVote>,
}

fn setup(n: usize) -> Setup {
    let chain = "bench";
    let keys: Vec<Keypair> =
        (0..n).map(|i| Keypair::from_seed(Hash::digest(&(i as u64).to_le_bytes()).0)).collect();
    let set =
        ValidatorSet::new(keys.iter().map(|k| Validator { key: k.public(), power: 1 }).collect())
            .expect("valid set");
    let h = Height(1);
    let proposer = set.selector().proposer_index(h, Round(0));
    let value = Hash::digest(b"block");
    let proposal = dpx_consensus::Proposal {
        height: h,
        round: Round(0),
        value_id: value,
        pol_round: None,
        proposer,
    }
    .sign(chain, &keys[proposer.get()]);
    let mut votes = Vec::new();
    for kind in [VoteKind::Prevote, VoteKind::Precommit] {
        for (i, k) in keys.iter().enumerate() {
            let v = Vote {
                kind,
                height: h,
                round: Round(0),
                value_id: Some(value),
                validator: ValidatorIndex(i as u32),
            };
            votes.push(v.sign(chain, k));
        }
    }
    Setup { set, proposal: Input::Proposal(proposal), votes }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("votes_handled");
    g.sample_size(10);
    for n in [4usize, 16, 64, 128] {
        let s = setup(n);
        g.throughput(Throughput::Elements(s.votes.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &s, |b, s| {
            b.iter(|| {
                // A follower (no key) so the run measures vote handling, not signing.
                let mut core = Consensus::new("bench", None, ConsensusConfig::default(), None);
                core.handle(Input::StartHeight { height: Height(1), validators: s.set.clone() })
                    .expect("start");
                core.handle(s.proposal.clone()).expect("proposal");
                let value = Hash::digest(b"block");
                core.handle(Input::ValueValidity {
                    height: Height(1),
                    round: Round(0),
                    value_id: value,
                    valid: true,
                })
                .expect("validity");
                let mut decided = false;
                for v in &s.votes {
                    let out = core.handle(Input::Vote(*v)).expect("vote");
                    decided |=
                        out.iter().any(|o| matches!(o, dpx_consensus::Output::Decide { .. }));
                }
                assert!(decided);
                black_box(core)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
