//! `dpx init --genesis FILE --home DIR`: prepare one node's home for an existing network, on
//! its own machine.
//!
//! Writes, in a new (or empty) directory:
//! ```text
//! <home>/config.toml       addresses and peers from the flags, defaults for the rest
//! <home>/genesis.json      the network's genesis, byte for byte, after validating it
//! <home>/node_key.json     a new ed25519 key, mode 0600: the node's p2p identity and, once
//!                          governance adds it, its validator key
//! <home>/data/safety.bin   the safety state of a key that has signed nothing
//! ```
//! The node starts as a full node that follows the chain, and signs from the height at which
//! governance puts its key in the validator set (docs/OPERATOR.md, "Joining").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;

use dpx_crypto::{Keypair, PublicKey, keyfile};
use dpx_genesis::Genesis;

use super::{Output, emit};
use crate::config::{Config, Home, PeerEntry, check_p2p_addr};

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The network's genesis file (the founding agencies publish it).
    #[arg(long)]
    pub genesis: PathBuf,
    /// The node's home directory; must not exist yet, or be empty.
    #[arg(long, env = "DPX_HOME")]
    pub home: PathBuf,
    /// A name for this node in logs and status.
    #[arg(long, default_value = "dpx")]
    pub moniker: String,
    /// The p2p address to listen on (a multiaddr).
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/26656")]
    pub p2p_listen: String,
    /// The p2p address other nodes dial (a multiaddr), when it differs from the listen
    /// address: a public or NAT address, a container's network address.
    #[arg(long)]
    pub p2p_advertise: Option<String>,
    /// The RPC address to listen on (`ip:port`).
    #[arg(long, default_value = "127.0.0.1:26657")]
    pub rpc_listen: String,
    /// A node to connect to, as `KEY@MULTIADDR` (its key in hex, e.g. from its operator's
    /// `dpx init` output); repeat for each. Named peers may connect whatever the validator set.
    #[arg(long = "peer", value_name = "KEY@MULTIADDR")]
    pub peers: Vec<String>,
    /// The key (hex) of a non-validating node allowed to connect (`p2p.allow`); repeatable.
    #[arg(long = "allow", value_name = "KEY")]
    pub allow: Vec<String>,
    /// A node that never signs, even if governance puts its key in the set (an auditor's).
    #[arg(long)]
    pub full_node: bool,
}

/// `KEY@MULTIADDR` into a peer entry.
fn parse_peer(text: &str) -> anyhow::Result<PeerEntry> {
    let (key, addr) =
        text.split_once('@').with_context(|| format!("--peer {text:?}: expected KEY@MULTIADDR"))?;
    let key: PublicKey = key
        .parse()
        .map_err(|e| anyhow::anyhow!("--peer {text:?}: the key is not a public key ({e})"))?;
    check_p2p_addr("--peer", addr)?;
    Ok(PeerEntry { key: key.to_hex(), addr: addr.to_owned() })
}

/// Is `dir` free to become a home? Missing or empty; a directory holding a node's files is
/// named as already initialised.
fn check_home(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    anyhow::ensure!(dir.is_dir(), "--home {} exists and is not a directory", dir.display());
    let home = Home(dir.to_path_buf());
    for f in [home.config(), home.node_key(), home.safety(), home.ledger()] {
        if f.exists() {
            bail!(
                "--home {} is already initialised ({} exists); a node's key and safety file are \
                 never overwritten: choose another directory",
                dir.display(),
                f.display()
            );
        }
    }
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!("--home {} exists and is not empty; choose an empty or new directory", dir.display());
    }
    Ok(())
}

/// The config `args` describe, checked. The key is the node's own (a peer must not name it).
fn build_config(args: &InitArgs, own: &PublicKey) -> anyhow::Result<Config> {
    check_p2p_addr("--p2p-listen", &args.p2p_listen)?;
    if let Some(a) = &args.p2p_advertise {
        check_p2p_addr("--p2p-advertise", a)?;
    }
    args.rpc_listen
        .parse::<std::net::SocketAddr>()
        .map_err(|e| anyhow::anyhow!("--rpc-listen {:?} is not ip:port ({e})", args.rpc_listen))?;
    anyhow::ensure!(
        !args.moniker.is_empty() && args.moniker.len() <= 64,
        "--moniker must be 1 to 64 characters"
    );
    let mut cfg = Config::new(&args.moniker, args.p2p_listen.clone(), args.rpc_listen.clone());
    cfg.node.validator = !args.full_node;
    cfg.p2p.advertise.clone_from(&args.p2p_advertise);
    for p in &args.peers {
        let peer = parse_peer(p)?;
        anyhow::ensure!(peer.key != own.to_hex(), "--peer {p:?} names this node's own key");
        anyhow::ensure!(
            !cfg.p2p.peers.iter().any(|q| q.key == peer.key),
            "--peer names key {} twice",
            peer.key
        );
        cfg.p2p.peers.push(peer);
    }
    for k in &args.allow {
        let key: PublicKey =
            k.parse().map_err(|e| anyhow::anyhow!("--allow {k:?} is not a public key ({e})"))?;
        cfg.p2p.allow.push(key.to_hex());
    }
    Ok(cfg)
}

/// Where others reach this node: the advertised address, else the listen address unless it
/// is a wildcard (which nobody can dial).
fn reachable_at(cfg: &Config) -> Option<String> {
    cfg.p2p.advertise.clone().or_else(|| {
        let l = &cfg.p2p.listen;
        (!l.contains("/0.0.0.0/") && !l.contains("/::/")).then(|| l.clone())
    })
}

pub fn run(args: &InitArgs, out: Output) -> anyhow::Result<()> {
    // Everything from outside is checked before anything is written.
    let text = std::fs::read(&args.genesis)
        .with_context(|| format!("--genesis: cannot read {}", args.genesis.display()))?;
    anyhow::ensure!(
        text.len() as u64 <= dpx_genesis::GENESIS_BYTES_MAX,
        "--genesis {} is larger than {} bytes",
        args.genesis.display(),
        dpx_genesis::GENESIS_BYTES_MAX
    );
    let text = String::from_utf8(text)
        .map_err(|_| anyhow::anyhow!("--genesis {} is not UTF-8 text", args.genesis.display()))?;
    let genesis = Genesis::from_json(&text)
        .with_context(|| format!("--genesis {} is not a valid genesis", args.genesis.display()))?;
    check_home(&args.home)?;
    let key = Keypair::generate();
    let cfg = build_config(args, &key.public())?;

    let home = Home(args.home.clone());
    std::fs::create_dir_all(&args.home)
        .with_context(|| format!("creating {}", args.home.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.home, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner", args.home.display()))?;
    }
    keyfile::save(&home.node_key(), &key)?;
    crate::node::record_fresh_safety_state(&home)?;
    std::fs::write(home.genesis(), &text).context("writing genesis.json")?;
    cfg.save(&home.config())?;

    let reach = reachable_at(&cfg);
    let v = json!({
        "home": args.home,
        "chain_id": genesis.chain_id,
        "genesis_hash": genesis.hash(),
        "node_key": key.public(),
        "validator": cfg.node.validator,
        "peer": reach.as_ref().map(|a| format!("{}@{a}", key.public())),
        "p2p_listen": cfg.p2p.listen,
        "rpc_listen": cfg.rpc.listen,
        "peers": cfg.p2p.peers.len(),
    });
    emit(out, &v, || {
        let mut s = format!(
            "initialised {} for chain {} (genesis {})\n  node key   {}\n",
            args.home.display(),
            genesis.chain_id,
            genesis.hash(),
            key.public()
        );
        match &reach {
            Some(a) => {
                let _ = writeln!(s, "  peer entry {}@{a}", key.public());
            }
            None => s.push_str(
                "  note: listening on a wildcard address and no --p2p-advertise: others cannot \
                 dial this node (it dials its --peer entries)\n",
            ),
        }
        if cfg.node.validator {
            s.push_str(
                "next: start it (dpx node start --home DIR); it follows the chain as a full node. \
                 Give the agencies the node key: it signs from the height governance adds it at \
                 (dpx governance propose-validator).",
            );
        } else {
            s.push_str("next: start it (dpx node start --home DIR); it never signs.");
        }
        s
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(home: &Path, genesis: &Path) -> InitArgs {
        InitArgs {
            genesis: genesis.to_path_buf(),
            home: home.to_path_buf(),
            moniker: "agency-e".into(),
            p2p_listen: "/ip4/0.0.0.0/tcp/26656".into(),
            p2p_advertise: Some("/ip4/10.0.0.9/tcp/26656".into()),
            rpc_listen: "127.0.0.1:26657".into(),
            peers: Vec::new(),
            allow: Vec::new(),
            full_node: false,
        }
    }

    fn genesis_file(dir: &Path) -> PathBuf {
        let k = |i: u8| Keypair::from_seed([i; 32]).public();
        let g = Genesis::example("dpx-init-test", &[("Agency A", k(1))], &[k(2)]);
        let p = dir.join("genesis.json");
        std::fs::write(&p, g.to_json()).unwrap();
        p
    }

    #[test]
    fn a_home_is_written_with_a_key_its_safety_file_and_the_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let g = genesis_file(dir.path());
        let home = dir.path().join("home");
        let mut a = args(&home, &g);
        a.peers = vec![format!("{}@/ip4/10.0.0.1/tcp/26656", Keypair::from_seed([2; 32]).public())];
        run(&a, Output::Json).unwrap();
        let layout = Home(home.clone());
        let key = keyfile::load(&layout.node_key()).unwrap();
        assert_eq!(std::fs::read(layout.genesis()).unwrap(), std::fs::read(&g).unwrap());
        let cfg = Config::load(&layout.config()).unwrap();
        assert_eq!(cfg.p2p.advertise.as_deref(), Some("/ip4/10.0.0.9/tcp/26656"));
        assert_eq!(cfg.p2p.peers.len(), 1);
        assert!(cfg.node.validator);
        // The key has signed nothing, and says so: the node may sign with it.
        let safety = crate::safety::SafetyFile::new(layout.safety());
        let st =
            crate::node::load_safety_state(&safety, 0, true, crate::node::StartOptions::default())
                .unwrap();
        assert_eq!(st, Some(dpx_consensus::SafetyState::at_height(dpx_consensus::Height(1))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&layout.node_key()), 0o600);
            assert_eq!(mode(&home), 0o700);
        }
        // Never twice: the key and its safety file are never overwritten.
        let e = run(&a, Output::Json).unwrap_err().to_string();
        assert!(e.contains("already initialised"), "{e}");
        assert_eq!(keyfile::load(&layout.node_key()).unwrap().public(), key.public());
    }

    #[test]
    fn bad_flags_are_refused_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let g = genesis_file(dir.path());
        let home = dir.path().join("home");
        let check = |a: InitArgs, want: &str| {
            let e = format!("{:#}", run(&a, Output::Json).unwrap_err());
            assert!(e.contains(want), "expected {want:?} in {e:?}");
            assert!(!home.exists(), "something was written for a refused init ({want})");
        };
        let bad_genesis = dir.path().join("bad.json");
        std::fs::write(&bad_genesis, "{\"chain_id\": 1}").unwrap();
        check(args(&home, &bad_genesis), "not a valid genesis");
        check(args(&home, &dir.path().join("missing.json")), "cannot read");
        let mut a = args(&home, &g);
        a.p2p_listen = "0.0.0.0:26656".into();
        check(a, "--p2p-listen");
        let mut a = args(&home, &g);
        a.p2p_advertise = Some("/ip4/10.0.0.9".into());
        check(a, "no TCP port");
        let mut a = args(&home, &g);
        a.rpc_listen = "localhost".into();
        check(a, "--rpc-listen");
        let mut a = args(&home, &g);
        a.peers = vec!["/ip4/10.0.0.1/tcp/1".into()];
        check(a, "KEY@MULTIADDR");
        let mut a = args(&home, &g);
        a.peers = vec!["abcd@/ip4/10.0.0.1/tcp/1".into()];
        check(a, "not a public key");
        let mut a = args(&home, &g);
        a.allow = vec!["zz".into()];
        check(a, "--allow");
        // A directory with something else in it is not taken over.
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("notes.txt"), "x").unwrap();
        let e = run(&args(&home, &g), Output::Json).unwrap_err().to_string();
        assert!(e.contains("not empty"), "{e}");
    }
}
