//! Moving a validator to a new machine (issue 19; docs/OPERATOR.md, "Moving a validator to a
//! new machine"), with four `dpx` processes on loopback under a little load: node 3 stops for
//! good, its key, safety file, config and genesis file (not its ledger) move to a new home with
//! new p2p and RPC ports, and it starts there and syncs from its peers, which it dials from its
//! own config. The chain keeps committing, node 3's key signs certificates again, nobody reports
//! double signing, and a copy of the key without its safety file refuses to start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_crypto::Keypair;
use dpx_node::config::Config;
use dpx_tests::{Cluster, dpx, dpx_bin, free_port, tail};

const T: Duration = Duration::from_secs(90);

/// Admit one consumer after another through `rpcs` in turn, each waited for until committed,
/// until `stop`; `committed` counts them.
fn load(agency: &Path, rpcs: &[String], stop: &AtomicBool, committed: &AtomicU32) {
    let agency = agency.to_str().unwrap_or_default();
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let mut seed = [0x4c; 32];
        seed[..4].copy_from_slice(&n.to_le_bytes());
        let key = Keypair::from_seed(seed).public().to_hex();
        let op = format!(r#"{{"key": "{key}", "name": "load-{n}", "roles": ["consumer"]}}"#);
        let rpc = &rpcs[n as usize % rpcs.len()];
        let args =
            ["tx", "admit", "--key", agency, "--rpc", rpc, "--json", &op, "--output", "json"];
        // A submission that fails (a node busy or behind) is simply tried again with a new key:
        // the load only has to keep blocks non-empty.
        if let Ok(out) = dpx(&args)
            && out.contains("\"committed\"")
        {
            committed.fetch_add(1, Ordering::Relaxed);
        }
        n += 1;
    }
}

/// A new home for node `i`'s key: its key file, config (with new p2p and RPC ports) and genesis
/// file, and its safety file if `with_safety`; no ledger. Returns the home and its RPC URL.
fn new_home(
    c: &Cluster,
    i: usize,
    name: &str,
    with_safety: bool,
) -> anyhow::Result<(PathBuf, String)> {
    let (old, home) = (&c.homes[i], c.chain_dir().join(name));
    std::fs::create_dir_all(home.join("data"))?;
    let mut files = vec!["node_key.json", "config.toml", "genesis.json"];
    if with_safety {
        files.push("data/safety.bin");
    }
    for f in files {
        std::fs::copy(old.join(f), home.join(f)).with_context(|| format!("copying {f}"))?;
    }
    let (p2p, rpc) = (free_port()?, free_port()?);
    let cfg_path = home.join("config.toml");
    let mut cfg = Config::load(&cfg_path)?;
    cfg.p2p.listen = format!("/ip4/127.0.0.1/tcp/{p2p}");
    cfg.p2p.advertise = None;
    cfg.rpc.listen = format!("127.0.0.1:{rpc}");
    cfg.save(&cfg_path)?;
    Ok((home, format!("http://127.0.0.1:{rpc}")))
}

/// Start `dpx node start --home home` and expect it to exit with an error within 30 s; its
/// stderr. A node that keeps running is killed and is a failure.
fn refused_start(home: &Path) -> anyhow::Result<String> {
    let log = home.join("node.log");
    let mut child = Command::new(dpx_bin()?)
        .args(["node", "start", "--home", home.to_str().context("home")?])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log)?))
        .spawn()?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!(
                "a copy of the key without safety.bin started:\n{}",
                tail(&std::fs::read_to_string(&log)?, 20)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&log)?;
    anyhow::ensure!(!status.success(), "exited successfully:\n{stderr}");
    Ok(stderr)
}

#[test]
fn n4_a_validator_moved_to_a_new_machine_signs_again_and_never_twice() -> anyhow::Result<()> {
    let mut c = Cluster::init(4)?;
    c.start_all()?;
    c.wait_height_all(2, T)?;
    let key3 = dpx_crypto::keyfile::load(&c.homes[3].join("node_key.json"))?.public().to_hex();

    // A little load through nodes 0-2 throughout.
    let (stop, committed) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU32::new(0)));
    let loader = {
        let (agency, rpcs) = (c.agency_key(0), c.rpc[..3].to_vec());
        let (stop, committed) = (Arc::clone(&stop), Arc::clone(&committed));
        std::thread::spawn(move || load(&agency, &rpcs, &stop, &committed))
    };
    c.wait_height_all(c.height(0)? + 3, T)?;

    // The old machine stops for good (SIGTERM: its safety file holds its last signature).
    assert_eq!(c.stop(3)?, Some(0), "node 3 did not stop cleanly:\n{}", tail(&c.log(3), 20));
    let stopped_at = c.height(0)?;
    // The other three commit without it.
    c.wait_height(0, stopped_at + 2, T)?;

    // A copy of the key without its safety file refuses to start, with the documented error.
    let (bare, _) = new_home(&c, 3, "node3-without-safety", false)?;
    let stderr = refused_start(&bare)?;
    assert!(
        stderr.contains("data/safety.bin is missing")
            && stderr.contains("--accept-missing-safety-state"),
        "{stderr}"
    );

    // The new machine: key, safety file, config (new ports), genesis; no ledger.
    let (home, rpc) = new_home(&c, 3, "node3-moved", true)?;
    assert!(!home.join("data/ledger").exists());
    let moved = c.add_node(home, rpc);
    let restarted_at = c.height(0)?;
    c.start(moved)?;
    let target = c.height(0)? + 2;
    c.wait_height(moved, target, T)?;
    let status = c.get(moved, "/v1/status")?;
    assert_eq!(status["node_key"], key3.as_str(), "{status}");
    assert_eq!(status["validator"], true, "{status}");

    // Node 3's key signs certificates again after the move.
    let deadline = Instant::now() + T;
    // Any signature of its key from here on is the new machine's: the old process has been
    // gone for several blocks, so none of its votes can still be in flight.
    let caught_up_at = c.height(0)?;
    let mut h = caught_up_at + 1;
    let signed_again = loop {
        if c.height(0)? >= h {
            if c.signers(0, h)?.contains(&key3) {
                break h;
            }
            h += 1;
            continue;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "node 3's key signed no certificate after the move (to height {h}); its log:\n{}",
            tail(&c.log(moved), 30)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "node 3 stopped at height {stopped_at}, restarted elsewhere at {restarted_at}, caught up \
         at {caught_up_at}; its key signs again at height {signed_again}"
    );

    // The chain keeps committing, the load with it.
    let before = committed.load(Ordering::Relaxed);
    c.wait_height_all(c.height(0)? + 3, T)?;
    let deadline = Instant::now() + T;
    while committed.load(Ordering::Relaxed) < before + 2 {
        anyhow::ensure!(Instant::now() < deadline, "the load stopped committing after the move");
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    loader.join().map_err(|_| anyhow::anyhow!("the load thread panicked"))?;
    println!("{} admissions committed under load", committed.load(Ordering::Relaxed));

    // Nobody double-signed, and all nodes agree on every block.
    for i in [0, 1, 2, moved] {
        let ev = c.get(i, "/v1/evidence")?;
        assert_eq!(
            ev["evidence"].as_array().map(Vec::len),
            Some(0),
            "node {i} saw double-signing: {ev}"
        );
    }
    let checked = c.check_agreement(&[0, 1, 2, moved])?;
    assert!(checked >= signed_again);
    Ok(())
}
