//! Issue 19 on loopback processes: a fifth node prepared with `dpx init --genesis` is voted
//! into the validator set, syncs and signs; an original validator is voted out and its key
//! stops appearing in certificates; the nodes agree throughout. (Across containers, under
//! load, with agency admission and audit replay: `scripts/membership.sh`.)

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use dpx_tests::{Cluster, dpx, free_port};

const WAIT: Duration = Duration::from_secs(90);

/// `dpx governance` as agency `a` through node `via`; the JSON answer.
fn governance(c: &Cluster, a: usize, via: usize, args: &[&str]) -> anyhow::Result<Value> {
    let key = c.agency_key(a);
    let mut all = vec!["--output", "json", "governance"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--key", key.to_str().context("path")?, "--rpc", &c.rpc[via]]);
    Ok(serde_json::from_str(&dpx(&all)?)?)
}

/// Propose `change` as agency 0 and approve it as agencies 1 and 2 (3 of 4): executed.
/// Returns the effective height.
fn vote(c: &Cluster, change: &[&str]) -> anyhow::Result<u64> {
    let mut args = vec!["propose-validator", "--in-blocks", "8"];
    args.extend_from_slice(change);
    let v = governance(c, 0, 0, &args)?;
    let id = v["proposal"]["id"].as_str().context("proposal id")?.to_owned();
    let at = v["proposal"]["action"]["update_validators"]["effective_height"]
        .as_u64()
        .context("effective height")?;
    for a in [1, 2] {
        governance(c, a, a, &["approve", &id])?;
    }
    let show = ["--output", "json", "governance", "show", &id, "--rpc", &c.rpc[1]];
    let v: Value = serde_json::from_str(&dpx(&show)?)?;
    anyhow::ensure!(v["proposal"]["status"] == "executed", "not executed: {v}");
    Ok(at)
}

#[test]
fn a_node_joins_from_the_genesis_file_and_an_original_validator_leaves() -> anyhow::Result<()> {
    let mut c = Cluster::init(4)?;
    c.start_all()?;
    c.wait_height_all(2, WAIT)?;

    // The newcomer's home, from the genesis file and the founders' peer entries.
    let home = c.chain_dir().join("agency-e");
    let (p2p, rpc) = (free_port()?, free_port()?);
    let mut args: Vec<String> = [
        "init",
        "--genesis",
        c.chain_dir().join("genesis.json").to_str().context("path")?,
        "--home",
        home.to_str().context("path")?,
        "--moniker",
        "agency-e",
        "--p2p-listen",
        &format!("/ip4/127.0.0.1/tcp/{p2p}"),
        "--rpc-listen",
        &format!("127.0.0.1:{rpc}"),
        "--output",
        "json",
    ]
    .map(str::to_owned)
    .to_vec();
    for i in 0..4 {
        let key = dpx_crypto::keyfile::load(&c.homes[i].join("node_key.json"))?.public();
        args.extend(["--peer".to_owned(), format!("{key}@{}", c.p2p_addr(i)?)]);
    }
    let out: Value =
        serde_json::from_str(&dpx(&args.iter().map(String::as_str).collect::<Vec<_>>())?)?;
    let new_key = out["node_key"].as_str().context("node_key")?.to_owned();
    let e = c.add_node(home, format!("http://127.0.0.1:{rpc}"));
    c.start(e)?;

    // Voted in; scheduled keys are let in, so it syncs and signs from its height.
    let joined = vote(&c, &["--add", &new_key, "--name", "Agency E node", "--power", "10"])?;
    let pending = c.get(0, "/v1/validators/pending")?;
    assert!(pending.to_string().contains(&new_key) || c.height(0)? + 1 >= joined, "{pending}");
    c.wait_height(e, joined + 4, WAIT)?;
    let set = c.get(e, "/v1/validators")?;
    assert!(set.to_string().contains(&new_key), "{set}");
    assert_eq!(c.get(e, "/v1/status")?["validator"], true);
    let mut signed = 0;
    for h in joined..=joined + 3 {
        signed += usize::from(c.signers(e, h)?.contains(&new_key));
    }
    for h in 1..joined {
        assert!(!c.signers(0, h)?.contains(&new_key), "signed height {h} before its height");
    }
    assert!(signed > 0, "the newcomer's key is in none of the certificates after its height");

    // Node 3 voted out: its key leaves the certificates from its effective height.
    let gone = dpx_crypto::keyfile::load(&c.homes[3].join("node_key.json"))?.public().to_hex();
    let left = vote(&c, &["--remove", &gone])?;
    for i in [0, 1, 2, e] {
        c.wait_height(i, left + 4, WAIT)?;
    }
    for h in left..=left + 3 {
        assert!(!c.signers(0, h)?.contains(&gone), "the removed key signed height {h}");
    }
    assert_eq!(c.get(3, "/v1/status")?["validator"], false);
    let checked = c.check_agreement(&[0, 1, 2, e])?;
    assert!(checked >= left + 3);
    Ok(())
}
