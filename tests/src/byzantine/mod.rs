//! The adversary (issue 14): a byzantine peer and hostile clients against a live 4-validator
//! cluster of real `dpx` processes, scenario by scenario.
//!
//! The peer ([`peer`]) is a real libp2p node with a key in every validator's `p2p.allow`,
//! speaking the node's own protocol through `dpx_node::p2p::codec` and `dpx_node::wire`. Each
//! scenario is its own file; while it runs, an honest load ([`load`]) admits participants
//! through RPC, and afterwards the runner checks ([`check`]):
//!
//! - the honest validators kept committing during the attack (at least one block per 5 s)
//!   and reach a new height within `live_s` after it;
//! - every node has the same block id and state root at every height;
//! - every acknowledged transaction is committed exactly once, at its height, on every node;
//! - no validator's resident memory exceeded `rss_max_mib`;
//! - the metric that counts the refused input grew, where the node has one; no double-signing
//!   evidence appeared except where a validator key equivocated (then some must appear).
//!
//! A scenario that leaves the cluster unhealthy does not poison the next: the runner starts a
//! fresh cluster (noted in the table). Run it with `scripts/byzantine.sh` (release, all
//! scenarios) or `cargo test -p dpx-tests --test byzantine` (a short set).
//!
//! ```no_run
//! let opts = dpx_tests::byzantine::Opts::new(vec!["junk-blocks".into()], true);
//! let rows = dpx_tests::byzantine::run_blocking(&opts, |row| println!("{}", row.line())).unwrap();
//! assert!(rows.iter().all(|r| r.pass));
//! ```

pub mod check;
pub mod load;
pub mod net;
pub mod peer;

pub mod bad_sig_flood;
pub mod crafted_sig;
pub mod equivocate;
pub mod idle_conns;
pub mod idle_streams;
pub mod junk_blocks;
pub mod lying_status;
pub mod max_frames;
pub mod padded_tx;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use check::{Checker, RssSampler};
use load::Load;
use net::{Net, VALIDATORS};
use peer::Peer;

/// Every scenario, in the order the full run takes them, with what it does.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("junk-blocks", "floods decodable junk proposal blocks for the current and next heights"),
    (
        "lying-status",
        "claims a huge tip; answers sync empty/garbled/oversized to a restarted validator",
    ),
    ("equivocate", "a stopped validator's key signs two proposals and two votes per height-round"),
    ("max-frames", "frames exactly at and one byte over the frame limit"),
    ("bad-sig-flood", "relays transaction batches full of bad signatures"),
    ("idle-streams", "never-matching, malformed and stalled event streams"),
    ("idle-conns", "idle, partial-header and stalled-body HTTP connections"),
    ("crafted-sig", "transactions whose R has a torsion component, alone and in batches"),
    ("padded-tx", "transactions with unknown protobuf fields in the signed body"),
];

/// Scenarios whose attack goes through the allow-listed byzantine peer.
const P2P_SCENARIOS: &[&str] = &["junk-blocks", "lying-status", "max-frames", "bad-sig-flood"];

/// The set `cargo test` runs (under ~2 minutes on two cores).
pub const SHORT_SET: &[&str] = &["junk-blocks", "lying-status", "crafted-sig", "padded-tx"];

/// Run settings.
#[derive(Debug, Clone)]
pub struct Opts {
    pub scenarios: Vec<String>,
    /// Shorter attacks and fewer tries (CI).
    pub short: bool,
    /// Bound on each validator's resident memory during a scenario.
    pub rss_max_mib: u64,
    /// After an attack, every running validator must commit a new height within this.
    pub live_s: u64,
    /// A restarted validator must catch up within this.
    pub catchup_s: u64,
}

impl Opts {
    pub fn new(scenarios: Vec<String>, short: bool) -> Self {
        Self { scenarios, short, rss_max_mib: 512, live_s: 10, catchup_s: 30 }
    }

    /// How long a flooding attack lasts.
    pub fn attack(&self) -> Duration {
        Duration::from_secs(if self.short { 8 } else { 20 })
    }
}

/// Heights of the honest validators around an attack.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub nodes: [bool; VALIDATORS],
    pub h0: u64,
    pub h1: u64,
    pub secs: f64,
}

/// What a scenario found.
#[derive(Debug, Default)]
pub struct Report {
    /// Broken expectations (the scenario fails when any).
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    /// What the attack had refused, as the scenario counted it.
    pub refused: Vec<String>,
    /// The attack's window: the honest validators must commit in it.
    pub window: Option<Window>,
    /// Counters (`dpx_<name>_total`) that must have grown on some node.
    pub must_count: Vec<&'static str>,
    /// A validator key equivocated: evidence must appear (elsewhere none may).
    pub expect_evidence: bool,
}

/// One line of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: String,
    pub pass: bool,
    pub heights: String,
    pub refused: String,
    pub max_rss_mib: u64,
    pub notes: String,
}

impl Row {
    pub fn header() -> String {
        format!(
            "{:<14} {:<6} {:<14} {:>8}  {:<44} notes",
            "scenario", "result", "heights", "rss_mib", "refused"
        )
    }

    pub fn line(&self) -> String {
        format!(
            "{:<14} {:<6} {:<14} {:>8}  {:<44} {}",
            self.scenario,
            if self.pass { "PASS" } else { "FAIL" },
            self.heights,
            self.max_rss_mib,
            self.refused,
            self.notes
        )
    }
}

/// A cluster with its byzantine peer, honest load and checker.
#[derive(Debug)]
pub struct Ctx {
    pub net: Net,
    pub peer: Peer,
    pub opts: Opts,
    load: Option<Load>,
    checker: Checker,
}

impl Ctx {
    async fn start(opts: &Opts) -> anyhow::Result<Self> {
        let net = Net::start().await?;
        let peer = Peer::start(&net.byz_key, net.targets.clone(), net.frame_limit * 2)?;
        peer.wait_connected(&[0, 1, 2, 3], Duration::from_secs(20)).await?;
        let urls: Vec<String> = (0..VALIDATORS).map(|i| net.rpc(i).to_owned()).collect();
        let keys = vec![net.agency(0)?, net.agency(1)?];
        let load = Load::start(&net.http, &urls, &net.chain_id, keys);
        let deadline = Instant::now() + Duration::from_secs(30);
        while load.acks.snapshot().is_empty() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the honest load got nothing committed in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(Self { net, peer, opts: opts.clone(), load: Some(load), checker: Checker::default() })
    }

    async fn shutdown(mut self) {
        if let Some(l) = self.load.take() {
            l.stop().await;
        }
    }

    /// All four validators run and each commits a new height within `live_s`.
    async fn healthy(&mut self) -> bool {
        let running = self.net.running();
        if running.len() != VALIDATORS {
            return false;
        }
        let top = self.net.max_height(&running).await;
        let live = Duration::from_secs(self.opts.live_s);
        self.net.wait_height(&running, top + 1, live).await.is_ok()
    }

    /// Start an attack window over the honest validators `nodes`.
    pub async fn window_start(&self, nodes: &[usize]) -> (Window, Instant) {
        let mut mask = [false; VALIDATORS];
        for &i in nodes {
            mask[i] = true;
        }
        let h0 = self.net.max_height(nodes).await;
        (Window { nodes: mask, h0, h1: h0, secs: 0.0 }, Instant::now())
    }

    pub async fn window_end(&self, (w, t0): (Window, Instant)) -> Window {
        let nodes: Vec<usize> = (0..VALIDATORS).filter(|i| w.nodes[*i]).collect();
        Window { h1: self.net.max_height(&nodes).await, secs: t0.elapsed().as_secs_f64(), ..w }
    }

    async fn all_metrics(&self) -> Vec<BTreeMap<String, f64>> {
        let mut out = Vec::new();
        for i in 0..VALIDATORS {
            out.push(self.net.metrics(i).await);
        }
        out
    }

    async fn evidence(&self) -> usize {
        let mut n = 0;
        for i in 0..VALIDATORS {
            n += self.net.evidence(i).await;
        }
        n
    }

    async fn run_scenario(&mut self, name: &str, fresh: bool) -> Row {
        let before = self.all_metrics().await;
        let ev_before = self.evidence().await;
        let sampler = RssSampler::start(self.net.pids.clone());
        let all: Vec<usize> = (0..VALIDATORS).collect();
        let h_start = self.net.max_height(&all).await;
        // A node may rightly drop a peer that misbehaved in an earlier scenario; then this
        // scenario's peer-to-peer attack reaches fewer nodes, which the notes must say.
        let mut peer_note = None;
        if P2P_SCENARIOS.contains(&name) {
            let all = [0, 1, 2, 3];
            if self.peer.wait_connected(&all, Duration::from_secs(10)).await.is_err() {
                let on: Vec<usize> =
                    all.into_iter().filter(|i| self.peer.is_connected(*i)).collect();
                peer_note = Some(format!("the byzantine peer is connected to nodes {on:?} only"));
            }
        }
        let limit = Duration::from_mins(5);
        let mut rep = match tokio::time::timeout(limit, dispatch(name, self)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                Report { problems: vec![format!("scenario error: {e:#}")], ..Report::default() }
            }
            Err(_) => Report {
                problems: vec!["scenario did not finish in 300 s".into()],
                ..Report::default()
            },
        };
        if let Some(w) = rep.window {
            let need = ((w.secs / 5.0) as u64).max(1);
            if w.h1.saturating_sub(w.h0) < need {
                rep.problems.push(format!(
                    "honest validators committed {} blocks during the {:.0} s attack (need {need})",
                    w.h1.saturating_sub(w.h0),
                    w.secs
                ));
            }
        }
        let running = self.net.running();
        let top = self.net.max_height(&running).await;
        let live = Duration::from_secs(self.opts.live_s);
        if let Err(e) = self.net.wait_height(&running, top + 1, live).await {
            rep.problems.push(format!("after the attack: {e:#}"));
        }
        let acks = self.load.as_ref().map(|l| l.acks.snapshot()).unwrap_or_default();
        let found = self.checker.check(&self.net, &running, &acks).await;
        rep.problems.extend(found);
        let rss = sampler.finish();
        let max_rss_mib = rss.iter().copied().max().unwrap_or(0) / 1024;
        if max_rss_mib > self.opts.rss_max_mib {
            rep.problems.push(format!(
                "validator RSS reached {max_rss_mib} MiB (bound {} MiB; per node {:?} MiB)",
                self.opts.rss_max_mib,
                rss.iter().map(|k| k / 1024).collect::<Vec<_>>()
            ));
        }
        let after = self.all_metrics().await;
        let deltas = refused_deltas(&before, &after);
        for m in &rep.must_count {
            if deltas.get(*m).is_none_or(|d| *d <= 0) {
                rep.problems.push(format!("no node counted it in dpx_{m}_total"));
            }
        }
        let ev = self.evidence().await.saturating_sub(ev_before);
        if rep.expect_evidence && ev == 0 {
            rep.problems.push("no node recorded evidence of the equivocation".into());
        } else if !rep.expect_evidence && ev > 0 {
            rep.problems.push(format!("{ev} pieces of double-signing evidence appeared"));
        }
        let mut refused: Vec<String> = rep.refused.clone();
        refused.extend(deltas.iter().map(|(k, v)| format!("{k}+{v}")));
        if ev > 0 {
            refused.push(format!("evidence+{ev}"));
        }
        let h_end = self.net.max_height(&running).await;
        let mut notes = Vec::new();
        if fresh {
            notes.push("(fresh cluster)".to_owned());
        }
        notes.extend(peer_note);
        notes.extend(rep.notes);
        // The table stays readable: the first problems, each cut short.
        notes.extend(rep.problems.iter().take(4).map(|p| format!("PROBLEM: {}", clip(p, 240))));
        if rep.problems.len() > 4 {
            notes.push(format!("... {} more problems", rep.problems.len() - 4));
        }
        Row {
            scenario: name.to_owned(),
            pass: rep.problems.is_empty(),
            heights: format!("{h_start}->{h_end}"),
            refused: if refused.is_empty() { "-".into() } else { refused.join(" ") },
            max_rss_mib,
            notes: notes.join("; "),
        }
    }
}

/// `s` cut to at most `n` characters.
fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

async fn dispatch(name: &str, ctx: &mut Ctx) -> anyhow::Result<Report> {
    match name {
        "junk-blocks" => junk_blocks::run(ctx).await,
        "lying-status" => lying_status::run(ctx).await,
        "equivocate" => equivocate::run(ctx).await,
        "max-frames" => max_frames::run(ctx).await,
        "bad-sig-flood" => bad_sig_flood::run(ctx).await,
        "idle-streams" => idle_streams::run(ctx).await,
        "idle-conns" => idle_conns::run(ctx).await,
        "crafted-sig" => crafted_sig::run(ctx).await,
        "padded-tx" => padded_tx::run(ctx).await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}

/// Growth of every refusal-like counter, summed over the nodes, by short name.
fn refused_deltas(
    before: &[BTreeMap<String, f64>],
    after: &[BTreeMap<String, f64>],
) -> BTreeMap<String, i64> {
    const WORDS: &[&str] = &[
        "refused", "rejected", "dropped", "bad", "limited", "evicted", "timeout", "invalid",
        "shed", "closed",
    ];
    let mut out = BTreeMap::new();
    for (b, a) in before.iter().zip(after) {
        for (name, v) in a {
            let Some(short) = name.strip_prefix("dpx_").and_then(|n| n.strip_suffix("_total"))
            else {
                continue;
            };
            if !WORDS.iter().any(|w| short.contains(w)) {
                continue;
            }
            let d = (v - b.get(name).copied().unwrap_or(0.0)) as i64;
            if d > 0 {
                *out.entry(short.to_owned()).or_insert(0) += d;
            }
        }
    }
    out
}

/// Run `opts.scenarios` in order, calling `on_row` as each finishes; a cluster left unhealthy
/// by one scenario is replaced before the next.
pub async fn run(opts: &Opts, mut on_row: impl FnMut(&Row)) -> anyhow::Result<Vec<Row>> {
    for s in &opts.scenarios {
        anyhow::ensure!(SCENARIOS.iter().any(|(n, _)| n == s), "unknown scenario {s}");
    }
    let mut ctx: Option<Ctx> = None;
    let mut rows = Vec::new();
    for name in &opts.scenarios {
        let healthy = match ctx.as_mut() {
            Some(c) => c.healthy().await,
            None => false,
        };
        let fresh = !healthy;
        if fresh {
            if let Some(c) = ctx.take() {
                c.shutdown().await;
            }
            ctx = Some(Ctx::start(opts).await.context("starting a cluster")?);
        }
        let c = ctx.as_mut().context("no cluster")?;
        let row = c.run_scenario(name, fresh && !rows.is_empty()).await;
        on_row(&row);
        rows.push(row);
    }
    if let Some(c) = ctx {
        c.shutdown().await;
    }
    Ok(rows)
}

/// [`run`] on a runtime of its own (two worker threads, as the machine has two cores).
pub fn run_blocking(opts: &Opts, on_row: impl FnMut(&Row)) -> anyhow::Result<Vec<Row>> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run(opts, on_row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusal_counters_count_and_deltas_sum_over_nodes() {
        let m = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        let before = vec![m(&[("dpx_p2p_bad_frames_total", 1.0)]), m(&[])];
        let after = vec![
            m(&[("dpx_p2p_bad_frames_total", 3.0), ("dpx_blocks_committed_total", 9.0)]),
            m(&[("dpx_p2p_bad_frames_total", 1.0), ("dpx_height", 5.0)]),
        ];
        let d = refused_deltas(&before, &after);
        assert_eq!(d.len(), 1);
        assert_eq!(d["p2p_bad_frames"], 3);
    }

    #[test]
    fn every_short_scenario_exists() {
        for s in SHORT_SET {
            assert!(SCENARIOS.iter().any(|(n, _)| n == s), "{s}");
        }
    }
}
