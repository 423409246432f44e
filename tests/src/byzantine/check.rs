//! The invariants checked after every scenario, in one place: the honest validators keep
//! committing, agree on every block id and state root, commit every acknowledged transaction
//! exactly once at the acknowledged height, and stay within the memory bound.
//!
//! Agreement is checked incrementally: a reference chain (block id, state root, transaction
//! hashes per height) is built from the first node that reports a height, and every node's
//! blocks are compared with it once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::net::{Net, Pids, rss_kib};

/// Blocks fetched at once from one node while checking.
const FETCH_PARALLEL: usize = 8;

/// What the checks remember between scenarios (reset with the cluster).
#[derive(Debug, Default)]
pub struct Checker {
    /// height -> (block id, state root)
    chain: BTreeMap<u64, (String, String)>,
    /// transaction hash -> heights of the reference chain that carry it
    tx_heights: BTreeMap<String, Vec<u64>>,
    /// node -> compared through this height
    compared: BTreeMap<usize, u64>,
    /// acknowledgements already verified on every node
    acks_done: usize,
}

/// One block as the checks see it.
struct Seen {
    id: String,
    state_root: String,
    txs: Vec<String>,
}

async fn fetch(net: &Net, i: usize, h: u64) -> Result<Seen, String> {
    for attempt in 0..3 {
        match net.get(i, &format!("/v1/blocks/{h}")).await {
            Ok((200, v)) => {
                let id = v["id"].as_str().unwrap_or_default().to_owned();
                let state_root = v["header"]["state_root"].as_str().unwrap_or_default().to_owned();
                let txs = v["txs"]
                    .as_array()
                    .map(|a| {
                        a.iter().filter_map(|t| t["hash"].as_str().map(str::to_owned)).collect()
                    })
                    .unwrap_or_default();
                return Ok(Seen { id, state_root, txs });
            }
            Ok((s, v)) if attempt == 2 => return Err(format!("node {i} block {h}: {s} {v}")),
            Err(e) if attempt == 2 => return Err(format!("node {i} block {h}: {e}")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    Err(format!("node {i} block {h}: no answer"))
}

impl Checker {
    /// Same block id and state root at every height on every node of `nodes`; then every
    /// acknowledged transaction committed exactly once, at its height, on every node.
    pub async fn check(
        &mut self,
        net: &Net,
        nodes: &[usize],
        acks: &[(String, u64)],
    ) -> Vec<String> {
        let mut problems = Vec::new();
        let mut tips = BTreeMap::new();
        for &i in nodes {
            let Some(tip) = net.height(i).await else {
                problems.push(format!("node {i} does not answer /v1/status"));
                continue;
            };
            tips.insert(i, tip);
            let from = self.compared.get(&i).copied().unwrap_or(0) + 1;
            let mut h = from;
            while h <= tip {
                let batch: Vec<u64> = (h..=tip).take(FETCH_PARALLEL).collect();
                h += batch.len() as u64;
                let got = futures::future::join_all(batch.iter().map(|&b| fetch(net, i, b))).await;
                for (b, r) in batch.into_iter().zip(got) {
                    match r {
                        Ok(seen) => self.compare(i, b, seen, &mut problems),
                        Err(e) => problems.push(e),
                    }
                }
            }
            self.compared.insert(i, tip);
        }
        let common = tips.values().copied().min().unwrap_or(0);
        // Acknowledgements at heights every checked node has.
        let todo: Vec<(String, u64)> =
            acks.iter().skip(self.acks_done).take_while(|(_, h)| *h <= common).cloned().collect();
        for (hash, want) in &todo {
            match self.tx_heights.get(hash).map(Vec::as_slice) {
                Some([h]) if h == want => {}
                Some(hs) => problems.push(format!(
                    "acknowledged tx {hash} (height {want}) is in the chain at heights {hs:?}"
                )),
                None => problems.push(format!(
                    "acknowledged tx {hash} (height {want}) is in no block of the chain"
                )),
            }
            for &i in nodes {
                match net.get(i, &format!("/v1/txs/{hash}")).await {
                    Ok((200, v)) if v["status"] == "committed" && v["height"] == *want => {}
                    Ok((s, v)) => problems.push(format!(
                        "node {i}: acknowledged tx {hash} (height {want}) answers {s} {v}"
                    )),
                    Err(e) => problems.push(format!("node {i}: tx {hash}: {e}")),
                }
            }
        }
        self.acks_done += todo.len();
        problems
    }

    fn compare(&mut self, node: usize, h: u64, seen: Seen, problems: &mut Vec<String>) {
        match self.chain.get(&h) {
            Some((id, root)) if *id != seen.id || *root != seen.state_root => {
                problems.push(format!(
                    "node {node} height {h}: block {} state root {}; the reference chain has block {id} state root {root}",
                    seen.id, seen.state_root
                ));
            }
            Some(_) => {}
            None => {
                self.chain.insert(h, (seen.id, seen.state_root));
                for t in seen.txs {
                    self.tx_heights.entry(t).or_default().push(h);
                }
            }
        }
    }

    /// Highest height of the reference chain.
    pub fn checked_through(&self) -> u64 {
        self.chain.keys().next_back().copied().unwrap_or(0)
    }
}

/// Samples the validators' resident memory while a scenario runs; keeps each one's maximum.
#[derive(Debug)]
pub struct RssSampler {
    max_kib: Arc<Mutex<Vec<u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    /// Sample the processes in `pids` (node index -> pid while it runs; a restarted node's new
    /// process is picked up) every 200 ms.
    pub fn start(pids: Pids) -> Self {
        let n = pids.lock().map_or(0, |p| p.len());
        let max_kib = Arc::new(Mutex::new(vec![0u64; n]));
        let m = max_kib.clone();
        let task = tokio::spawn(async move {
            loop {
                let now: Vec<Option<u32>> = pids.lock().map(|p| p.clone()).unwrap_or_default();
                for (i, pid) in now.iter().enumerate() {
                    if let (Some(k), Ok(mut v)) = (pid.and_then(rss_kib), m.lock()) {
                        v[i] = v[i].max(k);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { max_kib, task }
    }

    /// Stop sampling; each node's maximum RSS in KiB (0 for a node not sampled).
    pub fn finish(self) -> Vec<u64> {
        self.task.abort();
        self.max_kib.lock().map(|v| v.clone()).unwrap_or_default()
    }
}
