//! Who may read what, over a running node's RPC (issue 15, part 5): every kind of read —
//! state lists and objects, proofs, blocks, transactions, events — made without identity, as
//! an unrelated participant, as a party and as a supervisor, each getting exactly what the
//! read policy allows; and signed requests that are replayed, expired, future-dated or
//! tampered with, refused.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::{Duration, Instant};

use anyhow::Context as _;
use dpx_contracts::{
    Category, DemandId, Grant, GrantId, GrantRef, Operation, OrderId, ProductConditions, ProductId,
    ProductSpec, ProposalAction, Role, SubjectId, TransactionBody,
};
use dpx_crypto::{Hash, Keypair, keyfile};
use dpx_node::rpc::auth::{fresh_nonce, sign_request};
use dpx_tests::{Cluster, post_json};
use serde_json::{Value, json};

/// The node, the chain id and a runtime for the requests.
struct Node {
    rpc: String,
    chain: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

impl Node {
    /// GET `path`, signed by `key` at `created` (default: now) when given.
    fn get_at(&self, path: &str, key: Option<&Keypair>, created: u64, nonce: &str) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.rpc));
        if let Some(k) = key {
            for (n, v) in sign_request(k, &self.chain, "GET", path, b"", created, nonce) {
                req = req.header(n, v);
            }
        }
        self.rt.block_on(async {
            let r = req.timeout(Duration::from_secs(20)).send().await.expect("request");
            let status = r.status().as_u16();
            let headers = r.headers().clone();
            let body = r.json().await.unwrap_or(Value::Null);
            Answer { status, headers, body }
        })
    }

    fn get(&self, path: &str, key: Option<&Keypair>) -> Answer {
        self.get_at(path, key, now_s(), &fresh_nonce())
    }

    /// A one-validator network's node, and its agency's key.
    fn start(net: &mut Cluster) -> anyhow::Result<(Self, Keypair)> {
        net.start_all()?;
        net.wait_height(0, 1, Duration::from_mins(1))?;
        let chain = net.get(0, "/v1/status")?["chain_id"].as_str().context("chain id")?.to_owned();
        let node = Self {
            rpc: net.rpc[0].clone(),
            chain,
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?,
            http: reqwest::Client::new(),
        };
        Ok((node, keyfile::load(&net.agency_key(0))?))
    }

    /// Submit a transaction and wait for its commit; its receipt must be `ok`.
    fn submit(&self, key: &Keypair, nonce: u64, op: Operation) -> anyhow::Result<Value> {
        let v = self.submit_committed(key, nonce, op)?;
        anyhow::ensure!(v["receipt"]["code"] == "ok", "{v}");
        Ok(v)
    }

    /// Submit a transaction and wait for its commit, whatever its receipt says.
    fn submit_committed(&self, key: &Keypair, nonce: u64, op: Operation) -> anyhow::Result<Value> {
        let tx = TransactionBody::new(&self.chain, nonce, op).sign(key).encode();
        let (status, v) = post_json(
            &format!("{}/v1/txs?wait=commit", self.rpc),
            &json!({ "tx": hex::encode(tx) }),
        )?;
        anyhow::ensure!(status == 200 && v["status"] == "committed", "{status} {v}");
        Ok(v)
    }

    /// Events of a stream opened with `query` (signed by `key`), up to and including the
    /// first `block` event at `until_height` or later. Returns (kind, id) pairs.
    fn events(
        &self,
        query: &str,
        key: Option<&Keypair>,
        last_event_id: Option<&str>,
        until_height: u64,
    ) -> Vec<(String, String)> {
        let path = format!("/v1/events?{query}");
        let mut req = self.http.get(format!("{}{path}", self.rpc));
        if let Some(k) = key {
            for (n, v) in sign_request(k, &self.chain, "GET", &path, b"", now_s(), &fresh_nonce()) {
                req = req.header(n, v);
            }
        }
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        self.rt.block_on(async {
            let mut r = req.send().await.expect("events");
            assert_eq!(r.status().as_u16(), 200, "{path}");
            let deadline = Instant::now() + Duration::from_mins(1);
            let (mut text, mut out) = (String::new(), Vec::new());
            while Instant::now() < deadline {
                let chunk = tokio::time::timeout(Duration::from_secs(30), r.chunk()).await;
                let Ok(Ok(Some(c))) = chunk else { break };
                text.push_str(&String::from_utf8_lossy(&c));
                while let Some(end) = text.find("\n\n") {
                    let frame: String = text.drain(..end + 2).collect();
                    let field = |name: &str| {
                        frame.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned)
                    };
                    let (Some(kind), Some(id)) = (field("event: "), field("id: ")) else {
                        continue;
                    };
                    let h: u64 = id.split('.').next().unwrap().parse().unwrap();
                    let done = kind == "block" && h >= until_height;
                    out.push((kind, id));
                    if done {
                        return out;
                    }
                }
            }
            panic!("the stream {path} did not reach height {until_height}: {out:?}");
        })
    }
}

fn ids(items: &Value) -> Vec<String> {
    items["items"].as_array().expect("items").iter().map(ToString::to_string).collect()
}

#[test]
#[allow(clippy::too_many_lines)]
fn every_read_follows_the_read_policy() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    let (node, agency) = Node::start(&mut net)?;
    let chain = node.chain.clone();
    let key_of = |s: u8| Keypair::from_seed([s; 32]);
    let (regulator, auditor, rater, provider, buyer, stranger, subject) =
        (key_of(101), key_of(102), key_of(103), key_of(104), key_of(105), key_of(106), key_of(107));
    for (nonce, (key, name, role)) in [
        (&regulator, "regulator", Role::Regulator),
        (&auditor, "auditor", Role::Auditor),
        (&rater, "rater", Role::RatingBody),
        (&provider, "provider", Role::Provider),
        (&buyer, "buyer", Role::Consumer),
        (&stranger, "stranger", Role::Consumer),
    ]
    .into_iter()
    .enumerate()
    {
        let op = Operation::Admit { key: key.public(), name: name.into(), roles: vec![role] };
        node.submit(&agency, nonce as u64, op)?;
    }
    // A registrar, admitted by governance (one agency: its proposal is the quorum), enrols the
    // data subject.
    let registrar = key_of(108);
    let action =
        ProposalAction::AdmitRegistrar { key: registrar.public(), name: "Identity Service".into() };
    node.submit(&agency, 6, Operation::Propose { action })?;
    let subject_id = SubjectId::keyed(&[0x5e; 32], b"110101199003071234");
    node.submit(
        &registrar,
        0,
        Operation::EnrolSubject { subject_id, subject_key: subject.public() },
    )?;
    node.submit(&rater, 0, Operation::SetRating { participant: provider.public(), rating: 3 })?;
    let spec = ProductSpec {
        name: "cv check".into(),
        category: Category::DataService,
        domain: "employment".into(),
        grade: 3,
        price: 10,
        terms_hash: Hash::digest(b"terms"),
        conditions: ProductConditions {
            min_consumer_rating: 0,
            whitelist_only: false,
            purposes: vec!["hiring-check".into()],
        },
        retention_days: None,
    };
    node.submit(&provider, 0, Operation::ListProduct { spec })?;
    let product = ProductId::derive(&chain, &provider.public(), 0);
    let expires_at_ms = u64::try_from(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis(),
    )? + 3_600_000;
    let grant = |n: u8| {
        Grant {
            serial: Hash::digest(&[n]),
            subject: subject_id,
            key: subject.public(),
            epoch: 0,
            consumer: buyer.public(),
            product,
            purpose: "hiring-check".into(),
            expires_at_ms,
        }
        .sign(&subject, &chain)
    };
    let (g1, g2) = (grant(1), grant(2));
    let used = node.submit(
        &buyer,
        0,
        Operation::UseGrant {
            grant: GrantRef::Inline(Box::new(g1.clone())),
            subject: subject_id,
            product,
            purpose: "hiring-check".into(),
            request_hash: Hash::ZERO,
        },
    )?;
    let use_hash = used["hash"].as_str().context("hash")?.to_owned();
    let use_height = used["height"].as_u64().context("height")?;
    node.submit(
        &buyer,
        1,
        Operation::PlaceOrder {
            product,
            grant: Some(GrantRef::Inline(Box::new(g2.clone()))),
            purpose: "hiring-check".into(),
            demand: None,
        },
    )?;
    let order = OrderId::derive(&chain, &buyer.public(), 1);
    let posted = node.submit(
        &buyer,
        2,
        Operation::PostDemand {
            title: "need records".into(),
            domain: "employment".into(),
            budget: 5,
            description_hash: Hash::ZERO,
            deadline_ms: None,
        },
    )?;
    let last_height = posted["height"].as_u64().context("height")?;
    let demand = DemandId::derive(&chain, &buyer.public(), 2);
    // Proofs are made at the latest certified version: let the last writes be certified.
    net.wait_height(0, last_height + 2, Duration::from_mins(1))?;

    let who: [(&str, Option<&Keypair>); 7] = [
        ("anonymous", None),
        ("stranger", Some(&stranger)),
        ("subject", Some(&subject)),
        ("buyer", Some(&buyer)),
        ("provider", Some(&provider)),
        ("regulator", Some(&regulator)),
        ("auditor", Some(&auditor)),
    ];
    let allowed = |list: &[&str], name: &str| list.contains(&name);

    // ----- one object, with and without proof, and one that does not exist
    let g1_id = g1.grant.id().to_string();
    let missing = GrantId(Hash::digest(b"no such grant")).to_string();
    let objects: Vec<(String, &[&str])> = vec![
        (format!("grants/{g1_id}"), &["subject", "buyer", "regulator", "auditor"]),
        (format!("usage/{g1_id}"), &["subject", "buyer", "provider", "regulator", "auditor"]),
        (format!("orders/{order}"), &["subject", "buyer", "provider", "regulator", "auditor"]),
        (format!("demands/{demand}"), &["stranger", "buyer", "provider", "regulator", "auditor"]),
        (
            format!("products/{product}"),
            &["anonymous", "stranger", "subject", "buyer", "provider", "regulator", "auditor"],
        ),
        (
            format!("participants/{}", buyer.public()),
            &["anonymous", "stranger", "subject", "buyer", "provider", "regulator", "auditor"],
        ),
    ];
    for (path, may) in &objects {
        for (name, key) in &who {
            for suffix in ["", "?prove=true"] {
                let a = node.get(&format!("/v1/state/{path}{suffix}"), *key);
                if allowed(may, name) {
                    assert_eq!(a.status, 200, "{name} GET {path}{suffix}: {}", a.body);
                    assert!(!a.body["value"].is_null(), "{name} {path}");
                    if !suffix.is_empty() {
                        assert!(a.body["proof"]["proof"].is_object(), "{name} {path}: {}", a.body);
                    }
                } else {
                    assert_eq!(a.status, 403, "{name} GET {path}{suffix}: {}", a.body);
                    assert_eq!(a.body["error"]["code"], "forbidden");
                }
            }
        }
    }
    // Existence is not revealed: a missing grant answers like a present one to the others.
    for (name, key) in &who {
        let a = node.get(&format!("/v1/state/grants/{missing}"), *key);
        let want = if allowed(&["regulator", "auditor"], name) { 404 } else { 403 };
        assert_eq!(a.status, want, "{name}: {}", a.body);
        let a = node.get(&format!("/v1/state/grants/{missing}?prove=true"), *key);
        let want = if allowed(&["regulator", "auditor"], name) { 200 } else { 403 };
        assert_eq!(a.status, want, "{name} proof of absence: {}", a.body);
    }

    // ----- a grant's history: its parties and supervisors, as the grant itself
    for (name, key) in &who {
        let a = node.get(&format!("/v1/grants/{g1_id}/history"), *key);
        if allowed(&["subject", "buyer", "regulator", "auditor"], name) {
            assert_eq!(a.status, 200, "{name}: {}", a.body);
            let steps = a.body["steps"].as_array().context("steps")?;
            // Used inline: registered and consumed by the same transaction.
            let names: Vec<&str> = steps.iter().filter_map(|s| s["step"].as_str()).collect();
            assert_eq!(names, ["registered", "consumed"], "{}", a.body);
            for s in steps {
                assert_eq!(s["tx_hash"].as_str(), Some(use_hash.as_str()), "{}", a.body);
                assert_eq!(s["height"].as_u64(), Some(use_height));
                assert_eq!(
                    s["tx_proof"].as_str(),
                    Some(format!("/v1/txs/{use_hash}/proof").as_str())
                );
            }
            assert_eq!(a.body["state"], "consumed");
            assert_eq!(a.body["purpose"], "hiring-check");
        } else {
            assert_eq!(
                (a.status, a.body["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{name}: {}",
                a.body
            );
        }
        let a = node.get(&format!("/v1/grants/{missing}/history"), *key);
        let want = if allowed(&["regulator", "auditor"], name) { 404 } else { 403 };
        assert_eq!(a.status, want, "{name}: {}", a.body);
    }
    // The proof it points to verifies the step's transaction for a party.
    let a = node.get(&format!("/v1/txs/{use_hash}/proof"), Some(&subject));
    assert_eq!(a.status, 200, "{}", a.body);
    let a = node.get("/v1/grants/zz/history", Some(&regulator));
    assert_eq!((a.status, a.body["error"]["code"].as_str()), (400, Some("bad_id")), "{}", a.body);

    // ----- lists: filtered, never refused
    let lists: Vec<(&str, &[(&str, usize)])> = vec![
        (
            "grants",
            &[
                ("anonymous", 0),
                ("stranger", 0),
                ("subject", 2),
                ("buyer", 2),
                ("provider", 0),
                ("regulator", 2),
                ("auditor", 2),
            ],
        ),
        (
            "orders",
            &[
                ("anonymous", 0),
                ("stranger", 0),
                ("subject", 1),
                ("buyer", 1),
                ("provider", 1),
                ("regulator", 1),
                ("auditor", 1),
            ],
        ),
        (
            "demands",
            &[
                ("anonymous", 0),
                ("stranger", 1),
                ("subject", 0),
                ("buyer", 1),
                ("provider", 1),
                ("regulator", 1),
                ("auditor", 1),
            ],
        ),
        (
            "products",
            &[("anonymous", 1), ("stranger", 1), ("subject", 1), ("buyer", 1), ("regulator", 1)],
        ),
    ];
    for (kind, rows) in lists {
        for (name, n) in rows {
            let key = who.iter().find(|w| w.0 == *name).unwrap().1;
            let a = node.get(&format!("/v1/state/{kind}"), key);
            assert_eq!(a.status, 200, "{name} lists {kind}: {}", a.body);
            assert_eq!(ids(&a.body).len(), *n, "{name} lists {kind}: {}", a.body);
        }
    }
    let everyone = node.get("/v1/state/participants", None);
    assert!(ids(&everyone.body).len() >= 7, "public profiles: {}", everyone.body);

    // ----- blocks and transactions: hashes for all, contents for parties and supervisors
    for (name, key) in &who {
        let b = node.get(&format!("/v1/blocks/{use_height}"), *key);
        assert_eq!(b.status, 200);
        assert!(b.body["header"].is_object() && b.body["certificate"].is_string());
        let tx = b.body["txs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["hash"] == use_hash.as_str())
            .expect("the transaction's hash is listed for everyone")
            .clone();
        let t = node.get(&format!("/v1/txs/{use_hash}"), *key);
        assert_eq!((t.status, t.body["status"].as_str()), (200, Some("committed")), "{name}");
        if allowed(&["subject", "buyer", "provider", "regulator", "auditor"], name) {
            assert!(tx["bytes"].is_string() && tx["hidden"].is_null(), "{name}: {tx}");
            assert_eq!(t.body["receipt"]["code"], "ok", "{name}: {}", t.body);
        } else {
            assert_eq!(tx["hidden"], true, "{name}: {tx}");
            assert!(tx["bytes"].is_null() && tx["tx"].is_null(), "{name}: {tx}");
            assert_eq!(t.body["hidden"], true, "{name}: {}", t.body);
            assert!(t.body["receipt"].is_null() && t.body["tx"].is_null(), "{name}");
        }
    }

    // ----- events: block events for all, a transaction's events for its parties
    let query = "from_height=1&kinds=block,grant.consumed";
    let consumed =
        |evs: &[(String, String)]| evs.iter().filter(|e| e.0 == "grant.consumed").count();
    for (name, key) in &who {
        let evs = node.events(query, *key, None, last_height);
        let parties = ["subject", "buyer", "provider", "regulator", "auditor"];
        let want = if allowed(&parties, name) { 2 } else { 0 };
        assert_eq!(consumed(&evs), want, "{name}: {evs:?}");
        assert!(evs.iter().any(|e| e.0 == "block"), "{name}");
    }
    // Resume with Last-Event-ID: strictly after it, whatever from_height says.
    let all = node.events(query, Some(&regulator), None, last_height);
    let first = all.iter().find(|e| e.0 == "grant.consumed").unwrap().1.clone();
    let resumed = node.events(query, Some(&regulator), Some(&first), last_height);
    let pos = all.iter().position(|e| e.1 == first).unwrap();
    assert_eq!(resumed, all[pos + 1..].to_vec(), "resume after {first}");

    // ----- bad queries are 400 JSON, not empty streams or silently ignored
    for path in [
        "/v1/events?kinds=grant.nonsense_x,unicorns".to_owned(),
        "/v1/events?participant=zz".to_owned(),
        format!("/v1/state/grants/{g1_id}?height=1"),
    ] {
        let a = node.get(&path, Some(&regulator));
        assert_eq!(a.status, 400, "{path}: {}", a.body);
        assert!(a.body["error"]["code"].is_string());
    }
    let mut r = node.http.get(format!("{}/v1/events", node.rpc));
    r = r.header("last-event-id", "not-a-cursor");
    let s = node.rt.block_on(async { r.send().await.unwrap().status().as_u16() });
    assert_eq!(s, 400);

    // ----- signed requests that must be refused
    let path = "/v1/state/grants";
    let nonce = fresh_nonce();
    let ok = node.get_at(path, Some(&regulator), now_s(), &nonce);
    assert_eq!(ok.status, 200);
    let replayed = node.get_at(path, Some(&regulator), now_s(), &nonce);
    assert_eq!(replayed.status, 401, "{}", replayed.body);
    assert_eq!(replayed.body["error"]["code"], "unauthenticated");
    assert!(replayed.body["error"]["message"].as_str().unwrap().contains("replayed"));
    assert_eq!(
        replayed.headers.get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Signature realm=\"dpx\"")
    );
    for created in [now_s() - 120, now_s() + 120] {
        let a = node.get_at(path, Some(&regulator), created, &fresh_nonce());
        assert_eq!(a.status, 401, "created {created}: {}", a.body);
    }
    // Signed for one query, sent with another.
    let mut req = node.http.get(format!("{}{path}?limit=500", node.rpc));
    for (n, v) in sign_request(
        &regulator,
        &chain,
        "GET",
        &format!("{path}?limit=1"),
        b"",
        now_s(),
        &fresh_nonce(),
    ) {
        req = req.header(n, v);
    }
    let s = node.rt.block_on(async { req.send().await.unwrap().status().as_u16() });
    assert_eq!(s, 401);
    // Signed for another chain.
    let mut req = node.http.get(format!("{}{path}", node.rpc));
    for (n, v) in sign_request(&regulator, "other-chain", "GET", path, b"", now_s(), &fresh_nonce())
    {
        req = req.header(n, v);
    }
    let s = node.rt.block_on(async { req.send().await.unwrap().status().as_u16() });
    assert_eq!(s, 401);

    // ----- the CLI: `dpx query --key` and `dpx audit replay --from-rpc --key`
    let keys = net.dir.path().join("rpc-auth-keys");
    std::fs::create_dir_all(&keys)?;
    let file = |name: &str, key: &Keypair| -> anyhow::Result<String> {
        let p = keys.join(format!("{name}.json"));
        keyfile::save(&p, &Keypair::from_seed(key.seed()))?;
        Ok(p.to_str().context("path")?.to_owned())
    };
    let (buyer_file, auditor_file, stranger_file) =
        (file("buyer", &buyer)?, file("auditor", &auditor)?, file("stranger", &stranger)?);
    let out = dpx_tests::dpx(&[
        "query",
        "grants",
        "--rpc",
        &node.rpc,
        "--key",
        &buyer_file,
        "--output",
        "json",
    ])?;
    assert_eq!(ids(&serde_json::from_str(&out)?).len(), 2, "{out}");
    let out = dpx_tests::dpx(&["query", "grants", "--rpc", &node.rpc, "--output", "json"])?;
    assert_eq!(ids(&serde_json::from_str(&out)?).len(), 0, "{out}");
    let genesis = net.chain_dir().join("genesis.json");
    let genesis = genesis.to_str().context("path")?;
    let replay = |key: &str| {
        std::process::Command::new(dpx_tests::dpx_bin().unwrap())
            .args(["audit", "replay", "--genesis", genesis, "--from-rpc", &node.rpc, "--key", key])
            .args(["--to-height", &last_height.to_string(), "--quiet", "--output", "json"])
            .output()
            .unwrap()
    };
    let out = replay(&auditor_file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = replay(&stranger_file);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("withheld") && err.contains("--key"), "{err}");
    Ok(())
}

/// One key cannot lock the others out of signed requests: each key holds at most
/// `auth_replay_per_key_max` nonces (beyond: 429 for that key alone), and keys without standing
/// on the ledger fill only their own cache (beyond: 503 for them alone).
#[test]
fn one_key_cannot_lock_out_the_others() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    let cfg_path = net.homes[0].join("config.toml");
    let mut cfg = dpx_node::config::Config::load(&cfg_path)?;
    cfg.rpc.auth_replay_per_key_max = 5;
    cfg.rpc.auth_replay_unknown_max = 3;
    cfg.save(&cfg_path)?;
    let (node, agency) = Node::start(&mut net)?;
    let auditor = Keypair::from_seed([102; 32]);
    let op = Operation::Admit {
        key: auditor.public(),
        name: "auditor".into(),
        roles: vec![Role::Auditor],
    };
    node.submit(&agency, 0, op)?;

    // Throwaway keys: three requests fill their cache; a fourth (another fresh key) waits.
    for seed in 1..=3 {
        let a = node.get("/v1/status", Some(&Keypair::from_seed([seed; 32])));
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let full = node.get("/v1/status", Some(&Keypair::from_seed([4; 32])));
    assert_eq!(full.status, 503, "{}", full.body);
    assert!(full.headers.contains_key("retry-after"));
    // The participants' cache is untouched: the agency makes its five requests.
    for _ in 0..5 {
        let a = node.get("/v1/state/grants", Some(&agency));
        assert_eq!(a.status, 200, "{}", a.body);
    }
    // Its sixth is refused, for the agency alone, with when to come back.
    let quota = node.get("/v1/state/grants", Some(&agency));
    assert_eq!(quota.status, 429, "{}", quota.body);
    assert_eq!(quota.body["error"]["code"], "key_rate_limited");
    let retry: u64 = quota.headers["retry-after"].to_str()?.parse()?;
    assert!((1..=121).contains(&retry), "Retry-After {retry}");
    let other = node.get("/v1/state/grants", Some(&auditor));
    assert_eq!(other.status, 200, "{}", other.body);
    // Unsigned requests never touch the caches.
    assert_eq!(node.get("/v1/status", None).status, 200);
    // Every refusal is counted, by cause: one 503 (the strangers' cache), one 429.
    let url = format!("{}/metrics", node.rpc);
    let text = node.rt.block_on(async { reqwest::get(url).await?.text().await })?;
    for line in ["dpx_rpc_auth_replay_cache_full_total 1", "dpx_rpc_auth_key_rate_limited_total 1"]
    {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }
    // And every signed request that passed: 3 strangers', 5 of the agency, 1 of the auditor.
    assert!(text.lines().any(|l| l == "dpx_rpc_auth_signed_total 9"), "{text}");
    Ok(())
}

/// The catalogue and decision searches (issue 17): each filter narrows, pages chain to the
/// end, bad parameters are 400 with a code, and a decision is shown only to whoever may read
/// its transaction.
#[test]
#[allow(clippy::too_many_lines)]
fn catalogue_and_decision_searches_filter_page_and_follow_the_read_policy() -> anyhow::Result<()> {
    let mut net = Cluster::init(1)?;
    let (node, agency) = Node::start(&mut net)?;
    let chain = node.chain.clone();
    let key_of = |s: u8| Keypair::from_seed([s; 32]);
    let (regulator, provider, provider2, buyer, stranger, rater) =
        (key_of(201), key_of(202), key_of(203), key_of(204), key_of(205), key_of(206));
    for (nonce, (key, role)) in [
        (&regulator, Role::Regulator),
        (&provider, Role::Provider),
        (&provider2, Role::Provider),
        (&buyer, Role::Consumer),
        (&stranger, Role::Consumer),
        (&rater, Role::RatingBody),
    ]
    .into_iter()
    .enumerate()
    {
        let op =
            Operation::Admit { key: key.public(), name: format!("p{nonce}"), roles: vec![role] };
        node.submit(&agency, nonce as u64, op)?;
    }
    // Providers list products up to their rating's grade.
    for (nonce, p) in [&provider, &provider2].into_iter().enumerate() {
        let op = Operation::SetRating { participant: p.public(), rating: 3 };
        node.submit(&rater, nonce as u64, op)?;
    }
    let spec = |name: &str, category, domain: &str, grade, price, whitelist_only| ProductSpec {
        name: name.into(),
        category,
        domain: domain.into(),
        grade,
        price,
        terms_hash: Hash::digest(name.as_bytes()),
        conditions: ProductConditions { whitelist_only, ..ProductConditions::default() },
        retention_days: None,
    };
    let list = |key: &Keypair, nonce: u64, spec: ProductSpec| -> anyhow::Result<String> {
        node.submit(key, nonce, Operation::ListProduct { spec })?;
        Ok(ProductId::derive(&chain, &key.public(), nonce).to_string())
    };
    let traffic = list(
        &provider,
        0,
        spec("Traffic flow, hourly", Category::DataService, "transport", 1, 100, false),
    )?;
    let salary =
        list(&provider, 1, spec("Salary survey", Category::Report, "employment", 2, 900, false))?;
    let route =
        list(&provider, 2, spec("Route planner", Category::Software, "transport", 2, 50, true))?;
    let rain =
        list(&provider2, 0, spec("Rain radar", Category::DataService, "weather", 1, 20, false))?;
    node.submit(&provider, 3, Operation::DelistProduct { product: salary.parse()? })?;
    let order = |key: &Keypair, nonce: u64, product: &str| {
        let op = Operation::PlaceOrder {
            product: product.parse()?,
            grant: None,
            purpose: "routing".into(),
            demand: None,
        };
        node.submit_committed(key, nonce, op)
    };
    let denied_buyer = order(&buyer, 0, &route)?;
    let allowed_buyer = order(&buyer, 1, &traffic)?;
    let denied_stranger = order(&stranger, 0, &route)?;
    for (v, code) in
        [(&denied_buyer, "denied"), (&allowed_buyer, "ok"), (&denied_stranger, "denied")]
    {
        assert_eq!(v["receipt"]["code"], code, "{v}");
    }
    let hash_of = |v: &Value| v["hash"].as_str().unwrap().to_owned();

    // ----- the catalogue
    let names = |path: &str, key: Option<&Keypair>| -> Vec<String> {
        let a = node.get(path, key);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        let mut n: Vec<String> = a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["spec"]["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let all = ["Rain radar", "Route planner", "Traffic flow, hourly"];
    assert_eq!(names("/v1/catalogue", None), all);
    assert_eq!(
        names("/v1/catalogue?category=data_service", None),
        ["Rain radar", "Traffic flow, hourly"]
    );
    assert_eq!(names("/v1/catalogue?domain=transport&grade_max=1", None), ["Traffic flow, hourly"]);
    assert_eq!(names("/v1/catalogue?grade=2", None), ["Route planner"]);
    assert_eq!(names("/v1/catalogue?q=RAIN%20radar", None), ["Rain radar"]);
    assert_eq!(names("/v1/catalogue?q=transport", None), ["Route planner", "Traffic flow, hourly"]);
    assert_eq!(
        names(&format!("/v1/catalogue?provider={}", provider2.public()), None),
        ["Rain radar"]
    );
    assert_eq!(names("/v1/catalogue?price_max=60", None), ["Rain radar", "Route planner"]);
    assert!(names("/v1/catalogue?category=report", None).is_empty());
    // A delisted product is for active participants: not the public, but a consumer.
    assert!(names("/v1/catalogue?listed=false", None).is_empty());
    assert_eq!(names("/v1/catalogue?listed=false", Some(&buyer)), ["Salary survey"]);
    assert_eq!(names("/v1/catalogue?listed=any", Some(&buyer)).len(), 4);
    // One product a page: the pages chain through all of them, then end.
    let (mut seen, mut path) = (Vec::new(), "/v1/catalogue?limit=1".to_owned());
    for _ in 0..10 {
        let a = node.get(&path, None);
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body["items"].as_array().unwrap().len() <= 1);
        seen.extend(
            a.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match a.body["next"].as_str() {
            Some(next) => path = format!("/v1/catalogue?limit=1&after={next}"),
            None => break,
        }
    }
    seen.sort();
    let mut want = vec![traffic.clone(), route.clone(), rain.clone()];
    want.sort();
    assert_eq!(seen, want);
    for (path, code) in [
        ("/v1/catalogue?limit=0", "bad_query"),
        ("/v1/catalogue?limit=201", "bad_query"),
        ("/v1/catalogue?grade=9", "bad_query"),
        ("/v1/catalogue?grade=x", "bad_query"),
        ("/v1/catalogue?category=food", "bad_query"),
        ("/v1/catalogue?provider=00", "bad_query"),
        ("/v1/catalogue?listed=maybe", "bad_query"),
        ("/v1/catalogue?colour=red", "bad_query"),
        ("/v1/catalogue?after=zz", "bad_cursor"),
    ] {
        let a = node.get(path, None);
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}: {}",
            a.body
        );
    }

    // ----- decisions
    let hashes = |path: &str, key: Option<&Keypair>| -> Vec<String> {
        let a = node.get(path, key);
        assert_eq!(a.status, 200, "{path}: {}", a.body);
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["tx_hash"].as_str().unwrap().to_owned())
            .collect()
    };
    // Newest first, with the policy that decided.
    let a = node.get("/v1/decisions?outcome=denied", Some(&regulator));
    assert_eq!(a.status, 200, "{}", a.body);
    let items = a.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", a.body);
    assert_eq!(items[0]["tx_hash"].as_str().unwrap(), hash_of(&denied_stranger));
    assert_eq!(items[1]["tx_hash"].as_str().unwrap(), hash_of(&denied_buyer));
    for d in items {
        assert_eq!(
            (d["action"].as_str(), d["allowed"].as_bool(), d["code"].as_str()),
            (Some("order"), Some(false), Some("denied"))
        );
        assert_eq!(d["resource"].as_str().unwrap(), format!("Product::\"{route}\""));
        assert!(
            d["determining"].as_array().unwrap().iter().any(|p| p == "whitelist-only-products"),
            "{d}"
        );
    }
    assert!(a.body["next"].is_null(), "{}", a.body);
    let buyer_hex = buyer.public().to_hex();
    assert_eq!(
        hashes(&format!("/v1/decisions?principal={buyer_hex}"), Some(&regulator)),
        [hash_of(&allowed_buyer), hash_of(&denied_buyer)]
    );
    assert_eq!(
        hashes(
            &format!("/v1/decisions?product={traffic}&outcome=allowed&action=order"),
            Some(&regulator)
        ),
        [hash_of(&allowed_buyer)]
    );
    let stranger_height = denied_stranger["height"].as_u64().unwrap();
    assert_eq!(
        hashes(
            &format!("/v1/decisions?outcome=denied&to_height={}", stranger_height - 1),
            Some(&regulator)
        ),
        [hash_of(&denied_buyer)]
    );
    // A participant sees the decisions of its own transactions, the public none.
    assert_eq!(hashes("/v1/decisions?outcome=denied", Some(&buyer)), [hash_of(&denied_buyer)]);
    assert_eq!(
        hashes("/v1/decisions?outcome=denied", Some(&stranger)),
        [hash_of(&denied_stranger)]
    );
    assert!(hashes("/v1/decisions", None).is_empty());
    // The provider is a party to orders of its products.
    assert_eq!(hashes("/v1/decisions?action=order", Some(&provider)).len(), 3);
    // Pages of one chain to the end and hold what one big page holds, newest first.
    let everything = hashes("/v1/decisions?limit=200", Some(&regulator));
    assert!(everything.len() >= 14, "{everything:?}"); // 5 admissions, 4 listings, 1 delisting, 3 orders, …
    let (mut seen, mut path, mut last) =
        (Vec::new(), "/v1/decisions?limit=1".to_owned(), (u64::MAX, u64::MAX));
    for _ in 0..=everything.len() {
        let a = node.get(&path, Some(&regulator));
        assert_eq!(a.status, 200, "{}", a.body);
        for d in a.body["items"].as_array().unwrap() {
            let at = (d["height"].as_u64().unwrap(), d["index"].as_u64().unwrap());
            assert!(at < last, "{at:?} after {last:?}");
            last = at;
            seen.push(d["tx_hash"].as_str().unwrap().to_owned());
        }
        match a.body["next"].as_str() {
            Some(next) => path = format!("/v1/decisions?limit=1&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, everything);
    for (path, code) in [
        ("/v1/decisions?limit=0", "bad_query"),
        ("/v1/decisions?limit=201", "bad_query"),
        ("/v1/decisions?outcome=maybe", "bad_query"),
        ("/v1/decisions?principal=12", "bad_query"),
        ("/v1/decisions?from_height=9&to_height=3", "bad_query"),
        ("/v1/decisions?product=00&resource=x", "bad_query"),
        ("/v1/decisions?height=3", "bad_query"),
        ("/v1/decisions?before=12", "bad_cursor"),
        ("/v1/decisions?before=-1.0", "bad_cursor"),
    ] {
        let a = node.get(path, Some(&regulator));
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some(code)),
            "{path}: {}",
            a.body
        );
    }

    // ----- aggregates: kept up to date as blocks commit (the index may trail the tip briefly)
    let last = denied_stranger["height"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let whole = loop {
        let a = node.get("/v1/aggregates", Some(&regulator));
        assert_eq!(a.status, 200, "{}", a.body);
        if a.body["indexed_height"].as_u64().unwrap() >= last {
            break a.body;
        }
        assert!(Instant::now() < deadline, "the index did not reach {last}: {}", a.body);
        std::thread::sleep(Duration::from_millis(200));
    };
    let c = &whole["counts"];
    assert_eq!(whole["counted_from_height"], 1);
    assert_eq!(c["participant.admitted"], 6, "{whole}");
    assert_eq!(c["product.listed"], 4, "{whole}");
    assert_eq!(c["product.delisted"], 1, "{whole}");
    assert_eq!(c["order.placed"], 1, "{whole}");
    assert_eq!(
        (c["txs_refused"].as_u64(), c["decisions_denied"].as_u64()),
        (Some(2), Some(2)),
        "{whole}"
    );
    assert_eq!(c["txs"].as_u64().unwrap(), c["txs_ok"].as_u64().unwrap() + 2);
    assert_eq!(c["txs"].as_u64().unwrap(), everything.len() as u64, "one decision per transaction");
    assert_eq!(whole["to_height"], whole["indexed_height"]);
    // A height range holding only the buyer's two orders; the same by block times.
    let (h1, h2) =
        (denied_buyer["height"].as_u64().unwrap(), allowed_buyer["height"].as_u64().unwrap());
    let r =
        node.get(&format!("/v1/aggregates?from_height={h1}&to_height={h2}"), Some(&regulator)).body;
    assert_eq!(
        (r["counts"]["order.placed"].as_u64(), r["counts"]["txs_refused"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    assert_eq!(r["counts"]["blocks"].as_u64(), Some(h2 - h1 + 1));
    let time_of = |h: u64| {
        net.get(0, &format!("/v1/blocks/{h}")).unwrap()["header"]["time_ms"].as_u64().unwrap()
    };
    let (t1, t2) = (time_of(h1), time_of(h2));
    let r = node
        .get(&format!("/v1/aggregates?from_time_ms={t1}&to_time_ms={}", t2 + 1), Some(&regulator))
        .body;
    assert_eq!((r["from_height"].as_u64(), r["to_height"].as_u64()), (Some(h1), Some(h2)), "{r}");
    // Buckets of one second over the whole chain add up to the whole.
    let t0 = time_of(1);
    let end = time_of(whole["indexed_height"].as_u64().unwrap()) + 1;
    let s = node.get(
        &format!("/v1/aggregates?from_time_ms={t0}&to_time_ms={end}&interval_ms=1000"),
        Some(&regulator),
    );
    assert_eq!(s.status, 200, "{}", s.body);
    let sum = |k: &str| {
        s.body["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["counts"][k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum("txs"), c["txs"].as_u64().unwrap());
    assert_eq!(sum("blocks"), c["blocks"].as_u64().unwrap());
    // Supervisors only; bad questions are 400.
    for key in [None, Some(&buyer), Some(&provider)] {
        let a = node.get("/v1/aggregates", key);
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{}",
            a.body
        );
    }
    for path in [
        "/v1/aggregates?from_height=1&from_time_ms=1",
        "/v1/aggregates?from_height=5&to_height=4",
        "/v1/aggregates?interval_ms=1000",
        "/v1/aggregates?from_time_ms=0&to_time_ms=100000000&interval_ms=1000",
        "/v1/aggregates?from_time_ms=0&to_time_ms=10&interval_ms=10",
        "/v1/aggregates?to_height=-1",
        "/v1/aggregates?kind=grants",
    ] {
        let a = node.get(path, Some(&regulator));
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (400, Some("bad_query")),
            "{path}: {}",
            a.body
        );
    }
    Ok(())
}
