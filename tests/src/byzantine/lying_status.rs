//! `lying-status`: the peer announces a tip far above the chain's and answers every block-sync
//! request with nothing, garbage or a frame too large to read, while a validator that was
//! stopped for a few blocks restarts and must catch up (issue 14, item 4).
//!
//! A node that trusts the highest claim asks only the liar and never catches up. Claims are
//! hints: a node must rotate among peers and drop one that does not deliver what it claims.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dpx_node::wire::{NetMessage, Status, net_message::Kind};

use super::peer::{SyncAnswer, noise};
use super::{Ctx, Report};

/// The claimed tip.
const LIE_HEIGHT: u64 = 1 << 40;
/// How often the lie is repeated (honest nodes announce every second): often enough that a
/// restarting node hears it before it has finished its first sync batch.
const LIE_EVERY: Duration = Duration::from_millis(50);
/// How far the chain moves on while the victim is stopped: more than the node's sync batch.
const LAG_BLOCKS: u64 = 40;

fn lie(seq: u64) -> NetMessage {
    NetMessage {
        kind: Some(Kind::Status(Status {
            height: LIE_HEIGHT + seq,
            tip_id: noise(seq, 32),
            round: 0,
        })),
    }
}

/// Keep lying to everyone for `d`.
async fn lie_for(ctx: &Ctx, seq: &mut u64, d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        *seq += 1;
        ctx.peer.broadcast(lie(*seq)).await;
        tokio::time::sleep(LIE_EVERY).await;
    }
}

/// One phase: stop `victim`, let the chain move `LAG_BLOCKS` on while lying, restart it, and
/// see whether it follows the tip within `catchup_s` while the liar answers with `answer`.
async fn phase(
    ctx: &mut Ctx,
    rep: &mut Report,
    seq: &mut u64,
    victim: usize,
    answer: SyncAnswer,
) -> anyhow::Result<bool> {
    let honest: Vec<usize> = (0..4).filter(|i| *i != victim).collect();
    ctx.peer.set_sync_answer(answer);
    ctx.net.stop(victim)?;
    let stopped_at = ctx.net.max_height(&honest).await;
    // Let the chain move on without the victim by more than one sync batch (32 blocks), so
    // catching up takes several requests and the liar's claim is heard before the last one.
    let until = Instant::now() + Duration::from_secs(90);
    while ctx.net.max_height(&honest).await < stopped_at + LAG_BLOCKS && Instant::now() < until {
        lie_for(ctx, seq, Duration::from_secs(1)).await;
    }
    ctx.net.start_node(victim)?;
    let restarted_at = ctx.net.max_height(&honest).await;
    let t0 = Instant::now();
    let limit = Duration::from_secs(ctx.opts.catchup_s);
    let (mut victim_h, mut tip) = (None, restarted_at);
    while t0.elapsed() < limit {
        lie_for(ctx, seq, Duration::from_secs(1)).await;
        // Caught up means following the live tip (a block in flight allowed), not merely
        // reaching the height the others had at the restart.
        victim_h = ctx.net.height(victim).await;
        tip = ctx.net.max_height(&honest).await;
        if victim_h.is_some_and(|h| h + 1 >= tip) {
            rep.notes.push(format!(
                "{answer:?} answers: node {victim} restarted {} blocks behind, followed the tip after {:.1} s",
                restarted_at - stopped_at,
                t0.elapsed().as_secs_f64()
            ));
            return Ok(true);
        }
    }
    rep.problems.push(format!(
        "{answer:?} answers: node {victim} (stopped at {stopped_at}, restarted at {restarted_at}) did not catch up within {} s: at {victim_h:?}, tip {tip}",
        limit.as_secs()
    ));
    Ok(false)
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let asked0 = ctx.peer.stats.sync_requests.load(Ordering::Relaxed);
    let mut seq = 0;
    // The attack the issue reports is empty answers; the full run tries each kind of answer,
    // each with another victim (the others stay up: f = 1).
    let phases: &[SyncAnswer] = if ctx.opts.short {
        &[SyncAnswer::Empty]
    } else {
        &[SyncAnswer::Empty, SyncAnswer::Oversized, SyncAnswer::Garbled]
    };
    lie_for(ctx, &mut seq, Duration::from_secs(2)).await;
    let mut window: Option<super::Window> = None;
    for (k, answer) in phases.iter().enumerate() {
        let victim = 3 - k;
        let (w0, t0) = ctx.window_start(&(0..4).filter(|i| *i != victim).collect::<Vec<_>>()).await;
        let ok = phase(ctx, &mut rep, &mut seq, victim, *answer).await?;
        let w = ctx.window_end((w0, t0)).await;
        // Over all phases: from the first one's start to the last one's end.
        window = Some(window.map_or(w, |all| super::Window {
            h1: w.h1,
            secs: all.secs + w.secs,
            ..all
        }));
        if !ok {
            // Stop lying; a garbled answer makes today's node drop the liar as its sync peer.
            ctx.peer.set_sync_answer(SyncAnswer::Garbled);
            let tip = ctx.net.max_height(&[0, 1, 2, 3]).await;
            let limit = Duration::from_secs(ctx.opts.catchup_s);
            let healed = ctx.net.wait_height(&[victim], tip, limit).await;
            if healed.is_err() {
                rep.problems.push(format!(
                    "node {victim} did not recover after the lie stopped; later phases skipped"
                ));
                break;
            }
        }
    }
    rep.window = window;
    let asked = ctx.peer.stats.sync_requests.load(Ordering::Relaxed) - asked0;
    rep.notes.push(format!("the liar answered {asked} sync requests"));
    ctx.peer.set_sync_answer(SyncAnswer::Empty);
    Ok(rep)
}
