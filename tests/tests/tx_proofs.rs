//! Transaction and receipt inclusion proofs over a running node's RPC (SPEC.md §11.2):
//! `GET /v1/txs/{hash}/proof` for a party and a supervisor (200, verified offline against the
//! genesis), an outsider and an anonymous caller (403), a hash that is not committed (404 for a
//! supervisor, 403 for the others), and a receipt not yet certified (`receipt: null` until the
//! next block commits); then `dpx audit prove-tx` and `dpx audit verify` on the same bundle.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use anyhow::Context as _;
use dpx_app::proofs::{TxProofBundle, verify_tx};
use dpx_contracts::{Operation, Role, TransactionBody};
use dpx_crypto::{Hash, Keypair, keyfile};
use dpx_genesis::Genesis;
use dpx_node::rpc::auth::{fresh_nonce, sign_request};
use dpx_tests::{Cluster, dpx, post_json};
use serde_json::{Value, json};

struct Node {
    rpc: String,
    chain: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

impl Node {
    fn get(&self, path: &str, key: Option<&Keypair>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path}", self.rpc));
        if let Some(k) = key {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            for (n, v) in sign_request(k, &self.chain, "GET", path, b"", now, &fresh_nonce()) {
                req = req.header(n, v);
            }
        }
        self.rt.block_on(async {
            let r = req.timeout(Duration::from_secs(20)).send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }

    /// Submit and wait for the commit; (hash, height).
    fn submit(&self, key: &Keypair, nonce: u64, op: Operation) -> anyhow::Result<(Hash, u64)> {
        let tx = TransactionBody::new(&self.chain, nonce, op).sign(key).encode();
        let (status, v) = post_json(
            &format!("{}/v1/txs?wait=commit", self.rpc),
            &json!({ "tx": hex::encode(&tx) }),
        )?;
        anyhow::ensure!(status == 200 && v["receipt"]["code"] == "ok", "{status} {v}");
        Ok((Hash::digest(&tx), v["height"].as_u64().context("height")?))
    }
}

#[test]
#[allow(clippy::too_many_lines)]
fn n1_tx_proofs_follow_the_read_policy_and_verify_offline() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    // No idle blocks: a block is made only when transactions wait, so the block after a
    // transaction's does not exist until the next transaction is submitted.
    let cfg_path = net.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    cfg.consensus.idle_block_interval_ms = 3_600_000;
    cfg.save(&cfg_path)?;
    net.start_all()?;
    // Height 0 answered: the RPC is up (no block comes before the first transaction).
    net.wait_height(0, 0, Duration::from_mins(1))?;
    let chain = net.get(0, "/v1/status")?["chain_id"].as_str().context("chain id")?.to_owned();
    let genesis_path = net.chain_dir().join("genesis.json");
    let genesis = Genesis::load(&genesis_path)?;
    let node = Node {
        rpc: net.rpc[0].clone(),
        chain,
        rt: tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?,
        http: reqwest::Client::new(),
    };
    let agency = keyfile::load(&net.agency_key(0))?;
    let key_of = |s: u8| Keypair::from_seed([s; 32]);
    let (regulator, stranger, buyer, late) = (key_of(101), key_of(102), key_of(103), key_of(104));
    let admit = |nonce, key: &Keypair, name: &str, role| {
        let op = Operation::Admit { key: key.public(), name: name.into(), roles: vec![role] };
        node.submit(&agency, nonce, op)
    };
    admit(0, &regulator, "regulator", Role::Regulator)?;
    admit(1, &stranger, "stranger", Role::Consumer)?;
    // The buyer's admission: its parties are the agency (signer) and the buyer (named).
    let (hash, height) = admit(2, &buyer, "buyer", Role::Consumer)?;
    let path = format!("/v1/txs/{hash}/proof");

    // The block after it does not exist yet: the inclusion is proved, the receipt is pending.
    let (status, v) = node.get(&path, Some(&buyer));
    assert_eq!(status, 200, "{v}");
    assert_eq!(net.height(0)?, height, "no block was made after the transaction's");
    assert!(v["receipt"].is_null(), "{v}");
    assert!(
        v["receipt_pending"].as_str().is_some_and(|r| r.contains(&format!("block {}", height + 1))),
        "{v}"
    );
    let pending: TxProofBundle = serde_json::from_value(v)?;
    let verified = verify_tx(&pending, &genesis).map_err(anyhow::Error::msg)?;
    assert_eq!(verified.receipt_power, None);

    // One more transaction makes block height + 1, whose header certifies the receipts.
    let (_, next) = admit(3, &late, "late", Role::Consumer)?;
    assert_eq!(next, height + 1);
    for (who, key) in [("buyer", Some(&buyer)), ("regulator", Some(&regulator))] {
        let (status, v) = node.get(&path, key);
        assert_eq!(status, 200, "{who}: {v}");
        let b: TxProofBundle = serde_json::from_value(v)?;
        assert_eq!((b.tx_hash, b.height), (hash, height), "{who}");
        let verified = verify_tx(&b, &genesis).map_err(anyhow::Error::msg)?;
        assert!(verified.receipt_power.is_some(), "{who}: the receipt is proved");
    }
    for (who, key) in [("stranger", Some(&stranger)), ("anonymous", None)] {
        let (status, v) = node.get(&path, key);
        assert_eq!((status, &v["error"]["code"]), (403, &json!("forbidden")), "{who}: {v}");
    }
    // Not committed: a supervisor learns it, nobody else learns anything.
    let missing = format!("/v1/txs/{}/proof", Hash::digest(b"never submitted"));
    let (status, v) = node.get(&missing, Some(&regulator));
    assert_eq!((status, &v["error"]["code"]), (404, &json!("not_found")), "{v}");
    for key in [Some(&buyer), Some(&stranger), None] {
        let (status, v) = node.get(&missing, key);
        assert_eq!((status, &v["error"]["code"]), (403, &json!("forbidden")), "{v}");
    }
    let (status, v) = node.get("/v1/txs/zz/proof", Some(&regulator));
    assert_eq!((status, &v["error"]["code"]), (400, &json!("bad_hash")), "{v}");

    // The CLI: prove-tx with the buyer's key, verify against the genesis, and a tampered file
    // refused.
    let dir = tempfile::tempdir()?;
    let key_path = dir.path().join("buyer.json");
    keyfile::save(&key_path, &buyer)?;
    let bundle = dpx(&[
        "audit",
        "prove-tx",
        &hash.to_string(),
        "--rpc",
        &node.rpc,
        "--key",
        key_path.to_str().context("path")?,
    ])?;
    let file = dir.path().join("tx-proof.json");
    std::fs::write(&file, &bundle)?;
    let g = genesis_path.to_str().context("path")?;
    let out = dpx(&["audit", "verify", file.to_str().context("path")?, "--genesis", g])?;
    assert!(out.contains("VALID: transaction") && out.contains("VALID: its receipt"), "{out}");
    let mut doc: Value = serde_json::from_str(&bundle)?;
    let receipt = doc["bundle"]["receipt"]["receipt"].as_str().context("receipt")?.to_owned();
    let mut bytes = hex::decode(receipt)?;
    bytes[0] ^= 1;
    doc["bundle"]["receipt"]["receipt"] = json!(hex::encode(bytes));
    std::fs::write(&file, doc.to_string())?;
    let refused = dpx(&["audit", "verify", file.to_str().context("path")?, "--genesis", g]);
    let e = refused.expect_err("a tampered receipt must not verify").to_string();
    assert!(e.contains("prev_receipts_hash"), "{e}");
    Ok(())
}
