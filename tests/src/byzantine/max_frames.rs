//! `max-frames`: frames of exactly the node's frame limit (a transaction batch carrying one
//! huge junk transaction), several in flight per node, then one frame a byte over the limit.
//!
//! A frame at the limit must be read and refused for its content without memory growing past
//! the bound; a frame over it must be refused before its body is read, counted in
//! `dpx_p2p_bad_frames_total`, and cost the sender its connection (which it may re-dial).

use std::time::Duration;

use prost::Message as _;

use dpx_node::wire::{NetMessage, TxBatch, net_message::Kind};

use super::{Ctx, Report};

/// A transaction batch whose encoding is exactly `len` bytes (`len` of at least 16).
pub fn frame_of(len: usize) -> NetMessage {
    let msg = |n: usize, extra: Option<usize>| {
        let mut txs = vec![vec![0xa5; n]];
        txs.extend(extra.map(|m| vec![0x5a; m]));
        NetMessage { kind: Some(Kind::Txs(TxBatch { txs })) }
    };
    // The framing (tags and varint lengths) takes 4 to 12 bytes; where a varint grows, the
    // length jumps by two, and a second, tiny transaction fills the odd byte.
    let mut best = msg(0, None);
    for extra in [None, Some(0), Some(1)] {
        let mut n = len.saturating_sub(16);
        while msg(n + 1, extra).encoded_len() <= len {
            n += 1;
        }
        best = msg(n, extra);
        if best.encoded_len() == len {
            break;
        }
    }
    best
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report { must_count: vec!["p2p_bad_frames"], ..Report::default() };
    let limit = ctx.net.frame_limit;
    let at = frame_of(limit);
    anyhow::ensure!(at.encoded_len() == limit, "could not build a frame of exactly {limit} bytes");
    let start = ctx.window_start(&[0, 1, 2, 3]).await;
    let (rounds, in_flight) = if ctx.opts.short { (2, 2) } else { (5, 4) };
    let mut sent = 0;
    for _ in 0..rounds {
        for i in 0..4 {
            for _ in 0..in_flight {
                ctx.peer.send(i, at.clone()).await;
                sent += 1;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let over = frame_of(limit + 1);
    for i in 0..4 {
        ctx.peer.send(i, over.clone()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The nodes drop us for the oversized frame; we dial again and are let back in.
    let back = ctx.peer.wait_connected(&[0, 1, 2, 3], Duration::from_secs(15)).await;
    rep.window = Some(ctx.window_end(start).await);
    rep.notes.push(format!(
        "{sent} frames of {limit} bytes, 4 of {} bytes; reconnected: {}",
        limit + 1,
        back.is_ok()
    ));
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_exact_length_asked_for() {
        for len in [16, 127, 128, 129, 16_383, 16_384, 16_385, 1 << 20, (16 << 20) + 1] {
            assert_eq!(frame_of(len).encoded_len(), len, "{len}");
        }
    }
}
