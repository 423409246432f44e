//! `junk-blocks`: a permitted peer floods decodable proposal blocks that no proposer signed
//! (issue 14, item 2), for the current height and the next two, to every validator.
//!
//! A node that caches any decodable block fills its block cache with junk it can never evict
//! (the current height's), then drops the real proposal's block and prevotes nil forever. A
//! block is worth keeping only when a signed proposal from that round's proposer names it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use dpx_crypto::{Hash, Keypair};
use dpx_ledger::{Block, Header};
use dpx_node::wire::{NetMessage, ProposalBlock, net_message::Kind};

use super::peer::noise;
use super::{Ctx, Report};

/// Junk blocks per height per 100 ms tick (each node gets all of them).
const PER_TICK: u64 = 12;

/// A decodable block for `height` that nobody proposed; `seq` makes each one distinct.
pub fn junk_block(chain: &str, height: u64, seq: u64, proposer: &Keypair) -> NetMessage {
    let h = |tag: u64| Hash::digest(&[seq.to_le_bytes(), tag.to_le_bytes()].concat());
    let header = Header {
        chain_id: chain.to_owned(),
        height,
        time_ms: dpx_node::driver::now_ms() + seq % 1000,
        proposer: proposer.public(),
        parent_id: h(1),
        parent_certificate_hash: h(2),
        tx_root: dpx_ledger::merkle::root(&[]),
        state_root: h(3),
        validator_set_hash: h(4),
        prev_receipts_hash: h(5),
    };
    let block = Block { header, txs: Vec::new() };
    NetMessage {
        kind: Some(Kind::Block(ProposalBlock {
            height,
            round: (seq % 4) as u32,
            block: block.encode(),
            parent_certificate: noise(seq, 160),
        })),
    }
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let chain = ctx.net.chain_id.clone();
    let proposer = Keypair::generate();
    let start = ctx.window_start(&[0, 1, 2, 3]).await;
    let deadline = Instant::now() + ctx.opts.attack();
    let (mut seq, mut sent) = (0u64, 0u64);
    let mut tip = ctx.net.max_height(&[0, 1, 2, 3]).await;
    let mut last_rpc = Instant::now();
    while Instant::now() < deadline {
        // Follow the chain: the peer hears every node's tip each second; RPC as a fallback.
        tip = tip.max(ctx.peer.stats.tip.load(Ordering::Relaxed));
        if last_rpc.elapsed() > Duration::from_secs(2) {
            tip = tip.max(ctx.net.max_height(&[0, 1, 2, 3]).await);
            last_rpc = Instant::now();
        }
        // The node keeps blocks of its current height and the next; one more covers a tip
        // that moved since we last heard.
        for h in tip + 1..=tip + 3 {
            for _ in 0..PER_TICK {
                seq += 1;
                ctx.peer.broadcast(junk_block(&chain, h, seq, &proposer)).await;
                sent += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rep.window = Some(ctx.window_end(start).await);
    rep.notes.push(format!("{sent} junk blocks to each node"));
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junk_blocks_decode_and_differ() {
        let k = Keypair::from_seed([1; 32]);
        let (a, b) = (junk_block("c", 5, 1, &k), junk_block("c", 5, 2, &k));
        let (Some(Kind::Block(a)), Some(Kind::Block(b))) = (a.kind, b.kind) else { panic!() };
        let (ba, bb) =
            (Block::decode(&a.block, 1 << 20).unwrap(), Block::decode(&b.block, 1 << 20).unwrap());
        assert_eq!(ba.header.height, 5);
        assert_ne!(ba.id(), bb.id());
    }
}
