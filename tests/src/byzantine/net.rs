//! The cluster under attack: four `dpx` validator processes ([`crate::Cluster`]) whose configs
//! permit the byzantine peer's key (`p2p.allow`), and the async RPC helpers the scenarios and
//! the checks use.
//!
//! Honest traffic (the background load, the checks) leaves from 127.0.0.2 and attacks from
//! 127.0.0.1, so a per-IP limit on the attacker never throttles the honest clients.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use dpx_crypto::{Keypair, PublicKey, keyfile};
use dpx_node::config::Config;

use super::peer::Target;
use crate::Cluster;

/// Source address of honest clients (load and checks).
pub const HONEST_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Node index -> process id while it runs (read by the RSS sampler).
pub type Pids = Arc<Mutex<Vec<Option<u32>>>>;

/// Validators in every cluster.
pub const VALIDATORS: usize = 4;

/// A running 4-validator cluster that permits the byzantine key.
#[derive(Debug)]
pub struct Net {
    pub cluster: Cluster,
    /// The permitted non-validator key the byzantine peer uses.
    pub byz_key: Keypair,
    pub chain_id: String,
    /// Node `i`'s key (its validator key) and libp2p address.
    pub targets: Vec<Target>,
    /// The largest frame a node reads (its configured limit, raised to fit a full block).
    pub frame_limit: usize,
    /// `rpc.request_timeout_ms` of the nodes.
    pub request_timeout_ms: u64,
    /// `rpc.max_subscribers` of the nodes.
    pub max_subscribers: usize,
    pub http: reqwest::Client,
    pub pids: Pids,
}

/// An RPC answer: status and JSON body (`Null` when the body is not JSON).
pub type Answer = (u16, Value);

impl Net {
    /// Init, permit the byzantine key, start all, wait for height 2. Blocking work (the
    /// `dpx testnet init` process, waiting for children) runs off the async threads.
    pub async fn start() -> anyhow::Result<Self> {
        let byz_key = Keypair::generate();
        let byz_hex = byz_key.public().to_hex();
        let (cluster, cfg) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut c = Cluster::init(VALIDATORS)?;
            let mut last = None;
            for home in &c.homes {
                let path = home.join("config.toml");
                let mut cfg = Config::load(&path)?;
                cfg.p2p.allow.push(byz_hex.clone());
                // The checks read every block from every node: lift the per-IP request rate
                // (as scripts/faults.sh does); the attacks do not rely on it.
                cfg.rpc.per_ip_requests_per_s = 100_000;
                cfg.rpc.per_ip_burst = 100_000;
                cfg.save(&path)?;
                last = Some(cfg);
            }
            c.start_all()?;
            Ok((c, last.context("no nodes")?))
        })
        .await??;
        let mut targets = Vec::new();
        for (i, home) in cluster.homes.iter().enumerate() {
            let key = keyfile::load_public(&home.join("node_key.json"))?;
            targets.push(Target { key, addr: cluster.p2p_addr(i)?.parse()? });
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .local_address(IpAddr::V4(HONEST_IP))
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(15))
            .build()?;
        // The block limit of the default parameters, as the node computes its frame limit.
        let p = dpx_contracts::Params::default();
        let encoded_max = dpx_app::execute::BlockLimits {
            max_block_bytes: usize::try_from(p.max_block_bytes)?,
            max_block_txs: p.max_block_txs as usize,
        }
        .encoded_max();
        let mut net = Self {
            cluster,
            byz_key,
            chain_id: String::new(),
            targets,
            frame_limit: cfg.p2p.max_frame_bytes.max(encoded_max + 65_536),
            request_timeout_ms: cfg.rpc.request_timeout_ms,
            max_subscribers: cfg.rpc.max_subscribers,
            http,
            pids: Arc::new(Mutex::new(Vec::new())),
        };
        net.update_pids();
        net.wait_height(&[0, 1, 2, 3], 2, Duration::from_mins(1)).await?;
        let (_, st) = net.get(0, "/v1/status").await?;
        st["chain_id"].as_str().context("chain_id")?.clone_into(&mut net.chain_id);
        Ok(net)
    }

    pub fn rpc(&self, i: usize) -> &str {
        &self.cluster.rpc[i]
    }

    /// Path of founding agency `i`'s key file (a funded, permitted signer).
    pub fn agency(&self, i: usize) -> anyhow::Result<Keypair> {
        Ok(keyfile::load(&self.cluster.agency_key(i))?)
    }

    pub fn node_key_path(&self, i: usize) -> PathBuf {
        self.cluster.homes[i].join("node_key.json")
    }

    pub async fn get(&self, i: usize, path: &str) -> anyhow::Result<Answer> {
        let r = self.http.get(format!("{}{path}", self.rpc(i))).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn post(&self, i: usize, path: &str, body: &Value) -> anyhow::Result<Answer> {
        let r = self.http.post(format!("{}{path}", self.rpc(i))).json(body).send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    pub async fn height(&self, i: usize) -> Option<u64> {
        self.get(i, "/v1/status").await.ok().and_then(|(_, v)| v["height"].as_u64())
    }

    /// Heights of `nodes`, `None` for a node that does not answer.
    pub async fn heights(&self, nodes: &[usize]) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        for i in nodes {
            out.push(self.height(*i).await);
        }
        out
    }

    /// The highest height any of `nodes` reports (0 when none answers).
    pub async fn max_height(&self, nodes: &[usize]) -> u64 {
        self.heights(nodes).await.into_iter().flatten().max().unwrap_or(0)
    }

    /// Wait until every node of `nodes` has committed `h`.
    pub async fn wait_height(
        &self,
        nodes: &[usize],
        h: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let hs = self.heights(nodes).await;
            if hs.iter().all(|x| x.is_some_and(|x| x >= h)) {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "nodes {nodes:?} did not all reach height {h} within {}s (at {hs:?})",
                timeout.as_secs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every sample of node `i`'s `/metrics`, by name with labels.
    pub async fn metrics(&self, i: usize) -> BTreeMap<String, f64> {
        match self.http.get(format!("{}/metrics", self.rpc(i))).send().await {
            Ok(r) => parse_metrics(&r.text().await.unwrap_or_default()),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Pieces of double-signing evidence node `i` holds.
    pub async fn evidence(&self, i: usize) -> usize {
        self.get(i, "/v1/evidence")
            .await
            .ok()
            .and_then(|(_, v)| v["evidence"].as_array().map(Vec::len))
            .unwrap_or(0)
    }

    /// SIGTERM node `i` and wait for it to exit.
    pub fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        let r = tokio::task::block_in_place(|| self.cluster.stop(i)).map(drop);
        self.update_pids();
        r
    }

    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let r = self.cluster.start(i);
        self.update_pids();
        r
    }

    fn update_pids(&self) {
        if let Ok(mut p) = self.pids.lock() {
            *p = (0..VALIDATORS).map(|i| self.cluster.pid(i)).collect();
        }
    }

    /// Nodes whose process runs.
    pub fn running(&mut self) -> Vec<usize> {
        (0..VALIDATORS).filter(|i| self.cluster.is_running(*i)).collect()
    }
}

/// Prometheus text exposition to `name{labels} -> value`.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Resident memory of a process in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time a process has used, in seconds (`utime + stime` of `/proc/<pid>/stat`, at the
/// usual 100 ticks per second).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name, which may contain spaces.
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// CPU seconds used so far by every running validator together.
pub fn cluster_cpu_secs(pids: &Pids) -> f64 {
    let now: Vec<Option<u32>> = pids.lock().map(|p| p.clone()).unwrap_or_default();
    now.into_iter().flatten().filter_map(cpu_secs).sum()
}

/// The node's public key a scenario needs in the validator set's order (`/v1/status`).
pub async fn validator_order(net: &Net) -> anyhow::Result<Vec<PublicKey>> {
    let (_, st) = net.get(0, "/v1/status").await?;
    st["validators"]
        .as_array()
        .context("status.validators")?
        .iter()
        .map(|v| v["key"].as_str().context("validator key")?.parse().context("validator key"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_is_parsed_with_labels() {
        let m = parse_metrics(
            "# HELP dpx_height x\n# TYPE dpx_height gauge\ndpx_height 12\n\
             dpx_p2p_bad_frames_total 3\nlat_bucket{le=\"0.5\"} 7\n\nbroken\n",
        );
        assert!((m["dpx_height"] - 12.0).abs() < f64::EPSILON);
        assert!((m["dpx_p2p_bad_frames_total"] - 3.0).abs() < f64::EPSILON);
        assert!((m["lat_bucket{le=\"0.5\"}"] - 7.0).abs() < f64::EPSILON);
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn own_rss_and_cpu_are_readable() {
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(50) {}
        assert!(cpu_secs(std::process::id()).is_some_and(|s| s > 0.0));
    }
}
