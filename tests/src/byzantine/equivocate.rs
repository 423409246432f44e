//! `equivocate`: one validator key turned byzantine (f = 1 of 4). Validator 3's process is
//! stopped and its key is run by a byzantine peer that, for every height-round it hears of,
//! sends node 0 a prevote and a precommit for the round's proposed value and nodes 1 and 2 a
//! prevote and a precommit for nil, and, where the key is the round's proposer, two different
//! signed proposals. The three honest validators must keep committing, never split, and catch
//! the equivocation (they relay what is new to them, so each sees both versions).
//!
//! Afterwards the real validator 3 restarts and must catch up.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_consensus::{
    Height, Proposal, Round, SignedMessage, Validator, ValidatorIndex, ValidatorSet, Vote, VoteKind,
};
use dpx_crypto::{Hash, Keypair, keyfile};
use dpx_node::wire::{NetMessage, net_message::Kind};

use super::net::validator_order;
use super::peer::{Peer, noise};
use super::{Ctx, Report};

/// The validator whose key equivocates.
const TRAITOR: usize = 3;

fn wire(m: SignedMessage) -> NetMessage {
    NetMessage { kind: Some(Kind::Consensus(m.encode())) }
}

struct Traitor {
    key: Keypair,
    chain: String,
    index: ValidatorIndex,
    set: ValidatorSet,
    done: BTreeSet<(u64, u32)>,
    proposals: u64,
    votes: u64,
}

impl Traitor {
    /// Equivocate once in (height, round): `value` is what node 0 is told we vote for.
    async fn strike(&mut self, peer: &Peer, h: Height, r: Round, value: Option<Hash>) {
        if !self.done.insert((h.0, r.0)) {
            return;
        }
        let value = value.unwrap_or_else(|| Hash::digest(&noise(h.0 ^ u64::from(r.0), 32)));
        if self.set.proposer(h, r).key == self.key.public() {
            for (to, seed) in [(vec![0], 1u64), (vec![1, 2], 2)] {
                let p = Proposal {
                    height: h,
                    round: r,
                    value_id: Hash::digest(&noise(h.0 * 31 + seed, 32)),
                    pol_round: None,
                    proposer: self.index,
                };
                let m = wire(SignedMessage::Proposal(p.sign(&self.chain, &self.key)));
                for i in to {
                    peer.send(i, m.clone()).await;
                }
            }
            self.proposals += 1;
        }
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            for (to, v) in [(vec![0], Some(value)), (vec![1, 2], None)] {
                let vote = Vote { kind, height: h, round: r, value_id: v, validator: self.index };
                let m = wire(SignedMessage::Vote(vote.sign(&self.chain, &self.key)));
                for i in to {
                    peer.send(i, m.clone()).await;
                }
            }
        }
        self.votes += 1;
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report { expect_evidence: true, ..Report::default() };
    let key = keyfile::load(&ctx.net.node_key_path(TRAITOR))?;
    let order = validator_order(&ctx.net).await?;
    let index = order.iter().position(|k| *k == key.public()).context("traitor not in the set")?;
    let set = ValidatorSet::new(order.iter().map(|k| Validator { key: *k, power: 1 }).collect())?;
    let honest = [0, 1, 2];
    ctx.net.stop(TRAITOR)?;
    let targets = ctx.net.targets[..TRAITOR].to_vec();
    let mut peer = Peer::start(&key, targets, ctx.net.frame_limit * 2)?;
    peer.wait_connected(&honest, Duration::from_secs(20)).await?;
    let mut t = Traitor {
        key,
        chain: ctx.net.chain_id.clone(),
        index: ValidatorIndex(u32::try_from(index)?),
        set,
        done: BTreeSet::new(),
        proposals: 0,
        votes: 0,
    };
    let start = ctx.window_start(&honest).await;
    let deadline = Instant::now() + ctx.opts.attack();
    while Instant::now() < deadline {
        let Ok(Some((_, msg))) =
            tokio::time::timeout(Duration::from_millis(100), peer.heard().recv()).await
        else {
            continue;
        };
        let Some(Kind::Consensus(bytes)) = msg.kind else { continue };
        let Ok(m) = SignedMessage::decode(&bytes) else { continue };
        let value = match m {
            SignedMessage::Proposal(p) => Some(p.proposal.value_id),
            SignedMessage::Vote(v) => v.vote.value_id,
        };
        t.strike(&peer, m.height(), m.round(), value).await;
    }
    rep.window = Some(ctx.window_end(start).await);
    let failures = peer.stats.send_failures.load(Ordering::Relaxed);
    drop(peer);
    rep.notes.push(format!(
        "{} height-rounds equivocated ({} with two proposals); {failures} sends failed",
        t.votes, t.proposals
    ));
    if t.votes == 0 {
        rep.problems.push("heard no consensus message to equivocate on".into());
    }
    // The real validator comes back and must catch up.
    ctx.net.start_node(TRAITOR)?;
    let target = ctx.net.max_height(&honest).await;
    let limit = Duration::from_secs(ctx.opts.catchup_s);
    if let Err(e) = ctx.net.wait_height(&[TRAITOR], target, limit).await {
        rep.problems.push(format!("the restarted validator: {e:#}"));
    }
    Ok(rep)
}
