//! A split-brain equivocator: it splits the honest validators into two sides and tells each
//! side what helps it decide on its own. As proposer it sends a different (valid) value to each
//! side; as voter it echoes, to each side, a vote for whatever that side's honest validators
//! vote for. With at most f such validators the protocol stays safe; with more than f this is
//! the attack that makes honest validators decide differently (the control test).

use std::collections::BTreeSet;

use dpx_consensus::{Hash, Height, Proposal, Round, SignedMessage, Vote, VoteKind};

use super::{Behaviour, ByzCtx, Send, to_all};

#[derive(Debug, Default)]
pub struct Equivocator {
    echoed: BTreeSet<(Height, Round, u8, usize, Option<Hash>)>,
    proposed: BTreeSet<(Height, Round)>,
}

impl Behaviour for Equivocator {
    fn on_message(&mut self, ctx: &mut ByzCtx<'_>, from: usize, msg: &SignedMessage) -> Vec<Send> {
        let SignedMessage::Vote(v) = msg else { return self.on_tick(ctx) };
        let v = v.vote;
        let Some(side) = (0..2).find(|s| ctx.sides[*s].contains(&from)) else { return Vec::new() };
        let kind = match v.kind {
            VoteKind::Prevote => 0,
            VoteKind::Precommit => 1,
        };
        if !self.echoed.insert((v.height, v.round, kind, side, v.value_id)) {
            return Vec::new();
        }
        let mine = Vote { validator: ctx.me, ..v }.sign(ctx.chain_id, ctx.key);
        let mut out = to_all(ctx.sides[side], SignedMessage::Vote(mine));
        out.extend(self.on_tick(ctx));
        out
    }

    fn on_tick(&mut self, ctx: &mut ByzCtx<'_>) -> Vec<Send> {
        let (h, r) = (ctx.height, ctx.round);
        if ctx.validators.selector().proposer_index(h, r) != ctx.me || !self.proposed.insert((h, r))
        {
            return Vec::new();
        }
        let mut out = Vec::new();
        for side in 0..2 {
            let value = Hash::digest(format!("equivocator {h:?} {r:?} side {side}").as_bytes());
            ctx.valid_values.insert(value);
            let p = Proposal {
                height: h,
                round: r,
                value_id: value,
                pol_round: None,
                proposer: ctx.me,
            };
            out.extend(to_all(
                ctx.sides[side],
                SignedMessage::Proposal(p.sign(ctx.chain_id, ctx.key)),
            ));
        }
        out
    }
}
