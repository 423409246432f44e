//! `dpx testnet init`: genesis, keys and configs for a local network.
//!
//! Layout written under `--out`:
//! ```text
//! genesis.json
//! keys/agency-<i>.json        one founding agency per validator (signs governance and admissions)
//! node<i>/config.toml         validators first, then full nodes
//! node<i>/genesis.json
//! node<i>/node_key.json
//! network.json                what was created (also printed with --output json)
//! ```
//! Ports: node `i` listens for peers on `base + 10 i` and serves RPC on `base + 10 i + 7`.
//! Without `--base-port` a base is chosen whose ports are all free right now.
//!
//! With `--hosts H0,H1,…` (one per node: containers, or machines) every node listens on
//! `--listen-host` at the fixed ports `--p2p-port` and `--rpc-port`, advertises `Hi`, and its
//! peers dial it there: the configs are final, nothing needs rewriting.
//!
//! Each home gets `data/safety.bin` beside its new key (the key has signed nothing): a node
//! refuses to sign with a key whose safety file is missing (docs/OPERATOR.md).

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::{Value, json};

use dpx_crypto::{Keypair, PublicKey, keyfile};
use dpx_genesis::Genesis;

use crate::cli::{Output, emit};
use crate::config::{Config, PeerEntry};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Number of validators (each run by its own agency).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Number of non-validating full nodes (e.g. an auditor's).
    #[arg(long, default_value_t = 0)]
    pub full_nodes: usize,
    /// Output directory (must not exist or be empty).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "dpx-devnet")]
    pub chain_id: String,
    /// First port; see the module docs for the layout.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Listen address for P2P and RPC.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// With no transactions waiting, make a block this often.
    #[arg(long, default_value_t = 1000)]
    pub idle_block_interval_ms: u64,
    /// A benchmarking chain: transactions are opaque payloads, ordered and stored but never
    /// verified or executed (measures the consensus engine alone; see BENCHMARKS.md).
    #[arg(long)]
    pub consensus_only: bool,
    /// One address per node (IP or host name, comma-separated) that its peers dial: nodes on
    /// their own hosts or containers. Replaces --host and --base-port.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["base_port", "host"])]
    pub hosts: Vec<String>,
    /// With --hosts: the address every node listens on.
    #[arg(long, default_value = "0.0.0.0", requires = "hosts")]
    pub listen_host: String,
    /// With --hosts: every node's p2p port.
    #[arg(long, default_value_t = 26656, requires = "hosts")]
    pub p2p_port: u16,
    /// With --hosts: every node's RPC port.
    #[arg(long, default_value_t = 26657, requires = "hosts")]
    pub rpc_port: u16,
}

/// Node `i`'s (listen, advertised) p2p addresses and RPC listen address.
struct Addrs {
    p2p_listen: String,
    p2p_advertise: String,
    rpc_listen: String,
    rpc_url: String,
}

fn ports_free(host: &str, base: u16, nodes: usize) -> bool {
    (0..nodes).all(|i| {
        let p2p = usize::from(base) + 10 * i;
        let (Ok(p2p), Ok(rpc)) = (u16::try_from(p2p), u16::try_from(p2p + 7)) else { return false };
        TcpListener::bind((host, p2p)).is_ok() && TcpListener::bind((host, rpc)).is_ok()
    })
}

fn pick_base(host: &str, nodes: usize) -> anyhow::Result<u16> {
    // Deterministic sweep from a pid-dependent start so parallel test runs spread out.
    let start = 20_000 + (std::process::id() as usize * 97) % 20_000;
    for k in 0..200 {
        let base = (start + k * 100) % 40_000 + 20_000;
        if ports_free(host, base as u16, nodes) {
            return Ok(base as u16);
        }
    }
    bail!("no free port range found for {nodes} nodes")
}

pub fn init(args: &InitArgs, out: Output) -> anyhow::Result<()> {
    anyhow::ensure!((1..=64).contains(&args.validators), "--validators must be 1..=64");
    anyhow::ensure!(args.full_nodes <= 16, "--full-nodes must be at most 16");
    let dir = &args.out;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} exists and is not empty; choose another --out", dir.display());
    }
    let total = args.validators + args.full_nodes;
    if !args.hosts.is_empty() {
        anyhow::ensure!(
            args.hosts.len() == total,
            "--hosts names {} addresses for {total} nodes; give one per node",
            args.hosts.len()
        );
        for h in &args.hosts {
            crate::config::tcp_multiaddr(h, args.p2p_port).context("--hosts")?;
        }
        crate::config::tcp_multiaddr(&args.listen_host, args.p2p_port).context("--listen-host")?;
    }
    std::fs::create_dir_all(dir.join("keys"))?;
    let base = match (args.base_port, args.hosts.is_empty()) {
        (Some(b), _) => b,
        (None, true) => pick_base(&args.host, total)?,
        (None, false) => 0, // unused: fixed ports
    };

    let node_keys: Vec<Keypair> = (0..total).map(|_| Keypair::generate()).collect();
    let mut agencies = Vec::new();
    for i in 0..args.validators {
        let k = Keypair::generate();
        keyfile::save(&dir.join("keys").join(format!("agency-{i}.json")), &k)?;
        agencies.push((format!("Agency {i}"), k.public()));
    }
    let validator_keys: Vec<PublicKey> =
        node_keys[..args.validators].iter().map(Keypair::public).collect();
    let agency_refs: Vec<(&str, PublicKey)> =
        agencies.iter().map(|(n, k)| (n.as_str(), *k)).collect();
    let mut genesis = Genesis::example(&args.chain_id, &agency_refs, &validator_keys);
    genesis.genesis_time_ms = crate::driver::now_ms();
    genesis.consensus_only = args.consensus_only;
    genesis.validate().context("the generated genesis is invalid")?;
    let genesis_json = genesis.to_json();
    std::fs::write(dir.join("genesis.json"), &genesis_json)?;

    let addr = |i: usize| -> anyhow::Result<Addrs> {
        if let Some(host) = args.hosts.get(i) {
            return Ok(Addrs {
                p2p_listen: crate::config::tcp_multiaddr(&args.listen_host, args.p2p_port)?,
                p2p_advertise: crate::config::tcp_multiaddr(host, args.p2p_port)?,
                rpc_listen: format!("{}:{}", args.listen_host, args.rpc_port),
                rpc_url: format!("http://{host}:{}", args.rpc_port),
            });
        }
        let p2p = format!("/ip4/{}/tcp/{}", args.host, base as usize + 10 * i);
        let rpc = format!("{}:{}", args.host, base as usize + 10 * i + 7);
        Ok(Addrs {
            p2p_listen: p2p.clone(),
            p2p_advertise: p2p,
            rpc_url: format!("http://{rpc}"),
            rpc_listen: rpc,
        })
    };
    let full_keys: Vec<String> =
        node_keys[args.validators..].iter().map(|k| k.public().to_hex()).collect();
    let mut nodes = Vec::new();
    for (i, key) in node_keys.iter().enumerate() {
        let validator = i < args.validators;
        let name = format!("node{i}");
        let home = dir.join(&name);
        std::fs::create_dir_all(&home)?;
        let a = addr(i)?;
        let mut cfg = Config::new(&name, a.p2p_listen.clone(), a.rpc_listen.clone());
        if a.p2p_advertise != a.p2p_listen {
            cfg.p2p.advertise = Some(a.p2p_advertise.clone());
        }
        cfg.node.validator = validator;
        cfg.consensus.idle_block_interval_ms = args.idle_block_interval_ms;
        cfg.p2p.peers = node_keys
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, k)| Ok(PeerEntry { key: k.public().to_hex(), addr: addr(j)?.p2p_advertise }))
            .collect::<anyhow::Result<_>>()?;
        cfg.p2p.allow.clone_from(&full_keys);
        cfg.save(&home.join("config.toml"))?;
        std::fs::write(home.join("genesis.json"), &genesis_json)?;
        keyfile::save(&home.join("node_key.json"), key)?;
        crate::node::record_fresh_safety_state(&crate::config::Home(home.clone()))?;
        nodes.push(json!({
            "name": name, "home": home, "validator": validator, "key": key.public(),
            "p2p": a.p2p_advertise, "rpc": a.rpc_url,
        }));
    }
    let summary = json!({
        "chain_id": args.chain_id,
        "dir": dir,
        "genesis": dir.join("genesis.json"),
        "nodes": nodes,
        "agency_keys": (0..args.validators).map(|i| dir.join("keys").join(format!("agency-{i}.json"))).collect::<Vec<_>>(),
    });
    std::fs::write(dir.join("network.json"), serde_json::to_string_pretty(&summary)?)?;
    emit(out, &summary, || text_summary(dir, &summary));
    Ok(())
}

fn text_summary(dir: &Path, v: &Value) -> String {
    use std::fmt::Write as _;
    let mut s = format!(
        "wrote a {}-node network to {}\n",
        v["nodes"].as_array().map_or(0, Vec::len),
        dir.display()
    );
    for n in v["nodes"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "  {} {}  rpc {}  home {}",
            n["name"].as_str().unwrap_or(""),
            if n["validator"].as_bool() == Some(true) { "validator" } else { "full node" },
            n["rpc"].as_str().unwrap_or(""),
            n["home"].as_str().unwrap_or(""),
        );
    }
    s.push_str("start each with: dpx node start --home <home>");
    s
}
