//! `dpx-bench load` against a real local network: a short, low-rate run commits every
//! accepted transaction exactly once and appends a well-formed JSON record.
//!
//! Full mode runs on the `dpx-tests` cluster. Consensus-only mode runs when the `dpx` binary
//! has `testnet init --consensus-only`, and is skipped with a note otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use dpx_tests::{Cluster, dpx, dpx_bin, tail};
use serde_json::Value;

/// One network at a time: 2 cores, and port picking is not atomic across processes.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `dpx-bench load` and return its one JSON record.
fn load(rpcs: &[String], extra: &[&str], out: &Path, logs: &dyn Fn() -> String) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpx-bench"));
    cmd.args(["load", "--duration", "3", "--drain", "60", "--out"]).arg(out).args(extra);
    for r in rpcs {
        cmd.args(["--rpc", r]);
    }
    let o = cmd.output().expect("running dpx-bench");
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{}\n{stderr}", String::from_utf8_lossy(&o.stdout));
    assert!(o.status.success(), "dpx-bench failed: {stderr}\nnode logs:\n{}", logs());
    let text = std::fs::read_to_string(out).expect("the result file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one record per run: {text}");
    serde_json::from_str(lines[0]).expect("the record is JSON")
}

fn n(v: &Value, field: &str) -> u64 {
    v[field].as_u64().unwrap_or_else(|| panic!("{field} is not a count: {v}"))
}

/// Every accepted transaction committed once, nothing lost or refused, figures present.
fn check_exactly_once(v: &Value, mode: &str, scheduled: u64) {
    assert_eq!(v["kind"], "load", "{v}");
    assert_eq!(v["mode"], mode, "{v}");
    assert_eq!(n(v, "scheduled"), scheduled, "{v}");
    assert_eq!(n(v, "sent"), scheduled, "everything sent: {v}");
    assert_eq!(n(v, "accepted"), n(v, "sent"), "everything accepted: {v}");
    assert_eq!(n(v, "committed"), n(v, "accepted"), "every accepted tx committed: {v}");
    assert_eq!(n(v, "lost"), 0, "{v}");
    assert_eq!(n(v, "duplicates"), 0, "{v}");
    assert_eq!(n(v, "skipped"), 0, "{v}");
    assert!(v["rejected"].as_object().is_some_and(serde_json::Map::is_empty), "{v}");
    assert_eq!(n(&v["latency"], "count"), n(v, "committed"), "{v}");
    let p50 = v["latency"]["p50_ms"].as_f64().expect("p50");
    let p99 = v["latency"]["p99_ms"].as_f64().expect("p99");
    assert!(p50 > 0.0 && p99 >= p50 && v["latency"]["max_ms"].as_f64() >= Some(p99), "{v}");
    assert!(n(&v["blocks"], "count") >= 1, "{v}");
    assert!(v["committed_tx_s"].as_f64().is_some_and(|c| c > 0.0), "{v}");
}

#[test]
fn full_mode_commits_every_accepted_transaction_exactly_once() -> anyhow::Result<()> {
    let _one = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut net = Cluster::init(4)?;
    net.start_all()?;
    net.wait_height_all(1, Duration::from_mins(2))?;
    let out = net.chain_dir().join("results.jsonl");
    let key = net.agency_key(0);
    let extra = ["--mode", "full", "--rate", "20", "--label", "smoke", "--agency-key"];
    let mut args: Vec<&str> = extra.to_vec();
    args.push(key.to_str().context("key path")?);
    // The other agencies approve the registrar's admission (> 2/3 of four agencies).
    let approvers: Vec<PathBuf> = (1..4).map(|i| net.agency_key(i)).collect();
    for a in &approvers {
        args.push("--approver-key");
        args.push(a.to_str().context("key path")?);
    }
    let v = load(&net.rpc, &args, &out, &|| tail(&net.log(0), 40));
    check_exactly_once(&v, "full", 60);
    // Every receipt was `ok` (the workload is valid under the default policies).
    assert_eq!(v["receipts"], serde_json::json!({ "ok": 60 }), "{v}");
    assert_eq!(n(&v, "failed"), 0, "{v}");
    assert_eq!(v["label"], "smoke");
    assert_eq!(n(&v, "rpcs"), 4);
    Ok(())
}

/// Validators of a `--consensus-only` testnet, killed on drop.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn consensus_only_mode_commits_every_payload_exactly_once() -> anyhow::Result<()> {
    let _one = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let help = dpx(&["testnet", "init", "--help"])?;
    if !help.contains("--consensus-only") {
        println!("this dpx has no `testnet init --consensus-only`; skipping");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().to_str().context("temp path")?;
    let init = dpx(&[
        "testnet",
        "init",
        "--validators",
        "4",
        "--out",
        out_dir,
        "--consensus-only",
        "--output",
        "json",
    ])?;
    let v: Value = serde_json::from_str(&init)?;
    let nodes = v["nodes"].as_array().context("nodes")?;
    let homes: Vec<PathBuf> =
        nodes.iter().filter_map(|n| n["home"].as_str().map(PathBuf::from)).collect();
    let rpcs: Vec<String> =
        nodes.iter().filter_map(|n| n["rpc"].as_str().map(str::to_owned)).collect();
    let mut procs = Nodes(Vec::new());
    for home in &homes {
        let log = std::fs::File::create(home.join("node.log"))?;
        procs.0.push(
            Command::new(dpx_bin()?)
                .args(["node", "start", "--home"])
                .arg(home)
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_mins(2);
    for r in &rpcs {
        while dpx_tests::get_json(&format!("{r}/v1/status"))
            .ok()
            .and_then(|s| s["height"].as_u64())
            .is_none_or(|h| h < 1)
        {
            anyhow::ensure!(std::time::Instant::now() < deadline, "{r} made no block");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let log0 = || tail(&std::fs::read_to_string(homes[0].join("node.log")).unwrap_or_default(), 40);
    let out = dir.path().join("results.jsonl");
    let extra = ["--mode", "consensus-only", "--rate", "50", "--payload-bytes", "256"];
    let v = load(&rpcs, &extra, &out, &log0);
    check_exactly_once(&v, "consensus-only", 150);
    assert_eq!(n(&v, "hash_mismatches"), 0, "the node hashes payloads as blake3: {v}");
    Ok(())
}
