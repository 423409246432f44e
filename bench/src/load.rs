//! `dpx-bench load`: one timed run at one offered rate against a running network.
//!
//! Phases: subscribe to every node's events → (full mode) set up the market, waiting for each
//! stage to commit on every node → pre-build and pre-sign the whole window → send open loop →
//! drain (wait, bounded, for accepted transactions to commit) → compute and report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use dpx_crypto::Hash;
use tokio::sync::oneshot;

use crate::procstat::{self, ProcSample};
use crate::record::{self, BlockSummary, KIND_LOAD, LoadRecord, NodeUsage};
use crate::rpc::{self, Encoding, EncodingChoice, TxAnswer};
use crate::schedule::offered_count;
use crate::sender::{Conn, HttpCounts, SendConfig, SendOutcome, post_batch, run_sender};
use crate::stats::LatencySummary;
use crate::tracker::{self, Observe, Tracker};
use crate::workload::{self, Market, Mix, Sizes};

/// What the network executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Signed marketplace transactions, executed by the contracts.
    Full,
    /// Opaque payloads on a `--consensus-only` chain: ordering and storage only.
    ConsensusOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::ConsensusOnly => "consensus-only",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// A validator's RPC base URL; repeat for every validator.
    #[arg(long = "rpc", required = true)]
    pub rpcs: Vec<String>,
    /// A founding agency's key file (`<testnet>/keys/agency-0.json`); full mode only.
    #[arg(long)]
    pub agency_key: Option<PathBuf>,
    /// The other founding agencies' key files (repeat the flag): with the first, they admit
    /// the run's registrar by governance (more than 2/3 of all agencies must agree).
    #[arg(long)]
    pub approver_key: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "full")]
    pub mode: Mode,
    /// Offered load, transactions per second.
    #[arg(long)]
    pub rate: f64,
    /// Length of the timed window, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// HTTP connections per RPC.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// Transactions per request while on schedule.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Most transactions per request when behind schedule (the node's `rpc.max_batch_txs`).
    #[arg(long, default_value_t = 1000)]
    pub max_batch: usize,
    /// Longest a due transaction waits for its batch to fill, ms.
    #[arg(long, default_value_t = 10)]
    pub linger_ms: u64,
    /// Payload size in consensus-only mode (at least 16).
    #[arg(long, default_value_t = 512)]
    pub payload_bytes: usize,
    /// Validator process ids, for CPU and memory figures.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Append the result record (JSON, one line) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value = "")]
    pub label: String,
    #[arg(long, value_enum, default_value = "proto")]
    pub encoding: Encoding,
    /// Longest wait after the window for accepted transactions to commit, seconds.
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,
    /// Repeats of a request answered 503 / 429 (counted in the record). Each waits what the
    /// node's `Retry-After` asks (at most 5 s), else 40 ms doubling: a shedding node is
    /// retried as a well-behaved client would, and a transaction refused after the last
    /// repeat breaks its signer's nonce chain for the rest of the run.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Full mode: most transactions per second one signer sends (sets how many are admitted).
    #[arg(long, default_value_t = 2.0)]
    pub signer_rate: f64,
    /// How commits are seen: per-transaction events (with receipt codes; needed in full mode)
    /// or block events listing hashes (`tx_hashes=true`; cheaper, consensus-only mode).
    #[arg(long, value_enum, default_value = "tx-events")]
    pub observe: Observe,
    /// Full mode: the timed mix as weights.
    #[arg(long, default_value = "use_grant=60,place_order=25,list_product=10,admit=5")]
    pub mix: Mix,
}

/// The network under test, as the run talks to it.
struct Net {
    light: reqwest::Client,
    rpcs: Vec<String>,
    chain: String,
    tracker: Arc<Tracker>,
    encoding: Arc<EncodingChoice>,
    conns: Vec<Conn>,
}

/// Run once and report (table row on stdout, JSON line appended to `--out`).
pub async fn run(args: LoadArgs) -> anyhow::Result<LoadRecord> {
    anyhow::ensure!(args.rate > 0.0 && args.duration > 0.0, "--rate and --duration must be > 0");
    anyhow::ensure!(args.connections >= 1 && args.batch >= 1, "--connections and --batch >= 1");
    anyhow::ensure!(
        args.mode == Mode::ConsensusOnly || args.observe == Observe::TxEvents,
        "full mode needs --observe tx-events (receipt codes)"
    );
    let rpcs: Vec<String> = args.rpcs.iter().map(|r| r.trim_end_matches('/').to_owned()).collect();
    let light = rpc::light_client()?;
    let (chain, _) = rpc::status(&light, &rpcs[0]).await?;
    for r in &rpcs[1..] {
        let (other, _) = rpc::status(&light, r).await?;
        anyhow::ensure!(other == chain, "{r} is on chain {other:?}, {} on {chain:?}", rpcs[0]);
    }
    let tracker = Tracker::new(rpcs.len());
    // Full mode reads every transaction's receipt, which the read policy shows to supervisors:
    // admit an auditor to read as.
    let observer = match (args.mode, &args.agency_key) {
        (Mode::Full, Some(path)) => {
            let agency = dpx_crypto::keyfile::load(path)?;
            Some(crate::observer::Observer::admit(&light, &rpcs, &chain, &agency).await?)
        }
        _ => None,
    };
    let subscribers = subscribe_all(&rpcs, &tracker, args.observe, observer.as_ref()).await?;
    let conns: Vec<Conn> = (0..rpcs.len() * args.connections)
        .map(|k| Conn::new(k % rpcs.len(), &rpcs[k % rpcs.len()]))
        .collect::<anyhow::Result<_>>()?;
    let encoding = EncodingChoice::new(args.encoding);
    let net = Net { light, rpcs, chain, tracker, encoding, conns };
    let duration = Duration::from_secs_f64(args.duration);
    let n = offered_count(args.rate, duration);
    let (plans, setup_s, presign_s) = prepare(&args, &net, n).await?;
    let Net { rpcs, tracker, encoding, conns, .. } = net;
    eprintln!(
        "dpx-bench: {} {n} transactions pre-built in {presign_s:.1} s; sending at {} tx/s for {} s",
        args.mode.as_str(),
        args.rate,
        args.duration
    );

    let ticks = procstat::clock_ticks_per_s();
    let pids: Vec<String> = args.pids.iter().map(u32::to_string).collect();
    let before: Vec<Option<ProcSample>> = pids.iter().map(|p| procstat::sample(p, ticks)).collect();
    let client_before = procstat::sample("self", ticks);
    let rss = RssSampler::start(pids.clone(), ticks);

    let lead = Duration::from_millis(300);
    let start = Instant::now() + lead;
    let start_unix_ms = unix_ms() + lead.as_millis() as u64;
    let window_end = start + duration;
    let cfg = SendConfig {
        batch: args.batch,
        max_batch: args.max_batch.max(args.batch),
        linger: Duration::from_millis(args.linger_ms),
        retries: args.retries,
    };
    let mut handles = Vec::new();
    for (conn, plan) in conns.iter().cloned().zip(plans) {
        handles.push(tokio::spawn(run_sender(conn, plan, start, cfg, encoding.clone())));
    }
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.push(h.await.context("a sender task failed")?);
    }

    // Drain: wait (bounded) for every accepted transaction to commit at its node.
    let accepted: Vec<(usize, Hash)> = outcomes
        .iter()
        .flat_map(|o| o.accepted.iter().flatten().map(move |h| (o.node, *h)))
        .collect();
    let drain_from = Instant::now().max(window_end);
    let drain_limit =
        Duration::from_secs_f64(args.drain) + window_end.saturating_duration_since(Instant::now());
    let missing = tracker.wait_all(&accepted, drain_limit).await;
    let drain_s = drain_from.elapsed().as_secs_f64();
    if missing > 0 {
        eprintln!("dpx-bench: {missing} accepted transactions not seen committed at their node");
    }
    let after: Vec<Option<ProcSample>> = pids.iter().map(|p| procstat::sample(p, ticks)).collect();
    let client_after = procstat::sample("self", ticks);
    let rss_max = rss.stop().await;
    for s in subscribers {
        s.abort();
    }

    let end_unix_ms = start_unix_ms + duration.as_millis() as u64;
    let mut rec = summarize(&outcomes, &tracker, start, window_end);
    rec.kind = KIND_LOAD.into();
    rec.label.clone_from(&args.label);
    rec.mode = args.mode.as_str().into();
    rec.encoding = encoding.get().as_str().into();
    rec.started_unix_ms = start_unix_ms;
    rec.rpcs = rpcs.len();
    rec.connections = args.connections;
    rec.batch_max = args.batch;
    rec.duration_s = args.duration;
    rec.offered_tx_s = args.rate;
    rec.scheduled = n;
    rec.committed_with_drain_tx_s = rec.committed as f64 / args.duration;
    rec.blocks = block_summary(&tracker.blocks_between(start_unix_ms, end_unix_ms));
    rec.nodes = node_usage(&args.pids, &before, &after, &rss_max);
    rec.client_cpu_s = match (client_before, client_after) {
        (Some(b), Some(a)) => a.cpu_s - b.cpu_s,
        _ => 0.0,
    };
    rec.sse_reconnects = tracker.reconnects.load(std::sync::atomic::Ordering::Relaxed);
    rec.setup_s = setup_s;
    rec.presign_s = presign_s;
    rec.drain_s = drain_s;
    println!("{}", record::table_header());
    println!("{}", record::table_row(&rec));
    eprintln!(
        "dpx-bench: sent {} accepted {} committed {} (receipts {:?}) rejected {:?} skipped {} lost {} duplicates {}; client cpu {:.1} s; p99 {:.0} ms; send lag p99 {:.1} ms",
        rec.sent,
        rec.accepted,
        rec.committed,
        rec.receipts,
        rec.rejected,
        rec.skipped,
        rec.lost,
        rec.duplicates,
        rec.client_cpu_s,
        rec.latency.p99_ms,
        rec.send_lag.p99_ms,
    );
    if let Some(out) = &args.out {
        record::append(out, &rec)?;
    }
    Ok(rec)
}

/// Set up (full mode) and pre-build the window: (per-connection plans, set-up s, pre-build s).
async fn prepare(
    args: &LoadArgs,
    net: &Net,
    n: u64,
) -> anyhow::Result<(Vec<Vec<workload::Planned>>, f64, f64)> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let k = net.conns.len();
    let rate = args.rate;
    match args.mode {
        Mode::Full => {
            let setup_started = Instant::now();
            let key = args.agency_key.as_ref().context("full mode needs --agency-key")?;
            let agency = dpx_crypto::keyfile::load(key)?;
            let agency_nonce = rpc::next_nonce(&net.light, &net.rpcs[0], &agency.public()).await?;
            let sizes = Sizes::for_rate(rate, args.mix, args.signer_rate, k);
            let mut approvers = Vec::new();
            for path in &args.approver_key {
                let k = dpx_crypto::keyfile::load(path)?;
                let n = rpc::next_nonce(&net.light, &net.rpcs[0], &k.public()).await?;
                approvers.push((k, n));
            }
            let market = Market::new(&net.chain, agency, agency_nonce, sizes, rand::random())
                .with_approvers(approvers);
            eprintln!(
                "dpx-bench: set-up on {}: {} consumers, {} providers, {} operators",
                net.chain, sizes.consumers, sizes.providers, sizes.operators
            );
            setup(&market, &net.conns[0], &net.tracker, &net.encoding).await?;
            let setup_s = setup_started.elapsed().as_secs_f64();
            rpc::status(&net.light, &net.rpcs[0]).await?;
            let t = Instant::now();
            let mix = args.mix;
            // Grants stay valid far beyond any run: a day of block time from now.
            let expiry = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                .saturating_add(86_400_000);
            let plans =
                tokio::task::spawn_blocking(move || market.timed(n, rate, mix, k, expiry, threads))
                    .await?;
            Ok((plans, setup_s, t.elapsed().as_secs_f64()))
        }
        Mode::ConsensusOnly => {
            let t = Instant::now();
            let size = args.payload_bytes;
            let plans = tokio::task::spawn_blocking(move || {
                workload::payloads(n, size, rand::random(), rate, k)
            })
            .await?;
            Ok((plans, 0.0, t.elapsed().as_secs_f64()))
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One event subscriber per node; returns once all are subscribed.
async fn subscribe_all(
    rpcs: &[String],
    tracker: &Arc<Tracker>,
    observe: Observe,
    observer: Option<&crate::observer::Observer>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let client = reqwest::Client::builder().connect_timeout(Duration::from_secs(5)).build()?;
    let mut handles = Vec::new();
    let mut readies = Vec::new();
    for (i, r) in rpcs.iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        handles.push(tokio::spawn(tracker::subscribe(
            client.clone(),
            r.clone(),
            observe,
            observer.cloned(),
            i,
            tracker.clone(),
            tx,
        )));
        readies.push(rx);
    }
    for rx in readies {
        rx.await.context("event subscriber ended")??;
    }
    Ok(handles)
}

/// Send each set-up stage through `conn` and wait until every node has committed it with an
/// `ok` receipt.
async fn setup(
    market: &Market,
    conn: &Conn,
    tracker: &Tracker,
    encoding: &EncodingChoice,
) -> anyhow::Result<()> {
    const SETUP_BATCH: usize = 500;
    let nodes = tracker.nodes();
    for (name, txs) in market.setup_stages() {
        let t = Instant::now();
        let mut counts = HttpCounts::default();
        for chunk in txs.chunks(SETUP_BATCH) {
            let bytes: Vec<&[u8]> = chunk.iter().map(|t| t.bytes.as_slice()).collect();
            let answers = post_batch(conn, &bytes, encoding, 10, &mut counts)
                .await
                .map_err(|r| anyhow::anyhow!("set-up ({name}): the batch failed: {r}"))?;
            for a in answers {
                if let TxAnswer::Refused { code, message } = a {
                    anyhow::bail!("set-up ({name}): a transaction was refused: {code}: {message}");
                }
            }
        }
        let want: Vec<(usize, Hash)> =
            (0..nodes).flat_map(|n| txs.iter().map(move |t| (n, t.hash))).collect();
        let timeout = Duration::from_secs(60 + txs.len() as u64 / 50);
        let missing = tracker.wait_all(&want, timeout).await;
        anyhow::ensure!(
            missing == 0,
            "set-up ({name}): {missing} commits not seen within {timeout:?}"
        );
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        for t in &txs {
            let code =
                tracker.seen_at(0, &t.hash).and_then(|s| s.code).unwrap_or_else(|| "none".into());
            *codes.entry(code).or_default() += 1;
        }
        anyhow::ensure!(
            codes.keys().all(|c| c == "ok"),
            "set-up ({name}): receipts {codes:?} (every one must be ok)"
        );
        eprintln!(
            "dpx-bench: set-up: {name}: {} transactions committed in {:.1} s",
            txs.len(),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn summarize(
    outcomes: &[SendOutcome],
    tracker: &Tracker,
    start: Instant,
    window_end: Instant,
) -> LoadRecord {
    let mut r = LoadRecord::default();
    let mut latencies = Vec::new();
    let mut lags = Vec::new();
    let (mut first_send, mut last_send): (Option<Instant>, Option<Instant>) = (None, None);
    let mut in_window = 0u64;
    for o in outcomes {
        for (sent, acc) in o.sent_at.iter().zip(&o.accepted) {
            let Some(sent) = *sent else { continue };
            r.sent += 1;
            first_send = Some(first_send.map_or(sent, |f| f.min(sent)));
            last_send = Some(last_send.map_or(sent, |l| l.max(sent)));
            let Some(h) = acc else { continue };
            r.accepted += 1;
            match tracker.seen_at(o.node, h) {
                Some(seen) => {
                    r.committed += 1;
                    in_window += u64::from(seen.at <= window_end);
                    latencies.push(seen.at.saturating_duration_since(sent).as_micros() as u64);
                    let code = seen.code.unwrap_or_else(|| "none".into());
                    if code != "ok" && code != "none" {
                        r.failed += 1;
                    }
                    *r.receipts.entry(code).or_default() += 1;
                }
                None => {
                    if tracker.seen_anywhere(h).is_none() {
                        r.lost += 1;
                    }
                }
            }
        }
        for (k, v) in &o.rejected {
            *r.rejected.entry(k.clone()).or_default() += v;
        }
        r.skipped += o.skipped;
        r.hash_mismatches += o.hash_mismatches;
        r.http_requests += o.http.requests;
        r.http_retries += o.http.retries;
        lags.extend_from_slice(&o.lag_us);
    }
    let window = window_end.saturating_duration_since(start).as_secs_f64();
    r.committed_tx_s = if window > 0.0 { in_window as f64 / window } else { 0.0 };
    let send_span = match (first_send, last_send) {
        (Some(f), Some(l)) => l.saturating_duration_since(f).as_secs_f64(),
        _ => 0.0,
    };
    // Over the span from the first to the last request (at least the window, so a run that
    // sent everything early is not credited a higher rate than it offered).
    r.send_rate_tx_s = if r.sent > 0 { r.sent as f64 / send_span.max(window) } else { 0.0 };
    r.duplicates = tracker.duplicates().len() as u64;
    r.latency = LatencySummary::from_micros(latencies);
    r.send_lag = LatencySummary::from_micros(lags);
    r
}

fn block_summary(blocks: &[(u64, crate::tracker::BlockSeen)]) -> BlockSummary {
    let Some((first, last)) = blocks.first().zip(blocks.last()) else {
        return BlockSummary::default();
    };
    let count = blocks.len() as u64;
    let txs: u64 = blocks.iter().map(|(_, b)| b.txs).sum();
    BlockSummary {
        count,
        mean_interval_ms: if count > 1 {
            (last.1.time_ms.saturating_sub(first.1.time_ms)) as f64 / (count - 1) as f64
        } else {
            0.0
        },
        mean_txs_per_block: txs as f64 / count as f64,
        max_txs_per_block: blocks.iter().map(|(_, b)| b.txs).max().unwrap_or(0),
    }
}

fn node_usage(
    pids: &[u32],
    before: &[Option<ProcSample>],
    after: &[Option<ProcSample>],
    rss_max_kb: &[u64],
) -> Vec<NodeUsage> {
    pids.iter()
        .enumerate()
        .map(|(i, pid)| {
            let (b, a) = (before[i], after[i]);
            if b.is_none() || a.is_none() {
                eprintln!("dpx-bench: process {pid} could not be read from /proc");
            }
            let mb = |kb: u64| kb as f64 / 1024.0;
            NodeUsage {
                pid: *pid,
                cpu_s: match (b, a) {
                    (Some(b), Some(a)) => a.cpu_s - b.cpu_s,
                    _ => 0.0,
                },
                rss_max_mb: mb(rss_max_kb.get(i).copied().unwrap_or(0)),
                hwm_mb: mb(a.map_or(0, |a| a.hwm_kb)),
            }
        })
        .collect()
}

/// Samples the resident memory of the validators every 250 ms and keeps the maximum.
struct RssSampler {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Vec<u64>>,
}

impl RssSampler {
    fn start(pids: Vec<String>, ticks: f64) -> Self {
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut max = vec![0u64; pids.len()];
            loop {
                for (m, p) in max.iter_mut().zip(&pids) {
                    if let Some(s) = procstat::sample(p, ticks) {
                        *m = (*m).max(s.rss_kb);
                    }
                }
                tokio::select! {
                    _ = &mut stopped => return max,
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) -> Vec<u64> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::BlockSeen;

    #[test]
    fn block_figures() {
        let b = |h, time_ms, txs| (h, BlockSeen { time_ms, txs });
        let s = block_summary(&[b(5, 1000, 10), b(6, 1500, 30), b(7, 3000, 20)]);
        assert_eq!(s.count, 3);
        assert!((s.mean_interval_ms - 1000.0).abs() < 1e-9);
        assert!((s.mean_txs_per_block - 20.0).abs() < 1e-9);
        assert_eq!(s.max_txs_per_block, 30);
        assert_eq!(block_summary(&[]), BlockSummary::default());
        assert!((block_summary(&[b(1, 5, 4)]).mean_interval_ms).abs() < 1e-9);
    }

    #[test]
    fn summary_counts_lost_committed_and_latency() {
        let tracker = Tracker::new(1);
        let t0 = Instant::now();
        let h = |b: u8| Hash([b; 32]);
        let ok = |b: u8, ms: u64, code: &str| {
            tracker.record(
                0,
                crate::sse::NodeEvent::Tx { height: 2, hash: h(b), code: Some(code.into()) },
                t0 + Duration::from_millis(ms),
            );
        };
        ok(1, 100, "ok");
        ok(2, 300, "failed");
        let outcome = SendOutcome {
            node: 0,
            sent_at: vec![Some(t0), Some(t0), Some(t0), None],
            accepted: vec![Some(h(1)), Some(h(2)), Some(h(3)), None],
            rejected: BTreeMap::from([("busy".into(), 1)]),
            ..SendOutcome::default()
        };
        let end = t0 + Duration::from_millis(200);
        let r = summarize(&[outcome], &tracker, t0, end);
        assert_eq!((r.sent, r.accepted, r.committed, r.lost, r.failed), (3, 3, 2, 1, 1));
        assert_eq!(r.receipts.get("ok"), Some(&1));
        assert!((r.latency.max_ms - 300.0).abs() < 1e-6);
        // One of two commits fell inside the 0.2 s window.
        assert!((r.committed_tx_s - 5.0).abs() < 1e-6);
        assert_eq!(r.rejected.get("busy"), Some(&1));
    }
}
