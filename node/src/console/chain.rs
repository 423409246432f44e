//! The Chain page: height, block interval and transactions per block over the last
//! [`WINDOW_BLOCKS`] blocks, the validators with their power and, over those blocks, the blocks
//! each proposed and the precommits each missed (from the certificates), peers, and the
//! equivocation evidence this node holds.
//!
//! What a request costs is bounded: the statistics of a block never change once the next block
//! names its certificate, so they are kept in a window of the last [`WINDOW_BLOCKS`] blocks and
//! a request reads only the blocks committed since the last one (and the tip's certificate
//! again, which the next block may still replace by the canonical one). After a restart, or
//! when the chain moved more than a window ahead, the first request reads the whole window.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dpx_consensus::{Certificate, Evidence};
use dpx_crypto::{Hash, PublicKey};
use dpx_ledger::Store;
use maud::{Markup, html};

use super::page::{short_key, time};
use super::svg;
use crate::node::Shared;

/// Blocks the page's statistics cover.
pub const WINDOW_BLOCKS: u64 = 100;
/// Validator sets remembered by hash (a window rarely spans more than a change or two).
const SETS_MAX: usize = 16;
/// Evidence items listed at most.
const EVIDENCE_SHOWN_MAX: usize = 50;

/// What the page shows of one block.
#[derive(Debug, Clone)]
struct BlockStat {
    height: u64,
    time_ms: u64,
    txs: usize,
    proposer: PublicKey,
    /// The set that validated the block, in index order (`None`: no longer readable).
    members: Option<Arc<Vec<(PublicKey, u64)>>>,
    /// Keys whose precommits the block's certificate holds (`None`: no certificate stored).
    signers: Option<Vec<PublicKey>>,
}

/// The statistics of the last [`WINDOW_BLOCKS`] blocks, filled as requests come.
#[derive(Debug, Default)]
pub struct ChainWindow {
    blocks: BTreeMap<u64, BlockStat>,
    sets: HashMap<Hash, Arc<Vec<(PublicKey, u64)>>>,
    /// The tip when last refreshed: its certificate may still change.
    tip: u64,
}

impl ChainWindow {
    /// Bring the window to the store's tip, reading only what it lacks.
    fn refresh(&mut self, store: &Store) -> anyhow::Result<()> {
        let tip = store.tip_height();
        let from = tip.saturating_sub(WINDOW_BLOCKS - 1).max(1);
        if tip != self.tip {
            self.blocks.remove(&self.tip);
        }
        self.blocks.retain(|h, _| (from..=tip).contains(h));
        for h in from..=tip {
            if self.blocks.contains_key(&h) {
                continue;
            }
            let Some(block) = store.block(h)? else { continue };
            let members = self.members(store, h, block.header.validator_set_hash);
            let signers = match store.certificate(h)? {
                Some(bytes) => {
                    let cert = Certificate::decode(&bytes)
                        .map_err(|e| anyhow::anyhow!("certificate {h}: {e}"))?;
                    members.as_ref().map(|m| {
                        cert.signatures
                            .iter()
                            .filter_map(|(i, _)| m.get(i.0 as usize).map(|v| v.0))
                            .collect()
                    })
                }
                None => None,
            };
            self.blocks.insert(
                h,
                BlockStat {
                    height: h,
                    time_ms: block.header.time_ms,
                    txs: block.txs.len(),
                    proposer: block.header.proposer,
                    members,
                    signers,
                },
            );
        }
        self.tip = tip;
        Ok(())
    }

    fn members(
        &mut self,
        store: &Store,
        h: u64,
        set_hash: Hash,
    ) -> Option<Arc<Vec<(PublicKey, u64)>>> {
        if let Some(m) = self.sets.get(&set_hash) {
            return Some(m.clone());
        }
        // The state at an old height may be pruned: the block's misses are then unknown.
        let set = dpx_app::execute::validator_set(store, h).ok()?;
        let m: Arc<Vec<(PublicKey, u64)>> =
            Arc::new(set.validators().iter().map(|v| (v.key, v.power)).collect());
        if self.sets.len() >= SETS_MAX {
            self.sets.clear();
        }
        self.sets.insert(set_hash, m.clone());
        Some(m)
    }
}

/// Per validator over the window.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Record {
    proposed: u64,
    /// Blocks whose set held it.
    member_of: u64,
    /// Of those, blocks whose certificate lacks its precommit.
    missed: u64,
}

fn records(stats: &[BlockStat]) -> HashMap<PublicKey, Record> {
    let mut out: HashMap<PublicKey, Record> = HashMap::new();
    for b in stats {
        out.entry(b.proposer).or_default().proposed += 1;
        let (Some(members), Some(signers)) = (&b.members, &b.signers) else { continue };
        for (k, _) in members.iter() {
            let r = out.entry(*k).or_default();
            r.member_of += 1;
            if !signers.contains(k) {
                r.missed += 1;
            }
        }
    }
    out
}

/// The Chain page's body.
pub fn body(s: &Shared, window: &parking_lot::Mutex<ChainWindow>) -> anyhow::Result<Markup> {
    let stats: Vec<BlockStat> = {
        let mut w = window.lock();
        w.refresh(&s.store)?;
        w.blocks.values().cloned().collect()
    };
    let tip = s.store.tip_height();
    let validators = crate::membership::set_at(&s.store, tip + 1)?;
    let total_power: u64 = validators.iter().map(|v| v.power).sum();
    let recs = records(&stats);
    let interval: Vec<(u64, f64)> = stats
        .windows(2)
        .map(|w| (w[1].height, w[1].time_ms.saturating_sub(w[0].time_ms) as f64))
        .collect();
    let txs: Vec<(u64, f64)> = stats.iter().map(|b| (b.height, b.txs as f64)).collect();
    let tx_total: usize = stats.iter().map(|b| b.txs).sum();
    let mean_interval_ms = if interval.is_empty() {
        0.0
    } else {
        interval.iter().map(|p| p.1).sum::<f64>() / interval.len() as f64
    };
    let tip_time = stats.last().map(|b| b.time_ms);
    let evidence = s.evidence();
    let peers = s.metrics.peers.get();
    Ok(html! {
        div id="live" {
            div class="stats" {
                div class="stat" { span class="muted" { "height" } b id="height" { (tip) } }
                div class="stat" { span class="muted" { "last block" } b { (tip_time.map_or_else(|| "—".to_owned(), time)) } }
                div class="stat" { span class="muted" { "mean interval" } b { (format!("{:.0} ms", mean_interval_ms)) } }
                div class="stat" { span class="muted" { "txs in window" } b { (tx_total) } }
                div class="stat" { span class="muted" { "peers" } b id="peers" { (peers) } }
                div class="stat" { span class="muted" { "evidence" } b id="evidence-count" { (evidence.len()) } }
            }
            p class="note" { "Statistics over the last " (stats.len()) " blocks (window " (WINDOW_BLOCKS) "), chain " code { (s.chain_id) } ", this node " code { (short_key(&s.node_key)) } "." }
            section class="card" {
                h2 { "Block interval" }
                (svg::bars("chart-interval", "milliseconds between a block and the one before it", &interval, "ms"))
                h2 { "Transactions per block" }
                (svg::bars("chart-txs", "transactions in each block", &txs, "tx"))
            }
            section class="card" {
                h2 { "Validators" }
                table id="validators" {
                    thead { tr { th { "name" } th { "key" } th { "power" } th { "share" } th { "proposed" } th { "missed precommits" } } }
                    tbody {
                        @for v in &validators {
                            @let r = recs.get(&v.key).copied().unwrap_or_default();
                            tr {
                                td { (v.name) }
                                td class="mono" title=(v.key.to_hex()) { (short_key(&v.key)) }
                                td { (v.power) }
                                td { (format!("{:.1} %", 100.0 * v.power as f64 / total_power.max(1) as f64)) }
                                td { (r.proposed) }
                                td class=[(r.missed > 0).then_some("warn")] { (r.missed) " of " (r.member_of) }
                            }
                        }
                    }
                }
                p class="note" { "Proposed and missed count the window's blocks; a block's misses are its set's members absent from its certificate (any quorum certifies, so a miss may be a late vote)." }
            }
            section class="card" {
                h2 { "Evidence of equivocation" }
                @if evidence.is_empty() {
                    p id="no-evidence" { "None seen by this node." }
                } @else {
                    table id="evidence" {
                        thead { tr { th { "height" } th { "kind" } th { "offender (index in its height's set)" } } }
                        tbody {
                            @for bytes in evidence.iter().take(EVIDENCE_SHOWN_MAX) {
                                @match Evidence::decode(bytes) {
                                    Ok(ev) => {
                                        tr {
                                            td { (ev.height().0) }
                                            td { (evidence_kind(&ev)) }
                                            td { "v" (ev.offender().0) }
                                        }
                                    }
                                    Err(e) => {
                                        tr { td colspan="3" class="bad" { "undecodable evidence: " (e.to_string()) } }
                                    }
                                }
                            }
                        }
                    }
                    (super::page::showing(evidence.len().min(EVIDENCE_SHOWN_MAX), evidence.len(), true, "items"))
                }
                p class="note" { "Evidence this node detected or received since it started (kept in memory, at most 1,024 items)." }
            }
        }
    })
}

fn evidence_kind(ev: &Evidence) -> &'static str {
    match ev {
        Evidence::ConflictingVotes(..) => "conflicting votes",
        Evidence::ConflictingProposals(..) => "conflicting proposals",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpx_crypto::Keypair;

    fn k(i: u8) -> PublicKey {
        Keypair::from_seed([i; 32]).public()
    }

    #[test]
    fn proposals_and_missed_precommits_are_counted_per_member() {
        let members = Arc::new(vec![(k(1), 1), (k(2), 1), (k(3), 1), (k(4), 1)]);
        let b = |h: u64, proposer: u8, signers: &[u8]| BlockStat {
            height: h,
            time_ms: h * 1000,
            txs: 0,
            proposer: k(proposer),
            members: Some(members.clone()),
            signers: Some(signers.iter().map(|i| k(*i)).collect()),
        };
        let mut unknown = b(4, 1, &[]);
        unknown.members = None;
        let r =
            records(&[b(1, 1, &[1, 2, 3]), b(2, 2, &[1, 2, 3, 4]), b(3, 1, &[2, 3, 4]), unknown]);
        assert_eq!(r[&k(1)], Record { proposed: 3, member_of: 3, missed: 1 });
        assert_eq!(r[&k(4)], Record { proposed: 0, member_of: 3, missed: 1 });
        assert_eq!(r[&k(2)], Record { proposed: 1, member_of: 3, missed: 0 });
    }
}
