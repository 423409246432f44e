//! `bad-sig-flood`: the peer relays transaction batches whose every signature is well formed
//! but wrong (issue 14, item 5). Each batch fails its batch verification and is then verified
//! one by one, so one message buys thousands of signature checks; a node that spawns a blocking
//! task per batch with no cap gives a single peer all its cores. Work per peer must be bounded
//! (and counted), while the honest chain keeps committing.

use std::time::{Duration, Instant};

use dpx_contracts::{Operation, Role, SignedTransaction, TransactionBody};
use dpx_crypto::{Domain, Keypair};
use dpx_node::wire::{NetMessage, TxBatch, net_message::Kind};

use super::net::cluster_cpu_secs;
use super::{Ctx, Report};

/// `n` decodable transactions, each carrying the signature of a different body.
pub fn bad_batch(chain: &str, n: usize) -> Vec<Vec<u8>> {
    let key = Keypair::generate();
    let bodies: Vec<Vec<u8>> = (0..=n as u64)
        .map(|nonce| {
            let op = Operation::Admit {
                key: key.public(),
                name: format!("flood-{nonce}"),
                roles: vec![Role::Consumer],
            };
            TransactionBody::new(chain, nonce, op).encode()
        })
        .collect();
    (0..n)
        .map(|i| {
            // Signed by the right key, but over the next body: valid points, wrong equation.
            let signature = key.sign(Domain::TRANSACTION, chain, &bodies[i + 1]);
            SignedTransaction { body: bodies[i].clone(), signer: key.public(), signature }.encode()
        })
        .collect()
}

/// How long to wait for the validators' CPU use to fall after the flood.
const DRAIN_MAX_S: u64 = 60;

/// The validators' CPU use together, in cores, over `d`.
async fn cpu_rate(ctx: &Ctx, d: Duration) -> f64 {
    let before = cluster_cpu_secs(&ctx.net.pids);
    tokio::time::sleep(d).await;
    (cluster_cpu_secs(&ctx.net.pids) - before) / d.as_secs_f64()
}

/// Seconds until the validators' CPU use is back near `baseline` cores (the honest load's).
async fn drain(ctx: &Ctx, baseline: f64) -> Option<f64> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(DRAIN_MAX_S) {
        if cpu_rate(ctx, Duration::from_millis(500)).await <= baseline * 1.5 + 0.2 {
            return Some(t0.elapsed().as_secs_f64());
        }
    }
    None
}

pub async fn run(ctx: &mut Ctx) -> anyhow::Result<Report> {
    let mut rep = Report::default();
    let (per_batch, per_s) = if ctx.opts.short { (5_000, 4) } else { (10_000, 8) };
    let chain = ctx.net.chain_id.clone();
    let batch = tokio::task::spawn_blocking(move || bad_batch(&chain, per_batch)).await?;
    let msg = NetMessage { kind: Some(Kind::Txs(TxBatch { txs: batch })) };
    let baseline = cpu_rate(ctx, Duration::from_secs(2)).await;
    let start = ctx.window_start(&[0, 1, 2, 3]).await;
    let cpu_start = cluster_cpu_secs(&ctx.net.pids);
    let deadline = Instant::now() + ctx.opts.attack();
    let mut sent = 0;
    while Instant::now() < deadline {
        for _ in 0..per_s {
            ctx.peer.broadcast(msg.clone()).await;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    rep.window = Some(ctx.window_end(start).await);
    // How long the validators keep burning CPU on what they queued: a figure, not a verdict
    // (the machine is shared), but an unbounded backlog shows here.
    let cpu_end = cluster_cpu_secs(&ctx.net.pids);
    let drained = drain(ctx, baseline).await;
    rep.notes.push(format!(
        "{sent} batches of {per_batch} bad signatures to each node ({} signatures each); validators used {:.1} CPU-s during the flood ({baseline:.2} cores before it), then {}",
        sent * per_batch,
        cpu_end - cpu_start,
        drained.map_or_else(
            || format!("were still busy {DRAIN_MAX_S} s after it"),
            |s| format!("went quiet {s:.1} s after it")
        )
    ));
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transaction_of_a_bad_batch_decodes_and_fails_verification() {
        let txs = bad_batch("c", 5);
        assert_eq!(txs.len(), 5);
        for t in &txs {
            let u = dpx_contracts::decode_unverified(t, "c").unwrap();
            assert!(u.verify().is_err());
        }
    }
}
