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
/// How often the lie is repeated (honest nodes announce every second).
const LIE_EVERY: Duration = Duration::from_millis(300);
/// The validator that is stopped and restarted.
const VICTIM: usize = 3;

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

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    ctx.peer.set_sync_answer(SyncAnswer::Rotate);
    let asked0 = ctx.peer.stats.sync_requests.load(Ordering::Relaxed);
    let mut seq = 0;
    let honest = [0, 1, 2];
    lie_for(ctx, &mut seq, Duration::from_secs(2)).await;
    let start = ctx.window_start(&honest).await;
    ctx.net.stop(VICTIM)?;
    let stopped_at = ctx.net.max_height(&honest).await;
    // Let the chain move on without the victim (bounded).
    let until = Instant::now() + Duration::from_secs(20);
    while ctx.net.max_height(&honest).await < stopped_at + 5 && Instant::now() < until {
        lie_for(ctx, &mut seq, Duration::from_secs(1)).await;
    }
    ctx.net.start_node(VICTIM)?;
    let target = ctx.net.max_height(&honest).await;
    let t0 = Instant::now();
    let limit = Duration::from_secs(ctx.opts.catchup_s);
    let mut caught = None;
    while t0.elapsed() < limit {
        lie_for(ctx, &mut seq, Duration::from_secs(1)).await;
        if ctx.net.height(VICTIM).await.is_some_and(|h| h >= target) {
            caught = Some(t0.elapsed());
            break;
        }
    }
    rep.window = Some(ctx.window_end(start).await);
    let victim_h = ctx.net.height(VICTIM).await;
    match caught {
        Some(d) => rep.notes.push(format!(
            "node {VICTIM} stopped at {stopped_at}, caught up to {target} in {:.1} s",
            d.as_secs_f64()
        )),
        None => rep.problems.push(format!(
            "node {VICTIM} (stopped at {stopped_at}) did not catch up to {target} within {} s: at {victim_h:?}",
            limit.as_secs()
        )),
    }
    let asked = ctx.peer.stats.sync_requests.load(Ordering::Relaxed) - asked0;
    rep.notes.push(format!("the liar answered {asked} sync requests"));
    ctx.peer.set_sync_answer(SyncAnswer::Empty);
    Ok(rep)
}
