//! Four real `dpx` validators on loopback (issue "The node"): agreement, crash and restart,
//! loss of quorum, late joiners, and hostile peers. Figures are printed, never asserted.

use std::io::Write;
use std::time::{Duration, Instant};

use dpx_node::wire::TxBatch;
use dpx_tests::{Cluster, metric, post_bytes, tail};
use prost::Message as _;

const T: Duration = Duration::from_secs(90);

/// n=4, f=1: transactions through every node commit; one validator is killed with SIGKILL
/// and the other three go on; restarted, it catches up and votes again; a full node that
/// joins late syncs from height 0; every node agrees on every block; nobody double-signs.
#[test]
fn n4f1_commit_crash_restart_and_late_full_node() -> anyhow::Result<()> {
    let mut c = Cluster::init_with(4, 1)?;
    for i in 0..4 {
        c.start(i)?;
    }
    c.wait_height_all(2, T)?;

    let started = Instant::now();
    let mut committed = Vec::new();
    for k in 0..8 {
        committed.push(c.admit_via(k % 4, &format!("org{k}"))?);
    }
    let elapsed = started.elapsed();
    println!("8 transactions via 4 nodes committed in {elapsed:?} (sequential, commit-wait)");

    // Kill node 3 hard; the other three keep committing.
    c.kill(3);
    let before = c.height(0)?;
    for k in 8..12 {
        committed.push(c.admit_via(k % 3, &format!("org{k}"))?);
    }
    c.wait_height(0, before + 3, T)?;

    // Restart it: it catches up and follows the tip again.
    c.start(3)?;
    let target = c.height(0)? + 2;
    c.wait_height(3, target, T)
        .map_err(|e| anyhow::anyhow!("{e}\nnode0:\n{}", tail(&c.log(0), 20)))?;

    // A full node joining now syncs everything from height 0.
    c.start(4)?;
    let target = c.height(0)?;
    c.wait_height(4, target, T)?;

    let checked = c.check_agreement(&[0, 1, 2, 3, 4])?;
    println!("all 5 nodes agree on block id and state root at heights 1..={checked}");
    for i in 0..5 {
        for h in &committed {
            let v = c.get(i, &format!("/v1/txs/{h}"))?;
            assert_eq!(v["status"], "committed", "node {i} lacks {h}");
        }
        let ev = c.get(i, "/v1/evidence")?;
        assert_eq!(ev["evidence"].as_array().map(Vec::len), Some(0), "node {i} saw double-signing");
    }
    let status = c.get(4, "/v1/status")?;
    assert_eq!(status["validator"], false);

    // SIGTERM shuts a node down cleanly.
    assert_eq!(c.stop(0)?, Some(0), "node0 log:\n{}", tail(&c.log(0), 20));
    // ... having closed its ledger itself, on the main thread, before exiting.
    let log = c.log(0);
    assert!(
        log.contains("ledger closed"),
        "node0 exited without closing its ledger:\n{}",
        tail(&log, 20)
    );
    Ok(())
}

/// Kill 2 of 4: no quorum, nothing commits; restart them and the chain resumes.
#[test]
fn n4_two_down_halts_then_resumes() -> anyhow::Result<()> {
    let mut c = Cluster::init(4)?;
    c.start_all()?;
    c.wait_height_all(2, T)?;
    c.kill(2);
    c.kill(3);
    // A block already in flight may still land; after that, nothing.
    std::thread::sleep(Duration::from_secs(2));
    let stalled = c.height(0)?;
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(c.height(0)?, stalled, "committed without a quorum");
    assert_eq!(c.height(1)?, stalled);
    c.start(2)?;
    c.start(3)?;
    c.wait_height_all(stalled + 2, T)?;
    c.check_agreement(&[0, 1, 2, 3])?;
    Ok(())
}

/// A node of another network (unknown key) is refused; a peer sending garbage bytes is
/// dropped; the validators keep committing throughout.
#[test]
fn unknown_peer_refused_and_garbage_sender_dropped() -> anyhow::Result<()> {
    let mut c = Cluster::init(4)?;
    c.start_all()?;
    c.wait_height_all(1, T)?;

    // An intruder: a one-validator network of its own, told to dial node 0.
    let mut intruder = Cluster::init(1)?;
    let target_addr = c.p2p_addr(0)?;
    let node0_key = c.get(0, "/v1/status")?["node_key"].as_str().unwrap_or_default().to_owned();
    let cfg_path = intruder.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    // The intruder itself accepts node 0 (else it could hang up first and node 0 would never
    // get to refuse it): the refusal under test is node 0's.
    cfg.p2p.allow.push(node0_key.clone());
    cfg.p2p.peers.push(dpx_node::config::PeerEntry { key: node0_key, addr: target_addr });
    cfg.save(&cfg_path)?;
    intruder.start(0)?;

    // Garbage straight at node 1's p2p port.
    let addr = c.p2p_addr(1)?;
    let port: u16 = addr.rsplit('/').next().unwrap_or("0").parse()?;
    for _ in 0..20 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(4096));
        }
    }

    let h = c.height(0)?;
    c.wait_height_all(h + 3, T)?;
    let deadline = Instant::now() + T;
    loop {
        let metrics = dpx_tests_metrics(&c, 0)?;
        if metrics.contains("dpx_p2p_refused_total") && !metrics.contains("dpx_p2p_refused_total 0")
        {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "node 0 never refused the intruder:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(c.get(0, "/v1/status")?["peers"], 3, "the intruder must not count as a peer");
    Ok(())
}

fn dpx_tests_metrics(c: &Cluster, i: usize) -> anyhow::Result<String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async { Ok(reqwest::get(format!("{}/metrics", c.rpc[i])).await?.text().await?) })
}

/// A consensus-only chain (the benchmark's mode) orders opaque payloads: sent to any node in
/// the binary batch format, each commits exactly once, on every node, and can be looked up by
/// hash; an empty payload is refused and changes nothing.
#[test]
fn n4_consensus_only_orders_opaque_payloads() -> anyhow::Result<()> {
    let mut c = Cluster::init_consensus_only(4)?;
    c.start_all()?;
    c.wait_height_all(1, T)?;
    let payloads: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            let mut p = vec![0xa5; 512];
            p[..4].copy_from_slice(&i.to_le_bytes());
            p
        })
        .collect();
    let mut hashes = Vec::new();
    for (node, chunk) in payloads.chunks(50).enumerate() {
        let body = TxBatch { txs: chunk.to_vec() }.encode_to_vec();
        let url = format!("{}/v1/txs/batch", c.rpc[node]);
        let (status, v) = post_bytes(&url, "application/x-protobuf", body)?;
        assert_eq!(status, 200, "{v}");
        for r in v["results"].as_array().expect("results") {
            hashes.push(r["hash"].as_str().unwrap_or_else(|| panic!("refused: {r}")).to_owned());
        }
    }
    assert_eq!(hashes.len(), 200);
    let url = format!("{}/v1/txs/batch", c.rpc[0]);
    let empty = TxBatch { txs: vec![Vec::new()] }.encode_to_vec();
    let (status, v) = post_bytes(&url, "application/x-protobuf", empty)?;
    assert_eq!(status, 200);
    assert_eq!(v["results"][0]["error"]["code"], "malformed_tx", "{v}");
    let (status, _) = post_bytes(&url, "application/x-protobuf", vec![0xff, 0xff])?;
    assert_eq!(status, 400, "an undecodable batch body is a client error");

    let deadline = Instant::now() + T;
    for (i, h) in hashes.iter().enumerate() {
        loop {
            match c.get(i % 4, &format!("/v1/txs/{h}")) {
                Ok(v) if v["status"] == "committed" => break,
                _ if Instant::now() > deadline => panic!("payload {h} never committed"),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    let tip = c.check_agreement(&[0, 1, 2, 3])?;
    let mut seen = std::collections::BTreeSet::new();
    for h in 1..=tip {
        for t in c.get(3, &format!("/v1/blocks/{h}"))?["txs"].as_array().expect("txs") {
            assert!(seen.insert(t["hash"].as_str().expect("hash").to_owned()), "committed twice");
        }
    }
    assert_eq!(seen.len(), 200, "exactly the payloads sent, once each");
    // Every validator executed the blocks it committed while they were voted on: some were
    // speculated on (a block can still be decided before its validation, or be synced), and
    // no speculation failed.
    for i in 0..4 {
        let used = metric(&c.rpc[i], "dpx_speculation_used_total")?;
        assert!(used >= 1, "node {i} committed no block it had executed ahead");
        assert!(used <= tip, "node {i}: more speculations used than blocks");
        assert_eq!(metric(&c.rpc[i], "dpx_speculation_failed_total")?, 0, "node {i}");
    }
    // Proposal blocks travelled compact (the default), and were rebuilt from the mempools.
    let mut compact = 0;
    for i in 0..4 {
        let received = metric(&c.rpc[i], "dpx_compact_blocks_received_total")?;
        let incomplete = metric(&c.rpc[i], "dpx_compact_blocks_incomplete_total")?;
        assert!(incomplete <= received, "node {i}");
        compact += received;
    }
    assert!(compact >= 1, "no proposal block travelled compact");
    println!("consensus-only: 200 payloads committed once each in {tip} blocks");
    Ok(())
}

/// Compact blocks when nothing is relayed (`p2p.relay_transactions = false` everywhere): each
/// validator's pool holds only what its own clients sent, so every other validator rebuilds
/// a proposal block by fetching what the proposer did not send inline, and the proposer's
/// p2p task answers from the block it published (`serve_fetch`), not its driver. Everything
/// commits, once, and the same everywhere.
#[test]
fn n4_compact_blocks_are_fetched_from_the_proposer_when_relays_never_arrive() -> anyhow::Result<()>
{
    let mut c = Cluster::init_consensus_only(4)?;
    for i in 0..4 {
        c.configure(i, |cfg| cfg.p2p.relay_transactions = false)?;
    }
    c.start_all()?;
    c.wait_height_all(1, T)?;
    let mut hashes = Vec::new();
    for node in 0..4u32 {
        let txs: Vec<Vec<u8>> =
            (0..40u32).map(|i| [node, i, 7].map(u32::to_le_bytes).concat()).collect();
        let body = TxBatch { txs }.encode_to_vec();
        let url = format!("{}/v1/txs/batch", c.rpc[node as usize]);
        let (status, v) = post_bytes(&url, "application/x-protobuf", body)?;
        assert_eq!(status, 200, "{v}");
        for r in v["results"].as_array().expect("results") {
            hashes.push(r["hash"].as_str().unwrap_or_else(|| panic!("refused: {r}")).to_owned());
        }
    }
    let deadline = Instant::now() + T;
    for h in &hashes {
        while !matches!(c.get(3, &format!("/v1/txs/{h}")), Ok(v) if v["status"] == "committed") {
            assert!(Instant::now() < deadline, "payload {h} never committed");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let tip = c.check_agreement(&[0, 1, 2, 3])?;
    let (mut fetched, mut served) = (0, 0);
    for i in 0..4 {
        fetched += metric(&c.rpc[i], "dpx_compact_txs_fetched_total")?;
        served += metric(&c.rpc[i], "dpx_compact_fetches_served_total")?;
    }
    assert!(fetched >= 1 && served >= 1, "fetched {fetched}, fetches served {served}");
    println!("relays off: 160 payloads committed in {tip} blocks, {fetched} fetched");
    Ok(())
}
