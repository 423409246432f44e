//! `membership`: the checks behind `scripts/membership.sh` that `faults` does not make.
//!
//! ```text
//! membership signers --rpc URL --from H --to H --key KEY...
//! membership prefix  --rpc URL...
//! ```
//!
//! `signers` reads the certificate of every block in `[from, to]` from one node, maps each
//! signature's validator index to a key through the set that validated that height
//! (`GET /v1/validators?height=`), and prints one line per asked key:
//! `<key> <heights signed> <first height> <last height>` (`- -` when it signed none).
//!
//! `prefix` checks that every node's chain is a prefix of the first node's: the same block id
//! and state root at every height up to its own tip (a node cut off from the network, such
//! as a removed validator, stops early but never diverges). Exit 0 when it holds, 1 otherwise.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use dpx_tests::tool::{Opts, run_main};
use serde_json::Value;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_main("membership", 0, run(&args))
}

async fn get(http: &reqwest::Client, url: &str) -> anyhow::Result<Value> {
    let r = http.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let v: Value = r.json().await.with_context(|| format!("GET {url}: not JSON"))?;
    anyhow::ensure!(status.is_success(), "GET {url}: {status} {v}");
    Ok(v)
}

async fn run(args: &[String]) -> anyhow::Result<ExitCode> {
    let (cmd, rest) = args.split_first().context("usage: membership signers|prefix ...")?;
    let o = Opts::parse(rest)?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).no_proxy().build()?;
    match cmd.as_str() {
        "signers" => signers(&http, &o).await,
        "prefix" => prefix(&http, &o).await,
        other => bail!("unknown command {other:?}: signers or prefix"),
    }
}

async fn signers(http: &reqwest::Client, o: &Opts) -> anyhow::Result<ExitCode> {
    let rpc = o.one("rpc")?;
    let from: u64 = o.one("from")?.parse().context("--from")?;
    let to: u64 = o.one("to")?.parse().context("--to")?;
    let keys = o.all("key")?;
    // key -> (count, first, last)
    let mut seen: BTreeMap<&str, (u64, Option<u64>, Option<u64>)> =
        keys.iter().map(|k| (k.as_str(), (0, None, None))).collect();
    for h in from.max(1)..=to {
        let block = get(http, &format!("{rpc}/v1/blocks/{h}")).await?;
        let cert_hex =
            block["certificate"].as_str().with_context(|| format!("block {h}: no certificate"))?;
        let cert = dpx_consensus::Certificate::decode(&hex::decode(cert_hex)?)
            .map_err(|e| anyhow::anyhow!("block {h}: certificate: {e}"))?;
        let set = get(http, &format!("{rpc}/v1/validators?height={h}")).await?;
        let members: Vec<&str> = set["validators"]
            .as_array()
            .context("no validators")?
            .iter()
            .map(|v| v["key"].as_str().unwrap_or(""))
            .collect();
        for (idx, _) in &cert.signatures {
            let key = members.get(idx.0 as usize).with_context(|| {
                format!("block {h}: signer index {} outside a set of {}", idx.0, members.len())
            })?;
            if let Some(e) = seen.get_mut(*key) {
                e.0 += 1;
                e.1 = e.1.or(Some(h));
                e.2 = Some(h);
            }
        }
    }
    for (k, (n, first, last)) in seen {
        let f = |x: Option<u64>| x.map_or_else(|| "-".to_owned(), |h| h.to_string());
        println!("{k} {n} {} {}", f(first), f(last));
    }
    Ok(ExitCode::SUCCESS)
}

async fn prefix(http: &reqwest::Client, o: &Opts) -> anyhow::Result<ExitCode> {
    let rpcs = o.all("rpc")?;
    let (first, others) = rpcs.split_first().context("give --rpc")?;
    let mut failed = false;
    for other in others {
        let tip = get(http, &format!("{other}/v1/status")).await?["height"].as_u64().unwrap_or(0);
        let mut diverged = None;
        for h in 1..=tip {
            let a = get(http, &format!("{first}/v1/blocks/{h}")).await?;
            let b = get(http, &format!("{other}/v1/blocks/{h}")).await?;
            let (ia, ib) = (&a["id"], &b["id"]);
            let (ra, rb) = (&a["header"]["state_root"], &b["header"]["state_root"]);
            if ia != ib || ra != rb {
                diverged = Some(h);
                break;
            }
        }
        match diverged {
            Some(h) => {
                println!("{other}: DIVERGES from {first} at height {h}");
                failed = true;
            }
            None => println!("{other}: heights 1..={tip} identical to {first}"),
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
