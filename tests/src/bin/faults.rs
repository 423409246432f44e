//! `faults`: the load generator and the consistency checker behind `scripts/faults.sh`.
//!
//! ```text
//! faults load  --rpc URL... --key AGENCY_KEY... --acked FILE --stop FILE [--timeout-ms 5000]
//! faults check --rpc URL... --acked FILE --state DIR [--wait-s 90]
//! faults tips  --rpc URL...
//! faults next-proposer --rpc URL...
//! ```
//!
//! `load` runs one worker per key: each signs `admit` transactions (a fresh participant key
//! each) with consecutive nonces and submits them with `wait=commit`, one at a time, moving to
//! another node when its node fails. A transaction is *acknowledged* only when a node answers
//! that it is committed; each acknowledgement is one line of `--acked`:
//! `<unix ms> <tx hash> <height> <latency ms> <worker>`.
//!
//! `check` waits until every node has reached the highest height any of them reported, then
//! checks (incrementally, remembering what it verified in `--state`) that every node has the same
//! block id and state root at every height, that every acknowledged transaction is committed on
//! every node at the acknowledged height, and that no node holds evidence of a double
//! signature. Exit 0 when all hold, 1 with the reasons otherwise.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use dpx_contracts::{Operation, Role, TransactionBody};
use dpx_crypto::{Keypair, keyfile};
use dpx_tests::tool::{Opts, run_main};

/// Requests one node serves at once while checking.
const CHECK_PARALLEL: usize = 8;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_main("faults", 2, run(&args))
}

async fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let (cmd, rest) =
        args.split_first().context("usage: faults load|check|tips|next-proposer --rpc URL ...")?;
    let o = Opts::parse(rest)?;
    let urls: Vec<String> =
        o.all("rpc")?.iter().map(|u| u.trim_end_matches('/').to_owned()).collect();
    match cmd.as_str() {
        "load" => load(&o, urls).await.map(|()| ExitCode::SUCCESS),
        "check" => check(&o, &urls).await,
        "tips" => {
            let c = client(Duration::from_millis(1500))?;
            let tips = tips(&c, &urls).await;
            let s: Vec<String> =
                tips.iter().map(|t| t.map_or_else(|| "-1".to_owned(), |h| h.to_string())).collect();
            println!("{}", s.join(" "));
            Ok(ExitCode::SUCCESS)
        }
        "next-proposer" => next_proposer(&urls).await.map(|()| ExitCode::SUCCESS),
        other => bail!("unknown command {other}"),
    }
}

fn client(timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(1))
        .timeout(timeout)
        .build()?)
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn get(c: &reqwest::Client, url: &str) -> anyhow::Result<(u16, Value)> {
    let r = c.get(url).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Each node's height, `None` when it does not answer.
async fn tips(c: &reqwest::Client, urls: &[String]) -> Vec<Option<u64>> {
    let mut set = JoinSet::new();
    for (i, u) in urls.iter().enumerate() {
        let (c, u) = (c.clone(), format!("{u}/v1/status"));
        set.spawn(
            async move { (i, get(&c, &u).await.ok().and_then(|(_, v)| v["height"].as_u64())) },
        );
    }
    let mut out = vec![None; urls.len()];
    while let Some(Ok((i, h))) = set.join_next().await {
        out[i] = h;
    }
    out
}

// ---------------------------------------------------------------- load

use dpx_tests::SubmitOutcome as Outcome;

struct Worker {
    id: usize,
    key: Keypair,
    urls: Vec<String>,
    node: usize,
    http: reqwest::Client,
    acks: mpsc::UnboundedSender<String>,
    stop: Arc<AtomicBool>,
    timeout_ms: u64,
}

async fn load(o: &Opts, urls: Vec<String>) -> anyhow::Result<()> {
    let acked = PathBuf::from(o.one("acked")?);
    let stop_file = PathBuf::from(o.one("stop")?);
    let timeout_ms = o.num("timeout-ms", 5000)?;
    let http = client(Duration::from_millis(timeout_ms + 3000))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&acked)?;
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            // Flushed per line: the checker reads this file while the load runs.
            if writeln!(file, "{line}").and_then(|()| file.flush()).is_err() {
                eprintln!("faults load: cannot write the ack file");
            }
        }
    });
    let mut workers = JoinSet::new();
    for (id, path) in o.all("key")?.iter().enumerate() {
        let key = keyfile::load(Path::new(path)).with_context(|| format!("loading {path}"))?;
        let w = Worker {
            id,
            key,
            node: id % urls.len(),
            urls: urls.clone(),
            http: http.clone(),
            acks: tx.clone(),
            stop: stop.clone(),
            timeout_ms,
        };
        workers.spawn(w.run());
    }
    drop(tx);
    while !stop_file.exists() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    while let Some(r) = workers.join_next().await {
        if let Ok(Err(e)) = r {
            eprintln!("faults load: worker failed: {e:#}");
        }
    }
    let _ = writer.await;
    Ok(())
}

impl Worker {
    fn url(&self) -> &str {
        &self.urls[self.node]
    }

    fn rotate(&mut self) {
        self.node = (self.node + 1) % self.urls.len();
    }

    fn log(&self, msg: &str) {
        eprintln!("{} worker {} node {}: {msg}", now_ms(), self.id, self.node);
    }

    async fn run(mut self) -> anyhow::Result<()> {
        let chain = loop {
            if self.stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            match get(&self.http, &format!("{}/v1/status", self.url())).await {
                Ok((200, v)) if v["chain_id"].is_string() => {
                    break v["chain_id"].as_str().unwrap_or_default().to_owned();
                }
                _ => {
                    self.rotate();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        };
        let mut nonce: Option<u64> = None;
        // The transaction in flight: (hex bytes, hash, nonce, first submitted). Kept until it is
        // known committed, so a retry never signs a second transaction for the same nonce.
        let mut pending: Option<(String, String, u64, Instant)> = None;
        let mut seq = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            let n = match nonce {
                Some(n) => n,
                None => match self.next_nonce().await {
                    Ok(n) => {
                        nonce = Some(n);
                        n
                    }
                    Err(e) => {
                        self.log(&format!("nonce: {e:#}"));
                        self.rotate();
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        continue;
                    }
                },
            };
            let (hex_tx, hash, n, t0) = pending.get_or_insert_with(|| {
                seq += 1;
                let who = Keypair::generate().public();
                let op = Operation::Admit {
                    key: who,
                    name: format!("load-{}-{n}-{seq}", self.id),
                    roles: vec![Role::Consumer],
                };
                let tx = TransactionBody::new(chain.clone(), n, op).sign(&self.key);
                (to_hex(&tx.encode()), tx.hash().to_string(), n, Instant::now())
            });
            let (hex_tx, hash, n, t0) = (hex_tx.clone(), hash.clone(), *n, *t0);
            let outcome = self.submit(&hex_tx).await;
            let was_pending = matches!(outcome, Outcome::Pending);
            let committed = match outcome {
                Outcome::Committed(h) => Some(h),
                Outcome::Pending => {
                    self.poll_committed(&hash, Duration::from_millis(self.timeout_ms)).await
                }
                Outcome::NonceUsed => {
                    let found = self.find_committed(&hash).await;
                    if found.is_none() {
                        self.log(&format!(
                            "nonce {n} is used but transaction {hash} is committed on no node"
                        ));
                        pending = None;
                        nonce = None;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                    found
                }
                Outcome::Unavailable(why) => {
                    self.log(&why);
                    // It may have been committed through another node meanwhile.
                    let found = self.poll_committed(&hash, Duration::ZERO).await;
                    if found.is_none() {
                        self.rotate();
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    found
                }
            };
            if let Some(h) = committed {
                let lat = t0.elapsed().as_millis();
                let _ = self.acks.send(format!("{} {hash} {h} {lat} {}", now_ms(), self.id));
                pending = None;
                nonce = Some(n + 1);
            } else if was_pending {
                // Not committed within the wait: perhaps this node is cut off. Try another.
                self.rotate();
            }
        }
        Ok(())
    }

    async fn next_nonce(&self) -> anyhow::Result<u64> {
        let url = format!("{}/v1/state/accounts/{}", self.url(), self.key.public());
        match get(&self.http, &url).await? {
            (200, v) => {
                v["value"]["next_nonce"].as_u64().context("no next_nonce in the account view")
            }
            (404, _) => Ok(0),
            (s, v) => bail!("account query: {s} {v}"),
        }
    }

    async fn submit(&self, hex_tx: &str) -> Outcome {
        let url = format!("{}/v1/txs?wait=commit&timeout_ms={}", self.url(), self.timeout_ms);
        let r = match self.http.post(&url).json(&json!({ "tx": hex_tx })).send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Unavailable(format!("submit: {e}")),
        };
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        dpx_tests::classify_submit(status, &v)
    }

    /// Ask the current node for the transaction until `wait` has passed (at least once).
    async fn poll_committed(&self, hash: &str, wait: Duration) -> Option<u64> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok((200, v)) = get(&self.http, &format!("{}/v1/txs/{hash}", self.url())).await
                && v["status"] == "committed"
            {
                return v["height"].as_u64();
            }
            if Instant::now() >= deadline || self.stop.load(Ordering::SeqCst) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Ask every node, for a few seconds (one that just committed it may be ahead of the rest).
    async fn find_committed(&self, hash: &str) -> Option<u64> {
        for _ in 0..20 {
            for u in &self.urls {
                if let Ok((200, v)) = get(&self.http, &format!("{u}/v1/txs/{hash}")).await
                    && v["status"] == "committed"
                {
                    return v["height"].as_u64();
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }
}

// ---------------------------------------------------------------- check

/// What earlier checks verified, kept in `--state`: the reference chain and, per node, the
/// highest height and the number of acknowledgements already verified on it.
#[derive(Debug, Default)]
struct CheckState {
    /// height -> (block id, state root)
    chain: BTreeMap<u64, (String, String)>,
    /// node url -> (verified through height, verified ack lines)
    nodes: BTreeMap<String, (u64, usize)>,
}

impl CheckState {
    fn load(dir: &Path) -> anyhow::Result<Self> {
        let mut s = Self::default();
        if let Ok(text) = std::fs::read_to_string(dir.join("chain.tsv")) {
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if let [h, id, root] = f[..] {
                    s.chain.insert(h.parse()?, (id.to_owned(), root.to_owned()));
                }
            }
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("nodes.tsv")) {
            for line in text.lines() {
                let f: Vec<&str> = line.split('\t').collect();
                if let [u, h, a] = f[..] {
                    s.nodes.insert(u.to_owned(), (h.parse()?, a.parse()?));
                }
            }
        }
        Ok(s)
    }

    fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut c = String::new();
        for (h, (id, root)) in &self.chain {
            let _ = writeln!(c, "{h}\t{id}\t{root}");
        }
        std::fs::write(dir.join("chain.tsv"), c)?;
        let mut n = String::new();
        for (u, (h, a)) in &self.nodes {
            let _ = writeln!(n, "{u}\t{h}\t{a}");
        }
        std::fs::write(dir.join("nodes.tsv"), n)?;
        Ok(())
    }
}

/// An acknowledged transaction: (hash, height).
fn read_acks(path: &Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // A line being written right now may be partial; the writer flushes whole lines.
        if let [_, hash, h, ..] = f[..]
            && let Ok(h) = h.parse()
        {
            out.push((hash.to_owned(), h));
        }
    }
    out
}

async fn fetch_block(c: &reqwest::Client, url: &str, h: u64) -> Result<(String, String), String> {
    for attempt in 0..3 {
        match get(c, &format!("{url}/v1/blocks/{h}")).await {
            Ok((200, v)) => {
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let root = v["header"]["state_root"].as_str().unwrap_or_default().to_owned();
                if id.is_empty() || root.is_empty() {
                    return Err(format!("block {h}: no id or state_root in the answer"));
                }
                return Ok((id, root));
            }
            Ok((s, v)) if attempt == 2 => return Err(format!("block {h}: {s} {v}")),
            Err(e) if attempt == 2 => return Err(format!("block {h}: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Err(format!("block {h}: no answer"))
}

async fn fetch_tx(c: &reqwest::Client, url: &str, hash: &str) -> Result<u64, String> {
    for attempt in 0..3 {
        match get(c, &format!("{url}/v1/txs/{hash}")).await {
            Ok((200, v)) if v["status"] == "committed" => {
                return v["height"].as_u64().ok_or_else(|| format!("tx {hash}: no height"));
            }
            Ok((s, v)) if attempt == 2 => {
                return Err(format!("acknowledged tx {hash} is not committed here: {s} {v}"));
            }
            Err(e) if attempt == 2 => return Err(format!("tx {hash}: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Err(format!("tx {hash}: no answer"))
}

/// Run `jobs` with at most [`CHECK_PARALLEL`] in flight, results in input order.
async fn bounded<T, F>(jobs: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut out: Vec<Option<T>> = (0..jobs.len()).map(|_| None).collect();
    let mut set = JoinSet::new();
    for (i, job) in jobs.into_iter().enumerate() {
        if set.len() >= CHECK_PARALLEL
            && let Some(Ok((j, r))) = set.join_next().await
        {
            out[j] = Some(r);
        }
        set.spawn(async move { (i, job.await) });
    }
    while let Some(Ok((j, r))) = set.join_next().await {
        out[j] = Some(r);
    }
    out.into_iter().flatten().collect()
}

async fn check(o: &Opts, urls: &[String]) -> anyhow::Result<ExitCode> {
    let acked = PathBuf::from(o.one("acked")?);
    let dir = PathBuf::from(o.one("state")?);
    let wait = Duration::from_secs(o.num("wait-s", 90)?);
    let c = client(Duration::from_secs(10))?;
    let mut state = CheckState::load(&dir)?;
    let mut problems: Vec<String> = Vec::new();

    // 1. Convergence: everyone reaches the highest height anyone reported when we started.
    let start = Instant::now();
    let first = tips(&c, urls).await;
    let target = first.iter().flatten().copied().max().context("no node answers")?;
    let tipv = loop {
        let t = tips(&c, urls).await;
        if t.iter().all(|h| h.is_some_and(|h| h >= target)) {
            break t;
        }
        if start.elapsed() >= wait {
            for (u, h) in urls.iter().zip(&t) {
                if h.is_none_or(|h| h < target) {
                    problems.push(format!(
                        "{u} did not reach height {target} within {}s (at {h:?})",
                        wait.as_secs()
                    ));
                }
            }
            break t;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let converge_ms = start.elapsed().as_millis();

    // 2. Same block id and state root at every height, against the reference chain.
    let acks = read_acks(&acked);
    let mut compared = 0usize;
    let mut acks_checked = 0usize;
    for (u, tip) in urls.iter().zip(&tipv) {
        let Some(tip) = *tip else { continue };
        let (done_h, done_a) = state.nodes.get(u).copied().unwrap_or((0, 0));
        let heights: Vec<u64> = (done_h + 1..=tip).collect();
        let jobs = heights.iter().map(|&h| {
            let (c, u) = (c.clone(), u.clone());
            async move { (h, fetch_block(&c, &u, h).await) }
        });
        let mut node_ok_through = done_h;
        let mut node_bad = false;
        for (h, r) in bounded(jobs.collect()).await {
            match r {
                Ok((id, root)) => {
                    compared += 1;
                    match state.chain.get(&h) {
                        Some((rid, rroot)) if *rid != id || *rroot != root => {
                            problems.push(format!("{u} height {h}: block {id} state root {root}, others have block {rid} state root {rroot}"));
                            node_bad = true;
                        }
                        Some(_) => {}
                        None => {
                            state.chain.insert(h, (id, root));
                        }
                    }
                }
                Err(e) => {
                    problems.push(format!("{u}: {e}"));
                    node_bad = true;
                }
            }
            if !node_bad {
                node_ok_through = h;
            }
        }

        // 3. Every acknowledged transaction is committed here, at the height it was acknowledged at.
        let mut acks_ok = done_a;
        let todo: Vec<(usize, String, u64)> = acks
            .iter()
            .enumerate()
            .skip(done_a)
            .take_while(|(_, (_, h))| *h <= tip)
            .map(|(i, (hash, h))| (i, hash.clone(), *h))
            .collect();
        let jobs = todo.into_iter().map(|(i, hash, want)| {
            let (c, u) = (c.clone(), u.clone());
            async move { (i, want, fetch_tx(&c, &u, &hash).await.map(|got| (hash, got))) }
        });
        let mut acks_bad = false;
        for (i, want, r) in bounded(jobs.collect()).await {
            acks_checked += 1;
            match r {
                Ok((_, got)) if got == want => {}
                Ok((hash, got)) => {
                    problems.push(format!(
                        "{u}: tx {hash} acknowledged at height {want} is at height {got}"
                    ));
                    acks_bad = true;
                }
                Err(e) => {
                    problems.push(format!("{u}: {e}"));
                    acks_bad = true;
                }
            }
            if !acks_bad {
                acks_ok = i + 1;
            }
        }
        state.nodes.insert(u.clone(), (node_ok_through, acks_ok));
    }

    // 4. No double signing: no node holds equivocation evidence.
    for u in urls {
        match get(&c, &format!("{u}/v1/evidence")).await {
            Ok((200, v)) => {
                let n = v["evidence"].as_array().map_or(0, Vec::len);
                if n > 0 {
                    problems.push(format!("{u}: {n} pieces of double-signing evidence: {v}"));
                }
            }
            Ok((s, v)) => problems.push(format!("{u}: /v1/evidence answered {s} {v}")),
            Err(e) => problems.push(format!("{u}: /v1/evidence: {e}")),
        }
    }
    state.save(&dir)?;
    let min_tip = tipv.iter().flatten().min().copied().unwrap_or(0);
    println!(
        "check: {} nodes converged at >= {target} in {converge_ms} ms (tips {}); {compared} new blocks compared \
         (reference chain 1..{}); {acks_checked} acknowledgement lookups ({} acknowledged txs so far); evidence: {}",
        urls.len(),
        tipv.iter()
            .map(|t| t.map_or_else(|| "down".into(), |h| h.to_string()))
            .collect::<Vec<_>>()
            .join(" "),
        state.chain.keys().next_back().copied().unwrap_or(0).max(min_tip),
        acks.len(),
        if problems.iter().any(|p| p.contains("evidence")) { "FOUND" } else { "none" },
    );
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for p in problems.iter().take(30) {
        println!("  PROBLEM: {p}");
    }
    if problems.len() > 30 {
        println!("  ... and {} more", problems.len() - 30);
    }
    Ok(ExitCode::FAILURE)
}

// ---------------------------------------------------------------- proposer

/// The consensus crate's proposer rule (smooth weighted round robin over the validator set in
/// its order, slot `(height + round) mod period`), recomputed from `/v1/status` so the fault
/// suite can cut off the validator that is proposing right now.
fn schedule(powers: &[u64]) -> Vec<usize> {
    let period: u64 = powers.iter().sum();
    let mut prio = vec![0i128; powers.len()];
    let mut out = Vec::new();
    for _ in 0..period {
        let mut best = 0;
        for (i, w) in powers.iter().enumerate() {
            prio[i] += i128::from(*w);
            if prio[i] > prio[best] {
                best = i;
            }
        }
        prio[best] -= i128::from(period);
        out.push(best);
    }
    out
}

/// Wait for the next commit and print `<node index> <height>`: the node whose round-0 proposal
/// for `height` is being made right now. Checks the rule against recent blocks first.
async fn next_proposer(urls: &[String]) -> anyhow::Result<()> {
    let c = client(Duration::from_secs(3))?;
    let mut keys = Vec::new();
    let mut status = Value::Null;
    for u in urls {
        let (_, v) = get(&c, &format!("{u}/v1/status")).await?;
        keys.push(v["node_key"].as_str().unwrap_or_default().to_owned());
        if status.is_null() {
            status = v;
        }
    }
    let vals: Vec<(String, u64)> = status["validators"]
        .as_array()
        .context("status has no validators")?
        .iter()
        .map(|v| {
            (v["key"].as_str().unwrap_or_default().to_owned(), v["power"].as_u64().unwrap_or(0))
        })
        .collect();
    anyhow::ensure!(
        vals.iter().all(|(_, p)| *p > 0) && vals.iter().map(|v| v.1).sum::<u64>() <= 10_000,
        "unexpected validator powers"
    );
    let sched = schedule(&vals.iter().map(|v| v.1).collect::<Vec<_>>());
    let proposer = |h: u64| &vals[sched[(h % sched.len() as u64) as usize]].0;
    // Blocks decided in round 0 were proposed by the rule's choice: most recent ones must match.
    let tip = status["height"].as_u64().unwrap_or(0);
    let (mut seen, mut matched) = (0, 0);
    for h in tip.saturating_sub(12).max(1)..=tip {
        if let Ok((200, b)) = get(&c, &format!("{}/v1/blocks/{h}", urls[0])).await {
            seen += 1;
            if b["header"]["proposer"].as_str() == Some(proposer(h).as_str()) {
                matched += 1;
            }
        }
    }
    anyhow::ensure!(
        seen == 0 || matched * 2 > seen,
        "the proposer rule matches only {matched} of the last {seen} blocks"
    );
    let start_tip = tips(&c, urls).await.into_iter().flatten().max().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let t = tips(&c, urls).await.into_iter().flatten().max().unwrap_or(0);
        if t > start_tip {
            let h = t + 1;
            let key = proposer(h);
            let idx = keys
                .iter()
                .position(|k| k == key)
                .context("the proposer is none of the given nodes")?;
            println!("{idx} {h}");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("no block was committed within 30 s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_powers_rotate_in_order() {
        assert_eq!(schedule(&[1, 1, 1, 1]), vec![0, 1, 2, 3]);
        assert_eq!(schedule(&[10, 10]).len(), 20);
    }

    #[test]
    fn weighted_schedule_gives_each_its_weight() {
        let s = schedule(&[3, 1]);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 3);
        assert_eq!(s.iter().filter(|&&i| i == 1).count(), 1);
    }

    #[test]
    fn partial_ack_lines_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("acked");
        std::fs::write(&p, "1 aa 5 10 0\n2 bb 6 11 1\n3 cc").unwrap();
        assert_eq!(read_acks(&p), vec![("aa".to_owned(), 5), ("bb".to_owned(), 6)]);
    }
}
