//! A garbage sender: random bytes, oversized frames, and well-formed messages that must be
//! refused — bad signatures, another chain's signatures, unknown validators, far-future
//! heights and rounds, proposals out of turn.

use dpx_consensus::{
    Hash, Height, MAX_MESSAGE_BYTES, Proposal, Round, SignedMessage, SignedVote, ValidatorIndex,
    Vote, VoteKind,
};
use dpx_crypto::Signature;
use rand::Rng;

use super::{Behaviour, ByzCtx, Send};

#[derive(Debug, Default)]
pub struct Garbage;

impl Behaviour for Garbage {
    fn on_message(&mut self, ctx: &mut ByzCtx<'_>, _: usize, _: &SignedMessage) -> Vec<Send> {
        if ctx.rng.gen_bool(0.2) { self.on_tick(ctx) } else { Vec::new() }
    }

    fn on_tick(&mut self, ctx: &mut ByzCtx<'_>) -> Vec<Send> {
        let (h, r) = (ctx.height, ctx.round);
        let value = Hash(ctx.rng.r#gen());
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: h,
            round: r,
            value_id: Some(value),
            validator: ctx.me,
        };
        let bytes = match ctx.rng.gen_range(0..8) {
            0 => (0..ctx.rng.gen_range(0..64)).map(|_| ctx.rng.r#gen::<u8>()).collect(),
            1 => vec![0x0a; MAX_MESSAGE_BYTES + 1 + ctx.rng.gen_range(0..100)],
            2 => SignedMessage::Vote(SignedVote { vote, signature: Signature([7; 64]) }).encode(),
            3 => SignedMessage::Vote(vote.sign("another-chain", ctx.key)).encode(),
            4 => SignedMessage::Vote(
                Vote { validator: ValidatorIndex(999), ..vote }.sign(ctx.chain_id, ctx.key),
            )
            .encode(),
            5 => SignedMessage::Vote(
                Vote { height: Height(h.0 + 5), ..vote }.sign(ctx.chain_id, ctx.key),
            )
            .encode(),
            6 => SignedMessage::Vote(
                Vote { round: Round(r.0 + 10_000), ..vote }.sign(ctx.chain_id, ctx.key),
            )
            .encode(),
            _ => {
                let p = Proposal {
                    height: h,
                    round: r,
                    value_id: value,
                    pol_round: Some(Round(r.0 + 3)),
                    proposer: ctx.me,
                };
                SignedMessage::Proposal(p.sign(ctx.chain_id, ctx.key)).encode()
            }
        };
        vec![Send { to: None, bytes }]
    }
}
