//! `dpx-tests`: multi-process cluster tests and end-to-end scenarios.
//!
//! [`Cluster`] runs real `dpx` processes on loopback: `dpx testnet init` writes the homes,
//! each validator is started with `dpx node start`, and tests talk to them over the public
//! RPC, exactly as an agency's operator or a marketplace would. Processes are killed when the
//! cluster is dropped, so a failing test never leaves nodes behind.
//!
//! [`byzantine`] is the adversary of issue 14: a byzantine libp2p peer with a permitted key and
//! hostile RPC clients against such a cluster, one file per behaviour, with the checks run
//! after each scenario (`scripts/byzantine.sh`, `tests/byzantine.rs`).
//!
//! [`browser`] drives a headless Chromium over WebDriver for the console's browser tests
//! (`tests/console.rs`).
//!
//! ```no_run
//! let mut c = dpx_tests::Cluster::init(4).unwrap();
//! c.start_all().unwrap();
//! c.wait_height_all(3, std::time::Duration::from_secs(60)).unwrap();
//! ```

pub mod browser;
pub mod byzantine;
pub mod signer;
pub mod tool;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// Path of the `dpx` binary built by this workspace (same profile as the tests).
pub fn dpx_bin() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("DPX_BIN") {
        return Ok(PathBuf::from(p));
    }
    // target/<profile>/deps/<test-binary> or target/<profile>/<runner binary>
    // -> target/<profile>/dpx
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("unexpected test binary path")?;
    let profile_dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().context("unexpected test binary path")?
    } else {
        dir
    };
    let bin = profile_dir.join("dpx");
    if !bin.exists() {
        let profile = profile_dir.file_name().and_then(|s| s.to_str()).unwrap_or("debug");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "-p", "dpx-node", "--bin", "dpx"]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().context("building dpx")?;
        anyhow::ensure!(status.success(), "cargo build of dpx failed");
    }
    Ok(bin)
}

/// A base port for a new cluster of `nodes` (node `i` uses `base + 10 i` and `+ 7`). Tests run
/// on parallel threads, and "any ports free right now" raced between two clusters being set up
/// at once (one node then failed with "address in use"): each cluster of this process gets
/// its own 60-port block, below the ephemeral range, and the block is checked free.
fn base_port(nodes: usize) -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let free = |p: u32| u16::try_from(p).is_ok_and(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
    loop {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let base = 20_000 + ((std::process::id().wrapping_mul(7).wrapping_add(k)) % 200) * 60;
        let ports = (0..nodes as u32).flat_map(|i| [base + 10 * i, base + 10 * i + 7]);
        if ports.into_iter().all(free) {
            return base as u16;
        }
    }
}

/// A loopback port free right now (for a node prepared outside `testnet init`).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Run `dpx` with `args` and return stdout; fails with stderr on a non-zero exit.
pub fn dpx(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(dpx_bin()?).args(args).output().context("running dpx")?;
    if !out.status.success() {
        bail!(
            "dpx {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A local network of `dpx` processes.
#[derive(Debug)]
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub homes: Vec<PathBuf>,
    pub rpc: Vec<String>,
    procs: Vec<Option<Child>>,
}

impl Cluster {
    /// `dpx testnet init` for `n` validators (and no full nodes) in a fresh temp dir.
    pub fn init(n: usize) -> anyhow::Result<Self> {
        Self::init_with(n, 0)
    }

    /// `n` validators and `full` non-validating full nodes.
    pub fn init_with(n: usize, full: usize) -> anyhow::Result<Self> {
        Self::init_args(n, full, &[])
    }

    /// `n` validators of a consensus-only chain (opaque payloads; see BENCHMARKS.md).
    pub fn init_consensus_only(n: usize) -> anyhow::Result<Self> {
        Self::init_args(n, 0, &["--consensus-only"])
    }

    /// `dpx testnet init` with `extra` arguments.
    pub fn init_args(n: usize, full: usize, extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let out = dir.path().to_str().context("temp path")?.to_owned();
        let base = base_port(n + full).to_string();
        let (n, full) = (n.to_string(), full.to_string());
        let mut args = vec![
            "testnet",
            "init",
            "--validators",
            &n,
            "--full-nodes",
            &full,
            "--out",
            &out,
            "--base-port",
            &base,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--output", "json"]);
        let json = dpx(&args)?;
        let v: Value = serde_json::from_str(&json).context("testnet init output")?;
        let nodes = v["nodes"].as_array().context("nodes")?;
        let homes = nodes.iter().filter_map(|n| n["home"].as_str().map(PathBuf::from)).collect();
        let rpc = nodes.iter().filter_map(|n| n["rpc"].as_str().map(str::to_owned)).collect();
        Ok(Self { dir, homes, rpc, procs: (0..nodes.len()).map(|_| None).collect() })
    }

    /// Add a node prepared outside `testnet init` (e.g. by `dpx init --genesis`); returns its
    /// index. It is started like the others.
    pub fn add_node(&mut self, home: PathBuf, rpc: String) -> usize {
        self.homes.push(home);
        self.rpc.push(rpc);
        self.procs.push(None);
        self.homes.len() - 1
    }

    /// Change node `i`'s `config.toml` (before it starts).
    pub fn configure(
        &self,
        i: usize,
        f: impl FnOnce(&mut dpx_node::config::Config),
    ) -> anyhow::Result<()> {
        let path = self.homes[i].join("config.toml");
        let mut cfg = dpx_node::config::Config::load(&path)?;
        f(&mut cfg);
        cfg.save(&path)?;
        Ok(())
    }

    pub fn chain_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Start node `i` (logs go to `<home>/node.log`).
    pub fn start(&mut self, i: usize) -> anyhow::Result<()> {
        let home = &self.homes[i];
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(home.join("node.log"))?;
        let child = Command::new(dpx_bin()?)
            .args(["node", "start", "--home", home.to_str().context("home")?])
            .env("RUST_LOG", std::env::var("DPX_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?;
        self.procs[i] = Some(child);
        Ok(())
    }

    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 0..self.homes.len() {
            self.start(i)?;
        }
        Ok(())
    }

    /// SIGKILL node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM node `i` and wait for a clean exit; returns its exit status code.
    pub fn stop(&mut self, i: usize) -> anyhow::Result<Option<i32>> {
        let Some(mut c) = self.procs[i].take() else { return Ok(None) };
        Command::new("kill").args(["-TERM", &c.id().to_string()]).status()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = c.try_wait()? {
                return Ok(st.code());
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                bail!("node {i} did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Process id of node `i`, while it runs (RSS sampling reads `/proc/<pid>/status`).
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs[i].as_ref().map(Child::id)
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.procs[i].as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The node's log so far (for failure messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.homes[i].join("node.log")).unwrap_or_default()
    }

    /// GET `path` on node `i`'s RPC, as JSON.
    pub fn get(&self, i: usize, path: &str) -> anyhow::Result<Value> {
        get_json(&format!("{}{path}", self.rpc[i]))
    }

    /// Height of node `i`'s last committed block.
    pub fn height(&self, i: usize) -> anyhow::Result<u64> {
        self.get(i, "/v1/status")?["height"].as_u64().context("status.height")
    }

    /// Wait until node `i` has committed `h`.
    pub fn wait_height(&self, i: usize, h: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.height(i).is_ok_and(|x| x >= h) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} did not reach height {h} within {timeout:?}; log tail:\n{}",
                    tail(&self.log(i), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_height_all(&self, h: u64, timeout: Duration) -> anyhow::Result<()> {
        for i in 0..self.homes.len() {
            if self.procs[i].is_some() {
                self.wait_height(i, h, timeout)?;
            }
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill(i);
        }
    }
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The value of the unlabelled counter or gauge `name` on a node's `/metrics` (an error when
/// the node does not report it).
pub fn metric(rpc: &str, name: &str) -> anyhow::Result<u64> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let text = rt.block_on(async { reqwest::get(format!("{rpc}/metrics")).await?.text().await })?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no metric {name} in:\n{text}"))
}

/// A blocking GET returning JSON (a small runtime per call keeps test code synchronous).
pub fn get_json(url: &str) -> anyhow::Result<Value> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let r = reqwest::Client::new().get(url).timeout(Duration::from_secs(10)).send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        anyhow::ensure!(status.is_success(), "GET {url}: {status}: {v}");
        Ok(v)
    })
}

/// A blocking POST of JSON returning (status, JSON body).
pub fn post_json(url: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .json(body)
            .timeout(Duration::from_mins(1))
            .send()
            .await?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        Ok((status, v))
    })
}

/// A blocking POST of raw bytes with a content type, returning (status, JSON body).
pub fn post_bytes(url: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .timeout(Duration::from_mins(1))
            .send()
            .await?;
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        Ok((status, v))
    })
}

impl Cluster {
    /// The libp2p listen address of node `i` (from its config).
    pub fn p2p_addr(&self, i: usize) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(self.homes[i].join("config.toml"))?;
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("listen = \"/ip4"))
            .context("p2p listen address")?;
        Ok(line.split('"').nth(1).context("quoted address")?.to_owned())
    }

    /// Path of founding agency `i`'s key file.
    pub fn agency_key(&self, i: usize) -> PathBuf {
        self.dir.path().join("keys").join(format!("agency-{i}.json"))
    }

    /// Admit a fresh participant through node `via`'s RPC with the CLI, waiting for the commit.
    /// Returns the transaction hash.
    pub fn admit_via(&self, via: usize, name: &str) -> anyhow::Result<String> {
        let key = self.dir.path().join(format!("{name}.json"));
        let out = dpx(&["keygen", "--out", key.to_str().context("path")?, "--output", "json"])?;
        let public = serde_json::from_str::<Value>(&out)?["public_key"]
            .as_str()
            .context("public_key")?
            .to_owned();
        let op = format!(r#"{{"key": "{public}", "name": "{name}", "roles": ["consumer"]}}"#);
        let out = dpx(&[
            "tx",
            "admit",
            "--key",
            self.agency_key(0).to_str().context("path")?,
            "--rpc",
            &self.rpc[via],
            "--json",
            &op,
            "--output",
            "json",
        ])?;
        let v: Value = serde_json::from_str(&out)?;
        anyhow::ensure!(v["status"] == "committed", "not committed: {v}");
        Ok(v["hash"].as_str().context("hash")?.to_owned())
    }

    /// Block id and state root of node `i` at height `h`.
    pub fn block_ids(&self, i: usize, h: u64) -> anyhow::Result<(String, String)> {
        let b = self.get(i, &format!("/v1/blocks/{h}"))?;
        Ok((
            b["id"].as_str().context("id")?.to_owned(),
            b["header"]["state_root"].as_str().context("state_root")?.to_owned(),
        ))
    }

    /// Validator keys (hex) whose signatures are in the certificate of block `h`, as node `i`
    /// serves the block and the set in force at `h`.
    pub fn signers(&self, i: usize, h: u64) -> anyhow::Result<Vec<String>> {
        let b = self.get(i, &format!("/v1/blocks/{h}"))?;
        let cert = hex::decode(b["certificate"].as_str().context("certificate")?)?;
        let cert = dpx_consensus::Certificate::decode(&cert).map_err(|e| anyhow::anyhow!("{e}"))?;
        let set = self.get(i, &format!("/v1/validators?height={h}"))?;
        let keys: Vec<&str> = set["validators"]
            .as_array()
            .context("validators")?
            .iter()
            .filter_map(|v| v["key"].as_str())
            .collect();
        cert.signatures
            .iter()
            .map(|(idx, _)| keys.get(idx.0 as usize).map(|k| (*k).to_owned()).context("index"))
            .collect()
    }

    /// Check every pair of the given nodes agrees on block id and state root at every common
    /// height; returns the highest height checked.
    pub fn check_agreement(&self, nodes: &[usize]) -> anyhow::Result<u64> {
        let top = nodes.iter().map(|i| self.height(*i)).collect::<anyhow::Result<Vec<_>>>()?;
        let common = top.into_iter().min().unwrap_or(0);
        for h in 1..=common {
            let first = self.block_ids(nodes[0], h)?;
            for i in &nodes[1..] {
                let other = self.block_ids(*i, h)?;
                anyhow::ensure!(
                    first == other,
                    "nodes {} and {i} disagree at height {h}",
                    nodes[0]
                );
            }
        }
        Ok(common)
    }
}

/// What a `POST /v1/txs?wait=commit` answer means to a client that must get its transaction
/// committed exactly once (the fault suite's and the adversary's honest loads).
#[derive(Debug)]
pub enum SubmitOutcome {
    Committed(u64),
    /// In a mempool but not (yet) committed: wait for it, resubmit the same bytes if it vanishes.
    Pending,
    /// The nonce is used: our transaction must be committed somewhere.
    NonceUsed,
    /// This node cannot take it now (down, behind, busy, partitioned): try another.
    Unavailable(String),
}

/// Classify a submit answer (`status`, JSON body).
pub fn classify_submit(status: u16, v: &Value) -> SubmitOutcome {
    let msg = v["error"]["message"].as_str().or_else(|| v["message"].as_str()).unwrap_or_default();
    // Committed bytes resubmitted are answered 200 with their receipt, like a fresh commit.
    match (status, v["error"]["code"].as_str()) {
        (200, _) if v["status"] == "committed" => v["height"].as_u64().map_or_else(
            || SubmitOutcome::Unavailable(format!("no height in {v}")),
            SubmitOutcome::Committed,
        ),
        (202, _) | (409, Some("nonce_taken")) => SubmitOutcome::Pending,
        (409, Some("nonce_too_low")) => SubmitOutcome::NonceUsed,
        _ => SubmitOutcome::Unavailable(format!("submit: {status} {msg}")),
    }
}
