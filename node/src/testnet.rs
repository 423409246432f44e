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
    std::fs::create_dir_all(dir.join("keys"))?;
    let total = args.validators + args.full_nodes;
    let base = match args.base_port {
        Some(b) => b,
        None => pick_base(&args.host, total)?,
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

    let addr = |i: usize| {
        (
            format!("/ip4/{}/tcp/{}", args.host, base as usize + 10 * i),
            format!("{}:{}", args.host, base as usize + 10 * i + 7),
        )
    };
    let full_keys: Vec<String> =
        node_keys[args.validators..].iter().map(|k| k.public().to_hex()).collect();
    let mut nodes = Vec::new();
    for (i, key) in node_keys.iter().enumerate() {
        let validator = i < args.validators;
        let name = format!("node{i}");
        let home = dir.join(&name);
        std::fs::create_dir_all(&home)?;
        let (p2p, rpc) = addr(i);
        let mut cfg = Config::new(&name, p2p.clone(), rpc.clone());
        cfg.node.validator = validator;
        cfg.consensus.idle_block_interval_ms = args.idle_block_interval_ms;
        cfg.p2p.peers = node_keys
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, k)| PeerEntry { key: k.public().to_hex(), addr: addr(j).0 })
            .collect();
        cfg.p2p.allow.clone_from(&full_keys);
        cfg.save(&home.join("config.toml"))?;
        std::fs::write(home.join("genesis.json"), &genesis_json)?;
        keyfile::save(&home.join("node_key.json"), key)?;
        nodes.push(json!({
            "name": name, "home": home, "validator": validator, "key": key.public(),
            "p2p": p2p, "rpc": format!("http://{rpc}"),
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
